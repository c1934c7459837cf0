//! The source's return path (QEMU `source_return_path_thread`): a thread reads the
//! destination's messages into shared state that the driver polls: PONGs,
//! SWITCHOVER_ACK, postcopy page requests, received bitmaps, RESUME_ACK and the
//! final SHUT. The first bad frame ends the thread and stays as its error.
//!
//! Everything in a frame is the destination's claim, so: a frame's payload is
//! read into a fixed buffer of [`MAX_RP_PAYLOAD`] bytes; a RECV_BITMAP is taken
//! only for the block the driver asked for, and its blob is read in chunks of
//! [`BITMAP_CHUNK`] bytes as they arrive (never allocated by its claimed size);
//! page requests must be ranges, are refused without the postcopy-ram
//! capability, and at most [`MAX_QUEUED_PAGE_REQUESTS`] wait at once; PONGs are
//! counted, not stored. Waits for a reply the destination owes are bounded by
//! the reply timeout (see [`SourceOptions`](super::SourceOptions)); dropping the
//! [`ReturnPath`] shuts the connection down so the thread never outlives it.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, RecoveryError, Result, ReturnPathError, TimeoutError};
use crate::migration::params::MigrationCapabilities;
use crate::migration::transport::ReadWrite;
use crate::savevm::format::{
    MAX_RECV_BITMAP, MAX_RP_PAYLOAD, RECV_BITMAP_ENDING, RESUME_ACK_VALUE,
};
use crate::savevm::{QemuVersion, RpMessage};
use crate::wire::Reader;

/// Most postcopy page requests the source holds before serving them: far more
/// than a guest's vCPUs can fault on at once, so only a destination flooding
/// the return path reaches it (and fails with
/// [`ReturnPathError::TooManyPageRequests`]).
pub const MAX_QUEUED_PAGE_REQUESTS: usize = 65_536;

/// A received bitmap's blob is read (and its buffer grown) this much at a time.
const BITMAP_CHUNK: usize = 64 * 1024;

/// How often a wait for a reply looks at the shared state.
const REPLY_POLL: Duration = Duration::from_millis(1);

/// One page request: (block, start, len). The block name is shared between the
/// requests naming it, so a request costs no allocation of its own.
pub(super) type PageRequest = (Arc<str>, u64, u64);

/// The reader thread and what it has seen.
pub(super) struct ReturnPath {
    state: Arc<Mutex<RpState>>,
    thread: Option<JoinHandle<()>>,
    /// A second handle on the connection, to end the thread (drop, timeouts).
    kill: Option<Box<dyn ReadWrite>>,
    reply_timeout: Option<Duration>,
}

/// What the destination said so far, and what the source expects of it.
#[derive(Default)]
struct RpState {
    /// Page requests are allowed (postcopy-ram capability).
    postcopy: bool,
    error: Option<ReturnPathError>,
    shut: Option<bool>,
    switchover_acked: bool,
    /// PONGs received, and the last one's value.
    pongs: u64,
    last_pong: Option<u32>,
    /// Postcopy page requests not yet handed to a handler.
    page_requests: VecDeque<PageRequest>,
    /// Block of the previous request (REQ_PAGES refers to it).
    last_block: Option<Arc<str>>,
    /// The block whose received bitmap the driver asked for (postcopy
    /// recovery), and the size that bitmap must have when the handler knows it.
    bitmap_wanted: Option<(String, Option<u64>)>,
    /// Received bitmaps from postcopy recovery, by block.
    bitmaps: HashMap<String, Vec<u8>>,
    /// RESUME_ACK(1) arrived.
    resume_acked: bool,
}

impl RpState {
    fn new(postcopy: bool) -> Self {
        RpState {
            postcopy,
            ..RpState::default()
        }
    }

    /// Takes in one message; returns the error that ends the thread, if any.
    fn receive(&mut self, msg: RpMessage, blob: Option<Vec<u8>>) -> Option<ReturnPathError> {
        match (msg, blob) {
            (RpMessage::RecvBitmap(block), Some(blob)) => {
                self.bitmap_wanted = None;
                self.bitmaps.insert(block, blob);
            }
            (RpMessage::ResumeAck(value), _) => {
                if value != RESUME_ACK_VALUE {
                    return Some(ReturnPathError::BadResumeAck { value });
                }
                self.resume_acked = true;
            }
            (RpMessage::Pong(v), _) => {
                self.pongs += 1;
                self.last_pong = Some(v);
            }
            (RpMessage::SwitchoverAck, _) => self.switchover_acked = true,
            (msg @ RpMessage::ReqPages { .. }, _) if !self.postcopy => {
                return Some(ReturnPathError::Unexpected(msg));
            }
            (RpMessage::ReqPages { block, start, len }, _) => {
                if let Some(b) = block {
                    if self.last_block.as_deref() != Some(b.as_str()) {
                        self.last_block = Some(Arc::from(b));
                    }
                }
                let Some(b) = self.last_block.clone() else {
                    return Some(ReturnPathError::ReqPagesWithoutBlock);
                };
                let len = u64::from(len);
                if len == 0 || start.checked_add(len).is_none() {
                    return Some(ReturnPathError::BadPageRange {
                        block: b.to_string(),
                        start,
                        len,
                    });
                }
                if self.page_requests.len() >= MAX_QUEUED_PAGE_REQUESTS {
                    return Some(ReturnPathError::TooManyPageRequests {
                        limit: MAX_QUEUED_PAGE_REQUESTS,
                    });
                }
                self.page_requests.push_back((b, start, len));
            }
            (other, _) => return Some(ReturnPathError::Unexpected(other)),
        }
        None
    }
}

/// One message, with the blob that follows a RECV_BITMAP outside the framing.
type Frame = (RpMessage, Option<Vec<u8>>);

/// Reads one frame (header and up to [`MAX_RP_PAYLOAD`] bytes, plus the blob of a
/// RECV_BITMAP for the block `wanted` names, which must have the size `wanted`
/// gives when it gives one, and at most [`MAX_RECV_BITMAP`] bytes otherwise);
/// `None` at a clean end of the stream.
fn read_frame(
    reverse: &mut dyn Read,
    version: QemuVersion,
    wanted: impl FnOnce() -> Option<(String, Option<u64>)>,
) -> std::result::Result<Option<Frame>, ReturnPathError> {
    let broken = |e: Error| ReturnPathError::Read(Arc::new(e));
    let io = |e: std::io::Error| broken(e.into());
    let mut frame = [0u8; 4 + MAX_RP_PAYLOAD];
    if let Err(e) = reverse.read_exact(&mut frame[..4]) {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return Ok(None);
        }
        return Err(io(e));
    }
    let len = usize::from(u16::from_be_bytes([frame[2], frame[3]]));
    // A longer payload is refused by the parser from the header alone.
    let got = if len <= MAX_RP_PAYLOAD {
        reverse.read_exact(&mut frame[4..4 + len]).map_err(io)?;
        4 + len
    } else {
        4
    };
    let mut r = Reader::new(&frame[..got]);
    let msg = RpMessage::read(&mut r, version).map_err(broken)?;
    if let RpMessage::RecvBitmap(block) = &msg {
        let expected = match wanted() {
            Some((b, expected)) if b == *block => expected,
            _ => return Err(ReturnPathError::Unexpected(msg)),
        };
        // The bitmap blob follows outside the framing.
        let mut b8 = [0u8; 8];
        reverse.read_exact(&mut b8).map_err(io)?;
        let size = u64::from_be_bytes(b8);
        match expected {
            // The source knows the block: only its own bitmap size is right.
            Some(expected) if size != expected => {
                return Err(ReturnPathError::BitmapSizeMismatch {
                    block: block.clone(),
                    size,
                    expected,
                });
            }
            _ if size > MAX_RECV_BITMAP || size % 8 != 0 => {
                return Err(ReturnPathError::BadBitmapSize { size });
            }
            _ => {}
        }
        let blob = read_blob(reverse, size as usize).map_err(io)?;
        reverse.read_exact(&mut b8).map_err(io)?;
        if u64::from_be_bytes(b8) != RECV_BITMAP_ENDING {
            return Err(ReturnPathError::BitmapEndMissing);
        }
        return Ok(Some((msg, Some(blob))));
    }
    Ok(Some((msg, None)))
}

/// `size` bytes, the buffer grown [`BITMAP_CHUNK`] bytes at a time as they
/// arrive (a claimed size is not memory until the bytes back it).
fn read_blob(reverse: &mut dyn Read, size: usize) -> std::io::Result<Vec<u8>> {
    let mut blob = Vec::new();
    while blob.len() < size {
        let at = blob.len();
        let chunk = (size - at).min(BITMAP_CHUNK);
        blob.resize(at + chunk, 0);
        reverse.read_exact(&mut blob[at..])?;
    }
    Ok(blob)
}

/// Reads frames into `state` until SHUT, the end of the stream or the first
/// error (which it stores); what the return-path thread runs.
fn read_into(reverse: &mut dyn Read, state: &Mutex<RpState>, version: QemuVersion) {
    loop {
        let wanted = || state.lock().ok().and_then(|s| s.bitmap_wanted.clone());
        let frame = read_frame(reverse, version, wanted);
        let Ok(mut s) = state.lock() else { return };
        let error = match frame {
            Ok(Some((RpMessage::Shut { error }, _))) => {
                s.shut = Some(error);
                return;
            }
            Ok(Some((msg, blob))) => s.receive(msg, blob),
            Ok(None) => s
                .shut
                .is_none()
                .then_some(ReturnPathError::ClosedBeforeShut),
            Err(e) => Some(e),
        };
        if let Some(e) = error {
            s.error = Some(e);
            return;
        }
    }
}

/// Reads a destination's return-path messages from `reverse` exactly as the
/// source's return-path thread does (same framing, limits and checks), until
/// SHUT: returns SHUT's error flag. `postcopy`: page requests are allowed (the
/// postcopy-ram capability); `bitmap_for`: the block whose RECV_BITMAP the
/// source asked for. Fails with [`ErrorKind::ReturnPath`] like the migration
/// would. For tests and fuzzing of the parser on a thread of the caller's.
///
/// ```
/// use vmstate_runtime::migration::read_return_path;
/// use vmstate_runtime::savevm::QemuVersion;
/// use vmstate_runtime::ErrorKind;
///
/// // PONG(3), then SHUT(0).
/// let ok = [0, 2, 0, 4, 0, 0, 0, 3, 0, 1, 0, 4, 0, 0, 0, 0];
/// assert_eq!(read_return_path(&mut &ok[..], QemuVersion::V7_2, false, None).unwrap(), false);
/// // Message type 99 does not exist.
/// let e = read_return_path(&mut &[0, 99, 0, 0][..], QemuVersion::V7_2, false, None).unwrap_err();
/// assert!(matches!(e.kind(), ErrorKind::ReturnPath(_)), "{e}");
/// ```
pub fn read_return_path(
    reverse: &mut dyn Read,
    version: QemuVersion,
    postcopy: bool,
    bitmap_for: Option<&str>,
) -> Result<bool> {
    read_return_path_sized(reverse, version, postcopy, bitmap_for.map(|b| (b, None)))
}

/// [`read_return_path`] where the source also knows the size of the received
/// bitmap it asked for (`bitmap_for`: the block and, when known, the size its
/// RECV_BITMAP must announce, as
/// [`PostcopyRam::recv_bitmap_size`](crate::savevm::PostcopyRam::recv_bitmap_size)
/// gives it): any other size fails with
/// [`ReturnPathError::BitmapSizeMismatch`] before a byte of the blob is read.
///
/// ```
/// use vmstate_runtime::error::ReturnPathError;
/// use vmstate_runtime::migration::read_return_path_sized;
/// use vmstate_runtime::savevm::QemuVersion;
/// use vmstate_runtime::ErrorKind;
///
/// // RECV_BITMAP("pc.ram") claiming a 1 GiB bitmap for a block whose bitmap has 16 bytes.
/// let mut rp = vec![0, 5, 0, 7, 6, b'p', b'c', b'.', b'r', b'a', b'm'];
/// rp.extend_from_slice(&(1u64 << 30).to_be_bytes());
/// let e = read_return_path_sized(&mut &rp[..], QemuVersion::V7_2, true, Some(("pc.ram", Some(16))))
///     .unwrap_err();
/// assert!(matches!(
///     e.kind(),
///     ErrorKind::ReturnPath(ReturnPathError::BitmapSizeMismatch { expected: 16, .. })
/// ), "{e}");
/// ```
pub fn read_return_path_sized(
    reverse: &mut dyn Read,
    version: QemuVersion,
    postcopy: bool,
    bitmap_for: Option<(&str, Option<u64>)>,
) -> Result<bool> {
    let mut state = RpState::new(postcopy);
    state.bitmap_wanted = bitmap_for.map(|(b, size)| (b.to_string(), size));
    let state = Mutex::new(state);
    read_into(reverse, &state, version);
    let s = state
        .lock()
        .map_err(|_| Error::poisoned("return path state poisoned"))?;
    match (s.shut, &s.error) {
        (Some(error), _) => Ok(error),
        (None, Some(e)) => Err(return_path_err(e.clone())),
        (None, None) => Err(return_path_err(ReturnPathError::ClosedBeforeShut)),
    }
}

fn return_path_err(e: ReturnPathError) -> Error {
    Error::new(ErrorKind::ReturnPath(e))
}

impl Drop for ReturnPath {
    fn drop(&mut self) {
        // Unblocks the thread's read, so it ends with the migration.
        if let Some(k) = &self.kill {
            let _ = k.shutdown();
        }
    }
}

impl ReturnPath {
    /// Starts the reader thread. `postcopy`: page requests are allowed;
    /// `reply_timeout`: how long a wait for a reply the destination owes lasts.
    pub(super) fn spawn(
        mut reverse: Box<dyn ReadWrite>,
        version: QemuVersion,
        postcopy: bool,
        reply_timeout: Option<Duration>,
    ) -> Result<Self> {
        let state = Arc::new(Mutex::new(RpState::new(postcopy)));
        let st = state.clone();
        let kill = reverse.try_clone_rw();
        let thread = std::thread::Builder::new()
            .name("return-path".into())
            .spawn(move || read_into(reverse.as_mut(), &st, version))?;
        Ok(ReturnPath {
            state,
            thread: Some(thread),
            kill,
            reply_timeout,
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, RpState>> {
        self.state
            .lock()
            .map_err(|_| Error::poisoned("return path state poisoned"))
    }

    /// Fails if the destination reported an error or the return path broke.
    pub(super) fn check(&self) -> Result<()> {
        let s = self.lock()?;
        if let Some(e) = &s.error {
            return Err(return_path_err(e.clone()));
        }
        if s.shut == Some(true) {
            return Err(Error::new(ErrorKind::PeerFailed));
        }
        Ok(())
    }

    /// Announces that the received bitmap of `block` is asked for (before the
    /// RECV_BITMAP command goes out), and the size it must have when the
    /// handler knows it (then a RECV_BITMAP claiming another size is refused
    /// before its blob is read).
    pub(super) fn want_bitmap(&self, block: &str, size: Option<u64>) -> Result<()> {
        self.lock()?.bitmap_wanted = Some((block.to_string(), size));
        Ok(())
    }

    /// Waits for the received bitmap of `block`.
    pub(super) fn wait_bitmap(&self, block: &str) -> Result<Vec<u8>> {
        self.wait_for(|s| s.bitmaps.remove(block), "the received bitmap")
    }

    /// Waits for RESUME_ACK.
    pub(super) fn wait_resume_ack(&self) -> Result<()> {
        self.wait_for(|s| s.resume_acked.then_some(()), "RESUME_ACK")
    }

    /// Polls the state until `f` yields, the return path fails, or the reply
    /// timeout passes (then `Ok(None)`).
    fn poll<T>(&self, mut f: impl FnMut(&mut RpState) -> Option<Result<T>>) -> Result<Option<T>> {
        let deadline = self.reply_timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(r) = f(&mut *self.lock()?) {
                return r.map(Some);
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Ok(None);
            }
            std::thread::sleep(REPLY_POLL);
        }
    }

    fn wait_for<T>(
        &self,
        mut f: impl FnMut(&mut RpState) -> Option<T>,
        waiting_for: &'static str,
    ) -> Result<T> {
        let recovery = |e: RecoveryError| Error::new(ErrorKind::PostcopyRecovery(e));
        let got = self.poll(|s| {
            if let Some(v) = f(s) {
                return Some(Ok(v));
            }
            s.error.as_ref().map(|e| {
                Err(recovery(RecoveryError::Wait {
                    waiting_for,
                    cause: e.clone(),
                }))
            })
        })?;
        got.ok_or_else(|| recovery(RecoveryError::TimedOut { waiting_for }))
    }

    /// `f` on the state; `T::default()` when the thread panicked holding it.
    fn peek<T: Default>(&self, f: impl FnOnce(&mut RpState) -> T) -> T {
        self.state.lock().map(|mut s| f(&mut s)).unwrap_or_default()
    }

    /// Page requests received since the last call.
    pub(super) fn take_page_requests(&self) -> Vec<PageRequest> {
        self.peek(|s| s.page_requests.drain(..).collect())
    }

    pub(super) fn has_page_requests(&self) -> bool {
        self.peek(|s| !s.page_requests.is_empty())
    }

    pub(super) fn switchover_allowed(&self, caps: MigrationCapabilities) -> bool {
        !caps.switchover_ack || self.peek(|s| s.switchover_acked)
    }

    /// The reply timeout (for waits the driver runs itself).
    pub(super) fn reply_timeout(&self) -> Option<Duration> {
        self.reply_timeout
    }

    /// Waits (at most the reply timeout) for the destination's SHUT and turns an
    /// error report into a failure.
    pub(super) fn wait_shut(mut self) -> Result<()> {
        let outcome = self.poll(|s| match (s.shut, &s.error) {
            (Some(false), _) => Some(Ok(())),
            (Some(true), _) => Some(Err(Error::new(ErrorKind::PeerFailed))),
            (None, Some(e)) => Some(Err(return_path_err(e.clone()))),
            (None, None) => None,
        });
        let outcome = match outcome {
            Ok(Some(())) => Ok(()),
            Err(e) => Err(e),
            Ok(None) => {
                if let Some(k) = &self.kill {
                    let _ = k.shutdown();
                }
                Err(Error::new(ErrorKind::TimedOut(TimeoutError::Reply {
                    waiting_for: "SHUT",
                    timeout: self.reply_timeout.unwrap_or_default(),
                })))
            }
        };
        if let Some(t) = self.thread.take() {
            if outcome.is_ok() || self.kill.is_some() {
                let _ = t.join();
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::migration::transport::mem_pair;
    use crate::savevm::RpMessage;
    use crate::wire::Writer;

    /// A return path whose destination end writes `frames` and hangs up.
    fn fed(frames: &[RpMessage], trailer: &[u8]) -> ReturnPath {
        let (src, mut dst) = mem_pair();
        let rp = ReturnPath::spawn(src.reverse.unwrap(), QemuVersion::V10, true, None).unwrap();
        rp.want_bitmap("pc.ram", None).unwrap();
        let mut w = Writer::new(Vec::new());
        for f in frames {
            f.write(&mut w).unwrap();
        }
        let mut bytes = w.into_inner();
        bytes.extend_from_slice(trailer);
        let out = dst.reverse.as_mut().unwrap();
        out.write_all(&bytes).unwrap();
        drop(dst);
        drop(src.stream);
        rp
    }

    #[test]
    fn shut_with_error_is_peer_failed() {
        let rp = fed(&[RpMessage::Pong(1), RpMessage::Shut { error: true }], &[]);
        let e = rp.wait_shut().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::PeerFailed), "{e}");
        assert_eq!(e.to_string(), "destination failed to load the stream");
        let rp = fed(&[RpMessage::Shut { error: false }], &[]);
        rp.wait_shut().unwrap();
    }

    #[test]
    fn hang_up_before_shut_is_a_return_path_error() {
        let rp = fed(&[RpMessage::Pong(1)], &[]);
        let e = rp.wait_shut().unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::ReturnPath(ReturnPathError::ClosedBeforeShut)
            ),
            "{e}"
        );
        assert_eq!(e.to_string(), "return path closed before SHUT");
    }

    #[test]
    fn a_bad_frame_ends_the_thread_with_its_reason() {
        // Type 0 does not exist.
        let rp = fed(&[], &[0, 0, 0, 0]);
        let e = rp.wait_shut().unwrap_err();
        let ErrorKind::ReturnPath(ReturnPathError::Read(inner)) = e.kind() else {
            panic!("{e}")
        };
        assert!(
            matches!(inner.kind(), ErrorKind::BadReturnPathMessage { ty: 0, .. }),
            "{inner}"
        );
        assert!(e
            .to_string()
            .starts_with("return path: bad return-path message type 0"));
        // REQ_PAGES before any block was named.
        let rp = fed(
            &[RpMessage::ReqPages {
                block: None,
                start: 0,
                len: 4096,
            }],
            &[],
        );
        let e = rp.wait_shut().unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::ReturnPath(ReturnPathError::ReqPagesWithoutBlock)
            ),
            "{e}"
        );
    }

    #[test]
    fn recovery_waits_fail_with_the_return_path_cause() {
        let rp = fed(&[RpMessage::ResumeAck(2)], &[]);
        let e = rp.wait_resume_ack().unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::PostcopyRecovery(RecoveryError::Wait {
                    waiting_for: "RESUME_ACK",
                    cause: ReturnPathError::BadResumeAck { value: 2 },
                })
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "waiting for RESUME_ACK: RESUME_ACK with value 2, expected 1"
        );
        // A bitmap whose size is not whole 64-bit words.
        let mut blob = Writer::new(Vec::new());
        blob.write_u64(3).unwrap();
        let rp = fed(
            &[RpMessage::RecvBitmap("pc.ram".into())],
            &blob.into_inner(),
        );
        let e = rp.wait_bitmap("pc.ram").unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::PostcopyRecovery(RecoveryError::Wait {
                    cause: ReturnPathError::BadBitmapSize { size: 3 },
                    ..
                })
            ),
            "{e}"
        );
        // A good bitmap arrives.
        let mut blob = Writer::new(Vec::new());
        blob.write_u64(8).unwrap();
        blob.write_bytes(&[0xff; 8]).unwrap();
        blob.write_u64(RECV_BITMAP_ENDING).unwrap();
        let rp = fed(
            &[RpMessage::RecvBitmap("pc.ram".into())],
            &blob.into_inner(),
        );
        assert_eq!(rp.wait_bitmap("pc.ram").unwrap(), [0xff; 8]);
    }

    #[test]
    fn a_bitmap_of_another_size_than_the_blocks_is_refused_from_its_size() {
        // The driver asks with the block's size (16 bytes); the destination
        // claims 24 and sends them: refused before the blob is read.
        let (src, mut dst) = mem_pair();
        let rp = ReturnPath::spawn(src.reverse.unwrap(), QemuVersion::V7_2, true, None).unwrap();
        rp.want_bitmap("pc.ram", Some(16)).unwrap();
        let mut w = Writer::new(Vec::new());
        RpMessage::RecvBitmap("pc.ram".into())
            .write(&mut w)
            .unwrap();
        w.write_u64(24).unwrap();
        w.write_bytes(&[0xff; 24]).unwrap();
        w.write_u64(RECV_BITMAP_ENDING).unwrap();
        dst.reverse
            .as_mut()
            .unwrap()
            .write_all(&w.into_inner())
            .unwrap();
        let e = rp.wait_bitmap("pc.ram").unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::PostcopyRecovery(RecoveryError::Wait {
                    waiting_for: "the received bitmap",
                    cause: ReturnPathError::BitmapSizeMismatch {
                        size: 24,
                        expected: 16,
                        ..
                    },
                })
            ),
            "{e}"
        );
        drop((dst, src.stream));
    }

    #[test]
    fn bitmaps_nobody_asked_for_and_requests_that_are_no_ranges_are_refused() {
        let read = |b: &[u8], postcopy, wanted| {
            read_return_path(&mut &b[..], QemuVersion::V10, postcopy, wanted).unwrap_err()
        };
        let mut w = Writer::new(Vec::new());
        RpMessage::RecvBitmap("pc.ram".into())
            .write(&mut w)
            .unwrap();
        let bitmap = w.into_inner();
        let e = read(&bitmap, true, Some("pc.bios"));
        assert!(
            matches!(
                e.kind(),
                ErrorKind::ReturnPath(ReturnPathError::Unexpected(RpMessage::RecvBitmap(b)))
                    if b == "pc.ram"
            ),
            "{e}"
        );
        let mut w = Writer::new(Vec::new());
        RpMessage::ReqPages {
            block: Some("pc.ram".into()),
            start: u64::MAX - 4095,
            len: 8192,
        }
        .write(&mut w)
        .unwrap();
        let overflow = w.into_inner();
        let e = read(&overflow, true, None);
        assert!(
            matches!(
                e.kind(),
                ErrorKind::ReturnPath(ReturnPathError::BadPageRange { len: 8192, .. })
            ),
            "{e}"
        );
        // Without postcopy-ram a page request is not expected at all.
        let e = read(&overflow, false, None);
        assert!(
            matches!(
                e.kind(),
                ErrorKind::ReturnPath(ReturnPathError::Unexpected(RpMessage::ReqPages { .. }))
            ),
            "{e}"
        );
    }

    #[test]
    fn a_blob_is_read_in_chunks_as_it_arrives() {
        let data: Vec<u8> = (0..3 * BITMAP_CHUNK + 8).map(|i| i as u8).collect();
        let got = read_blob(&mut &data[..], data.len()).unwrap();
        assert_eq!(got, data);
        // A claim larger than what arrives fails at the end of the bytes.
        let e = read_blob(&mut &data[..100], 1 << 20).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
