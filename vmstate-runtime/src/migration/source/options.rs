//! The source's patience with its destination: how long a stream write may make
//! no progress, and how long the source waits for a reply the destination owes.
//!
//! # Silence, state by state
//!
//! Every state of an outgoing migration either expects nothing from the
//! destination (its silence is legitimate and never times out; a
//! [`MigrationHandle::cancel`](super::MigrationHandle::cancel) still ends the
//! wait), or is bounded by one of the two timeouts below. Writes of the stream
//! are bounded by [`SourceOptions::write_timeout`] wherever they happen.
//!
//! | State (QMP status) | What the source waits for | Destination silent | Policy |
//! |---|---|---|---|
//! | `setup`, `active` (iterating) | nothing: it writes | legitimate (it has nothing to say) | stream writes: write timeout; the return path is read but not awaited |
//! | `active`, all sent, `switchover-ack` on | SWITCHOVER_ACK | owes it | reply timeout, counted from the first moment the switchover could otherwise start |
//! | `pre-switchover` | the user's `migrate-continue` | legitimate (the wait is on the user) | no timeout; cancel ends it (VM resumed) |
//! | `device` (END/FULL sections, EOF) | nothing: it writes | legitimate | stream writes: write timeout |
//! | after EOF (precopy with a return path) | SHUT | owes it | reply timeout; on expiry the migration fails and the VM runs again |
//! | `postcopy-active` | nothing (page requests come when the guest faults) | legitimate | stream writes: write timeout; on expiry `postcopy-paused` |
//! | `postcopy-active`, all sent | SHUT | owes it | reply timeout; on expiry `postcopy-paused` |
//! | `postcopy-paused` | the user's resume (a new URI) | legitimate (there is no connection) | no timeout; cancel ends it (the VM stays stopped: the destination ran it) |
//! | `postcopy-recover` | each RECV_BITMAP, then RESUME_ACK | owes them | reply timeout; on expiry back to `postcopy-paused` |
//!
//! PONGs are never awaited (the source's PINGs are markers for the
//! destination), so they have no timeout; they are counted as they come. Every
//! row is tested in `tests/hostile_destination.rs`.
//!
//! A failure in a precopy state leaves the source VM running (resumed if it was
//! stopped for the switchover); a failure in a postcopy state pauses, so a
//! later resume recovers without losing a page.

use std::time::Duration;

/// Default [`SourceOptions::write_timeout`]: a stream write that makes no
/// progress for 30 s means a destination that stopped reading.
pub const DEFAULT_SOURCE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default [`SourceOptions::reply_timeout`]: 30 s for a reply the destination
/// owes (SHUT, SWITCHOVER_ACK, a received bitmap, RESUME_ACK).
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Timeouts of an outgoing migration (see the module table for where each
/// applies); given to [`start_migration_with`](super::start_migration_with).
///
/// ```
/// use std::time::Duration;
/// use vmstate_runtime::migration::{SourceOptions, DEFAULT_SOURCE_WRITE_TIMEOUT};
///
/// let o = SourceOptions::default();
/// assert_eq!(o.write_timeout, Some(DEFAULT_SOURCE_WRITE_TIMEOUT));
/// let patient = o.with_reply_timeout(None);
/// assert_eq!(patient.write_timeout, Some(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceOptions {
    /// How long one write of the stream may make no progress (a socket's send
    /// timeout) before the migration fails with
    /// [`TimeoutError::StreamWrite`](crate::error::TimeoutError::StreamWrite);
    /// `None`: wait as long as the destination takes (a cancel still unblocks
    /// the write). Transports that cannot time out (pipes, files) ignore it.
    pub write_timeout: Option<Duration>,
    /// How long the source waits for a reply the destination owes before
    /// failing with [`TimeoutError::Reply`](crate::error::TimeoutError::Reply)
    /// (postcopy recovery: with
    /// [`RecoveryError::TimedOut`](crate::error::RecoveryError::TimedOut));
    /// `None`: wait for ever (a cancel still ends the wait).
    pub reply_timeout: Option<Duration>,
    /// Whether guest pages go from guest memory to a unix socket transport
    /// without a copy (Linux: `vmsplice(2)` and `splice(2)`; see
    /// [`SharedMemory`](crate::savevm::SharedMemory)). On by default; where
    /// the transport is not a unix socket (TCP is slower spliced: see
    /// [`ReadWrite::unix_socket_fd`](crate::migration::ReadWrite::unix_socket_fd)),
    /// or the system refuses the pipe, the stream is written with vectored
    /// writes. The bytes on the wire are the same.
    pub zero_copy_send: bool,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            write_timeout: Some(DEFAULT_SOURCE_WRITE_TIMEOUT),
            reply_timeout: Some(DEFAULT_REPLY_TIMEOUT),
            zero_copy_send: true,
        }
    }
}

with_setters!(SourceOptions {
    with_write_timeout => write_timeout: into [Option<Duration>],
    with_reply_timeout => reply_timeout: into [Option<Duration>],
    with_zero_copy_send => zero_copy_send: [bool],
});

impl SourceOptions {
    /// The default timeouts (the same as [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }
}
