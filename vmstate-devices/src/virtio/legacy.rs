//! The legacy (virtio 0.9.5) I/O interface of a transitional virtio-pci
//! function, BAR0: 32-bit features, one page frame per queue (the ring layout
//! is derived from it, [`legacy_ring_addresses`]), status, ISR, and the MSI-X
//! vector registers when MSI-X is enabled; the device config follows.

use super::device::{VirtioDeviceModel, VirtioPciDevice};
use super::queue::{legacy_ring_addresses, LEGACY_VRING_ALIGN};
use super::VIRTIO_QUEUE_MAX;

/// Legacy register offsets in BAR0.
pub mod reg {
    /// Device features bits 0..32 (read-only).
    pub const HOST_FEATURES: u64 = 0x00;
    /// Driver features bits 0..32.
    pub const GUEST_FEATURES: u64 = 0x04;
    /// Page frame number of the selected queue's ring (0: reset the queue).
    pub const QUEUE_PFN: u64 = 0x08;
    /// Size of the selected queue (read-only).
    pub const QUEUE_NUM: u64 = 0x0c;
    /// Queue selector.
    pub const QUEUE_SEL: u64 = 0x0e;
    /// Queue notify (write the queue index).
    pub const QUEUE_NOTIFY: u64 = 0x10;
    /// Device status.
    pub const STATUS: u64 = 0x12;
    /// ISR (read-to-clear).
    pub const ISR: u64 = 0x13;
    /// Config vector (only with MSI-X enabled).
    pub const MSI_CONFIG_VECTOR: u64 = 0x14;
    /// Queue vector (only with MSI-X enabled).
    pub const MSI_QUEUE_VECTOR: u64 = 0x16;
}

impl<D: VirtioDeviceModel> VirtioPciDevice<D> {
    /// Where the device config starts in BAR0 (after the MSI-X registers
    /// when MSI-X is enabled).
    pub fn legacy_config_offset(&self) -> u64 {
        if self.transport.msix_enabled() {
            0x18
        } else {
            0x14
        }
    }

    /// A read of BAR0 at `offset` of `size` bytes (1, 2 or 4).
    pub fn legacy_read(&mut self, offset: u64, size: usize) -> u32 {
        let cfg = self.legacy_config_offset();
        if offset >= cfg {
            let mut b = [0u8; 4];
            let n = size.min(4);
            self.config_read((offset - cfg) as usize, &mut b[..n]);
            return u32::from_le_bytes(b);
        }
        let sel = usize::from(self.core.queue_sel);
        let q = self.core.queues.get(sel);
        match offset {
            reg::HOST_FEATURES => self.core.host_features_word(0),
            reg::GUEST_FEATURES => self.core.guest_features as u32,
            reg::QUEUE_PFN => q.map_or(0, |q| (q.desc() / LEGACY_VRING_ALIGN) as u32),
            reg::QUEUE_NUM => q.map_or(0, |q| u32::from(q.size())),
            reg::QUEUE_SEL => u32::from(self.core.queue_sel),
            reg::STATUS => u32::from(self.core.status),
            reg::ISR => u32::from(self.isr_read()),
            reg::MSI_CONFIG_VECTOR => u32::from(self.transport.config_vector),
            reg::MSI_QUEUE_VECTOR => {
                q.map_or(u32::from(super::VIRTIO_NO_VECTOR), |q| u32::from(q.vector))
            }
            _ => 0,
        }
    }

    /// A write to BAR0.
    pub fn legacy_write(&mut self, offset: u64, size: usize, value: u32) {
        let cfg = self.legacy_config_offset();
        if offset >= cfg {
            let b = value.to_le_bytes();
            self.config_write((offset - cfg) as usize, &b[..size.min(4)]);
            return;
        }
        let sel = usize::from(self.core.queue_sel);
        match offset {
            // A legacy driver only has the low word; the high word is cleared.
            reg::GUEST_FEATURES => {
                let f = u64::from(value) & self.core.host_features;
                self.core.set_features(f);
            }
            reg::QUEUE_PFN => {
                if let Some(q) = self.core.queues.get_mut(sel) {
                    if value == 0 {
                        q.reset();
                    } else {
                        let desc = u64::from(value) * LEGACY_VRING_ALIGN;
                        let (avail, used) = legacy_ring_addresses(desc, q.size());
                        q.set_addresses(desc, avail, used);
                        q.set_ready(true);
                    }
                }
            }
            reg::QUEUE_SEL if (value as usize) < VIRTIO_QUEUE_MAX => {
                self.core.queue_sel = value as u16;
            }
            reg::QUEUE_NOTIFY => self.queue_notify(value as usize),
            reg::STATUS if self.core.write_status(value as u8) => {
                self.transport.reset();
                self.device.reset();
            }
            reg::MSI_CONFIG_VECTOR => {
                self.transport.config_vector = self.transport.checked_vector(value as u16)
            }
            reg::MSI_QUEUE_VECTOR => {
                let v = self.transport.checked_vector(value as u16);
                if let Some(q) = self.core.queues.get_mut(sel) {
                    q.vector = v;
                }
            }
            _ => {}
        }
    }
}
