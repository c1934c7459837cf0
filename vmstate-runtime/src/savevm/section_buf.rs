//! The stream writer's buffer: bytes written field by field, plus shared
//! segments (`Bytes`, e.g. guest pages) that are not copied but handed to the
//! transport in one vectored write, in their place in the stream.

use std::io::{IoSlice, Write};

use bytes::Bytes;

use super::shared_memory::MemorySegment;
use crate::wire::Writer;

/// A growable buffer for section bodies that can also hold shared segments.
///
/// Bytes written through `BufMut` are copied in as usual; [`put_shared`]
/// records a `Bytes` (no copy) at the current position. Positions and lengths
/// count both, so a [`Writer`] over it reports true stream offsets.
///
/// ```
/// use bytes::Bytes;
/// use vmstate_runtime::savevm::{SectionBuf, SectionWriter};
///
/// let mut w = SectionWriter::new(SectionBuf::default());
/// w.write_u32(1).unwrap();
/// w.put_shared(Bytes::from_static(b"page"));
/// w.write_u8(0x10).unwrap();
/// assert_eq!(w.position(), 9);
/// let mut out = Vec::new();
/// w.get_ref().write_to(&mut out).unwrap();
/// assert_eq!(out, [0, 0, 0, 1, b'p', b'a', b'g', b'e', 0x10]);
/// ```
///
/// [`put_shared`]: SectionBuf::put_shared
#[derive(Debug, Default, Clone)]
pub struct SectionBuf {
    data: Vec<u8>,
    /// (offset in `data` where the segment goes, the segment).
    shared: Vec<(usize, Segment)>,
    shared_len: usize,
    /// How many of `shared` are guest memory ([`Segment::Memory`]).
    memory_segments: usize,
    /// Stream position where the byte budget of the current iterate round
    /// ends (`None`: unlimited); see [`Writer::remaining_budget`].
    budget_end: Option<u64>,
}

/// A segment held uncopied in a [`SectionBuf`].
#[derive(Debug, Clone)]
enum Segment {
    /// Immutable bytes (a snapshot, a static table).
    Bytes(Bytes),
    /// Guest memory, read when the buffer is written out.
    Memory(MemorySegment),
}

impl Segment {
    fn len(&self) -> usize {
        match self {
            Segment::Bytes(b) => b.len(),
            Segment::Memory(m) => m.len(),
        }
    }
}

/// One piece of a [`SectionBuf`] in stream order (for a transport that
/// writes guest memory itself, `migration/splice.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part<'a> {
    /// Bytes to copy (copied runs and `Bytes` segments).
    Bytes(&'a [u8]),
    /// Guest memory, to be read by address.
    Memory(&'a MemorySegment),
}

impl SectionBuf {
    /// An empty buffer with room for `n` copied bytes.
    pub fn with_capacity(n: usize) -> Self {
        SectionBuf {
            data: Vec::with_capacity(n),
            ..Default::default()
        }
    }

    /// Appends a shared segment without copying it.
    pub fn put_shared(&mut self, segment: Bytes) {
        if segment.is_empty() {
            return;
        }
        self.push_segment(Segment::Bytes(segment));
    }

    /// Appends a segment of guest memory without copying it: its bytes are
    /// read when the buffer is written out ([`write_to`](Self::write_to)
    /// copies them then; a socket transport of a migration hands the pages to
    /// the kernel instead, `vmsplice(2)`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use vmstate_runtime::savevm::{MemorySegment, SectionBuf, SharedMemory};
    ///
    /// struct Heap(Box<[u8]>);
    /// // SAFETY: the boxed bytes live, unmoved, as long as the value.
    /// unsafe impl SharedMemory for Heap {
    ///     fn host_range(&self) -> (usize, usize) {
    ///         (self.0.as_ptr() as usize, self.0.len())
    ///     }
    /// }
    ///
    /// let mem: Arc<dyn SharedMemory> = Arc::new(Heap(b"guest".to_vec().into()));
    /// let mut buf = SectionBuf::default();
    /// buf.put_memory(MemorySegment::new(&mem, 1, 3).unwrap());
    /// assert_eq!(buf.to_vec(), b"ues");
    /// ```
    pub fn put_memory(&mut self, segment: MemorySegment) {
        if segment.is_empty() {
            return;
        }
        self.memory_segments += 1;
        self.push_segment(Segment::Memory(segment));
    }

    fn push_segment(&mut self, segment: Segment) {
        self.shared_len += segment.len();
        self.shared.push((self.data.len(), segment));
    }

    /// Total bytes held (copied and shared).
    pub fn len(&self) -> usize {
        self.data.len() + self.shared_len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether any segment is guest memory.
    pub(crate) fn has_memory(&self) -> bool {
        self.memory_segments > 0
    }

    /// Empties the buffer, keeping the copied part's capacity (and the byte
    /// budget: a flush inside an iterate round does not end the round).
    pub fn clear(&mut self) {
        self.data.clear();
        self.shared.clear();
        self.shared_len = 0;
        self.memory_segments = 0;
    }

    /// Shortens the buffer to `len` bytes (as counted by [`len`](Self::len)),
    /// dropping the shared segments beyond it. Only cuts between segments.
    pub fn truncate(&mut self, len: usize) {
        // Whole segments that start at or after `len` go.
        while let Some((at, seg)) = self.shared.last() {
            let start = at + self.shared_len - seg.len();
            if start < len {
                break;
            }
            self.shared_len -= seg.len();
            if let Some((_, Segment::Memory(_))) = self.shared.pop() {
                self.memory_segments -= 1;
            }
        }
        // Then copied bytes past `len` (never before the last kept segment).
        let keep = len.saturating_sub(self.shared_len);
        let anchor = self.shared.last().map_or(0, |s| s.0);
        self.data.truncate(keep.max(anchor));
    }

    /// The contents in stream order: copied runs and segments.
    pub(crate) fn parts(&self) -> impl Iterator<Item = Part<'_>> + '_ {
        let mut from = 0;
        let mut segments = self.shared.iter();
        let mut pending: Option<Part<'_>> = None;
        let mut done = false;
        std::iter::from_fn(move || loop {
            if let Some(p) = pending.take() {
                return Some(p);
            }
            if done {
                return None;
            }
            match segments.next() {
                Some((at, seg)) => {
                    pending = Some(match seg {
                        Segment::Bytes(b) => Part::Bytes(b),
                        Segment::Memory(m) => Part::Memory(m),
                    });
                    if *at > from {
                        let run = &self.data[from..*at];
                        from = *at;
                        return Some(Part::Bytes(run));
                    }
                }
                None => {
                    done = true;
                    if from < self.data.len() {
                        return Some(Part::Bytes(&self.data[from..]));
                    }
                }
            }
        })
    }

    /// Writes everything to `sink` with vectored writes: copied runs and shared
    /// segments in stream order, no extra copy of `Bytes` segments (guest
    /// memory segments are copied out once, now).
    pub fn write_to<W: Write>(&self, sink: &mut W) -> std::io::Result<()> {
        self.write_to_with(sink, &mut Vec::new())
    }

    /// [`write_to`](Self::write_to) that copies guest memory segments into
    /// `bounce` (kept by the caller, so it is allocated once per stream), at
    /// most [`BOUNCE_BYTES`] at a time so that the copy stays in the cache
    /// until the sink takes it.
    pub(crate) fn write_to_with<W: Write>(
        &self,
        sink: &mut W,
        bounce: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        if self.has_memory() && bounce.len() < BOUNCE_BYTES {
            bounce.resize(BOUNCE_BYTES, 0);
        }
        let mut batch: Vec<Piece<'_>> = Vec::with_capacity(2 * self.shared.len() + 1);
        let mut run = AdjacentRun::default();
        let mut used = 0;
        for p in self.parts() {
            let m = match p {
                Part::Bytes(b) => {
                    batch.push(Piece::Bytes(b));
                    continue;
                }
                Part::Memory(m) => m,
            };
            let mut from = 0;
            while from < m.len() {
                // A segment that fits in a bounce buffer is not split.
                let whole_next_time = from == 0 && m.len() <= BOUNCE_BYTES;
                if used == BOUNCE_BYTES || (whole_next_time && m.len() > BOUNCE_BYTES - used) {
                    run.copy_into(bounce);
                    write_pieces(sink, &batch, bounce)?;
                    batch.clear();
                    used = 0;
                }
                let n = (m.len() - from).min(BOUNCE_BYTES - used);
                if n == m.len() {
                    run.add(m, used, bounce);
                } else {
                    run.copy_into(bounce);
                    m.copy_range_to(from, &mut bounce[used..used + n]);
                }
                batch.push(Piece::Bounce(used..used + n));
                used += n;
                from += n;
            }
        }
        run.copy_into(bounce);
        write_pieces(sink, &batch, bounce)
    }

    /// A copy of the contents, in stream order (for tests and small bodies).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.write_to(&mut out)
            .expect("writing to a Vec cannot fail");
        out
    }
}

/// Guest memory copied out per vectored write of a plain sink: 64 KiB, which
/// stays in the L2 cache between the copy and the sink's read of it (a whole
/// 1 MiB flush copied at once did not, and saving into a sink ran 28% slower).
const BOUNCE_BYTES: usize = 64 << 10;

/// Whole memory segments that lie back to back in memory (the pages of one
/// dirty run; their record headers are between them in the stream, not in
/// memory), bound for consecutive bounce bytes: copied in one go, because
/// one long copy keeps several pages' loads in flight where page-sized
/// copies each start cold (the prefetchers stop at page boundaries; saving
/// into a sink ran at 0.86x memcpy with a copy per page, 1.1x with runs).
#[derive(Default)]
struct AdjacentRun<'a> {
    segments: Vec<&'a MemorySegment>,
    /// Where in the bounce buffer the run goes.
    at: usize,
    len: usize,
}

impl<'a> AdjacentRun<'a> {
    /// Adds `m`, bound for `bounce[at..]`; copies the run so far out first
    /// when `m` does not continue it.
    fn add(&mut self, m: &'a MemorySegment, at: usize, bounce: &mut [u8]) {
        let continues = self
            .segments
            .last()
            .is_some_and(|last| m.follows(last) && at == self.at + self.len);
        if !continues {
            self.copy_into(bounce);
            self.at = at;
        }
        self.segments.push(m);
        self.len += m.len();
    }

    /// Copies the run into its bounce bytes and empties it.
    fn copy_into(&mut self, bounce: &mut [u8]) {
        if !self.segments.is_empty() {
            MemorySegment::copy_adjacent(&self.segments, &mut bounce[self.at..self.at + self.len]);
            self.segments.clear();
            self.len = 0;
        }
    }
}

/// A piece of one vectored write: bytes of the buffer, or a range of the
/// bounce buffer.
enum Piece<'a> {
    Bytes(&'a [u8]),
    Bounce(std::ops::Range<usize>),
}

/// Writes `pieces` in order with vectored writes, all of them.
fn write_pieces<W: Write>(
    sink: &mut W,
    pieces: &[Piece<'_>],
    bounce: &[u8],
) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = pieces
        .iter()
        .map(|p| {
            IoSlice::new(match p {
                Piece::Bytes(b) => b,
                Piece::Bounce(r) => &bounce[r.clone()],
            })
        })
        .collect();
    let mut rest: &mut [IoSlice<'_>] = &mut slices;
    while !rest.is_empty() {
        let n = match sink.write_vectored(rest) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "transport accepted no bytes",
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

// The one `unsafe` of the workspace (`unsafe_code` is denied everywhere else):
// `Writer<B: BufMut>` and the derive's generated code write through `BufMut`, so
// the section buffer must be one. The SAFETY argument follows; the tests
// `unused_after_shared_page_reaches_chunk_mut` and
// `put_bytes_past_capacity_reaches_advance_mut` drive `chunk_mut`/`advance_mut`
// through the real save path.
#[allow(unsafe_code)]
mod buf_mut {
    use bytes::buf::UninitSlice;
    use bytes::BufMut;

    use super::SectionBuf;

    // SAFETY: every method forwards to `Vec<u8>`'s `BufMut` implementation on
    // `self.data`, which upholds the trait's contract: `chunk_mut` is the vector's
    // spare capacity and `advance_mut` forwards the same count, so the bytes marked
    // initialised are exactly those the caller wrote. `remaining_mut` is the
    // vector's minus the shared bytes, never more than the vector can take, and it
    // falls by exactly what is written (copied or shared), which keeps a `Writer`'s
    // offsets right.
    unsafe impl BufMut for SectionBuf {
        #[inline]
        fn remaining_mut(&self) -> usize {
            self.data.remaining_mut() - self.shared_len
        }

        #[inline]
        unsafe fn advance_mut(&mut self, cnt: usize) {
            // SAFETY: the caller initialised `cnt` bytes of `chunk_mut()`, which is
            // `self.data.chunk_mut()`.
            unsafe { self.data.advance_mut(cnt) }
        }

        #[inline]
        fn chunk_mut(&mut self) -> &mut UninitSlice {
            self.data.chunk_mut()
        }

        #[inline]
        fn put_slice(&mut self, src: &[u8]) {
            self.data.extend_from_slice(src);
        }

        #[inline]
        fn put_u8(&mut self, n: u8) {
            self.data.push(n);
        }
    }
}

impl Writer<SectionBuf> {
    /// Appends a shared segment (e.g. a guest page held as `Bytes`) without
    /// copying it; it goes to the transport in a vectored write.
    pub fn put_shared(&mut self, segment: Bytes) {
        self.get_mut().put_shared(segment);
    }

    /// Appends a segment of guest memory without copying it
    /// ([`SectionBuf::put_memory`]).
    pub fn put_memory(&mut self, segment: MemorySegment) {
        self.get_mut().put_memory(segment);
    }

    /// Gives the handlers written next a byte budget: `bytes` from the current
    /// position on (`None`: unlimited). The stream writer sets it for an
    /// iterate round from the driver's rate limit
    /// ([`StreamWriter::iterate_within`](crate::savevm::StreamWriter::iterate_within)).
    ///
    /// ```
    /// use vmstate_runtime::savevm::{SectionBuf, SectionWriter};
    ///
    /// let mut w = SectionWriter::new(SectionBuf::default());
    /// assert_eq!(w.remaining_budget(), None);
    /// w.set_budget(Some(10));
    /// w.write_u64(0).unwrap();
    /// assert_eq!(w.remaining_budget(), Some(2));
    /// w.write_u32(0).unwrap();
    /// assert_eq!(w.remaining_budget(), Some(0)); // spent: never negative
    /// ```
    pub fn set_budget(&mut self, bytes: Option<u64>) {
        let end = bytes.map(|b| self.position().saturating_add(b));
        self.get_mut().budget_end = end;
    }

    /// Bytes left of the budget (`None`: unlimited). A handler that can split
    /// its work (RAM's PART) stops once it is 0, so a bandwidth limit holds
    /// inside one section, not only between sections.
    pub fn remaining_budget(&self) -> Option<u64> {
        self.get_ref()
            .budget_end
            .map(|end| end.saturating_sub(self.position()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::{Arc, Mutex};

    use bytes::BufMut;

    use super::*;
    use crate::savevm::format::RecordType;
    use crate::savevm::{QemuVersion, Registry, SaveVmHandlers, SectionReader, StreamWriter};
    use crate::VmState;

    /// A device body with padding: `unused = N` is written with `put_bytes`,
    /// whose default body fills `chunk_mut()` and calls `advance_mut`.
    #[derive(VmState, Default, Debug)]
    #[vmstate(name = "padded", version = 1)]
    struct Padded {
        a: u16,
        #[vmstate(unused = 300)]
        _pad: (),
        b: u8,
    }

    /// A FULL section body: a guest page as a shared segment, then the device.
    struct PageThenDevice {
        page: Bytes,
        dev: Arc<Mutex<Padded>>,
    }

    impl SaveVmHandlers for PageThenDevice {
        fn has_full_section(&self) -> bool {
            true
        }
        fn save_state(&mut self, w: &mut crate::savevm::SectionWriter) -> crate::Result<()> {
            w.put_shared(self.page.clone());
            self.dev.lock().unwrap().save(w)
        }
        fn load_state(&mut self, _: &mut SectionReader, _: u32) -> crate::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn unused_after_shared_page_reaches_chunk_mut() {
        let page = Bytes::from((0..4096u32).map(|i| i as u8).collect::<Vec<_>>());
        let dev = Arc::new(Mutex::new(Padded {
            a: 0x1234,
            _pad: (),
            b: 0x56,
        }));
        let mut reg = Registry::new();
        let id = reg
            .register_savevm_live(
                "page",
                0,
                1,
                Box::new(PageThenDevice {
                    page: page.clone(),
                    dev,
                }),
            )
            .unwrap();
        let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
        w.suppress_vmdesc();
        w.full_sections(&mut reg).unwrap();
        let position = w.position();
        let out = w.into_inner().unwrap();
        let mut expected = vec![RecordType::SectionFull as u8];
        expected.extend_from_slice(&id.to_be_bytes());
        expected.extend_from_slice(b"\x04page\0\0\0\0\0\0\0\x01");
        expected.extend_from_slice(&page);
        expected.extend_from_slice(&[0x12, 0x34]);
        expected.extend_from_slice(&[0; 300]);
        expected.push(0x56);
        expected.push(RecordType::SectionFooter as u8);
        expected.extend_from_slice(&id.to_be_bytes());
        assert_eq!(out, expected);
        // Offsets count the shared page too.
        assert_eq!(position, expected.len() as u64);
    }

    #[test]
    fn put_bytes_past_capacity_reaches_advance_mut() {
        // A buffer with no spare room: `chunk_mut` must grow it, repeatedly, and
        // `advance_mut` must mark exactly the filled bytes.
        let mut b = SectionBuf::with_capacity(0);
        b.put_shared(Bytes::from_static(b"shared"));
        let before = b.remaining_mut();
        b.put_bytes(0xaa, 1000);
        b.put_slice(b"end");
        assert_eq!(before - b.remaining_mut(), 1003);
        assert_eq!(b.len(), 6 + 1003);
        let out = b.to_vec();
        assert_eq!(&out[..6], b"shared");
        assert!(out[6..1006].iter().all(|&x| x == 0xaa));
        assert_eq!(&out[1006..], b"end");
    }

    #[test]
    fn shared_segments_keep_stream_order_and_offsets() {
        let mut w = Writer::new(SectionBuf::with_capacity(16));
        w.write_u16(0xabcd).unwrap();
        w.put_shared(Bytes::from(vec![1u8; 5000]));
        w.put_shared(Bytes::from_static(b"xy"));
        w.write_bytes(b"tail").unwrap();
        assert_eq!(w.position(), 2 + 5000 + 2 + 4);
        let bytes = w.get_ref().to_vec();
        let mut expected = vec![0xab, 0xcd];
        expected.extend(std::iter::repeat_n(1u8, 5000));
        expected.extend_from_slice(b"xytail");
        assert_eq!(bytes, expected);
    }

    /// A sink that takes at most 3 bytes per call, to exercise partial writes.
    struct Dribble(Vec<u8>);
    impl Write for Dribble {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_vectored_writes_complete() {
        let mut b = SectionBuf::default();
        b.put_slice(b"abc");
        b.put_shared(Bytes::from_static(b"defgh"));
        b.put_slice(b"ij");
        let mut d = Dribble(Vec::new());
        b.write_to(&mut d).unwrap();
        assert_eq!(d.0, b"abcdefghij");
    }

    #[test]
    fn truncate_drops_trailing_segments_and_bytes() {
        let mut b = SectionBuf::default();
        b.put_slice(b"head");
        let mark = b.len();
        b.put_slice(b"12");
        b.put_shared(Bytes::from_static(b"page"));
        b.put_slice(b"34");
        b.truncate(mark);
        assert_eq!(b.to_vec(), b"head");
        b.clear();
        assert!(b.is_empty());
    }

    use crate::savevm::Heap;

    #[test]
    fn memory_segments_are_copied_out_in_order_in_bounce_sized_writes() {
        let mem: Arc<dyn crate::savevm::SharedMemory> =
            Arc::new(Heap((0..300_000u32).map(|i| (i % 251) as u8).collect()));
        let seg = |at: usize, len: usize| MemorySegment::new(&mem, at, len).unwrap();
        // Segments smaller than, equal to and larger than the bounce buffer,
        // between copied bytes and `Bytes` segments.
        let mut b = SectionBuf::default();
        let mut want = Vec::new();
        for (i, len) in [4096, BOUNCE_BYTES, 1, 3 * BOUNCE_BYTES + 17, 4096]
            .into_iter()
            .enumerate()
        {
            b.put_slice(&[i as u8; 8]);
            want.extend_from_slice(&[i as u8; 8]);
            b.put_memory(seg(i * 1000, len));
            want.extend_from_slice(&mem_bytes(&mem, i * 1000, len));
            b.put_shared(Bytes::from_static(b"s"));
            want.push(b's');
        }
        assert_eq!(b.len(), want.len());
        assert_eq!(b.to_vec(), want);
        let mut d = Dribble(Vec::new());
        b.write_to_with(&mut d, &mut Vec::new()).unwrap();
        assert_eq!(d.0, want, "partial writes");
        // The memory is read when written out, not when queued.
        let cells = Arc::new(Cells((0..16).map(|_| AtomicU8::new(0)).collect()));
        let dynmem: Arc<dyn crate::savevm::SharedMemory> = cells.clone();
        let mut later = SectionBuf::default();
        later.put_memory(MemorySegment::new(&dynmem, 0, 16).unwrap());
        cells.0[0].store(9, Ordering::Relaxed);
        assert_eq!(later.to_vec()[0], 9);
        assert!(later.has_memory());
        later.truncate(0);
        assert!(!later.has_memory(), "truncate forgets the memory segment");
    }

    #[test]
    fn runs_of_adjacent_pages_cross_bounce_buffers_intact() {
        let mem: Arc<dyn crate::savevm::SharedMemory> = Arc::new(Heap(
            (0..200 * 4096u32)
                .map(|i| (i / 4096 + i % 7) as u8)
                .collect(),
        ));
        // 40 back-to-back pages (a dirty run) with headers between them, a
        // jump, then 30 more: runs span and cross 64 KiB bounce buffers.
        let mut b = SectionBuf::default();
        let mut want = Vec::new();
        for page in (0..40).chain(100..130) {
            b.put_slice(&(page as u64).to_be_bytes());
            want.extend_from_slice(&(page as u64).to_be_bytes());
            b.put_memory(MemorySegment::new(&mem, page * 4096, 4096).unwrap());
            want.extend_from_slice(&mem_bytes(&mem, page * 4096, 4096));
        }
        assert_eq!(b.to_vec(), want);
        let mut d = Dribble(Vec::new());
        b.write_to(&mut d).unwrap();
        assert_eq!(d.0, want);
    }

    /// Memory the test writes while a segment of it is queued.
    struct Cells(Box<[AtomicU8]>);
    // SAFETY: the boxed cells live, unmoved, as long as the value; writes go
    // through the atomics (interior mutability), never through the address.
    #[allow(unsafe_code)]
    unsafe impl crate::savevm::SharedMemory for Cells {
        fn host_range(&self) -> (usize, usize) {
            (self.0.as_ptr() as usize, self.0.len())
        }
    }

    fn mem_bytes(mem: &Arc<dyn crate::savevm::SharedMemory>, at: usize, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        MemorySegment::new(mem, at, len).unwrap().copy_to(&mut v);
        v
    }
}
