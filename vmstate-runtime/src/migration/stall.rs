//! Silence and cancellation on the incoming side: the cancel handle, the phase
//! a silent source is blamed for, and the watch a blocked read or accept polls.
//!
//! Sockets block in the kernel, so nothing here interrupts a call from outside:
//! instead a watched socket gets a short read timeout ([`POLL_INTERVAL`] when a
//! cancel handle is given, the idle timeout otherwise) and every time a read comes
//! back empty-handed the watch checks the cancel flag and how long the source has
//! been silent. A watched listener is non-blocking and polled the same way.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result, TimeoutError};

/// How often a watched accept or read wakes up to look at the cancel flag: the
/// longest a [`CancelToken::cancel`] waits to take effect.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The default [`LoadOptions::write_timeout`](crate::savevm::LoadOptions::write_timeout)
/// of return-path writes. The source reads its return path on a thread of its
/// own at all times, and every message is a few bytes (a received bitmap a few
/// KiB), so a write that makes no progress for this long means a source that
/// stopped reading.
pub const DEFAULT_RP_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Cancels an incoming migration from another thread: [`run_incoming`] then
/// returns [`ErrorKind::Cancelled`] within about [`POLL_INTERVAL`], whether it
/// waits in accept, in a read, or in postcopy-paused for the source to come back.
///
/// [`run_incoming`]: crate::migration::run_incoming
///
/// ```
/// use vmstate_runtime::migration::CancelToken;
///
/// let token = CancelToken::new();
/// let handle = token.clone(); // give this one to the thread that may cancel
/// assert!(!token.is_cancelled());
/// handle.cancel();
/// assert!(token.is_cancelled());
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder of a clone to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) was called on any clone.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What the destination was reading when the source went silent (named by
/// [`TimeoutError::Idle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IncomingPhase {
    /// The magic, version and configuration record.
    Header,
    /// Sections and commands before EOF (precopy, or postcopy before RUN).
    #[default]
    Main,
    /// The rest of the stream after POSTCOPY_RUN (the guest runs here).
    PostcopyActive,
    /// The vmdesc trailer after EOF.
    VmDesc,
}

impl std::fmt::Display for IncomingPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IncomingPhase::Header => "the stream header",
            IncomingPhase::Main => "the main stream",
            IncomingPhase::PostcopyActive => "the postcopy stream",
            IncomingPhase::VmDesc => "the vmdesc trailer",
        })
    }
}

/// The phase, shared between the driver (which moves it on) and the read watch
/// (which names it in the error).
pub(crate) type PhaseCell = Arc<Mutex<IncomingPhase>>;

/// What a watched read checks whenever the socket's read timeout expires.
#[derive(Debug, Clone)]
pub(crate) struct ReadWatch {
    pub(crate) idle: Option<Duration>,
    pub(crate) cancel: Option<CancelToken>,
    pub(crate) phase: PhaseCell,
}

impl ReadWatch {
    /// Whether there is anything to watch for.
    pub(crate) fn is_active(&self) -> bool {
        self.idle.is_some() || self.cancel.is_some()
    }

    /// The read timeout to put on the socket: short enough to notice a cancel
    /// promptly, and no longer than the idle timeout.
    pub(crate) fn socket_timeout(&self) -> Option<Duration> {
        match (self.idle, &self.cancel) {
            (Some(idle), Some(_)) => Some(idle.min(POLL_INTERVAL)),
            (Some(idle), None) => Some(idle),
            (None, Some(_)) => Some(POLL_INTERVAL),
            (None, None) => None,
        }
    }

    /// Called when a read came back with nothing: the error that ends the wait
    /// (wrapped in an `io::Error` for the refill path, see
    /// [`Refill`](crate::wire::Refill)), or `None` to keep waiting.
    pub(crate) fn check(&self, last_byte: Instant, received: u64) -> Option<io::Error> {
        let stop = if self.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            Error::new(ErrorKind::Cancelled {
                in_postcopy_pause: false,
            })
        } else {
            let idle = self.idle.filter(|idle| last_byte.elapsed() >= *idle)?;
            let phase = self.phase.lock().map(|p| *p).unwrap_or_default();
            Error::new(ErrorKind::TimedOut(TimeoutError::Idle {
                phase,
                idle,
                received,
            }))
        };
        Some(io::Error::new(io::ErrorKind::TimedOut, stop))
    }
}

/// Calls `try_accept` on a non-blocking listener until it yields a connection,
/// `timeout` passes, or `cancel` is set.
pub(crate) fn poll_accept<S>(
    mut try_accept: impl FnMut() -> io::Result<S>,
    timeout: Option<Duration>,
    cancel: Option<&CancelToken>,
) -> Result<S> {
    let start = Instant::now();
    loop {
        match try_accept() {
            Ok(s) => return Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e.into()),
        }
        if cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(Error::new(ErrorKind::Cancelled {
                in_postcopy_pause: false,
            }));
        }
        let mut nap = POLL_INTERVAL;
        if let Some(timeout) = timeout {
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::new(ErrorKind::TimedOut(TimeoutError::Accept {
                    waited: timeout,
                })));
            }
            nap = nap.min(timeout - waited);
        }
        std::thread::sleep(nap);
    }
}

/// Whether an I/O error is a socket timeout expiring (`EAGAIN` on Unix for a
/// socket with `SO_RCVTIMEO`/`SO_SNDTIMEO`).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(idle: Option<Duration>, cancel: Option<CancelToken>) -> ReadWatch {
        ReadWatch {
            idle,
            cancel,
            phase: Arc::new(Mutex::new(IncomingPhase::Header)),
        }
    }

    #[test]
    fn socket_timeout_is_the_shorter_of_idle_and_poll() {
        let ms = Duration::from_millis;
        assert_eq!(watch(None, None).socket_timeout(), None);
        assert!(!watch(None, None).is_active());
        assert_eq!(watch(Some(ms(5)), None).socket_timeout(), Some(ms(5)));
        assert_eq!(
            watch(Some(ms(500)), Some(CancelToken::new())).socket_timeout(),
            Some(POLL_INTERVAL)
        );
        assert_eq!(
            watch(None, Some(CancelToken::new())).socket_timeout(),
            Some(POLL_INTERVAL)
        );
    }

    #[test]
    fn check_reports_cancel_first_then_idle_with_phase() {
        let long_ago = Instant::now() - Duration::from_secs(1);
        let w = watch(Some(Duration::from_millis(10)), Some(CancelToken::new()));
        assert!(w.check(Instant::now(), 0).is_none(), "not idle long enough");
        let e = w.check(long_ago, 17).expect("idle");
        let inner = e.into_inner().unwrap().downcast::<Error>().unwrap();
        assert!(matches!(
            inner.kind(),
            ErrorKind::TimedOut(TimeoutError::Idle {
                phase: IncomingPhase::Header,
                received: 17,
                ..
            })
        ));
        w.cancel.as_ref().unwrap().cancel();
        let e = w.check(Instant::now(), 0).expect("cancelled");
        let inner = e.into_inner().unwrap().downcast::<Error>().unwrap();
        assert!(matches!(inner.kind(), ErrorKind::Cancelled { .. }));
    }

    #[test]
    fn poll_accept_times_out_and_cancels() {
        let never = || -> io::Result<()> { Err(io::ErrorKind::WouldBlock.into()) };
        let t = Instant::now();
        let e = poll_accept(never, Some(Duration::from_millis(30)), None).unwrap_err();
        assert!(matches!(
            e.kind(),
            ErrorKind::TimedOut(TimeoutError::Accept { .. })
        ));
        assert!(t.elapsed() >= Duration::from_millis(30));
        let c = CancelToken::new();
        c.cancel();
        let e = poll_accept(never, None, Some(&c)).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Cancelled { .. }));
        assert_eq!(poll_accept(|| Ok(7), None, None).unwrap(), 7);
    }
}
