//! Bounded big-endian reads over any [`bytes::Buf`], with the offset kept for errors.

use bytes::Buf;

use crate::error::{Error, ErrorKind, Result};

/// Longest name a subsection header can carry (the length is one byte); the
/// stream format's limit, re-exported here for the wire API.
///
/// ```
/// use vmstate_runtime::wire::{Reader, Writer, MAX_NAME_LEN};
///
/// let name = [b'n'; MAX_NAME_LEN];
/// let mut w = Writer::new(Vec::new());
/// w.write_counted_bytes(&name).unwrap(); // the longest name that fits
/// assert!(w.write_counted_bytes(&[b'n'; MAX_NAME_LEN + 1]).is_err());
/// let bytes = w.into_inner();
/// let read = Reader::new(&bytes[..]).read_counted_bytes().unwrap();
/// assert_eq!(read.as_bytes().len(), MAX_NAME_LEN);
/// ```
pub use crate::savevm::format::MAX_NAME_LEN;

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
pub struct Reader<B> {
    buf: B,
    /// `base + start_remaining - remaining()` is the position, computed on demand so
    /// reads do not carry a counter update (see `Writer`). A refill adds to
    /// `start_remaining` what it appends.
    base: u64,
    start_remaining: usize,
    /// Where more bytes come from when the buffer runs short (a stream transport);
    /// consulted only on the slow path.
    refill: Option<Box<dyn Refill<B>>>,
}

/// A source of more input for a [`Reader`] over a growable buffer (e.g. a socket
/// feeding a `BytesMut`). Only called when a read finds too few bytes buffered.
///
/// ```
/// use bytes::{BufMut, BytesMut};
/// use vmstate_runtime::wire::{Reader, Refill};
///
/// /// Hands out the input two bytes at a time, like a slow socket.
/// struct Trickle(Vec<u8>);
///
/// impl Refill<BytesMut> for Trickle {
///     fn refill(&mut self, buf: &mut BytesMut, min: usize) -> std::io::Result<usize> {
///         let n = min.max(2).min(self.0.len());
///         buf.put_slice(&self.0[..n]);
///         self.0.drain(..n);
///         Ok(n)
///     }
/// }
///
/// let mut r = Reader::with_refill(BytesMut::new(), 0, Box::new(Trickle(vec![0, 0, 0, 9, 1])));
/// assert_eq!(r.read_u32().unwrap(), 9);
/// assert_eq!(r.read_u8().unwrap(), 1);
/// // The source is exhausted: the next read reports truncation at offset 5.
/// assert_eq!(r.read_u8().unwrap_err().offset(), Some(5));
/// ```
///
/// A source may append fewer than `min` bytes per call (the reader calls again
/// until it has what it needs): a transport grows the buffer in bounded chunks
/// as bytes arrive, so a length the peer claims costs memory only once that many
/// bytes came. A source that fails with an `io::Error` carrying a runtime
/// [`Error`] (a timeout, a cancel) has that error reported as itself.
pub trait Refill<B>: Send {
    /// Appends at least one byte to `buf` if the source still has any (up to
    /// `min` or more as they arrive); returns how many were appended, 0 at the
    /// end of the input.
    fn refill(&mut self, buf: &mut B, min: usize) -> std::io::Result<usize>;
}

impl<B> std::fmt::Debug for Reader<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("base", &self.base)
            .field("refillable", &self.refill.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: Buf> Reader<B> {
    /// A reader at offset 0.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[1, 2][..]);
    /// assert_eq!((r.position(), r.remaining()), (0, 2));
    /// assert_eq!(r.read_u8().unwrap(), 1);
    /// ```
    pub fn new(buf: B) -> Self {
        Self::with_base_offset(buf, 0)
    }

    /// A reader whose offsets start at `base` (e.g. the section's stream offset).
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// // A reader over a section body that starts at stream offset 40.
    /// let mut r = Reader::with_base_offset(&[0xaa][..], 40);
    /// assert_eq!(r.read_u8().unwrap(), 0xaa);
    /// assert_eq!(r.read_u8().unwrap_err().offset(), Some(41));
    /// ```
    pub fn with_base_offset(buf: B, base: u64) -> Self {
        let start_remaining = buf.remaining();
        Reader {
            buf,
            base,
            start_remaining,
            refill: None,
        }
    }

    /// A reader that pulls more input from `refill` whenever the buffer runs short.
    ///
    /// ```
    /// use bytes::{BufMut, BytesMut};
    /// use vmstate_runtime::wire::{Reader, Refill};
    ///
    /// struct Once(Option<Vec<u8>>);
    /// impl Refill<BytesMut> for Once {
    ///     fn refill(&mut self, buf: &mut BytesMut, _min: usize) -> std::io::Result<usize> {
    ///         let more = self.0.take().unwrap_or_default();
    ///         buf.put_slice(&more);
    ///         Ok(more.len())
    ///     }
    /// }
    ///
    /// // Nothing is buffered yet; the first read pulls the input in.
    /// let mut r = Reader::with_refill(BytesMut::new(), 0, Box::new(Once(Some(vec![0x12, 0x34]))));
    /// assert_eq!(r.read_u16().unwrap(), 0x1234);
    /// assert!(r.read_u8().is_err());
    /// ```
    pub fn with_refill(buf: B, base: u64, refill: Box<dyn Refill<B>>) -> Self {
        let mut r = Self::with_base_offset(buf, base);
        r.refill = Some(refill);
        r
    }

    /// Tries to make `n` bytes available, refilling if the reader has a source;
    /// returns whether they are. Never fails: an I/O error just means "not available"
    /// here and is reported by the read that needs the bytes.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[1, 2, 3][..]);
    /// assert!(r.ensure(3));
    /// assert!(!r.ensure(4)); // no refill source: only what is buffered counts
    /// assert_eq!(r.remaining(), 3); // nothing consumed
    /// ```
    #[inline]
    pub fn ensure(&mut self, n: usize) -> bool {
        self.buf.remaining() >= n || (self.refill.is_some() && self.fill(n).is_ok())
    }

    #[cold]
    #[inline(never)]
    fn fill(&mut self, n: usize) -> Result<()> {
        while self.buf.remaining() < n {
            if self.refill.is_none() {
                return Err(self.truncated(n));
            }
            let want = n - self.buf.remaining();
            let at = self.position();
            let refill = self.refill.as_mut().expect("checked above");
            match refill.refill(&mut self.buf, want) {
                Ok(0) => return Err(self.truncated(n)),
                Ok(k) => self.start_remaining += k,
                Err(e) => return Err(Error::from(e).with_offset(at)),
            }
        }
        Ok(())
    }

    /// Byte offset of the next read.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[0; 8][..]);
    /// r.read_u32().unwrap();
    /// r.read_u16().unwrap();
    /// assert_eq!(r.position(), 6);
    /// ```
    #[inline]
    pub fn position(&self) -> u64 {
        self.base + (self.start_remaining - self.buf.remaining()) as u64
    }

    /// Bytes left in the underlying buffer.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[0; 5][..]);
    /// r.read_u16().unwrap();
    /// assert_eq!(r.remaining(), 3);
    /// ```
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.remaining()
    }

    /// The contiguous bytes at the read position (may be fewer than `remaining()`).
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[1, 2, 3][..]);
    /// r.read_u8().unwrap();
    /// assert_eq!(r.chunk(), [2, 3]);
    /// ```
    #[inline]
    pub fn chunk(&self) -> &[u8] {
        self.buf.chunk()
    }

    /// The underlying buffer.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[1, 2, 3][..]);
    /// r.read_u8().unwrap();
    /// let rest: &[u8] = r.into_inner();
    /// assert_eq!(rest, [2, 3]);
    /// ```
    pub fn into_inner(self) -> B {
        self.buf
    }

    /// A shared reference to the underlying buffer.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[1, 2, 3][..]);
    /// r.skip(2).unwrap();
    /// assert_eq!(*r.get_ref(), [3]);
    /// ```
    pub fn get_ref(&self) -> &B {
        &self.buf
    }

    #[cold]
    #[inline(never)]
    fn truncated(&self, needed: usize) -> Error {
        // (Refillable readers only report this once the source is exhausted.)
        Error::at(
            ErrorKind::Truncated {
                needed,
                available: self.buf.remaining(),
            },
            self.position(),
        )
    }

    /// Fails unless `n` bytes remain (after refilling, for a refillable reader).
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    /// use vmstate_runtime::ErrorKind;
    ///
    /// let mut r = Reader::new(&[1, 2][..]);
    /// assert!(r.require(2).is_ok());
    /// let err = r.require(4).unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::Truncated { needed: 4, available: 2 }));
    /// assert_eq!(r.remaining(), 2); // nothing consumed
    /// ```
    #[inline(always)]
    pub fn require(&mut self, n: usize) -> Result<()> {
        if self.buf.remaining() < n {
            return self.fill(n);
        }
        Ok(())
    }

    /// Reads one byte.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[0xfe][..]);
    /// assert_eq!(r.read_u8().unwrap(), 0xfe);
    /// assert!(r.read_u8().is_err());
    /// ```
    #[inline(always)]
    pub fn read_u8(&mut self) -> Result<u8> {
        match self.buf.chunk().first() {
            Some(&b) => {
                self.buf.advance(1);
                Ok(b)
            }
            None => {
                self.fill(1)?;
                Ok(self.buf.get_u8())
            }
        }
    }

    /// Reads a be16.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[0xbe, 0xef][..]);
    /// assert_eq!(r.read_u16().unwrap(), 0xbeef);
    /// ```
    #[inline(always)]
    pub fn read_u16(&mut self) -> Result<u16> {
        // Straight from the contiguous chunk when it holds the value (the common
        // case); across chunk boundaries through the bounds-checked slow path.
        let chunk = self.buf.chunk();
        if chunk.len() >= 2 {
            let mut be = [0u8; 2];
            be.copy_from_slice(&chunk[..2]);
            self.buf.advance(2);
            return Ok(u16::from_be_bytes(be));
        }
        self.require(2)?;
        Ok(self.buf.get_u16())
    }

    /// Reads a be32.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[1, 2, 3, 4][..]);
    /// assert_eq!(r.read_u32().unwrap(), 0x0102_0304);
    /// ```
    #[inline(always)]
    pub fn read_u32(&mut self) -> Result<u32> {
        // Straight from the contiguous chunk when it holds the value (the common
        // case); across chunk boundaries through the bounds-checked slow path.
        let chunk = self.buf.chunk();
        if chunk.len() >= 4 {
            let mut be = [0u8; 4];
            be.copy_from_slice(&chunk[..4]);
            self.buf.advance(4);
            return Ok(u32::from_be_bytes(be));
        }
        self.require(4)?;
        Ok(self.buf.get_u32())
    }

    /// Reads a be64.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[1, 2, 3, 4, 5, 6, 7, 8][..]);
    /// assert_eq!(r.read_u64().unwrap(), 0x0102_0304_0506_0708);
    /// ```
    #[inline(always)]
    pub fn read_u64(&mut self) -> Result<u64> {
        // Straight from the contiguous chunk when it holds the value (the common
        // case); across chunk boundaries through the bounds-checked slow path.
        let chunk = self.buf.chunk();
        if chunk.len() >= 8 {
            let mut be = [0u8; 8];
            be.copy_from_slice(&chunk[..8]);
            self.buf.advance(8);
            return Ok(u64::from_be_bytes(be));
        }
        self.require(8)?;
        Ok(self.buf.get_u64())
    }

    /// Reads one signed byte.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[0xff][..]);
    /// assert_eq!(r.read_i8().unwrap(), -1);
    /// ```
    #[inline(always)]
    pub fn read_i8(&mut self) -> Result<i8> {
        self.read_u8().map(|v| v as i8)
    }

    /// Reads a signed be16.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[0xff, 0xfe][..]);
    /// assert_eq!(r.read_i16().unwrap(), -2);
    /// ```
    #[inline(always)]
    pub fn read_i16(&mut self) -> Result<i16> {
        self.read_u16().map(|v| v as i16)
    }

    /// Reads a signed be32.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[0xff, 0xff, 0xff, 0x00][..]);
    /// assert_eq!(r.read_i32().unwrap(), -256);
    /// ```
    #[inline(always)]
    pub fn read_i32(&mut self) -> Result<i32> {
        self.read_u32().map(|v| v as i32)
    }

    /// Reads a signed be64.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[0xff; 8][..]);
    /// assert_eq!(r.read_i64().unwrap(), -1);
    /// ```
    #[inline(always)]
    pub fn read_i64(&mut self) -> Result<i64> {
        self.read_u64().map(|v| v as i64)
    }

    /// Fills `dst` with the next `dst.len()` bytes (one bounds check, bulk copy).
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&b"QEVM\x00"[..]);
    /// let mut magic = [0u8; 4];
    /// r.read_bytes(&mut magic).unwrap();
    /// assert_eq!(&magic, b"QEVM");
    /// assert!(r.read_bytes(&mut magic).is_err()); // only one byte left
    /// ```
    #[inline]
    pub fn read_bytes(&mut self, dst: &mut [u8]) -> Result<()> {
        self.require(dst.len())?;
        self.buf.copy_to_slice(dst);
        Ok(())
    }

    /// Skips `n` bytes.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[0, 0, 0, 7][..]);
    /// r.skip(3).unwrap();
    /// assert_eq!(r.read_u8().unwrap(), 7);
    /// assert!(r.skip(1).is_err());
    /// ```
    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.require(n)?;
        self.buf.advance(n);
        Ok(())
    }

    /// Runs `f` over the next `n` bytes and consumes them, when they are contiguous
    /// in the underlying buffer; returns `None` (consuming nothing) otherwise or
    /// when fewer than `n` bytes remain.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[1, 2, 3][..]);
    /// let sum = r.with_contiguous(2, |b| b[0] + b[1]);
    /// assert_eq!(sum, Some(3));
    /// assert_eq!(r.remaining(), 1);
    /// assert_eq!(r.with_contiguous(2, |b| b.len()), None); // too few bytes: nothing consumed
    /// assert_eq!(r.remaining(), 1);
    /// ```
    #[inline]
    pub fn with_contiguous<R>(&mut self, n: usize, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let chunk = self.buf.chunk();
        if chunk.len() < n {
            return None;
        }
        let out = f(&chunk[..n]);
        self.buf.advance(n);
        Some(out)
    }

    /// Like [`with_contiguous`](Self::with_contiguous), but `f` decides whether the
    /// bytes are consumed: they are only when it returns true.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[0x01, 0x02][..]);
    /// // A valid bool byte is consumed ...
    /// assert!(r.consume_contiguous_if(1, |b| b[0] <= 1));
    /// // ... an invalid one is left in place.
    /// assert!(!r.consume_contiguous_if(1, |b| b[0] <= 1));
    /// assert_eq!(r.read_u8().unwrap(), 2);
    /// ```
    #[inline(always)]
    pub fn consume_contiguous_if(&mut self, n: usize, f: impl FnOnce(&[u8]) -> bool) -> bool {
        let chunk = self.buf.chunk();
        if chunk.len() < n || !f(&chunk[..n]) {
            return false;
        }
        self.buf.advance(n);
        true
    }

    /// Copies up to `dst.len()` upcoming bytes into `dst` without consuming them;
    /// returns how many were available. Works across non-contiguous buffers whose
    /// `Buf::chunks_vectored` returns all their chunks (as `bytes`' own types do).
    ///
    /// ```
    /// use bytes::Buf;
    /// use vmstate_runtime::wire::Reader;
    ///
    /// // Two chunks: the peek sees across the boundary without consuming anything.
    /// let r = Reader::new((&[1u8, 2][..]).chain(&[3u8, 4][..]));
    /// let mut head = [0u8; 3];
    /// assert_eq!(r.peek_into(&mut head), 3);
    /// assert_eq!(head, [1, 2, 3]);
    /// assert_eq!(r.remaining(), 4);
    /// let mut more = [0u8; 8];
    /// assert_eq!(r.peek_into(&mut more), 4); // only 4 available
    /// ```
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

    /// Peeks at one byte without consuming it (refilling if needed).
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[5][..]);
    /// assert_eq!(r.peek_u8(), Some(5));
    /// assert_eq!(r.read_u8().unwrap(), 5); // the peek consumed nothing
    /// assert_eq!(r.peek_u8(), None);
    /// ```
    #[inline]
    pub fn peek_u8(&mut self) -> Option<u8> {
        // `Buf` promises a non-empty chunk whenever bytes remain.
        if let Some(&b) = self.buf.chunk().first() {
            return Some(b);
        }
        if self.ensure(1) {
            self.buf.chunk().first().copied()
        } else {
            None
        }
    }

    /// Reads `n` bytes and returns them as an owned vector, after checking that
    /// `n` bytes are actually present (so a hostile length cannot make us
    /// allocate more than the input holds).
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&[1, 2, 3][..]);
    /// assert_eq!(r.read_vec(2).unwrap(), [1, 2]);
    /// // A hostile length fails before anything is allocated.
    /// assert!(r.read_vec(usize::MAX).is_err());
    /// ```
    pub fn read_vec(&mut self, n: usize) -> Result<Vec<u8>> {
        self.require(n)?;
        let mut v = vec![0u8; n];
        self.read_bytes(&mut v)?;
        Ok(v)
    }

    /// Reads a counted string (one length byte, then that many bytes), as QEMU's
    /// `qemu_get_counted_string`. Returns the bytes in a fixed buffer and the length.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(&b"\x05timer\x00"[..]);
    /// let name = r.read_counted_bytes().unwrap();
    /// assert_eq!(name.as_bytes(), b"timer");
    /// assert_eq!(r.position(), 6);
    /// ```
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

impl Reader<bytes::BytesMut> {
    /// Splits the next `n` bytes off as a buffer of their own, without copying,
    /// after checking (refilling) that they are present: a nested stream (a
    /// PACKAGED command) costs the bytes that arrived, once.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let mut r = Reader::new(BytesMut::from(&[1, 2, 3][..]));
    /// assert_eq!(&r.read_split(2).unwrap()[..], [1, 2]);
    /// assert_eq!(r.position(), 2);
    /// assert!(r.read_split(2).is_err()); // one byte left: nothing consumed
    /// assert_eq!(r.read_u8().unwrap(), 3);
    /// ```
    pub fn read_split(&mut self, n: usize) -> Result<bytes::BytesMut> {
        self.require(n)?;
        Ok(self.buf.split_to(n))
    }
}

/// A name of at most 255 bytes held inline (no allocation), as read from a
/// one-byte-length-prefixed string on the wire.
///
/// ```
/// use vmstate_runtime::wire::{CountedName, Reader};
///
/// let name: CountedName = Reader::new(&b"\x03ram"[..]).read_counted_bytes().unwrap();
/// assert_eq!(name.to_string_lossy(), "ram");
/// assert_eq!(format!("{name:?}"), "\"ram\"");
/// ```
#[derive(Clone, Copy)]
pub struct CountedName {
    bytes: [u8; MAX_NAME_LEN],
    len: u8,
}

impl CountedName {
    /// The name's bytes.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let name = Reader::new(&b"\x02\xff\x01"[..]).read_counted_bytes().unwrap();
    /// assert_eq!(name.as_bytes(), [0xff, 0x01]);
    /// ```
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The name as text (lossy: the wire does not promise UTF-8).
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    ///
    /// let name = Reader::new(&b"\x04pc\xffk"[..]).read_counted_bytes().unwrap();
    /// assert_eq!(name.to_string_lossy(), "pc\u{fffd}k");
    /// ```
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
        let mut r = Reader::new(a.chain(b));
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
