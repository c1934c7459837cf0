//! Bounded big-endian reads over any [`bytes::Buf`], with the offset kept for errors.

use bytes::Buf;

use crate::error::{Error, ErrorKind, Result};

/// Longest name a subsection header can carry (the length is one byte).
pub const MAX_NAME_LEN: usize = 255;

/// A big-endian reader over a [`Buf`] that never panics and knows its byte offset.
///
/// Every read checks that enough bytes remain and otherwise returns
/// [`ErrorKind::Truncated`] at the current offset. The offset counts from the
/// reader's creation (plus an optional base, so a reader over one section of a
/// stream can report stream offsets).
///
/// ```
/// use vmstate_runtime::wire::Reader;
///
/// let mut r = Reader::new(&[0x12, 0x34, 0x56][..]);
/// assert_eq!(r.read_u16().unwrap(), 0x1234);
/// assert_eq!(r.position(), 2);
/// let err = r.read_u16().unwrap_err();
/// assert_eq!(err.offset(), Some(2));
/// ```
#[derive(Debug)]
pub struct Reader<B> {
    buf: B,
    pos: u64,
}

impl<B: Buf> Reader<B> {
    /// A reader at offset 0.
    pub fn new(buf: B) -> Self {
        Reader { buf, pos: 0 }
    }

    /// A reader whose offsets start at `base` (e.g. the section's stream offset).
    pub fn with_base_offset(buf: B, base: u64) -> Self {
        Reader { buf, pos: base }
    }

    /// Byte offset of the next read.
    #[inline]
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Bytes left in the underlying buffer.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.remaining()
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> B {
        self.buf
    }

    /// A shared reference to the underlying buffer.
    pub fn get_ref(&self) -> &B {
        &self.buf
    }

    #[cold]
    #[inline(never)]
    fn truncated(&self, needed: usize) -> Error {
        Error::at(
            ErrorKind::Truncated {
                needed,
                available: self.buf.remaining(),
            },
            self.pos,
        )
    }

    /// Fails unless `n` bytes remain.
    #[inline(always)]
    pub fn require(&self, n: usize) -> Result<()> {
        if self.buf.remaining() < n {
            return Err(self.truncated(n));
        }
        Ok(())
    }

    /// Reads one byte.
    #[inline(always)]
    pub fn read_u8(&mut self) -> Result<u8> {
        self.require(1)?;
        self.pos += 1;
        Ok(self.buf.get_u8())
    }

    /// Reads a be16.
    #[inline(always)]
    pub fn read_u16(&mut self) -> Result<u16> {
        self.require(2)?;
        self.pos += 2;
        Ok(self.buf.get_u16())
    }

    /// Reads a be32.
    #[inline(always)]
    pub fn read_u32(&mut self) -> Result<u32> {
        self.require(4)?;
        self.pos += 4;
        Ok(self.buf.get_u32())
    }

    /// Reads a be64.
    #[inline(always)]
    pub fn read_u64(&mut self) -> Result<u64> {
        self.require(8)?;
        self.pos += 8;
        Ok(self.buf.get_u64())
    }

    /// Reads one signed byte.
    #[inline(always)]
    pub fn read_i8(&mut self) -> Result<i8> {
        self.read_u8().map(|v| v as i8)
    }

    /// Reads a signed be16.
    #[inline(always)]
    pub fn read_i16(&mut self) -> Result<i16> {
        self.read_u16().map(|v| v as i16)
    }

    /// Reads a signed be32.
    #[inline(always)]
    pub fn read_i32(&mut self) -> Result<i32> {
        self.read_u32().map(|v| v as i32)
    }

    /// Reads a signed be64.
    #[inline(always)]
    pub fn read_i64(&mut self) -> Result<i64> {
        self.read_u64().map(|v| v as i64)
    }

    /// Fills `dst` with the next `dst.len()` bytes (one bounds check, bulk copy).
    #[inline]
    pub fn read_bytes(&mut self, dst: &mut [u8]) -> Result<()> {
        self.require(dst.len())?;
        self.pos += dst.len() as u64;
        self.buf.copy_to_slice(dst);
        Ok(())
    }

    /// Skips `n` bytes.
    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.require(n)?;
        self.pos += n as u64;
        self.buf.advance(n);
        Ok(())
    }

    /// Copies up to `dst.len()` upcoming bytes into `dst` without consuming them;
    /// returns how many were available. Works across non-contiguous buffers whose
    /// `Buf::chunks_vectored` returns all their chunks (as `bytes`' own types do).
    pub fn peek_into(&self, dst: &mut [u8]) -> usize {
        let chunk = self.buf.chunk();
        if chunk.len() >= dst.len() {
            dst.copy_from_slice(&chunk[..dst.len()]);
            return dst.len();
        }
        // Every non-empty chunk holds at least one byte, so `dst.len()` slices always
        // suffice (a fixed 16 would miss bytes of a header split into many chunks).
        const ON_STACK: usize = 2 + MAX_NAME_LEN;
        let mut stack = [std::io::IoSlice::new(&[]); ON_STACK];
        let mut heap = Vec::new();
        let slices = if dst.len() <= ON_STACK {
            &mut stack[..dst.len()]
        } else {
            heap.resize(dst.len(), std::io::IoSlice::new(&[]));
            &mut heap[..]
        };
        let n = self.buf.chunks_vectored(slices);
        let mut copied = 0;
        for s in &slices[..n] {
            let take = s.len().min(dst.len() - copied);
            dst[copied..copied + take].copy_from_slice(&s[..take]);
            copied += take;
            if copied == dst.len() {
                break;
            }
        }
        copied
    }

    /// Peeks at one byte without consuming it.
    #[inline]
    pub fn peek_u8(&self) -> Option<u8> {
        self.buf.chunk().first().copied().or_else(|| {
            let mut b = [0u8; 1];
            (self.peek_into(&mut b) == 1).then_some(b[0])
        })
    }

    /// Reads `n` bytes and returns them as an owned vector, after checking that
    /// `n` bytes are actually present (so a hostile length cannot make us
    /// allocate more than the input holds).
    pub fn read_vec(&mut self, n: usize) -> Result<Vec<u8>> {
        self.require(n)?;
        let mut v = vec![0u8; n];
        self.read_bytes(&mut v)?;
        Ok(v)
    }

    /// Reads a counted string (one length byte, then that many bytes), as QEMU's
    /// `qemu_get_counted_string`. Returns the bytes in a fixed buffer and the length.
    pub fn read_counted_bytes(&mut self) -> Result<CountedName> {
        let len = self.read_u8()? as usize;
        let mut name = CountedName {
            bytes: [0; MAX_NAME_LEN],
            len: len as u8,
        };
        self.read_bytes(&mut name.bytes[..len])?;
        Ok(name)
    }
}

/// A name of at most 255 bytes held inline (no allocation), as read from a
/// one-byte-length-prefixed string on the wire.
#[derive(Clone, Copy)]
pub struct CountedName {
    bytes: [u8; MAX_NAME_LEN],
    len: u8,
}

impl CountedName {
    /// The name's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The name as text (lossy: the wire does not promise UTF-8).
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

impl std::fmt::Debug for CountedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian() {
        let data = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
        let mut r = Reader::new(&data[..]);
        assert_eq!(r.read_u8().unwrap(), 1);
        assert_eq!(r.read_u16().unwrap(), 0x0203);
        assert_eq!(r.read_u32().unwrap(), 0x0405_0607);
        assert_eq!(r.read_u64().unwrap(), 0x0809_0a0b_0c0d_0e0f);
        assert_eq!(r.position(), 15);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn truncation_reports_offset_and_sizes() {
        let mut r = Reader::with_base_offset(&[0xffu8, 0xff, 0xff][..], 100);
        r.read_u8().unwrap();
        let e = r.read_u32().unwrap_err();
        assert_eq!(e.offset(), Some(101));
        assert!(matches!(
            e.kind(),
            ErrorKind::Truncated {
                needed: 4,
                available: 2
            }
        ));
        // A failed read consumes nothing.
        assert_eq!(r.read_u16().unwrap(), 0xffff);
    }

    #[test]
    fn peek_across_chunks() {
        let a = &[1u8, 2][..];
        let b = &[3u8, 4, 5][..];
        let r = Reader::new(a.chain(b));
        let mut dst = [0u8; 4];
        assert_eq!(r.peek_into(&mut dst), 4);
        assert_eq!(dst, [1, 2, 3, 4]);
        let mut big = [0u8; 10];
        assert_eq!(r.peek_into(&mut big), 5);
        assert_eq!(r.peek_u8(), Some(1));
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        let mut r = Reader::new(&[0u8; 3][..]);
        assert!(r.read_vec(usize::MAX).is_err());
        assert!(r.skip(4).is_err());
        assert_eq!(r.remaining(), 3);
    }

    #[test]
    fn counted_name() {
        let mut r = Reader::new(&b"\x03abcX"[..]);
        let n = r.read_counted_bytes().unwrap();
        assert_eq!(n.as_bytes(), b"abc");
        assert_eq!(r.read_u8().unwrap(), b'X');
        let mut r = Reader::new(&b"\x05ab"[..]);
        assert!(r.read_counted_bytes().is_err());
    }
}
