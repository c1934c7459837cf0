//! The virtio PCI transport (QEMU's `virtio-pci` proxy of a transitional
//! device on the `pc` machine): PCI config space with the virtio vendor
//! capabilities, BARs, MSI-X table and PBA, the modern common-config registers,
//! and what QEMU migrates of it — the "PCIDevice" body, MSI-X, the config
//! vector, per-queue vectors, and the "virtio_pci" extra state (modern_state).
//!
//! BAR layout (as QEMU 7.2 lays out a transitional device): BAR0 legacy I/O,
//! BAR1 MSI-X (table at 0, PBA at 0x800), BAR4 64-bit prefetchable memory with
//! the common (0x0000), ISR (0x1000), device (0x2000) and notify (0x3000, 4
//! bytes per queue) regions.

use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::Result;

use bytes::{Buf, BufMut};

use super::core::VirtioCore;
use super::error::VirtioError;
use super::{VIRTIO_NO_VECTOR, VIRTIO_QUEUE_MAX};

/// Size of conventional PCI config space.
pub const PCI_CONFIG_SIZE: usize = 256;
/// Offset of the MSI-X capability.
pub const MSIX_CAP: usize = 0x98;
/// Byte of the PCI status register holding the interrupt bit.
const PCI_STATUS_INTERRUPT: u8 = 0x08;
/// MSI-X message control: enable (bit 15) and function mask (bit 14), high byte.
const MSIX_ENABLE: u8 = 0x80;
const MSIX_MASKALL: u8 = 0x40;

/// What identifies a virtio PCI function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciIdentity {
    /// Virtio device ID (the PCI subsystem ID).
    pub virtio_id: u16,
    /// Transitional PCI device ID (0x1000 + ...).
    pub pci_device_id: u16,
    /// PCI class code (class << 8 | subclass).
    pub class: u16,
    /// MSI-X vectors (0: no MSI-X).
    pub nvectors: u16,
}

/// One queue's registers as the modern interface holds them (QEMU keeps
/// these in the proxy and migrates them in "virtio_pci/modern_state").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModernQueue {
    /// queue_size as written by the driver.
    pub num: u16,
    /// queue_enable.
    pub enabled: bool,
    /// queue_desc low/high.
    pub desc: [u32; 2],
    /// queue_driver (avail) low/high.
    pub avail: [u32; 2],
    /// queue_device (used) low/high.
    pub used: [u32; 2],
}

/// Delivered interrupts, for the machine (or a test) to pick up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// An MSI-X message through vector N.
    Msix(u16),
    /// The INTx line changed to this level.
    Intx(bool),
}

/// The transport state.
#[derive(Debug)]
pub struct VirtioPci {
    identity: PciIdentity,
    /// Config space.
    pub config: [u8; PCI_CONFIG_SIZE],
    /// INTx levels (QEMU `irq_state`).
    pub irq_state: [bool; 4],
    /// MSI-X table entries (16 bytes each, PCI little-endian layout).
    pub msix_table: Vec<[u8; 16]>,
    /// MSI-X pending bits.
    pub msix_pba: Vec<u8>,
    /// Config-change vector.
    pub config_vector: u16,
    /// device_feature_select.
    pub dfselect: u32,
    /// driver_feature_select.
    pub gfselect: u32,
    /// The driver's feature words as written through the modern interface.
    pub guest_features: [u32; 2],
    /// Modern per-queue registers, one per device queue (the wire carries
    /// 1024; slots past the device's queues are zero).
    pub modern_queues: Vec<ModernQueue>,
    /// Interrupts raised since the last [`take_interrupts`](Self::take_interrupts).
    interrupts: Vec<Interrupt>,
}

/// Modern common-config register offsets (virtio 1.x §4.1.4.3).
pub mod common {
    #![allow(missing_docs)]
    pub const DFSELECT: u64 = 0x00;
    pub const DF: u64 = 0x04;
    pub const GFSELECT: u64 = 0x08;
    pub const GF: u64 = 0x0c;
    pub const MSIX: u64 = 0x10;
    pub const NUMQ: u64 = 0x12;
    pub const STATUS: u64 = 0x14;
    pub const CFGGENERATION: u64 = 0x15;
    pub const Q_SELECT: u64 = 0x16;
    pub const Q_SIZE: u64 = 0x18;
    pub const Q_MSIX: u64 = 0x1a;
    pub const Q_ENABLE: u64 = 0x1c;
    pub const Q_NOFF: u64 = 0x1e;
    pub const Q_DESCLO: u64 = 0x20;
    pub const Q_DESCHI: u64 = 0x24;
    pub const Q_AVAILLO: u64 = 0x28;
    pub const Q_AVAILHI: u64 = 0x2c;
    pub const Q_USEDLO: u64 = 0x30;
    pub const Q_USEDHI: u64 = 0x34;
}

fn put16(c: &mut [u8], at: usize, v: u16) {
    c[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(c: &mut [u8], at: usize, v: u32) {
    c[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Whether config byte `off` is read-only for the driver (its value must then
/// match on load). Writable: command/status, cache line, latency, BARs,
/// expansion ROM, interrupt line, MSI-X control, the PCI-cfg-access window;
/// bytes after the capabilities are not checked.
fn read_only(off: usize) -> bool {
    !matches!(off,
        0x04..=0x07 | 0x0c | 0x0d | 0x10..=0x27 | 0x30..=0x33 | 0x3c
        | 0x88..=0x97 | 0x9a..=0x9b | 0xa4..)
}

impl VirtioPci {
    /// The transport of a freshly realized device: QEMU 7.2's config space for
    /// `id` with `num_queues` queues.
    ///
    /// ```
    /// use vmstate_devices::virtio::pci::{PciIdentity, VirtioPci};
    ///
    /// let t = VirtioPci::new(PciIdentity { virtio_id: 2, pci_device_id: 0x1001, class: 0x0100, nvectors: 2 }, 1);
    /// assert_eq!(&t.config[..4], &[0xf4, 0x1a, 0x01, 0x10]);
    /// assert_eq!(t.config[0x34], 0x98); // capability list starts at MSI-X
    /// ```
    pub fn new(identity: PciIdentity, num_queues: usize) -> Self {
        let mut c = [0u8; PCI_CONFIG_SIZE];
        put16(&mut c, 0x00, 0x1af4);
        put16(&mut c, 0x02, identity.pci_device_id);
        put16(&mut c, 0x06, 0x0010); // capability list
        put16(&mut c, 0x0a, identity.class);
        c[0x10] = 0x01; // BAR0: I/O
        c[0x20] = 0x0c; // BAR4: 64-bit prefetchable memory
        put16(&mut c, 0x2c, 0x1af4);
        put16(&mut c, 0x2e, identity.virtio_id);
        c[0x3d] = 1; // INTA
                     // Virtio vendor capabilities: (offset, next, length, cfg type, bar, region offset, region length).
        let caps: [(usize, u8, u8, u8, u8, u32, u32); 5] = [
            (0x40, 0x00, 0x10, 1, 4, 0x0000, 0x1000), // common
            (0x50, 0x40, 0x10, 3, 4, 0x1000, 0x1000), // ISR
            (0x60, 0x50, 0x10, 4, 4, 0x2000, 0x1000), // device
            (0x70, 0x60, 0x14, 2, 4, 0x3000, 0x1000), // notify
            (0x84, 0x70, 0x14, 5, 0, 0, 0),           // PCI cfg access
        ];
        for (at, next, len, ty, bar, off, size) in caps {
            c[at] = 0x09;
            c[at + 1] = next;
            c[at + 2] = len;
            c[at + 3] = ty;
            c[at + 4] = bar;
            put32(&mut c, at + 8, off);
            put32(&mut c, at + 12, size);
        }
        put32(&mut c, 0x70 + 16, 4); // notify_off_multiplier
        let mut first_cap = 0x84;
        if identity.nvectors > 0 {
            c[MSIX_CAP] = 0x11;
            c[MSIX_CAP + 1] = 0x84;
            put16(&mut c, MSIX_CAP + 2, identity.nvectors - 1);
            put32(&mut c, MSIX_CAP + 4, 0x0000_0001); // table: BAR1 + 0
            put32(&mut c, MSIX_CAP + 8, 0x0000_0801); // PBA: BAR1 + 0x800
            first_cap = MSIX_CAP as u8;
        }
        c[0x34] = first_cap;
        let n = usize::from(identity.nvectors);
        let mut masked = [0u8; 16];
        masked[12] = 1; // vector control: masked
        VirtioPci {
            identity,
            config: c,
            irq_state: [false; 4],
            msix_table: vec![masked; n],
            msix_pba: vec![0; n.div_ceil(8)],
            config_vector: VIRTIO_NO_VECTOR,
            dfselect: 0,
            gfselect: 0,
            guest_features: [0; 2],
            modern_queues: vec![ModernQueue::default(); num_queues],
            interrupts: Vec::new(),
        }
    }

    /// The function's identity.
    pub fn identity(&self) -> PciIdentity {
        self.identity
    }

    /// MSI-X vectors of the function.
    pub fn nvectors(&self) -> u16 {
        self.identity.nvectors
    }

    fn has_msix(&self) -> bool {
        self.identity.nvectors > 0
    }

    /// Whether the driver enabled MSI-X in the capability.
    pub fn msix_enabled(&self) -> bool {
        self.has_msix() && self.config[MSIX_CAP + 3] & MSIX_ENABLE != 0
    }

    /// A config-space write by the guest (byte granular, only writable bytes
    /// change; the BARs are not sized here, only stored).
    pub fn write_config(&mut self, offset: usize, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let at = offset + i;
            if at < PCI_CONFIG_SIZE && !read_only(at) {
                self.config[at] = b;
            }
        }
    }

    /// Writes MSI-X table bytes (BAR1 offset `offset` < nvectors × 16).
    pub fn write_msix_table(&mut self, offset: usize, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let at = offset + i;
            if let Some(e) = self.msix_table.get_mut(at / 16) {
                e[at % 16] = b;
            }
        }
    }

    /// Interrupts raised since the last call.
    pub fn take_interrupts(&mut self) -> Vec<Interrupt> {
        std::mem::take(&mut self.interrupts)
    }

    /// Raises an interrupt on `vector` (MSI-X) or INTx when MSI-X is off. A
    /// masked vector only sets its pending bit.
    pub fn notify(&mut self, vector: u16) {
        if self.msix_enabled() {
            let Some(entry) = self.msix_table.get(usize::from(vector)) else {
                return; // VIRTIO_NO_VECTOR or out of range: nothing to send
            };
            let masked = entry[12] & 1 != 0 || self.config[MSIX_CAP + 3] & MSIX_MASKALL != 0;
            if masked {
                self.msix_pba[usize::from(vector) / 8] |= 1 << (vector % 8);
            } else {
                self.interrupts.push(Interrupt::Msix(vector));
            }
        } else {
            self.set_intx(true);
        }
    }

    fn set_intx(&mut self, level: bool) {
        if self.irq_state[0] != level {
            self.irq_state[0] = level;
            if level {
                self.config[0x06] |= PCI_STATUS_INTERRUPT;
            } else {
                self.config[0x06] &= !PCI_STATUS_INTERRUPT;
            }
            self.interrupts.push(Interrupt::Intx(level));
        }
    }

    /// The driver reads the ISR region: read-to-clear, and INTx drops.
    pub fn read_isr(&mut self, core: &mut VirtioCore) -> u8 {
        let v = core.read_isr();
        self.set_intx(false);
        v
    }

    /// A read of the modern common-config region.
    pub fn common_read(&self, core: &VirtioCore, offset: u64) -> u32 {
        let sel = usize::from(core.queue_sel);
        let q = core.queues.get(sel);
        let mq = self.modern_queues.get(sel).copied().unwrap_or_default();
        match offset {
            common::DFSELECT => self.dfselect,
            common::DF => core.host_features_word(self.dfselect),
            common::GFSELECT => self.gfselect,
            common::GF => self
                .guest_features
                .get(self.gfselect as usize)
                .copied()
                .unwrap_or(0),
            common::MSIX => u32::from(self.config_vector),
            common::NUMQ => core.queues.len() as u32,
            common::STATUS => u32::from(core.status),
            common::CFGGENERATION => u32::from(core.config_generation),
            common::Q_SELECT => u32::from(core.queue_sel),
            common::Q_SIZE => q.map_or(0, |q| u32::from(q.size())),
            common::Q_MSIX => q.map_or(u32::from(VIRTIO_NO_VECTOR), |q| u32::from(q.vector)),
            common::Q_ENABLE => u32::from(mq.enabled),
            common::Q_NOFF => sel as u32,
            common::Q_DESCLO => mq.desc[0],
            common::Q_DESCHI => mq.desc[1],
            common::Q_AVAILLO => mq.avail[0],
            common::Q_AVAILHI => mq.avail[1],
            common::Q_USEDLO => mq.used[0],
            common::Q_USEDHI => mq.used[1],
            _ => 0,
        }
    }

    /// A write to the modern common-config region. Returns `true` when the
    /// write reset the device.
    pub fn common_write(&mut self, core: &mut VirtioCore, offset: u64, value: u32) -> bool {
        let sel = usize::from(core.queue_sel);
        match offset {
            common::DFSELECT => self.dfselect = value,
            common::GFSELECT => self.gfselect = value,
            common::GF => {
                if let Some(w) = self.guest_features.get_mut(self.gfselect as usize) {
                    *w = value;
                    core.write_guest_features(self.gfselect, value);
                }
            }
            common::MSIX => self.config_vector = self.checked_vector(value as u16),
            common::STATUS if core.write_status(value as u8) => {
                self.reset();
                return true;
            }
            common::STATUS => {}
            // QEMU keeps an out-of-range selection out of queue_sel (CVE-2013-6399).
            common::Q_SELECT if (value as usize) < VIRTIO_QUEUE_MAX => {
                core.queue_sel = value as u16;
            }
            common::Q_MSIX => {
                let v = self.checked_vector(value as u16);
                if let Some(q) = core.queues.get_mut(sel) {
                    q.vector = v;
                }
            }
            common::Q_SIZE => {
                if let (Some(mq), Some(q)) =
                    (self.modern_queues.get_mut(sel), core.queues.get_mut(sel))
                {
                    mq.num = value as u16;
                    // A size virtio-queue refuses leaves the previous one, as QEMU ignores bad sizes.
                    let _ = q.set_size(sel, value);
                }
            }
            common::Q_ENABLE => {
                if let (Some(mq), Some(q)) =
                    (self.modern_queues.get_mut(sel), core.queues.get_mut(sel))
                {
                    if value == 1 {
                        mq.enabled = true;
                        let addr = |w: [u32; 2]| u64::from(w[1]) << 32 | u64::from(w[0]);
                        q.set_addresses(addr(mq.desc), addr(mq.avail), addr(mq.used));
                        q.set_ready(true);
                    }
                }
            }
            common::Q_DESCLO
            | common::Q_DESCHI
            | common::Q_AVAILLO
            | common::Q_AVAILHI
            | common::Q_USEDLO
            | common::Q_USEDHI => {
                if let Some(mq) = self.modern_queues.get_mut(sel) {
                    let i = ((offset - common::Q_DESCLO) / 4) as usize;
                    let w = match i / 2 {
                        0 => &mut mq.desc,
                        1 => &mut mq.avail,
                        _ => &mut mq.used,
                    };
                    w[i % 2] = value;
                }
            }
            _ => {}
        }
        false
    }

    /// `v` if it names one of the function's vectors, else "no vector".
    pub fn checked_vector(&self, v: u16) -> u16 {
        if v < self.identity.nvectors {
            v
        } else {
            VIRTIO_NO_VECTOR
        }
    }

    /// Transport part of a device reset.
    pub fn reset(&mut self) {
        self.config_vector = VIRTIO_NO_VECTOR;
        self.dfselect = 0;
        self.gfselect = 0;
        self.guest_features = [0; 2];
        self.modern_queues
            .iter_mut()
            .for_each(|q| *q = ModernQueue::default());
        self.set_intx(false);
    }

    /// Wire part A (`save_config`): PCIDevice v2, MSI-X table and PBA, config vector.
    pub fn save_config<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        w.write_u32(2)?;
        let mut c = self.config;
        c[0x06] &= !PCI_STATUS_INTERRUPT;
        w.write_bytes(&c)?;
        for s in self.irq_state {
            w.write_u32(u32::from(s))?;
        }
        if self.has_msix() {
            for e in &self.msix_table {
                w.write_bytes(e)?;
            }
            w.write_bytes(&self.msix_pba)?;
            w.write_u16(self.config_vector)?;
        }
        Ok(())
    }

    /// Loads wire part A, with QEMU's checks (version, read-only config bytes,
    /// irq_state, config vector).
    pub fn load_config<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
        let version = r.read_i32()?;
        if !(0..=2).contains(&version) {
            return Err(VirtioError::BadPciVersion(version).into());
        }
        let mut c = [0u8; PCI_CONFIG_SIZE];
        r.read_bytes(&mut c)?;
        for (off, (&stream, &local)) in c.iter().zip(self.config.iter()).enumerate() {
            if read_only(off) && stream != local {
                return Err(VirtioError::BadConfigData {
                    offset: off,
                    stream,
                    local,
                }
                .into());
            }
        }
        let mut irq = [false; 4];
        for (pin, slot) in irq.iter_mut().enumerate() {
            let value = r.read_u32()?;
            *slot = match value {
                0 => false,
                1 => true,
                _ => return Err(VirtioError::BadIrqState { pin, value }.into()),
            };
        }
        if self.has_msix() {
            for e in &mut self.msix_table {
                r.read_bytes(e)?;
            }
            r.read_bytes(&mut self.msix_pba)?;
            let v = r.read_u16()?;
            self.check_vector("config".into(), v)?;
            self.config_vector = v;
        }
        self.config = c;
        self.irq_state = irq;
        Ok(())
    }

    /// A loaded vector must be none or one of the function's.
    pub fn check_vector(&self, what: String, vector: u16) -> Result<()> {
        if vector == VIRTIO_NO_VECTOR || vector < self.identity.nvectors {
            Ok(())
        } else {
            Err(VirtioError::BadVector {
                what,
                vector,
                nvectors: self.identity.nvectors,
            }
            .into())
        }
    }

    /// Wire part D's transport piece: the queue vector (with MSI-X).
    pub fn save_queue<B: BufMut>(&self, w: &mut Writer<B>, vector: u16) -> Result<()> {
        if self.has_msix() {
            w.write_u16(vector)?;
        }
        Ok(())
    }

    /// Loads a queue vector (with MSI-X); `None` without MSI-X.
    pub fn load_queue<B: Buf>(&self, r: &mut Reader<B>, queue: usize) -> Result<Option<u16>> {
        if !self.has_msix() {
            return Ok(None);
        }
        let v = r.read_u16()?;
        self.check_vector(format!("queue {queue}"), v)?;
        Ok(Some(v))
    }

    /// Writes the "virtio_pci" v1 body (no fields) and its "modern_state"
    /// subsection: the body of "virtio/extra_state".
    pub fn save_extra_state<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        super::wire::write_subsection_header(w, "virtio_pci/modern_state", 1)?;
        w.write_u32(self.dfselect)?;
        w.write_u32(self.gfselect)?;
        w.write_u32(self.guest_features[0])?;
        w.write_u32(self.guest_features[1])?;
        for i in 0..VIRTIO_QUEUE_MAX {
            let q = self.modern_queues.get(i).copied().unwrap_or_default();
            w.write_u16(q.num)?;
            w.write_u8(0)?;
            w.write_u8(u8::from(q.enabled))?;
            for x in q.desc.iter().chain(&q.avail).chain(&q.used) {
                w.write_u32(*x)?;
            }
        }
        Ok(())
    }

    /// Loads the "virtio_pci" body: its subsections, stopping at the first
    /// subsection that is not "virtio_pci/…" (the parent's next one).
    pub fn load_extra_state<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
        while let Some(name) = super::wire::peek_subsection(r, "virtio_pci")? {
            if name != "virtio_pci/modern_state" {
                return Err(VirtioError::UnknownSubsection(name).into());
            }
            super::wire::read_subsection_header(r, 1)?;
            self.dfselect = r.read_u32()?;
            self.gfselect = r.read_u32()?;
            self.guest_features = [r.read_u32()?, r.read_u32()?];
            for i in 0..VIRTIO_QUEUE_MAX {
                let num = r.read_u16()?;
                let hi = r.read_u8()?;
                let en = r.read_u8()?;
                let mut words = [0u32; 6];
                for x in &mut words {
                    *x = r.read_u32()?;
                }
                // QEMU loads "enabled" as a be16 (high byte ignored by its bool use).
                let q = ModernQueue {
                    num,
                    enabled: (u16::from(hi) << 8 | u16::from(en)) != 0,
                    desc: [words[0], words[1]],
                    avail: [words[2], words[3]],
                    used: [words[4], words[5]],
                };
                // Slots past this device's queues have no registers here.
                if let Some(slot) = self.modern_queues.get_mut(i) {
                    *slot = q;
                }
            }
        }
        Ok(())
    }
}
