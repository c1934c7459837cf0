//! The source's return path (QEMU `source_return_path_thread`): a thread reads the
//! destination's messages into shared state that the driver polls: PONGs,
//! SWITCHOVER_ACK, postcopy page requests, received bitmaps, RESUME_ACK and the
//! final SHUT. The first bad frame ends the thread and stays as its error.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::error::{Error, ErrorKind, RecoveryError, Result, ReturnPathError};
use crate::migration::params::MigrationCapabilities;
use crate::migration::transport::ReadWrite;
use crate::savevm::format::{
    MAX_RECV_BITMAP, MAX_RP_PAYLOAD, RECV_BITMAP_ENDING, RESUME_ACK_VALUE,
};
use crate::savevm::{QemuVersion, RpMessage};
use crate::wire::Reader;

/// How long postcopy recovery waits for each reply.
const RECOVERY_PATIENCE: Duration = Duration::from_secs(30);

/// The reader thread and what it has seen.
pub(super) struct ReturnPath {
    state: Arc<Mutex<RpState>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct RpState {
    error: Option<ReturnPathError>,
    shut: Option<bool>,
    switchover_acked: bool,
    pongs: Vec<u32>,
    /// Postcopy page requests not yet handed to a handler: (block, start, len).
    page_requests: VecDeque<(String, u64, u64)>,
    /// Block of the previous request (REQ_PAGES refers to it).
    last_block: Option<String>,
    /// Received bitmaps from postcopy recovery, by block.
    bitmaps: HashMap<String, Vec<u8>>,
    /// RESUME_ACK(1) arrived.
    resume_acked: bool,
}

impl RpState {
    /// Takes in one message; returns the error that ends the thread, if any.
    fn receive(&mut self, msg: RpMessage, blob: Option<Vec<u8>>) -> Option<ReturnPathError> {
        match (msg, blob) {
            (RpMessage::RecvBitmap(block), Some(blob)) => {
                self.bitmaps.insert(block, blob);
            }
            (RpMessage::ResumeAck(value), _) => {
                if value != RESUME_ACK_VALUE {
                    return Some(ReturnPathError::BadResumeAck { value });
                }
                self.resume_acked = true;
            }
            (RpMessage::Pong(v), _) => self.pongs.push(v),
            (RpMessage::SwitchoverAck, _) => self.switchover_acked = true,
            (RpMessage::ReqPages { block, start, len }, _) => {
                if let Some(b) = block {
                    self.last_block = Some(b);
                }
                match self.last_block.clone() {
                    Some(b) => self.page_requests.push_back((b, start, u64::from(len))),
                    None => return Some(ReturnPathError::ReqPagesWithoutBlock),
                }
            }
            (other, _) => return Some(ReturnPathError::Unexpected(other)),
        }
        None
    }
}

/// One message, with the blob that follows a RECV_BITMAP outside the framing.
type Frame = (RpMessage, Option<Vec<u8>>);

/// Reads one frame (header and up to [`MAX_RP_PAYLOAD`] bytes, plus the blob of a
/// RECV_BITMAP); `None` at a clean end of the stream.
fn read_frame(
    reverse: &mut dyn ReadWrite,
    buf: &mut BytesMut,
    version: QemuVersion,
) -> std::result::Result<Option<Frame>, ReturnPathError> {
    let broken = |e: Error| ReturnPathError::Read(Arc::new(e));
    let io = |e: std::io::Error| broken(e.into());
    let mut hdr = [0u8; 4];
    if let Err(e) = reverse.read_exact(&mut hdr) {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return Ok(None);
        }
        return Err(io(e));
    }
    let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
    buf.clear();
    buf.extend_from_slice(&hdr);
    if len <= MAX_RP_PAYLOAD {
        let mut p = vec![0u8; len];
        reverse.read_exact(&mut p).map_err(io)?;
        buf.extend_from_slice(&p);
    }
    let mut r = Reader::new(&buf[..]);
    let msg = RpMessage::read(&mut r, version).map_err(broken)?;
    if let RpMessage::RecvBitmap(_) = &msg {
        // The bitmap blob follows outside the framing.
        let mut b8 = [0u8; 8];
        reverse.read_exact(&mut b8).map_err(io)?;
        let size = u64::from_be_bytes(b8);
        if size > MAX_RECV_BITMAP || size % 8 != 0 {
            return Err(ReturnPathError::BadBitmapSize { size });
        }
        let mut blob = vec![0u8; size as usize];
        reverse.read_exact(&mut blob).map_err(io)?;
        reverse.read_exact(&mut b8).map_err(io)?;
        if u64::from_be_bytes(b8) != RECV_BITMAP_ENDING {
            return Err(ReturnPathError::BitmapEndMissing);
        }
        return Ok(Some((msg, Some(blob))));
    }
    Ok(Some((msg, None)))
}

fn return_path_err(e: ReturnPathError) -> Error {
    Error::new(ErrorKind::ReturnPath(e))
}

/// The return-path thread's loop: reads the destination's frames from `reverse`
/// into `st` until SHUT, the end of the stream or the first bad frame (which
/// stays in `st` as its error).
fn pump(reverse: &mut dyn ReadWrite, st: &Mutex<RpState>, version: QemuVersion) {
    let mut buf = BytesMut::new();
    loop {
        let frame = read_frame(reverse, &mut buf, version);
        let Ok(mut s) = st.lock() else { return };
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
        if s.shut.is_some() {
            return;
        }
    }
}

/// What a destination sent on the return path, as a byte slice to replay.
struct Replay<'a>(&'a [u8]);

impl std::io::Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl std::io::Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ReadWrite for Replay<'_> {}

/// Runs the source's return-path reader over `bytes`, what a destination sent,
/// exactly as a migration's return-path thread does (same frame checks, same
/// state), without a thread or a socket: for fuzzing and tools. Returns the
/// error flag of the destination's SHUT, or the error that would end the
/// return path (and fail the migration).
///
/// ```
/// use vmstate_runtime::migration::replay_return_path;
/// use vmstate_runtime::savevm::{QemuVersion, RpMessage};
/// use vmstate_runtime::wire::Writer;
///
/// let mut w = Writer::new(Vec::new());
/// RpMessage::Pong(1).write(&mut w).unwrap();
/// RpMessage::Shut { error: false }.write(&mut w).unwrap();
/// let destination_failed = replay_return_path(&w.into_inner(), QemuVersion::V7_2).unwrap();
/// assert!(!destination_failed);
/// assert!(replay_return_path(&[0xff, 0xff, 0, 0], QemuVersion::V7_2).is_err());
/// ```
pub fn replay_return_path(bytes: &[u8], version: QemuVersion) -> Result<bool> {
    let st = Mutex::new(RpState::default());
    pump(&mut Replay(bytes), &st, version);
    let mut s = st
        .into_inner()
        .map_err(|_| Error::poisoned("return path state poisoned"))?;
    match (s.error.take(), s.shut) {
        (Some(e), _) => Err(return_path_err(e)),
        (None, Some(error)) => Ok(error),
        (None, None) => Err(return_path_err(ReturnPathError::ClosedBeforeShut)),
    }
}

impl ReturnPath {
    pub(super) fn spawn(mut reverse: Box<dyn ReadWrite>, version: QemuVersion) -> Result<Self> {
        let state = Arc::new(Mutex::new(RpState::default()));
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("return-path".into())
            .spawn(move || pump(reverse.as_mut(), &st, version))?;
        Ok(ReturnPath {
            state,
            thread: Some(thread),
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

    /// Waits for the received bitmap of `block`.
    pub(super) fn wait_bitmap(&self, block: &str) -> Result<Vec<u8>> {
        self.wait_for(|s| s.bitmaps.remove(block), "the received bitmap")
    }

    /// Waits for RESUME_ACK.
    pub(super) fn wait_resume_ack(&self) -> Result<()> {
        self.wait_for(|s| s.resume_acked.then_some(()), "RESUME_ACK")
    }

    fn wait_for<T>(
        &self,
        mut f: impl FnMut(&mut RpState) -> Option<T>,
        waiting_for: &'static str,
    ) -> Result<T> {
        let recovery = |e: RecoveryError| Error::new(ErrorKind::PostcopyRecovery(e));
        let deadline = Instant::now() + RECOVERY_PATIENCE;
        loop {
            {
                let mut s = self.lock()?;
                if let Some(v) = f(&mut s) {
                    return Ok(v);
                }
                if let Some(e) = &s.error {
                    return Err(recovery(RecoveryError::Wait {
                        waiting_for,
                        cause: e.clone(),
                    }));
                }
            }
            if Instant::now() > deadline {
                return Err(recovery(RecoveryError::TimedOut { waiting_for }));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `f` on the state; `T::default()` when the thread panicked holding it.
    fn peek<T: Default>(&self, f: impl FnOnce(&mut RpState) -> T) -> T {
        self.state.lock().map(|mut s| f(&mut s)).unwrap_or_default()
    }

    /// Page requests received since the last call.
    pub(super) fn take_page_requests(&self) -> Vec<(String, u64, u64)> {
        self.peek(|s| s.page_requests.drain(..).collect())
    }

    pub(super) fn has_page_requests(&self) -> bool {
        self.peek(|s| !s.page_requests.is_empty())
    }

    pub(super) fn switchover_allowed(&self, caps: MigrationCapabilities) -> bool {
        !caps.switchover_ack || self.peek(|s| s.switchover_acked)
    }

    /// Waits for the destination's SHUT and turns an error report into a failure.
    pub(super) fn wait_shut(mut self) -> Result<()> {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let s = self.lock()?;
        match (s.shut, &s.error) {
            (Some(false), _) => Ok(()),
            (Some(true), _) => Err(Error::new(ErrorKind::PeerFailed)),
            (None, Some(e)) => Err(return_path_err(e.clone())),
            (None, None) => Err(return_path_err(ReturnPathError::ClosedBeforeShut)),
        }
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
        let rp = ReturnPath::spawn(src.reverse.unwrap(), QemuVersion::V10).unwrap();
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

    /// `replay_return_path` ends as the thread does on the same bytes.
    #[test]
    fn replay_ends_like_the_thread() {
        let frames = |msgs: &[RpMessage], tail: &[u8]| {
            let mut w = Writer::new(Vec::new());
            for m in msgs {
                m.write(&mut w).unwrap();
            }
            let mut b = w.into_inner();
            b.extend_from_slice(tail);
            b
        };
        let v = QemuVersion::V10;
        let ok = frames(&[RpMessage::Pong(1), RpMessage::Shut { error: true }], &[]);
        assert!(replay_return_path(&ok, v).unwrap());
        type Expect = fn(&ReturnPathError) -> bool;
        let cases: [(Vec<u8>, Expect); 3] = [
            (frames(&[RpMessage::Pong(1)], &[]), |e| {
                matches!(e, ReturnPathError::ClosedBeforeShut)
            }),
            (frames(&[RpMessage::ResumeAck(2)], &[]), |e| {
                matches!(e, ReturnPathError::BadResumeAck { value: 2 })
            }),
            (
                frames(
                    &[RpMessage::RecvBitmap("pc.ram".into())],
                    &3u64.to_be_bytes(),
                ),
                |e| matches!(e, ReturnPathError::BadBitmapSize { size: 3 }),
            ),
        ];
        for (bytes, expected) in cases {
            let e = replay_return_path(&bytes, v).unwrap_err();
            let ErrorKind::ReturnPath(rp) = e.kind() else {
                panic!("{e}")
            };
            assert!(expected(rp), "{e}");
        }
    }
}
