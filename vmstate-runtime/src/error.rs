//! The one error type of the runtime.
//!
//! An [`Error`] is a [`ErrorKind`] (what went wrong and why) plus where it went
//! wrong: the byte offset in the input (or output) and the path of
//! VMState descriptions, fields, array indices and subsections that were being
//! processed. The path is built while the error travels up the call chain, the
//! way QEMU prefixes `Error**` messages, but typed: every layer of generated
//! code adds its own segment, so the final message reads
//! `pckbd/extended_state.obsrc: stream ended ... (offset 23)`.
//!
//! Building the path allocates, but only on the error path; the hot paths never
//! touch it.
//!
//! The kinds say what went wrong in a form a caller can match on: the VMState
//! body errors (truncated input, bad values, versions), the savevm stream's
//! (bad magic, unknown sections, commands), the registry's, and the migration
//! layer's, grouped by concern with detail enums ([`ConfigMismatch`],
//! [`UriError`], [`TransportError`], [`ReturnPathMissing`], [`ReturnPathError`],
//! [`PostcopyError`], [`RecoveryError`], [`TimeoutError`]), plus [`ErrorKind::Cancelled`] and
//! [`ErrorKind::PeerFailed`]. [`ErrorKind::Invalid`] is left to handlers and hooks
//! that report invalid state of their own.

use std::borrow::Cow;
use std::fmt;

mod migration;

pub use migration::{
    ConfigMismatch, PostcopyError, RecoveryError, ReturnPathError, ReturnPathMissing, TimeoutError,
    TransportError, TransportOp, UriError,
};

use crate::savevm::format::{
    MigCmd, QemuVersion, RecordType, FILE_VERSION_COMPAT, LIST_ELEMENT_MARKER, LIST_END_MARKER,
    MAX_IDSTR_LEN, MAX_TARGET_PAGE_BITS, MIN_TARGET_PAGE_BITS, NULLPTR_MARKER,
};

/// A boxed error from user code (hooks), kept as the `source()` of an [`Error`].
///
/// ```
/// use vmstate_runtime::error::BoxError;
/// use vmstate_runtime::Error;
///
/// let source: BoxError = "timer in the past".into();
/// let err = Error::hook("post_load", source);
/// assert_eq!(err.to_string(), "post_load hook failed: timer in the past");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One step of an error's location path.
///
/// ```
/// use vmstate_runtime::{Error, ErrorKind, PathSegment};
///
/// let err = Error::new(ErrorKind::InvalidBool(2))
///     .within(PathSegment::Index(3))
///     .within(PathSegment::Field("data"))
///     .within(PathSegment::Vmsd("dev"));
/// let path: Vec<_> = err.path().cloned().collect();
/// assert_eq!(
///     path,
///     [PathSegment::Vmsd("dev"), PathSegment::Field("data"), PathSegment::Index(3)]
/// );
/// assert_eq!(err.path_string(), "dev.data[3]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A VMState description (a type's `name`), entered for a top-level or nested body.
    Vmsd(&'static str),
    /// A subsection, by its full name (e.g. `pckbd/extended_state`).
    Subsection(Cow<'static, str>),
    /// A named field of the current description.
    Field(&'static str),
    /// An element of an array, vector or list.
    Index(usize),
}

/// What went wrong, independent of where.
///
/// ```
/// use vmstate_runtime::{from_bytes, ErrorKind, VmState};
///
/// #[derive(VmState, Default, Debug)]
/// #[vmstate(name = "dev", version = 1)]
/// struct Dev { enabled: bool }
///
/// // A `bool` field must be 0 or 1 on the wire.
/// let err = from_bytes::<Dev>(&[7], 1).unwrap_err();
/// assert!(matches!(err.kind(), ErrorKind::InvalidBool(7)));
/// assert_eq!(err.kind().to_string(), "invalid bool byte 0x07 (expected 0x00 or 0x01)");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended before a value could be read.
    #[error("stream ended: needed {needed} more byte(s), only {available} left")]
    Truncated {
        /// Bytes the read needed.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The output buffer has no room left (only for fixed-size `BufMut`s).
    #[error("output full: needed {needed} byte(s), only {available} left")]
    OutputFull {
        /// Bytes the write needed.
        needed: usize,
        /// Room that was left.
        available: usize,
    },
    /// A count read from the stream is negative or above its bound.
    #[error("count {count} is out of range (allowed 0..={max})")]
    CountOutOfRange {
        /// The count as read (sign-extended for signed count fields).
        count: i64,
        /// The largest allowed count (the `max` attribute or the array length).
        max: u64,
    },
    /// On save, a count field disagrees with the length of the data it counts.
    #[error("count field says {count} but the data holds {actual} element(s)")]
    CountMismatch {
        /// Value of the count field.
        count: i64,
        /// Actual number of elements.
        actual: usize,
    },
    /// A `bool` byte other than 0 or 1.
    #[error("invalid bool byte {0:#04x} (expected 0x00 or 0x01)")]
    InvalidBool(u8),
    /// An enum discriminant that names no variant.
    #[error("invalid value {value} for enum {enum_name}")]
    InvalidEnum {
        /// Name of the Rust enum.
        enum_name: &'static str,
        /// The value read.
        value: i128,
    },
    /// The stream's version is newer than this type understands.
    #[error("incoming version {version} is too new (this side supports up to {max})")]
    VersionTooNew {
        /// Version in the stream.
        version: u32,
        /// Our current version.
        max: u32,
    },
    /// The stream's version is older than this type still accepts.
    #[error("incoming version {version} is too old (minimum accepted is {min})")]
    VersionTooOld {
        /// Version in the stream.
        version: u32,
        /// Our minimum version.
        min: u32,
    },
    /// A subsection whose name has our prefix but that we do not know.
    #[error("unknown subsection '{name}'")]
    UnknownSubsection {
        /// Its name as found in the stream (lossy UTF-8).
        name: String,
    },
    /// An `equal` field whose incoming value differs from ours.
    #[error("value mismatch: stream has {found}, this side requires {expected}")]
    NotEqual {
        /// Our value.
        expected: i128,
        /// The stream's value.
        found: i128,
    },
    /// A `positive_le` field outside `0..=current`.
    #[error("value {found} is not within 0..={limit}")]
    NotPositiveLe {
        /// The stream's value.
        found: i32,
        /// Our current value (the upper bound).
        limit: i32,
    },
    /// A `validate` check returned false.
    #[error("validation '{check}' failed")]
    ValidationFailed {
        /// The check's path as written in the attribute.
        check: &'static str,
    },
    /// A null-pointer placeholder byte other than 0x30.
    #[error("expected null-pointer marker {NULLPTR_MARKER:#04x}, found {0:#04x}")]
    BadNullMarker(u8),
    /// A list (QTAILQ/QLIST) element marker other than 0x00/0x01.
    #[error(
        "expected list marker {LIST_END_MARKER:#04x} or {LIST_ELEMENT_MARKER:#04x}, found {0:#04x}"
    )]
    BadListMarker(u8),
    /// A list had more elements than its bound.
    #[error("list has more than {max} element(s)")]
    ListTooLong {
        /// The bound.
        max: usize,
    },
    /// Bytes were left over after a complete body was loaded.
    #[error("{0} trailing byte(s) after the end of the body")]
    TrailingBytes(usize),
    /// A user hook (pre_save, post_load, ...) failed.
    #[error("{hook} hook failed: {source}")]
    Hook {
        /// Which hook.
        hook: &'static str,
        /// The hook's own error.
        #[source]
        source: BoxError,
    },
    /// A device model rejected what the stream gave it (e.g. the RAM section's
    /// block checks); the model's typed error is the `source()`.
    #[error("{device}: {source}")]
    Device {
        /// Which device model.
        device: &'static str,
        /// The model's own error.
        #[source]
        source: BoxError,
    },
    /// Invalid state reported by a handler or hook (a with_tmp conversion, a
    /// device-level consistency check). The runtime itself reports its own
    /// failures with the typed kinds below.
    #[error("{0}")]
    Invalid(Cow<'static, str>),
    /// A command number the loader does not know (QEMU: "MIG_CMD 0x%x unknown").
    #[error("unknown command {cmd:#x} (payload length {len})")]
    UnknownCommand {
        /// The command number.
        cmd: u16,
        /// Its payload length.
        len: u16,
    },
    /// A command whose payload length is not its fixed length.
    #[error("{name}: payload length {len}, expected {expected}")]
    BadCommandLength {
        /// The command's name.
        name: &'static str,
        /// Length received.
        len: usize,
        /// Length required.
        expected: usize,
    },
    /// A command whose payload does not parse.
    #[error("malformed {name}: {reason}")]
    MalformedCommand {
        /// The command's name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A return-path message the source would reject.
    #[error("bad return-path message type {ty}: {reason}")]
    BadReturnPathMessage {
        /// Its type number.
        ty: u16,
        /// What is wrong.
        reason: String,
    },
    /// An I/O error from a transport.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    // ---- the savevm stream (loader and writer) ----
    /// The first be32 is not `QEVM`.
    #[error("not a migration stream: magic {magic:#010x}")]
    BadMagic {
        /// The be32 found.
        magic: u32,
    },
    /// A stream version other than 3 (2 is the obsolete one).
    #[error("{}", stream_version_message(*version))]
    UnsupportedStreamVersion {
        /// The version found.
        version: u32,
    },
    /// The configuration record is expected
    /// ([`LoadOptions::configuration`](crate::savevm::LoadOptions::configuration)
    /// is set, as by default) but another byte came: the source sends none.
    #[error(
        "configuration record missing: this side expects one for machine type '{expected}' \
         (LoadOptions::configuration), the stream has record type {found:#04x} instead \
         (its source sends none, as QEMU with send-configuration=off); to load a stream \
         without one, use LoadOptions::with_configuration(None)"
    )]
    MissingConfiguration {
        /// The record-type byte found.
        found: u8,
        /// The machine type this side expected.
        expected: String,
    },
    /// The stream starts with a configuration record but this side expects
    /// none (`LoadOptions::with_configuration(None)`).
    #[error(
        "unexpected configuration record (type 0x07{}): this side expects none \
         (LoadOptions::configuration is None); to load it, use LoadOptions::default() \
         (expects machine type '{}') or LoadOptions::with_configuration(Configuration::new(\"{}\"))",
        stream_machine.as_deref().map(|m| format!(", machine type '{m}'")).unwrap_or_default(),
        crate::savevm::DEFAULT_MACHINE_TYPE,
        stream_machine.as_deref().unwrap_or(crate::savevm::DEFAULT_MACHINE_TYPE)
    )]
    UnexpectedConfiguration {
        /// The stream's machine type, when its record could be read.
        stream_machine: Option<String>,
    },
    /// The incoming configuration record does not match ours.
    #[error(transparent)]
    ConfigurationMismatch(#[from] ConfigMismatch),
    /// A top-level record-type byte the loader does not know.
    #[error("unknown savevm section type {ty:#04x}")]
    UnknownRecordType {
        /// The byte.
        ty: u8,
    },
    /// A START/FULL header with an empty idstr.
    #[error("unable to read ID string for section {section_id}")]
    EmptyIdstr {
        /// The header's section id.
        section_id: u32,
    },
    /// A START/FULL section for an idstr/instance nobody registered.
    #[error("unknown savevm section or instance '{idstr}' {instance_id}")]
    UnknownSection {
        /// The idstr (lossy UTF-8).
        idstr: String,
        /// The instance id.
        instance_id: u32,
    },
    /// A START section for an entry that writes FULL sections only.
    #[error("START section for a non-iterative entry")]
    StartForNonIterative,
    /// A PART/END section whose id no START/FULL header opened.
    #[error("unknown section id {section_id} in PART/END")]
    UnknownSectionId {
        /// The section id.
        section_id: u32,
    },
    /// A section not followed by its footer marker.
    #[error(
        "missing section footer: found {found:#04x} instead of {:#04x}",
        RecordType::SectionFooter as u8
    )]
    MissingFooter {
        /// The byte found.
        found: u8,
    },
    /// A footer naming another section than the header.
    #[error("mismatched section id in footer: {found}, header said {expected}")]
    FooterMismatch {
        /// The footer's id.
        found: u32,
        /// The header's id.
        expected: u32,
    },
    /// A vmdesc trailer above [`MAX_VMDESC_LEN`](crate::savevm::MAX_VMDESC_LEN).
    #[error("vmdesc of {len} bytes exceeds the limit")]
    VmDescTooLarge {
        /// Its announced length.
        len: u32,
    },
    /// The configuration says a vmdesc trailer follows EOF
    /// ([`VmDescPolicy::Expected`](crate::savevm::VmDescPolicy::Expected)) but
    /// another record came.
    #[error("expected the vmdesc trailer after EOF, found record type {found:#04x}")]
    MissingVmDesc {
        /// The byte found instead of the vmdesc record type.
        found: u8,
    },
    /// A command in a stream whose loader takes none (snapshots, files).
    #[error("command {cmd} not expected in this stream (no return path / postcopy)")]
    UnexpectedCommand {
        /// The command.
        cmd: MigCmd,
    },
    /// A command this destination does not implement.
    #[error("{} is not supported by this destination", unsupported_command_name(*cmd))]
    UnsupportedCommand {
        /// The command.
        cmd: MigCmd,
    },
    /// A command the chosen QEMU version's loader does not know, on save.
    #[error("{cmd} does not exist in QEMU {version} (its loader rejects it)")]
    CommandNotInVersion {
        /// The command.
        cmd: MigCmd,
        /// The dialect being written.
        version: QemuVersion,
    },
    /// A command payload longer than a be16 length can say.
    #[error("{cmd} payload of {len} bytes does not fit a be16 length")]
    CommandTooLarge {
        /// The command.
        cmd: MigCmd,
        /// The payload length.
        len: usize,
    },
    /// A counted name longer than 255 bytes, on save.
    #[error("name of {len} bytes does not fit a one-byte length")]
    NameTooLong {
        /// The name's length.
        len: usize,
    },
    /// A record longer than a be32 length can say, on save.
    #[error("{what} larger than 4 GiB")]
    RecordTooLarge {
        /// Which record (`package`, `vmdesc JSON`).
        what: &'static str,
    },

    // ---- registry and handlers ----
    /// An idstr that is empty or longer than 255 bytes.
    #[error("idstr '{idstr}' must be 1 to {MAX_IDSTR_LEN} bytes")]
    BadIdstr {
        /// The idstr.
        idstr: String,
    },
    /// An idstr/instance pair registered twice.
    #[error("'{idstr}' instance {instance_id} is already registered")]
    DuplicateInstance {
        /// The idstr.
        idstr: String,
        /// The instance id.
        instance_id: u32,
    },
    /// No registered entry has this section id.
    #[error("no section with id {section_id}")]
    NoSuchSection {
        /// The section id.
        section_id: u32,
    },
    /// The registry lost an entry while a stream was loaded into it.
    #[error("registry changed during load")]
    RegistryChanged,
    /// A multifd device-state buffer for a handler that takes none.
    #[error("multifd device state ({len} bytes) is not supported by this handler")]
    MultifdUnsupported {
        /// The buffer's length.
        len: usize,
    },
    /// [`SwitchoverApprover::approve`](crate::savevm::SwitchoverApprover::approve)
    /// called once more than there were handlers to approve.
    #[error("switchover approved more often than needed")]
    ExtraSwitchoverApproval,
    /// A lock shared with another thread was poisoned by a panic there.
    #[error("{what}")]
    Poisoned {
        /// Which lock, as a message (`device mutex poisoned by a panicking thread`).
        what: &'static str,
    },
    /// A runtime thread panicked.
    #[error("{thread} thread panicked")]
    ThreadPanicked {
        /// The thread (`migration`).
        thread: &'static str,
    },

    /// A target page size outside what QEMU targets use
    /// ([`TargetPage::new`](crate::savevm::TargetPage::new)).
    #[error(
        "target page bits {bits} (minimum {min_bits}) out of range: \
         {MIN_TARGET_PAGE_BITS}..={MAX_TARGET_PAGE_BITS}, and at least the minimum"
    )]
    BadTargetPageBits {
        /// The page bits asked for.
        bits: u32,
        /// The target's minimum page bits asked for.
        min_bits: u32,
    },

    // ---- the migration drivers ----
    /// `switchover-ack` with the QEMU 7.2 dialect, which has no SWITCHOVER_ACK.
    #[error("switchover-ack needs the QEMU 10.x stream dialect (7.2 has no SWITCHOVER_ACK)")]
    SwitchoverAckNeedsV10,
    /// The migration was cancelled: on the source by
    /// [`MigrationHandle::cancel`](crate::migration::MigrationHandle::cancel), on the
    /// destination by its [`CancelToken`](crate::migration::CancelToken).
    #[error("{}", if *in_postcopy_pause {
        "cancelled in postcopy-paused: the guest state stays split until recovery"
    } else {
        "migration cancelled"
    })]
    Cancelled {
        /// The cancel came in postcopy-paused: the source gives up recovery, and the
        /// guest state stays split between the two sides.
        in_postcopy_pause: bool,
    },
    /// The destination reported (SHUT with error) that it failed to load the stream.
    #[error("destination failed to load the stream")]
    PeerFailed,
    /// [`wait_for`](crate::migration::StatsHandle::wait_for) a status the
    /// migration ended without reaching.
    #[error("migration ended {ended} without reaching {wanted}")]
    StatusNotReached {
        /// The status waited for.
        wanted: crate::migration::MigrationStatus,
        /// The final status.
        ended: crate::migration::MigrationStatus,
    },
    /// A migration URI that does not parse.
    #[error(transparent)]
    InvalidUri(#[from] UriError),
    /// A transport could not be set up or finished badly.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The return path is needed but missing.
    #[error(transparent)]
    NoReturnPath(#[from] ReturnPathMissing),
    /// The return path broke or carried a message the source rejects.
    #[error(transparent)]
    ReturnPath(#[from] ReturnPathError),
    /// The postcopy sequence was not followed or cannot be served.
    #[error(transparent)]
    Postcopy(#[from] PostcopyError),
    /// A postcopy recovery attempt failed.
    #[error(transparent)]
    PostcopyRecovery(#[from] RecoveryError),
    /// The peer stayed silent (or did not read) for longer than allowed.
    #[error(transparent)]
    TimedOut(#[from] TimeoutError),
}

fn stream_version_message(version: u32) -> String {
    if version == FILE_VERSION_COMPAT {
        format!("stream version {version} is obsolete")
    } else {
        format!("unsupported stream version {version}")
    }
}

fn unsupported_command_name(cmd: MigCmd) -> &'static str {
    match cmd {
        MigCmd::EnableColo => "COLO",
        other => other.name(),
    }
}

/// The runtime's error: what went wrong ([`ErrorKind`]), the byte offset, and the
/// path of descriptions/fields being processed.
///
/// ```
/// use vmstate_runtime::{from_bytes, Error, VmState};
///
/// #[derive(VmState, Default, Debug)]
/// #[vmstate(name = "dev", version = 1)]
/// struct Dev { a: u32 }
///
/// let err: Error = from_bytes::<Dev>(&[0, 0], 1).unwrap_err();
/// assert_eq!(err.path_string(), "dev.a");
/// assert_eq!(err.offset(), Some(0));
/// assert!(err.to_string().contains("stream ended"));
/// ```
pub struct Error {
    inner: Box<Inner>,
}

// One pointer: `Result<T>` stays as small as `T` plus a word on the hot paths, where
// errors are never built.
static_assertions::assert_eq_size!(Error, usize);

struct Inner {
    kind: ErrorKind,
    offset: Option<u64>,
    /// The stream section being processed, e.g. `section 'pckbd' instance 0 (id 25)`.
    section: Option<String>,
    /// Innermost segment last while building; displayed outermost first.
    path: Vec<PathSegment>,
}

impl Error {
    /// Creates an error of the given kind with no location yet.
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind};
    ///
    /// let err = Error::new(ErrorKind::TrailingBytes(2));
    /// assert!(matches!(err.kind(), ErrorKind::TrailingBytes(2)));
    /// assert_eq!(err.offset(), None);
    /// assert_eq!(err.path_string(), "");
    /// assert_eq!(err.to_string(), "2 trailing byte(s) after the end of the body");
    /// ```
    #[cold]
    pub fn new(kind: ErrorKind) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                offset: None,
                section: None,
                path: Vec::new(),
            }),
        }
    }

    /// Creates an error of the given kind at a byte offset.
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind};
    ///
    /// let err = Error::at(ErrorKind::BadNullMarker(0x31), 12);
    /// assert_eq!(err.offset(), Some(12));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "expected null-pointer marker 0x30, found 0x31 (at byte offset 12)"
    /// );
    /// ```
    #[cold]
    pub fn at(kind: ErrorKind, offset: u64) -> Self {
        Error::new(kind).with_offset(offset)
    }

    /// Creates an [`ErrorKind::Invalid`] error with a message.
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind};
    ///
    /// let err = Error::invalid(format!("irq {} out of range", 99));
    /// assert!(matches!(err.kind(), ErrorKind::Invalid(m) if m == "irq 99 out of range"));
    /// assert_eq!(err.to_string(), "irq 99 out of range");
    /// ```
    #[cold]
    pub fn invalid(msg: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::Invalid(msg.into()))
    }

    /// Creates an [`ErrorKind::Poisoned`] error: a lock shared with another thread
    /// was poisoned by a panic there.
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind};
    ///
    /// let err = Error::poisoned("device mutex poisoned by a panicking thread");
    /// assert!(matches!(err.kind(), ErrorKind::Poisoned { .. }));
    /// assert_eq!(err.to_string(), "device mutex poisoned by a panicking thread");
    /// ```
    #[cold]
    pub fn poisoned(what: &'static str) -> Self {
        Error::new(ErrorKind::Poisoned { what })
    }

    /// Wraps a hook's error.
    ///
    /// ```
    /// use std::error::Error as _;
    /// use vmstate_runtime::{Error, ErrorKind};
    ///
    /// let err = Error::hook("post_load", "bad timer state");
    /// assert!(matches!(err.kind(), ErrorKind::Hook { hook: "post_load", .. }));
    /// assert_eq!(err.to_string(), "post_load hook failed: bad timer state");
    /// // The hook's own error stays reachable as the source.
    /// assert_eq!(err.source().unwrap().to_string(), "bad timer state");
    /// ```
    #[cold]
    pub fn hook(hook: &'static str, source: impl Into<BoxError>) -> Self {
        Error::new(ErrorKind::Hook {
            hook,
            source: source.into(),
        })
    }

    /// Wraps a device model's own typed error ([`ErrorKind::Device`]).
    ///
    /// ```
    /// use std::error::Error as _;
    /// use vmstate_runtime::{Error, ErrorKind};
    ///
    /// let err = Error::device("ram", "unknown RAMBlock \"vga.vram\"");
    /// assert!(matches!(err.kind(), ErrorKind::Device { device: "ram", .. }));
    /// assert_eq!(err.to_string(), "ram: unknown RAMBlock \"vga.vram\"");
    /// assert!(err.source().is_some());
    /// ```
    #[cold]
    pub fn device(device: &'static str, source: impl Into<BoxError>) -> Self {
        Error::new(ErrorKind::Device {
            device,
            source: source.into(),
        })
    }

    /// What went wrong.
    ///
    /// ```
    /// use vmstate_runtime::{from_bytes, ErrorKind, VmState};
    ///
    /// #[derive(VmState, Default, Debug)]
    /// #[vmstate(name = "dev", version = 1)]
    /// struct Dev { counter: u32 }
    ///
    /// let err = from_bytes::<Dev>(&[0, 0, 1], 1).unwrap_err();
    /// assert!(matches!(
    ///     err.kind(),
    ///     ErrorKind::Truncated { needed: 4, available: 3 }
    /// ));
    /// ```
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The byte offset (from the start of the reader or writer) where it went wrong.
    ///
    /// ```
    /// use vmstate_runtime::{from_bytes, VmState};
    ///
    /// #[derive(VmState, Default, Debug)]
    /// #[vmstate(name = "dev", version = 1)]
    /// struct Dev { a: u16, b: bool }
    ///
    /// // `b` is the third byte: the error points at it.
    /// let err = from_bytes::<Dev>(&[0, 1, 9], 1).unwrap_err();
    /// assert_eq!(err.offset(), Some(2));
    /// ```
    pub fn offset(&self) -> Option<u64> {
        self.inner.offset
    }

    /// The location path, outermost first.
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind, PathSegment};
    ///
    /// // Segments are added innermost first, as the error travels up ...
    /// let err = Error::new(ErrorKind::InvalidBool(9)).in_field("flag", 0).in_vmsd("dev");
    /// // ... and listed outermost first.
    /// let path: Vec<&PathSegment> = err.path().collect();
    /// assert_eq!(path, [&PathSegment::Vmsd("dev"), &PathSegment::Field("flag")]);
    /// ```
    pub fn path(&self) -> impl Iterator<Item = &PathSegment> {
        self.inner.path.iter().rev()
    }

    /// Sets the offset if none is recorded yet (the innermost offset wins).
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind};
    ///
    /// let err = Error::new(ErrorKind::InvalidBool(2)).with_offset(7);
    /// assert_eq!(err.offset(), Some(7));
    /// // An outer layer cannot overwrite the innermost offset.
    /// assert_eq!(err.with_offset(0).offset(), Some(7));
    /// ```
    #[cold]
    pub fn with_offset(mut self, offset: u64) -> Self {
        if self.inner.offset.is_none() {
            self.inner.offset = Some(offset);
        }
        self
    }

    /// Names the stream section the error happened in (the outermost context; the
    /// first one set wins).
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind};
    ///
    /// let err = Error::new(ErrorKind::TrailingBytes(1))
    ///     .in_section("section 'pckbd' instance 0")
    ///     .in_section("ignored: the first one set wins");
    /// assert_eq!(err.section(), Some("section 'pckbd' instance 0"));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "section 'pckbd' instance 0: 1 trailing byte(s) after the end of the body"
    /// );
    /// ```
    #[cold]
    pub fn in_section(mut self, section: impl Into<String>) -> Self {
        if self.inner.section.is_none() {
            self.inner.section = Some(section.into());
        }
        self
    }

    /// The stream section the error happened in, if it happened inside one.
    ///
    /// ```
    /// use vmstate_runtime::Error;
    ///
    /// let err = Error::invalid("bad");
    /// assert_eq!(err.section(), None);
    /// assert_eq!(err.in_section("section 'rtc'").section(), Some("section 'rtc'"));
    /// ```
    pub fn section(&self) -> Option<&str> {
        self.inner.section.as_deref()
    }

    /// Adds an outer path segment.
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind, PathSegment};
    ///
    /// let err = Error::new(ErrorKind::InvalidBool(2))
    ///     .in_field("enabled", 4)
    ///     .in_vmsd("pckbd/extended_state")
    ///     .within(PathSegment::Subsection("pckbd/extended_state".into()))
    ///     .in_vmsd("pckbd");
    /// assert_eq!(err.path_string(), "pckbd/extended_state.enabled");
    /// ```
    #[cold]
    pub fn within(mut self, segment: PathSegment) -> Self {
        self.inner.path.push(segment);
        self
    }

    /// Adds an outer field segment and fills in the offset if missing.
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind, PathSegment};
    ///
    /// let err = Error::new(ErrorKind::InvalidBool(3)).in_field("flag", 16);
    /// assert_eq!(err.offset(), Some(16));
    /// assert_eq!(err.path().collect::<Vec<_>>(), [&PathSegment::Field("flag")]);
    /// ```
    #[cold]
    pub fn in_field(self, field: &'static str, offset: u64) -> Self {
        self.with_offset(offset).within(PathSegment::Field(field))
    }

    /// Adds an outer VMState-description segment.
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind};
    ///
    /// let err = Error::new(ErrorKind::InvalidBool(3)).in_field("flag", 0).in_vmsd("dev");
    /// assert_eq!(err.path_string(), "dev.flag");
    /// ```
    #[cold]
    pub fn in_vmsd(self, name: &'static str) -> Self {
        self.within(PathSegment::Vmsd(name))
    }

    /// Adds an outer array-index segment.
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind};
    ///
    /// let err = Error::new(ErrorKind::InvalidBool(3))
    ///     .in_index(5)
    ///     .in_field("regs", 0)
    ///     .in_vmsd("dev");
    /// assert_eq!(err.path_string(), "dev.regs[5]");
    /// ```
    #[cold]
    pub fn in_index(self, index: usize) -> Self {
        self.within(PathSegment::Index(index))
    }

    /// Renders the path the way QEMU names things: `pckbd/extended_state.obsrc`,
    /// `ps2kbd.parent_obj.queue[3]`.
    ///
    /// A nested struct's own description name is not repeated after the field that
    /// holds it; a subsection whose name extends the enclosing description's name
    /// shows only the extension (`pckbd` + `pckbd/extended_state` → `pckbd/extended_state`);
    /// below a nested struct field it is shown in full (`pckbd.kbd/pckbd_outport.outport`).
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind, PathSegment};
    ///
    /// // A subsection of "pckbd" holding a nested array field.
    /// let err = Error::new(ErrorKind::InvalidBool(2))
    ///     .in_index(3)
    ///     .in_field("data", 7)
    ///     .in_vmsd("pckbd/extended_state")
    ///     .within(PathSegment::Subsection("pckbd/extended_state".into()))
    ///     .in_vmsd("pckbd");
    /// assert_eq!(err.path_string(), "pckbd/extended_state.data[3]");
    /// ```
    pub fn path_string(&self) -> String {
        let mut out = String::new();
        let mut current_vmsd: &str = "";
        // Whether `out` ends with the full name of `current_vmsd` (not with a field
        // name that merely happens to end with the same characters).
        let mut vmsd_name_last = false;
        for seg in self.path() {
            match seg {
                PathSegment::Vmsd(name) => {
                    if out.is_empty() {
                        out.push_str(name);
                        vmsd_name_last = true;
                    }
                    current_vmsd = name;
                }
                PathSegment::Subsection(name) => {
                    match name.strip_prefix(current_vmsd) {
                        // The enclosing description's name was just printed: extend it.
                        Some(rest) if !current_vmsd.is_empty() && vmsd_name_last => {
                            out.push_str(rest)
                        }
                        _ => {
                            if !out.is_empty() {
                                out.push('/');
                            }
                            out.push_str(name);
                        }
                    }
                    // Fields of the subsection follow; its own Vmsd segment (same name)
                    // must not reset the rendering.
                    vmsd_name_last = true;
                }
                PathSegment::Field(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                    vmsd_name_last = false;
                }
                PathSegment::Index(i) => {
                    vmsd_name_last = false;
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(section) = &self.inner.section {
            write!(f, "{section}: ")?;
        }
        let path = self.path_string();
        if !path.is_empty() {
            write!(f, "{path}: ")?;
        }
        write!(f, "{}", self.inner.kind)?;
        if let Some(off) = self.inner.offset {
            write!(f, " (at byte offset {off})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("offset", &self.inner.offset)
            .field("section", &self.inner.section)
            .field("path", &self.path_string())
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.inner.kind)
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

impl From<std::io::Error> for Error {
    /// An [`Error`] carried inside the `io::Error` (how a
    /// [`Refill`](crate::wire::Refill) reports a timeout or a cancel) comes back
    /// as itself; any other I/O error becomes [`ErrorKind::Io`].
    ///
    /// ```
    /// use vmstate_runtime::{Error, ErrorKind};
    ///
    /// let typed = Error::new(ErrorKind::Cancelled { in_postcopy_pause: false });
    /// let io = std::io::Error::new(std::io::ErrorKind::TimedOut, typed);
    /// assert!(matches!(Error::from(io).kind(), ErrorKind::Cancelled { .. }));
    /// let plain = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
    /// assert!(matches!(Error::from(plain).kind(), ErrorKind::Io(_)));
    /// ```
    fn from(e: std::io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let inner = e.into_inner().expect("checked: has an inner error");
            return *inner.downcast::<Error>().expect("checked: it is an Error");
        }
        Error::new(ErrorKind::Io(e))
    }
}

impl From<&'static str> for Error {
    fn from(msg: &'static str) -> Self {
        Error::invalid(msg)
    }
}

impl From<String> for Error {
    fn from(msg: String) -> Self {
        Error::invalid(msg)
    }
}

impl From<std::convert::Infallible> for Error {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

/// Shorthand for `Result<T, vmstate_runtime::Error>`.
///
/// ```
/// use vmstate_runtime::{from_bytes, Result, VmState};
///
/// #[derive(VmState, Default, Debug)]
/// #[vmstate(name = "dev", version = 1)]
/// struct Dev { port: u16 }
///
/// fn parse(bytes: &[u8]) -> Result<u16> {
///     Ok(from_bytes::<Dev>(bytes, 1)?.port)
/// }
/// assert_eq!(parse(&[0x12, 0x34]).unwrap(), 0x1234);
/// assert!(parse(&[0x12]).is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_renders_like_qemu_names() {
        let e = Error::at(
            ErrorKind::Truncated {
                needed: 4,
                available: 1,
            },
            23,
        )
        .in_field("obsrc", 99)
        .in_vmsd("pckbd/extended_state")
        .within(PathSegment::Subsection("pckbd/extended_state".into()))
        .in_vmsd("pckbd");
        assert_eq!(e.path_string(), "pckbd/extended_state.obsrc");
        assert_eq!(e.offset(), Some(23));
        assert_eq!(
            e.to_string(),
            "pckbd/extended_state.obsrc: stream ended: needed 4 more byte(s), only 1 left (at byte offset 23)"
        );
    }

    #[test]
    fn nested_struct_and_index() {
        let e = Error::new(ErrorKind::InvalidBool(2))
            .in_index(3)
            .in_field("data", 7)
            .in_vmsd("PS2 Common State")
            .in_field("parent_obj", 0)
            .in_vmsd("ps2kbd");
        assert_eq!(e.path_string(), "ps2kbd.parent_obj.data[3]");
        assert_eq!(e.offset(), Some(7));
    }

    #[test]
    fn legacy_prefix_subsection() {
        let e = Error::new(ErrorKind::InvalidBool(2))
            .in_field("outport", 5)
            .in_vmsd("pckbd_outport")
            .within(PathSegment::Subsection("pckbd_outport".into()))
            .in_vmsd("pckbd")
            .in_field("kbd", 0)
            .in_vmsd("pckbd");
        assert_eq!(e.path_string(), "pckbd.kbd/pckbd_outport.outport");
    }
}
