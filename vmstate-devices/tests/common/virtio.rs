//! virtio test support: guest memory, a disk file, a virtio-blk device, the
//! virtio-blk body of the QEMU fixture, and a minimal split-ring driver
//! writing descriptors and avail entries the way a guest does.

use std::fs::File;

use vm_memory::{Bytes, GuestAddress};
use vmstate_devices::virtio::blk::VirtioBlkSection;
use vmstate_devices::virtio::pci::common;
use vmstate_devices::virtio::GuestMem;

use super::fixtures::fixture;
use super::sections::{body_to_footer, find_full_section};

/// Guest RAM size of the fixtures (`-m 32`).
pub const MEM_SIZE: usize = 32 << 20;

/// Zeroed guest memory of `size` bytes at GPA 0.
pub fn guest_mem(size: usize) -> GuestMem {
    GuestMem::from_ranges(&[(GuestAddress(0), size)]).expect("guest memory")
}

/// A temporary disk of `len` bytes, filled with `fill`.
pub fn disk(len: usize, fill: u8) -> File {
    use std::io::Write;
    let mut f = tempfile::tempfile().expect("temp disk");
    if fill == 0 {
        f.set_len(len as u64).expect("size disk");
    } else {
        f.write_all(&vec![fill; len]).expect("fill disk");
    }
    f
}

/// A fresh virtio-blk-pci over a copy-free handle of `file`.
pub fn blk(file: &File, mem: &GuestMem) -> VirtioBlkSection {
    VirtioBlkSection::new(
        file.try_clone().expect("dup disk"),
        "vmstate-rs",
        mem.clone(),
    )
    .expect("blk")
}

/// The virtio-blk section body of pc-virtio-blk.mig (version 2).
pub fn qemu_blk_body() -> Vec<u8> {
    let s = fixture("pc-virtio-blk.mig");
    let h = find_full_section(&s, "0000:00:02.0/virtio-blk");
    assert_eq!((h.instance_id, h.version_id), (0, 2));
    body_to_footer(&s, &h).to_vec()
}

/// Ring layout of one split queue the driver sets up.
#[derive(Clone, Copy, Debug)]
pub struct RingLayout {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
}

impl RingLayout {
    /// Rings packed from `base` (4 KiB aligned parts).
    pub fn at(base: u64, size: u16) -> Self {
        let n = u64::from(size);
        RingLayout {
            size,
            desc: base,
            avail: base + 16 * n,
            used: (base + 16 * n + 6 + 2 * n + 4095) & !4095,
        }
    }
}

/// A guest driver for a virtio-blk device: feature negotiation through the
/// modern common config, one queue, and request submission.
pub struct BlkDriver {
    pub ring: RingLayout,
    /// Next free descriptor.
    next_desc: u16,
    /// Avail idx the driver has published.
    pub avail_idx: u16,
    /// Used idx the driver has consumed.
    pub used_seen: u16,
    /// Buffer area for headers/data/status.
    pub buf_base: u64,
    buf_next: u64,
}

pub const F_VERSION_1: u64 = 1 << 32;
pub const F_EVENT_IDX: u64 = 1 << 29;
pub const F_INDIRECT: u64 = 1 << 28;

impl BlkDriver {
    /// Probes and initializes the device as Linux does: reset, ACK, DRIVER,
    /// features, FEATURES_OK, queue setup, DRIVER_OK.
    pub fn init(
        dev: &mut VirtioBlkSection,
        features: u64,
        ring: RingLayout,
        buf_base: u64,
    ) -> Self {
        let v = &mut dev.virtio;
        v.common_write(common::STATUS, 0);
        v.common_write(common::STATUS, 1);
        v.common_write(common::STATUS, 1 | 2);
        v.common_write(common::DFSELECT, 0);
        let lo = v.common_read(common::DF);
        v.common_write(common::DFSELECT, 1);
        let hi = v.common_read(common::DF);
        let offered = u64::from(hi) << 32 | u64::from(lo);
        let want = offered & features;
        v.common_write(common::GFSELECT, 0);
        v.common_write(common::GF, want as u32);
        v.common_write(common::GFSELECT, 1);
        v.common_write(common::GF, (want >> 32) as u32);
        v.common_write(common::STATUS, 1 | 2 | 8);
        assert_eq!(v.common_read(common::STATUS) & 8, 8, "FEATURES_OK kept");
        v.common_write(common::Q_SELECT, 0);
        v.common_write(common::Q_SIZE, u32::from(ring.size));
        v.common_write(common::Q_MSIX, 1);
        v.common_write(common::Q_DESCLO, ring.desc as u32);
        v.common_write(common::Q_DESCHI, (ring.desc >> 32) as u32);
        v.common_write(common::Q_AVAILLO, ring.avail as u32);
        v.common_write(common::Q_AVAILHI, (ring.avail >> 32) as u32);
        v.common_write(common::Q_USEDLO, ring.used as u32);
        v.common_write(common::Q_USEDHI, (ring.used >> 32) as u32);
        v.common_write(common::Q_ENABLE, 1);
        v.common_write(common::STATUS, 1 | 2 | 8 | 4);
        BlkDriver {
            ring,
            next_desc: 0,
            avail_idx: 0,
            used_seen: 0,
            buf_base,
            buf_next: buf_base,
        }
    }

    /// A driver for rings the caller already gave the device.
    pub fn with_ring(ring: RingLayout, buf_base: u64) -> Self {
        BlkDriver {
            ring,
            next_desc: 0,
            avail_idx: 0,
            used_seen: 0,
            buf_base,
            buf_next: buf_base,
        }
    }

    fn alloc(&mut self, len: u64) -> u64 {
        let a = self.buf_next;
        self.buf_next += (len + 15) & !15;
        a
    }

    fn write_desc(mem: &GuestMem, table: u64, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = table + 16 * u64::from(i);
        mem.write_obj(addr.to_le(), GuestAddress(at)).unwrap();
        mem.write_obj(len.to_le(), GuestAddress(at + 8)).unwrap();
        mem.write_obj(flags.to_le(), GuestAddress(at + 12)).unwrap();
        mem.write_obj(next.to_le(), GuestAddress(at + 14)).unwrap();
    }

    /// Places a chain of (addr, len, device-writable) buffers, directly or
    /// through an indirect table, and publishes it. Returns the head.
    pub fn submit(&mut self, mem: &GuestMem, bufs: &[(u64, u32, bool)], indirect: bool) -> u16 {
        let size = self.ring.size;
        let head = self.next_desc % size;
        if indirect {
            let table = self.alloc(16 * bufs.len() as u64);
            for (k, &(a, l, w)) in bufs.iter().enumerate() {
                let more = k + 1 < bufs.len();
                let flags = (if more { 1 } else { 0 }) | if w { 2 } else { 0 };
                Self::write_desc(mem, table, k as u16, a, l, flags, k as u16 + 1);
            }
            Self::write_desc(
                mem,
                self.ring.desc,
                head,
                table,
                16 * bufs.len() as u32,
                4,
                0,
            );
            self.next_desc = self.next_desc.wrapping_add(1);
        } else {
            for (k, &(a, l, w)) in bufs.iter().enumerate() {
                let i = self.next_desc % size;
                let more = k + 1 < bufs.len();
                let flags = (if more { 1 } else { 0 }) | if w { 2 } else { 0 };
                Self::write_desc(mem, self.ring.desc, i, a, l, flags, (i + 1) % size);
                self.next_desc = self.next_desc.wrapping_add(1);
            }
        }
        let slot = self.ring.avail + 4 + 2 * u64::from(self.avail_idx % size);
        mem.write_obj(head.to_le(), GuestAddress(slot)).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_obj(self.avail_idx.to_le(), GuestAddress(self.ring.avail + 2))
            .unwrap();
        head
    }

    /// Builds a block request: header, data, status. Returns (head, data
    /// address, status address).
    pub fn request(
        &mut self,
        mem: &GuestMem,
        ty: u32,
        sector: u64,
        data: &[u8],
        data_len: u32,
        indirect: bool,
    ) -> (u16, u64, u64) {
        let hdr = self.alloc(16);
        mem.write_obj(ty.to_le(), GuestAddress(hdr)).unwrap();
        mem.write_obj(0u32, GuestAddress(hdr + 4)).unwrap();
        mem.write_obj(sector.to_le(), GuestAddress(hdr + 8))
            .unwrap();
        let dbuf = self.alloc(u64::from(data_len));
        mem.write_slice(data, GuestAddress(dbuf)).unwrap();
        let status = self.alloc(1);
        mem.write_obj(0xffu8, GuestAddress(status)).unwrap();
        let device_writes = ty != 1; // OUT: data is device-readable
        let mut bufs = vec![(hdr, 16, false)];
        if data_len > 0 {
            bufs.push((dbuf, data_len, device_writes));
        }
        bufs.push((status, 1, true));
        let head = self.submit(mem, &bufs, indirect);
        (head, dbuf, status)
    }

    /// Used entries the device has returned since the last call: (id, len).
    pub fn reap(&mut self, mem: &GuestMem) -> Vec<(u32, u32)> {
        let idx: u16 = mem.read_obj(GuestAddress(self.ring.used + 2)).unwrap();
        let mut out = Vec::new();
        while self.used_seen != u16::from_le(idx) {
            let at = self.ring.used + 4 + 8 * u64::from(self.used_seen % self.ring.size);
            let id: u32 = mem.read_obj(GuestAddress(at)).unwrap();
            let len: u32 = mem.read_obj(GuestAddress(at + 4)).unwrap();
            out.push((u32::from_le(id), u32::from_le(len)));
            self.used_seen = self.used_seen.wrapping_add(1);
        }
        out
    }

    /// Sets used_event (EVENT_IDX) to `v`.
    pub fn set_used_event(&self, mem: &GuestMem, v: u16) {
        let at = self.ring.avail + 4 + 2 * u64::from(self.ring.size);
        mem.write_obj(v.to_le(), GuestAddress(at)).unwrap();
    }
}
