//! The demo's "ram" section (version 4) over [`GuestMemory`]: one RAMBlock,
//! `pc.ram`. **Replaced by the real RAM model (`vmstate-devices`' `ram`
//! module) in the next increment of issue 8**; until then it is the one place
//! that writes and reads RAM records for the machine, and its [`flags`] are the
//! analyzer's.
//!
//! It follows QEMU's RAM protocol (`migration/ram.c`; qemu-wire.md §4): the
//! START body is the `MEM_SIZE` block list, every body ends with `EOS`, pages
//! travel as `ZERO` (one fill byte) or `PAGE` (4096 raw bytes) records whose be64
//! header word carries the page offset and flags, and `CONTINUE` omits the block
//! name when it is the block of the previous record (kept across sections, as
//! QEMU does). A *sync* (`state_pending_exact`) moves the dirty log into the
//! migration bitmap, which iteration drains; the first pass sends every page.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use vmstate_runtime::savevm::{
    IterateStatus, Pending, SaveVmHandlers, SectionReader, SectionWriter,
};
use vmstate_runtime::{Error, ErrorKind, Result};

use super::guest_memory::{SharedMemory, PAGE_SIZE};
use super::lock;

/// Section name of guest RAM.
pub const RAM_SECTION: &str = "ram";
/// The RAM section's version (QEMU's `ram_load` accepts only 4).
pub const RAM_VERSION: u32 = 4;
/// Name of the demo's single RAMBlock (the main RAM block of a QEMU pc machine).
pub const RAM_BLOCK: &str = "pc.ram";

/// Flags in the low bits of a RAM record's be64 header word (`RAM_SAVE_FLAG_*`).
pub mod flags {
    /// Page filled with one byte value (formerly COMPRESS).
    pub const ZERO: u64 = 0x02;
    /// RAMBlock list follows (START body).
    pub const MEM_SIZE: u64 = 0x04;
    /// Raw page follows.
    pub const PAGE: u64 = 0x08;
    /// End of this RAM chunk.
    pub const EOS: u64 = 0x10;
    /// Same RAMBlock as the previous record: name omitted.
    pub const CONTINUE: u64 = 0x20;
    /// XBZRLE-encoded page (not produced here).
    pub const XBZRLE: u64 = 0x40;
    /// RDMA hook (not produced here).
    pub const HOOK: u64 = 0x80;
    /// zlib-compressed page (QEMU 7.2 `compress` capability; not produced here).
    pub const COMPRESS_PAGE: u64 = 0x100;
    /// Multifd sync point (QEMU 8.1+; not produced here).
    pub const MULTIFD_FLUSH: u64 = 0x200;
    /// Bits of the header word that hold flags on a 4 KiB-page target.
    pub const MASK: u64 = vmstate_runtime::savevm::TARGET_PAGE_SIZE - 1;
}

/// Bytes a PART body may carry before `save_live_iterate` ends it (QEMU ends a
/// PART at the rate limit or after 50 ms; the driver checks its rate limit
/// between PARTs, so PARTs are kept short).
pub const PART_BUDGET: u64 = 128 * 1024;

fn is_zero(page: &[u8]) -> bool {
    page.chunks_exact(16)
        .all(|c| u128::from_ne_bytes(c.try_into().expect("16-byte chunk")) == 0)
}

/// Counters of the RAM section, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct RamStats {
    /// PAGE records sent (or received).
    pub normal_pages: AtomicU64,
    /// ZERO records sent (or received).
    pub zero_pages: AtomicU64,
    /// Pages sent again because the guest dirtied them after they were sent.
    pub resent_pages: AtomicU64,
    /// Pages sent in the END section, with the guest stopped.
    pub downtime_pages: AtomicU64,
    /// Dirty-log syncs.
    pub syncs: AtomicU64,
    /// Complete passes over the migration bitmap (the first is the bulk stage).
    pub passes: AtomicU64,
}

impl RamStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The "ram" section's handlers, for both ends: the source sends dirty pages,
/// the destination loads them into its own memory.
pub struct RamSection {
    mem: SharedMemory,
    pages: usize,
    /// Migration bitmap: pages still to send.
    bitmap: Vec<u64>,
    /// Pages sent at least once in this migration.
    sent_once: Vec<u64>,
    dirty: usize,
    /// Next page the iteration scan looks at.
    cursor: usize,
    /// A record naming the block was sent (or read): CONTINUE may follow.
    block_named: bool,
    stats: Arc<RamStats>,
    /// Bytes after which a PART body ends.
    part_budget: u64,
}

impl std::fmt::Debug for RamSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RamSection")
            .field("pages", &self.pages)
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

impl RamSection {
    /// Handlers for `mem`, counting into `stats`.
    pub fn new(mem: SharedMemory, stats: Arc<RamStats>) -> Result<Self> {
        let pages = lock(&mem)?.pages();
        Ok(RamSection {
            mem,
            pages,
            bitmap: vec![0; pages.div_ceil(64)],
            sent_once: vec![0; pages.div_ceil(64)],
            dirty: 0,
            cursor: 0,
            block_named: false,
            stats,
            part_budget: PART_BUDGET,
        })
    }

    /// Sets the bytes a PART body may carry (at least one page is always sent).
    pub fn with_part_budget(mut self, bytes: u64) -> Self {
        self.part_budget = bytes;
        self
    }

    fn block_len(&self) -> u64 {
        (self.pages * PAGE_SIZE) as u64
    }

    fn sync(&mut self) -> Result<()> {
        let mut mem = lock(&self.mem)?;
        self.dirty += mem.sync_into(&mut self.bitmap);
        RamStats::add(&self.stats.syncs, 1);
        Ok(())
    }

    /// One page record: header word, block name unless CONTINUE, payload.
    fn write_page(&mut self, w: &mut SectionWriter, index: usize, page: &[u8]) -> Result<()> {
        let zero = is_zero(page);
        let mut word = (index * PAGE_SIZE) as u64 | if zero { flags::ZERO } else { flags::PAGE };
        if self.block_named {
            word |= flags::CONTINUE;
        }
        w.write_u64(word)?;
        if !self.block_named {
            w.write_counted_bytes(RAM_BLOCK.as_bytes())?;
            self.block_named = true;
        }
        if zero {
            w.write_u8(0)?;
            RamStats::add(&self.stats.zero_pages, 1);
        } else {
            w.write_bytes(page)?;
            RamStats::add(&self.stats.normal_pages, 1);
        }
        let (word_i, bit) = (index / 64, 1u64 << (index % 64));
        if self.sent_once[word_i] & bit != 0 {
            RamStats::add(&self.stats.resent_pages, 1);
        }
        self.sent_once[word_i] |= bit;
        Ok(())
    }

    /// Sends dirty pages from the cursor on, until `budget` bytes were written or
    /// nothing is dirty; returns the pages sent.
    fn send_dirty(&mut self, w: &mut SectionWriter, budget: u64) -> Result<u64> {
        let start = w.position();
        let mem = self.mem.clone();
        let mem = lock(&mem)?;
        let mut sent = 0;
        while self.dirty > 0 && w.position() - start < budget {
            if self.cursor >= self.pages {
                self.cursor = 0;
                RamStats::add(&self.stats.passes, 1);
            }
            // Next set bit at or after the cursor, a word at a time.
            let (mut wi, bit) = (self.cursor / 64, self.cursor % 64);
            let mut bits = self.bitmap[wi] & (!0u64 << bit);
            while bits == 0 {
                wi += 1;
                if wi == self.bitmap.len() {
                    break;
                }
                bits = self.bitmap[wi];
            }
            if bits == 0 {
                self.cursor = self.pages;
                continue;
            }
            let index = wi * 64 + bits.trailing_zeros() as usize;
            self.bitmap[wi] &= !(1 << (index % 64));
            self.dirty -= 1;
            self.write_page(w, index, mem.page(index))?;
            self.cursor = index + 1;
            sent += 1;
        }
        Ok(sent)
    }

    fn load_records(&mut self, r: &mut SectionReader) -> Result<()> {
        let mem = self.mem.clone();
        let mut mem = lock(&mem)?;
        loop {
            let at = r.position();
            let word = r.read_u64()?;
            let fl = word & flags::MASK;
            let offset = word & !flags::MASK;
            let bad = |msg: String| Error::at(ErrorKind::Invalid(msg.into()), at);
            let known = flags::ZERO | flags::MEM_SIZE | flags::PAGE | flags::EOS | flags::CONTINUE;
            if fl & !known != 0 {
                return Err(bad(format!(
                    "ram: unsupported flags {:#x} (XBZRLE, compression, RDMA and multifd are not supported)",
                    fl & !known
                )));
            }
            if fl & (flags::ZERO | flags::PAGE) != 0 {
                if fl & flags::CONTINUE == 0 {
                    let name = r.read_counted_bytes()?;
                    if name.as_bytes() != RAM_BLOCK.as_bytes() {
                        return Err(bad(format!(
                            "ram: unknown RAMBlock '{}'",
                            name.to_string_lossy()
                        )));
                    }
                    self.block_named = true;
                } else if !self.block_named {
                    return Err(bad("ram: CONTINUE with no previous RAMBlock".into()));
                }
                if offset >= self.block_len() {
                    return Err(bad(format!(
                        "ram: page offset {offset:#x} beyond RAMBlock '{RAM_BLOCK}' ({:#x} bytes)",
                        self.block_len()
                    )));
                }
            }
            let o = offset as usize;
            match fl & !flags::CONTINUE {
                flags::MEM_SIZE => {
                    let mut total = offset;
                    while total > 0 {
                        let name = r.read_counted_bytes()?;
                        let len = r.read_u64()?;
                        if name.as_bytes() != RAM_BLOCK.as_bytes() {
                            return Err(bad(format!(
                                "ram: unknown RAMBlock '{}', cannot accept migration",
                                name.to_string_lossy()
                            )));
                        }
                        if len != self.block_len() {
                            return Err(bad(format!(
                                "ram: RAMBlock '{RAM_BLOCK}' is {len:#x} bytes in the stream, {:#x} here",
                                self.block_len()
                            )));
                        }
                        total = total.checked_sub(len).ok_or_else(|| {
                            bad("ram: RAMBlock lengths exceed the MEM_SIZE total".into())
                        })?;
                    }
                }
                flags::ZERO => {
                    let fill = r.read_u8()?;
                    mem.data[o..o + PAGE_SIZE].fill(fill);
                    RamStats::add(&self.stats.zero_pages, 1);
                }
                flags::PAGE => {
                    r.read_bytes(&mut mem.data[o..o + PAGE_SIZE])?;
                    RamStats::add(&self.stats.normal_pages, 1);
                }
                flags::EOS => return Ok(()),
                other => {
                    return Err(bad(format!(
                        "ram: unknown combination of migration flags {other:#x}"
                    )))
                }
            }
        }
    }
}

impl SaveVmHandlers for RamSection {
    fn is_iterative(&self) -> bool {
        true
    }

    /// The bulk stage starts: every page is to be sent, the dirty log restarts.
    fn save_setup(&mut self, w: &mut SectionWriter) -> Result<()> {
        lock(&self.mem)?.clear_dirty_log();
        self.bitmap.fill(!0);
        if !self.pages.is_multiple_of(64) {
            if let Some(last) = self.bitmap.last_mut() {
                *last = (1u64 << (self.pages % 64)) - 1;
            }
        }
        self.sent_once.fill(0);
        self.dirty = self.pages;
        self.cursor = 0;
        self.block_named = false;
        w.write_u64(self.block_len() | flags::MEM_SIZE)?;
        w.write_counted_bytes(RAM_BLOCK.as_bytes())?;
        w.write_u64(self.block_len())?;
        w.write_u64(flags::EOS)
    }

    fn save_live_iterate(&mut self, w: &mut SectionWriter) -> Result<IterateStatus> {
        let budget = self.part_budget;
        self.send_dirty(w, budget)?;
        w.write_u64(flags::EOS)?;
        Ok(if self.dirty == 0 {
            IterateStatus::Done
        } else {
            IterateStatus::Continue
        })
    }

    fn state_pending_estimate(&mut self) -> Pending {
        Pending {
            must_precopy: (self.dirty * PAGE_SIZE) as u64,
            can_postcopy: 0,
        }
    }

    fn state_pending_exact(&mut self) -> Pending {
        // A poisoned memory mutex shows up as an error in the next PART.
        let _ = self.sync();
        self.state_pending_estimate()
    }

    /// Stop-and-copy: the last sync, then every dirty page, unlimited.
    fn save_live_complete_precopy(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.sync()?;
        let sent = self.send_dirty(w, u64::MAX)?;
        RamStats::add(&self.stats.downtime_pages, sent);
        w.write_u64(flags::EOS)
    }

    fn load_setup(&mut self) -> Result<()> {
        self.block_named = false;
        Ok(())
    }

    fn load_state(&mut self, r: &mut SectionReader, version_id: u32) -> Result<()> {
        if version_id != RAM_VERSION {
            return Err(Error::invalid(format!(
                "ram: version {version_id} (only {RAM_VERSION} is supported)"
            )));
        }
        self.load_records(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Machine;
    use bytes::BytesMut;
    use vmstate_runtime::savevm::{
        LoadOptions, NoCommands, QemuVersion, Registry, StreamLoader, StreamWriter,
    };
    use vmstate_runtime::wire::Reader;

    fn save_all(machine: &Machine, budget: u64) -> (Vec<u8>, Registry) {
        let mut reg = machine.registry_with_part_budget(budget).unwrap();
        let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
        w.write_header().unwrap();
        w.setup(&mut reg).unwrap();
        while w.iterate(&mut reg, false, &mut |_| false).unwrap() == IterateStatus::Continue {}
        machine
            .ram
            .lock()
            .unwrap()
            .write(5 * PAGE_SIZE, b"late write");
        w.complete_precopy(&mut reg).unwrap();
        (w.into_inner().unwrap(), reg)
    }

    #[test]
    fn stream_round_trip_uses_zero_page_and_continue_records() {
        let src = Machine::new(100);
        src.boot(30, 7).unwrap();
        let (stream, reg) = save_all(&src, 8 * PAGE_SIZE as u64);
        let ram_id = reg.find(RAM_SECTION, 0).unwrap().section_id;
        let s = &src.ram_stats;
        assert_eq!(RamStats::get(&s.normal_pages), 31); // 30 used + the late write
        assert_eq!(RamStats::get(&s.zero_pages), 70);
        assert_eq!(RamStats::get(&s.resent_pages), 1);
        assert_eq!(RamStats::get(&s.downtime_pages), 1);
        // START: MEM_SIZE list, EOS.
        let start = [
            &[0x01][..],
            &ram_id.to_be_bytes(),
            b"\x03ram\x00\x00\x00\x00\x00\x00\x00\x04",
        ]
        .concat();
        assert!(stream.windows(start.len()).any(|w| w == start.as_slice()));
        let mem_size = [&[0, 0, 0, 0, 0, 0x06, 0x40, 0x04, 6][..], b"pc.ram"].concat();
        assert!(stream
            .windows(mem_size.len())
            .any(|w| w == mem_size.as_slice()));
        // The first page names the block, the next continue it.
        let first = [&[0u8, 0, 0, 0, 0, 0, 0, 0x08, 6][..], b"pc.ram"].concat();
        assert!(stream.windows(first.len()).any(|w| w == first.as_slice()));
        let zero_cont = [0u8, 0, 0, 0, 0, 0x06, 0x30, 0x22, 0];
        assert!(stream.windows(9).any(|w| w == zero_cont));

        let dst = Machine::new(100);
        let mut reg = dst.registry().unwrap();
        let mut r = Reader::new(BytesMut::from(&stream[..]));
        StreamLoader::new(LoadOptions::default())
            .load(&mut r, &mut reg, &mut NoCommands)
            .unwrap();
        assert!(src.ram.lock().unwrap().bytes() == dst.ram.lock().unwrap().bytes());
    }

    #[test]
    fn loader_rejects_bad_ram_records() {
        let src = Machine::new(4);
        src.boot(50, 1).unwrap();
        let (stream, _) = save_all(&src, u64::MAX);
        let find = |needle: &[u8]| {
            stream
                .windows(needle.len())
                .position(|w| w == needle)
                .unwrap()
        };
        let load = |bytes: Vec<u8>| {
            let dst = Machine::new(4);
            let mut reg = dst.registry().unwrap();
            let mut r = Reader::new(BytesMut::from(&bytes[..]));
            StreamLoader::new(LoadOptions::default())
                .load(&mut r, &mut reg, &mut NoCommands)
                .unwrap_err()
                .to_string()
        };
        let first_page = find(&[0, 0, 0, 0, 0, 0, 0, 0x08, 6]);
        let mut bad = stream.clone();
        bad[first_page + 7] = 0x48; // PAGE | XBZRLE
        assert!(load(bad).contains("unsupported flags 0x40"));
        let mut bad = stream.clone();
        bad[first_page + 7] = 0x28; // CONTINUE before any block was named
        assert!(load(bad).contains("CONTINUE with no previous RAMBlock"));
        let mut bad = stream.clone();
        bad[first_page + 4] = 0x10; // offset far beyond the block
        assert!(load(bad).contains("beyond RAMBlock"));
        let mut bad = stream.clone();
        bad[first_page + 9] = b'X'; // "Xc.ram"
        assert!(load(bad).contains("unknown RAMBlock 'Xc.ram'"));
        let size = find(&[0, 0, 0, 0, 0, 0, 0x40, 0x04]);
        let mut bad = stream.clone();
        bad[size + 6] = 0x20; // MEM_SIZE total 8 KiB, smaller than the block
        assert!(load(bad).contains("exceed the MEM_SIZE total"));
        let mut bad = stream.clone();
        bad[size + 21] = 0x80; // the block's own length
        assert!(load(bad).contains("is 0x8000 bytes in the stream, 0x4000 here"));
        let mut wrong_version = stream.clone();
        wrong_version[find(b"\x03ram") + 11] = 3;
        assert!(load(wrong_version).contains("only 4 is supported"));
    }
}
