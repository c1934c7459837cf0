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
//!   plus opaque carriers for the sections not modelled here.
#![deny(missing_docs)]
// No `unsafe` anywhere, except `ram::kvm` (feature `kvm`), which allows it for
// creating and deleting KVM memory slots.
#![cfg_attr(not(feature = "kvm"), forbid(unsafe_code))]
#![cfg_attr(feature = "kvm", deny(unsafe_code))]

pub mod catalog;
pub mod machine;
pub mod pckbd;
pub mod qemu_pc;
pub mod ram;
pub mod virtio;
