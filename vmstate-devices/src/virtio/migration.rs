//! The "virtio" field (QEMU's `VMSTATE_VIRTIO_DEVICE`): `virtio_save` and
//! `virtio_load` for the PCI transport, in QEMU 7.2's byte layout
//! (qemu-wire.md §7.2/§7.3) and with its load checks (§7.6).
//!
//! ```text
//! A  transport config   PCIDevice v2 | MSI-X table, PBA | be16 config_vector
//! B  core               u8 status | u8 isr | be16 queue_sel | be32 features[31:0]
//!                       | be32 config_len | config
//! C  be32 N             leading queues with a size
//! D  N × queue          be32 num | be64 desc | be16 last_avail_idx | [be16 vector]
//! E  device save hook   (virtio-blk: in-flight requests)
//! G  "virtio" v1        subsections only, in this order:
//!                       device_endian, 64bit_features, virtqueues, ringsize,
//!                       broken, extra_state (virtio_pci/modern_state), started,
//!                       disabled
//! ```
//! The layers are called in QEMU's order, and the device's load hook (E) runs
//! before the subsections are read: anything it needs from them (features,
//! ring addresses) is only final in [`VirtioDeviceModel::post_load`].

use bytes::{Buf, BufMut};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{FieldType, Result, VmStateField};

use super::core::{endian, feature};
use super::device::{VirtioDeviceModel, VirtioPciDevice};
use super::error::VirtioError;
use super::queue::legacy_ring_addresses;
use super::wire::{peek_subsection, read_bool, read_subsection_header, write_subsection_header};
use super::{MAX_CONFIG_LEN, VIRTIO_QUEUE_MAX};

impl<D: VirtioDeviceModel> VirtioPciDevice<D> {
    fn ringsize_needed(&self) -> bool {
        self.core.queues.iter().any(|q| q.size() != q.max_size())
    }

    /// `virtio_save`.
    pub fn virtio_save<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        let c = &self.core;
        self.transport.save_config(w)?;
        w.write_u8(c.status)?;
        w.write_u8(c.isr)?;
        w.write_u16(c.queue_sel)?;
        w.write_u32(c.guest_features as u32)?;
        w.write_u32(c.config.len() as u32)?;
        w.write_bytes(&c.config)?;
        let n = c.queues.iter().take_while(|q| q.size() != 0).count();
        w.write_u32(n as u32)?;
        for q in &c.queues[..n] {
            w.write_u32(u32::from(q.size()))?;
            w.write_u64(q.desc())?;
            w.write_u16(q.last_avail_idx())?;
            self.transport.save_queue(w, q.vector)?;
        }
        self.device.save_device(c, w)?;

        if c.device_endian != endian::LITTLE {
            write_subsection_header(w, "virtio/device_endian", 1)?;
            w.write_u8(c.device_endian)?;
        }
        if c.host_features >> 32 != 0 {
            write_subsection_header(w, "virtio/64bit_features", 1)?;
            w.write_u64(c.guest_features)?;
        }
        if c.offers_version_1() {
            write_subsection_header(w, "virtio/virtqueues", 1)?;
            for i in 0..VIRTIO_QUEUE_MAX {
                let (a, u) = c.queues.get(i).map_or((0, 0), |q| (q.avail(), q.used()));
                w.write_u64(a)?;
                w.write_u64(u)?;
            }
        }
        if self.ringsize_needed() {
            write_subsection_header(w, "virtio/ringsize", 1)?;
            for i in 0..VIRTIO_QUEUE_MAX {
                w.write_u32(c.queues.get(i).map_or(0, |q| u32::from(q.max_size())))?;
            }
        }
        if c.broken {
            write_subsection_header(w, "virtio/broken", 1)?;
            w.write_u8(1)?;
        }
        if self.migrate_extra {
            write_subsection_header(w, "virtio/extra_state", 1)?;
            self.transport.save_extra_state(w)?;
        }
        if c.started {
            write_subsection_header(w, "virtio/started", 1)?;
            w.write_u8(1)?;
        }
        if c.disabled {
            write_subsection_header(w, "virtio/disabled", 1)?;
            w.write_u8(1)?;
        }
        Ok(())
    }

    /// `virtio_load`, with every check of QEMU 7.2's (and a few stricter ones,
    /// each a [`VirtioError`]).
    pub fn virtio_load<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
        self.transport.load_config(r)?;

        let status = r.read_u8()?;
        let isr = r.read_u8()?;
        let queue_sel = r.read_u16()?;
        if usize::from(queue_sel) >= VIRTIO_QUEUE_MAX {
            return Err(VirtioError::QueueSelOutOfRange { queue_sel }.into());
        }
        let features_lo = r.read_u32()?;
        let config_len = r.read_i32()?;
        if config_len < 0 {
            return Err(VirtioError::ConfigLenNegative(config_len).into());
        }
        let config_len = config_len as u32;
        if config_len > MAX_CONFIG_LEN {
            return Err(VirtioError::ConfigLenTooLarge {
                config_len,
                max: MAX_CONFIG_LEN,
            }
            .into());
        }
        let copy = (config_len as usize).min(self.core.config.len());
        r.read_bytes(&mut self.core.config[..copy])?;
        r.skip(config_len as usize - copy)?;

        let num = r.read_u32()?;
        if num as usize > VIRTIO_QUEUE_MAX {
            return Err(VirtioError::TooManyQueues(num).into());
        }
        if num as usize > self.core.queues.len() {
            return Err(VirtioError::QueueCountMismatch {
                stream: num,
                local: self.core.queues.len(),
            }
            .into());
        }
        let num = num as usize;
        let mut desc = [0u64; VIRTIO_QUEUE_MAX];
        for (i, d) in desc.iter_mut().enumerate().take(num) {
            let size = r.read_u32()?;
            *d = r.read_u64()?;
            let last_avail_idx = r.read_u16()?;
            let vector = self.transport.load_queue(r, i)?;
            if *d == 0 && last_avail_idx != 0 {
                return Err(VirtioError::NoRingButIndex {
                    queue: i,
                    last_avail_idx,
                }
                .into());
            }
            let q = &mut self.core.queues[i];
            q.set_size(i, size)?;
            q.set_last_avail_idx(last_avail_idx);
            if let Some(v) = vector {
                q.vector = v;
            }
        }
        self.core.status = status;
        self.core.isr = isr;
        self.core.queue_sel = queue_sel;

        self.device.load_device(&self.core, &self.mem, r)?;

        // Subsections.
        self.core.device_endian = endian::UNKNOWN;
        let mut features64 = None;
        let mut rings = None::<Vec<(u64, u64)>>;
        let (mut broken, mut started, mut disabled) = (false, false, false);
        while let Some(name) = peek_subsection(r, "virtio")? {
            read_subsection_header(r, 1)?;
            match name.as_str() {
                "virtio/device_endian" => self.core.device_endian = r.read_u8()?,
                "virtio/64bit_features" => features64 = Some(r.read_u64()?),
                "virtio/virtqueues" => {
                    let mut v = Vec::with_capacity(self.core.queues.len());
                    for i in 0..VIRTIO_QUEUE_MAX {
                        let pair = (r.read_u64()?, r.read_u64()?);
                        // Slots past the device's queues have no ring here.
                        if i < self.core.queues.len() {
                            v.push(pair);
                        }
                    }
                    rings = Some(v);
                }
                "virtio/ringsize" => {
                    for i in 0..VIRTIO_QUEUE_MAX {
                        let d = r.read_u32()?;
                        if let Some(q) = self.core.queues.get(i) {
                            if d != u32::from(q.max_size()) {
                                return Err(VirtioError::BadQueueSize {
                                    queue: i,
                                    num: d,
                                    max: q.max_size(),
                                }
                                .into());
                            }
                        }
                    }
                }
                "virtio/broken" => broken = read_bool(r, "virtio/broken")?,
                "virtio/extra_state" => self.transport.load_extra_state(r)?,
                "virtio/started" => started = read_bool(r, "virtio/started")?,
                "virtio/disabled" => disabled = read_bool(r, "virtio/disabled")?,
                _ => return Err(VirtioError::UnknownSubsection(name).into()),
            }
        }
        if self.core.device_endian == endian::UNKNOWN {
            self.core.device_endian = endian::LITTLE;
        }
        self.core.broken = broken;
        self.core.started = started;
        self.core.disabled = disabled;

        let requested = if self.core.host_features >> 32 != 0 {
            features64.unwrap_or(u64::from(features_lo))
        } else {
            u64::from(features_lo)
        };
        if requested & !self.core.host_features != 0 {
            return Err(VirtioError::FeaturesNotOffered {
                requested,
                offered: self.core.host_features,
            }
            .into());
        }
        self.core.set_features(requested);

        // Ring addresses: the "virtqueues" subsection carries avail/used of
        // every slot; a legacy ring with a table derives them from it instead.
        let modern = self.core.guest_features & feature(VIRTIO_F_VERSION_1) != 0;
        for (i, q) in self.core.queues.iter_mut().enumerate() {
            let d = if i < num { desc[i] } else { q.desc() };
            let (mut avail, mut used) = rings.as_ref().map_or((q.avail(), q.used()), |v| v[i]);
            if !modern && d != 0 {
                (avail, used) = legacy_ring_addresses(d, q.size());
            }
            q.load_addresses(i, d, avail, used)?;
        }
        for i in 0..num {
            if !self.core.queues[i].post_load(&self.mem, i)? {
                // Avail index too far ahead: QEMU flags the device broken, the load succeeds.
                self.core.broken = true;
            }
        }
        self.device.post_load(&self.core)
    }
}

impl<D: VirtioDeviceModel> VmStateField for VirtioPciDevice<D> {
    const FIELD_TYPE: FieldType = FieldType {
        info: "virtio",
        size: None,
        array_len: None,
        nested: None,
    };

    fn save_field<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        self.virtio_save(w)
    }

    fn load_field<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
        self.virtio_load(r)
    }
}
