//! The encodings an attribute selects, beyond a type's own `VmStateField`:
//! variable arrays and buffers (`varray`, `vbuffer`), bitmaps, lists, timers,
//! `equal`, `positive_le`, padding, nested structs; with the QEMU info name each
//! is described by. Public only through `vmstate_runtime::__private` (the
//! derive's output calls them); not a stable API.

use bytes::{Buf, BufMut};

use super::{DescribeSink, FieldType, VmState, VmStateDescription, VmStateField};
use crate::error::{Error, ErrorKind, Result};
use crate::savevm::format::{LIST_ELEMENT_MARKER, LIST_END_MARKER, TIMER_DISARMED};
use crate::wire::{Reader, Writer};

// QEMU's info names for the encodings that are not a Rust type's own (those come
// from the type's `VmStateField::FIELD_TYPE`).

/// `#[vmstate(timer)]`: QEMU's `timer` info, a be64 expiry.
pub const TIMER_TYPE: FieldType = FieldType::scalar("timer", 8);
/// `#[vmstate(bitmap(..))]`: be64 words.
pub const BITMAP_TYPE: FieldType = FieldType::scalar("bitmap", 8);
/// `#[vmstate(positive_le)]`: QEMU's `int32 le` info.
pub const POSITIVE_LE_TYPE: FieldType = FieldType::scalar("int32 le", 4);
/// `#[vmstate(skip)]`: not on the wire.
pub const SKIPPED_TYPE: FieldType = FieldType::scalar("skipped", 0);
/// The stand-in impl of a type whose derive failed (never on any wire).
pub const INVALID_TYPE: FieldType = FieldType::scalar("invalid", 0);

/// `#[vmstate(buffer)]`, `vbuffer`: an opaque byte buffer of `size` bytes per element.
pub const fn buffer_type(size: usize) -> FieldType {
    FieldType::scalar("buffer", size)
}

/// `#[vmstate(unused = n)]`: QEMU's `unused_buffer` info.
pub const fn unused_type(size: usize) -> FieldType {
    FieldType::scalar("unused_buffer", size)
}

/// `#[vmstate(equal)]` on a field of type `ty`: QEMU's `<int> equal` infos.
pub const fn equal_type(ty: FieldType) -> FieldType {
    ty.with_info(match ty.info.as_bytes() {
        b"uint8" => "uint8 equal",
        b"uint16" => "uint16 equal",
        b"uint32" => "uint32 equal",
        b"int32" => "int32 equal",
        // QEMU names its uint64 equal info "int64 equal".
        _ => "int64 equal",
    })
}

/// `#[vmstate(list)]` of elements described by `elem`: QEMU's `qtailq` info.
pub const fn list_type(elem: &'static VmStateDescription) -> FieldType {
    FieldType {
        info: "qtailq",
        size: None,
        array_len: None,
        nested: Some(elem),
    }
}

/// A nested struct described by `desc` (VMS_STRUCT).
pub const fn struct_type(desc: &'static VmStateDescription) -> FieldType {
    FieldType {
        info: "struct",
        size: desc.fixed_body_size(),
        array_len: None,
        nested: Some(desc),
    }
}

/// Validates a count read from the stream: non-negative and at most `max`.
#[inline(always)]
pub fn count(count: i64, max: usize, at: u64) -> Result<usize> {
    if count < 0 || count as u64 > max as u64 {
        return Err(count_error(count, max, at));
    }
    Ok(count as usize)
}

#[cold]
fn count_error(count: i64, max: usize, at: u64) -> Error {
    Error::at(
        ErrorKind::CountOutOfRange {
            count,
            max: max as u64,
        },
        at,
    )
}

/// Saves the first `count` elements of a fixed array (VARRAY over an array),
/// reporting array-of-struct elements to `sink`.
#[inline]
pub fn save_varray_array<T: VmStateField, B: BufMut, S: DescribeSink + ?Sized>(
    items: &[T],
    count: i64,
    max: usize,
    w: &mut Writer<B>,
    sink: &mut S,
) -> Result<()> {
    let n = self::count(count, max.min(items.len()), w.position())?;
    T::save_slice_with(&items[..n], w, sink)
}

/// Loads `count` elements into the front of a fixed array.
#[inline]
pub fn load_varray_array<T: VmStateField, B: Buf>(
    items: &mut [T],
    count: i64,
    max: usize,
    r: &mut Reader<B>,
) -> Result<()> {
    let n = self::count(count, max.min(items.len()), r.position())?;
    T::load_slice(&mut items[..n], r)
}

/// Saves a vector whose length must equal its count field, reporting
/// array-of-struct elements to `sink`.
#[inline]
pub fn save_varray_vec<T: VmStateField, B: BufMut, S: DescribeSink + ?Sized>(
    items: &[T],
    count: i64,
    max: usize,
    w: &mut Writer<B>,
    sink: &mut S,
) -> Result<()> {
    check_vec_count(items.len(), count, max, w.position())?;
    T::save_slice_with(items, w, sink)
}

/// On save, a vector's count field must be within `max` (a count our own loader
/// would refuse must not be written) and equal to its length.
#[inline]
fn check_vec_count(len: usize, count: i64, max: usize, at: u64) -> Result<()> {
    self::count(count, max, at)?;
    if count as u64 != len as u64 {
        return Err(Error::at(
            ErrorKind::CountMismatch { count, actual: len },
            at,
        ));
    }
    Ok(())
}

/// Loads `count` elements into a vector (resized to exactly `count`).
/// The count is bounded by `max`, and for fixed-size elements the input must hold
/// all of them before anything is allocated.
#[inline]
pub fn load_varray_vec<T: VmStateField + Default, B: Buf>(
    items: &mut Vec<T>,
    count: i64,
    max: usize,
    r: &mut Reader<B>,
) -> Result<()> {
    let n = self::count(count, max, r.position())?;
    if let Some(size) = T::FIELD_TYPE.size {
        r.require(n.saturating_mul(size))?;
    }
    items.clear();
    items.resize_with(n, T::default);
    T::load_slice(items, r)
}

/// Number of be64 words of a bitmap of `bits` bits.
#[inline]
const fn bitmap_words(bits: usize) -> usize {
    bits.div_ceil(64)
}

/// Saves a bitmap (QEMU `VMSTATE_BITMAP`): ceil(bits/64) be64 words.
pub fn save_bitmap<B: BufMut>(words: &[u64], bits: i64, w: &mut Writer<B>) -> Result<()> {
    let bits = count(bits, usize::MAX / 2, w.position())?;
    let n = bitmap_words(bits);
    if words.len() < n {
        return Err(Error::at(
            ErrorKind::CountMismatch {
                count: bits as i64,
                actual: words.len() * 64,
            },
            w.position(),
        ));
    }
    u64::save_slice(&words[..n], w)
}

/// Loads a bitmap of `bits` bits (bounded by `max_bits`).
pub fn load_bitmap<B: Buf>(
    words: &mut Vec<u64>,
    bits: i64,
    max_bits: usize,
    r: &mut Reader<B>,
) -> Result<()> {
    let bits = count(bits, max_bits, r.position())?;
    load_varray_vec(words, bitmap_words(bits) as i64, bitmap_words(max_bits), r)
}

/// Saves a timer: its expiry in ns, or all ones when not armed.
#[inline]
pub fn save_timer<B: BufMut>(t: &Option<u64>, w: &mut Writer<B>) -> Result<()> {
    w.write_u64(t.unwrap_or(TIMER_DISARMED))
}

/// Loads a timer.
#[inline]
pub fn load_timer<B: Buf>(t: &mut Option<u64>, r: &mut Reader<B>) -> Result<()> {
    let v = r.read_u64()?;
    *t = (v != TIMER_DISARMED).then_some(v);
    Ok(())
}

/// Integers usable with `equal` (a bound of [`load_equal`]).
pub trait EqualField: VmStateField + Copy + PartialEq + Default {
    /// Widened for error messages.
    fn widen(self) -> i128;
}

macro_rules! equal_field {
    ($($t:ty),*) => {$(
        impl EqualField for $t {
            #[inline]
            fn widen(self) -> i128 { self as i128 }
        }
    )*};
}
equal_field!(u8, u16, u32, u64, i8, i16, i32, i64);

/// Loads an `equal` field: the stream's value must equal ours (QEMU `*_EQUAL`).
#[inline]
pub fn load_equal<T: EqualField, B: Buf>(current: &T, r: &mut Reader<B>) -> Result<()> {
    let at = r.position();
    let mut v = T::default();
    v.load_field(r)?;
    if v != *current {
        return Err(Error::at(
            ErrorKind::NotEqual {
                expected: current.widen(),
                found: v.widen(),
            },
            at,
        ));
    }
    Ok(())
}

/// Loads a `positive_le` field: 0 <= value <= current (QEMU `INT32_POSITIVE_LE`).
#[inline]
pub fn load_positive_le<B: Buf>(current: &mut i32, r: &mut Reader<B>) -> Result<()> {
    let at = r.position();
    let v = r.read_i32()?;
    if v < 0 || v > *current {
        return Err(Error::at(
            ErrorKind::NotPositiveLe {
                found: v,
                limit: *current,
            },
            at,
        ));
    }
    *current = v;
    Ok(())
}

/// Saves a list (QEMU `QTAILQ`/`QLIST`): per element 0x01 + body, then 0x00.
pub fn save_list<T: VmState, B: BufMut>(items: &[T], w: &mut Writer<B>) -> Result<()> {
    for (i, item) in items.iter().enumerate() {
        w.write_u8(LIST_ELEMENT_MARKER)?;
        item.save(w).map_err(|e| e.in_index(i))?;
    }
    w.write_u8(LIST_END_MARKER)
}

/// Loads a list, replacing the vector's contents; at most `max` elements.
pub fn load_list<T: VmState + Default, B: Buf>(
    items: &mut Vec<T>,
    max: usize,
    r: &mut Reader<B>,
) -> Result<()> {
    items.clear();
    loop {
        let at = r.position();
        match r.read_u8()? {
            LIST_END_MARKER => return Ok(()),
            LIST_ELEMENT_MARKER => {
                if items.len() >= max {
                    return Err(Error::at(ErrorKind::ListTooLong { max }, at));
                }
                let mut item = T::default();
                let i = items.len();
                item.load(r, T::DESCRIPTION.version_id)
                    .map_err(|e| e.in_index(i))?;
                items.push(item);
            }
            b => return Err(Error::at(ErrorKind::BadListMarker(b), at)),
        }
    }
}

/// Loads a field through its type's own encoding; a failure is located at the
/// field `name`.
#[inline(always)]
pub fn load_value<T: VmStateField, B: Buf>(
    value: &mut T,
    r: &mut Reader<B>,
    name: &'static str,
) -> Result<()> {
    in_field(value.load_field(r), name, r)
}

/// Locates a field's load failure at the field `name` and the read position.
#[inline(always)]
pub fn in_field<B: Buf>(result: Result<()>, name: &'static str, r: &Reader<B>) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(e.in_field(name, r.position())),
    }
}

/// Saves a nested struct (VMS_STRUCT) at its own version.
#[inline(always)]
pub fn save_struct<T: VmState, B: BufMut>(v: &T, w: &mut Writer<B>) -> Result<()> {
    v.save(w)
}

/// Loads a nested struct (VMS_STRUCT) at its own current version, as QEMU does.
#[inline(always)]
pub fn load_struct<T: VmState, B: Buf>(v: &mut T, r: &mut Reader<B>) -> Result<()> {
    v.load(r, T::DESCRIPTION.version_id)
}

/// The error for a discriminant no variant of `enum_name` has.
#[cold]
pub fn invalid_enum(enum_name: &'static str, value: impl Into<i128>, at: u64) -> Error {
    Error::at(
        ErrorKind::InvalidEnum {
            enum_name,
            value: value.into(),
        },
        at,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_bounded() {
        assert_eq!(count(3, 3, 0).unwrap(), 3);
        assert!(count(4, 3, 0).is_err());
        assert!(count(-1, 3, 0).is_err());
        let e = count(i64::from(u32::MAX), 256, 9).unwrap_err();
        assert_eq!(e.offset(), Some(9));
    }

    #[test]
    fn timers() {
        let mut w = Writer::new(Vec::new());
        save_timer(&None, &mut w).unwrap();
        save_timer(&Some(5), &mut w).unwrap();
        let bytes = w.into_inner();
        assert_eq!(&bytes[..8], &[0xff; 8]);
        let mut r = Reader::new(&bytes[..]);
        let mut t = Some(1);
        load_timer(&mut t, &mut r).unwrap();
        assert_eq!(t, None);
        load_timer(&mut t, &mut r).unwrap();
        assert_eq!(t, Some(5));
    }
}
