//! A descriptor chain taken from a ring (QEMU's `VirtQueueElement`): its head
//! index and its device-readable ("out") and device-writable ("in") segments,
//! with scatter/gather access to guest memory, and its migrated form
//! `VirtQueueElementOld` (qemu-wire.md §7.5): a raw x86-64 host struct dump of
//! 49168 bytes, little-endian.

use std::ops::Deref;

use bytes::{Buf, BufMut};
use virtio_queue::DescriptorChain;
use vm_memory::{Bytes, GuestAddress, GuestMemory};
use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::Result;

use super::error::VirtioError;
use super::queue::VirtQueue;
use super::GuestMem;

/// Segment slots per direction in the migrated element (VIRTQUEUE_MAX_SIZE).
pub const MAX_SEGMENTS: usize = 1024;
/// Bytes of one migrated element.
pub const ELEMENT_WIRE_SIZE: usize = 16 + 2 * 8 * MAX_SEGMENTS + 2 * 16 * MAX_SEGMENTS;

/// One guest buffer: address and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
}

/// A chain taken from a ring.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Head descriptor index (what goes into the used ring).
    pub head: u32,
    /// Device-readable segments, in chain order.
    pub out: Vec<Segment>,
    /// Device-writable segments, in chain order.
    pub inn: Vec<Segment>,
}

/// Scatter/gather failed: the offset or length falls outside the segments or
/// guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfSegments;

impl Element {
    /// Collects a chain's descriptors (indirect tables followed by
    /// virtio-queue). A chain longer than [`MAX_SEGMENTS`] per direction is cut
    /// there.
    pub fn from_chain<M>(chain: DescriptorChain<M>) -> Self
    where
        M: Deref,
        M::Target: GuestMemory,
    {
        let mut e = Element {
            head: u32::from(chain.head_index()),
            ..Element::default()
        };
        for d in chain {
            let seg = Segment {
                addr: d.addr().0,
                len: d.len(),
            };
            let v = if d.is_write_only() {
                &mut e.inn
            } else {
                &mut e.out
            };
            if v.len() < MAX_SEGMENTS {
                v.push(seg);
            }
        }
        e
    }

    /// Total device-readable bytes.
    pub fn out_len(&self) -> u64 {
        self.out.iter().map(|s| u64::from(s.len)).sum()
    }

    /// Total device-writable bytes.
    pub fn in_len(&self) -> u64 {
        self.inn.iter().map(|s| u64::from(s.len)).sum()
    }

    /// Reads `buf.len()` bytes at `offset` of the readable segments.
    pub fn read_at(
        &self,
        mem: &GuestMem,
        offset: u64,
        buf: &mut [u8],
    ) -> std::result::Result<(), OutOfSegments> {
        walk(&self.out, offset, buf.len(), |addr, at, n| {
            mem.read_slice(&mut buf[at..at + n], GuestAddress(addr))
                .is_ok()
        })
    }

    /// Writes `buf` at `offset` of the writable segments.
    pub fn write_at(
        &self,
        mem: &GuestMem,
        offset: u64,
        buf: &[u8],
    ) -> std::result::Result<(), OutOfSegments> {
        walk(&self.inn, offset, buf.len(), |addr, at, n| {
            mem.write_slice(&buf[at..at + n], GuestAddress(addr))
                .is_ok()
        })
    }

    /// Writes the `VirtQueueElementOld` blob.
    pub fn save<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        let le32 = |w: &mut Writer<B>, v: u32| w.write_bytes(&v.to_le_bytes());
        let le64 = |w: &mut Writer<B>, v: u64| w.write_bytes(&v.to_le_bytes());
        le32(w, self.head)?;
        le32(w, self.out.len() as u32)?;
        le32(w, self.inn.len() as u32)?;
        w.write_zeros(4)?;
        for list in [&self.inn, &self.out] {
            for s in list.iter() {
                le64(w, s.addr)?;
            }
            w.write_zeros(8 * (MAX_SEGMENTS - list.len()))?;
        }
        for list in [&self.inn, &self.out] {
            for s in list.iter() {
                le64(w, 0)?; // iov_base: a host pointer, meaningless on the wire
                le64(w, u64::from(s.len))?;
            }
            w.write_zeros(16 * (MAX_SEGMENTS - list.len()))?;
        }
        Ok(())
    }

    /// Reads a `VirtQueueElementOld` blob: the segment counts are checked
    /// before anything is allocated (CVE-2013-4535/4536), and every segment
    /// must lie in guest memory (QEMU maps it).
    pub fn load<B: Buf>(r: &mut Reader<B>, mem: &GuestMem) -> Result<Self> {
        let le32 = |r: &mut Reader<B>| -> Result<u32> {
            let mut b = [0u8; 4];
            r.read_bytes(&mut b)?;
            Ok(u32::from_le_bytes(b))
        };
        let head = le32(r)?;
        let out_num = le32(r)?;
        let in_num = le32(r)?;
        le32(r)?;
        if in_num as usize > MAX_SEGMENTS || out_num as usize > MAX_SEGMENTS {
            return Err(VirtioError::TooManySegments { in_num, out_num }.into());
        }
        let le64 = |r: &mut Reader<B>| -> Result<u64> {
            let mut b = [0u8; 8];
            r.read_bytes(&mut b)?;
            Ok(u64::from_le_bytes(b))
        };
        let (in_num, out_num) = (in_num as usize, out_num as usize);
        let mut addrs = [Vec::with_capacity(in_num), Vec::with_capacity(out_num)];
        for (v, n) in addrs.iter_mut().zip([in_num, out_num]) {
            for _ in 0..n {
                v.push(le64(r)?);
            }
            r.skip(8 * (MAX_SEGMENTS - n))?;
        }
        let mut segs = [Vec::with_capacity(in_num), Vec::with_capacity(out_num)];
        for (v, (list, n)) in segs.iter_mut().zip(addrs.iter().zip([in_num, out_num])) {
            for &addr in list {
                le64(r)?;
                let len = le64(r)?;
                let len32 = u32::try_from(len).ok();
                match len32 {
                    Some(l) if VirtQueue::range_in_memory(mem, addr, len) => {
                        v.push(Segment { addr, len: l })
                    }
                    _ => return Err(VirtioError::SegmentOutsideMemory { head, addr, len }.into()),
                }
            }
            r.skip(16 * (MAX_SEGMENTS - n))?;
        }
        let [inn, out] = segs;
        Ok(Element { head, out, inn })
    }
}

/// Visits the pieces of `[offset, offset + len)` over `segs`; `f(addr,
/// buf_offset, n)` returns false on a memory error.
fn walk(
    segs: &[Segment],
    mut offset: u64,
    len: usize,
    mut f: impl FnMut(u64, usize, usize) -> bool,
) -> std::result::Result<(), OutOfSegments> {
    let mut done = 0usize;
    for s in segs {
        if done == len {
            break;
        }
        let sl = u64::from(s.len);
        if offset >= sl {
            offset -= sl;
            continue;
        }
        let n = ((sl - offset) as usize).min(len - done);
        let Some(addr) = s.addr.checked_add(offset) else {
            return Err(OutOfSegments);
        };
        if !f(addr, done, n) {
            return Err(OutOfSegments);
        }
        done += n;
        offset = 0;
    }
    if done == len {
        Ok(())
    } else {
        Err(OutOfSegments)
    }
}
