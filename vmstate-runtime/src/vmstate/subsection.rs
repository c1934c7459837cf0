//! Subsections: the header written before a needed subsection's body, and on load
//! the peek that decides whether the next bytes are one of the parent's
//! subsections (QEMU's `vmstate_subsection_load` rules). Public only through
//! `vmstate_runtime::__private`; not a stable API.

use bytes::{Buf, BufMut};

use super::{DescribeSink, VmState};
use crate::error::{Error, ErrorKind, PathSegment, Result};
use crate::savevm::format::SUBSECTION_MARKER;
use crate::wire::{Reader, Writer};

/// Writes a subsection: 0x05, name length, name, be32 version, then the body,
/// reported to `sink` (vmdesc).
#[inline]
pub fn save_subsection<T: VmState, B: BufMut, S: DescribeSink + ?Sized>(
    v: &T,
    w: &mut Writer<B>,
    sink: &mut S,
) -> Result<()> {
    let desc = T::DESCRIPTION;
    w.write_u8(SUBSECTION_MARKER)?;
    w.write_counted_bytes(desc.name.as_bytes())?;
    w.write_u32(desc.version_id)?;
    v.save_with(w, sink)
        .map_err(|e| e.within(PathSegment::Subsection(desc.name.into())))
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

/// For a parent without subsections: fails if the next bytes are a subsection
/// header carrying its prefix (QEMU: -ENOENT), consumes nothing otherwise.
#[inline(always)]
pub fn no_subsections<B: Buf>(parent: &'static str, r: &mut Reader<B>) -> Result<()> {
    match next_subsection(parent, &[], r)? {
        None => Ok(()),
        Some(_) => Err(subsection_index_out_of_range()),
    }
}

/// A matched header whose index names no subsection (cannot happen with the
/// derive's candidate list; kept as an error rather than a panic).
#[cold]
pub fn subsection_index_out_of_range() -> Error {
    Error::invalid("subsection index out of range")
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
