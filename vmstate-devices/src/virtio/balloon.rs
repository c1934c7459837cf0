//! virtio-balloon: the host asks the guest to give memory back
//! ([`VirtioBalloonSection::balloon`], QMP `balloon`), the guest puts page
//! frame numbers on the inflate queue (the host discards those pages: they
//! read as zeros afterwards) and takes them back through the deflate queue,
//! reports how far it got in the config field `actual`, and sends memory
//! statistics on the stats queue.
//!
//! As QEMU 7.2's `virtio-balloon-pci` on a `pc-i440fx-7.2` machine: three
//! queues of 128 (inflate, deflate, stats; free-page hinting and free-page
//! reporting are off by default, so their queues do not exist), the
//! `STATS_VQ` and `PAGE_POISON` features, a 16-byte config
//! (`num_pages`, `actual`, `free_page_hint_cmd_id`, `poison_val`) and no
//! MSI-X. Section `<pci-path>/virtio-balloon` (version 1) is the "virtio"
//! field alone ([`VirtioBalloonSection`]); the device part of that field is
//! QEMU's "virtio-balloon-device" v1:
//!
//! ```text
//! be32 num_pages | be32 actual
//! [subsection "virtio-balloon-device/free-page-report" v1: be32 cmd_id, be32 status]
//!                                   (when FREE_PAGE_HINT was negotiated)
//! [subsection "virtio-balloon-device/page-poison" v1: be32 poison_val]
//!                                   (when PAGE_POISON was negotiated)
//! ```
//!
//! Not migrated, as in QEMU: the set of inflated pages (the guest knows it;
//! the pages' contents travel with RAM) and the statistics buffer the device
//! holds. QEMU's destination gives that buffer back to the stats queue and
//! takes it again when the VM runs ([`VirtioBalloon::resume`]).

use std::collections::BTreeSet;

use bytes::{Buf, BufMut};
use virtio_bindings::virtio_config::{
    VIRTIO_F_ANY_LAYOUT, VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestAddress, GuestMemory};
use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{Result, VmState};

use super::core::{feature, VirtioCore};
use super::device::{DeviceContext, VirtioDeviceModel, VirtioPciDevice};
use super::element::Element;
use super::error::VirtioError;
use super::pci::{PciIdentity, VirtioPci};
use super::wire::{peek_subsection, read_subsection_header, write_subsection_header};
use super::GuestMem;

/// Inflate queue.
pub const INFLATE: usize = 0;
/// Deflate queue.
pub const DEFLATE: usize = 1;
/// Statistics queue.
pub const STATS: usize = 2;
/// Size of each queue.
pub const QUEUE_SIZE: u16 = 128;
/// Config space length (with PAGE_POISON offered, the whole struct).
pub const CONFIG_LEN: usize = 16;
/// Balloon pages are 4 KiB whatever the host page size.
pub const PFN_SHIFT: u32 = 12;
/// Bytes of one balloon page.
pub const BALLOON_PAGE_SIZE: u64 = 1 << PFN_SHIFT;

/// Feature bits of the balloon (virtio 1.x §5.5.3).
pub mod features {
    /// The host must be told before pages are used again.
    pub const MUST_TELL_HOST: u32 = 0;
    /// A statistics queue exists.
    pub const STATS_VQ: u32 = 1;
    /// Deflate when the guest runs out of memory.
    pub const DEFLATE_ON_OOM: u32 = 2;
    /// Free page hinting (a fourth queue; QEMU needs an iothread for it).
    pub const FREE_PAGE_HINT: u32 = 3;
    /// The guest tells the poison value it fills free pages with.
    pub const PAGE_POISON: u32 = 4;
    /// Free page reporting.
    pub const REPORTING: u32 = 5;
}

/// Features the device offers (QEMU 7.2 defaults: `page-poison` on, the
/// stats queue always).
pub const HOST_FEATURES: u64 = feature(features::STATS_VQ)
    | feature(features::PAGE_POISON)
    | feature(VIRTIO_F_NOTIFY_ON_EMPTY)
    | feature(VIRTIO_F_ANY_LAYOUT)
    | feature(VIRTIO_RING_F_INDIRECT_DESC)
    | feature(VIRTIO_RING_F_EVENT_IDX)
    | feature(VIRTIO_F_VERSION_1);

/// virtio-balloon-pci: class "other" (0xff), no MSI-X vectors.
pub const PCI_IDENTITY: PciIdentity = PciIdentity {
    virtio_id: 5,
    pci_device_id: 0x1002,
    class: 0x00ff,
    nvectors: 0,
};

/// Statistics tags the device knows (VIRTIO_BALLOON_S_NR).
pub const STATS_NR: usize = 10;
/// QMP's names of the statistics, by tag.
pub const STAT_NAMES: [&str; STATS_NR] = [
    "stat-swap-in",
    "stat-swap-out",
    "stat-major-faults",
    "stat-minor-faults",
    "stat-free-memory",
    "stat-total-memory",
    "stat-available-memory",
    "stat-disk-caches",
    "stat-htlb-pgalloc",
    "stat-htlb-pgfail",
];

/// The balloon device model.
#[derive(Debug)]
pub struct VirtioBalloon {
    /// Pages the host asks the guest to hold in the balloon.
    pub num_pages: u32,
    /// Pages the guest says it holds (written by the driver).
    pub actual: u32,
    /// The poison value the driver reported (PAGE_POISON).
    pub poison_val: u32,
    /// Free-page-hint command id (migrated only with FREE_PAGE_HINT).
    pub free_page_hint_cmd_id: u32,
    /// Free-page-hint status (migrated only with FREE_PAGE_HINT).
    pub free_page_hint_status: u32,
    inflated: BTreeSet<u64>,
    stats: [Option<u64>; STATS_NR],
    stats_elem: Option<Element>,
    inflate_requests: u64,
    deflate_requests: u64,
}

impl Default for VirtioBalloon {
    fn default() -> Self {
        VirtioBalloon {
            num_pages: 0,
            actual: 0,
            poison_val: 0,
            // VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN
            free_page_hint_cmd_id: 0x8000_0000,
            free_page_hint_status: 0,
            inflated: BTreeSet::new(),
            stats: [None; STATS_NR],
            stats_elem: None,
            inflate_requests: 0,
            deflate_requests: 0,
        }
    }
}

impl VirtioBalloon {
    /// Page frames (4 KiB) the guest gave up and has not taken back.
    pub fn inflated(&self) -> &BTreeSet<u64> {
        &self.inflated
    }

    /// Inflate and deflate buffers handled (each a list of frames).
    pub fn requests(&self) -> (u64, u64) {
        (self.inflate_requests, self.deflate_requests)
    }

    /// The last statistics the guest sent, by tag (`None`: not reported).
    pub fn stats(&self) -> &[Option<u64>; STATS_NR] {
        &self.stats
    }

    /// Whether the device holds the guest's statistics buffer.
    pub fn holds_stats_buffer(&self) -> bool {
        self.stats_elem.is_some()
    }

    /// Asks for fresh statistics: the held buffer goes back to the guest,
    /// which refills it (QEMU's stats poll timer). Returns whether a buffer
    /// was held.
    pub fn request_stats(&mut self, ctx: &mut DeviceContext<'_>) -> bool {
        let Some(e) = self.stats_elem.take() else {
            return false;
        };
        if let Ok(true) = ctx.core.queues[STATS].complete(ctx.mem, STATS, e.head as u16, 0) {
            ctx.notify_queue(STATS);
        }
        true
    }

    /// After a migration, when the VM runs (QEMU's `set_status` with the VM
    /// running): the statistics buffer the source held is still in use on
    /// the stats queue; it is given back to the avail ring and taken again.
    pub fn resume(&mut self, ctx: &mut DeviceContext<'_>) {
        if self.stats_elem.is_none()
            && ctx.core.running()
            && ctx.core.queues[STATS].inuse() > 0
            && ctx.core.queues[STATS].rewind(1)
        {
            self.receive_stats(ctx);
        }
    }

    fn frames(mem: &GuestMem, e: &Element) -> Vec<u32> {
        let n = (e.out_len() / 4).min(u64::from(u32::MAX)) as usize;
        let mut buf = vec![0u8; n * 4];
        if e.read_at(mem, 0, &mut buf).is_err() {
            return Vec::new();
        }
        buf.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    fn inflate_deflate(&mut self, ctx: &mut DeviceContext<'_>, queue: usize) {
        while let Some(chain) = ctx.core.queues[queue]
            .ring_mut()
            .pop_descriptor_chain(ctx.mem)
        {
            ctx.core.queues[queue].took();
            let e = Element::from_chain(chain);
            for pfn in Self::frames(ctx.mem, &e) {
                let pa = u64::from(pfn) << PFN_SHIFT;
                // Frames outside RAM are skipped, as QEMU does.
                if !ctx.mem.check_range(
                    GuestAddress(pa),
                    BALLOON_PAGE_SIZE as usize,
                    vm_memory::Permissions::ReadWrite,
                ) {
                    continue;
                }
                if queue == INFLATE {
                    // The host discards the page: it reads as zeros afterwards.
                    let _ = ctx
                        .mem
                        .write_slice(&[0u8; BALLOON_PAGE_SIZE as usize], GuestAddress(pa));
                    self.inflated.insert(u64::from(pfn));
                } else {
                    self.inflated.remove(&u64::from(pfn));
                }
            }
            if queue == INFLATE {
                self.inflate_requests += 1;
            } else {
                self.deflate_requests += 1;
            }
            if let Ok(true) = ctx.core.queues[queue].complete(ctx.mem, queue, e.head as u16, 0) {
                ctx.notify_queue(queue);
            }
        }
    }

    fn receive_stats(&mut self, ctx: &mut DeviceContext<'_>) {
        let Some(chain) = ctx.core.queues[STATS]
            .ring_mut()
            .pop_descriptor_chain(ctx.mem)
        else {
            return;
        };
        ctx.core.queues[STATS].took();
        let e = Element::from_chain(chain);
        // A driver that posts a second buffer gets the first one back.
        if let Some(old) = self.stats_elem.take() {
            if let Ok(true) = ctx.core.queues[STATS].complete(ctx.mem, STATS, old.head as u16, 0) {
                ctx.notify_queue(STATS);
            }
        }
        self.stats = [None; STATS_NR];
        let n = (e.out_len() / 10).min(1024) as usize;
        let mut buf = vec![0u8; n * 10];
        if e.read_at(ctx.mem, 0, &mut buf).is_ok() {
            for s in buf.chunks_exact(10) {
                let tag = usize::from(u16::from_le_bytes([s[0], s[1]]));
                let val = u64::from_le_bytes(s[2..10].try_into().unwrap_or([0; 8]));
                if let Some(slot) = self.stats.get_mut(tag) {
                    *slot = Some(val);
                }
            }
        }
        self.stats_elem = Some(e);
    }

    fn config_bytes(&self) -> [u8; CONFIG_LEN] {
        let mut c = [0u8; CONFIG_LEN];
        c[0..4].copy_from_slice(&self.num_pages.to_le_bytes());
        c[4..8].copy_from_slice(&self.actual.to_le_bytes());
        // free_page_hint_cmd_id: only with hinting requested (never offered here).
        c[12..16].copy_from_slice(&self.poison_val.to_le_bytes());
        c
    }
}

impl VirtioDeviceModel for VirtioBalloon {
    fn read_config(&self, c: &mut [u8]) {
        let cfg = self.config_bytes();
        let n = c.len().min(CONFIG_LEN);
        c[..n].copy_from_slice(&cfg[..n]);
    }

    fn write_config(&mut self, core: &VirtioCore, offset: usize, data: &[u8]) {
        let mut cfg = self.config_bytes();
        for (i, &b) in data.iter().enumerate() {
            if let Some(slot) = cfg.get_mut(offset + i) {
                *slot = b;
            }
        }
        let word = |at: usize| u32::from_le_bytes(cfg[at..at + 4].try_into().unwrap_or([0; 4]));
        self.actual = word(4);
        self.poison_val = if core.has_feature(features::PAGE_POISON) {
            word(12)
        } else {
            0
        };
    }

    fn queue_notify(&mut self, ctx: &mut DeviceContext<'_>, queue: usize) {
        match queue {
            INFLATE | DEFLATE => self.inflate_deflate(ctx, queue),
            _ => self.receive_stats(ctx),
        }
    }

    fn reset(&mut self) {
        // The held stats buffer belonged to the reset driver.
        self.stats_elem = None;
        self.poison_val = 0;
    }

    fn save_device<B: BufMut>(&self, core: &VirtioCore, w: &mut Writer<B>) -> Result<()> {
        w.write_u32(self.num_pages)?;
        w.write_u32(self.actual)?;
        if core.has_feature(features::FREE_PAGE_HINT) {
            write_subsection_header(w, "virtio-balloon-device/free-page-report", 1)?;
            w.write_u32(self.free_page_hint_cmd_id)?;
            w.write_u32(self.free_page_hint_status)?;
        }
        if core.has_feature(features::PAGE_POISON) {
            write_subsection_header(w, "virtio-balloon-device/page-poison", 1)?;
            w.write_u32(self.poison_val)?;
        }
        Ok(())
    }

    fn load_device<B: Buf>(
        &mut self,
        _core: &VirtioCore,
        _mem: &GuestMem,
        r: &mut Reader<B>,
    ) -> Result<()> {
        let num_pages = r.read_u32()?;
        let actual = r.read_u32()?;
        let (mut hint, mut poison) = (None, None);
        while let Some(name) = peek_subsection(r, "virtio-balloon-device")? {
            match name.as_str() {
                "virtio-balloon-device/free-page-report" => {
                    read_subsection_header(r, 1)?;
                    hint = Some((r.read_u32()?, r.read_u32()?));
                }
                "virtio-balloon-device/page-poison" => {
                    read_subsection_header(r, 1)?;
                    poison = Some(r.read_u32()?);
                }
                _ => return Err(VirtioError::UnknownSubsection(name).into()),
            }
        }
        self.num_pages = num_pages;
        self.actual = actual;
        if let Some((id, status)) = hint {
            self.free_page_hint_cmd_id = id;
            self.free_page_hint_status = status;
        }
        self.poison_val = poison.unwrap_or(0);
        // The source's held statistics buffer is in use on the stats queue;
        // `resume` takes it again.
        self.stats_elem = None;
        Ok(())
    }
}

/// The "virtio-balloon" section body (version 1): one field "virtio".
#[derive(VmState, Debug)]
#[vmstate(name = "virtio-balloon", version = 1, minimum_version = 1)]
pub struct VirtioBalloonSection {
    /// The device with its transport.
    pub virtio: VirtioPciDevice<VirtioBalloon>,
}

impl VirtioBalloonSection {
    /// A freshly realized virtio-balloon-pci for the guest RAM `mem`.
    pub fn new(mem: GuestMem) -> Self {
        let core = VirtioCore::new(5, HOST_FEATURES, CONFIG_LEN, &[QUEUE_SIZE; 3]);
        let transport = VirtioPci::new(PCI_IDENTITY, 3);
        VirtioBalloonSection {
            virtio: VirtioPciDevice::new(core, transport, VirtioBalloon::default(), mem),
        }
    }

    /// Guest RAM in bytes (what the balloon target is measured against).
    pub fn ram_size(&self) -> u64 {
        use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};
        self.virtio.mem.iter().map(|r| r.len()).sum()
    }

    /// QMP `balloon`: asks the guest to shrink to `target` bytes of RAM
    /// (capped at the RAM size; 0 is ignored, as QEMU ignores it), so the
    /// balloon should hold `(ram - target) / 4 KiB` pages. The driver is told
    /// through a config-change interrupt once it is running.
    ///
    /// ```
    /// use vm_memory::{GuestAddress, GuestMemoryMmap};
    /// use vmstate_devices::virtio::balloon::VirtioBalloonSection;
    ///
    /// let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 32 << 20)]).unwrap();
    /// let mut b = VirtioBalloonSection::new(mem);
    /// b.balloon(24 << 20);
    /// assert_eq!(b.virtio.device.num_pages, 2048);
    /// b.request(16);
    /// assert_eq!(b.virtio.device.num_pages, 16);
    /// ```
    pub fn balloon(&mut self, target: u64) {
        let ram = self.ram_size();
        let target = target.min(ram);
        if target == 0 {
            return;
        }
        let pages = ((ram - target) >> PFN_SHIFT).min(u64::from(u32::MAX)) as u32;
        self.request(pages);
    }

    /// Asks the guest to hold `num_pages` 4 KiB pages in the balloon.
    pub fn request(&mut self, num_pages: u32) {
        self.virtio.device.num_pages = num_pages;
        self.virtio.config_changed();
    }

    /// QMP `query-balloon`'s `actual`: RAM bytes the guest has left.
    pub fn actual_bytes(&self) -> u64 {
        self.ram_size()
            .saturating_sub(u64::from(self.virtio.device.actual) << PFN_SHIFT)
    }
}
