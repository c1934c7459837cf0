//! One split virtqueue: rust-vmm's [`virtio_queue::Queue`] plus what QEMU
//! keeps beside the ring and migrates (the MSI-X vector, the default size,
//! the count of chains taken but not yet used).
//!
//! QEMU semantics that `virtio_queue::Queue` does not express, and how they are
//! handled here:
//! * QEMU accepts any ring size up to 1024 (and a legacy ring of any size);
//!   virtio-queue wants a power of two: a loaded non-power-of-two size is
//!   refused with [`VirtioError::BadQueueSize`].
//! * QEMU does not check ring alignment; virtio-queue's validity check does
//!   (16/2/4 bytes): a misaligned ring fails the load as
//!   [`VirtioError::RingOutsideMemory`].
//! * QEMU's `inuse` (chains popped but not returned) is not part of the crate:
//!   [`VirtQueue::inuse`] keeps it.
//! * Without EVENT_IDX, virtio-queue's `needs_notification` always says yes;
//!   QEMU honours the avail ring's NO_INTERRUPT flag, and so does
//!   [`VirtQueue::complete`].
//! * Legacy rings are given by one page frame; their avail and used addresses
//!   are derived here ([`legacy_ring_addresses`]).

use std::sync::atomic::Ordering;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemory};

/// The driver's "no interrupt, please" flag in the avail ring (without EVENT_IDX).
const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;

use super::error::VirtioError;
use super::VIRTIO_NO_VECTOR;

/// Alignment of the used ring of a legacy (page-frame) ring on PCI.
pub const LEGACY_VRING_ALIGN: u64 = 4096;

/// The avail and used ring addresses of a legacy ring at `desc` with `num`
/// entries: avail right after the descriptor table, used at the next
/// 4 KiB boundary after the avail ring (flags, idx, ring; no event word).
///
/// ```
/// use vmstate_devices::virtio::queue::legacy_ring_addresses;
///
/// assert_eq!(legacy_ring_addresses(0x10000, 256), (0x11000, 0x12000));
/// ```
pub fn legacy_ring_addresses(desc: u64, num: u16) -> (u64, u64) {
    let avail = desc.wrapping_add(16 * u64::from(num));
    let avail_end = avail.wrapping_add(4 + 2 * u64::from(num));
    let used = avail_end.wrapping_add(LEGACY_VRING_ALIGN - 1) & !(LEGACY_VRING_ALIGN - 1);
    (avail, used)
}

/// A split virtqueue and its migrated companions.
#[derive(Debug)]
pub struct VirtQueue {
    queue: Queue,
    /// MSI-X vector of the queue (0xffff: none).
    pub vector: u16,
    /// Chains taken from the avail ring and not yet returned in the used ring.
    inuse: u16,
}

impl VirtQueue {
    /// A queue of at most (and by default) `max_size` entries.
    ///
    /// ```
    /// use vmstate_devices::virtio::queue::VirtQueue;
    ///
    /// let q = VirtQueue::new(256);
    /// assert_eq!((q.size(), q.max_size(), q.desc()), (256, 256, 0));
    /// ```
    pub fn new(max_size: u16) -> Self {
        VirtQueue {
            queue: Queue::new(max_size).expect("queue size is a power of two <= 32768"),
            vector: VIRTIO_NO_VECTOR,
            inuse: 0,
        }
    }

    /// The virtio-queue ring.
    pub fn ring(&self) -> &Queue {
        &self.queue
    }

    /// The virtio-queue ring, mutably.
    pub fn ring_mut(&mut self) -> &mut Queue {
        &mut self.queue
    }

    /// The size the driver selected (QEMU `vring.num`).
    pub fn size(&self) -> u16 {
        self.queue.size()
    }

    /// The device's default and maximum size (QEMU `vring.num_default`).
    pub fn max_size(&self) -> u16 {
        self.queue.max_size()
    }

    /// Descriptor table address.
    pub fn desc(&self) -> u64 {
        self.queue.desc_table()
    }

    /// Avail ring address.
    pub fn avail(&self) -> u64 {
        self.queue.avail_ring()
    }

    /// Used ring address.
    pub fn used(&self) -> u64 {
        self.queue.used_ring()
    }

    /// Next avail index the device will read (QEMU `last_avail_idx`).
    pub fn last_avail_idx(&self) -> u16 {
        self.queue.next_avail()
    }

    /// Next used index the device will write (QEMU `used_idx`).
    pub fn used_idx(&self) -> u16 {
        self.queue.next_used()
    }

    /// Chains in flight.
    pub fn inuse(&self) -> u16 {
        self.inuse
    }

    /// Sets the driver's size, as virtio-queue accepts it.
    pub fn set_size(&mut self, queue: usize, num: u32) -> Result<(), VirtioError> {
        let bad = VirtioError::BadQueueSize {
            queue,
            num,
            max: self.max_size(),
        };
        let num = u16::try_from(num).map_err(|_| bad.clone())?;
        self.queue.try_set_size(num).map_err(|_| bad)
    }

    /// Sets the three ring addresses.
    pub fn set_addresses(&mut self, desc: u64, avail: u64, used: u64) {
        // The `try_` setters only refuse misalignment, which `is_valid` reports
        // later with the whole picture; the plain setters store any value.
        self.queue
            .set_desc_table_address(Some(desc as u32), Some((desc >> 32) as u32));
        self.queue
            .set_avail_ring_address(Some(avail as u32), Some((avail >> 32) as u32));
        self.queue
            .set_used_ring_address(Some(used as u32), Some((used >> 32) as u32));
    }

    /// Sets the ring addresses a stream carries: unlike [`Self::set_addresses`]
    /// (a driver's register writes, where virtio-queue keeps the old value of a
    /// misaligned address), a misaligned ring is an error here, so a queue can
    /// never load as "no ring" while the stream gave it one.
    pub fn load_addresses(
        &mut self,
        index: usize,
        desc: u64,
        avail: u64,
        used: u64,
    ) -> Result<(), VirtioError> {
        let q = &mut self.queue;
        let aligned = q.try_set_desc_table_address(GuestAddress(desc)).is_ok()
            && q.try_set_avail_ring_address(GuestAddress(avail)).is_ok()
            && q.try_set_used_ring_address(GuestAddress(used)).is_ok();
        if aligned {
            Ok(())
        } else {
            Err(VirtioError::RingOutsideMemory {
                queue: index,
                desc,
                avail,
                used,
                size: self.size(),
            })
        }
    }

    /// Sets the next avail index.
    pub fn set_last_avail_idx(&mut self, idx: u16) {
        self.queue.set_next_avail(idx);
    }

    /// Turns EVENT_IDX suppression on or off (from the negotiated features).
    pub fn set_event_idx(&mut self, on: bool) {
        self.queue.set_event_idx(on);
    }

    /// Marks the queue ready (the driver enabled it).
    pub fn set_ready(&mut self, ready: bool) {
        self.queue.set_ready(ready);
    }

    /// Whether the ring is usable: a descriptor table is set.
    pub fn has_ring(&self) -> bool {
        self.desc() != 0
    }

    /// Back to the reset state: default size, no addresses, indices 0.
    pub fn reset(&mut self) {
        self.queue.reset();
        self.vector = VIRTIO_NO_VECTOR;
        self.inuse = 0;
    }

    /// Counts a chain taken from the ring.
    pub fn took(&mut self) {
        self.inuse = self.inuse.wrapping_add(1);
    }

    /// Gives the last `n` chains taken back to the avail ring unused (QEMU's
    /// `virtqueue_rewind`): the next pop returns them again. Refused (`false`)
    /// when fewer than `n` are in use.
    ///
    /// ```
    /// use vmstate_devices::virtio::queue::VirtQueue;
    ///
    /// let mut q = VirtQueue::new(8);
    /// assert!(!q.rewind(1));
    /// q.set_last_avail_idx(3);
    /// q.took();
    /// assert!(q.rewind(1));
    /// assert_eq!((q.last_avail_idx(), q.inuse()), (2, 0));
    /// ```
    pub fn rewind(&mut self, n: u16) -> bool {
        if n > self.inuse {
            return false;
        }
        let last = self.last_avail_idx().wrapping_sub(n);
        self.queue.set_next_avail(last);
        self.inuse -= n;
        true
    }

    /// Returns a chain (head index, bytes written) to the driver and reports
    /// whether the driver wants an interrupt (EVENT_IDX or NO_INTERRUPT).
    pub fn complete<M: GuestMemory>(
        &mut self,
        mem: &M,
        index: usize,
        head: u16,
        len: u32,
    ) -> Result<bool, VirtioError> {
        let ring = |e: virtio_queue::Error| VirtioError::Ring {
            queue: index,
            msg: e.to_string(),
        };
        self.queue.add_used(mem, head, len).map_err(ring)?;
        self.inuse = self.inuse.saturating_sub(1);
        if self.queue.event_idx_enabled() {
            return self.queue.needs_notification(mem).map_err(ring);
        }
        // virtio-queue always asks for an interrupt without EVENT_IDX; QEMU
        // (and the spec) honour the driver's VRING_AVAIL_F_NO_INTERRUPT flag.
        let flags: u16 = mem
            .load(GuestAddress(self.avail()), Ordering::Acquire)
            .map_err(|e| VirtioError::Ring {
                queue: index,
                msg: e.to_string(),
            })?;
        Ok(u16::from_le(flags) & VRING_AVAIL_F_NO_INTERRUPT == 0)
    }

    /// After a load: checks the ring against guest memory and recomputes the
    /// used index and `inuse` from it, as QEMU's `virtio_load` does for split
    /// rings. Returns `false` when the avail index is too far ahead (QEMU marks
    /// the device broken but the load succeeds).
    pub fn post_load<M: GuestMemory>(
        &mut self,
        mem: &M,
        index: usize,
    ) -> Result<bool, VirtioError> {
        if !self.has_ring() {
            return Ok(true);
        }
        let outside = VirtioError::RingOutsideMemory {
            queue: index,
            desc: self.desc(),
            avail: self.avail(),
            used: self.used(),
            size: self.size(),
        };
        // `is_valid` also wants `ready`; a loaded ring with a table is in use.
        self.queue.set_ready(true);
        if !self.queue.is_valid(mem) {
            return Err(outside);
        }
        let avail_idx = self
            .queue
            .avail_idx(mem, Ordering::Acquire)
            .map_err(|_| outside.clone())?
            .0;
        let used_idx = self
            .queue
            .used_idx(mem, Ordering::Acquire)
            .map_err(|_| outside)?
            .0;
        let last = self.last_avail_idx();
        let size = self.size();
        self.queue.set_next_used(used_idx);
        let inuse = last.wrapping_sub(used_idx);
        if inuse > size {
            return Err(VirtioError::InUseExceedsSize {
                queue: index,
                last_avail_idx: last,
                used_idx,
                inuse,
                size,
            });
        }
        self.inuse = inuse;
        Ok(avail_idx.wrapping_sub(last) <= size)
    }

    /// Whether `[addr, addr + len)` is backed by guest memory.
    pub fn range_in_memory<M: GuestMemory>(mem: &M, addr: u64, len: u64) -> bool {
        match usize::try_from(len) {
            Ok(0) => true,
            Ok(n) => {
                addr.checked_add(len).is_some()
                    && mem.check_range(GuestAddress(addr), n, vm_memory::Permissions::ReadWrite)
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests;
