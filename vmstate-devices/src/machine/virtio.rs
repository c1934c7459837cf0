//! The machine's virtio devices ([`Machine::with_virtio`]): virtio-net,
//! virtio-blk (over a disk image file both sides of a migration open, as
//! shared storage), virtio-rng and virtio-balloon at the PCI slots QEMU gives
//! the first four `-device`s of a `-nodefaults` pc machine (00:02.0 to
//! 00:05.0), their rings and buffers in the top [`VIRTIO_AREA`] bytes of
//! `pc.ram`; and the guest side driving them ([`VirtioGuest`], the library's
//! drivers, [`crate::virtio::driver`]).
//!
//! One guest tick ([`VirtioDevices::guest_tick`]), as a guest with an
//! asynchronous block backend and batched network kicks behaves:
//! 1. the block requests of the previous tick complete (the backend is
//!    slow: they stay in flight for a tick) and the driver reaps them;
//! 2. the frames the driver published in the previous tick are kicked, the
//!    device sends them, the in-process backend (a loopback) hands them back
//!    to the device's receive side, and the driver reaps and checks them
//!    (sequence numbers: none lost, none twice, in order), then re-posts its
//!    receive buffers;
//! 3. new block writes are submitted and kicked (they are in flight until
//!    the next tick), new frames are published (not kicked yet), and an
//!    entropy buffer is filled.
//!
//! So whenever the vCPUs are paused, block requests are in flight and frames
//! wait in the transmit ring: a migration carries both, and the destination
//! must complete each request exactly once and deliver each frame exactly
//! once ([`Machine::virtio_resume`] checks it, with the source's driver
//! state at switchover, which a real guest keeps in its RAM).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use vm_memory::{Bytes, GuestAddress};
use vmstate_runtime::savevm::Registry;
use vmstate_runtime::{to_bytes, Error, Result};

use super::composition::{Machine, RAM_BLOCK};
use super::lock;
use super::workload::Rng;
use crate::virtio::balloon::{VirtioBalloonSection, INFLATE, STATS};
use crate::virtio::blk::VirtioBlkSection;
use crate::virtio::driver::balloon::BalloonDriver;
use crate::virtio::driver::blk::BlkDriver;
use crate::virtio::driver::net::NetDriver;
use crate::virtio::driver::rng::RngDriver;
use crate::virtio::driver::{DriverError, RingLayout, F_EVENT_IDX, F_INDIRECT, F_VERSION_1};
use crate::virtio::net::{VirtioNetSection, RX, TX};
use crate::virtio::rng::VirtioRngSection;
use crate::virtio::GuestMem;

/// PCI slot of virtio-net-pci.
pub const NET_SLOT: &str = "0000:00:02.0";
/// PCI slot of virtio-blk-pci.
pub const BLK_SLOT: &str = "0000:00:03.0";
/// PCI slot of virtio-rng-pci.
pub const RNG_SLOT: &str = "0000:00:04.0";
/// PCI slot of virtio-balloon-pci.
pub const BALLOON_SLOT: &str = "0000:00:05.0";
/// Bytes at the top of `pc.ram` that hold the rings and buffers (the
/// guest's memory workload stays below them).
pub const VIRTIO_AREA: u64 = 1 << 20;
/// Least guest RAM [`Machine::with_virtio`] takes (the virtio area is at
/// most half of it).
pub const MIN_RAM: u64 = 2 * VIRTIO_AREA;
/// Size of the disk image [`Machine::with_virtio`] creates when the file is
/// missing or empty.
pub const DISK_SIZE: u64 = 1 << 20;
/// MAC address of the machine's NIC.
pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// Ethertype of the guest's test frames (IEEE local experimental).
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

const BLK_QUEUE: u16 = 64;
const NET_QUEUE: u16 = 64;
const RNG_QUEUE: u16 = 8;
const BALLOON_QUEUE: u16 = 16;
/// Pages the host asks the balloon for at boot.
const BALLOON_PAGES: u32 = 16;
/// Block writes per tick.
const WRITES_PER_TICK: usize = 4;
/// Frames per tick.
const FRAMES_PER_TICK: usize = 4;
/// Sectors written per request.
const WRITE_SECTORS: u64 = 2;

/// Where the devices' rings live, from the area's base.
#[derive(Debug, Clone, Copy)]
struct Layout {
    blk: u64,
    blk_bufs: u64,
    net: u64,
    rng: u64,
    rng_bufs: u64,
    balloon: u64,
    balloon_pages: u64,
}

impl Layout {
    fn at(base: u64) -> Self {
        let blk = base;
        let blk_bufs = blk + 0x4000;
        let net = blk_bufs + u64::from(BLK_QUEUE) * crate::virtio::driver::blk::SLOT_SIZE;
        let rng = net + NetDriver::span(NET_QUEUE);
        let rng_bufs = rng + 0x2000;
        let balloon = rng_bufs + 0x1000 * u64::from(RNG_QUEUE).div_ceil(8);
        let balloon_pages = (balloon + BalloonDriver::span(BALLOON_QUEUE) + 0xfff) & !0xfff;
        Layout {
            blk,
            blk_bufs,
            net,
            rng,
            rng_bufs,
            balloon,
            balloon_pages,
        }
    }

    fn end(&self) -> u64 {
        self.balloon_pages + u64::from(BALLOON_PAGES) * 4096
    }
}

/// What the guest's drivers counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VirtioCounters {
    /// Block writes submitted.
    pub blk_submitted: u64,
    /// Block requests the driver got back.
    pub blk_completed: u64,
    /// Block requests that came back with a status other than OK.
    pub blk_errors: u64,
    /// Frames the guest published for sending.
    pub net_sent: u64,
    /// Frames the guest received back.
    pub net_received: u64,
    /// Received frames out of sequence (lost, duplicated or reordered).
    pub net_bad: u64,
    /// Entropy bytes received.
    pub rng_bytes: u64,
    /// Driver operations refused (ring full and such).
    pub refused: u64,
}

/// The guest side of the virtio devices: the drivers' state (in a real
/// guest, data structures in its RAM), the disk content it expects and its
/// counters. Cloning it at switchover gives the destination's guest.
#[derive(Debug, Clone, Default)]
pub struct VirtioGuest {
    blk: Option<BlkDriver>,
    net: Option<NetDriver>,
    rng: Option<RngDriver>,
    balloon: Option<BalloonDriver>,
    /// Sector → the bytes the guest last wrote there.
    expected: BTreeMap<u64, Vec<u8>>,
    next_sector: u64,
    next_frame: u64,
    expect_frame: u64,
    /// The counters.
    pub counters: VirtioCounters,
}

/// The four devices, the disk image and the guest side.
#[derive(Clone)]
pub struct VirtioDevices {
    /// virtio-blk at [`BLK_SLOT`].
    pub blk: Arc<Mutex<VirtioBlkSection>>,
    /// virtio-net at [`NET_SLOT`].
    pub net: Arc<Mutex<VirtioNetSection>>,
    /// virtio-rng at [`RNG_SLOT`].
    pub rng: Arc<Mutex<VirtioRngSection>>,
    /// virtio-balloon at [`BALLOON_SLOT`].
    pub balloon: Arc<Mutex<VirtioBalloonSection>>,
    /// The disk image.
    pub disk: PathBuf,
    /// The guest side.
    pub guest: Arc<Mutex<VirtioGuest>>,
    mem: GuestMem,
    base: u64,
    capacity: u64,
}

impl std::fmt::Debug for VirtioDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioDevices")
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

fn driver(e: DriverError) -> Error {
    Error::invalid(format!("virtio guest driver: {e}"))
}

fn frame(seq: u64) -> Vec<u8> {
    let mut f = MAC.to_vec();
    f.extend_from_slice(&[0x52, 0x54, 0x00, 0xff, 0xff, 0xfe]);
    f.extend_from_slice(&ETHERTYPE);
    f.extend_from_slice(&seq.to_le_bytes());
    f.extend((0..48u8).map(|i| i.wrapping_add(seq as u8)));
    f
}

fn frame_seq(f: &[u8]) -> Option<u64> {
    if f.len() < 22 || f[12..14] != ETHERTYPE {
        return None;
    }
    Some(u64::from_le_bytes(f[14..22].try_into().ok()?))
}

fn sector_data(seq: u64, len: usize) -> Vec<u8> {
    let mut r = Rng(seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    (0..len).map(|_| r.next() as u8).collect()
}

impl VirtioDevices {
    fn new(ram_mem: GuestMem, ram_size: u64, disk: &Path) -> Result<Self> {
        if ram_size < MIN_RAM {
            return Err(Error::invalid(format!(
                "virtio devices need at least {MIN_RAM:#x} bytes of guest RAM, the machine has {ram_size:#x}"
            )));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(disk)?;
        if file.metadata()?.len() == 0 {
            file.set_len(DISK_SIZE)?;
        }
        let blk = VirtioBlkSection::new(file, "vmstate-demo", ram_mem.clone())?;
        let capacity = blk.virtio.device.capacity();
        let base = ram_size - VIRTIO_AREA;
        if Layout::at(base).end() > ram_size {
            return Err(Error::invalid(
                "the virtio rings do not fit the virtio area",
            ));
        }
        Ok(VirtioDevices {
            blk: Arc::new(Mutex::new(blk)),
            net: Arc::new(Mutex::new(VirtioNetSection::new(MAC, ram_mem.clone()))),
            rng: Arc::new(Mutex::new(VirtioRngSection::new(
                std::fs::File::open("/dev/urandom")?,
                ram_mem.clone(),
            ))),
            balloon: Arc::new(Mutex::new(VirtioBalloonSection::new(ram_mem.clone()))),
            disk: disk.to_path_buf(),
            guest: Arc::new(Mutex::new(VirtioGuest::default())),
            mem: ram_mem,
            base,
            capacity,
        })
    }

    /// Where the guest's memory workload must not write: `[base, end)`.
    pub fn reserved(&self) -> (u64, u64) {
        (self.base, self.base + VIRTIO_AREA)
    }

    /// Registers the four sections (`<slot>/virtio-net` v11, `virtio-blk` v2,
    /// `virtio-rng` v1, `virtio-balloon` v1, instance 0 each).
    pub fn register(&self, reg: &mut Registry) -> Result<()> {
        reg.vmstate_register_at(Some(NET_SLOT), 0u32, self.net.clone())?;
        reg.vmstate_register_at(Some(BLK_SLOT), 0u32, self.blk.clone())?;
        reg.vmstate_register_at(Some(RNG_SLOT), 0u32, self.rng.clone())?;
        reg.vmstate_register_at(Some(BALLOON_SLOT), 0u32, self.balloon.clone())?;
        Ok(())
    }

    /// The guest's drivers probe the devices (after the RAM was filled):
    /// the ring area is cleared, each device negotiated and started, receive
    /// buffers posted, the balloon asked for pages and inflated, a
    /// statistics buffer posted.
    pub fn boot(&self) -> Result<()> {
        let l = Layout::at(self.base);
        let zero = vec![0u8; VIRTIO_AREA as usize];
        self.mem
            .write_slice(&zero, GuestAddress(self.base))
            .map_err(|e| Error::invalid(format!("clearing the virtio area: {e}")))?;
        // A fresh disk: all zeros (the destination never boots, it finds
        // the image as the source leaves it).
        let file = OpenOptions::new().write(true).open(&self.disk)?;
        let chunk = vec![0u8; 64 << 10];
        let mut at = 0;
        while at < self.capacity * 512 {
            let n = (self.capacity * 512 - at).min(chunk.len() as u64) as usize;
            file.write_all_at(&chunk[..n], at)?;
            at += n as u64;
        }
        let mem = &self.mem;
        let mut g = lock(&self.guest)?;
        let mut blk = lock(&self.blk)?;
        let b = BlkDriver::init(
            &mut blk.virtio,
            F_VERSION_1 | F_INDIRECT | F_EVENT_IDX,
            RingLayout::at(l.blk, BLK_QUEUE),
            l.blk_bufs,
        )
        .map_err(driver)?;
        // The backend completes a tick later: requests stay in flight.
        blk.virtio.device.set_io_stalled(true);
        g.blk = Some(b);
        drop(blk);
        let mut net = lock(&self.net)?;
        let mut n = NetDriver::init(&mut net.virtio, l.net, NET_QUEUE).map_err(driver)?;
        n.post_rx(mem, usize::MAX).map_err(driver)?;
        net.virtio.queue_notify(RX);
        g.net = Some(n);
        drop(net);
        let mut rng = lock(&self.rng)?;
        g.rng = Some(
            RngDriver::init(
                &mut rng.virtio,
                RingLayout::at(l.rng, RNG_QUEUE),
                l.rng_bufs,
            )
            .map_err(driver)?,
        );
        drop(rng);
        let mut bal = lock(&self.balloon)?;
        let mut d =
            BalloonDriver::init(&mut bal.virtio, l.balloon, BALLOON_QUEUE, true).map_err(driver)?;
        bal.request(BALLOON_PAGES);
        let want = BalloonDriver::num_pages(&mut bal.virtio);
        let pfns: Vec<u32> = (0..want)
            .map(|k| ((l.balloon_pages >> 12) + u64::from(k)) as u32)
            .collect();
        d.frames(mem, true, &pfns).map_err(driver)?;
        bal.virtio.queue_notify(INFLATE);
        BalloonDriver::set_actual(&mut bal.virtio, want);
        d.post_stats(mem, &[(4, 1 << 20), (5, 32 << 20)])
            .map_err(driver)?;
        bal.virtio.queue_notify(STATS);
        d.reap(mem).map_err(driver)?;
        g.balloon = Some(d);
        Ok(())
    }

    /// One guest tick (see the module documentation); nothing happens unless
    /// `running` is still set once the guest side is locked (a pause clears
    /// it, then takes that lock).
    pub fn guest_tick(&self, running: &AtomicBool) -> Result<()> {
        let mut g = lock(&self.guest)?;
        if !running.load(Ordering::SeqCst) || g.blk.is_none() {
            return Ok(());
        }
        let mem = self.mem.clone();
        self.complete_pending(&mut g, &mem)?;
        let g = &mut *g;
        // New block writes, kicked: in flight until the next tick.
        let mut blk = lock(&self.blk)?;
        if let Some(d) = g.blk.as_mut() {
            for _ in 0..WRITES_PER_TICK {
                let sector = g.next_sector;
                let data = sector_data(g.counters.blk_submitted, (WRITE_SECTORS * 512) as usize);
                match d.write(&mem, sector, &data) {
                    Ok(_) => {
                        for k in 0..WRITE_SECTORS {
                            let s = &data[(k * 512) as usize..((k + 1) * 512) as usize];
                            g.expected.insert(sector + k, s.to_vec());
                        }
                        g.counters.blk_submitted += 1;
                        g.next_sector =
                            (sector + WRITE_SECTORS) % (self.capacity - WRITE_SECTORS + 1);
                    }
                    Err(_) => g.counters.refused += 1,
                }
            }
            blk.virtio.queue_notify(0);
        }
        drop(blk);
        // New frames, published but not kicked (the next tick kicks them).
        if let Some(n) = g.net.as_mut() {
            for _ in 0..FRAMES_PER_TICK {
                // Flow control: never more frames out than receive buffers posted.
                let outstanding = g.next_frame - g.expect_frame;
                if outstanding as usize >= n.rx.in_flight() {
                    break;
                }
                match n.transmit(&mem, &frame(g.next_frame)) {
                    Ok(_) => {
                        g.next_frame += 1;
                        g.counters.net_sent += 1;
                    }
                    Err(_) => g.counters.refused += 1,
                }
            }
        }
        // Entropy.
        let mut rng = lock(&self.rng)?;
        if let Some(r) = g.rng.as_mut() {
            if r.request(&mem, 16).is_ok() {
                rng.virtio.queue_notify(0);
            }
            for b in r.take(&mem).map_err(driver)? {
                g.counters.rng_bytes += b.len() as u64;
            }
        }
        Ok(())
    }

    /// Steps 1 and 2 of a tick: the previous tick's block requests complete
    /// and are reaped; the published frames are kicked, looped back,
    /// received and checked.
    fn complete_pending(&self, g: &mut VirtioGuest, mem: &GuestMem) -> Result<()> {
        let mut blk = lock(&self.blk)?;
        blk.virtio.with_device(|d, ctx| d.resume(ctx));
        blk.virtio.device.set_io_stalled(true);
        if let Some(d) = g.blk.as_mut() {
            for c in d.complete(mem).map_err(driver)? {
                g.counters.blk_completed += 1;
                if c.status != 0 {
                    g.counters.blk_errors += 1;
                }
            }
        }
        drop(blk);
        let mut net = lock(&self.net)?;
        net.virtio.queue_notify(TX);
        // The in-process backend: a loopback.
        let sent = net.virtio.device.take_transmitted();
        for f in sent {
            net.virtio.with_device(|n, ctx| n.receive(ctx, &f));
        }
        if let Some(n) = g.net.as_mut() {
            n.reap_tx(mem).map_err(driver)?;
            for f in n.receive(mem).map_err(driver)? {
                match frame_seq(&f) {
                    Some(s) if s == g.expect_frame && f == frame(s) => {
                        g.expect_frame += 1;
                        g.counters.net_received += 1;
                    }
                    _ => g.counters.net_bad += 1,
                }
            }
            if n.post_rx(mem, usize::MAX).map_err(driver)? > 0 {
                net.virtio.queue_notify(RX);
            }
        }
        drop(net);
        let mut bal = lock(&self.balloon)?;
        bal.virtio.with_device(|b, ctx| b.resume(ctx));
        if let Some(d) = g.balloon.as_mut() {
            d.reap(mem).map_err(driver)?;
        }
        Ok(())
    }

    /// The devices' section bodies, by idstr (for comparing two machines).
    pub fn section_bodies(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(vec![
            (
                format!("{NET_SLOT}/virtio-net"),
                to_bytes(&*lock(&self.net)?)?,
            ),
            (
                format!("{BLK_SLOT}/virtio-blk"),
                to_bytes(&*lock(&self.blk)?)?,
            ),
            (
                format!("{RNG_SLOT}/virtio-rng"),
                to_bytes(&*lock(&self.rng)?)?,
            ),
            (
                format!("{BALLOON_SLOT}/virtio-balloon"),
                to_bytes(&*lock(&self.balloon)?)?,
            ),
        ])
    }
}

/// What the destination's devices did with the source's guest after a
/// migration ([`Machine::virtio_resume`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VirtioVerdict {
    /// Block requests the stream carried in flight.
    pub blk_in_flight: usize,
    /// Of them, completed by the destination (each once, status OK).
    pub blk_completed_on_destination: usize,
    /// Every request the guest had submitted came back exactly once, OK.
    pub blk_exactly_once: bool,
    /// Sectors the guest wrote over the whole run.
    pub disk_sectors: usize,
    /// The disk image holds what the guest wrote, every sector.
    pub disk_matches: bool,
    /// Frames waiting in the transmit ring at switchover.
    pub net_unsent: usize,
    /// Frames the guest sent over the run / received back, in order.
    pub net_sent: u64,
    /// Frames received back in sequence.
    pub net_received: u64,
    /// Every frame arrived, once, in order.
    pub net_intact: bool,
    /// Pages the balloon holds on the destination (`actual`).
    pub balloon_pages: u32,
    /// The guest's counters after the destination's tick.
    pub counters: VirtioCounters,
}

impl VirtioVerdict {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.blk_exactly_once && self.disk_matches && self.net_intact
    }
}

impl Machine {
    /// This machine with virtio-net, virtio-blk (over the image at `disk`,
    /// created with [`DISK_SIZE`] bytes when missing or empty), virtio-rng
    /// and virtio-balloon at QEMU's slots; their rings use the top
    /// [`VIRTIO_AREA`] bytes of `pc.ram` (at least 8 MiB of RAM), which the
    /// memory workload leaves alone. [`Machine::boot`] starts their drivers;
    /// the guest workload drives them; [`Machine::registry`] registers them.
    pub fn with_virtio(mut self, disk: &Path) -> Result<Self> {
        let (mem, size) = {
            let ram = lock(&self.ram)?;
            let size = ram
                .get(RAM_BLOCK)
                .map(|b| b.used_length())
                .ok_or_else(|| Error::invalid(format!("no {RAM_BLOCK} block for virtio")))?;
            (ram.guest_memory(&[RAM_BLOCK]).map_err(Error::from)?, size)
        };
        self.virtio = Some(VirtioDevices::new(mem, size, disk)?);
        Ok(self)
    }

    /// The demo's machine: QEMU's pc RAM blocks with `ram_size` bytes of
    /// `pc.ram` and, with a `disk` and at least [`MIN_RAM`] of RAM, the
    /// virtio devices over the disk image there (both sides of a migration
    /// build the same machine from the same two values).
    pub fn demo(ram_size: u64, disk: Option<&Path>) -> Result<Self> {
        Self::demo_over(ram_size, disk, None)
    }

    /// [`Machine::demo`] with `pc.ram` in the file at `mem_path` when given
    /// (QEMU's `-object memory-backend-file,mem-path=...,share=on`; see
    /// [`RamBlock::from_file`](crate::ram::RamBlock::from_file)): the file's
    /// bytes are the guest's RAM, [`Machine::boot`] leaves them as they are.
    pub fn demo_over(ram_size: u64, disk: Option<&Path>, mem_path: Option<&Path>) -> Result<Self> {
        let m = Machine::qemu_pc(ram_size)?;
        if let Some(path) = mem_path {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|e| Error::invalid(format!("mem-path {}: {e}", path.display())))?;
            let mut ram = lock(&m.ram)?;
            let spec = ram
                .get(RAM_BLOCK)
                .map(|b| b.spec().clone())
                .ok_or_else(|| Error::invalid(format!("no {RAM_BLOCK} block")))?;
            ram.replace(crate::ram::RamBlock::from_file(spec, file).map_err(Error::from)?)
                .map_err(Error::from)?;
        }
        match disk {
            Some(d) if ram_size >= MIN_RAM => m.with_virtio(d),
            _ => Ok(m),
        }
    }

    /// The destination after switchover: takes the source's guest side as it
    /// was at switchover (`guest`), resumes the devices (in-flight block
    /// requests are submitted, waiting frames sent) and lets the guest reap
    /// once; then checks that every request came back exactly once, the
    /// disk holds what the guest wrote and every frame arrived once, in order.
    pub fn virtio_resume(&self, guest: &VirtioGuest) -> Result<VirtioVerdict> {
        let v = self
            .virtio
            .as_ref()
            .ok_or_else(|| Error::invalid("the machine has no virtio devices"))?;
        let mut g = guest.clone();
        let mem = v.mem.clone();
        let blk_in_flight = lock(&v.blk)?.virtio.device.in_flight().len();
        let net_unsent = {
            let n = lock(&v.net)?;
            let q = &n.virtio.core.queues[TX];
            let avail: u16 = if q.has_ring() {
                mem.read_obj(GuestAddress(q.avail() + 2)).unwrap_or(0)
            } else {
                0
            };
            usize::from(u16::from_le(avail).wrapping_sub(q.last_avail_idx()))
        };
        // Completions already in the used ring the guest had not reaped yet.
        let unreaped = g.blk.as_ref().map_or(0, |d| {
            let idx: u16 = mem.read_obj(GuestAddress(d.ring.used + 2)).unwrap_or(0);
            usize::from(u16::from_le(idx).wrapping_sub(d.used_seen))
        });
        let before = g.counters.blk_completed;
        v.complete_pending(&mut g, &mem)?;
        let pending = g.blk.as_ref().map_or(0, |d| d.pending().count());
        let c = g.counters.clone();
        let mut verdict = VirtioVerdict {
            blk_in_flight,
            blk_completed_on_destination: (c.blk_completed - before) as usize,
            blk_exactly_once: pending == 0
                && (c.blk_completed - before) as usize == blk_in_flight + unreaped
                && c.blk_completed == c.blk_submitted
                && c.blk_errors == 0
                && lock(&v.blk)?.virtio.device.in_flight().is_empty(),
            disk_sectors: g.expected.len(),
            disk_matches: false,
            net_unsent,
            net_sent: c.net_sent,
            net_received: c.net_received,
            net_intact: c.net_bad == 0 && c.net_received == c.net_sent,
            balloon_pages: lock(&v.balloon)?.virtio.device.actual,
            counters: c,
        };
        let file = std::fs::File::open(&v.disk)?;
        let mut buf = [0u8; 512];
        verdict.disk_matches = true;
        for s in 0..v.capacity {
            file.read_exact_at(&mut buf, s * 512)?;
            let want = g.expected.get(&s).map_or(&[0u8; 512][..], |d| &d[..]);
            if buf[..] != *want {
                verdict.disk_matches = false;
                break;
            }
        }
        *lock(&v.guest)? = g;
        Ok(verdict)
    }
}
