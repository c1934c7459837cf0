//! Virtio devices on the PCI transport, migrating in QEMU 7.2's layout.
//!
//! The three layers of QEMU's virtio migration (core, transport, device) are
//! separate modules, composed by [`VirtioPciDevice`] in the order
//! `virtio_save` / `virtio_load` use ([`migration`]):
//!
//! * [`core`]: features (legacy 32-bit and VERSION_1 64-bit), device status,
//!   ISR, the config-space cache and its generation, reset;
//! * [`queue`]: split virtqueues on rust-vmm's `virtio-queue`, with QEMU's
//!   migrated companions (vector, in-use count);
//! * [`pci`]: the virtio-pci proxy — config space with the virtio
//!   capabilities, MSI-X table and PBA, the modern common-config registers,
//!   the "virtio_pci/modern_state" extra state; [`legacy`]: its BAR0 legacy
//!   I/O interface;
//! * devices: [`blk`] (section `<pci-path>/virtio-blk`, version 2),
//!   [`net`] (`<pci-path>/virtio-net`, version 11), [`rng`]
//!   (`<pci-path>/virtio-rng`, version 1) and [`balloon`]
//!   (`<pci-path>/virtio-balloon`, version 1);
//! * [`driver`]: the guest side, a scripted driver for each device (the
//!   tests and the demo machine drive the models with it).
//!
//! Every load check of QEMU's `virtio_load` is a typed [`VirtioError`].
//!
//! ```
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//! use vmstate_devices::virtio::blk::VirtioBlkSection;
//! use vmstate_runtime::{from_bytes, to_bytes, VmState};
//! use vmstate_runtime::wire::Reader;
//!
//! let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
//! let disk = tempfile::tempfile().unwrap();
//! disk.set_len(1 << 20).unwrap();
//! let src = VirtioBlkSection::new(disk.try_clone().unwrap(), "disk0", mem.clone()).unwrap();
//! let body = to_bytes(&src)?;
//! let mut dst = VirtioBlkSection::new(disk, "disk0", mem).unwrap();
//! dst.load(&mut Reader::new(&body[..]), 2)?;
//! assert_eq!(to_bytes(&dst)?, body);
//! # Ok::<(), vmstate_runtime::Error>(())
//! ```

pub mod balloon;
pub mod blk;
pub mod core;
pub mod device;
pub mod driver;
pub mod element;
mod error;
pub mod legacy;
pub mod migration;
pub mod net;
pub mod pci;
pub mod queue;
pub mod rng;
pub mod wire;

pub use device::{DeviceContext, VirtioDeviceModel, VirtioPciDevice};
pub use error::VirtioError;

/// Guest memory as the RAM model provides it (dirty-tracked, so device
/// writes into buffers are logged for migration).
pub type GuestMem = vm_memory::GuestMemoryMmap<vm_memory::bitmap::AtomicBitmap>;

/// Queue slots of a virtio device (VIRTIO_QUEUE_MAX).
pub const VIRTIO_QUEUE_MAX: usize = 1024;
/// "No MSI-X vector".
pub const VIRTIO_NO_VECTOR: u16 = 0xffff;
/// Largest config_len a load accepts: a device config region is 4 KiB.
pub const MAX_CONFIG_LEN: u32 = 4096;
