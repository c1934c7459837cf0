//! A virtio-balloon driver: page frame lists on the inflate (0) and deflate
//! (1) queues, `actual` written to the config space, and a statistics
//! buffer on the stats queue (2).

use super::SplitRing;
use super::{driver_ok, negotiate, setup_queue, write, DriverError, Result, RingLayout};
use crate::virtio::balloon::{features, INFLATE, STATS};
use crate::virtio::device::{VirtioDeviceModel, VirtioPciDevice};
use crate::virtio::GuestMem;

/// Buffer slot per head: up to 256 frames of 4 bytes.
pub const SLOT_SIZE: u64 = 1024;
/// Frames per inflate/deflate buffer.
pub const MAX_FRAMES: usize = (SLOT_SIZE / 4) as usize;

/// The virtio-balloon driver.
#[derive(Debug, Clone)]
pub struct BalloonDriver {
    /// Inflate, deflate and stats queues.
    pub queues: [SplitRing; 3],
    /// Features accepted.
    pub features: u64,
}

impl BalloonDriver {
    /// Probes and starts the device (VERSION_1, STATS_VQ, PAGE_POISON when
    /// `poison`), its three queues of `size` packed from `base`.
    pub fn init<D: VirtioDeviceModel>(
        dev: &mut VirtioPciDevice<D>,
        base: u64,
        size: u16,
        poison: bool,
    ) -> Result<Self> {
        let mut wanted = super::F_VERSION_1 | 1 << features::STATS_VQ;
        if poison {
            wanted |= 1 << features::PAGE_POISON;
        }
        let features = negotiate(dev, wanted)?;
        let stride = Self::queue_span(size);
        let mut q = Vec::new();
        for i in 0..3u16 {
            let at = base + u64::from(i) * stride;
            let ring = RingLayout::at(at, size);
            // No MSI-X on virtio-balloon-pci: no vectors to set.
            setup_queue(dev, i, ring, 0xffff);
            q.push(SplitRing::new(
                ring,
                at + 0x1000 * ring.span().div_ceil(0x1000),
                SLOT_SIZE,
            ));
        }
        driver_ok(dev);
        let queues: [SplitRing; 3] = q.try_into().unwrap_or_else(|_| unreachable!());
        Ok(BalloonDriver { queues, features })
    }

    /// Guest memory one queue of `size` takes.
    pub fn queue_span(size: u16) -> u64 {
        let ring = RingLayout::at(0, size);
        0x1000 * ring.span().div_ceil(0x1000) + SLOT_SIZE * u64::from(size)
    }

    /// Guest memory [`init`](Self::init) uses from `base`.
    pub fn span(size: u16) -> u64 {
        3 * Self::queue_span(size)
    }

    /// Puts `pfns` on the inflate (`inflate`) or deflate queue; the caller
    /// kicks the queue.
    pub fn frames(&mut self, mem: &GuestMem, inflate: bool, pfns: &[u32]) -> Result<u16> {
        if pfns.len() > MAX_FRAMES {
            return Err(DriverError::TooLarge {
                len: 4 * pfns.len() as u64,
                slot: SLOT_SIZE,
            });
        }
        let q = &mut self.queues[if inflate { INFLATE } else { INFLATE + 1 }];
        let head = q.peek_head(1, false)?;
        let at = q.slot(head);
        let bytes: Vec<u8> = pfns.iter().flat_map(|p| p.to_le_bytes()).collect();
        write(mem, at, &bytes)?;
        q.submit(mem, &[(at, bytes.len() as u32, false)], false)
    }

    /// Buffers the device returned on each queue (inflate, deflate, stats).
    pub fn reap(&mut self, mem: &GuestMem) -> Result<[usize; 3]> {
        let mut n = [0; 3];
        for (i, q) in self.queues.iter_mut().enumerate() {
            n[i] = q.reap(mem)?.len();
        }
        Ok(n)
    }

    /// Posts a statistics buffer of `(tag, value)` pairs; the caller kicks
    /// queue 2.
    pub fn post_stats(&mut self, mem: &GuestMem, stats: &[(u16, u64)]) -> Result<u16> {
        let q = &mut self.queues[STATS];
        let head = q.peek_head(1, false)?;
        let at = q.slot(head);
        let mut bytes = Vec::with_capacity(10 * stats.len());
        for &(tag, val) in stats {
            bytes.extend_from_slice(&tag.to_le_bytes());
            bytes.extend_from_slice(&val.to_le_bytes());
        }
        if bytes.len() as u64 > SLOT_SIZE {
            return Err(DriverError::TooLarge {
                len: bytes.len() as u64,
                slot: SLOT_SIZE,
            });
        }
        write(mem, at, &bytes)?;
        q.submit(mem, &[(at, bytes.len() as u32, false)], false)
    }

    /// The pages the host wants in the balloon (config `num_pages`).
    pub fn num_pages<D: VirtioDeviceModel>(dev: &mut VirtioPciDevice<D>) -> u32 {
        let mut b = [0u8; 4];
        dev.config_read(0, &mut b);
        u32::from_le_bytes(b)
    }

    /// Tells the device how many pages the balloon holds (config `actual`).
    pub fn set_actual<D: VirtioDeviceModel>(dev: &mut VirtioPciDevice<D>, pages: u32) {
        dev.config_write(4, &pages.to_le_bytes());
    }

    /// Tells the device the poison value (config `poison_val`).
    pub fn set_poison<D: VirtioDeviceModel>(dev: &mut VirtioPciDevice<D>, val: u32) {
        dev.config_write(12, &val.to_le_bytes());
    }
}
