//! Device models whose state migrates with vmstate-rs.
//!
//! * [`pckbd`]: the PC keyboard controller (i8042) with its PS/2 keyboard and
//!   mouse, wire-compatible with QEMU 7.2's `pckbd`, `ps2kbd` and `ps2mouse`
//!   sections;
//! * [`catalog`]: every device model listed once (section name, instance rule,
//!   registration, description), and its wire-format page
//!   ([`catalog::wire_format`]);
//! * [`ram`]: guest RAM (QEMU's "ram" section) over rust-vmm `vm-memory`,
//!   precopy, XBZRLE and postcopy;
//! * [`machine`]: a small machine composing guest RAM (QEMU's `pc` block set)
//!   and the keyboard controller, with a guest workload thread and vCPU
//!   pause/resume; what the demo and the tests migrate;
//! * [`virtio`]: virtio core, split virtqueues and the PCI transport, with
//!   virtio-blk over a file, virtio-net, virtio-rng and virtio-balloon, and
//!   a scripted guest driver for each; QEMU 7.2's "virtio" section layout
//!   and load checks;
//! * [`qemu_pc`]: a QEMU 7.2 `pc` machine's section set, as the models above
//!   plus opaque carriers for the sections not modelled here;
//! * [`schema`]: the catalog's static descriptions as QEMU `-dump-vmstate`
//!   JSON, wire layout tables and the wire-format page, and QEMU's static
//!   compatibility check of two dumps (`vmstate describe`, `dump-vmstate`,
//!   `docs`, `check`);
//! * `analyze` (feature `analyze`): reading migration stream files like QEMU's
//!   `analyze-migration.py`, incrementally and with bounded memory
//!   (`vmstate analyze`).
#![deny(missing_docs)]
// No `unsafe` anywhere, except `ram::kvm` (feature `kvm`), which allows it for
// creating and deleting KVM memory slots, and the one `madvise` of
// `ram::block` (`madvise_populate_write`, behind `RamBlock::populate`).
#![deny(unsafe_code)]

#[cfg(feature = "analyze")]
pub mod analyze;
pub mod catalog;
pub mod machine;
pub mod pckbd;
pub mod qemu_pc;
pub mod ram;
pub mod schema;
pub mod virtio;
