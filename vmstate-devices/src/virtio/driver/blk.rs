//! A virtio-blk driver: one request queue; each request is a chain of the
//! 16-byte header (type, sector), the data buffer and the status byte, placed
//! in the head's buffer slot (header at +0, status at +16, data from +32).
//! The driver keeps every request until the device returns it, so a
//! completion of something not in flight, or a second completion, is caught
//! ([`DriverError::UnknownHead`]).

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use super::{
    driver_ok, get, negotiate, put, read, setup_queue, write, DriverError, Result, RingLayout,
    SplitRing,
};
use crate::virtio::device::{VirtioDeviceModel, VirtioPciDevice};
use crate::virtio::GuestMem;

/// Request types.
pub const T_IN: u32 = 0;
/// Write.
pub const T_OUT: u32 = 1;
/// Flush.
pub const T_FLUSH: u32 = 4;
/// Get the serial.
pub const T_GET_ID: u32 = 8;
/// Buffer slot of [`BlkDriver::init`]'s queue: a request carries up to
/// 4 KiB − 80 bytes of data.
pub const SLOT_SIZE: u64 = 4096;
/// Offset of the data in a slot.
const DATA_AT: u64 = 32;
/// Room kept at the slot end for an indirect table (3 descriptors).
const TABLE_ROOM: u64 = 48;

/// A request the device has not returned yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The driver's sequence number of the request.
    pub id: u64,
    /// Request type.
    pub ty: u32,
    /// First sector.
    pub sector: u64,
    /// Data buffer address.
    pub data: u64,
    /// Data length.
    pub len: u32,
    /// Status byte address.
    pub status: u64,
}

/// A request the device returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The driver's sequence number of the request.
    pub id: u64,
    /// Head descriptor it was returned under.
    pub head: u16,
    /// Request type.
    pub ty: u32,
    /// First sector.
    pub sector: u64,
    /// Status byte (0 OK, 1 IOERR, 2 UNSUPP).
    pub status: u8,
    /// Used length the device reported.
    pub used_len: u32,
    /// The data read (reads and get-id; empty otherwise).
    pub data: Vec<u8>,
}

/// The virtio-blk driver.
#[derive(Debug, Clone)]
pub struct BlkDriver {
    /// The request queue.
    pub queue: SplitRing,
    pending: HashMap<u16, Pending>,
    next_id: u64,
}

impl Deref for BlkDriver {
    type Target = SplitRing;
    fn deref(&self) -> &SplitRing {
        &self.queue
    }
}

impl DerefMut for BlkDriver {
    fn deref_mut(&mut self) -> &mut SplitRing {
        &mut self.queue
    }
}

impl BlkDriver {
    /// Probes and starts the device: features `wanted` (those offered),
    /// queue 0 at `ring` (MSI-X vector 1), buffers from `buf_base`
    /// ([`SLOT_SIZE`] per head), DRIVER_OK.
    pub fn init<D: VirtioDeviceModel>(
        dev: &mut VirtioPciDevice<D>,
        wanted: u64,
        ring: RingLayout,
        buf_base: u64,
    ) -> Result<Self> {
        negotiate(dev, wanted)?;
        setup_queue(dev, 0, ring, 1);
        driver_ok(dev);
        Ok(Self::new(SplitRing::new(ring, buf_base, SLOT_SIZE)))
    }

    /// A driver for a queue the device already has (after a migration, the
    /// destination's driver is the source's, continued: clone it).
    pub fn new(queue: SplitRing) -> Self {
        BlkDriver {
            queue,
            pending: HashMap::new(),
            next_id: 0,
        }
    }

    /// Requests in flight.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.pending.values()
    }

    /// Places a request: header, `data_len` bytes of data (`data` copied in
    /// for a write), status byte (preset to 0xff). Returns (head, data
    /// address, status address).
    pub fn request(
        &mut self,
        mem: &GuestMem,
        ty: u32,
        sector: u64,
        data: &[u8],
        data_len: u32,
        indirect: bool,
    ) -> Result<(u16, u64, u64)> {
        let need = DATA_AT + u64::from(data_len) + TABLE_ROOM;
        if need > self.queue.slot_size() {
            return Err(DriverError::TooLarge {
                len: need,
                slot: self.queue.slot_size(),
            });
        }
        let nbufs = if data_len > 0 { 3 } else { 2 };
        let head = self.queue.peek_head(nbufs, indirect)?;
        let base = self.queue.slot(head);
        let (hdr, status, dbuf) = (base, base + 16, base + DATA_AT);
        put(mem, hdr, ty.to_le())?;
        put(mem, hdr + 4, 0u32)?;
        put(mem, hdr + 8, sector.to_le())?;
        let n = data.len().min(data_len as usize);
        write(mem, dbuf, &data[..n])?;
        put(mem, status, 0xffu8)?;
        let device_writes = ty != T_OUT;
        let mut bufs = vec![(hdr, 16, false)];
        if data_len > 0 {
            bufs.push((dbuf, data_len, device_writes));
        }
        bufs.push((status, 1, true));
        let got = self.queue.submit(mem, &bufs, indirect)?;
        debug_assert_eq!(got, head);
        self.pending.insert(
            head,
            Pending {
                id: self.next_id,
                ty,
                sector,
                data: dbuf,
                len: data_len,
                status,
            },
        );
        self.next_id += 1;
        Ok((head, dbuf, status))
    }

    /// Writes `data` (whole sectors) at `sector`; returns the request id.
    pub fn write(&mut self, mem: &GuestMem, sector: u64, data: &[u8]) -> Result<u64> {
        let id = self.next_id;
        self.request(mem, T_OUT, sector, data, data.len() as u32, false)?;
        Ok(id)
    }

    /// Reads `len` bytes at `sector`; returns the request id.
    pub fn read(&mut self, mem: &GuestMem, sector: u64, len: u32) -> Result<u64> {
        let id = self.next_id;
        self.request(mem, T_IN, sector, &[], len, false)?;
        Ok(id)
    }

    /// Flushes; returns the request id.
    pub fn flush(&mut self, mem: &GuestMem) -> Result<u64> {
        let id = self.next_id;
        self.request(mem, T_FLUSH, 0, &[], 0, false)?;
        Ok(id)
    }

    /// Asks for the serial (20 bytes); returns the request id.
    pub fn get_id(&mut self, mem: &GuestMem) -> Result<u64> {
        let id = self.next_id;
        self.request(mem, T_GET_ID, 0, &[], 20, false)?;
        Ok(id)
    }

    /// The requests the device returned since the last call, with their
    /// status and data.
    pub fn complete(&mut self, mem: &GuestMem) -> Result<Vec<Completion>> {
        let used = self.queue.reap(mem)?;
        let mut out = Vec::with_capacity(used.len());
        for (head, used_len) in used {
            let p = self
                .pending
                .remove(&(head as u16))
                .ok_or(DriverError::UnknownHead(head))?;
            let status = get::<u8>(mem, p.status)?;
            let mut data = Vec::new();
            if p.ty != T_OUT && p.len > 0 {
                data = vec![0u8; p.len as usize];
                read(mem, p.data, &mut data)?;
            }
            out.push(Completion {
                id: p.id,
                head: head as u16,
                ty: p.ty,
                sector: p.sector,
                status,
                used_len,
                data,
            });
        }
        Ok(out)
    }

    /// The used entries since the last call, `(head, len)` (the requests are
    /// forgotten; [`complete`](Self::complete) says more).
    pub fn reap(&mut self, mem: &GuestMem) -> Result<Vec<(u32, u32)>> {
        Ok(self
            .complete(mem)?
            .into_iter()
            .map(|c| (u32::from(c.head), c.used_len))
            .collect())
    }
}
