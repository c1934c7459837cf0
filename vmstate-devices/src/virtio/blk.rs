//! virtio-blk over a host file: read, write, flush and get-id requests taken
//! from a split virtqueue in guest memory, and the in-flight request list QEMU
//! migrates in the device's save hook (qemu-wire.md §7.5).
//!
//! A request taken from the ring is *in flight* until its I/O is done and
//! it is returned in the used ring. With [`VirtioBlk::set_io_stalled`] the
//! device keeps requests in flight (QEMU: a backend that has not completed,
//! or a request parked by the `werror=stop` policy); a migration then carries
//! them, and the destination submits each exactly once when it resumes
//! ([`VirtioBlk::resume`]). The avail ring is not re-read for them: the
//! migrated `last_avail_idx` is already past them.
//!
//! Section: `<pci-path>/virtio-blk`, version 2, one field "virtio"
//! ([`VirtioBlkSection`]).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use bytes::{Buf, BufMut};
use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_ID_BYTES,
    VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH,
    VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
};
use virtio_bindings::virtio_config::{
    VIRTIO_F_ANY_LAYOUT, VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{Result, VmState};

use super::core::{feature, VirtioCore};
use super::device::{DeviceContext, VirtioDeviceModel, VirtioPciDevice};
use super::element::Element;
use super::pci::{PciIdentity, VirtioPci};
use super::GuestMem;
use virtio_queue::QueueT;

/// Sector size of the request protocol.
pub const SECTOR_SIZE: u64 = 512;
/// Length of virtio-blk's config space as QEMU 7.2 sizes it with discard and
/// write-zeroes in the layout (through `write_zeroes_may_unmap`).
pub const CONFIG_LEN: usize = 57;
/// Default queue size (QEMU `queue-size`).
pub const QUEUE_SIZE: u16 = 256;
/// Maximum data segments per request offered in `seg_max` (queue size − 2).
const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;

/// Features the device offers.
pub const HOST_FEATURES: u64 = feature(VIRTIO_BLK_F_SEG_MAX)
    | feature(VIRTIO_BLK_F_BLK_SIZE)
    | feature(VIRTIO_BLK_F_FLUSH)
    | feature(VIRTIO_F_NOTIFY_ON_EMPTY)
    | feature(VIRTIO_F_ANY_LAYOUT)
    | feature(VIRTIO_RING_F_INDIRECT_DESC)
    | feature(VIRTIO_RING_F_EVENT_IDX)
    | feature(VIRTIO_F_VERSION_1);

/// The PCI identity of virtio-blk-pci with one queue (2 MSI-X vectors).
pub const PCI_IDENTITY: PciIdentity = PciIdentity {
    virtio_id: 2,
    pci_device_id: 0x1001,
    class: 0x0100,
    nvectors: 2,
};

/// A request taken from a queue and not yet completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The queue it came from.
    pub queue: u32,
    /// Its descriptors.
    pub elem: Element,
}

/// The block device model.
#[derive(Debug)]
pub struct VirtioBlk {
    file: File,
    capacity: u64,
    serial: [u8; VIRTIO_BLK_ID_BYTES as usize],
    num_queues: usize,
    io_stalled: bool,
    in_flight: Vec<InFlight>,
    completed: u64,
}

impl VirtioBlk {
    /// A device over `file` (its length rounded down to sectors is the
    /// capacity) with serial `serial` (up to 20 bytes).
    pub fn new(file: File, serial: &str) -> io::Result<Self> {
        let capacity = file.metadata()?.len() / SECTOR_SIZE;
        let mut s = [0u8; VIRTIO_BLK_ID_BYTES as usize];
        let n = serial.len().min(s.len());
        s[..n].copy_from_slice(&serial.as_bytes()[..n]);
        Ok(VirtioBlk {
            file,
            capacity,
            serial: s,
            num_queues: 1,
            io_stalled: false,
            in_flight: Vec::new(),
            completed: 0,
        })
    }

    /// Capacity in sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Keep taken requests in flight instead of completing them at once.
    pub fn set_io_stalled(&mut self, stalled: bool) {
        self.io_stalled = stalled;
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> &[InFlight] {
        &self.in_flight
    }

    /// Requests completed by this instance.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Un-stalls I/O and completes every request in flight, in order.
    pub fn resume(&mut self, ctx: &mut DeviceContext<'_>) {
        self.io_stalled = false;
        for r in std::mem::take(&mut self.in_flight) {
            self.complete(ctx, r);
        }
    }

    fn complete(&mut self, ctx: &mut DeviceContext<'_>, r: InFlight) {
        let status = self.execute(ctx.mem, &r.elem);
        let in_len = r.elem.in_len();
        // The status byte is the last device-writable byte.
        let status_ok = in_len > 0 && r.elem.write_at(ctx.mem, in_len - 1, &[status]).is_ok();
        // QEMU reports the whole device-writable size, whatever was written.
        let len = if status_ok { in_len } else { 0 };
        let q = r.queue as usize;
        self.completed += 1;
        if let Ok(true) = ctx.core.queues[q].complete(ctx.mem, q, r.elem.head as u16, len as u32) {
            ctx.notify_queue(q);
        }
    }

    /// Runs one request; returns its status byte.
    fn execute(&mut self, mem: &GuestMem, e: &Element) -> u8 {
        let mut hdr = [0u8; 16];
        if e.out_len() < 16 || e.read_at(mem, 0, &mut hdr).is_err() || e.in_len() == 0 {
            return VIRTIO_BLK_S_IOERR as u8;
        }
        let ty = u32::from_le_bytes(hdr[0..4].try_into().unwrap());
        let sector = u64::from_le_bytes(hdr[8..16].try_into().unwrap());
        let data_in = e.in_len() - 1;
        let data_out = e.out_len() - 16;
        let range_ok = |len: u64| {
            len.is_multiple_of(SECTOR_SIZE)
                && sector
                    .checked_add(len / SECTOR_SIZE)
                    .is_some_and(|end| end <= self.capacity)
        };
        let ioerr = VIRTIO_BLK_S_IOERR as u8;
        match ty {
            VIRTIO_BLK_T_IN => {
                if !range_ok(data_in) {
                    return ioerr;
                }
                let mut buf = vec![0u8; data_in as usize];
                if self
                    .file
                    .read_exact_at(&mut buf, sector * SECTOR_SIZE)
                    .is_err()
                    || e.write_at(mem, 0, &buf).is_err()
                {
                    return ioerr;
                }
                VIRTIO_BLK_S_OK as u8
            }
            VIRTIO_BLK_T_OUT => {
                if !range_ok(data_out) {
                    return ioerr;
                }
                let mut buf = vec![0u8; data_out as usize];
                if e.read_at(mem, 16, &mut buf).is_err()
                    || self.file.write_all_at(&buf, sector * SECTOR_SIZE).is_err()
                {
                    return ioerr;
                }
                VIRTIO_BLK_S_OK as u8
            }
            VIRTIO_BLK_T_FLUSH => match self.file.sync_data() {
                Ok(()) => VIRTIO_BLK_S_OK as u8,
                Err(_) => ioerr,
            },
            VIRTIO_BLK_T_GET_ID => {
                let n = data_in.min(self.serial.len() as u64) as usize;
                if e.write_at(mem, 0, &self.serial[..n]).is_err() {
                    return ioerr;
                }
                VIRTIO_BLK_S_OK as u8
            }
            _ => VIRTIO_BLK_S_UNSUPP as u8,
        }
    }
}

impl VirtioDeviceModel for VirtioBlk {
    fn read_config(&self, c: &mut [u8]) {
        let mut cfg = [0u8; CONFIG_LEN];
        cfg[0..8].copy_from_slice(&self.capacity.to_le_bytes());
        cfg[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        cfg[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        cfg[34..36].copy_from_slice(&(self.num_queues as u16).to_le_bytes());
        let n = c.len().min(CONFIG_LEN);
        c[..n].copy_from_slice(&cfg[..n]);
    }

    fn queue_notify(&mut self, ctx: &mut DeviceContext<'_>, queue: usize) {
        while let Some(chain) = ctx.core.queues[queue]
            .ring_mut()
            .pop_descriptor_chain(ctx.mem)
        {
            ctx.core.queues[queue].took();
            let elem = Element::from_chain(chain);
            let r = InFlight {
                queue: queue as u32,
                elem,
            };
            if self.io_stalled {
                self.in_flight.push(r);
            } else {
                self.complete(ctx, r);
            }
        }
    }

    fn reset(&mut self) {
        // Requests of a reset device are dropped (the driver forgot them).
        self.in_flight.clear();
    }

    fn save_device<B: BufMut>(&self, _core: &VirtioCore, w: &mut Writer<B>) -> Result<()> {
        for r in &self.in_flight {
            w.write_i8(1)?;
            if self.num_queues > 1 {
                w.write_u32(r.queue)?;
            }
            r.elem.save(w)?;
        }
        w.write_i8(0)
    }

    fn load_device<B: Buf>(
        &mut self,
        core: &VirtioCore,
        mem: &GuestMem,
        r: &mut Reader<B>,
    ) -> Result<()> {
        self.in_flight.clear();
        loop {
            match r.read_i8()? {
                0 => return Ok(()),
                1 => {}
                m => return Err(super::VirtioError::BadRequestMarker(m).into()),
            }
            let queue = if self.num_queues > 1 {
                r.read_u32()?
            } else {
                0
            };
            if queue as usize >= self.num_queues.min(core.queues.len()) {
                return Err(super::VirtioError::RequestQueueOutOfRange {
                    queue,
                    num_queues: self.num_queues,
                }
                .into());
            }
            let elem = Element::load(r, mem)?;
            // At most a queue's worth can be in flight; more is a hostile stream
            // (checked exactly against inuse once the rings are known).
            if self.in_flight.len() >= super::VIRTIO_QUEUE_MAX {
                return Err(super::VirtioError::RequestQueueOutOfRange {
                    queue,
                    num_queues: self.num_queues,
                }
                .into());
            }
            self.in_flight.push(InFlight { queue, elem });
        }
    }
}

/// The "virtio-blk" section body (version 2): one field "virtio".
#[derive(VmState, Debug)]
#[vmstate(name = "virtio-blk", version = 2, minimum_version = 2)]
pub struct VirtioBlkSection {
    /// The device with its transport.
    pub virtio: VirtioPciDevice<VirtioBlk>,
}

impl VirtioBlkSection {
    /// A freshly realized virtio-blk-pci over `file`, its rings in `mem`.
    pub fn new(file: File, serial: &str, mem: GuestMem) -> io::Result<Self> {
        let blk = VirtioBlk::new(file, serial)?;
        let core = VirtioCore::new(2, HOST_FEATURES, CONFIG_LEN, &[QUEUE_SIZE]);
        let transport = VirtioPci::new(PCI_IDENTITY, 1);
        Ok(VirtioBlkSection {
            virtio: VirtioPciDevice::new(core, transport, blk, mem),
        })
    }
}
