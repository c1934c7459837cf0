//! The virtio core: features, device status, ISR, the config-space cache and
//! its generation, the queues, reset. Transport-independent; the transport
//! ([`super::pci`]) maps its registers onto these calls.

use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;

use super::queue::VirtQueue;

/// `device_endian` values of the "virtio/device_endian" subsection.
pub mod endian {
    /// Not known yet (while loading).
    pub const UNKNOWN: u8 = 0;
    /// Little endian (x86's default, and always with VERSION_1).
    pub const LITTLE: u8 = 1;
    /// Big endian.
    pub const BIG: u8 = 2;
}

/// ISR bit: a queue was used.
pub const ISR_QUEUE: u8 = 1;
/// ISR bit: the configuration changed.
pub const ISR_CONFIG: u8 = 2;

/// Bit mask of one feature number.
pub const fn feature(bit: u32) -> u64 {
    1u64 << bit
}

/// State common to every virtio device.
#[derive(Debug)]
pub struct VirtioCore {
    /// Virtio device ID (1 net, 2 blk, 4 rng, 5 balloon).
    pub device_id: u16,
    /// Features the device offers.
    pub host_features: u64,
    /// Features the driver accepted.
    pub guest_features: u64,
    /// Device status byte.
    pub status: u8,
    /// Interrupt status (read-to-clear on the ISR register).
    pub isr: u8,
    /// Queue the driver selected.
    pub queue_sel: u16,
    /// The config space as last read by the driver (what QEMU migrates: its
    /// cache is refreshed from the device on each config read).
    pub config: Vec<u8>,
    /// Bumped whenever the device changes its config space.
    pub config_generation: u8,
    /// Device endianness ([`endian`]).
    pub device_endian: u8,
    /// The device hit an unrecoverable guest error and stopped processing.
    pub broken: bool,
    /// DRIVER_OK was seen (QEMU `started`).
    pub started: bool,
    /// The transport disabled the device (QEMU `disabled`).
    pub disabled: bool,
    /// The queues.
    pub queues: Vec<VirtQueue>,
}

impl VirtioCore {
    /// A reset device with `queue_sizes.len()` queues, the given offered
    /// features and a `config_len`-byte config cache.
    ///
    /// ```
    /// use vmstate_devices::virtio::core::VirtioCore;
    ///
    /// let c = VirtioCore::new(2, 1 << 32, 57, &[256]);
    /// assert_eq!((c.queues.len(), c.config.len(), c.status), (1, 57, 0));
    /// ```
    pub fn new(device_id: u16, host_features: u64, config_len: usize, queue_sizes: &[u16]) -> Self {
        VirtioCore {
            device_id,
            host_features,
            guest_features: 0,
            status: 0,
            isr: 0,
            queue_sel: 0,
            config: vec![0; config_len],
            config_generation: 0,
            device_endian: endian::LITTLE,
            broken: false,
            started: false,
            disabled: false,
            queues: queue_sizes.iter().map(|&n| VirtQueue::new(n)).collect(),
        }
    }

    /// Whether the driver accepted `bit`.
    pub fn has_feature(&self, bit: u32) -> bool {
        self.guest_features & feature(bit) != 0
    }

    /// Whether the device offers VERSION_1 (a modern-capable device).
    pub fn offers_version_1(&self) -> bool {
        self.host_features & feature(VIRTIO_F_VERSION_1) != 0
    }

    /// The driver writes its feature word `select` (0: bits 0..32, 1: 32..64).
    /// Bits the device does not offer are dropped, as QEMU does; the accepted
    /// set takes effect in the queues (EVENT_IDX).
    ///
    /// ```
    /// use vmstate_devices::virtio::core::VirtioCore;
    ///
    /// let mut c = VirtioCore::new(2, (1 << 32) | (1 << 29) | 1, 0, &[8]);
    /// c.write_guest_features(0, u32::MAX);
    /// c.write_guest_features(1, 1);
    /// assert_eq!(c.guest_features, (1 << 32) | (1 << 29) | 1);
    /// ```
    pub fn write_guest_features(&mut self, select: u32, value: u32) {
        let shift = match select {
            0 => 0,
            1 => 32,
            _ => return,
        };
        let mask = 0xffff_ffffu64 << shift;
        let new = (self.guest_features & !mask) | (u64::from(value) << shift);
        self.set_features(new & self.host_features);
    }

    /// Sets the accepted features (already masked by the caller).
    pub fn set_features(&mut self, features: u64) {
        self.guest_features = features;
        let event_idx = self.has_feature(VIRTIO_RING_F_EVENT_IDX);
        for q in &mut self.queues {
            q.set_event_idx(event_idx);
        }
    }

    /// The device's offered feature word `select`.
    pub fn host_features_word(&self, select: u32) -> u32 {
        match select {
            0 => self.host_features as u32,
            1 => (self.host_features >> 32) as u32,
            _ => 0,
        }
    }

    /// The driver writes the status byte; 0 resets the device. FEATURES_OK is
    /// refused (not latched) when a modern driver did not accept VERSION_1.
    /// Returns `true` when the write was a reset.
    pub fn write_status(&mut self, status: u8) -> bool {
        if status == 0 {
            self.reset();
            return true;
        }
        let mut status = status;
        if status & VIRTIO_CONFIG_S_FEATURES_OK as u8 != 0
            && self.offers_version_1()
            && !self.has_feature(VIRTIO_F_VERSION_1)
        {
            status &= !(VIRTIO_CONFIG_S_FEATURES_OK as u8);
        }
        self.status = status;
        if status & VIRTIO_CONFIG_S_DRIVER_OK as u8 != 0 {
            self.started = true;
        }
        false
    }

    /// Device reset: features, status, ISR, queue state back to defaults. The
    /// config cache keeps its bytes (the device refreshes it on read).
    pub fn reset(&mut self) {
        self.guest_features = 0;
        self.status = 0;
        self.isr = 0;
        self.queue_sel = 0;
        self.device_endian = endian::LITTLE;
        self.broken = false;
        self.started = false;
        for q in &mut self.queues {
            q.reset();
        }
    }

    /// Reads and clears the ISR.
    pub fn read_isr(&mut self) -> u8 {
        std::mem::take(&mut self.isr)
    }

    /// Whether the device processes its queues (DRIVER_OK and not broken).
    pub fn running(&self) -> bool {
        self.status & VIRTIO_CONFIG_S_DRIVER_OK as u8 != 0 && !self.broken
    }
}
