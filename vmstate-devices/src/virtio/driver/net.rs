//! A virtio-net driver: receive buffers posted on queue 0 (one slot each,
//! 12-byte header then the frame), frames sent on queue 1 (header and frame
//! in one descriptor), control commands on queue 2 (command, then the ack
//! byte).

use super::{driver_ok, get, negotiate, put, read, setup_queue, write, DriverError, Result};
use super::{RingLayout, SplitRing};
use crate::virtio::device::{VirtioDeviceModel, VirtioPciDevice};
use crate::virtio::GuestMem;

/// Bytes of the virtio-net header with VERSION_1.
pub const HDR_LEN: u64 = 12;
/// Buffer slot per head: a full-size frame and its header.
pub const SLOT_SIZE: u64 = 2048;
/// Features the driver asks for: MAC, STATUS, CTRL_VQ, CTRL_RX, CTRL_VLAN,
/// CTRL_MAC_ADDR, VERSION_1.
pub const WANTED: u64 =
    (1 << 5) | (1 << 16) | (1 << 17) | (1 << 18) | (1 << 19) | (1 << 23) | super::F_VERSION_1;

/// The virtio-net driver.
#[derive(Debug, Clone)]
pub struct NetDriver {
    /// Receive queue.
    pub rx: SplitRing,
    /// Transmit queue.
    pub tx: SplitRing,
    /// Control queue.
    pub ctrl: SplitRing,
}

impl NetDriver {
    /// Probes and starts the device with its three queues of `size` packed
    /// from `base` (rings, then each queue's buffer slots).
    pub fn init<D: VirtioDeviceModel>(
        dev: &mut VirtioPciDevice<D>,
        base: u64,
        size: u16,
    ) -> Result<Self> {
        negotiate(dev, WANTED)?;
        let mut rings = Vec::new();
        let stride = Self::queue_span(size);
        for q in 0..3u16 {
            let at = base + u64::from(q) * stride;
            let ring = RingLayout::at(at, size);
            setup_queue(dev, q, ring, q + 1);
            rings.push(SplitRing::new(
                ring,
                at + 0x4000 * u64::from(size).div_ceil(256),
                SLOT_SIZE,
            ));
        }
        driver_ok(dev);
        let ctrl = rings.pop().unwrap_or_else(|| unreachable!());
        let tx = rings.pop().unwrap_or_else(|| unreachable!());
        let rx = rings.pop().unwrap_or_else(|| unreachable!());
        Ok(NetDriver { rx, tx, ctrl })
    }

    /// Guest memory one queue of `size` takes (rings and buffer slots).
    pub fn queue_span(size: u16) -> u64 {
        0x4000 * u64::from(size).div_ceil(256) + SLOT_SIZE * u64::from(size)
    }

    /// Guest memory [`init`](Self::init) uses from `base`.
    pub fn span(size: u16) -> u64 {
        3 * Self::queue_span(size)
    }

    /// Sends `frame` (header zeroed); the caller kicks queue 1.
    pub fn transmit(&mut self, mem: &GuestMem, frame: &[u8]) -> Result<u16> {
        let len = HDR_LEN + frame.len() as u64;
        if len > SLOT_SIZE {
            return Err(DriverError::TooLarge {
                len,
                slot: SLOT_SIZE,
            });
        }
        let head = self.tx.peek_head(1, false)?;
        let at = self.tx.slot(head);
        write(mem, at, &[0u8; HDR_LEN as usize])?;
        write(mem, at + HDR_LEN, frame)?;
        self.tx.submit(mem, &[(at, len as u32, false)], false)
    }

    /// Frames the device has sent (their descriptors are free again).
    pub fn reap_tx(&mut self, mem: &GuestMem) -> Result<usize> {
        Ok(self.tx.reap(mem)?.len())
    }

    /// Posts receive buffers until the queue is full or `max` were posted;
    /// returns how many. The caller kicks queue 0.
    pub fn post_rx(&mut self, mem: &GuestMem, max: usize) -> Result<usize> {
        let mut n = 0;
        while n < max && self.rx.free_descriptors() > 0 {
            let head = self.rx.peek_head(1, false)?;
            let at = self.rx.slot(head);
            self.rx
                .submit(mem, &[(at, SLOT_SIZE as u32, true)], false)?;
            n += 1;
        }
        Ok(n)
    }

    /// Frames received since the last call (header removed), in order.
    pub fn receive(&mut self, mem: &GuestMem) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for (head, len) in self.rx.reap(mem)? {
            let len = u64::from(len);
            if !(HDR_LEN..=SLOT_SIZE).contains(&len) {
                continue; // a dropped (too large) frame comes back empty
            }
            let mut f = vec![0u8; (len - HDR_LEN) as usize];
            read(mem, self.rx.slot(head as u16) + HDR_LEN, &mut f)?;
            out.push(f);
        }
        Ok(out)
    }

    /// Places a control command (class, command, data); the caller kicks
    /// queue 2 and reads the ack with [`ctrl_ack`](Self::ctrl_ack).
    pub fn ctrl(&mut self, mem: &GuestMem, class: u8, cmd: u8, data: &[u8]) -> Result<u16> {
        let len = 2 + data.len() as u64;
        if len + 1 > SLOT_SIZE {
            return Err(DriverError::TooLarge {
                len,
                slot: SLOT_SIZE,
            });
        }
        let head = self.ctrl.peek_head(2, false)?;
        let at = self.ctrl.slot(head);
        write(mem, at, &[class, cmd])?;
        write(mem, at + 2, data)?;
        let ack = at + SLOT_SIZE - 1;
        put(mem, ack, 0xffu8)?;
        self.ctrl
            .submit(mem, &[(at, len as u32, false), (ack, 1, true)], false)
    }

    /// Acks of the control commands the device returned: (head, ack byte).
    pub fn ctrl_ack(&mut self, mem: &GuestMem) -> Result<Vec<(u16, u8)>> {
        let mut out = Vec::new();
        for (head, _) in self.ctrl.reap(mem)? {
            // The ack byte is the last of the head's slot.
            let ack = self.ctrl.slot(head as u16) + SLOT_SIZE - 1;
            out.push((head as u16, get::<u8>(mem, ack)?));
        }
        Ok(out)
    }
}
