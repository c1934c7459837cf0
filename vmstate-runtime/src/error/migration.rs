//! The migration layer's error details: one enum per concern (configuration
//! check, URIs, transports, the return path, postcopy, postcopy recovery), each
//! carried by one [`ErrorKind`](super::ErrorKind) variant so a caller matches on the
//! concern first and on the detail when it cares.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use super::Error;
use crate::migration::{IncomingPhase, PostcopyState};
use crate::savevm::format::{MigCmd, RESUME_ACK_VALUE};
use crate::savevm::RpMessage;

/// How an incoming configuration record differs from ours (QEMU
/// `configuration_post_load`).
///
/// ```
/// use vmstate_runtime::error::ConfigMismatch;
/// use vmstate_runtime::savevm::Configuration;
/// use vmstate_runtime::ErrorKind;
///
/// let err = Configuration::new("pc-q35-7.2")
///     .check_incoming(&Configuration::new("pc-i440fx-7.2"), false)
///     .unwrap_err();
/// let ErrorKind::ConfigurationMismatch(ConfigMismatch::MachineType { stream, ours }) = err.kind()
/// else {
///     panic!("{err}")
/// };
/// assert_eq!((stream.as_str(), ours.as_str()), ("pc-i440fx-7.2", "pc-q35-7.2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigMismatch {
    /// The machine type names differ.
    #[error(
        "machine type mismatch: stream has '{stream}', this side expects '{ours}'; \
         load with LoadOptions::with_configuration(Configuration::new(\"{stream}\")), \
         or migrate with MigrationConfig::with_machine(\"{ours}\") on the source"
    )]
    MachineType {
        /// The stream's machine type.
        stream: String,
        /// Ours.
        ours: String,
    },
    /// The target page bits differ.
    #[error("target page bits mismatch: stream {stream}, this side {ours}")]
    PageBits {
        /// The stream's page bits.
        stream: u32,
        /// Ours.
        ours: u32,
    },
    /// The stream names a capability that is not a validated one.
    #[error("unknown capability '{name}'")]
    UnknownCapability {
        /// Its name.
        name: String,
    },
    /// The validated capabilities that are on differ.
    #[error("capability mismatch: stream has {stream:?}, this side has {ours:?}")]
    EnabledCapabilities {
        /// The stream's, sorted.
        stream: Vec<String>,
        /// Ours, sorted.
        ours: Vec<String>,
    },
    /// Both sides have a VM UUID, and they differ.
    #[error("VM UUID mismatch")]
    Uuid,
}

/// A migration URI that does not parse.
///
/// ```
/// use vmstate_runtime::error::UriError;
/// use vmstate_runtime::migration::MigrationUri;
/// use vmstate_runtime::ErrorKind;
///
/// let err = "ftp:host".parse::<MigrationUri>().unwrap_err();
/// assert!(matches!(
///     err.kind(),
///     ErrorKind::InvalidUri(UriError::UnsupportedScheme { scheme }) if scheme == "ftp"
/// ));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// No `scheme:` prefix.
    #[error("migration URI '{uri}' has no scheme")]
    NoScheme {
        /// The URI as given.
        uri: String,
    },
    /// Nothing after the scheme.
    #[error("migration URI '{uri}' has no target")]
    NoTarget {
        /// The URI as given.
        uri: String,
    },
    /// A `tcp:` URI without a port.
    #[error("tcp URI '{uri}' needs host:port")]
    TcpNeedsPort {
        /// The URI as given.
        uri: String,
    },
    /// A scheme other than tcp, unix, file, exec, fd.
    #[error("unsupported migration URI scheme '{scheme}' (tcp, unix, file, exec, fd)")]
    UnsupportedScheme {
        /// The scheme.
        scheme: String,
    },
    /// An `fd:` URI whose target is not a file descriptor number (QEMU also
    /// takes the name of an fd passed with QMP `getfd`; there is no monitor
    /// here to pass one).
    #[error("fd URI '{uri}' needs a file descriptor number (fd:N)")]
    FdNotANumber {
        /// The URI as given.
        uri: String,
    },
}

/// What a transport was doing when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportOp {
    /// Connecting to a tcp address.
    TcpConnect(String),
    /// Connecting to a unix socket.
    UnixConnect(PathBuf),
    /// Binding a tcp listener.
    TcpListen(String),
    /// Binding a unix listener.
    UnixListen(PathBuf),
    /// Creating the output file.
    Create(PathBuf),
    /// Opening the input file.
    Open(PathBuf),
    /// Starting an `exec:` command.
    Exec(String),
    /// Taking over an inherited file descriptor (`fd:N`).
    Fd(i32),
    /// Setting up a connection the caller passed in.
    CallerConnection,
}

impl fmt::Display for TransportOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportOp::TcpConnect(a) => write!(f, "tcp connect to {a}"),
            TransportOp::UnixConnect(p) => write!(f, "unix connect to {}", p.display()),
            TransportOp::TcpListen(a) => write!(f, "tcp listen on {a}"),
            TransportOp::UnixListen(p) => write!(f, "unix listen on {}", p.display()),
            TransportOp::Create(p) => write!(f, "create {}", p.display()),
            TransportOp::Open(p) => write!(f, "open {}", p.display()),
            TransportOp::Exec(c) => write!(f, "exec '{c}'"),
            TransportOp::Fd(n) => write!(f, "take over fd {n}"),
            TransportOp::CallerConnection => f.write_str("set up the caller's connection"),
        }
    }
}

/// A transport that could not be set up or finished badly.
///
/// ```
/// use vmstate_runtime::error::{TransportError, TransportOp};
/// use vmstate_runtime::migration::{connect, MigrationUri};
/// use vmstate_runtime::ErrorKind;
///
/// let err = connect(&MigrationUri::Unix("/nonexistent/vmstate.sock".into())).unwrap_err();
/// assert!(matches!(
///     err.kind(),
///     ErrorKind::Transport(TransportError::Io { op: TransportOp::UnixConnect(_), .. })
/// ));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// An operating-system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: TransportOp,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The `exec:` command exited with a failure.
    #[error("exec transport command failed: {status}")]
    ExecFailed {
        /// Its exit status.
        status: ExitStatus,
    },
    /// The `exec:` child has no pipe on the stream's side.
    #[error("exec: no {pipe} pipe")]
    NoPipe {
        /// `stdin` or `stdout`.
        pipe: &'static str,
    },
}

/// The return path is needed but missing (one-directional transport, or not
/// opened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReturnPathMissing {
    /// Source: a capability needs the return path, the transport is one-way.
    #[error("the return path needs a bidirectional transport (tcp/unix)")]
    NotBidirectional,
    /// Source: postcopy was started without a return path.
    #[error("postcopy needs the return path")]
    ForPostcopy,
    /// Destination: OPEN_RETURN_PATH arrived over a one-way transport.
    #[error("OPEN_RETURN_PATH on a one-directional transport")]
    OpenOnOneWay,
    /// Destination: a command needs to answer, no return path is open.
    #[error("return-path message needed but no return path is open")]
    NotOpen,
    /// Destination: PING arrived, no return path is open.
    #[error("PING({value}) without a return path")]
    Ping {
        /// The PING's value.
        value: u32,
    },
}

/// The source's return path broke or carried something it must not.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReturnPathError {
    /// Reading a frame failed (i/o, or a frame the source rejects).
    #[error("return path: {0}")]
    Read(#[source] Arc<Error>),
    /// A RECV_BITMAP blob size above the limit or not whole 64-bit words.
    #[error("return path: received bitmap of {size} bytes is invalid")]
    BadBitmapSize {
        /// The announced size.
        size: u64,
    },
    /// A RECV_BITMAP blob whose size is not the one the source computes for
    /// the block (one bit per target page of its used length, rounded up to
    /// 64-bit words; QEMU's "bitmap size mismatch"). Refused from the size
    /// alone, before any of the blob is read.
    #[error(
        "return path: received bitmap of block '{block}' claims {size} bytes, \
         the block's bitmap has {expected}"
    )]
    BitmapSizeMismatch {
        /// The block asked for.
        block: String,
        /// The size the destination announced.
        size: u64,
        /// The block's bitmap size on the source.
        expected: u64,
    },
    /// A RECV_BITMAP blob not followed by its end marker.
    #[error("return path: received bitmap without its end marker")]
    BitmapEndMissing,
    /// RESUME_ACK with a value other than 1.
    #[error("RESUME_ACK with value {value}, expected {RESUME_ACK_VALUE}")]
    BadResumeAck {
        /// The value received.
        value: u32,
    },
    /// REQ_PAGES (same block as before) before any REQ_PAGES_ID.
    #[error("REQ_PAGES before any REQ_PAGES_ID")]
    ReqPagesWithoutBlock,
    /// A page request of no bytes, or whose end does not fit in 64 bits.
    #[error("page request of {len:#x} bytes at {start:#x} of '{block}' is not a range")]
    BadPageRange {
        /// The block named.
        block: String,
        /// The first byte.
        start: u64,
        /// The length.
        len: u64,
    },
    /// More page requests outstanding than the source queues: the destination
    /// asks faster than any guest faults.
    #[error("more than {limit} page requests outstanding")]
    TooManyPageRequests {
        /// The queue's bound.
        limit: usize,
    },
    /// A message the source does not expect here.
    #[error("unexpected return-path message {0:?}")]
    Unexpected(RpMessage),
    /// The destination hung up without saying how its load ended.
    #[error("return path closed before SHUT")]
    ClosedBeforeShut,
}

/// The postcopy command sequence was not followed, or cannot be served.
///
/// ```
/// use vmstate_runtime::error::PostcopyError;
/// use vmstate_runtime::savevm::format::MigCmd;
///
/// let e = PostcopyError::UnknownBlock { cmd: MigCmd::RecvBitmap, block: "pc.rom".into() };
/// assert_eq!(e.to_string(), "RECV_BITMAP for unknown RAMBlock 'pc.rom'");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostcopyError {
    /// A postcopy command in a state that does not allow it.
    #[error("{cmd} in postcopy state {state:?} (expected one of {allowed:?})")]
    BadState {
        /// The command.
        cmd: MigCmd,
        /// The destination's state.
        state: PostcopyState,
        /// The states it is allowed in.
        allowed: &'static [PostcopyState],
    },
    /// An empty POSTCOPY_ADVISE.
    #[error("dirty-bitmap-only postcopy (empty ADVISE) is not supported")]
    BitmapOnly,
    /// POSTCOPY_ADVISE with page sizes other than ours.
    #[error(
        "postcopy page sizes differ: source host {host:#x} target {target:#x}, \
         destination {destination:#x}"
    )]
    PageSizeMismatch {
        /// The source's host page summary.
        host: u64,
        /// The source's target page size.
        target: u64,
        /// Our page size.
        destination: u64,
    },
    /// A command naming a RAMBlock no handler owns.
    #[error("{cmd} for unknown RAMBlock '{block}'")]
    UnknownBlock {
        /// The command.
        cmd: MigCmd,
        /// The block.
        block: String,
    },
    /// A page request for a block no handler owns.
    #[error("destination requested pages of unknown block '{block}'")]
    RequestForUnknownBlock {
        /// The block.
        block: String,
    },
    /// A second POSTCOPY_RUN.
    #[error("POSTCOPY_RUN twice in one stream")]
    RunTwice,
    /// Source: the destination had hung up (or the connection had failed)
    /// when the postcopy switch was about to send the package; nothing of the
    /// package went out, so the migration fails in precopy and the source VM
    /// runs on.
    #[error("destination hung up before the postcopy package was sent")]
    DestinationGone,
}

/// A postcopy recovery attempt failed (the migration stays postcopy-paused).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The return path failed while the source waited for a reply.
    #[error("waiting for {waiting_for}: {cause}")]
    Wait {
        /// What was awaited (`the received bitmap`, `RESUME_ACK`).
        waiting_for: &'static str,
        /// Why it failed.
        #[source]
        cause: ReturnPathError,
    },
    /// No reply in time.
    #[error("timed out waiting for {waiting_for}")]
    TimedOut {
        /// What was awaited.
        waiting_for: &'static str,
    },
    /// The new connection has no return path.
    #[error("postcopy recovery needs a bidirectional transport")]
    NotBidirectional,
    /// A handler that runs in postcopy cannot take a received bitmap.
    #[error("handler has no postcopy recovery for block '{block}'")]
    NotSupported {
        /// The block.
        block: String,
    },
}

/// A peer was silent too long. Incoming side: no source connected, the next
/// byte of a stream the source still owes did not come, or the source did not
/// read the return path (the timeouts are
/// [`LoadOptions`](crate::savevm::LoadOptions) fields). Source side: the
/// destination stopped reading the stream, or did not send a reply it owes
/// ([`SourceOptions`](crate::migration::SourceOptions) fields).
///
/// ```
/// use std::time::Duration;
/// use vmstate_runtime::error::TimeoutError;
/// use vmstate_runtime::migration::IncomingPhase;
///
/// let e = TimeoutError::Idle {
///     phase: IncomingPhase::Header,
///     idle: Duration::from_millis(200),
///     received: 3,
/// };
/// assert_eq!(
///     e.to_string(),
///     "no byte from the source for 200ms while reading the stream header (3 byte(s) received)"
/// );
/// let e = TimeoutError::Reply { waiting_for: "SHUT", timeout: Duration::from_secs(30) };
/// assert_eq!(e.to_string(), "no SHUT from the destination within 30s");
/// let e = TimeoutError::StreamWrite { timeout: Duration::from_secs(30) };
/// assert_eq!(
///     e.to_string(),
///     "stream write blocked for 30s: the destination does not read it"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeoutError {
    /// Nobody connected within the accept timeout.
    #[error("no source connected within {waited:?}")]
    Accept {
        /// The accept timeout.
        waited: Duration,
    },
    /// The source sent nothing for the idle timeout while it still owed data.
    #[error(
        "no byte from the source for {idle:?} while reading {phase} ({received} byte(s) received)"
    )]
    Idle {
        /// What was being read.
        phase: IncomingPhase,
        /// The idle timeout.
        idle: Duration,
        /// Bytes received on this connection until the silence (the error's
        /// offset is where the read that waited began).
        received: u64,
    },
    /// A return-path write made no progress within the write timeout: the
    /// source does not read its return path.
    #[error("return-path write blocked for {timeout:?}: the source does not read it")]
    ReturnPathWrite {
        /// The write timeout.
        timeout: Duration,
    },
    /// Source: a write of the migration stream made no progress within the
    /// write timeout: the destination stopped reading.
    #[error("stream write blocked for {timeout:?}: the destination does not read it")]
    StreamWrite {
        /// The write timeout.
        timeout: Duration,
    },
    /// Source: the destination owed a return-path reply and sent nothing for
    /// the reply timeout.
    #[error("no {waiting_for} from the destination within {timeout:?}")]
    Reply {
        /// The reply (`SHUT`, `SWITCHOVER_ACK`).
        waiting_for: &'static str,
        /// The reply timeout.
        timeout: Duration,
    },
    /// [`wait_for`](crate::migration::StatsHandle::wait_for) a status: the
    /// migration did not reach it in time.
    #[error("migration still {current} after {timeout:?}, not yet {wanted}")]
    Status {
        /// The status waited for.
        wanted: crate::migration::MigrationStatus,
        /// The status when the wait gave up.
        current: crate::migration::MigrationStatus,
        /// How long it waited.
        timeout: Duration,
    },
}
