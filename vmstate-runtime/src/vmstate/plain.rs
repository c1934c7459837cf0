//! Fixed-size plain values that can be decoded straight out of a byte slice.
//!
//! The derive groups runs of consecutive plain fields (integers, bools and arrays of
//! them, with no version or test condition) and loads each run with one bounds
//! check over the contiguous input, instead of one check and one reader update per
//! field. When the input is not contiguous, or a value is invalid (a bool byte of
//! 2), the run falls back to field-by-field loading, which reports the precise error.
//!
//! Codegen-only: public through `vmstate_runtime::__private`, not a stable API.

use bytes::BufMut;
use static_assertions::const_assert_eq;

use super::VmStateField;

/// A value with a fixed wire size that decodes from exactly that many bytes.
///
/// ```
/// use vmstate_runtime::__private::PlainField;
///
/// let mut regs = [0u16; 2];
/// assert!(regs.decode_into(&[0x12, 0x34, 0x00, 0x01]));
/// assert_eq!(regs, [0x1234, 1]);
///
/// let mut out = Vec::new();
/// regs.put_plain(&mut out);
/// assert_eq!(out, [0x12, 0x34, 0x00, 0x01]);
/// assert_eq!(<[u16; 2]>::WIRE_SIZE, 4);
/// ```
pub trait PlainField: VmStateField {
    /// Bytes on the wire.
    ///
    /// ```
    /// use vmstate_runtime::__private::PlainField;
    ///
    /// assert_eq!(u8::WIRE_SIZE, 1);
    /// assert_eq!(bool::WIRE_SIZE, 1);
    /// assert_eq!(i64::WIRE_SIZE, 8);
    /// assert_eq!(<[[u16; 3]; 2]>::WIRE_SIZE, 12);
    /// ```
    const WIRE_SIZE: usize;

    /// Decodes from `bytes` (exactly `WIRE_SIZE` long) into `self`; returns false
    /// when the bytes are not a valid value.
    ///
    /// ```
    /// use vmstate_runtime::__private::PlainField;
    ///
    /// let mut v = 0i32;
    /// assert!(v.decode_into(&[0xff, 0xff, 0xff, 0xfe]));
    /// assert_eq!(v, -2);
    ///
    /// let mut b = false;
    /// assert!(b.decode_into(&[1]) && b);
    /// assert!(!b.decode_into(&[2])); // not a valid bool
    /// ```
    fn decode_into(&mut self, bytes: &[u8]) -> bool;

    /// Writes the value straight into `buf`, which the caller has checked has room
    /// for `WIRE_SIZE` bytes.
    ///
    /// ```
    /// use vmstate_runtime::__private::PlainField;
    ///
    /// let mut out = Vec::new();
    /// 0x0102_0304u32.put_plain(&mut out);
    /// true.put_plain(&mut out);
    /// assert_eq!(out, [1, 2, 3, 4, 1]);
    /// ```
    fn put_plain<B: BufMut>(&self, buf: &mut B);

    /// Decodes a run of values from `bytes` (exactly `items.len() * WIRE_SIZE`
    /// long); bytes as one copy.
    ///
    /// ```
    /// use vmstate_runtime::__private::PlainField;
    ///
    /// let mut vals = [0u16; 3];
    /// assert!(u16::decode_slice_plain(&mut vals, &[0, 1, 0, 2, 0, 3]));
    /// assert_eq!(vals, [1, 2, 3]);
    ///
    /// let mut flags = [false; 2];
    /// assert!(!bool::decode_slice_plain(&mut flags, &[1, 9]));
    /// ```
    #[inline(always)]
    fn decode_slice_plain(items: &mut [Self], bytes: &[u8]) -> bool
    where
        Self: Sized,
    {
        let mut ok = true;
        for (v, b) in items.iter_mut().zip(bytes.chunks_exact(Self::WIRE_SIZE)) {
            ok &= v.decode_into(b);
        }
        ok
    }

    /// Writes a run of values (bytes as one copy).
    ///
    /// ```
    /// use vmstate_runtime::__private::PlainField;
    ///
    /// let mut out = Vec::new();
    /// i16::put_slice_plain(&[-1, 2], &mut out);
    /// assert_eq!(out, [0xff, 0xff, 0x00, 0x02]);
    /// ```
    #[inline(always)]
    fn put_slice_plain<B: BufMut>(items: &[Self], buf: &mut B)
    where
        Self: Sized,
    {
        for v in items {
            v.put_plain(buf);
        }
    }
}

macro_rules! plain_int {
    ($($t:ty => $put:ident),*) => {$(
        impl PlainField for $t {
            const WIRE_SIZE: usize = std::mem::size_of::<$t>();

            #[inline(always)]
            fn decode_into(&mut self, bytes: &[u8]) -> bool {
                let mut be = [0u8; std::mem::size_of::<$t>()];
                be.copy_from_slice(bytes);
                *self = <$t>::from_be_bytes(be);
                true
            }

            #[inline(always)]
            fn put_plain<B: BufMut>(&self, buf: &mut B) {
                buf.$put(*self);
            }
        }
    )*};
}
plain_int!(u16 => put_u16, u32 => put_u32, u64 => put_u64,
           i8 => put_i8, i16 => put_i16, i32 => put_i32, i64 => put_i64);

impl PlainField for u8 {
    const WIRE_SIZE: usize = 1;

    #[inline(always)]
    fn decode_into(&mut self, bytes: &[u8]) -> bool {
        *self = bytes[0];
        true
    }

    #[inline(always)]
    fn put_plain<B: BufMut>(&self, buf: &mut B) {
        buf.put_u8(*self);
    }

    #[inline(always)]
    fn put_slice_plain<B: BufMut>(items: &[Self], buf: &mut B) {
        buf.put_slice(items);
    }

    #[inline(always)]
    fn decode_slice_plain(items: &mut [Self], bytes: &[u8]) -> bool {
        items.copy_from_slice(bytes);
        true
    }
}

impl PlainField for bool {
    const WIRE_SIZE: usize = 1;

    #[inline(always)]
    fn decode_into(&mut self, bytes: &[u8]) -> bool {
        match bytes[0] {
            0 => *self = false,
            1 => *self = true,
            _ => return false,
        }
        true
    }

    #[inline(always)]
    fn put_plain<B: BufMut>(&self, buf: &mut B) {
        buf.put_u8(u8::from(*self));
    }
}

impl<T: PlainField, const N: usize> PlainField for [T; N] {
    const WIRE_SIZE: usize = T::WIRE_SIZE * N;

    #[inline(always)]
    fn decode_into(&mut self, bytes: &[u8]) -> bool {
        T::decode_slice_plain(self, bytes)
    }

    #[inline(always)]
    fn put_plain<B: BufMut>(&self, buf: &mut B) {
        T::put_slice_plain(self, buf);
    }
}

/// A run of plain values being decoded from one contiguous slice (which the
/// caller has checked holds the whole run): each [`decode`](PlainRun::decode) takes
/// the next `WIRE_SIZE` bytes; [`ok`](PlainRun::ok) says whether all were valid.
///
/// ```
/// use vmstate_runtime::__private::PlainRun;
///
/// let (mut a, mut b) = (0u16, false);
/// let mut run = PlainRun::new(&[0, 7, 1]);
/// run.decode(&mut a);
/// run.decode(&mut b);
/// assert!(run.ok());
/// assert_eq!((a, b), (7, true));
/// ```
pub struct PlainRun<'a> {
    bytes: &'a [u8],
    offset: usize,
    ok: bool,
}

impl<'a> PlainRun<'a> {
    /// A run over `bytes`.
    #[inline(always)]
    pub fn new(bytes: &'a [u8]) -> Self {
        PlainRun {
            bytes,
            offset: 0,
            ok: true,
        }
    }

    /// Decodes the next value into `value`.
    #[inline(always)]
    pub fn decode<T: PlainField>(&mut self, value: &mut T) {
        let end = self.offset + T::WIRE_SIZE;
        self.ok &= value.decode_into(&self.bytes[self.offset..end]);
        self.offset = end;
    }

    /// Whether every value decoded was valid.
    #[inline(always)]
    pub fn ok(&self) -> bool {
        self.ok
    }
}

// The facts the run code relies on, checked at compile time: a plain value's wire
// size is its in-memory size (the bulk slice paths copy `len * size_of::<T>()`
// bytes), and the description's element size says the same (the room check of a
// run and `fixed_body_size` agree).
macro_rules! wire_size_facts {
    ($($t:ty => $n:literal),*) => {$(
        const_assert_eq!(<$t as PlainField>::WIRE_SIZE, $n);
        const_assert_eq!(std::mem::size_of::<$t>(), $n);
        static_assertions::const_assert!(matches!(<$t as VmStateField>::FIELD_TYPE.size, Some($n)));
    )*};
}
wire_size_facts!(u8 => 1, i8 => 1, bool => 1, u16 => 2, i16 => 2, u32 => 4, i32 => 4, u64 => 8, i64 => 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_big_endian_and_rejects_bad_bools() {
        let mut v = 0u32;
        assert!(v.decode_into(&[1, 2, 3, 4]));
        assert_eq!(v, 0x0102_0304);
        let mut a = [0i16; 2];
        assert!(a.decode_into(&[0xff, 0xfe, 0, 1]));
        assert_eq!(a, [-2, 1]);
        let mut b = [false; 3];
        assert!(!b.decode_into(&[1, 2, 0]));
        assert_eq!(<[[u16; 3]; 2]>::WIRE_SIZE, 12);
    }
}
