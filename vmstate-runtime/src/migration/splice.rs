//! Guest pages from memory to a socket with no copy in user space or into the
//! socket: `vmsplice(2)` puts references to the pages themselves into a pipe,
//! `splice(2)` moves them from the pipe into the socket, and the receiver's
//! kernel copies them out of the source's guest memory. A plain `writev` of
//! the same bytes makes the kernel copy every page into socket buffers first,
//! which was the largest single cost of our source (43% of its samples in
//! `_copy_from_iter`, measured with `perf` on a 1 GiB migration).
//!
//! The rest of the stream (record headers, section framing, device state) is
//! copied into an *arena*: pages this process maps for the purpose, writes
//! once, splices, and unmaps when the next batch needs room. The kernel may
//! still hold those pages (in the pipe or in the receiver's socket queue) after
//! the splice returns, and it reads them only when the receiver reads; so
//! bytes spliced from memory must never change afterwards. Unmapping drops
//! only this process's view (the kernel's page references keep the pages), and
//! fresh pages come from the next map, so no byte once spliced is written
//! again. Guest memory is the exception the protocol allows for: a page the
//! guest writes after it was queued is dirty again and is sent again.
//!
//! Linux and unix sockets only; elsewhere (TCP, where splicing measured
//! slower, files, pipes) the stream is written with vectored writes and guest
//! memory is copied once (`SectionBuf::write_to`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};

use crate::savevm::{Part, SectionBuf};

/// The pipe's capacity: 256 buffer slots. Each segment of a batch (an 8-byte
/// record header, a 4 KiB page) takes one slot, so one `vmsplice` moves up to
/// 128 pages (512 KiB) before one `splice` empties the pipe. (With the
/// default 16 slots it would be 8 pages per pair of calls.)
const PIPE_BYTES: usize = 1 << 20;

/// Bytes of each arena mapping: 8192 record headers, or the copied bytes of
/// a whole flush of device state.
const ARENA_BYTES: usize = 256 << 10;

/// Segments per `vmsplice` call (the kernel's `UIO_MAXIOV`).
const MAX_IOV: usize = 1024;

/// Sends [`SectionBuf`]s to one socket through a pipe (see the module docs).
pub(crate) struct Splicer {
    socket: OwnedFd,
    pipe_read: OwnedFd,
    pipe_write: OwnedFd,
    /// The pipe's size as granted (`PIPE_BYTES`, less where the system's
    /// `pipe-max-size` is smaller).
    pipe_bytes: usize,
    arena: Arena,
    iov: Vec<libc::iovec>,
    /// The write timeout of the socket, for the typed error a stalled
    /// receiver gives (as for the stream's plain writes).
    write_timeout: Option<Duration>,
}

// SAFETY: the only non-Send/Sync fields are the `iovec`s of `iov`, raw
// addresses that are rebuilt for every batch and never dereferenced by this
// process (the kernel reads them during the `vmsplice` call), and the arena's
// mapping, which only this value writes or unmaps. Moving the value to another
// thread moves all of it.
#[allow(unsafe_code)]
unsafe impl Send for Splicer {}

impl std::fmt::Debug for Splicer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Splicer")
            .field("socket", &self.socket.as_raw_fd())
            .field("pipe_bytes", &self.pipe_bytes)
            .finish_non_exhaustive()
    }
}

impl Splicer {
    /// A splicer onto `socket` (a duplicate of the stream's socket: writes
    /// through it go to the same connection), or the reason there is none.
    pub(crate) fn new(socket: BorrowedFd<'_>, write_timeout: Option<Duration>) -> io::Result<Self> {
        let socket = socket.try_clone_to_owned()?;
        let (pipe_read, pipe_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let granted = fcntl(
            pipe_write.as_fd(),
            FcntlArg::F_SETPIPE_SZ(PIPE_BYTES as libc::c_int),
        )
        .or_else(|_| fcntl(pipe_write.as_fd(), FcntlArg::F_GETPIPE_SZ))?;
        Ok(Splicer {
            socket,
            pipe_read,
            pipe_write,
            pipe_bytes: granted as usize,
            arena: Arena::new()?,
            iov: Vec::with_capacity(MAX_IOV),
            write_timeout,
        })
    }

    /// Writes all of `buf` to the socket, in stream order.
    pub(crate) fn write_buf(&mut self, buf: &SectionBuf) -> io::Result<()> {
        for part in buf.parts() {
            match part {
                Part::Memory(m) => self.push(m.addr(), m.len())?,
                Part::Bytes(b) => {
                    for chunk in b.chunks(ARENA_BYTES) {
                        if !self.arena.has_room(chunk.len()) {
                            // Queued segments may point into this arena:
                            // they go out before it is unmapped.
                            self.send_batch()?;
                            self.arena.renew()?;
                        }
                        let at = self.arena.copy_in(chunk);
                        self.push(at, chunk.len())?;
                    }
                }
            }
        }
        self.send_batch()
    }

    /// Queues one segment; sends the batch when it is full.
    fn push(&mut self, base: usize, len: usize) -> io::Result<()> {
        self.iov.push(libc::iovec {
            iov_base: base as *mut libc::c_void,
            iov_len: len,
        });
        if self.iov.len() == MAX_IOV {
            self.send_batch()?;
        }
        Ok(())
    }

    /// Waits until the receiver has taken every byte queued on the socket
    /// (`SIOCOUTQ` is 0; for TCP: acknowledged). Spliced guest pages are
    /// read from guest memory only when the receiver reads them, so the
    /// migration must not report completion, and the VMM must not reuse the
    /// memory, before then. Polls every 200 µs; gives up with the typed
    /// write timeout after the socket's write timeout, and returns
    /// `Ok(false)` as soon as `cancelled()` is true.
    pub(crate) fn wait_delivered(&self, cancelled: &dyn Fn() -> bool) -> io::Result<bool> {
        let started = std::time::Instant::now();
        loop {
            let mut queued: libc::c_int = 0;
            // SAFETY: `TIOCOUTQ` (`SIOCOUTQ` for sockets) writes one `c_int`
            // through the pointer, which points to `queued`, a live local;
            // the descriptor is this splicer's socket, open for its life.
            #[allow(unsafe_code)]
            let r = unsafe { libc::ioctl(self.socket.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            if queued == 0 {
                return Ok(true);
            }
            if cancelled() {
                return Ok(false);
            }
            if let Some(t) = self.write_timeout.filter(|t| started.elapsed() >= *t) {
                return Err(super::transport::typed_write_error(
                    io::Error::from(io::ErrorKind::TimedOut),
                    t,
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Moves the segments of `self.iov` into the pipe and from the pipe into
    /// the socket, until all of them are in the socket.
    fn send_batch(&mut self) -> io::Result<()> {
        let mut next = 0;
        while next < self.iov.len() {
            let queued = self.vmsplice_from(next)?;
            // Advance past what the pipe took (a segment may be taken in part).
            let mut left = queued;
            while left > 0 {
                let seg = &mut self.iov[next];
                if left >= seg.iov_len {
                    left -= seg.iov_len;
                    next += 1;
                } else {
                    seg.iov_base = (seg.iov_base as usize + left) as *mut libc::c_void;
                    seg.iov_len -= left;
                    left = 0;
                }
            }
            self.drain(queued)?;
        }
        self.iov.clear();
        Ok(())
    }

    /// `vmsplice` of `self.iov[from..]` into the (empty) pipe: the bytes
    /// queued (at least one).
    fn vmsplice_from(&mut self, from: usize) -> io::Result<usize> {
        let segments = &self.iov[from..];
        loop {
            // SAFETY: every `iovec` names bytes that stay mapped and readable
            // across the call: guest memory held by a `MemorySegment` of the
            // `SectionBuf` being written (borrowed by the caller for the whole
            // `write_buf`), or the live arena mapping (see `Arena`). The
            // kernel only reads them and takes references on their pages;
            // nothing here forms a Rust reference to guest memory. The count
            // passed is the slice's length (at most `MAX_IOV`). The
            // no-later-change rule of `vmsplice(2)` is kept for the arena's
            // bytes by never writing them again (module docs); guest pages may
            // change, which the protocol allows for (they are dirty again).
            #[allow(unsafe_code)]
            let n = unsafe {
                libc::vmsplice(
                    self.pipe_write.as_raw_fd(),
                    segments.as_ptr(),
                    segments.len(),
                    0,
                )
            };
            if n > 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "vmsplice queued no bytes",
                ));
            }
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Moves `bytes` from the pipe into the socket. The socket's send
    /// timeout applies as it does to a plain write.
    fn drain(&mut self, mut bytes: usize) -> io::Result<usize> {
        let total = bytes;
        while bytes > 0 {
            match splice(
                self.pipe_read.as_fd(),
                None,
                self.socket.as_fd(),
                None,
                bytes,
                SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE,
            ) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "transport accepted no bytes",
                    ))
                }
                Ok(n) => bytes -= n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    let e = io::Error::from(e);
                    return Err(match self.write_timeout {
                        Some(t) => super::transport::typed_write_error(e, t),
                        None => e,
                    });
                }
            }
        }
        Ok(total)
    }
}

/// Pages mapped for copied bytes, written once each (see the module docs).
struct Arena {
    /// Start of the current mapping.
    base: usize,
    used: usize,
}

impl Arena {
    fn new() -> io::Result<Self> {
        Ok(Arena {
            base: map_arena()?,
            used: 0,
        })
    }

    /// Whether `len` more bytes fit in the current mapping.
    fn has_room(&self, len: usize) -> bool {
        self.used + len <= ARENA_BYTES
    }

    /// Replaces the mapping with a fresh one. The caller has sent every
    /// segment that points into the old one.
    fn renew(&mut self) -> io::Result<()> {
        let fresh = map_arena()?;
        unmap_arena(self.base);
        self.base = fresh;
        self.used = 0;
        Ok(())
    }

    /// Copies `bytes` to fresh arena bytes and returns their address.
    ///
    /// # Panics
    /// When they do not fit ([`has_room`](Self::has_room) is checked first).
    fn copy_in(&mut self, bytes: &[u8]) -> usize {
        assert!(self.has_room(bytes.len()), "arena overflow");
        let at = self.base + self.used;
        // SAFETY: `at..at + bytes.len()` lies inside the current mapping
        // (`used + len <= ARENA_BYTES`, asserted above), which is readable and
        // writable, private to this process and never written twice: `used`
        // only grows until the mapping is replaced. `bytes` is a Rust slice
        // outside the arena, so they do not overlap.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len());
        }
        self.used += bytes.len();
        at
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        unmap_arena(self.base);
    }
}

/// A fresh private anonymous mapping of `ARENA_BYTES`.
fn map_arena() -> io::Result<usize> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory; the result is checked.
    #[allow(unsafe_code)]
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            ARENA_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p as usize)
}

/// Unmaps an arena mapping. Pages the kernel still references (queued in the
/// pipe or the socket) stay alive until it drops them.
fn unmap_arena(base: usize) {
    // SAFETY: `base` is the start of an `ARENA_BYTES` mapping made by
    // `map_arena` and not yet unmapped (each is unmapped once, when replaced
    // or dropped); no Rust reference into it exists (it is only written
    // through raw pointers in `copy_in`).
    #[allow(unsafe_code)]
    unsafe {
        libc::munmap(base as *mut libc::c_void, ARENA_BYTES);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::savevm::{MemorySegment, SharedMemory};

    use crate::savevm::Heap;

    /// A buffer of `pages` pages, each preceded by an 8-byte header, with a
    /// `Bytes` segment and a large copied run at the end.
    fn sample(mem: &Arc<dyn SharedMemory>, pages: usize, tail: usize) -> SectionBuf {
        let mut b = SectionBuf::default();
        for i in 0..pages {
            bytes::BufMut::put_u64(&mut b, i as u64);
            b.put_memory(MemorySegment::new(mem, i * 4096, 4096).unwrap());
        }
        b.put_shared(Bytes::from_static(b"shared"));
        bytes::BufMut::put_bytes(&mut b, 0xab, tail);
        b
    }

    fn receive(buf: &SectionBuf, slots: Option<usize>) -> Vec<u8> {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut s = Splicer::new(a.as_fd(), None).unwrap();
        if let Some(n) = slots {
            fcntl(
                s.pipe_write.as_fd(),
                FcntlArg::F_SETPIPE_SZ((n * 4096) as libc::c_int),
            )
            .unwrap();
        }
        let want = buf.len();
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; want];
            b.read_exact(&mut got).unwrap();
            got
        });
        s.write_buf(buf).unwrap();
        drop(s);
        reader.join().unwrap()
    }

    #[test]
    fn spliced_bytes_are_the_buffers_bytes_in_order() {
        let mem: Arc<dyn SharedMemory> = Arc::new(Heap(
            (0..600 * 4096).map(|i| (i * 7 / 4096) as u8).collect(),
        ));
        // 600 pages: several batches; a tail larger than a batch and than
        // an arena; tiny pipes force partial vmsplices.
        for (pages, tail, slots) in [
            (0, 10, None),
            (3, 0, None),
            (600, 100, None),
            (600, ARENA_BYTES + 5000, None),
            (50, 9000, Some(1)),
            (50, 9000, Some(3)),
        ] {
            let buf = sample(&mem, pages, tail);
            assert_eq!(
                receive(&buf, slots),
                buf.to_vec(),
                "{pages} {tail} {slots:?}"
            );
        }
    }

    #[test]
    fn arenas_are_replaced_not_reused() {
        let mem: Arc<dyn SharedMemory> = Arc::new(Heap(vec![1u8; 4096].into()));
        // 20000 headers need several arenas.
        let mut buf = SectionBuf::default();
        for i in 0..20_000u64 {
            bytes::BufMut::put_u64(&mut buf, i);
            if i % 100 == 0 {
                buf.put_memory(MemorySegment::new(&mem, 0, 4096).unwrap());
            }
        }
        assert_eq!(receive(&buf, None), buf.to_vec());
    }

    #[test]
    fn a_stalled_receiver_gives_the_typed_timeout() {
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut s = Splicer::new(a.as_fd(), Some(Duration::from_millis(50))).unwrap();
        let mem: Arc<dyn SharedMemory> = Arc::new(Heap(vec![1u8; 64 << 20].into()));
        let mut buf = SectionBuf::default();
        buf.put_memory(MemorySegment::new(&mem, 0, 64 << 20).unwrap());
        let e = s.write_buf(&buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("does not read"), "{e}");
    }

    #[test]
    fn completion_waits_until_the_receiver_took_the_bytes() {
        // 64 KiB: fits in the socket's default send buffer, so the write
        // returns while nobody reads.
        const N: usize = 64 << 10;
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut s = Splicer::new(a.as_fd(), Some(Duration::from_millis(100))).unwrap();
        let mem: Arc<dyn SharedMemory> = Arc::new(Heap(vec![3u8; N].into()));
        let mut buf = SectionBuf::default();
        buf.put_memory(MemorySegment::new(&mem, 0, N).unwrap());
        s.write_buf(&buf).unwrap();
        // Nobody reads: the wait times out (typed), or ends on a cancel.
        let e = s.wait_delivered(&|| false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(!s.wait_delivered(&|| true).unwrap(), "cancelled");
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; N];
            b.read_exact(&mut got).unwrap();
            got
        });
        assert!(s.wait_delivered(&|| false).unwrap());
        assert_eq!(reader.join().unwrap(), vec![3u8; N]);
    }

    #[test]
    fn a_closed_receiver_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let mut s = Splicer::new(a.as_fd(), None).unwrap();
        let mem: Arc<dyn SharedMemory> = Arc::new(Heap(vec![1u8; 4096].into()));
        let mut buf = SectionBuf::default();
        buf.put_memory(MemorySegment::new(&mem, 0, 4096).unwrap());
        assert!(s.write_buf(&buf).is_err());
    }
}
