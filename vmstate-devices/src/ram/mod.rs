//! Guest RAM as a device: QEMU's "ram" section (instance 0, version 4) over
//! rust-vmm `vm-memory`.
//!
//! * [`protocol`]: the RAM record protocol, the one copy in the workspace:
//!   [`RamFlag`](protocol::RamFlag) (`RAM_SAVE_FLAG_*` with QEMU's values),
//!   [`RamEncoder`](protocol::RamEncoder) and [`RamDecoder`](protocol::RamDecoder)
//!   (MEM_SIZE list with the optional postcopy page-size and x-ignore-shared GPA
//!   words, ZERO, PAGE, CONTINUE kept across sections, EOS), every decoded
//!   number checked against the local [`BlockTable`](protocol::BlockTable) first;
//! * [`block`]: [`RamBlock`]s in QEMU's RAM-list order ([`RamBlockList`], with
//!   QEMU 7.2's `pc` block set in [`RamBlockList::qemu_pc`]), each a vm-memory
//!   mmap region with an `AtomicBitmap` (a VMM can hand over the regions it
//!   has, or use [`RamBlockList::guest_memory`] as its `GuestMemoryMmap`);
//! * [`dirty`]: the migration [`DirtyBitmap`] per block and the [`DirtyLog`] it
//!   is synced from ([`VmMemoryDirtyLog`]: vm-memory's bitmap);
//! * [`section`]: [`RamSection`], the section's `SaveVmHandlers` for precopy
//!   (bulk pass, dirty sync, pages ascending per block, ZERO from a chunked
//!   zero check, PARTs bounded by a byte budget and QEMU's 50 ms) and loading
//!   with every check of the decoder.
//!
//! Errors are [`RamError`]s: what ([`RamErrorKind`], naming the block and the
//! offset in it) and where (the record's stream offset).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use bytes::BytesMut;
//! use vmstate_devices::ram::{RamBlockList, RamBlockSpec, RamSection};
//! use vmstate_runtime::savevm::{
//!     Configuration, IterateStatus, LoadOptions, NoCommands, QemuVersion, Registry,
//!     StreamLoader, StreamWriter,
//! };
//! use vmstate_runtime::wire::Reader;
//!
//! let specs = || vec![RamBlockSpec::ram("pc.ram", 1 << 20), RamBlockSpec::rom("pc.bios", 1 << 16)];
//! let src = Arc::new(Mutex::new(RamBlockList::new(specs()).unwrap()));
//! src.lock().unwrap().get("pc.ram").unwrap().write(0x5000, b"guest data").unwrap();
//! let mut reg = Registry::new();
//! RamSection::new(src.clone()).register(&mut reg).unwrap();
//!
//! let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
//! w.write_header().unwrap();
//! w.write_configuration(&Configuration::new("pc-i440fx-7.2")).unwrap();
//! w.setup(&mut reg).unwrap();
//! while w.iterate(&mut reg, false, &mut |_| false).unwrap() != IterateStatus::Done {}
//! w.complete_precopy(&mut reg).unwrap();
//! let stream = w.into_inner().unwrap();
//!
//! let dst = Arc::new(Mutex::new(RamBlockList::new(specs()).unwrap()));
//! let mut dreg = Registry::new();
//! RamSection::new(dst.clone()).register(&mut dreg).unwrap();
//! let mut loader = StreamLoader::new(LoadOptions {
//!     version: QemuVersion::V7_2,
//!     configuration: Some(Configuration::new("pc-i440fx-7.2")),
//!     ..Default::default()
//! });
//! loader
//!     .load(&mut Reader::new(BytesMut::from(&stream[..])), &mut dreg, &mut NoCommands)
//!     .unwrap();
//! let mut buf = [0u8; 10];
//! dst.lock().unwrap().get("pc.ram").unwrap().read(0x5000, &mut buf).unwrap();
//! assert_eq!(&buf, b"guest data");
//! ```

pub mod block;
pub mod dirty;
mod error;
pub mod protocol;
pub mod section;
pub mod xbzrle;

pub use block::{RamBlock, RamBlockList, RamBlockSpec, RamRegion};
pub use dirty::{DirtyBitmap, DirtyLog, VmMemoryDirtyLog};
pub use error::{RamError, RamErrorKind};
pub use section::{RamCounters, RamSection, RamSectionConfig};
pub use xbzrle::{XbzrleConfig, XbzrleError};
