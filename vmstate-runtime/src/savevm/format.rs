//! Every byte value and limit of QEMU's savevm stream (`migration/savevm.c`,
//! `migration/migration.c`, `migration/vmstate*.c`), named once: the file magic and
//! versions, the top-level record types, the markers inside VMState bodies, the
//! command numbers (MIG_CMD_*), the return-path message types (MIG_RP_MSG_*), the
//! fixed values some of them carry, and the limits a loader enforces. Everything
//! that reads or writes a stream (loader, writer, migration drivers, the analyzer,
//! the benchmarks) uses these names instead of literals.
//!
//! Also the QEMU versions whose differences matter on the wire.
//!
//! ```
//! use vmstate_runtime::savevm::format::{MigCmd, RecordType, RpMsgType, FILE_MAGIC};
//!
//! assert_eq!(&FILE_MAGIC.to_be_bytes(), b"QEVM");
//! assert_eq!(RecordType::from_u8(0x08), Some(RecordType::Command));
//! assert_eq!(MigCmd::from_u16(2), Some(MigCmd::Ping));
//! assert_eq!(RpMsgType::Pong.name(), "PONG");
//! ```

use std::fmt;

/// Declares a numbered wire enum once: each variant with its number and QEMU's
/// name; generates `ALL`, the decoder, `name()` and `Display` from that one list.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $repr:ident, decoded by $from:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $qemu:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// Every value, in number order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Decodes a number; `None` when it names nothing.
            pub const fn $from(n: $repr) -> Option<Self> {
                match n {
                    $( $value => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// QEMU's name for it, without its prefix (for messages).
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $qemu, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

// ---- header ----

/// First be32 of a stream: "QEVM".
pub const FILE_MAGIC: u32 = 0x5145_564d;
/// Obsolete stream version, rejected.
pub const FILE_VERSION_COMPAT: u32 = 0x0000_0002;
/// Current stream version.
pub const FILE_VERSION: u32 = 0x0000_0003;

// ---- top-level records ----

wire_enum! {
    /// One-byte record types at the top level of a stream (`QEMU_VM_*`).
    ///
    /// ```
    /// use vmstate_runtime::savevm::RecordType;
    /// assert_eq!(RecordType::from_u8(0x7e), Some(RecordType::SectionFooter));
    /// assert_eq!(RecordType::from_u8(0x09), None);
    /// assert_eq!(RecordType::SectionFull.to_string(), "SECTION_FULL");
    /// ```
    pub enum RecordType: u8, decoded by from_u8 {
        /// End of the device sections.
        Eof = 0x00 => "EOF",
        /// First chunk of an iterative section (full header).
        SectionStart = 0x01 => "SECTION_START",
        /// Middle chunk (short header).
        SectionPart = 0x02 => "SECTION_PART",
        /// Last chunk (short header).
        SectionEnd = 0x03 => "SECTION_END",
        /// A whole non-iterative device section (full header).
        SectionFull = 0x04 => "SECTION_FULL",
        /// Subsection marker (only inside a VMState body; invalid at top level).
        Subsection = 0x05 => "SUBSECTION",
        /// The JSON description trailer.
        VmDescription = 0x06 => "VMDESCRIPTION",
        /// The configuration record right after the header.
        Configuration = 0x07 => "CONFIGURATION",
        /// A command record.
        Command = 0x08 => "COMMAND",
        /// Section footer marker.
        SectionFooter = 0x7e => "SECTION_FOOTER",
    }
}

impl RecordType {
    /// Whether this type starts a section with a full header (idstr, instance, version).
    ///
    /// ```
    /// use vmstate_runtime::savevm::RecordType;
    /// assert!(RecordType::SectionStart.has_full_header());
    /// assert!(!RecordType::SectionEnd.has_full_header());
    /// ```
    pub const fn has_full_header(self) -> bool {
        matches!(self, RecordType::SectionStart | RecordType::SectionFull)
    }
}

// ---- markers inside VMState bodies ----

/// Byte that starts a subsection inside a VMState body (`QEMU_VM_SUBSECTION`).
pub const SUBSECTION_MARKER: u8 = RecordType::Subsection as u8;
/// The single byte written for a NULL pointer field (`VMS_NULLPTR_MARKER`, `'0'`).
pub const NULLPTR_MARKER: u8 = 0x30;
/// A list (QTAILQ/QLIST) element follows.
pub const LIST_ELEMENT_MARKER: u8 = 0x01;
/// The list ends.
pub const LIST_END_MARKER: u8 = 0x00;
/// The be64 a disarmed timer is saved as (QEMU `timer_get`'s -1).
pub const TIMER_DISARMED: u64 = u64::MAX;

// ---- commands ----

wire_enum! {
    /// MIG_CMD numbers: the be16 after a [`RecordType::Command`] byte.
    ///
    /// ```
    /// use vmstate_runtime::savevm::format::MigCmd;
    /// assert_eq!(MigCmd::from_u16(7), Some(MigCmd::Packaged));
    /// assert_eq!(MigCmd::from_u16(0), None);
    /// assert_eq!(MigCmd::from_u16(12), None);
    /// assert_eq!(MigCmd::PostcopyRamDiscard.name(), "POSTCOPY_RAM_DISCARD");
    /// ```
    pub enum MigCmd: u16, decoded by from_u16 {
        /// Destination opens the return path.
        OpenReturnPath = 1 => "OPEN_RETURN_PATH",
        /// Request a PONG with the same value.
        Ping = 2 => "PING",
        /// Postcopy may follow: page sizes.
        PostcopyAdvise = 3 => "POSTCOPY_ADVISE",
        /// Destination starts listening for postcopy pages.
        PostcopyListen = 4 => "POSTCOPY_LISTEN",
        /// Destination starts the guest.
        PostcopyRun = 5 => "POSTCOPY_RUN",
        /// Discard ranges of a RAMBlock.
        PostcopyRamDiscard = 6 => "POSTCOPY_RAM_DISCARD",
        /// A nested stream of the given length follows.
        Packaged = 7 => "PACKAGED",
        /// Enable COLO.
        EnableColo = 8 => "ENABLE_COLO",
        /// Postcopy recovery: resume.
        PostcopyResume = 9 => "POSTCOPY_RESUME",
        /// Postcopy recovery: request a received bitmap.
        RecvBitmap = 10 => "RECV_BITMAP",
        /// Switchover starts (QEMU 10.x only).
        SwitchoverStart = 11 => "SWITCHOVER_START",
    }
}

impl MigCmd {
    /// The payload length when it is fixed (`None`: variable).
    ///
    /// ```
    /// use vmstate_runtime::savevm::format::MigCmd;
    /// assert_eq!(MigCmd::Ping.fixed_len(), Some(4));
    /// assert_eq!(MigCmd::RecvBitmap.fixed_len(), None);
    /// ```
    pub const fn fixed_len(self) -> Option<u16> {
        match self {
            MigCmd::Ping | MigCmd::Packaged => Some(4),
            MigCmd::PostcopyAdvise | MigCmd::PostcopyRamDiscard | MigCmd::RecvBitmap => None,
            MigCmd::OpenReturnPath
            | MigCmd::PostcopyListen
            | MigCmd::PostcopyRun
            | MigCmd::EnableColo
            | MigCmd::PostcopyResume
            | MigCmd::SwitchoverStart => Some(0),
        }
    }
}

/// Payload length of a POSTCOPY_ADVISE that carries page sizes (two be64).
pub const POSTCOPY_ADVISE_LEN: u16 = 16;
/// Version byte at the start of a POSTCOPY_RAM_DISCARD payload.
pub const POSTCOPY_RAM_DISCARD_VERSION: u8 = 0;
/// Bytes of one (start, length) range in POSTCOPY_RAM_DISCARD.
pub const DISCARD_RANGE_LEN: usize = 16;
/// Most ranges QEMU puts in one discard command.
pub const MAX_DISCARDS_PER_COMMAND: usize = 12;
/// PING values the source sends, so a stream trace shows how far it got: right
/// after OPEN_RETURN_PATH.
pub const PING_RETURN_PATH_OPENED: u32 = 1;
/// PING before the postcopy package (after the discards).
pub const PING_BEFORE_PACKAGE: u32 = 2;
/// PING inside the postcopy package, after the device state.
pub const PING_PACKAGE_DEVICES: u32 = 3;
/// PING after the postcopy package.
pub const PING_AFTER_PACKAGE: u32 = 4;
/// The value of PING sent inside a postcopy package once the devices are loaded
/// (QEMU 10.x only).
pub const PING_PACKAGED_LOADED: u32 = 0x42;

// ---- return path ----

wire_enum! {
    /// MIG_RP_MSG types: the be16 that starts a return-path frame.
    ///
    /// ```
    /// use vmstate_runtime::savevm::format::RpMsgType;
    /// assert_eq!(RpMsgType::from_u16(1), Some(RpMsgType::Shut));
    /// assert_eq!(RpMsgType::from_u16(8), None);
    /// assert_eq!(RpMsgType::ReqPagesId.name(), "REQ_PAGES_ID");
    /// ```
    pub enum RpMsgType: u16, decoded by from_u16 {
        /// Destination is done (payload: be32 0 = ok, 1 = error).
        Shut = 1 => "SHUT",
        /// Reply to PING.
        Pong = 2 => "PONG",
        /// Page request naming the block.
        ReqPagesId = 3 => "REQ_PAGES_ID",
        /// Page request in the same block as the previous one.
        ReqPages = 4 => "REQ_PAGES",
        /// Received bitmap follows (postcopy recovery).
        RecvBitmap = 5 => "RECV_BITMAP",
        /// Reply to POSTCOPY_RESUME.
        ResumeAck = 6 => "RESUME_ACK",
        /// Switchover allowed (QEMU 10.x).
        SwitchoverAck = 7 => "SWITCHOVER_ACK",
    }
}

impl RpMsgType {
    /// The payload length when it is fixed (`None`: carries a block name).
    ///
    /// ```
    /// use vmstate_runtime::savevm::format::RpMsgType;
    /// assert_eq!(RpMsgType::ReqPages.fixed_len(), Some(12));
    /// assert_eq!(RpMsgType::ReqPagesId.fixed_len(), None);
    /// ```
    pub const fn fixed_len(self) -> Option<usize> {
        match self {
            RpMsgType::Shut | RpMsgType::Pong | RpMsgType::ResumeAck => Some(4),
            RpMsgType::ReqPages => Some(REQ_PAGES_LEN),
            RpMsgType::SwitchoverAck => Some(0),
            RpMsgType::ReqPagesId | RpMsgType::RecvBitmap => None,
        }
    }
}

/// Bytes of a page request before the optional block name (be64 start, be32 len).
pub const REQ_PAGES_LEN: usize = 12;
/// Largest payload the source accepts (its receive buffer).
pub const MAX_RP_PAYLOAD: usize = 512;
/// The only valid RESUME_ACK value.
pub const RESUME_ACK_VALUE: u32 = 1;
/// End marker after a RECV_BITMAP blob.
pub const RECV_BITMAP_ENDING: u64 = 0x0123_4567_89ab_cdef;
/// Largest received bitmap accepted on the return path (one bit per target
/// page: 64 MiB of bitmap covers 2 TiB of guest RAM in 4 KiB pages).
pub const MAX_RECV_BITMAP: u64 = 64 * 1024 * 1024;

// ---- pages ----

/// The x86 target page bits (and the minimum, so the configuration's
/// target-page-bits subsection is never sent there): the default of
/// [`TargetPage`](super::TargetPage), which carries the page size through the
/// runtime.
pub const TARGET_PAGE_BITS_X86: u32 = 12;
/// The x86 target page size (4 KiB): the default page size the vmdesc trailer
/// reports and POSTCOPY_ADVISE announces.
pub const TARGET_PAGE_SIZE: u64 = 1 << TARGET_PAGE_BITS_X86;
/// Smallest target page bits a QEMU target uses (1 KiB pages).
pub const MIN_TARGET_PAGE_BITS: u32 = 10;
/// Largest target page bits accepted (64 KiB pages).
pub const MAX_TARGET_PAGE_BITS: u32 = 16;

// ---- limits ----

/// Longest counted name (idstr, subsection name, RAMBlock name): one length byte.
pub const MAX_NAME_LEN: usize = 255;
/// Longest idstr (a counted name).
pub const MAX_IDSTR_LEN: usize = MAX_NAME_LEN;
/// Instance id meaning "pick the next free one" at registration.
pub const INSTANCE_ID_ANY: u32 = u32::MAX;
/// Largest PACKAGED sub-stream accepted (QEMU allows up to 4 GiB; a package holds
/// the device state of one machine, so this is generous).
pub const MAX_PACKAGE_LEN: u32 = 256 * 1024 * 1024;
/// Largest vmdesc trailer read (QEMU drains it; we keep it for inspection).
pub const MAX_VMDESC_LEN: u32 = 64 * 1024 * 1024;

// The limits fit the length fields that carry them.
static_assertions::const_assert!(MAX_NAME_LEN == u8::MAX as usize);
static_assertions::const_assert!(MAX_RP_PAYLOAD <= u16::MAX as usize);
static_assertions::const_assert!(REQ_PAGES_LEN <= MAX_RP_PAYLOAD);
static_assertions::const_assert!(MAX_DISCARDS_PER_COMMAND * DISCARD_RANGE_LEN <= u16::MAX as usize);
static_assertions::const_assert!(TARGET_PAGE_SIZE.is_power_of_two());
static_assertions::const_assert!(
    MIN_TARGET_PAGE_BITS <= TARGET_PAGE_BITS_X86 && TARGET_PAGE_BITS_X86 <= MAX_TARGET_PAGE_BITS
);

// ---- versions ----

/// The QEMU release whose stream details to follow, where they differ.
///
/// The VMState encoding itself is identical; what differs is listed in
/// `qemu-wire.md` §10: the SWITCHOVER_START command (10.x only), priority values,
/// the vmdesc "configuration" key, and the return path's SWITCHOVER_ACK.
///
/// ```
/// use vmstate_runtime::savevm::QemuVersion;
/// assert_eq!(QemuVersion::default(), QemuVersion::V7_2);
/// assert_eq!(QemuVersion::V10.to_string(), "10.x");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QemuVersion {
    /// QEMU 7.2 (the default target, what the fixtures were written by).
    #[default]
    V7_2,
    /// QEMU 10.x ("master" in the reference notes).
    V10,
}

impl QemuVersion {
    /// One past the highest MIG_CMD value this version accepts.
    ///
    /// ```
    /// use vmstate_runtime::savevm::QemuVersion;
    /// assert_eq!(QemuVersion::V7_2.mig_cmd_max(), 11);
    /// ```
    pub const fn mig_cmd_max(self) -> u16 {
        match self {
            QemuVersion::V7_2 => MigCmd::RecvBitmap as u16 + 1,
            QemuVersion::V10 => MigCmd::SwitchoverStart as u16 + 1,
        }
    }

    /// One past the highest return-path message type this version accepts.
    ///
    /// ```
    /// use vmstate_runtime::savevm::QemuVersion;
    /// assert_eq!(QemuVersion::V10.rp_msg_max(), 8);
    /// ```
    pub const fn rp_msg_max(self) -> u16 {
        match self {
            QemuVersion::V7_2 => RpMsgType::ResumeAck as u16 + 1,
            QemuVersion::V10 => RpMsgType::SwitchoverAck as u16 + 1,
        }
    }

    /// Whether this version's loader knows command `cmd`.
    ///
    /// ```
    /// use vmstate_runtime::savevm::{format::MigCmd, QemuVersion};
    /// assert!(!QemuVersion::V7_2.has_command(MigCmd::SwitchoverStart));
    /// assert!(QemuVersion::V10.has_command(MigCmd::SwitchoverStart));
    /// ```
    pub const fn has_command(self, cmd: MigCmd) -> bool {
        (cmd as u16) < self.mig_cmd_max()
    }
}

impl fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QemuVersion::V7_2 => "7.2",
            QemuVersion::V10 => "10.x",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_types_roundtrip() {
        for b in 0..=255u8 {
            if let Some(t) = RecordType::from_u8(b) {
                assert_eq!(t as u8, b);
            }
        }
        assert_eq!(RecordType::from_u8(0x09), None);
        assert!(RecordType::SectionFull.has_full_header());
        assert!(!RecordType::SectionPart.has_full_header());
    }

    #[test]
    fn command_and_message_numbers_roundtrip() {
        for n in 0..=u16::MAX {
            if let Some(c) = MigCmd::from_u16(n) {
                assert_eq!(c as u16, n);
            }
            if let Some(t) = RpMsgType::from_u16(n) {
                assert_eq!(t as u16, n);
            }
        }
        assert_eq!(MigCmd::ALL.len(), 11);
        assert_eq!(RpMsgType::ALL.len(), 7);
        assert_eq!(QemuVersion::V10.mig_cmd_max(), 12);
        assert_eq!(QemuVersion::V7_2.rp_msg_max(), 7);
    }

    #[test]
    fn markers_are_qemus() {
        assert_eq!(SUBSECTION_MARKER, 0x05);
        assert_eq!(NULLPTR_MARKER, b'0');
        assert_eq!(TARGET_PAGE_SIZE, 4096);
    }
}
