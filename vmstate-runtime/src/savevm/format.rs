//! Constants of QEMU's savevm stream (`migration/savevm.h`) and the QEMU versions
//! whose differences matter on the wire.

/// First be32 of a stream: "QEVM".
pub const FILE_MAGIC: u32 = 0x5145_564d;
/// Obsolete stream version, rejected.
pub const FILE_VERSION_COMPAT: u32 = 0x0000_0002;
/// Current stream version.
pub const FILE_VERSION: u32 = 0x0000_0003;

/// One-byte record types at the top level of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordType {
    /// End of the device sections.
    Eof = 0x00,
    /// First chunk of an iterative section (full header).
    SectionStart = 0x01,
    /// Middle chunk (short header).
    SectionPart = 0x02,
    /// Last chunk (short header).
    SectionEnd = 0x03,
    /// A whole non-iterative device section (full header).
    SectionFull = 0x04,
    /// Subsection marker (only inside a VMState body; invalid at top level).
    Subsection = 0x05,
    /// The JSON description trailer.
    VmDescription = 0x06,
    /// The configuration record right after the header.
    Configuration = 0x07,
    /// A command record.
    Command = 0x08,
    /// Section footer marker.
    SectionFooter = 0x7e,
}

impl RecordType {
    /// Decodes a record-type byte.
    pub const fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0x00 => RecordType::Eof,
            0x01 => RecordType::SectionStart,
            0x02 => RecordType::SectionPart,
            0x03 => RecordType::SectionEnd,
            0x04 => RecordType::SectionFull,
            0x05 => RecordType::Subsection,
            0x06 => RecordType::VmDescription,
            0x07 => RecordType::Configuration,
            0x08 => RecordType::Command,
            0x7e => RecordType::SectionFooter,
            _ => return None,
        })
    }

    /// Whether this type starts a section with a full header (idstr, instance, version).
    pub const fn has_full_header(self) -> bool {
        matches!(self, RecordType::SectionStart | RecordType::SectionFull)
    }
}

/// The QEMU release whose stream details to follow, where they differ.
///
/// The VMState encoding itself is identical; what differs is listed in
/// `qemu-wire.md` §10: the SWITCHOVER_START command (10.x only), priority values,
/// the vmdesc "configuration" key, and the return path's SWITCHOVER_ACK.
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
    pub const fn mig_cmd_max(self) -> u16 {
        match self {
            QemuVersion::V7_2 => 11,
            QemuVersion::V10 => 12,
        }
    }

    /// One past the highest return-path message type this version accepts.
    pub const fn rp_msg_max(self) -> u16 {
        match self {
            QemuVersion::V7_2 => 7,
            QemuVersion::V10 => 8,
        }
    }
}

/// The value of PING sent inside a postcopy package once the devices are loaded
/// (QEMU 10.x only).
pub const PING_PACKAGED_LOADED: u32 = 0x42;

/// Longest idstr (one length byte).
pub const MAX_IDSTR_LEN: usize = 255;

/// Instance id meaning "pick the next free one" at registration.
pub const INSTANCE_ID_ANY: u32 = u32::MAX;

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
}
