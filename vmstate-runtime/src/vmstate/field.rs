//! [`VmStateField`] for the standard types: bool, integers, arrays, boxes and
//! arrays of optional pointers.

use bytes::{Buf, BufMut};

use super::{DescribeSink, FieldType, VmStateField};
use crate::error::{ErrorKind, Result};
use crate::savevm::format::NULLPTR_MARKER;
use crate::wire::{Reader, Writer};

/// An array of scalars is described by its length alone: its elements are not
/// reported one by one (QEMU describes them with one entry).
macro_rules! scalar_elements {
    () => {
        #[inline]
        fn save_slice_with<B: BufMut, S: DescribeSink + ?Sized>(
            items: &[Self],
            w: &mut Writer<B>,
            _sink: &mut S,
        ) -> Result<()> {
            Self::save_slice(items, w)
        }
    };
}

/// An integer is one big-endian `read_*`/`write_*` of the wire module.
macro_rules! scalar_codec {
    ($read:ident, $write:ident) => {
        #[inline(always)]
        fn save_field<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
            w.$write(*self)
        }

        #[inline(always)]
        fn load_field<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
            *self = r.$read()?;
            Ok(())
        }
    };
}

impl VmStateField for bool {
    const FIELD_TYPE: FieldType = FieldType::scalar("bool", 1);

    scalar_elements!();

    #[inline(always)]
    fn save_field<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        w.write_u8(*self as u8)
    }

    #[inline(always)]
    fn load_field<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
        let at = r.position();
        *self = match r.read_u8()? {
            0 => false,
            1 => true,
            // QEMU itself would take any non-zero byte as true; a conforming source
            // only writes 0 or 1, so anything else means a corrupt or hostile stream.
            b => return Err(crate::Error::at(ErrorKind::InvalidBool(b), at)),
        };
        Ok(())
    }
}

/// Integers: big-endian, with bulk conversions for slices (one bounds check, then a
/// straight-line byte swap over the contiguous input instead of a call per element).
macro_rules! int_field {
    ($($ty:ty => $info:literal, $read:ident, $write:ident, $put:ident;)*) => {$(
        impl VmStateField for $ty {
            const FIELD_TYPE: FieldType = FieldType::scalar($info, std::mem::size_of::<$ty>());

            scalar_codec!($read, $write);

            scalar_elements!();

            #[inline]
            fn save_slice<B: BufMut>(items: &[Self], w: &mut Writer<B>) -> Result<()> {
                const SIZE: usize = std::mem::size_of::<$ty>();
                let total = items.len() * SIZE;
                w.reserve(total)?;
                let buf = w.get_mut();
                for v in items {
                    buf.$put(*v);
                }
                Ok(())
            }

            #[inline]
            fn load_slice<B: Buf>(items: &mut [Self], r: &mut Reader<B>) -> Result<()> {
                const SIZE: usize = std::mem::size_of::<$ty>();
                let total = items.len() * SIZE;
                r.require(total)?;
                let contiguous = r.with_contiguous(total, |bytes| {
                    for (v, src) in items.iter_mut().zip(bytes.chunks_exact(SIZE)) {
                        let mut be = [0u8; SIZE];
                        be.copy_from_slice(src);
                        *v = <$ty>::from_be_bytes(be);
                    }
                });
                if contiguous.is_none() {
                    // Input split across chunks: element by element (still bounds-checked once).
                    for v in items.iter_mut() {
                        *v = r.$read()?;
                    }
                }
                Ok(())
            }
        }
    )*};
}

int_field! {
    u16 => "uint16", read_u16, write_u16, put_u16;
    u32 => "uint32", read_u32, write_u32, put_u32;
    u64 => "uint64", read_u64, write_u64, put_u64;
    i16 => "int16", read_i16, write_i16, put_i16;
    i32 => "int32", read_i32, write_i32, put_i32;
    i64 => "int64", read_i64, write_i64, put_i64;
}

/// The one-byte integers: one `read_*`/`write_*` per value; `u8` slices are
/// also copied in bulk (`extra` items).
macro_rules! byte_field {
    ($($ty:ty => $info:literal, $read:ident, $write:ident { $($extra:item)* })*) => {$(
        impl VmStateField for $ty {
            const FIELD_TYPE: FieldType = FieldType::scalar($info, 1);

            scalar_elements!();

            scalar_codec!($read, $write);

            $($extra)*
        }
    )*};
}

byte_field! {
    u8 => "uint8", read_u8, write_u8 {
        #[inline]
        fn save_slice<B: BufMut>(items: &[Self], w: &mut Writer<B>) -> Result<()> {
            w.write_bytes(items)
        }

        #[inline]
        fn load_slice<B: Buf>(items: &mut [Self], r: &mut Reader<B>) -> Result<()> {
            r.read_bytes(items)
        }
    }
    i8 => "int8", read_i8, write_i8 {}
}

/// `[T; N]`: N elements back to back, no count on the wire (VMS_ARRAY).
impl<T: VmStateField, const N: usize> VmStateField for [T; N] {
    const FIELD_TYPE: FieldType = FieldType {
        array_len: Some(
            N * match T::FIELD_TYPE.array_len {
                Some(inner) => inner,
                None => 1,
            },
        ),
        ..T::FIELD_TYPE
    };

    #[inline]
    fn save_field<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        T::save_slice(self, w)
    }

    #[inline]
    fn load_field<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
        T::load_slice(self, r)
    }

    #[inline]
    fn save_field_with<B: BufMut, S: DescribeSink + ?Sized>(
        &self,
        w: &mut Writer<B>,
        sink: &mut S,
    ) -> Result<()> {
        T::save_slice_with(self, w, sink)
    }
}

/// `Box<T>`: the pointed-to value (VMS_POINTER / STRUCT_POINTER); nothing is
/// written for the pointer itself.
impl<T: VmStateField> VmStateField for Box<T> {
    const FIELD_TYPE: FieldType = T::FIELD_TYPE;

    #[inline]
    fn save_field<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        (**self).save_field(w)
    }

    #[inline]
    fn load_field<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
        (**self).load_field(r)
    }

    #[inline]
    fn save_field_with<B: BufMut, S: DescribeSink + ?Sized>(
        &self,
        w: &mut Writer<B>,
        sink: &mut S,
    ) -> Result<()> {
        (**self).save_field_with(w, sink)
    }
}

/// `Option<Box<T>>`: an element of an array of pointers (VMS_ARRAY_OF_POINTER).
/// `None` is written as the single byte 0x30. As in QEMU, the destination's own
/// state decides what to expect: a `None` slot requires the marker, a `Some` slot
/// loads the pointee's body.
impl<T: VmStateField> VmStateField for Option<Box<T>> {
    // Not fixed-size: a NULL slot is one marker byte, whatever T's size.
    const FIELD_TYPE: FieldType = FieldType {
        size: None,
        ..T::FIELD_TYPE
    };

    #[inline]
    fn save_field<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        match self {
            Some(v) => v.save_field(w),
            None => w.write_u8(NULLPTR_MARKER),
        }
    }

    #[inline]
    fn save_field_with<B: BufMut, S: DescribeSink + ?Sized>(
        &self,
        w: &mut Writer<B>,
        sink: &mut S,
    ) -> Result<()> {
        match self {
            Some(v) => v.save_field_with(w, sink),
            None => w.write_u8(NULLPTR_MARKER),
        }
    }

    #[inline]
    fn load_field<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
        match self {
            Some(v) => v.load_field(r),
            None => {
                let at = r.position();
                match r.read_u8()? {
                    NULLPTR_MARKER => Ok(()),
                    b => Err(crate::Error::at(ErrorKind::BadNullMarker(b), at)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save<T: VmStateField>(v: &T) -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        v.save_field(&mut w).unwrap();
        w.into_inner()
    }

    fn load<T: VmStateField>(v: &mut T, bytes: &[u8]) -> Result<usize> {
        let mut r = Reader::new(bytes);
        v.load_field(&mut r)?;
        Ok(r.remaining())
    }

    #[test]
    fn scalars_are_big_endian() {
        assert_eq!(save(&0x1234u16), [0x12, 0x34]);
        assert_eq!(save(&-2i32), [0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(save(&1u64), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(save(&true), [1]);
        let mut v = 0i16;
        load(&mut v, &[0x80, 0x00]).unwrap();
        assert_eq!(v, i16::MIN);
    }

    #[test]
    fn bool_rejects_other_bytes() {
        let mut b = false;
        let e = load(&mut b, &[2]).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidBool(2)));
        assert_eq!(e.offset(), Some(0));
    }

    #[test]
    fn int_arrays_bulk_roundtrip() {
        let a: [u32; 300] = std::array::from_fn(|i| (i as u32).wrapping_mul(0x0101_0101));
        let bytes = save(&a);
        assert_eq!(bytes.len(), 1200);
        assert_eq!(&bytes[4..8], &[1, 1, 1, 1]);
        let mut b = [0u32; 300];
        assert_eq!(load(&mut b, &bytes).unwrap(), 0);
        assert_eq!(a, b);
        let mut c = [0u32; 300];
        assert!(load(&mut c, &bytes[..1199]).is_err());
        assert_eq!(<[[u16; 3]; 4]>::FIELD_TYPE.array_len, Some(12));
    }

    #[test]
    fn null_pointer_marker() {
        let arr: [Option<Box<u16>>; 3] = [Some(Box::new(5)), None, Some(Box::new(6))];
        let bytes = save(&arr);
        assert_eq!(bytes, [0, 5, 0x30, 0, 6]);
        let mut back: [Option<Box<u16>>; 3] = [Some(Box::new(0)), None, Some(Box::new(0))];
        load(&mut back, &bytes).unwrap();
        assert_eq!(back, arr);
        let e = load(&mut back, &[0, 5, 0x31, 0, 6]).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::BadNullMarker(0x31)));
        assert_eq!(e.path_string(), "[1]");
        assert_eq!(e.offset(), Some(2));
    }
}
