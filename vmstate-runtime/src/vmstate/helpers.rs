//! Small functions the generated code calls instead of inlining large bodies
//! (keeps expansion small and compile times short). Public only through
//! `vmstate_runtime::__private`; not a stable API.

use bytes::{Buf, BufMut};

use super::{check_version, VmState, VmStateField, VmStateTmp};
use crate::error::{BoxError, Error, ErrorKind, PathSegment, Result};
use crate::wire::{Reader, Writer};

/// QEMU_VM_SUBSECTION.
pub const SUBSECTION_MARKER: u8 = 0x05;
/// Timer value meaning "not armed".
pub const TIMER_DISARMED: u64 = u64::MAX;

/// Converts a hook's result.
#[inline]
pub fn hook<E: Into<BoxError>>(name: &'static str, r: std::result::Result<(), E>) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) => Err(hook_error(name, e.into())),
    }
}

#[cold]
fn hook_error(name: &'static str, e: BoxError) -> Error {
    // A hook that already returns our own error keeps its kind and location.
    match e.downcast::<Error>() {
        Ok(ours) => ours.within(PathSegment::Field(name)),
        Err(other) => Error::hook(name, other),
    }
}

/// Checks the version and runs the load-side prologue.
#[inline]
pub fn load_prologue(desc: &'static super::VmStateDescription, version_id: u32) -> Result<()> {
    check_version(desc, version_id)
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

/// Saves the first `count` elements of a fixed array (VARRAY over an array).
#[inline]
pub fn save_varray_array<T: VmStateField, B: BufMut>(
    items: &[T],
    count: i64,
    max: usize,
    w: &mut Writer<B>,
) -> Result<()> {
    let n = self::count(count, max.min(items.len()), w.position())?;
    T::save_slice(&items[..n], w)
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

/// Saves a vector whose length must equal its count field.
#[inline]
pub fn save_varray_vec<T: VmStateField, B: BufMut>(
    items: &[T],
    count: i64,
    max: usize,
    w: &mut Writer<B>,
) -> Result<()> {
    check_vec_count(items.len(), count, max, w.position())?;
    T::save_slice(items, w)
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
pub const fn bitmap_words(bits: usize) -> usize {
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

/// Integers usable with `equal`.
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
        w.write_u8(1)?;
        item.save(w).map_err(|e| e.in_index(i))?;
    }
    w.write_u8(0)
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
            0 => return Ok(()),
            1 => {
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

/// Saves a with_tmp view built from the parent.
#[inline]
pub fn save_tmp<T: VmStateTmp<P>, P, B: BufMut>(parent: &P, w: &mut Writer<B>) -> Result<()> {
    let tmp = T::from_parent(parent).map_err(|e| e.within(PathSegment::Field("from_parent")))?;
    tmp.save(w)
}

/// Loads a with_tmp view and applies it to the parent.
#[inline]
pub fn load_tmp<T: VmStateTmp<P>, P, B: Buf>(parent: &mut P, r: &mut Reader<B>) -> Result<()> {
    let mut tmp =
        T::from_parent(parent).map_err(|e| e.within(PathSegment::Field("from_parent")))?;
    tmp.load(r, T::DESCRIPTION.version_id)?;
    tmp.into_parent(parent)
        .map_err(|e| e.within(PathSegment::Field("into_parent")))
}

/// Writes a subsection header: 0x05, name length, name, be32 version.
#[inline]
pub fn save_subsection<T: VmState, B: BufMut>(v: &T, w: &mut Writer<B>) -> Result<()> {
    let desc = T::DESCRIPTION;
    w.write_u8(SUBSECTION_MARKER)?;
    w.write_counted_bytes(desc.name.as_bytes())?;
    w.write_u32(desc.version_id)?;
    v.save(w)
        .map_err(|e| e.within(PathSegment::Subsection(desc.name.into())))
}

/// Writes a subsection (header + body), reporting its body to `sink` (vmdesc).
#[inline]
pub fn save_subsection_described<T: VmState, B: BufMut>(
    v: &T,
    w: &mut Writer<B>,
    sink: &mut dyn super::DescribeSink,
) -> Result<()> {
    let desc = T::DESCRIPTION;
    w.write_u8(SUBSECTION_MARKER)?;
    w.write_counted_bytes(desc.name.as_bytes())?;
    w.write_u32(desc.version_id)?;
    v.save_described(w, sink)
        .map_err(|e| e.within(PathSegment::Subsection(desc.name.into())))
}

/// Starts describing field `index` of `desc`; `count` is a variable array's
/// element count at save time (fixed arrays take their length from the layout).
#[inline]
pub fn begin_described_field(
    sink: &mut dyn super::DescribeSink,
    desc: &'static super::VmStateDescription,
    index: usize,
    count: Option<usize>,
) {
    let Some(field) = desc.fields.get(index) else {
        return;
    };
    // QEMU names repeated field names `name[k]`, k counting the vmsd's fields of
    // that name (written or not).
    let same = desc.fields.iter().filter(|f| f.name == field.name).count();
    let duplicate_index = (same > 1).then(|| {
        desc.fields[..index]
            .iter()
            .filter(|f| f.name == field.name)
            .count()
    });
    let elements = count.or(match field.layout {
        super::FieldLayout::Array { len } => Some(len),
        _ => None,
    });
    sink.begin_field(super::FieldStart {
        field,
        duplicate_index,
        elements,
    });
}

/// [`save_varray_vec`], reporting array-of-struct elements to `sink`.
pub fn save_varray_vec_described<T: VmStateField, B: BufMut>(
    items: &[T],
    count: i64,
    max: usize,
    w: &mut Writer<B>,
    sink: &mut dyn super::DescribeSink,
) -> Result<()> {
    check_vec_count(items.len(), count, max, w.position())?;
    T::save_slice_described(items, w, sink)
}

/// [`save_varray_array`], reporting array-of-struct elements to `sink`.
pub fn save_varray_array_described<T: VmStateField, B: BufMut>(
    items: &[T],
    count: i64,
    max: usize,
    w: &mut Writer<B>,
    sink: &mut dyn super::DescribeSink,
) -> Result<()> {
    let n = self::count(count, max.min(items.len()), w.position())?;
    T::save_slice_described(&items[..n], w, sink)
}

/// A subsection header found in the stream and matched against the parent's
/// subsection names.
#[derive(Debug, Clone, Copy)]
pub struct SubsectionHeader {
    /// Index of the matching name in the candidate list.
    pub index: usize,
    /// The version, truncated to 8 bits exactly as QEMU's loader does.
    pub version_id: u32,
}

/// How the bytes at the read position relate to a parent's subsections.
enum Peeked {
    /// Not a subsection header carrying the parent's prefix: leave it alone.
    NotOurs,
    /// The candidate at this index; the header (without version) is `len` bytes.
    Known { index: usize, header_len: usize },
    /// Our prefix but no such subsection.
    Unknown(String),
}

/// Byte-string equality without a libc call: subsection names are short, and a
/// call to `memcmp` costs more than comparing them word by word.
#[inline(always)]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        if x != y {
            return false;
        }
    }
    ca.remainder()
        .iter()
        .zip(cb.remainder())
        .all(|(x, y)| x == y)
}

/// Classifies a header from contiguous bytes (QEMU's `vmstate_subsection_load`
/// peek rules: marker, length >= parent name + 1, whole name present, prefix).
#[inline(always)]
fn classify(parent: &str, candidates: &[&str], bytes: &[u8]) -> Peeked {
    if bytes.len() < 2 || bytes[0] != SUBSECTION_MARKER {
        return Peeked::NotOurs;
    }
    let len = bytes[1] as usize;
    if len < parent.len() + 1 || bytes.len() < 2 + len {
        return Peeked::NotOurs;
    }
    let name = &bytes[2..2 + len];
    // Every candidate carries the parent's prefix (checked at compile time), so an
    // exact match settles it; the prefix only matters for names we do not know.
    if let Some(index) = candidates.iter().position(|c| short_eq(c.as_bytes(), name)) {
        return Peeked::Known {
            index,
            header_len: 2 + len,
        };
    }
    if name.starts_with(parent.as_bytes()) {
        Peeked::Unknown(String::from_utf8_lossy(name).into_owned())
    } else {
        Peeked::NotOurs
    }
}

/// Looks for the next subsection of `parent` among `candidates` (the names of the
/// parent's subsections). Returns `None` without consuming anything when the next
/// bytes are not a subsection header carrying the parent's name as prefix; fails
/// for a header with that prefix naming none of the candidates (QEMU: -ENOENT).
#[inline]
pub fn next_subsection<B: Buf>(
    parent: &'static str,
    candidates: &[&'static str],
    r: &mut Reader<B>,
) -> Result<Option<SubsectionHeader>> {
    // Fast path: most bodies are not followed by a subsection.
    if r.peek_u8() != Some(SUBSECTION_MARKER) {
        return Ok(None);
    }
    next_subsection_slow(parent, candidates, r)
}

#[inline]
fn next_subsection_slow<B: Buf>(
    parent: &'static str,
    candidates: &[&'static str],
    r: &mut Reader<B>,
) -> Result<Option<SubsectionHeader>> {
    let chunk = r.chunk();
    let peeked = if chunk.len() >= 2 && chunk.len() >= 2 + chunk[1] as usize {
        // The whole header is in the current chunk (the common case).
        classify(parent, candidates, chunk)
    } else {
        // Split across buffer chunks, or a stream reader that must pull it in first;
        // a header is at most 2 + 255 bytes and is always followed by more data.
        let mut head = [0u8; 2];
        if r.ensure(2) && r.peek_into(&mut head) == 2 && head[0] == SUBSECTION_MARKER {
            r.ensure(2 + head[1] as usize);
        }
        let mut scratch = [0u8; 2 + 255];
        let n = r.peek_into(&mut scratch);
        classify(parent, candidates, &scratch[..n])
    };
    let offset = r.position();
    match peeked {
        Peeked::NotOurs => Ok(None),
        Peeked::Unknown(name) => Err(Error::at(ErrorKind::UnknownSubsection { name }, offset)),
        Peeked::Known { index, header_len } => {
            r.skip(header_len)?;
            // QEMU keeps the version in a uint8_t: a be32 version is truncated mod 256.
            let version_id = r.read_u32()? & 0xff;
            Ok(Some(SubsectionHeader { index, version_id }))
        }
    }
}

/// Loads a subsection body whose header was matched.
#[inline]
pub fn load_subsection<T: VmState, B: Buf>(
    v: &mut T,
    header: SubsectionHeader,
    r: &mut Reader<B>,
) -> Result<()> {
    v.load(r, header.version_id)
        .map_err(|e| e.within(PathSegment::Subsection(T::DESCRIPTION.name.into())))
}

/// Fails a `validate` check.
#[cold]
pub fn validation_failed(check: &'static str, at: u64) -> Error {
    Error::at(ErrorKind::ValidationFailed { check }, at)
}

/// Compile-time string equality (for duplicate subsection-name checks).
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Compile-time prefix check (a subsection name must start with its parent's name,
/// or QEMU's loader will not recognise it).
pub const fn str_starts_with(s: &str, prefix: &str) -> bool {
    let (s, p) = (s.as_bytes(), prefix.as_bytes());
    if p.len() >= s.len() {
        return false;
    }
    let mut i = 0;
    while i < p.len() {
        if s[i] != p[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Asserts at compile time that a type implements [`VmState`] (for subsections).
#[diagnostic::on_unimplemented(
    message = "subsection type `{Self}` does not implement `VmState`",
    label = "a subsection must be a type with its own VMState description",
    note = "add #[derive(VmState)] with its own #[vmstate(name = \"parent/child\")] to `{Self}`"
)]
pub trait IsVmState: VmState {}
impl<T: VmState> IsVmState for T {}

/// Type-checks that `T` is a subsection type.
pub const fn assert_subsection<T: IsVmState>() {}

/// Type-checks that `T` is a field type.
pub const fn assert_field<T: VmStateField>() {}

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
    fn next_subsection_peek_rules() {
        const SUBS: &[&str] = &["pckbd_outport", "pckbd/extended_state"];
        // Not 0x05: nothing consumed.
        let mut r = Reader::new(&[0x7eu8, 0, 0, 0, 1][..]);
        assert!(next_subsection("pckbd", SUBS, &mut r).unwrap().is_none());
        assert_eq!(r.position(), 0);
        // Foreign prefix: nothing consumed.
        let mut bytes = vec![5u8, 9];
        bytes.extend_from_slice(b"other/xyz");
        bytes.extend_from_slice(&[0, 0, 0, 1]);
        let mut r = Reader::new(&bytes[..]);
        assert!(next_subsection("pckbd", SUBS, &mut r).unwrap().is_none());
        assert_eq!(r.position(), 0);
        // Name shorter than parent + 1: not a subsection of ours.
        let mut r = Reader::new(&b"\x05\x05pckbd\x00\x00\x00\x01"[..]);
        assert!(next_subsection("pckbd", SUBS, &mut r).unwrap().is_none());
        // Truncated name: not consumed.
        let mut r = Reader::new(&b"\x05\x0dpckbd_out"[..]);
        assert!(next_subsection("pckbd", SUBS, &mut r).unwrap().is_none());
        // Ours, version truncated to u8.
        let mut bytes = vec![5u8, 13];
        bytes.extend_from_slice(b"pckbd_outport");
        bytes.extend_from_slice(&[0, 0, 1, 2]);
        let mut r = Reader::new(&bytes[..]);
        let h = next_subsection("pckbd", SUBS, &mut r).unwrap().unwrap();
        assert_eq!((h.index, h.version_id), (0, 2));
        assert_eq!(r.remaining(), 0);
        // Our prefix, unknown name: error at the marker's offset.
        let mut bytes = vec![0u8, 5, 11];
        bytes.extend_from_slice(b"pckbd/bogus");
        bytes.extend_from_slice(&[0, 0, 0, 1]);
        let mut r = Reader::new(&bytes[..]);
        r.skip(1).unwrap();
        let e = next_subsection("pckbd", SUBS, &mut r).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::UnknownSubsection { name } if name == "pckbd/bogus"));
        assert_eq!(e.offset(), Some(1));
        // Split across chunks: still recognised.
        let mut head = vec![5u8, 20];
        head.extend_from_slice(b"pckbd/ext");
        let mut tail = b"ended_state".to_vec();
        tail.extend_from_slice(&[0, 0, 0, 0]);
        let mut r = Reader::new(bytes::Buf::chain(&head[..], &tail[..]));
        let h = next_subsection("pckbd", SUBS, &mut r).unwrap().unwrap();
        assert_eq!((h.index, h.version_id), (1, 0));
    }

    #[test]
    fn const_string_helpers() {
        assert!(str_eq("a/b", "a/b"));
        assert!(!str_eq("a/b", "a/c"));
        assert!(str_starts_with("pckbd/x", "pckbd"));
        assert!(!str_starts_with("pckbd", "pckbd"));
        assert!(!str_starts_with("ps2", "pckbd"));
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
