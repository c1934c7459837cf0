//! KVM's dirty log as the migration's [`DirtyLog`] (feature `kvm`, Linux).
//!
//! A VMM on KVM gives each RAMBlock (or a range of it) to the guest as a KVM
//! memory slot. [`KvmDirtyLog`] registers those slots with
//! `KVM_MEM_LOG_DIRTY_PAGES` and remembers, per slot, its id, guest physical
//! address and which part of which block it maps. At every bitmap sync it calls
//! `KVM_GET_DIRTY_LOG` for each slot of the block (the pages the *guest* wrote:
//! one bit per host page, which on x86 is the 4 KiB target page) and ORs the
//! bits into the block's migration [`DirtyBitmap`].
//!
//! KVM does not see what the VMM itself writes into guest memory (device
//! emulation, DMA, firmware blobs): those writes go through vm-memory and mark
//! its `AtomicBitmap`. So a sync also folds in that bitmap
//! ([`VmMemoryDirtyLog`]), after the KVM log of the block. Both reads are
//! fetch-and-reset, so a write lands either in this sync or in the next one and
//! none is lost; a page in both is simply dirty once.
//!
//! Lifetime: KVM keeps writing into a slot's memory for as long as the slot
//! exists, so the log holds an `Arc` of every mapped region and deletes its
//! slots before letting go of them (on [`KvmDirtyLog::unmap`] and on drop). The
//! block's memory therefore outlives its slots whatever the VMM does with its
//! [`RamBlockList`](super::RamBlockList).
//!
//! A failed `KVM_GET_DIRTY_LOG` cannot be returned through [`DirtyLog::sync`];
//! the slot's whole range is then marked dirty (sending a page again is always
//! correct, missing one never is) and the failure is counted in
//! [`SyncFailures`], which the VMM can keep a handle to.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use vmstate_devices::ram::kvm::{KvmDirtyLog, Kvm};
//! use vmstate_devices::ram::{DirtyBitmap, DirtyLog, RamBlockList, RamBlockSpec};
//!
//! // Where /dev/kvm cannot be opened there is nothing to show.
//! let Ok(kvm) = Kvm::new() else { return };
//! let vm = Arc::new(kvm.create_vm().unwrap());
//! let ram = RamBlockList::new(vec![RamBlockSpec::ram("pc.ram", 1 << 20)]).unwrap();
//! let mut log = KvmDirtyLog::new(vm.clone()).unwrap();
//! let slot = log.map_block(0, ram.get("pc.ram").unwrap()).unwrap();
//! assert_eq!((slot.gpa, slot.len), (0, 1 << 20));
//!
//! // vCPUs created from `vm` now run on pc.ram; a VMM-side write is logged too.
//! let block = ram.get("pc.ram").unwrap();
//! log.start(block);
//! block.write(0x3000, b"from a device").unwrap();
//! let mut dirty = DirtyBitmap::new(block.pages());
//! log.sync(block, &mut dirty);
//! assert!(dirty.get(3) && dirty.count() == 1);
//!
//! // For a migration the section takes the log (the VMM keeps `vm` for its vCPUs):
//! use vmstate_devices::ram::{RamSection, RamSectionConfig};
//! let section = RamSection::with_config(
//!     Arc::new(Mutex::new(ram)),
//!     RamSectionConfig::default(),
//!     Box::new(log),
//! );
//! # drop(section);
//! ```

// The one `unsafe` here is `VmFd::set_user_memory_region` (creating and
// deleting a slot hands KVM a host address); each call carries its SAFETY
// argument and tests/ram_kvm.rs drives both with a real VM.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY};
use vm_memory::GuestMemoryRegion;

use super::block::{RamBlock, RamRegion};
use super::dirty::{DirtyBitmap, DirtyLog, VmMemoryDirtyLog};

pub use kvm_ioctls::{Cap, Kvm, VmFd};

/// What went wrong mapping a block into KVM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvmError {
    /// A slot's offset, length or guest address is not a multiple of the host
    /// page (KVM maps and logs whole host pages).
    #[error("RAMBlock \"{block}\": slot {what} {value:#x} is not a multiple of the host page size {page:#x}")]
    Unaligned {
        /// Block name.
        block: String,
        /// `"offset"`, `"length"` or `"guest address"`.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The host page size.
        page: u64,
    },
    /// The range is empty or reaches beyond the block's memory (max_length).
    #[error("RAMBlock \"{block}\": slot range {offset:#x}+{len:#x} is not inside its {max_length:#x} bytes")]
    OutOfBlock {
        /// Block name.
        block: String,
        /// Offset in the block.
        offset: u64,
        /// Length asked for.
        len: u64,
        /// The block's max_length.
        max_length: u64,
    },
    /// This log already maps a slot with that id.
    #[error("KVM slot {slot} is already mapped (to RAMBlock \"{block}\")")]
    SlotTaken {
        /// Slot id.
        slot: u32,
        /// The block it maps.
        block: String,
    },
    /// This log maps no slot with that id.
    #[error("KVM slot {slot} is not mapped by this log")]
    NoSuchSlot {
        /// Slot id.
        slot: u32,
    },
    /// A ROM-like block needs KVM_CAP_READONLY_MEM, which this KVM lacks.
    #[error("RAMBlock \"{block}\" is read-only and this KVM has no read-only memory slots")]
    ReadOnlyUnsupported {
        /// Block name.
        block: String,
    },
    /// The host page size could not be read.
    #[error("sysconf(_SC_PAGESIZE) failed")]
    HostPageSize,
    /// An ioctl failed.
    #[error("{op} for KVM slot {slot} (RAMBlock \"{block}\"): {source}")]
    Ioctl {
        /// The ioctl.
        op: &'static str,
        /// Slot id.
        slot: u32,
        /// Block name.
        block: String,
        /// The errno.
        #[source]
        source: kvm_ioctls::Error,
    },
}

/// One KVM memory slot over (part of) a RAMBlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvmSlot {
    /// KVM's slot id.
    pub slot: u32,
    /// The block's idstr.
    pub block: String,
    /// Offset of the slot's first byte in the block.
    pub offset: u64,
    /// Bytes mapped.
    pub len: u64,
    /// Guest physical address of the slot's first byte.
    pub gpa: u64,
    /// Mapped with `KVM_MEM_READONLY` (a ROM-like block): the guest's writes
    /// exit to the VMM as MMIO, so KVM has nothing to log.
    pub read_only: bool,
}

/// Failed `KVM_GET_DIRTY_LOG` calls of a [`KvmDirtyLog`] (shared, so the VMM
/// can watch them after handing the log to a [`RamSection`](super::RamSection)).
#[derive(Debug, Default)]
pub struct SyncFailures {
    count: AtomicU64,
    last: Mutex<Option<String>>,
}

impl SyncFailures {
    /// Failed syncs so far (each marked its slot's range dirty).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The latest failure's message.
    pub fn last(&self) -> Option<String> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    fn record(&self, e: &KvmError) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = self.last.lock() {
            *l = Some(e.to_string());
        }
    }
}

/// A mapped slot and the region it keeps alive.
#[derive(Debug)]
struct Mapped {
    info: KvmSlot,
    region: Arc<RamRegion>,
}

/// The [`DirtyLog`] of a KVM VM: its memory slots over RAMBlocks, their
/// `KVM_GET_DIRTY_LOG` bitmaps, plus vm-memory's bitmap for the VMM's own
/// writes (see the [module docs](self)).
#[derive(Debug)]
pub struct KvmDirtyLog {
    vm: Arc<VmFd>,
    host_page: u64,
    slots: Vec<Mapped>,
    failures: Arc<SyncFailures>,
}

/// The host page size: KVM's dirty-log granule and slot alignment.
fn host_page_size() -> Result<u64, KvmError> {
    // SAFETY: sysconf reads a constant of the system; no memory is involved.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 && (n as u64).is_power_of_two() => Ok(n as u64),
        _ => Err(KvmError::HostPageSize),
    }
}

impl KvmDirtyLog {
    /// A log over `vm`, with no slot yet. The VMM keeps its own `Arc` of the
    /// VM to create vCPUs.
    pub fn new(vm: Arc<VmFd>) -> Result<Self, KvmError> {
        Ok(KvmDirtyLog {
            vm,
            host_page: host_page_size()?,
            slots: Vec::new(),
            failures: Arc::default(),
        })
    }

    /// The VM.
    pub fn vm(&self) -> &Arc<VmFd> {
        &self.vm
    }

    /// The host page size (KVM's dirty-log granule).
    pub fn host_page_size(&self) -> u64 {
        self.host_page
    }

    /// The slots mapped, in the order they were mapped.
    pub fn slots(&self) -> impl Iterator<Item = &KvmSlot> {
        self.slots.iter().map(|m| &m.info)
    }

    /// The failed syncs, shared.
    pub fn failures(&self) -> Arc<SyncFailures> {
        self.failures.clone()
    }

    /// Maps the block's used bytes at its guest address (`spec().gpa`) as
    /// slot `slot`, read-only for a ROM-like block, dirty-logged otherwise.
    pub fn map_block(&mut self, slot: u32, block: &RamBlock) -> Result<&KvmSlot, KvmError> {
        let spec = block.spec();
        self.map_range(slot, block, 0, spec.used_length, spec.gpa)
    }

    /// Maps `len` bytes of the block from `offset` at guest address `gpa` as
    /// slot `slot` (a block split around a hole, as `pc.ram` is below and
    /// above 4 GiB). The range must lie inside the block's memory (its
    /// max_length) and be host-page aligned; the slot id must be free in the VM.
    pub fn map_range(
        &mut self,
        slot: u32,
        block: &RamBlock,
        offset: u64,
        len: u64,
        gpa: u64,
    ) -> Result<&KvmSlot, KvmError> {
        let spec = block.spec();
        let name = || spec.idstr.clone();
        if let Some(m) = self.slots.iter().find(|m| m.info.slot == slot) {
            return Err(KvmError::SlotTaken {
                slot,
                block: m.info.block.clone(),
            });
        }
        let region = block.region();
        // The region is max_length bytes at least (RamBlock checks it).
        let max_length = spec.max_length.min(region.len());
        if len == 0 || offset.checked_add(len).is_none_or(|end| end > max_length) {
            return Err(KvmError::OutOfBlock {
                block: name(),
                offset,
                len,
                max_length,
            });
        }
        for (what, value) in [("offset", offset), ("length", len), ("guest address", gpa)] {
            if !value.is_multiple_of(self.host_page) {
                return Err(KvmError::Unaligned {
                    block: name(),
                    what,
                    value,
                    page: self.host_page,
                });
            }
        }
        let read_only = spec.read_only;
        if read_only && !self.vm.check_extension(Cap::ReadonlyMem) {
            return Err(KvmError::ReadOnlyUnsupported { block: name() });
        }
        let host = region.as_ptr() as u64 + offset;
        let mem = kvm_userspace_memory_region {
            slot,
            guest_phys_addr: gpa,
            memory_size: len,
            userspace_addr: host,
            flags: if read_only {
                KVM_MEM_READONLY
            } else {
                KVM_MEM_LOG_DIRTY_PAGES
            },
        };
        let region = region.clone();
        // SAFETY: `host .. host + len` lies inside the block's mmap region
        // (checked against its length above), which is page aligned, so the
        // range is valid mapped memory. It stays mapped for as long as the slot
        // exists: `region` (an Arc of the mapping, which unmaps only when the
        // last Arc drops) is stored with the slot below, and the slot is
        // deleted before that Arc is released (`unmap`, `Drop`). Guest writes
        // racing with the VMM are sound because this crate touches guest memory
        // only through vm-memory's volatile accessors, never through Rust
        // references. Guest-physical overlap with other slots is refused by
        // KVM itself (EEXIST), below.
        unsafe { self.vm.set_user_memory_region(mem) }.map_err(|source| KvmError::Ioctl {
            op: "KVM_SET_USER_MEMORY_REGION",
            slot,
            block: name(),
            source,
        })?;
        self.slots.push(Mapped {
            info: KvmSlot {
                slot,
                block: name(),
                offset,
                len,
                gpa,
                read_only,
            },
            region,
        });
        Ok(&self.slots[self.slots.len() - 1].info)
    }

    /// Deletes slot `slot` from the VM and releases its region.
    pub fn unmap(&mut self, slot: u32) -> Result<(), KvmError> {
        let i = self
            .slots
            .iter()
            .position(|m| m.info.slot == slot)
            .ok_or(KvmError::NoSuchSlot { slot })?;
        self.delete(&self.slots[i])?;
        self.slots.remove(i);
        Ok(())
    }

    /// Deletes a slot from the VM (its region stays with the caller).
    fn delete(&self, m: &Mapped) -> Result<(), KvmError> {
        let mem = kvm_userspace_memory_region {
            slot: m.info.slot,
            guest_phys_addr: m.info.gpa,
            memory_size: 0,
            userspace_addr: 0,
            flags: 0,
        };
        // SAFETY: a zero memory_size deletes the slot: KVM stops using the
        // slot's memory and is handed no new address.
        unsafe { self.vm.set_user_memory_region(mem) }.map_err(|source| KvmError::Ioctl {
            op: "KVM_SET_USER_MEMORY_REGION (delete)",
            slot: m.info.slot,
            block: m.info.block.clone(),
            source,
        })
    }

    /// ORs one slot's KVM bitmap (bit i = host page i of the slot) into the
    /// block's migration bitmap (bit j = target page j of the block).
    fn or_slot_log(&self, info: &KvmSlot, words: &[u64], target: u64, into: &mut DirtyBitmap) {
        if info.offset == 0 && self.host_page == target {
            // One slot from the block's start (the usual case): the words line up.
            into.or_words(words);
            return;
        }
        for (wi, w) in words.iter().enumerate() {
            let mut w = *w;
            while w != 0 {
                let bit = wi as u64 * 64 + u64::from(w.trailing_zeros());
                w &= w - 1;
                let start = info.offset + bit * self.host_page;
                for page in start / target..(start + self.host_page).div_ceil(target) {
                    into.set(page);
                }
            }
        }
    }
}

impl DirtyLog for KvmDirtyLog {
    fn sync(&mut self, block: &RamBlock, into: &mut DirtyBitmap) {
        let target = block.spec().page_size;
        for m in &self.slots {
            if m.info.read_only || !Arc::ptr_eq(&m.region, block.region()) {
                continue;
            }
            match self.vm.get_dirty_log(m.info.slot, m.info.len as usize) {
                Ok(words) => self.or_slot_log(&m.info, &words, target, into),
                Err(source) => {
                    // Nothing known about what the guest wrote: all of it goes again.
                    let (start, end) = (m.info.offset, m.info.offset + m.info.len);
                    for page in start / target..end.div_ceil(target) {
                        into.set(page);
                    }
                    self.failures.record(&KvmError::Ioctl {
                        op: "KVM_GET_DIRTY_LOG",
                        slot: m.info.slot,
                        block: m.info.block.clone(),
                        source,
                    });
                }
            }
        }
        // The VMM's own writes, which KVM never sees.
        VmMemoryDirtyLog.sync(block, into);
    }
}

impl Drop for KvmDirtyLog {
    fn drop(&mut self) {
        for m in std::mem::take(&mut self.slots) {
            if self.delete(&m).is_err() {
                // KVM may still write there: keep the memory mapped for good
                // rather than let the address be reused under the guest.
                std::mem::forget(m.region);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ram::RamBlockSpec;

    /// The VM, or `None` with a printed reason (a failure with
    /// `VMSTATE_REQUIRE_KVM=1`).
    fn vm() -> Option<Arc<VmFd>> {
        match Kvm::new().and_then(|k| k.create_vm()) {
            Ok(vm) => Some(Arc::new(vm)),
            Err(e) if std::env::var("VMSTATE_REQUIRE_KVM").as_deref() == Ok("1") => {
                panic!("KVM unavailable ({e}) but VMSTATE_REQUIRE_KVM=1")
            }
            Err(e) => {
                eprintln!("skipping: cannot open /dev/kvm and create a VM: {e}");
                None
            }
        }
    }

    #[test]
    fn bad_ranges_are_refused_before_kvm_sees_them() {
        let Some(vm) = vm() else { return };
        let block = RamBlock::new(RamBlockSpec::ram("pc.ram", 16 * 4096)).unwrap();
        let mut log = KvmDirtyLog::new(vm).unwrap();
        let page = log.host_page_size();
        let kind = |r: Result<&KvmSlot, KvmError>| match r {
            Err(KvmError::OutOfBlock { .. }) => "out",
            Err(KvmError::Unaligned { what, .. }) => what,
            Err(e) => panic!("{e}"),
            Ok(s) => panic!("mapped {s:?}"),
        };
        assert_eq!(kind(log.map_range(0, &block, 0, 0, 0)), "out");
        assert_eq!(kind(log.map_range(0, &block, page, 16 * 4096, 0)), "out");
        assert_eq!(kind(log.map_range(0, &block, u64::MAX, 2, 0)), "out");
        assert_eq!(kind(log.map_range(0, &block, 1, page, 0)), "offset");
        assert_eq!(kind(log.map_range(0, &block, 0, page + 1, 0)), "length");
        assert_eq!(
            kind(log.map_range(0, &block, 0, page, 0x800)),
            "guest address"
        );
        log.map_block(0, &block).unwrap();
        assert!(matches!(
            log.map_block(0, &block),
            Err(KvmError::SlotTaken { slot: 0, .. })
        ));
        assert!(matches!(
            log.unmap(9),
            Err(KvmError::NoSuchSlot { slot: 9 })
        ));
        // Guest-physical overlap: KVM refuses it, and says so through us.
        let other = RamBlock::new(RamBlockSpec::ram("other", 4096)).unwrap();
        let e = log.map_block(1, &other).unwrap_err();
        assert!(matches!(e, KvmError::Ioctl { slot: 1, .. }), "{e}");
        assert_eq!(log.slots().count(), 1);
    }

    #[test]
    fn a_failed_get_dirty_log_marks_the_whole_slot_dirty() {
        let Some(vm) = vm() else { return };
        let block = RamBlock::new(RamBlockSpec::ram("pc.ram", 256 * 4096)).unwrap();
        let mut log = KvmDirtyLog::new(vm).unwrap();
        let failures = log.failures();
        log.map_range(3, &block, 64 * 4096, 8 * 4096, 0x10_0000)
            .unwrap();
        // Delete the slot in KVM behind the log's back: its next
        // KVM_GET_DIRTY_LOG fails (ENOENT).
        log.delete(&log.slots[0]).unwrap();
        let mut dirty = DirtyBitmap::new(block.pages());
        log.sync(&block, &mut dirty);
        assert_eq!(dirty.count(), 8);
        assert_eq!(dirty.next_set(0), Some(64));
        assert_eq!(failures.count(), 1);
        let msg = failures.last().unwrap();
        assert!(
            msg.contains("KVM_GET_DIRTY_LOG for KVM slot 3 (RAMBlock \"pc.ram\")"),
            "{msg}"
        );
        // Dropping the log cannot delete the slot again: it keeps the memory.
    }
}
