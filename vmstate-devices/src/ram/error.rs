//! Typed errors of the RAM section: every one says what went wrong, where (block,
//! offset in the block, byte offset in the stream) and why.

use thiserror::Error;

/// What went wrong while decoding or applying RAM records.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RamErrorKind {
    /// A record names a RAMBlock this side does not have.
    #[error("unknown RAMBlock \"{block}\", cannot accept migration")]
    UnknownBlock {
        /// The idstr as sent (lossy UTF-8).
        block: String,
    },
    /// The MEM_SIZE list gives another length for a block that cannot be resized.
    #[error("RAMBlock \"{block}\": length {stream:#x} in the stream, {local:#x} here, and the block is not resizeable")]
    LengthMismatch {
        /// Block name.
        block: String,
        /// Local used_length.
        local: u64,
        /// Length the stream announced.
        stream: u64,
    },
    /// A resizeable block would grow beyond its max_length.
    #[error(
        "RAMBlock \"{block}\": length {stream:#x} in the stream is beyond its max_length {max:#x}"
    )]
    ResizeBeyondMax {
        /// Block name.
        block: String,
        /// Local max_length.
        max: u64,
        /// Length the stream announced.
        stream: u64,
    },
    /// The announced length is not a whole number of target pages.
    #[error("RAMBlock \"{block}\": length {stream:#x} is not a multiple of the page size {page_size:#x}")]
    UnalignedLength {
        /// Block name.
        block: String,
        /// Length the stream announced.
        stream: u64,
        /// The target page size.
        page_size: u64,
    },
    /// The block lengths of a MEM_SIZE list do not add up to its announced total.
    #[error("MEM_SIZE list: RAMBlock \"{block}\" of length {len:#x} exceeds the {remaining:#x} bytes left of the announced total")]
    TotalMismatch {
        /// Block whose length overran the total.
        block: String,
        /// Its length.
        len: u64,
        /// What was left of the total.
        remaining: u64,
    },
    /// The MEM_SIZE list ended (no further block name) before its entries
    /// added up to the announced total.
    #[error("MEM_SIZE list announces a total of {total:#x} bytes, but its {entries} RAMBlocks add up to {listed:#x} and no further block is named")]
    MemSizeListShort {
        /// The announced total.
        total: u64,
        /// The sum of the entries read.
        listed: u64,
        /// Entries read.
        entries: usize,
    },
    /// An XBZRLE record that cannot be applied: a bad header or bad data.
    #[error("RAMBlock \"{block}\": XBZRLE page at offset {offset:#x}: {reason}")]
    BadXbzrle {
        /// Block name.
        block: String,
        /// Offset of the page in the block.
        offset: u64,
        /// What is wrong with it.
        reason: super::xbzrle::XbzrleError,
    },
    /// The XBZRLE configuration cannot be used (e.g. a cache below a page).
    #[error("xbzrle: {0}")]
    Xbzrle(super::xbzrle::XbzrleError),
    /// A page record beyond the block's used_length (QEMU: "Illegal RAM offset").
    #[error(
        "RAMBlock \"{block}\": page at offset {offset:#x} is beyond its used_length {used:#x}"
    )]
    OffsetBeyondUsed {
        /// Block name.
        block: String,
        /// Offset of the page in the block.
        offset: u64,
        /// The block's used_length.
        used: u64,
    },
    /// CONTINUE on the first page record (no block named before on this channel).
    #[error("page at offset {offset:#x} has CONTINUE but no RAMBlock was named before")]
    ContinueWithoutBlock {
        /// Offset of the page in the (unknown) block.
        offset: u64,
    },
    /// A ZERO record whose fill byte is not 0 (QEMU writers always send 0; QEMU
    /// 8.0+ loaders reject anything else, and so does this one).
    #[error("RAMBlock \"{block}\": zero page at offset {offset:#x} has fill byte {fill:#04x}, only 0x00 is valid")]
    BadFill {
        /// Block name.
        block: String,
        /// Offset of the page in the block.
        offset: u64,
        /// The fill byte sent.
        fill: u8,
    },
    /// Flag bits that make no record this decoder knows.
    #[error("unknown combination of migration flags {flags:#x}")]
    UnknownFlags {
        /// The flag bits of the record word.
        flags: u64,
    },
    /// A record kind QEMU has but this side does not accept (yet or at all).
    #[error("{what} records are not accepted here (flags {flags:#x})")]
    Unsupported {
        /// What kind of record.
        what: &'static str,
        /// The flag bits of the record word.
        flags: u64,
    },
    /// The postcopy page-size word differs from the local block's page size.
    #[error("RAMBlock \"{block}\": page size {stream:#x} in the stream, {local:#x} here")]
    PageSizeMismatch {
        /// Block name.
        block: String,
        /// Local page size.
        local: u64,
        /// Page size the stream announced.
        stream: u64,
    },
    /// A local block's pages are not the target pages the section migrates in
    /// (its dirty bitmaps and records count in target pages).
    #[error("RAMBlock \"{block}\": its page size {block_page:#x} is not the section's target page size {target_page:#x}")]
    BlockPageNotTargetPage {
        /// Block name.
        block: String,
        /// The block's page size.
        block_page: u64,
        /// The section's target page size.
        target_page: u64,
    },
    /// The x-ignore-shared GPA word differs from the local block's address.
    #[error("RAMBlock \"{block}\": guest address {stream:#x} in the stream, {local:#x} here")]
    GpaMismatch {
        /// Block name.
        block: String,
        /// Local guest physical address.
        local: u64,
        /// Address the stream announced.
        stream: u64,
    },
    /// The section was written at a version this side cannot read.
    #[error("\"ram\" section version {0}, only version 4 exists")]
    BadVersion(u32),
    /// The stream ended or a primitive read failed.
    #[error("{0}")]
    Wire(vmstate_runtime::Error),
    /// Guest memory access failed.
    #[error("guest memory: {0}")]
    Memory(String),
    /// postcopy: a page request, discard, received bitmap or blocking guest
    /// access that cannot be honoured.
    #[error("postcopy: {0}")]
    Postcopy(super::postcopy::PostcopyRamError),
}

/// A RAM section error: what (with its block and block offset in the kind) and
/// at which byte offset of the stream the record starts ([`at`](Self::at);
/// the runtime error it converts into carries it as its offset).
///
/// ```
/// use vmstate_devices::ram::{RamError, RamErrorKind};
///
/// let e = RamError::new(RamErrorKind::ContinueWithoutBlock { offset: 0x1000 }, 42);
/// assert_eq!(
///     e.to_string(),
///     "page at offset 0x1000 has CONTINUE but no RAMBlock was named before"
/// );
/// let runtime: vmstate_runtime::Error = e.into();
/// assert_eq!(runtime.offset(), Some(42));
/// assert_eq!(
///     runtime.to_string(),
///     "ram: page at offset 0x1000 has CONTINUE but no RAMBlock was named before (at byte offset 42)"
/// );
/// ```
#[derive(Debug, Error)]
#[error("{kind}")]
pub struct RamError {
    kind: RamErrorKind,
    at: u64,
}

impl RamError {
    /// An error of `kind` for the record starting at stream offset `at`.
    #[cold]
    pub fn new(kind: RamErrorKind, at: u64) -> Self {
        RamError { kind, at }
    }

    /// What went wrong.
    pub fn kind(&self) -> &RamErrorKind {
        &self.kind
    }

    /// The kind, taken out (to re-raise it at another offset).
    pub fn into_kind(self) -> RamErrorKind {
        self.kind
    }

    /// Stream offset of the record.
    pub fn at(&self) -> u64 {
        self.at
    }
}

impl From<RamError> for vmstate_runtime::Error {
    /// The runtime's error ([`ErrorKind::Device`](vmstate_runtime::ErrorKind::Device)
    /// "ram") at the record's offset, keeping the typed RAM error as its
    /// `source()`; a wire error (truncation) stays the runtime's own.
    fn from(e: RamError) -> Self {
        let at = e.at;
        match e.kind {
            RamErrorKind::Wire(inner) => inner,
            _ => vmstate_runtime::Error::device("ram", e).with_offset(at),
        }
    }
}
