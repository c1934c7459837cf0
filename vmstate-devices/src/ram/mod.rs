//! Guest RAM as a device: QEMU's "ram" section (instance 0, version 4) over
//! rust-vmm `vm-memory`.
//!
//! * [`protocol`]: the RAM record protocol, the one copy in the workspace:
//!   [`RamFlag`](protocol::RamFlag) (`RAM_SAVE_FLAG_*` with QEMU's values),
//!   [`RamEncoder`](protocol::RamEncoder) and [`RamDecoder`](protocol::RamDecoder)
//!   (MEM_SIZE list with the optional postcopy page-size and x-ignore-shared GPA
//!   words, ZERO, PAGE, XBZRLE, CONTINUE kept across sections, EOS), every
//!   decoded number checked against the local [`BlockTable`](protocol::BlockTable)
//!   before anything is sized by it;
//! * [`xbzrle`]: QEMU's XBZRLE delta encoding ([`xbzrle::encode`],
//!   [`xbzrle::decode`] with every check of QEMU's decoder) and its page cache;
//! * [`block`]: [`RamBlock`]s in QEMU's RAM-list order ([`RamBlockList`], with
//!   QEMU 7.2's `pc` block set in [`RamBlockList::qemu_pc`]), each a vm-memory
//!   mmap region with an `AtomicBitmap` (a VMM can hand over the regions it
//!   has, or use [`RamBlockList::guest_memory`] as its `GuestMemoryMmap`);
//! * [`dirty`]: the migration [`DirtyBitmap`] per block and the [`DirtyLog`] it
//!   is synced from ([`VmMemoryDirtyLog`]: vm-memory's bitmap);
//! * `kvm` (feature `kvm`): `KvmDirtyLog`, KVM's `KVM_GET_DIRTY_LOG` per
//!   memory slot ORed into the migration bitmap, with RAMBlocks registered as
//!   dirty-logged KVM memory slots;
//! * [`section`]: [`RamSection`], the section's `SaveVmHandlers`;
//! * [`postcopy`]: the section's postcopy side ([`PostcopyRam`](vmstate_runtime::savevm::PostcopyRam)
//!   for [`RamSection`]): discard ranges of re-dirtied sent pages, urgent pages
//!   first, the destination's received bitmap in QEMU's RECV_BITMAP format for
//!   recovery, and [`PostcopyAccess`], guest accesses that block on a page
//!   that has not arrived until it does.
//!
//! Saving: START carries the MEM_SIZE list; PARTs carry the bulk first pass
//! (every page) and then the pages each dirty sync found, blocks in list
//! order, pages ascending; a zero check of 256-byte chunks turns zero pages
//! into ZERO records. A PART ends when the round's byte budget is spent (the
//! smaller of [`RamSectionConfig::part_budget`] and what the driver's rate
//! limit left, seen through `SectionWriter::remaining_budget`) or after QEMU's
//! 50 ms (checked every 64 pages). PAGE payloads are guest memory itself, as
//! `MemorySegment`s of the block's [`SharedMemory`](vmstate_runtime::savevm::SharedMemory)
//! ([`RamBlock::shared_memory`]), never a `&[u8]` (the vCPUs keep writing
//! it): on a socket the kernel takes the pages by reference (`vmsplice`) and
//! the destination's kernel copies them straight out of guest memory; any
//! other sink gets them copied once as the stream is written. The zero check
//! reads guest memory in place, its misses overlapped by prefetching a run's
//! pages. With XBZRLE, runs of up to 16 pages are copied out once instead (the
//! cache must hold exactly the bytes sent) and the PAGE records share the copy.
//! With [`XbzrleConfig`] on, from the second pass on a cached page is sent as an
//! XBZRLE delta, or not at all when unchanged; a cache miss or an overflow is
//! sent whole (QEMU's rules, counters and cache ageing). END syncs once more
//! and sends the rest with the guest stopped.
//!
//! Loading: every record is checked against the local blocks (unknown block,
//! length mismatch, resize beyond max_length, MEM_SIZE totals, offsets beyond
//! used_length, CONTINUE with no block, fill byte, XBZRLE header and data,
//! flag combinations, page-size and GPA words), each with a [`RamErrorKind`]
//! naming block and offset. PAGE payloads go from the section reader's buffer
//! (what the transport read) straight into guest memory, one copy with
//! streaming stores (`page_copy`: the page is not read back, so its cache
//! lines are not fetched first), nothing allocated per page.
//!
//! Memory: [`RamBlock::new`] maps anonymous memory advised for transparent
//! huge pages (as QEMU advises guest RAM), [`RamBlock::from_file`] maps a
//! file shared (QEMU's `memory-backend-file,share=on`), and
//! [`RamBlock::from_region`] takes a region the VMM already has.
//!
//! The counters ([`RamCounters`], shown as the runtime's `RamStats`) are QEMU's
//! `query-migrate` "ram" and "xbzrle-cache" members.
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
//! let mut loader = StreamLoader::new(LoadOptions::default());
//! loader
//!     .load(&mut Reader::new(BytesMut::from(&stream[..])), &mut dreg, &mut NoCommands)
//!     .unwrap();
//! let mut buf = [0u8; 10];
//! dst.lock().unwrap().get("pc.ram").unwrap().read(0x5000, &mut buf).unwrap();
//! assert_eq!(&buf, b"guest data");
//! ```

pub mod block;
pub mod chunking;
pub mod dirty;
mod error;
#[cfg(feature = "kvm")]
pub mod kvm;
mod page_copy;
pub mod postcopy;
pub mod protocol;
pub mod section;
pub mod xbzrle;
mod zero_page;

pub use block::{RamBlock, RamBlockList, RamBlockSpec, RamRegion};
pub use chunking::RamChunking;
pub use dirty::{DirtyBitmap, DirtyLog, VmMemoryDirtyLog};
pub use error::{RamError, RamErrorKind};
pub use postcopy::{PostcopyAccess, PostcopyRamError};
pub use section::{RamCounters, RamSection, RamSectionConfig};
pub use xbzrle::{XbzrleConfig, XbzrleError};
