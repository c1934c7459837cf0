//! RAMBlocks: named guest memory in QEMU's RAM-list order, each backed by a
//! rust-vmm `vm-memory` mmap region with an `AtomicBitmap`, so writes through
//! the API are dirty-tracked the way rust-vmm VMMs already track them.

use std::sync::Arc;

use vm_memory::bitmap::AtomicBitmap;
use vm_memory::{
    Bytes, GuestAddress, GuestMemoryRegion, GuestRegionMmap, MemoryRegionAddress, VolatileSlice,
};

use vmstate_runtime::savevm::SharedMemory;

use super::error::{RamError, RamErrorKind};
use super::protocol::{BlockSpecs, BlockTable, X86_TARGET_PAGE_SIZE};

/// The vm-memory region type that backs a block.
pub type RamRegion = GuestRegionMmap<AtomicBitmap>;

/// How a block is declared (before its memory exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamBlockSpec {
    /// QEMU's idstr (e.g. `pc.ram`, `/rom@etc/acpi/tables`).
    pub idstr: String,
    /// Bytes in use now.
    pub used_length: u64,
    /// Bytes mapped; a resizeable block may grow up to it.
    pub max_length: u64,
    /// Whether a migration stream may change `used_length`.
    pub resizeable: bool,
    /// ROM-like: the guest cannot write it (the migration still carries it).
    pub read_only: bool,
    /// The block's page size.
    pub page_size: u64,
    /// Guest physical address of the block's memory region.
    pub gpa: u64,
}

impl RamBlockSpec {
    /// A fixed-size, writable block of `len` bytes with 4 KiB pages.
    pub fn ram(idstr: &str, len: u64) -> Self {
        RamBlockSpec {
            idstr: idstr.to_string(),
            used_length: len,
            max_length: len,
            resizeable: false,
            read_only: false,
            page_size: X86_TARGET_PAGE_SIZE,
            gpa: 0,
        }
    }

    /// A fixed-size ROM-like block.
    pub fn rom(idstr: &str, len: u64) -> Self {
        RamBlockSpec {
            read_only: true,
            ..Self::ram(idstr, len)
        }
    }

    /// A resizeable ROM-like block (QEMU's fw_cfg blobs such as the ACPI tables).
    pub fn resizeable_rom(idstr: &str, len: u64, max: u64) -> Self {
        RamBlockSpec {
            resizeable: true,
            max_length: max,
            ..Self::rom(idstr, len)
        }
    }

    /// The same block at guest address `gpa`.
    pub fn at(mut self, gpa: u64) -> Self {
        self.gpa = gpa;
        self
    }
}

/// One RAMBlock: its declaration and its memory (a region of `max_length`
/// bytes, of which the first `used_length` are in use).
#[derive(Debug, Clone)]
pub struct RamBlock {
    spec: RamBlockSpec,
    region: Arc<RamRegion>,
}

/// A block's mapping, shared with the stream (see [`RamBlock::shared_memory`]).
struct BlockMemory(Arc<RamRegion>);

// SAFETY: a `GuestRegionMmap` maps its memory when it is built and unmaps it
// only when it is dropped, and `BlockMemory` holds it (an `Arc`), so
// `as_ptr()..as_ptr() + len()` stays mapped, at the same address and length,
// for as long as the value lives. vm-memory maps guest memory readable
// (`MmapRegion`'s protection is PROT_READ | PROT_WRITE unless its builder was
// told otherwise, and every RAM block is read by the RAM handler already).
#[allow(unsafe_code)]
unsafe impl SharedMemory for BlockMemory {
    fn host_range(&self) -> (usize, usize) {
        let mapping: &vm_memory::MmapRegion<AtomicBitmap> = &self.0;
        (mapping.as_ptr() as usize, mapping.size())
    }
}

fn mem_err(block: &str, e: impl std::fmt::Display) -> RamError {
    RamError::new(
        RamErrorKind::Memory(format!("RAMBlock \"{block}\": {e}")),
        0,
    )
}

impl RamBlock {
    /// A block with fresh anonymous memory (zero-filled), advised for
    /// transparent huge pages as QEMU advises every anonymous RAMBlock
    /// ([`advise_hugepages`](Self::advise_hugepages)).
    pub fn new(spec: RamBlockSpec) -> Result<Self, RamError> {
        Self::check_spec(&spec)?;
        let region = RamRegion::from_range(GuestAddress(spec.gpa), spec.max_length as usize, None)
            .map_err(|e| mem_err(&spec.idstr, e))?;
        let block = RamBlock {
            spec,
            region: Arc::new(region),
        };
        // Only advice: where THP is off (or "never") the block works the same
        // with 4 KiB pages.
        let _ = block.advise_hugepages();
        Ok(block)
    }

    /// A block over a region the VMM already has (no copy): `region` must span
    /// at least `max_length` bytes.
    pub fn from_region(spec: RamBlockSpec, region: Arc<RamRegion>) -> Result<Self, RamError> {
        Self::check_spec(&spec)?;
        if region.len() < spec.max_length {
            return Err(mem_err(
                &spec.idstr,
                format_args!(
                    "region of {:#x} bytes is smaller than max_length {:#x}",
                    region.len(),
                    spec.max_length
                ),
            ));
        }
        Ok(RamBlock { spec, region })
    }

    /// A block over the first `max_length` bytes of `file`, mapped shared
    /// (QEMU's `memory-backend-file` with `share=on`): the file's bytes are
    /// the guest's memory, and what the guest or a load writes lands in the
    /// file. An empty file is sized to `max_length` (as QEMU sizes a new
    /// `mem-path`); a non-empty one must be at least that long.
    ///
    /// ```
    /// use vmstate_devices::ram::{RamBlock, RamBlockSpec};
    ///
    /// let file = tempfile::tempfile().unwrap();
    /// let block = RamBlock::from_file(RamBlockSpec::ram("pc.ram", 1 << 20), file).unwrap();
    /// assert!(block.is_file_backed());
    /// block.write(0x10, b"in the file").unwrap();
    /// ```
    pub fn from_file(spec: RamBlockSpec, file: std::fs::File) -> Result<Self, RamError> {
        Self::check_spec(&spec)?;
        let len = file
            .metadata()
            .map_err(|e| mem_err(&spec.idstr, format_args!("backing file: {e}")))?
            .len();
        if len == 0 {
            file.set_len(spec.max_length)
                .map_err(|e| mem_err(&spec.idstr, format_args!("sizing the backing file: {e}")))?;
        } else if len < spec.max_length {
            return Err(mem_err(
                &spec.idstr,
                format_args!(
                    "backing file holds {len:#x} bytes, less than max_length {:#x}",
                    spec.max_length
                ),
            ));
        }
        let region = RamRegion::from_range(
            GuestAddress(spec.gpa),
            spec.max_length as usize,
            Some(vm_memory::FileOffset::new(file, 0)),
        )
        .map_err(|e| mem_err(&spec.idstr, e))?;
        Ok(RamBlock {
            spec,
            region: Arc::new(region),
        })
    }

    /// Whether the block's memory is a file's (see [`from_file`](Self::from_file)).
    pub fn is_file_backed(&self) -> bool {
        let mapping: &vm_memory::MmapRegion<AtomicBitmap> = &self.region;
        mapping.file_offset().is_some()
    }

    fn check_spec(spec: &RamBlockSpec) -> Result<(), RamError> {
        let ps = spec.page_size;
        let ok = ps.is_power_of_two()
            && spec.used_length.is_multiple_of(ps)
            && spec.max_length.is_multiple_of(ps)
            && spec.used_length <= spec.max_length
            && (spec.resizeable || spec.used_length == spec.max_length)
            && !spec.idstr.is_empty()
            && spec.idstr.len() <= 255;
        if ok {
            Ok(())
        } else {
            Err(mem_err(
                &spec.idstr,
                format_args!("inconsistent declaration {spec:?}"),
            ))
        }
    }

    /// The idstr.
    pub fn idstr(&self) -> &str {
        &self.spec.idstr
    }

    /// The declaration, with the current used_length.
    pub fn spec(&self) -> &RamBlockSpec {
        &self.spec
    }

    /// Bytes in use.
    pub fn used_length(&self) -> u64 {
        self.spec.used_length
    }

    /// Target pages in use (of the block's page size).
    pub fn pages(&self) -> u64 {
        self.spec.used_length / self.spec.page_size
    }

    /// The backing vm-memory region (shared with the VMM).
    pub fn region(&self) -> &Arc<RamRegion> {
        &self.region
    }

    /// The block's memory as a stream may reference it: the PAGE payloads of
    /// a save are [`MemorySegment`](vmstate_runtime::savevm::MemorySegment)s
    /// of it, read when the transport takes them (no snapshot copy).
    pub fn shared_memory(&self) -> Arc<dyn SharedMemory> {
        Arc::new(BlockMemory(Arc::clone(&self.region)))
    }

    /// vm-memory's dirty bitmap of this block's region.
    pub fn dirty_bitmap(&self) -> &AtomicBitmap {
        let mapping: &vm_memory::MmapRegion<AtomicBitmap> = &self.region;
        mapping.bitmap()
    }

    /// Changes used_length (QEMU's `qemu_ram_resize`): only a resizeable block,
    /// only up to max_length. Bytes beyond the new length are cleared so a
    /// later grow starts from zero.
    pub fn resize(&mut self, len: u64) -> Result<(), RamError> {
        let s = &self.spec;
        if len == s.used_length {
            return Ok(());
        }
        if !s.resizeable {
            return Err(RamError::new(
                RamErrorKind::LengthMismatch {
                    block: s.idstr.clone(),
                    local: s.used_length,
                    stream: len,
                },
                0,
            ));
        }
        if len > s.max_length || !len.is_multiple_of(s.page_size) {
            return Err(RamError::new(
                RamErrorKind::ResizeBeyondMax {
                    block: s.idstr.clone(),
                    max: s.max_length,
                    stream: len,
                },
                0,
            ));
        }
        if len < s.used_length {
            let tail = self
                .slice(len, (s.used_length - len) as usize)
                .map_err(|e| mem_err(&s.idstr, e))?;
            tail.copy_from(&vec![0u8; tail.len()]);
        }
        self.spec.used_length = len;
        Ok(())
    }

    /// A volatile view of `len` bytes at `offset` (within used_length).
    pub fn slice(
        &self,
        offset: u64,
        len: usize,
    ) -> Result<VolatileSlice<'_, vm_memory::bitmap::BS<'_, AtomicBitmap>>, RamError> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.spec.used_length)
        {
            return Err(RamError::new(
                RamErrorKind::OffsetBeyondUsed {
                    block: self.spec.idstr.clone(),
                    offset,
                    used: self.spec.used_length,
                },
                0,
            ));
        }
        self.region
            .get_slice(MemoryRegionAddress(offset), len)
            .map_err(|e| mem_err(&self.spec.idstr, e))
    }

    /// Copies `buf.len()` bytes at `offset` out of the block.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), RamError> {
        self.slice(offset, buf.len())?.copy_to(buf);
        Ok(())
    }

    /// Writes `buf` at `offset`, marking the pages dirty in vm-memory's bitmap
    /// (the way a device or the VMM writes guest memory).
    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<(), RamError> {
        self.slice(offset, buf.len())?;
        self.region
            .write_slice(buf, MemoryRegionAddress(offset))
            .map_err(|e| mem_err(&self.spec.idstr, e))
    }

    /// Faults `len` bytes at `offset` (rounded out to host pages, clipped to
    /// the region) in for writing, without changing a byte: Linux's
    /// `MADV_POPULATE_WRITE` (5.14 or later). The destination does it on a
    /// helper thread while the stream loads
    /// ([`RamSectionConfig::prefault`](super::RamSectionConfig::prefault)), so
    /// the first-touch page faults (zeroing each page in the kernel) are not
    /// taken one at a time by the loader. Fails on a kernel without it, on a
    /// read-only mapping, or when the memory cannot be had (`ENOMEM`); the
    /// memory is then as before, and loading faults it in as usual.
    ///
    /// ```
    /// use vmstate_devices::ram::{RamBlock, RamBlockSpec};
    ///
    /// let block = RamBlock::new(RamBlockSpec::ram("pc.ram", 1 << 20)).unwrap();
    /// block.write(0x1000, b"kept").unwrap();
    /// if block.populate(0, 1 << 20).is_ok() {
    ///     let mut buf = [0u8; 4];
    ///     block.read(0x1000, &mut buf).unwrap();
    ///     assert_eq!(&buf, b"kept");
    /// }
    /// ```
    pub fn populate(&self, offset: u64, len: u64) -> Result<(), RamError> {
        let region_len = self.region.len();
        let start = offset.min(region_len) & !(HOST_PAGE - 1);
        let end = offset
            .saturating_add(len)
            .min(region_len)
            .next_multiple_of(HOST_PAGE)
            .min(region_len);
        if start >= end {
            return Ok(());
        }
        let mapping: &vm_memory::MmapRegion<AtomicBitmap> = &self.region;
        madvise(
            mapping,
            start as usize,
            (end - start) as usize,
            Advice::PopulateWrite,
        )
        .map_err(|e| {
            mem_err(
                &self.spec.idstr,
                format_args!("prefault {start:#x}..{end:#x}: {e}"),
            )
        })
    }

    /// Asks the kernel to back the block with transparent huge pages
    /// (`MADV_HUGEPAGE` over the whole mapping), as QEMU does for guest RAM.
    /// A destination's first touch of fresh memory then takes one fault per
    /// 2 MiB instead of one per 4 KiB, which is most of what loading into
    /// never-used memory costs (the kernel zeroes the same bytes either way).
    /// [`RamBlock::new`] calls it; a VMM handing over its own region
    /// ([`from_region`](Self::from_region)) decides for itself. Fails where
    /// THP is not built in or the mapping cannot take it; the memory is then
    /// as before.
    ///
    /// ```
    /// use vmstate_devices::ram::{RamBlock, RamBlockSpec};
    ///
    /// let block = RamBlock::new(RamBlockSpec::ram("pc.ram", 4 << 20)).unwrap();
    /// let _ = block.advise_hugepages(); // advice only: contents unchanged
    /// let mut b = [1u8; 4];
    /// block.read(0, &mut b).unwrap();
    /// assert_eq!(b, [0; 4]);
    /// ```
    pub fn advise_hugepages(&self) -> Result<(), RamError> {
        let mapping: &vm_memory::MmapRegion<AtomicBitmap> = &self.region;
        madvise(mapping, 0, mapping.size(), Advice::HugePage).map_err(|e| {
            mem_err(
                &self.spec.idstr,
                format_args!("MADV_HUGEPAGE over {:#x} bytes: {e}", mapping.size()),
            )
        })
    }

    /// The first `used_length` bytes, copied (for checks and checksums).
    pub fn to_vec(&self) -> Result<Vec<u8>, RamError> {
        let mut v = vec![0; self.spec.used_length as usize];
        self.read(0, &mut v)?;
        Ok(v)
    }
}

/// The host page size [`RamBlock::populate`] rounds to (the mmap granule; a
/// region's start is a multiple of it).
const HOST_PAGE: u64 = 4096;

/// The two pieces of advice the RAM model gives the kernel.
#[derive(Debug, Clone, Copy)]
enum Advice {
    /// `MADV_POPULATE_WRITE`: fault the range in for writing, changing no byte.
    PopulateWrite,
    /// `MADV_HUGEPAGE`: back the range with transparent huge pages where it can.
    HugePage,
}

/// `madvise(advice)` over `len` bytes at `offset` of `mapping`: the one
/// `unsafe` call of the RAM model outside `ram::kvm`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // one reviewed madvise; see SAFETY below and the tests `populate_*`, `hugepage_*`.
fn madvise(
    mapping: &vm_memory::MmapRegion<AtomicBitmap>,
    offset: usize,
    len: usize,
    advice: Advice,
) -> std::io::Result<()> {
    if offset
        .checked_add(len)
        .is_none_or(|end| end > mapping.size())
    {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    let flag = match advice {
        Advice::PopulateWrite => libc::MADV_POPULATE_WRITE,
        Advice::HugePage => libc::MADV_HUGEPAGE,
    };
    // The address is only formed, never dereferenced here.
    let addr = mapping.as_ptr().wrapping_add(offset);
    // SAFETY: `addr..addr + len` lies inside `mapping` (checked above), which
    // `&mapping` keeps mapped for the whole call; `offset` is a multiple of
    // the host page and the mapping starts on one (mmap), as madvise needs.
    // Neither advice changes a byte of the mapping or invalidates any pointer
    // or reference held elsewhere (vm-memory's slices, other threads'
    // accesses): MADV_POPULATE_WRITE only faults pages in as a write access
    // would, without writing (present pages stay as they are, missing
    // anonymous pages appear as the zeros they already read as);
    // MADV_HUGEPAGE only sets a flag on the VMA so later faults (and
    // khugepaged) may use 2 MiB pages, whose contents are the same bytes.
    // Nothing is unmapped or remapped, and no Rust memory is read. A failure
    // (old kernel: EINVAL, read-only mapping, ENOMEM) leaves the mapping as
    // it was.
    let rc = unsafe { libc::madvise(addr.cast(), len, flag) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn madvise(
    _mapping: &vm_memory::MmapRegion<AtomicBitmap>,
    _offset: usize,
    _len: usize,
    _advice: Advice,
) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// RAMBlocks in QEMU's RAM-list order (the MEM_SIZE list order).
///
/// ```
/// use vmstate_devices::ram::{RamBlockList, RamBlockSpec};
///
/// let ram = RamBlockList::new(vec![
///     RamBlockSpec::ram("pc.ram", 1 << 20),
///     RamBlockSpec::rom("pc.bios", 64 << 10),
/// ])
/// .unwrap();
/// let block = ram.get("pc.ram").unwrap();
/// block.write(0x2000, b"hello").unwrap();
/// assert!(block.dirty_bitmap().is_addr_set(0x2000));
/// let mut buf = [0u8; 5];
/// block.read(0x2000, &mut buf).unwrap();
/// assert_eq!(&buf, b"hello");
/// ```
#[derive(Debug, Clone, Default)]
pub struct RamBlockList {
    blocks: Vec<RamBlock>,
}

impl RamBlockList {
    /// Blocks with fresh memory, in the given order.
    pub fn new(specs: Vec<RamBlockSpec>) -> Result<Self, RamError> {
        Self::from_blocks(
            specs
                .into_iter()
                .map(RamBlock::new)
                .collect::<Result<_, _>>()?,
        )
    }

    /// Blocks already made (e.g. over the VMM's regions), in RAM-list order.
    pub fn from_blocks(blocks: Vec<RamBlock>) -> Result<Self, RamError> {
        for (i, b) in blocks.iter().enumerate() {
            if blocks[..i].iter().any(|o| o.idstr() == b.idstr()) {
                return Err(mem_err(b.idstr(), "declared twice"));
            }
        }
        Ok(RamBlockList { blocks })
    }

    /// Puts `block` in place of the block of the same idstr, which must be
    /// declared the same way (sizes, page size, flags): e.g. guest RAM a VMM
    /// keeps in a file or memfd, in a list [`qemu_pc`](Self::qemu_pc) made.
    ///
    /// ```
    /// use vmstate_devices::ram::{RamBlock, RamBlockList, RamBlockSpec};
    ///
    /// let mut ram = RamBlockList::qemu_pc(1 << 20, false).unwrap();
    /// let spec = ram.get("pc.ram").unwrap().spec().clone();
    /// let file = tempfile::tempfile().unwrap();
    /// ram.replace(RamBlock::from_file(spec, file).unwrap()).unwrap();
    /// assert!(ram.get("pc.ram").unwrap().is_file_backed());
    /// assert!(ram.replace(RamBlock::new(RamBlockSpec::ram("pc.ram", 4096)).unwrap()).is_err());
    /// ```
    pub fn replace(&mut self, block: RamBlock) -> Result<(), RamError> {
        let slot = self
            .blocks
            .iter_mut()
            .find(|b| b.idstr() == block.idstr())
            .ok_or_else(|| mem_err(block.idstr(), "no such block to replace"))?;
        if slot.spec() != block.spec() {
            return Err(mem_err(
                block.idstr(),
                format_args!(
                    "declared as {:?}, the replacement as {:?}",
                    slot.spec(),
                    block.spec()
                ),
            ));
        }
        *slot = block;
        Ok(())
    }

    /// QEMU 7.2's `pc` machine blocks as its streams list them (the fixtures of
    /// `tests/fixtures/qemu-7.2`): `ram_size` bytes of `pc.ram`, the BIOS, the
    /// option-ROM area, the fw_cfg ACPI blobs (resizeable, with QEMU's maximum
    /// sizes) and, with `virtio_net_rom`, the virtio-net-pci option ROM of the
    /// device at 0000:00:02.0. RAM-list order: by max_length, largest first.
    pub fn qemu_pc(ram_size: u64, virtio_net_rom: bool) -> Result<Self, RamError> {
        let mut specs = vec![
            RamBlockSpec::ram("pc.ram", ram_size),
            // fw_cfg blob: 128 KiB in use, room for 2 MiB of tables.
            RamBlockSpec::resizeable_rom("/rom@etc/acpi/tables", 0x20000, 0x200000),
            RamBlockSpec::rom("pc.bios", 0x40000).at(0xfffc_0000),
            RamBlockSpec::rom("pc.rom", 0x20000).at(0xc0000),
            RamBlockSpec::resizeable_rom("/rom@etc/table-loader", 0x1000, 0x10000),
            RamBlockSpec::resizeable_rom("/rom@etc/acpi/rsdp", 0x1000, 0x1000),
        ];
        if virtio_net_rom {
            specs.insert(
                3,
                RamBlockSpec::rom("0000:00:02.0/virtio-net-pci.rom", 0x40000),
            );
        }
        Self::new(specs)
    }

    /// The blocks, in order.
    pub fn blocks(&self) -> &[RamBlock] {
        &self.blocks
    }

    /// Block `index`, mutably (to resize it).
    pub fn block_mut(&mut self, index: usize) -> &mut RamBlock {
        &mut self.blocks[index]
    }

    /// The block called `idstr`.
    pub fn get(&self, idstr: &str) -> Option<&RamBlock> {
        self.blocks.iter().find(|b| b.idstr() == idstr)
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether there is no block.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// A `GuestMemoryMmap` over the blocks called `names` (each at its GPA,
    /// sharing the blocks' regions and dirty bitmaps): what a VMM's vCPUs and
    /// devices access guest RAM through, so their writes are logged for migration.
    ///
    /// ```
    /// use vm_memory::{Bytes, GuestAddress};
    /// use vmstate_devices::ram::{RamBlockList, RamBlockSpec};
    ///
    /// let ram = RamBlockList::new(vec![RamBlockSpec::ram("pc.ram", 1 << 20)]).unwrap();
    /// let mem = ram.guest_memory(&["pc.ram"]).unwrap();
    /// mem.write_obj(0x1234_5678u32, GuestAddress(0x3000)).unwrap();
    /// assert!(ram.get("pc.ram").unwrap().dirty_bitmap().is_addr_set(0x3000));
    /// ```
    pub fn guest_memory(
        &self,
        names: &[&str],
    ) -> Result<vm_memory::GuestMemoryMmap<AtomicBitmap>, RamError> {
        let regions = names
            .iter()
            .map(|n| {
                self.get(n)
                    .map(|b| b.region.clone())
                    .ok_or_else(|| mem_err(n, "no such block"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        vm_memory::GuestMemoryMmap::from_arc_regions(regions)
            .map_err(|e| mem_err(names.first().copied().unwrap_or(""), e))
    }

    /// The declarations alone (current used_lengths), e.g. to decode a stream
    /// against this block set without touching its memory.
    pub fn specs(&self) -> BlockSpecs {
        BlockSpecs(self.blocks.iter().map(|b| b.spec.clone()).collect())
    }

    /// Sum of used_length.
    pub fn total_used(&self) -> u64 {
        self.blocks.iter().map(RamBlock::used_length).sum()
    }
}

impl BlockTable for RamBlockList {
    fn find(&self, idstr: &[u8]) -> Option<usize> {
        self.blocks
            .iter()
            .position(|b| b.idstr().as_bytes() == idstr)
    }

    fn limits(&self, index: usize) -> &RamBlockSpec {
        &self.blocks[index].spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vmm_region_is_used_in_place() {
        let region =
            Arc::new(RamRegion::from_range(GuestAddress(0x10_0000), 8 * 4096, None).unwrap());
        region
            .write_slice(b"from the vmm", MemoryRegionAddress(0x1000))
            .unwrap();
        let spec = RamBlockSpec::ram("pc.ram", 8 * 4096).at(0x10_0000);
        let block = RamBlock::from_region(spec.clone(), region.clone()).unwrap();
        let mut buf = [0u8; 12];
        block.read(0x1000, &mut buf).unwrap();
        assert_eq!(&buf, b"from the vmm");
        // Same memory, same dirty log.
        block.write(0x3000, b"x").unwrap();
        let mapping: &vm_memory::MmapRegion<AtomicBitmap> = &region;
        assert!(mapping.bitmap().is_addr_set(0x3000));
        // A region smaller than max_length is refused.
        let big = RamBlockSpec::ram("pc.ram", 16 * 4096);
        assert!(RamBlock::from_region(big, region).is_err());
    }

    /// Resident bytes of the mapping at `addr` (from /proc/self/smaps), or
    /// `None` where that cannot be read.
    #[cfg(target_os = "linux")]
    fn resident_kib(addr: usize) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) =
                        (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                    {
                        inside = (lo..hi).contains(&addr);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(v) = line.strip_prefix("Rss:") {
                    return v.trim().trim_end_matches("kB").trim().parse().ok();
                }
            }
        }
        None
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn populate_faults_memory_in_and_changes_no_byte() {
        const LEN: u64 = 8 << 20;
        let block = RamBlock::new(RamBlockSpec::ram("pc.ram", LEN)).unwrap();
        let mapping: &vm_memory::MmapRegion<AtomicBitmap> = block.region();
        let addr = mapping.as_ptr() as usize;
        block.write(0x5000, b"before").unwrap();
        block.write(LEN - 6, b"at end").unwrap();
        let before = resident_kib(addr);
        // Unaligned bounds round out to host pages; beyond the region clips.
        match block.populate(0x123, LEN) {
            Ok(()) => {
                if let (Some(b), Some(a)) = (before, resident_kib(addr)) {
                    assert!(a >= b + (LEN >> 10) / 2, "resident {b} KiB -> {a} KiB");
                }
            }
            // A kernel before 5.14 has no MADV_POPULATE_WRITE.
            Err(e) => println!("populate unsupported here: {e}"),
        }
        let all = block.to_vec().unwrap();
        assert_eq!(&all[0x5000..0x5006], b"before");
        assert_eq!(&all[(LEN - 6) as usize..], b"at end");
        let other = all.iter().filter(|b| **b != 0).count();
        assert_eq!(other, 12, "only the written bytes are non-zero");
        // Empty and out-of-range requests do nothing.
        block.populate(LEN, 4096).unwrap();
        block.populate(0, 0).unwrap();
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn hugepage_advice_keeps_every_byte() {
        const LEN: u64 = 8 << 20;
        let block = RamBlock::new(RamBlockSpec::ram("pc.ram", LEN)).unwrap();
        block.write(0x1f_ffff, b"x").unwrap();
        block.write(LEN - 4, b"tail").unwrap();
        // Advising again (new() already did) and then faulting all of it in
        // must leave the written bytes and zeros elsewhere.
        match block.advise_hugepages() {
            Ok(()) => {}
            Err(e) => println!("MADV_HUGEPAGE unsupported here: {e}"),
        }
        let _ = block.populate(0, LEN);
        let all = block.to_vec().unwrap();
        assert_eq!(all[0x1f_ffff], b'x');
        assert_eq!(&all[(LEN - 4) as usize..], b"tail");
        assert_eq!(all.iter().filter(|b| **b != 0).count(), 5);
    }

    #[test]
    fn resize_rules() {
        let mut fixed = RamBlock::new(RamBlockSpec::rom("pc.bios", 4 * 4096)).unwrap();
        assert!(matches!(
            fixed.resize(2 * 4096).unwrap_err().kind(),
            RamErrorKind::LengthMismatch { .. }
        ));
        let mut blob = RamBlock::new(RamBlockSpec::resizeable_rom(
            "/rom@etc/acpi/tables",
            4 * 4096,
            8 * 4096,
        ))
        .unwrap();
        blob.write(3 * 4096, &[7; 16]).unwrap();
        blob.resize(2 * 4096).unwrap();
        assert!(
            blob.read(3 * 4096, &mut [0; 1]).is_err(),
            "beyond used_length"
        );
        // Growing again shows zeros where the old bytes were.
        blob.resize(8 * 4096).unwrap();
        let mut back = [1u8; 16];
        blob.read(3 * 4096, &mut back).unwrap();
        assert_eq!(back, [0; 16]);
        assert!(matches!(
            blob.resize(9 * 4096).unwrap_err().kind(),
            RamErrorKind::ResizeBeyondMax { .. }
        ));
    }

    #[test]
    fn declarations_are_checked() {
        assert!(RamBlock::new(RamBlockSpec::ram("odd", 4096 + 1)).is_err());
        assert!(RamBlock::new(RamBlockSpec::ram("", 4096)).is_err());
        let twice = RamBlockList::new(vec![
            RamBlockSpec::ram("a", 4096),
            RamBlockSpec::ram("a", 4096),
        ]);
        assert!(twice.is_err());
    }

    #[test]
    fn the_pc_block_set_is_in_qemu_ram_list_order() {
        let pc = RamBlockList::qemu_pc(32 << 20, true).unwrap();
        let names: Vec<&str> = pc.blocks().iter().map(RamBlock::idstr).collect();
        assert_eq!(
            names,
            [
                "pc.ram",
                "/rom@etc/acpi/tables",
                "pc.bios",
                "0000:00:02.0/virtio-net-pci.rom",
                "pc.rom",
                "/rom@etc/table-loader",
                "/rom@etc/acpi/rsdp"
            ]
        );
        // QEMU orders the list by max_length, largest first.
        let max: Vec<u64> = pc.blocks().iter().map(|b| b.spec().max_length).collect();
        assert!(max.windows(2).all(|w| w[0] >= w[1]), "{max:?}");
    }
}
