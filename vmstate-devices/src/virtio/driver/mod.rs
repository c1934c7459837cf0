//! The guest side: a scripted virtio driver, as a guest kernel's driver
//! talks to a virtio-pci device. It negotiates features and sets queues up
//! through the modern common-config registers ([`negotiate`],
//! [`setup_queue`], [`driver_ok`]), lays split rings out in guest memory
//! ([`RingLayout`]), and places descriptor chains and avail entries there and
//! reaps used entries ([`SplitRing`]). On top of it, one driver per device:
//! [`blk::BlkDriver`] (block requests), [`net::NetDriver`] (transmit,
//! receive buffers, control commands), [`rng::RngDriver`] (entropy reads) and
//! [`balloon::BalloonDriver`] (inflate, deflate, `actual`, statistics).
//!
//! The tests and the demo machine drive the device models with these, so the
//! state they migrate is one a driver can reach. The drivers only touch guest
//! memory and the device's registers: kicking a queue
//! ([`VirtioPciDevice::queue_notify`]) is the caller's move, as a guest
//! writes the notify register when it wants to.
//!
//! ```
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//! use vmstate_devices::virtio::blk::VirtioBlkSection;
//! use vmstate_devices::virtio::driver::{blk::BlkDriver, RingLayout, F_VERSION_1};
//!
//! let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
//! let disk = tempfile::tempfile().unwrap();
//! disk.set_len(1 << 20).unwrap();
//! let mut dev = VirtioBlkSection::new(disk, "d0", mem.clone()).unwrap();
//! let mut drv = BlkDriver::init(&mut dev.virtio, F_VERSION_1, RingLayout::at(0x10000, 16), 0x100000).unwrap();
//! let id = drv.write(&mem, 0, &[7u8; 512]).unwrap();
//! dev.virtio.queue_notify(0);
//! let done = drv.complete(&mem).unwrap();
//! assert_eq!((done[0].id, done[0].status), (id, 0));
//! ```

use std::collections::{BTreeSet, HashMap};

use vm_memory::{Bytes, GuestAddress};

use super::device::{VirtioDeviceModel, VirtioPciDevice};
use super::pci::common;
use super::GuestMem;

pub mod balloon;
pub mod blk;
pub mod net;
pub mod rng;

/// VIRTIO_F_VERSION_1 as a feature mask.
pub const F_VERSION_1: u64 = 1 << 32;
/// VIRTIO_RING_F_EVENT_IDX as a feature mask.
pub const F_EVENT_IDX: u64 = 1 << 29;
/// VIRTIO_RING_F_INDIRECT_DESC as a feature mask.
pub const F_INDIRECT: u64 = 1 << 28;

/// Device status bits a driver sets, in order.
const S_ACKNOWLEDGE: u32 = 1;
const S_DRIVER: u32 = 2;
const S_DRIVER_OK: u32 = 4;
const S_FEATURES_OK: u32 = 8;

/// Descriptor flags.
const VRING_DESC_F_NEXT: u16 = 1;
const VRING_DESC_F_WRITE: u16 = 2;
const VRING_DESC_F_INDIRECT: u16 = 4;

/// What a driver operation can run into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// Not enough free descriptors for the chain.
    #[error("ring of {size}: {need} descriptors needed, {free} free")]
    RingFull {
        /// Descriptors the chain needs.
        need: usize,
        /// Free descriptors.
        free: usize,
        /// The ring size.
        size: u16,
    },
    /// The request's buffers do not fit its slot of the buffer area.
    #[error("request of {len} bytes does not fit a {slot}-byte buffer slot")]
    TooLarge {
        /// Bytes needed.
        len: u64,
        /// Bytes a slot has.
        slot: u64,
    },
    /// A guest memory access failed.
    #[error("guest memory at {addr:#x}: {msg}")]
    Memory {
        /// The address.
        addr: u64,
        /// What vm-memory said.
        msg: String,
    },
    /// The device refused FEATURES_OK for the features the driver wrote.
    #[error("device refused FEATURES_OK for features {0:#x}")]
    FeaturesRefused(u64),
    /// The device returned a head the driver has no chain for (a completion
    /// without a request, or a second completion of one).
    #[error("used ring returned head {0}, which is not in flight")]
    UnknownHead(u32),
}

/// Result of the driver operations.
pub type Result<T> = std::result::Result<T, DriverError>;

fn mem_err(addr: u64, e: impl std::fmt::Display) -> DriverError {
    DriverError::Memory {
        addr,
        msg: e.to_string(),
    }
}

/// Writes a little-endian value at `addr`.
pub(crate) fn put<T: vm_memory::ByteValued>(mem: &GuestMem, addr: u64, v: T) -> Result<()> {
    mem.write_obj(v, GuestAddress(addr))
        .map_err(|e| mem_err(addr, e))
}

/// Reads a value at `addr`.
pub(crate) fn get<T: vm_memory::ByteValued>(mem: &GuestMem, addr: u64) -> Result<T> {
    mem.read_obj(GuestAddress(addr))
        .map_err(|e| mem_err(addr, e))
}

/// Writes `data` at `addr`.
pub(crate) fn write(mem: &GuestMem, addr: u64, data: &[u8]) -> Result<()> {
    mem.write_slice(data, GuestAddress(addr))
        .map_err(|e| mem_err(addr, e))
}

/// Reads `buf.len()` bytes at `addr`.
pub(crate) fn read(mem: &GuestMem, addr: u64, buf: &mut [u8]) -> Result<()> {
    mem.read_slice(buf, GuestAddress(addr))
        .map_err(|e| mem_err(addr, e))
}

/// Where one split queue's three parts live in guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLayout {
    /// Entries.
    pub size: u16,
    /// Descriptor table.
    pub desc: u64,
    /// Avail (driver) ring.
    pub avail: u64,
    /// Used (device) ring.
    pub used: u64,
}

impl RingLayout {
    /// The rings packed from `base`: descriptor table, avail ring right after
    /// it, used ring at the next 4 KiB boundary.
    ///
    /// ```
    /// use vmstate_devices::virtio::driver::RingLayout;
    ///
    /// let r = RingLayout::at(0x10000, 256);
    /// assert_eq!((r.avail, r.used), (0x11000, 0x12000));
    /// ```
    pub fn at(base: u64, size: u16) -> Self {
        let n = u64::from(size);
        RingLayout {
            size,
            desc: base,
            avail: base + 16 * n,
            used: (base + 16 * n + 6 + 2 * n + 4095) & !4095,
        }
    }

    /// Bytes from `desc` to the end of the used ring.
    pub fn span(&self) -> u64 {
        self.used + 6 + 8 * u64::from(self.size) - self.desc
    }
}

/// One split queue as the driver sees it: its descriptors (a free set, so
/// chains may complete in any order), the avail index it published, the
/// used index it consumed, and a buffer area with one slot per head
/// descriptor for the chains' data.
#[derive(Debug, Clone)]
pub struct SplitRing {
    /// Where the rings are.
    pub ring: RingLayout,
    /// Avail idx the driver has published.
    pub avail_idx: u16,
    /// Used idx the driver has consumed.
    pub used_seen: u16,
    free: BTreeSet<u16>,
    cursor: u16,
    chains: HashMap<u16, Vec<u16>>,
    buf_base: u64,
    slot_size: u64,
}

impl SplitRing {
    /// A ring at `ring` whose chains' buffers go to `buf_base + head ×
    /// slot_size`.
    pub fn new(ring: RingLayout, buf_base: u64, slot_size: u64) -> Self {
        SplitRing {
            ring,
            avail_idx: 0,
            used_seen: 0,
            free: (0..ring.size).collect(),
            cursor: 0,
            chains: HashMap::new(),
            buf_base,
            slot_size,
        }
    }

    /// The buffer slot of chains headed by `head`.
    pub fn slot(&self, head: u16) -> u64 {
        self.buf_base + u64::from(head) * self.slot_size
    }

    /// Bytes of one buffer slot.
    pub fn slot_size(&self) -> u64 {
        self.slot_size
    }

    /// Free descriptors.
    pub fn free_descriptors(&self) -> usize {
        self.free.len()
    }

    /// Chains published and not yet reaped.
    pub fn in_flight(&self) -> usize {
        self.chains.len()
    }

    /// Takes `n` free descriptors, lowest index from the cursor on (so chains
    /// that complete in order reuse the ring in order, as Linux does).
    fn take(&mut self, n: usize) -> Result<Vec<u16>> {
        if self.free.len() < n {
            return Err(DriverError::RingFull {
                need: n,
                free: self.free.len(),
                size: self.ring.size,
            });
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let i = self
                .free
                .range(self.cursor..)
                .next()
                .or_else(|| self.free.iter().next())
                .copied()
                .ok_or(DriverError::RingFull {
                    need: n,
                    free: 0,
                    size: self.ring.size,
                })?;
            self.free.remove(&i);
            self.cursor = (i + 1) % self.ring.size;
            out.push(i);
        }
        Ok(out)
    }

    /// The head a chain of `n` buffers would get next (without taking it).
    pub fn peek_head(&self, n: usize, indirect: bool) -> Result<u16> {
        let need = if indirect { 1 } else { n };
        if self.free.len() < need {
            return Err(DriverError::RingFull {
                need,
                free: self.free.len(),
                size: self.ring.size,
            });
        }
        Ok(self
            .free
            .range(self.cursor..)
            .next()
            .or_else(|| self.free.iter().next())
            .copied()
            .unwrap_or(0))
    }

    fn write_desc(mem: &GuestMem, table: u64, i: u16, d: (u64, u32, u16, u16)) -> Result<()> {
        let at = table + 16 * u64::from(i);
        put(mem, at, d.0.to_le())?;
        put(mem, at + 8, d.1.to_le())?;
        put(mem, at + 12, d.2.to_le())?;
        put(mem, at + 14, d.3.to_le())
    }

    /// Places a chain of `(addr, len, device-writable)` buffers, directly or
    /// through an indirect table (at the end of the head's slot), and
    /// publishes it in the avail ring. Returns the head.
    pub fn submit(
        &mut self,
        mem: &GuestMem,
        bufs: &[(u64, u32, bool)],
        indirect: bool,
    ) -> Result<u16> {
        let flags = |k: usize, w: bool| {
            let more = if k + 1 < bufs.len() {
                VRING_DESC_F_NEXT
            } else {
                0
            };
            more | if w { VRING_DESC_F_WRITE } else { 0 }
        };
        let head = if indirect {
            let table_len = 16 * bufs.len() as u64;
            if table_len > self.slot_size {
                return Err(DriverError::TooLarge {
                    len: table_len,
                    slot: self.slot_size,
                });
            }
            let head = self.take(1)?[0];
            let table = self.slot(head) + self.slot_size - table_len;
            for (k, &(a, l, w)) in bufs.iter().enumerate() {
                Self::write_desc(mem, table, k as u16, (a, l, flags(k, w), k as u16 + 1))?;
            }
            Self::write_desc(
                mem,
                self.ring.desc,
                head,
                (table, table_len as u32, VRING_DESC_F_INDIRECT, 0),
            )?;
            self.chains.insert(head, vec![head]);
            head
        } else {
            let descs = self.take(bufs.len().max(1))?;
            for (k, &(a, l, w)) in bufs.iter().enumerate() {
                let next = descs.get(k + 1).copied().unwrap_or(0);
                Self::write_desc(mem, self.ring.desc, descs[k], (a, l, flags(k, w), next))?;
            }
            let head = descs[0];
            self.chains.insert(head, descs);
            head
        };
        let size = self.ring.size;
        let slot = self.ring.avail + 4 + 2 * u64::from(self.avail_idx % size);
        put(mem, slot, head.to_le())?;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        put(mem, self.ring.avail + 2, self.avail_idx.to_le())?;
        Ok(head)
    }

    /// Used entries the device returned since the last call, `(head, len)`;
    /// their descriptors are free again. A head that is not in flight is an
    /// error (the device completed something twice or invented it).
    pub fn reap(&mut self, mem: &GuestMem) -> Result<Vec<(u32, u32)>> {
        let idx = u16::from_le(get::<u16>(mem, self.ring.used + 2)?);
        let mut out = Vec::new();
        while self.used_seen != idx {
            let at = self.ring.used + 4 + 8 * u64::from(self.used_seen % self.ring.size);
            let id = u32::from_le(get::<u32>(mem, at)?);
            let len = u32::from_le(get::<u32>(mem, at + 4)?);
            self.used_seen = self.used_seen.wrapping_add(1);
            let descs = u16::try_from(id)
                .ok()
                .and_then(|h| self.chains.remove(&h))
                .ok_or(DriverError::UnknownHead(id))?;
            self.free.extend(descs);
            out.push((id, len));
        }
        Ok(out)
    }

    /// Sets used_event (EVENT_IDX): interrupt once used idx passes `v`.
    pub fn set_used_event(&self, mem: &GuestMem, v: u16) -> Result<()> {
        let at = self.ring.avail + 4 + 2 * u64::from(self.ring.size);
        put(mem, at, v.to_le())
    }

    /// Sets or clears VRING_AVAIL_F_NO_INTERRUPT.
    pub fn set_no_interrupt(&self, mem: &GuestMem, on: bool) -> Result<()> {
        put(mem, self.ring.avail, u16::from(on).to_le())
    }
}

/// Probes a device as Linux does through the modern interface: reset,
/// ACKNOWLEDGE, DRIVER, reads the offered features, accepts those of
/// `wanted` it offers, FEATURES_OK (checked). Returns the accepted set.
pub fn negotiate<D: VirtioDeviceModel>(dev: &mut VirtioPciDevice<D>, wanted: u64) -> Result<u64> {
    dev.common_write(common::STATUS, 0);
    dev.common_write(common::STATUS, S_ACKNOWLEDGE);
    dev.common_write(common::STATUS, S_ACKNOWLEDGE | S_DRIVER);
    dev.common_write(common::DFSELECT, 0);
    let lo = dev.common_read(common::DF);
    dev.common_write(common::DFSELECT, 1);
    let hi = dev.common_read(common::DF);
    let accepted = (u64::from(hi) << 32 | u64::from(lo)) & wanted;
    dev.common_write(common::GFSELECT, 0);
    dev.common_write(common::GF, accepted as u32);
    dev.common_write(common::GFSELECT, 1);
    dev.common_write(common::GF, (accepted >> 32) as u32);
    dev.common_write(common::STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
    if dev.common_read(common::STATUS) & S_FEATURES_OK == 0 {
        return Err(DriverError::FeaturesRefused(accepted));
    }
    Ok(accepted)
}

/// Sets queue `queue` up at `ring` with MSI-X vector `vector` and enables it.
pub fn setup_queue<D: VirtioDeviceModel>(
    dev: &mut VirtioPciDevice<D>,
    queue: u16,
    ring: RingLayout,
    vector: u16,
) {
    dev.common_write(common::Q_SELECT, u32::from(queue));
    dev.common_write(common::Q_SIZE, u32::from(ring.size));
    dev.common_write(common::Q_MSIX, u32::from(vector));
    for (reg, v) in [
        (common::Q_DESCLO, ring.desc),
        (common::Q_AVAILLO, ring.avail),
        (common::Q_USEDLO, ring.used),
    ] {
        dev.common_write(reg, v as u32);
        dev.common_write(reg + 4, (v >> 32) as u32);
    }
    dev.common_write(common::Q_ENABLE, 1);
}

/// Sets DRIVER_OK: the device runs.
pub fn driver_ok<D: VirtioDeviceModel>(dev: &mut VirtioPciDevice<D>) {
    dev.common_write(
        common::STATUS,
        S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK,
    );
}
