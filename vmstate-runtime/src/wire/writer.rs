//! Big-endian writes over any [`bytes::BufMut`], that fail instead of panicking
//! when a fixed-size output is full.

use bytes::BufMut;

use crate::error::{Error, ErrorKind, Result};

/// A big-endian writer over a [`BufMut`] that knows its byte offset.
///
/// Growable buffers (`Vec<u8>`, `BytesMut`) never run out of room; a fixed
/// buffer (`&mut [u8]`) returns [`ErrorKind::OutputFull`] instead of the panic
/// `BufMut` would raise.
///
/// ```
/// use vmstate_runtime::wire::Writer;
///
/// let mut w = Writer::new(Vec::new());
/// w.write_u16(0x1234).unwrap();
/// w.write_u32(1).unwrap();
/// assert_eq!(w.into_inner(), [0x12, 0x34, 0, 0, 0, 1]);
///
/// let mut small = [0u8; 2];
/// let mut w = Writer::new(&mut small[..]);
/// assert!(w.write_u32(1).is_err());
/// ```
#[derive(Debug)]
pub struct Writer<B> {
    buf: B,
    /// `base + start_remaining - remaining_mut()` is the position. Computing it on
    /// demand (errors, descriptions) keeps a counter update off every write, which
    /// would otherwise be a store-to-load dependency chain through memory.
    base: u64,
    start_remaining: usize,
}

impl<B: BufMut + Default> Default for Writer<B> {
    fn default() -> Self {
        Writer::new(B::default())
    }
}

impl<B: BufMut> Writer<B> {
    /// A writer at offset 0.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// assert_eq!(w.position(), 0);
    /// w.write_u8(0xab).unwrap();
    /// assert_eq!(w.into_inner(), [0xab]);
    /// ```
    pub fn new(buf: B) -> Self {
        Self::with_base_offset(buf, 0)
    }

    /// A writer whose offsets start at `base`.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// // A writer for a body that starts 100 bytes into the stream.
    /// let mut out = [0u8; 2];
    /// let mut w = Writer::with_base_offset(&mut out[..], 100);
    /// w.write_u16(7).unwrap();
    /// assert_eq!(w.position(), 102);
    /// let err = w.write_u8(1).unwrap_err();
    /// assert_eq!(err.offset(), Some(102));
    /// ```
    pub fn with_base_offset(buf: B, base: u64) -> Self {
        let start_remaining = buf.remaining_mut();
        Writer {
            buf,
            base,
            start_remaining,
        }
    }

    /// Byte offset of the next write.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_u32(1).unwrap();
    /// w.write_u16(2).unwrap();
    /// assert_eq!(w.position(), 6);
    /// ```
    #[inline]
    pub fn position(&self) -> u64 {
        self.base + (self.start_remaining - self.buf.remaining_mut()) as u64
    }

    /// The underlying buffer.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_i16(-2).unwrap();
    /// let bytes: Vec<u8> = w.into_inner();
    /// assert_eq!(bytes, [0xff, 0xfe]);
    /// ```
    pub fn into_inner(self) -> B {
        self.buf
    }

    /// A shared reference to the underlying buffer.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_u16(0x0102).unwrap();
    /// assert_eq!(w.get_ref().as_slice(), [1, 2]);
    /// ```
    pub fn get_ref(&self) -> &B {
        &self.buf
    }

    /// A mutable reference to the underlying buffer. Bytes written through it count
    /// in [`position`](Self::position) like any others.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_u8(1).unwrap();
    /// w.get_mut().extend_from_slice(&[2, 3]);
    /// assert_eq!(w.position(), 3);
    /// assert_eq!(w.into_inner(), [1, 2, 3]);
    /// ```
    pub fn get_mut(&mut self) -> &mut B {
        &mut self.buf
    }

    #[cold]
    #[inline(never)]
    fn full(&self, needed: usize) -> Error {
        Error::at(
            ErrorKind::OutputFull {
                needed,
                available: self.buf.remaining_mut(),
            },
            self.position(),
        )
    }

    /// Whether `n` bytes of room remain.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut out = [0u8; 4];
    /// let mut w = Writer::new(&mut out[..]);
    /// assert!(w.has_room(4));
    /// w.write_u16(1).unwrap();
    /// assert!(w.has_room(2));
    /// assert!(!w.has_room(3));
    /// ```
    #[inline(always)]
    pub fn has_room(&self, n: usize) -> bool {
        self.buf.remaining_mut() >= n
    }

    /// Fails unless `n` bytes of room remain.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    /// use vmstate_runtime::ErrorKind;
    ///
    /// let mut out = [0u8; 3];
    /// let w = Writer::new(&mut out[..]);
    /// assert!(w.reserve(3).is_ok());
    /// let err = w.reserve(8).unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::OutputFull { needed: 8, available: 3 }));
    /// ```
    #[inline(always)]
    pub fn reserve(&self, n: usize) -> Result<()> {
        if self.buf.remaining_mut() < n {
            return Err(self.full(n));
        }
        Ok(())
    }

    /// Writes one byte.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_u8(0x7f).unwrap();
    /// assert_eq!(w.into_inner(), [0x7f]);
    /// ```
    #[inline(always)]
    pub fn write_u8(&mut self, v: u8) -> Result<()> {
        self.reserve(1)?;
        self.buf.put_u8(v);
        Ok(())
    }

    /// Writes a be16.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_u16(0xbeef).unwrap();
    /// assert_eq!(w.into_inner(), [0xbe, 0xef]);
    /// ```
    #[inline(always)]
    pub fn write_u16(&mut self, v: u16) -> Result<()> {
        self.reserve(2)?;
        self.buf.put_u16(v);
        Ok(())
    }

    /// Writes a be32.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_u32(0x0102_0304).unwrap();
    /// assert_eq!(w.into_inner(), [1, 2, 3, 4]);
    /// ```
    #[inline(always)]
    pub fn write_u32(&mut self, v: u32) -> Result<()> {
        self.reserve(4)?;
        self.buf.put_u32(v);
        Ok(())
    }

    /// Writes a be64.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_u64(0x0102_0304_0506_0708).unwrap();
    /// assert_eq!(w.into_inner(), [1, 2, 3, 4, 5, 6, 7, 8]);
    /// ```
    #[inline(always)]
    pub fn write_u64(&mut self, v: u64) -> Result<()> {
        self.reserve(8)?;
        self.buf.put_u64(v);
        Ok(())
    }

    /// Writes one signed byte.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_i8(-1).unwrap();
    /// assert_eq!(w.into_inner(), [0xff]);
    /// ```
    #[inline(always)]
    pub fn write_i8(&mut self, v: i8) -> Result<()> {
        self.write_u8(v as u8)
    }

    /// Writes a signed be16.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_i16(-2).unwrap();
    /// assert_eq!(w.into_inner(), [0xff, 0xfe]);
    /// ```
    #[inline(always)]
    pub fn write_i16(&mut self, v: i16) -> Result<()> {
        self.write_u16(v as u16)
    }

    /// Writes a signed be32.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_i32(-256).unwrap();
    /// assert_eq!(w.into_inner(), [0xff, 0xff, 0xff, 0x00]);
    /// ```
    #[inline(always)]
    pub fn write_i32(&mut self, v: i32) -> Result<()> {
        self.write_u32(v as u32)
    }

    /// Writes a signed be64.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_i64(-2).unwrap();
    /// assert_eq!(w.into_inner(), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
    /// ```
    #[inline(always)]
    pub fn write_i64(&mut self, v: i64) -> Result<()> {
        self.write_u64(v as u64)
    }

    /// Writes a byte slice in one bulk copy.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_bytes(b"QEVM").unwrap();
    /// assert_eq!(w.position(), 4);
    /// assert_eq!(w.into_inner(), b"QEVM");
    /// ```
    #[inline]
    pub fn write_bytes(&mut self, src: &[u8]) -> Result<()> {
        self.reserve(src.len())?;
        self.buf.put_slice(src);
        Ok(())
    }

    /// Writes `n` zero bytes.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_u8(1).unwrap();
    /// w.write_zeros(3).unwrap();
    /// assert_eq!(w.into_inner(), [1, 0, 0, 0]);
    /// ```
    #[inline]
    pub fn write_zeros(&mut self, n: usize) -> Result<()> {
        self.reserve(n)?;
        self.buf.put_bytes(0, n);
        Ok(())
    }

    /// Writes a counted string: one length byte, then the bytes (no NUL).
    /// Fails for names longer than 255 bytes.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// w.write_counted_bytes(b"ram").unwrap();
    /// assert_eq!(w.get_ref().as_slice(), [3, b'r', b'a', b'm']);
    /// // The length must fit one byte.
    /// assert!(w.write_counted_bytes(&[b'x'; 256]).is_err());
    /// ```
    pub fn write_counted_bytes(&mut self, s: &[u8]) -> Result<()> {
        let len = u8::try_from(s.len()).map_err(|_| {
            Error::new(ErrorKind::NameTooLong { len: s.len() }).with_offset(self.position())
        })?;
        self.write_u8(len)?;
        self.write_bytes(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_big_endian_and_counts() {
        let mut w = Writer::new(Vec::new());
        w.write_u8(1).unwrap();
        w.write_i16(-2).unwrap();
        w.write_u64(3).unwrap();
        w.write_zeros(2).unwrap();
        w.write_counted_bytes(b"ram").unwrap();
        assert_eq!(w.position(), 17);
        assert_eq!(
            w.into_inner(),
            [1, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 3, b'r', b'a', b'm']
        );
    }

    #[test]
    fn fixed_buffer_reports_full() {
        let mut out = [0u8; 5];
        let mut w = Writer::new(&mut out[..]);
        w.write_u32(7).unwrap();
        let e = w.write_u16(1).unwrap_err();
        assert_eq!(e.offset(), Some(4));
        assert!(matches!(e.kind(), ErrorKind::OutputFull { needed: 2, .. }));
    }

    #[test]
    fn long_names_rejected() {
        let mut w = Writer::new(Vec::new());
        assert!(w.write_counted_bytes(&[b'x'; 256]).is_err());
    }
}
