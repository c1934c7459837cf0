//! A virtio-rng driver: device-writable buffers on queue 0, read back when
//! the device returns them filled.

use super::{driver_ok, negotiate, read, setup_queue, DriverError, Result, RingLayout, SplitRing};
use crate::virtio::device::{VirtioDeviceModel, VirtioPciDevice};
use crate::virtio::GuestMem;

/// Buffer slot per head.
pub const SLOT_SIZE: u64 = 256;

/// The virtio-rng driver.
#[derive(Debug, Clone)]
pub struct RngDriver {
    /// The request queue.
    pub queue: SplitRing,
}

impl RngDriver {
    /// Probes and starts the device: VERSION_1, queue 0 at `ring`, buffers
    /// from `buf_base`.
    pub fn init<D: VirtioDeviceModel>(
        dev: &mut VirtioPciDevice<D>,
        ring: RingLayout,
        buf_base: u64,
    ) -> Result<Self> {
        negotiate(
            dev,
            super::F_VERSION_1 | super::F_INDIRECT | super::F_EVENT_IDX,
        )?;
        setup_queue(dev, 0, ring, 1);
        driver_ok(dev);
        Ok(RngDriver {
            queue: SplitRing::new(ring, buf_base, SLOT_SIZE),
        })
    }

    /// Asks for `len` bytes of entropy; the caller kicks queue 0.
    pub fn request(&mut self, mem: &GuestMem, len: u32) -> Result<u16> {
        if u64::from(len) > SLOT_SIZE {
            return Err(DriverError::TooLarge {
                len: u64::from(len),
                slot: SLOT_SIZE,
            });
        }
        let head = self.queue.peek_head(1, false)?;
        let at = self.queue.slot(head);
        self.queue.submit(mem, &[(at, len, true)], false)
    }

    /// The entropy the device delivered since the last call, one buffer each.
    pub fn take(&mut self, mem: &GuestMem) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for (head, len) in self.queue.reap(mem)? {
            let mut b = vec![0u8; (len as usize).min(SLOT_SIZE as usize)];
            read(mem, self.queue.slot(head as u16), &mut b)?;
            out.push(b);
        }
        Ok(out)
    }
}
