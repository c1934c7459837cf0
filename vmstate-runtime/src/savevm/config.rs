//! The configuration record (QEMU `vmstate_configuration`, savevm.c): machine type
//! and the subsections target-page-bits, capabilities and uuid — itself declared
//! with `#[derive(VmState)]`.

use bytes::{Buf, BufMut};

use super::page::TargetPage;
use crate::error::{ConfigMismatch, Error, Result};
use crate::vmstate::{FieldType, VmStateField};
use crate::wire::{Reader, Writer};
use crate::VmState;

/// The machine type both defaults use: the configuration record a
/// [`MigrationConfig::new`](crate::migration::MigrationConfig::new) source
/// sends and [`LoadOptions::default`](crate::savevm::LoadOptions) expects
/// (QEMU 7.2's `pc`, i.e. `pc-i440fx-7.2`).
pub const DEFAULT_MACHINE_TYPE: &str = "pc-i440fx-7.2";

/// Capabilities whose setting must match on both sides (QEMU's "validated"
/// capabilities: `x-ignore-shared` in 7.2, plus `mapped-ram` in 10.x).
pub const VALIDATED_CAPABILITIES: &[&str] = &["x-ignore-shared", "mapped-ram"];

/// A one-byte-length string on the wire (QEMU's "capability" info).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountedString(pub String);

impl VmStateField for CountedString {
    const FIELD_TYPE: FieldType = FieldType {
        info: "capability",
        size: None,
        array_len: None,
        nested: None,
    };

    fn save_field<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        w.write_counted_bytes(self.0.as_bytes())
    }

    fn load_field<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
        let name = r.read_counted_bytes()?;
        self.0 = name.to_string_lossy();
        Ok(())
    }
}

/// "configuration/target-page-bits".
#[derive(VmState, Debug, Clone, Default, PartialEq, Eq)]
#[vmstate(name = "configuration/target-page-bits", version = 1)]
pub struct TargetPageBits {
    /// log2 of the target page size.
    pub target_page_bits: u32,
}

/// "configuration/capabilities".
#[derive(VmState, Debug, Clone, Default, PartialEq, Eq)]
#[vmstate(name = "configuration/capabilities", version = 1)]
pub struct Capabilities {
    /// Number of names.
    pub caps_count: u32,
    /// Enabled validated capabilities.
    #[vmstate(varray(len = caps_count), max = 64)]
    pub capabilities: Vec<CountedString>,
}

impl Capabilities {
    fn sorted_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.capabilities.iter().map(|c| c.0.clone()).collect();
        names.sort();
        names
    }
}

fn mismatch(m: ConfigMismatch) -> Error {
    Error::new(m.into())
}

/// "configuration/uuid".
#[derive(VmState, Debug, Clone, Default, PartialEq, Eq)]
#[vmstate(name = "configuration/uuid", version = 1)]
pub struct VmUuid {
    /// The VM's UUID.
    #[vmstate(buffer)]
    pub uuid: [u8; 16],
}

/// The configuration record.
///
/// ```
/// use vmstate_runtime::savevm::Configuration;
/// use vmstate_runtime::to_bytes;
/// let c = Configuration::new("pc-i440fx-7.2");
/// let bytes = to_bytes(&c).unwrap();
/// assert_eq!(&bytes[..4], &[0, 0, 0, 13]);
/// assert_eq!(&bytes[4..], b"pc-i440fx-7.2");
/// ```
#[derive(VmState, Debug, Clone, Default, PartialEq, Eq)]
#[vmstate(name = "configuration", version = 1, minimum_version = 0)]
pub struct Configuration {
    /// Length of the machine type name.
    pub len: u32,
    /// The machine type name, e.g. `pc-i440fx-7.2` (no NUL).
    #[vmstate(vbuffer(len = len), max = 256)]
    pub name: Vec<u8>,
    /// Sent when the target's page bits exceed its minimum (never on x86).
    #[vmstate(subsection(needed = Self::page_bits_needed))]
    pub page_bits: TargetPageBits,
    /// Sent when a validated capability is on.
    #[vmstate(subsection(needed = Self::capabilities_needed))]
    pub capabilities: Capabilities,
    /// Sent with `-uuid` and the validate-uuid capability.
    #[vmstate(subsection(needed = Self::uuid_needed))]
    pub uuid: VmUuid,
    /// Whether to send the uuid subsection.
    #[vmstate(skip)]
    pub send_uuid: bool,
    /// Our target page (its minimum bits decide whether `page_bits` is sent,
    /// and what an absent subsection means on load).
    #[vmstate(skip)]
    pub target_page: TargetPage,
}

impl Configuration {
    /// A configuration for an x86 machine type (4 KiB target pages) with no
    /// validated capabilities.
    pub fn new(machine: &str) -> Self {
        Self::for_target(machine, TargetPage::X86)
    }

    /// A configuration for a machine type whose target page is `page`, with
    /// no validated capabilities.
    ///
    /// ```
    /// use vmstate_runtime::savevm::{Configuration, TargetPage};
    ///
    /// let c = Configuration::for_target("virt-7.2", TargetPage::new(14, 12).unwrap());
    /// assert_eq!(c.page_bits.target_page_bits, 14);
    /// // 14 bits exceed the minimum 12: the record carries them (the subsection).
    /// assert!(vmstate_runtime::to_bytes(&c).unwrap().ends_with(&[0, 0, 0, 14]));
    /// ```
    pub fn for_target(machine: &str, page: TargetPage) -> Self {
        Configuration {
            len: machine.len() as u32,
            name: machine.as_bytes().to_vec(),
            page_bits: TargetPageBits {
                target_page_bits: page.bits(),
            },
            target_page: page,
            ..Default::default()
        }
    }

    /// The machine type name.
    pub fn machine(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    fn page_bits_needed(&self) -> bool {
        self.page_bits.target_page_bits > self.target_page.min_bits()
    }

    fn capabilities_needed(&self) -> bool {
        !self.capabilities.capabilities.is_empty()
    }

    fn uuid_needed(&self) -> bool {
        self.send_uuid
    }

    /// Sets the validated capabilities that are on.
    pub fn set_capabilities(&mut self, caps: &[&str]) {
        self.capabilities.capabilities =
            caps.iter().map(|c| CountedString(c.to_string())).collect();
        self.capabilities.caps_count = caps.len() as u32;
    }

    /// Checks an incoming configuration against ours as QEMU's
    /// `configuration_post_load` does: machine name compared over the received
    /// length (a received prefix of our name passes), page bits equal (the
    /// minimum when the subsection is absent), the same validated capabilities,
    /// uuid equal when both sides have one.
    pub fn check_incoming(&self, incoming: &Configuration, incoming_had_uuid: bool) -> Result<()> {
        let ours = &self.name;
        let theirs = &incoming.name;
        if theirs.len() > ours.len() || &ours[..theirs.len()] != theirs.as_slice() {
            return Err(mismatch(ConfigMismatch::MachineType {
                stream: incoming.machine(),
                ours: self.machine(),
            }));
        }
        let their_bits = if incoming.page_bits.target_page_bits == 0 {
            self.target_page.min_bits()
        } else {
            incoming.page_bits.target_page_bits
        };
        if their_bits != self.page_bits.target_page_bits {
            return Err(mismatch(ConfigMismatch::PageBits {
                stream: their_bits,
                ours: self.page_bits.target_page_bits,
            }));
        }
        for c in &incoming.capabilities.capabilities {
            if !VALIDATED_CAPABILITIES.contains(&c.0.as_str()) {
                return Err(mismatch(ConfigMismatch::UnknownCapability {
                    name: c.0.clone(),
                }));
            }
        }
        let ours = self.capabilities.sorted_names();
        let stream = incoming.capabilities.sorted_names();
        if ours != stream {
            return Err(mismatch(ConfigMismatch::EnabledCapabilities {
                stream,
                ours,
            }));
        }
        if incoming_had_uuid && self.send_uuid && incoming.uuid != self.uuid {
            return Err(mismatch(ConfigMismatch::Uuid));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{from_bytes, to_bytes};

    #[test]
    fn qemu_7_2_configuration_bytes() {
        let c = Configuration::new("pc-i440fx-7.2");
        let mut expected = vec![0, 0, 0, 0x0d];
        expected.extend_from_slice(b"pc-i440fx-7.2");
        assert_eq!(to_bytes(&c).unwrap(), expected);
        // The loader loads it as version 0.
        let back: Configuration = from_bytes(&expected, 0).unwrap();
        assert_eq!(back.machine(), "pc-i440fx-7.2");
        c.check_incoming(&back, false).unwrap();
    }

    #[test]
    fn capabilities_subsection_bytes_and_checks() {
        let mut c = Configuration::new("pc");
        c.set_capabilities(&["x-ignore-shared"]);
        let bytes = to_bytes(&c).unwrap();
        let mut expected = vec![0, 0, 0, 2, b'p', b'c', 5, 26];
        expected.extend_from_slice(b"configuration/capabilities");
        expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 15]);
        expected.extend_from_slice(b"x-ignore-shared");
        assert_eq!(bytes, expected);
        let back: Configuration = from_bytes(&bytes, 0).unwrap();
        c.check_incoming(&back, false).unwrap();
        // Destination without the capability refuses.
        assert!(Configuration::new("pc")
            .check_incoming(&back, false)
            .is_err());
        // Machine name: received prefix passes, mismatch fails.
        let longer = Configuration::new("pc-i440fx-7.2");
        longer
            .check_incoming(&Configuration::new("pc-i440fx"), false)
            .unwrap();
        assert!(longer
            .check_incoming(&Configuration::new("q35"), false)
            .is_err());
        // Unknown capability name.
        let mut odd = Configuration::new("pc");
        odd.set_capabilities(&["x-bogus"]);
        assert!(odd.check_incoming(&odd.clone(), false).is_err());
    }
}
