//! The device catalog: every device model of this crate, listed once, with what
//! a VMM needs to put it in a migration stream (its QEMU section name, how its
//! instance number is chosen, how to register it) and its static description.
//!
//! Everything that lists devices iterates over [`DEVICES`]: the wire-format page
//! ([`wire_format`], rendered by [`markdown`]), the `-dump-vmstate` JSON and the
//! schema lock (`schema/vmstate-schema.json`, checked by `tests/schema_lock.rs`),
//! and the `vmstate describe`/`docs`/`dump-vmstate` tools.
//!
//! ```
//! use vmstate_devices::catalog::{self, InstanceRule};
//!
//! let kbd = catalog::find("ps2kbd").unwrap();
//! assert_eq!(kbd.qom_type, Some("ps2-kbd"));
//! assert_eq!(kbd.instance, InstanceRule::NextFree);
//! assert_eq!(kbd.vmsd.unwrap().version_id, 3);
//! // RAM is not a vmsd: its section has its own record format.
//! assert!(catalog::find("ram").unwrap().vmsd.is_none());
//! ```

pub mod markdown;

use vmstate_runtime::vmstate::DescribeSink;
use vmstate_runtime::wire::Writer;
use vmstate_runtime::{Result, VmState, VmStateDescription};

use crate::pckbd::{Ps2Keyboard, Ps2Mouse, I8042};
use crate::virtio::balloon::VirtioBalloonSection;
use crate::virtio::blk::VirtioBlkSection;
use crate::virtio::net::VirtioNetSection;
use crate::virtio::rng::VirtioRngSection;

/// How a device's section gets its instance id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceRule {
    /// Always this number (one such section per machine).
    Fixed(u32),
    /// The next free number for the section name, in registration order
    /// (QEMU's `VMSTATE_INSTANCE_ID_ANY`): 0 for the first device of its kind.
    NextFree,
}

impl InstanceRule {
    /// The rule in words.
    pub fn describe(self) -> String {
        match self {
            InstanceRule::Fixed(n) => format!("always {n}"),
            InstanceRule::NextFree => {
                "the next free number for the name, in registration order (0 for the first)"
                    .to_string()
            }
        }
    }
}

/// Saves the body of a freshly reset device, reporting its layout to the sink,
/// and returns the bytes.
pub type ExampleBody = fn(&mut dyn DescribeSink) -> Result<Vec<u8>>;

/// Saves one part of a controller, described.
type SavePart = fn(&I8042, &mut Writer<Vec<u8>>, &mut dyn DescribeSink) -> Result<()>;

/// One device model.
#[derive(Debug, Clone, Copy)]
pub struct DeviceModel {
    /// The section name (idstr) on the wire.
    pub section: &'static str,
    /// The QOM type QEMU keys its `-dump-vmstate` entry by; `None` for sections
    /// that are no qdev device (RAM), which QEMU does not dump.
    pub qom_type: Option<&'static str>,
    /// The Rust type carrying the state.
    pub rust_type: &'static str,
    /// One line on what it is.
    pub summary: &'static str,
    /// The section version written.
    pub section_version: u32,
    /// How the instance id is chosen.
    pub instance: InstanceRule,
    /// How a VMM registers it (a path and its call).
    pub register: &'static str,
    /// Whether the section is iterative (START, PART..., END records) rather
    /// than one FULL record.
    pub iterative: bool,
    /// The body's static description, for sections that are one vmsd.
    pub vmsd: Option<&'static VmStateDescription>,
    /// Saves the body of a freshly reset device (the worked byte example),
    /// reporting its layout to the sink, and returns the bytes.
    pub example: Option<ExampleBody>,
    /// For sections with their own record format: that format, in Markdown.
    pub body_format: Option<&'static str>,
}

/// Saves the body of a freshly reset controller's part, reporting its layout to
/// `sink`, and returns the bytes.
fn reset_body(sink: &mut dyn DescribeSink, save: SavePart) -> Result<Vec<u8>> {
    let mut w = Writer::new(Vec::new());
    save(&I8042::default(), &mut w, sink)?;
    Ok(w.into_inner())
}

fn ps2kbd_example(sink: &mut dyn DescribeSink) -> Result<Vec<u8>> {
    reset_body(sink, |d, w, s| d.keyboard().save_described(w, s))
}

fn ps2mouse_example(sink: &mut dyn DescribeSink) -> Result<Vec<u8>> {
    reset_body(sink, |d, w, s| d.mouse().save_described(w, s))
}

fn pckbd_example(sink: &mut dyn DescribeSink) -> Result<Vec<u8>> {
    reset_body(sink, |d, w, s| d.save_described(w, s))
}

const PCKBD_REGISTER: &str =
    "`vmstate_devices::pckbd::register(&mut registry, Arc<Mutex<I8042>>)` \
     registers \"ps2kbd\", \"ps2mouse\" and \"pckbd\" of one controller, in QEMU's order";

const RAM_BODY: &str = "\
Each record starts with a be64 word: a page-aligned offset in the RAMBlock with \
`RAM_SAVE_FLAG_*` bits in its low bits; unless `CONTINUE` (0x20) is set, the \
block's idstr follows (u8 length + bytes). `MEM_SIZE` (0x04, START only): the \
word holds the total RAM size, followed by each block's idstr and be64 length. \
`PAGE` (0x08): a whole target page follows. `ZERO` (0x02): one fill byte \
follows. `EOS` (0x10) ends every START, PART and END body. The record codec is \
`vmstate_devices::ram::protocol`.";

const VIRTIO_REGISTER: &str =
    "`registry.vmstate_register_at(Some(\"0000:00:0N.0\"), 0, Arc<Mutex<Section>>)`; \
`Machine::with_virtio` registers all four at QEMU's slots (net 02, blk 03, rng 04, balloon 05)";

/// Every device model of the crate, in the order a QEMU `pc` machine writes
/// their sections.
pub const DEVICES: &[DeviceModel] = &[
    DeviceModel {
        section: "ram",
        qom_type: None,
        rust_type: "vmstate_devices::ram::RamSection",
        summary: "Guest RAM: the RAMBlocks of a machine over rust-vmm `vm-memory`, \
                  sent page by page while the guest runs (QEMU's \"ram\" section).",
        section_version: crate::ram::protocol::SECTION_VERSION,
        instance: InstanceRule::Fixed(0),
        register: "`RamSection::new(blocks, config, dirty_log).register(&mut registry)`",
        iterative: true,
        vmsd: None,
        example: None,
        body_format: Some(RAM_BODY),
    },
    DeviceModel {
        section: "ps2kbd",
        qom_type: Some("ps2-kbd"),
        rust_type: "vmstate_devices::pckbd::Ps2Keyboard",
        summary: "The PS/2 keyboard behind the i8042 (QEMU's `ps2-kbd`).",
        section_version: 3,
        instance: InstanceRule::NextFree,
        register: PCKBD_REGISTER,
        iterative: false,
        vmsd: Some(Ps2Keyboard::DESCRIPTION),
        example: Some(ps2kbd_example),
        body_format: None,
    },
    DeviceModel {
        section: "ps2mouse",
        qom_type: Some("ps2-mouse"),
        rust_type: "vmstate_devices::pckbd::Ps2Mouse",
        summary: "The PS/2 mouse behind the i8042 (QEMU's `ps2-mouse`).",
        section_version: 2,
        instance: InstanceRule::NextFree,
        register: PCKBD_REGISTER,
        iterative: false,
        vmsd: Some(Ps2Mouse::DESCRIPTION),
        example: Some(ps2mouse_example),
        body_format: None,
    },
    DeviceModel {
        section: "pckbd",
        qom_type: Some("i8042"),
        rust_type: "vmstate_devices::pckbd::I8042",
        summary: "The PC keyboard controller (QEMU's ISA `i8042`): its registers \
                  nested as field `kbd`, with the output port and extended state \
                  as subsections.",
        section_version: 3,
        instance: InstanceRule::NextFree,
        register: PCKBD_REGISTER,
        iterative: false,
        vmsd: Some(I8042::DESCRIPTION),
        example: Some(pckbd_example),
        body_format: None,
    },
    DeviceModel {
        section: "virtio-net",
        qom_type: Some("virtio-net-device"),
        rust_type: "vmstate_devices::virtio::net::VirtioNetSection",
        summary: "virtio-net-pci with an in-process backend (MAC, link status, control \
                  queue: RX mode, MAC table, VLAN filter); section \
                  `<pci-path>/virtio-net`, its device part \"virtio-net-device\" v11 \
                  (mac, tx_waiting, mergeable_rx_bufs, status, promisc, allmulti, \
                  MAC table, VLAN bitmap, vnet/UFO flags).",
        section_version: 11,
        instance: InstanceRule::Fixed(0),
        register: VIRTIO_REGISTER,
        iterative: false,
        vmsd: Some(VirtioNetSection::DESCRIPTION),
        example: None,
        body_format: None,
    },
    DeviceModel {
        section: "virtio-blk",
        qom_type: Some("virtio-blk-device"),
        rust_type: "vmstate_devices::virtio::blk::VirtioBlkSection",
        summary: "virtio-blk-pci over a host file (read, write, flush, get-id); \
                  section `<pci-path>/virtio-blk`, its device part the in-flight \
                  requests (s8 1, `VirtQueueElementOld` blob, ..., s8 0), \
                  re-submitted once on the destination.",
        section_version: 2,
        instance: InstanceRule::Fixed(0),
        register: VIRTIO_REGISTER,
        iterative: false,
        vmsd: Some(VirtioBlkSection::DESCRIPTION),
        example: None,
        body_format: None,
    },
    DeviceModel {
        section: "virtio-rng",
        qom_type: Some("virtio-rng-device"),
        rust_type: "vmstate_devices::virtio::rng::VirtioRngSection",
        summary: "virtio-rng-pci with a host entropy source; section \
                  `<pci-path>/virtio-rng`, no device part.",
        section_version: 1,
        instance: InstanceRule::Fixed(0),
        register: VIRTIO_REGISTER,
        iterative: false,
        vmsd: Some(VirtioRngSection::DESCRIPTION),
        example: None,
        body_format: None,
    },
    DeviceModel {
        section: "virtio-balloon",
        qom_type: Some("virtio-balloon-device"),
        rust_type: "vmstate_devices::virtio::balloon::VirtioBalloonSection",
        summary: "virtio-balloon-pci (inflate, deflate and stats queues, \
                  num_pages/actual, QMP-style `balloon`); section \
                  `<pci-path>/virtio-balloon`, its device part \
                  \"virtio-balloon-device\" v1 (be32 num_pages, be32 actual, \
                  subsections free-page-report and page-poison).",
        section_version: 1,
        instance: InstanceRule::Fixed(0),
        register: VIRTIO_REGISTER,
        iterative: false,
        vmsd: Some(VirtioBalloonSection::DESCRIPTION),
        example: None,
        body_format: None,
    },
];

/// The model whose section name, QOM type or Rust type (full path or last
/// segment) is `name`, case-insensitively.
///
/// ```
/// use vmstate_devices::catalog::find;
///
/// assert_eq!(find("i8042").unwrap().section, "pckbd");
/// assert_eq!(find("Ps2Mouse").unwrap().section, "ps2mouse");
/// assert!(find("floppy").is_none());
/// ```
pub fn find(name: &str) -> Option<&'static DeviceModel> {
    DEVICES.iter().find(|d| {
        let short = d.rust_type.rsplit("::").next().unwrap_or(d.rust_type);
        [Some(d.section), d.qom_type, Some(d.rust_type), Some(short)]
            .into_iter()
            .flatten()
            .any(|n| n.eq_ignore_ascii_case(name))
    })
}

/// The catalog page: [`markdown::render`] of [`DEVICES`], checked in as
/// `vmstate-devices/WIRE-FORMAT.md` (regenerate with `cargo run -p
/// vmstate-examples --bin vmstate -- docs --output vmstate-devices/WIRE-FORMAT.md`;
/// `tests/catalog_docs.rs` fails when it is stale).
#[doc = include_str!("../WIRE-FORMAT.md")]
pub mod wire_format {}
