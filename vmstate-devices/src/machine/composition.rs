//! [`Machine`]: what the machine is made of (guest RAM and a PC keyboard
//! controller), how it boots, and its registry of migrated sections.

use std::sync::{Arc, Mutex};

use vmstate_runtime::savevm::Registry;
use vmstate_runtime::{Error, Result};

use super::lock;
use super::virtio::VirtioDevices;
use super::workload::Rng;
use crate::pckbd::{self, I8042};
use crate::ram::protocol::X86_TARGET_PAGE_SIZE;
use crate::ram::{
    RamBlockList, RamBlockSpec, RamCounters, RamSection, RamSectionConfig, VmMemoryDirtyLog,
};

/// Name of the machine's main RAMBlock (the guest's RAM in a QEMU pc machine;
/// the vCPUs of the guest workload write it).
pub const RAM_BLOCK: &str = "pc.ram";

/// Bytes a PART body of the "ram" section may carry (the driver checks its
/// rate limit between PARTs, so the demo keeps PARTs short and its progress
/// and rate limit smooth).
pub const PART_BUDGET: u64 = 128 * 1024;

/// The demo machine: guest RAM and a PC keyboard controller.
#[derive(Clone)]
pub struct Machine {
    /// Guest RAM: [`RAM_BLOCK`] first, then (with [`Machine::qemu_pc`]) the
    /// firmware and fw_cfg blocks of QEMU's pc machine, each on vm-memory
    /// (writes through [`RamBlock::write`](crate::ram::RamBlock::write) are
    /// dirty-logged).
    pub ram: Arc<Mutex<RamBlockList>>,
    /// The i8042 with its PS/2 keyboard and mouse.
    pub i8042: Arc<Mutex<I8042>>,
    /// The "ram" section's counters (shared by every section this machine
    /// registers, see [`RamSection::sharing_counters`]).
    pub ram_counters: Arc<RamCounters>,
    /// The virtio devices, when the machine has them
    /// ([`Machine::with_virtio`]).
    pub virtio: Option<VirtioDevices>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine").finish_non_exhaustive()
    }
}

/// Bytes of boot data generated and written at once.
const BOOT_CHUNK: usize = 1 << 20;

impl Machine {
    /// A machine with `pages` 4 KiB pages of zeroed RAM (fresh anonymous
    /// memory) and a keyboard controller fresh from reset.
    pub fn new(pages: usize) -> Result<Self> {
        let spec = RamBlockSpec::ram(RAM_BLOCK, pages as u64 * X86_TARGET_PAGE_SIZE);
        Ok(Self::with_ram(
            RamBlockList::new(vec![spec]).map_err(Error::from)?,
        ))
    }

    /// A machine with QEMU 7.2's `pc` RAM block set
    /// ([`RamBlockList::qemu_pc`]: `ram_size` bytes of [`RAM_BLOCK`], the BIOS,
    /// the option-ROM area and the fw_cfg ACPI blobs, in QEMU's RAM-list
    /// order), so the "ram" section of a QEMU pc stream loads into it block
    /// for block. `ram_size` must be a multiple of 4 KiB.
    ///
    /// ```
    /// use vmstate_devices::machine::Machine;
    ///
    /// let m = Machine::qemu_pc(1 << 20).unwrap();
    /// let ram = m.ram.lock().unwrap();
    /// let names: Vec<&str> = ram.blocks().iter().map(|b| b.idstr()).collect();
    /// assert_eq!(names[..3], ["pc.ram", "/rom@etc/acpi/tables", "pc.bios"]);
    /// ```
    pub fn qemu_pc(ram_size: u64) -> Result<Self> {
        if ram_size == 0 || !ram_size.is_multiple_of(X86_TARGET_PAGE_SIZE) {
            return Err(Error::invalid(format!(
                "guest RAM size {ram_size:#x} is not a positive multiple of the 4 KiB page"
            )));
        }
        Ok(Self::with_ram(
            RamBlockList::qemu_pc(ram_size, false).map_err(Error::from)?,
        ))
    }

    /// A machine over the RAM blocks a VMM already has (the first one is the
    /// guest's main RAM), with a keyboard controller fresh from reset.
    pub fn with_ram(ram: RamBlockList) -> Self {
        Machine {
            ram: Arc::new(Mutex::new(ram)),
            i8042: Arc::new(Mutex::new(I8042::default())),
            ram_counters: Arc::default(),
            virtio: None,
        }
    }

    /// "Boots" the guest: fills the first `used_percent` of every RAM block with
    /// data (one pseudo-random stream per block; the rest stays zero pages, as
    /// in a fresh guest; a file-backed block keeps its file's bytes, which are
    /// the guest's memory) and sets the keyboard
    /// controller up as an OS driver does (translation and interrupts on, Num
    /// Lock LED, mouse reporting enabled).
    pub fn boot(&self, used_percent: u32, seed: u64) -> Result<()> {
        {
            let ram = lock(&self.ram)?;
            for (index, block) in ram.blocks().iter().enumerate() {
                if block.is_file_backed() {
                    continue;
                }
                let ps = block.spec().page_size;
                let used = block.pages() * u64::from(used_percent.min(100)) / 100 * ps;
                // One pseudo-random stream over the used part, written a chunk
                // at a time (the migration's bulk pass sends every page, so
                // the dirty log these writes leave does not matter).
                let mut rng = Rng((seed ^ (index as u64).wrapping_mul(0x9e37_79b9)) | 1);
                let mut chunk = vec![0u8; BOOT_CHUNK];
                let mut at = 0;
                while at < used {
                    let n = (used - at).min(BOOT_CHUNK as u64) as usize;
                    for word in chunk[..n].chunks_exact_mut(8) {
                        word.copy_from_slice(&rng.next().to_le_bytes());
                    }
                    block.write(at, &chunk[..n]).map_err(Error::from)?;
                    at += n as u64;
                }
            }
        }
        if let Some(v) = &self.virtio {
            v.boot()?;
        }
        let mut kbd = lock(&self.i8042)?;
        for (port, val) in [
            (0x64, 0x60), // write command byte:
            (0x60, 0x47), //   translate to set 1, system flag, both interrupts on
            (0x60, 0xed), // keyboard: set LEDs ...
            (0x60, 0x02), //   ... Num Lock
            (0x64, 0xa8), // enable the aux (mouse) port
            (0x64, 0xd4), // next byte to the mouse:
            (0x60, 0xf4), //   enable reporting
        ] {
            kbd.write_port(port, val);
            // The driver reads each acknowledgement.
            while kbd.read_port(0x64) & 0x01 != 0 {
                kbd.read_port(0x60);
            }
        }
        Ok(())
    }

    /// A registry with this machine's sections: "ram" (iterative, instance 0,
    /// version 4), then "ps2kbd", "ps2mouse" and "pckbd" (FULL), then the
    /// virtio devices' when it has them.
    pub fn registry(&self) -> Result<Registry> {
        self.registry_with_part_budget(PART_BUDGET)
    }

    /// [`registry`](Self::registry) with a different PART size.
    pub fn registry_with_part_budget(&self, part_budget: u64) -> Result<Registry> {
        self.registry_with(RamSectionConfig {
            part_budget,
            ..RamSectionConfig::default()
        })
    }

    /// [`registry`](Self::registry) with the "ram" section configured as
    /// `config` says (PART size, the MEM_SIZE words that capabilities such as
    /// postcopy-ram add).
    pub fn registry_with(&self, config: RamSectionConfig) -> Result<Registry> {
        self.registry_of(self.ram_section(config))
    }

    /// [`registry_with`](Self::registry_with) for a destination waiting for
    /// a stream: with [`RamSectionConfig::prefault`] the RAM starts faulting
    /// in at once ([`RamSection::prefaulting_now`]), while the source has not
    /// connected yet.
    pub fn incoming_registry_with(&self, config: RamSectionConfig) -> Result<Registry> {
        self.registry_of(self.ram_section(config).prefaulting_now())
    }

    /// [`registry_with`](Self::registry_with) whose "ram" section can go
    /// postcopy (the source's `postcopy-ram` capability,
    /// [`RamSection::with_postcopy`]).
    pub fn postcopy_registry_with(&self, config: RamSectionConfig) -> Result<Registry> {
        self.registry_of(self.ram_section(config).with_postcopy())
    }

    fn ram_section(&self, config: RamSectionConfig) -> RamSection {
        RamSection::with_config(self.ram.clone(), config, Box::new(VmMemoryDirtyLog))
            .sharing_counters(self.ram_counters.clone())
    }

    fn registry_of(&self, ram: RamSection) -> Result<Registry> {
        let mut reg = Registry::new();
        ram.register(&mut reg)?;
        pckbd::register(&mut reg, self.i8042.clone())?;
        if let Some(v) = &self.virtio {
            v.register(&mut reg)?;
        }
        Ok(reg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::test_support::ram_bytes;
    use bytes::BytesMut;
    use vmstate_runtime::savevm::{
        IterateStatus, LoadOptions, NoCommands, QemuVersion, StreamLoader, StreamWriter,
    };
    use vmstate_runtime::wire::Reader;

    const PS: u64 = X86_TARGET_PAGE_SIZE;

    /// Saves `machine` with PARTs of `budget` bytes; with `late_page`, the
    /// guest writes that page once the passes are done, so the END section
    /// carries it.
    fn save_all(machine: &Machine, budget: u64, late_page: Option<u64>) -> (Vec<u8>, Registry) {
        let mut reg = machine.registry_with_part_budget(budget).unwrap();
        let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
        w.write_header().unwrap();
        w.setup(&mut reg).unwrap();
        while w.iterate(&mut reg, false, &mut |_| false).unwrap() == IterateStatus::Continue {}
        if let Some(page) = late_page {
            let ram = machine.ram.lock().unwrap();
            let block = ram.get(RAM_BLOCK).unwrap();
            block.write(page * PS, b"late write").unwrap();
        }
        w.complete_precopy(&mut reg).unwrap();
        (w.into_inner().unwrap(), reg)
    }

    #[test]
    fn stream_round_trip_uses_zero_page_and_continue_records() {
        let src = Machine::new(100).unwrap();
        src.boot(30, 7).unwrap();
        let (stream, reg) = save_all(&src, 8 * PS, Some(5));
        let ram_id = reg.find("ram", 0).unwrap().section_id;
        let c = &src.ram_counters;
        assert_eq!(RamCounters::get(&c.normal), 31); // 30 used + the late write
        assert_eq!(RamCounters::get(&c.normal_bytes), 31 * PS);
        assert_eq!(RamCounters::get(&c.duplicate), 70);
        assert_eq!(RamCounters::get(&c.resent), 1);
        // The END body: the late page (CONTINUE header word, payload) and EOS.
        assert_eq!(RamCounters::get(&c.downtime_bytes), 8 + PS + 8);
        // Precopy: the MEM_SIZE list (word, "pc.ram", length), the first
        // record's block name, 30 PAGE and 70 ZERO records, and one EOS per
        // START and PART body (a PART header is 0x02 and the section id).
        let part_header = [&[0x02][..], &ram_id.to_be_bytes()].concat();
        let parts = stream
            .windows(part_header.len())
            .filter(|w| *w == part_header.as_slice())
            .count() as u64;
        assert!(parts > 1, "8-page PARTs: several of them");
        assert_eq!(
            RamCounters::get(&c.precopy_bytes),
            (8 + 7 + 8) + 7 + 30 * (8 + PS) + 70 * (8 + 1) + 8 * (1 + parts)
        );
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

        let dst = Machine::new(100).unwrap();
        let mut reg = dst.registry().unwrap();
        let mut r = Reader::new(BytesMut::from(&stream[..]));
        StreamLoader::new(LoadOptions::default().with_configuration(None))
            .load(&mut r, &mut reg, &mut NoCommands)
            .unwrap();
        assert!(ram_bytes(&src) == ram_bytes(&dst));
        // The destination counts what it loaded, END included.
        let d = &dst.ram_counters;
        assert_eq!(RamCounters::get(&d.normal), 31);
        assert_eq!(RamCounters::get(&d.duplicate), 70);
    }

    #[test]
    fn the_qemu_pc_machine_migrates_every_block() {
        let src = Machine::qemu_pc(16 * PS).unwrap();
        src.boot(50, 3).unwrap();
        let (stream, _) = save_all(&src, 8 * PS, None);
        let dst = Machine::qemu_pc(16 * PS).unwrap();
        let mut reg = dst.registry().unwrap();
        let mut r = Reader::new(BytesMut::from(&stream[..]));
        StreamLoader::new(LoadOptions::default().with_configuration(None))
            .load(&mut r, &mut reg, &mut NoCommands)
            .unwrap();
        let (a, b) = (src.ram.lock().unwrap(), dst.ram.lock().unwrap());
        assert_eq!(a.len(), 6);
        for block in a.blocks() {
            let other = b.get(block.idstr()).unwrap();
            assert!(
                block.to_vec().unwrap() == other.to_vec().unwrap(),
                "{}",
                block.idstr()
            );
            // Booted blocks hold data (half of each, at least a page).
            assert!(block.to_vec().unwrap().iter().any(|x| *x != 0) || block.pages() < 2);
        }
        for bad in [0, PS + 1] {
            assert!(Machine::qemu_pc(bad).is_err(), "{bad}");
        }
    }

    /// `pc.ram` in a file (`--mem-path`): boot keeps the file's bytes, the
    /// migration carries them, and a load into a file-backed destination
    /// lands in that file; an incoming registry prefaults while it waits.
    #[test]
    fn a_file_backed_pc_ram_migrates_the_files_bytes() {
        use std::io::{Read, Seek, Write};
        let len = 16 * PS;
        let mut image: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8 + 1).collect();
        image[..PS as usize].fill(0); // one zero page in the file
        let mut src_file = tempfile::NamedTempFile::new().unwrap();
        src_file.write_all(&image).unwrap();
        let src = Machine::demo_over(len, None, Some(src_file.path())).unwrap();
        src.boot(100, 3).unwrap();
        assert!(src
            .ram
            .lock()
            .unwrap()
            .get(RAM_BLOCK)
            .unwrap()
            .is_file_backed());
        assert!(
            src.ram
                .lock()
                .unwrap()
                .get(RAM_BLOCK)
                .unwrap()
                .to_vec()
                .unwrap()
                == image
        );
        let (stream, _) = save_all(&src, 8 * PS, None);

        let dst_file = tempfile::NamedTempFile::new().unwrap(); // empty: sized on use
        let dst = Machine::demo_over(len, None, Some(dst_file.path())).unwrap();
        let config = RamSectionConfig {
            prefault: true,
            ..RamSectionConfig::default()
        };
        let mut reg = dst.incoming_registry_with(config).unwrap();
        let mut r = Reader::new(BytesMut::from(&stream[..]));
        StreamLoader::new(LoadOptions::default().with_configuration(None))
            .load(&mut r, &mut reg, &mut NoCommands)
            .unwrap();
        let (a, b) = (src.ram.lock().unwrap(), dst.ram.lock().unwrap());
        for block in a.blocks() {
            let other = b.get(block.idstr()).unwrap();
            assert!(
                block.to_vec().unwrap() == other.to_vec().unwrap(),
                "{}",
                block.idstr()
            );
        }
        let mut written = Vec::new();
        let mut f = dst_file.reopen().unwrap();
        f.rewind().unwrap();
        f.read_to_end(&mut written).unwrap();
        assert!(
            written == image,
            "the destination's file holds the guest RAM"
        );

        // A file shorter than the block is refused, naming the block.
        let short = tempfile::NamedTempFile::new().unwrap();
        short.as_file().set_len(PS).unwrap();
        let e = Machine::demo_over(len, None, Some(short.path())).unwrap_err();
        assert!(e.to_string().contains("pc.ram"), "{e}");
    }

    #[test]
    fn loader_rejects_bad_ram_records() {
        let src = Machine::new(4).unwrap();
        src.boot(50, 1).unwrap();
        let (stream, _) = save_all(&src, u64::MAX, None);
        let find = |needle: &[u8]| {
            stream
                .windows(needle.len())
                .position(|w| w == needle)
                .unwrap()
        };
        let load = |bytes: Vec<u8>| {
            let dst = Machine::new(4).unwrap();
            let mut reg = dst.registry().unwrap();
            let mut r = Reader::new(BytesMut::from(&bytes[..]));
            StreamLoader::new(LoadOptions::default().with_configuration(None))
                .load(&mut r, &mut reg, &mut NoCommands)
                .unwrap_err()
                .to_string()
        };
        let first_page = find(&[0, 0, 0, 0, 0, 0, 0, 0x08, 6]);
        let mut bad = stream.clone();
        bad[first_page + 7] = 0x48; // PAGE | XBZRLE
        assert!(load(bad).contains("unknown combination of migration flags 0x48"));
        let mut bad = stream.clone();
        bad[first_page + 7] = 0x40; // XBZRLE: the page's bytes are no XBZRLE data
        assert!(load(bad).contains("XBZRLE page at offset 0x0"));
        let mut bad = stream.clone();
        bad[first_page + 7] = 0x28; // CONTINUE before any block was named
        assert!(load(bad).contains("has CONTINUE but no RAMBlock was named before"));
        let mut bad = stream.clone();
        bad[first_page + 4] = 0x10; // offset far beyond the block
        assert!(load(bad).contains("is beyond its used_length 0x4000"));
        let mut bad = stream.clone();
        bad[first_page + 9] = b'X'; // "Xc.ram"
        assert!(load(bad).contains("unknown RAMBlock \"Xc.ram\""));
        let size = find(&[0, 0, 0, 0, 0, 0, 0x40, 0x04]);
        let mut bad = stream.clone();
        bad[size + 6] = 0x20; // MEM_SIZE total 8 KiB, smaller than the block
        assert!(load(bad).contains("exceeds the 0x2000 bytes left of the announced total"));
        let mut bad = stream.clone();
        bad[size + 6] = 0x80; // MEM_SIZE total 32 KiB ...
        bad[size + 21] = 0x80; // ... and the block's own length
        assert!(load(bad)
            .contains("length 0x8000 in the stream, 0x4000 here, and the block is not resizeable"));
        let mut wrong_version = stream.clone();
        wrong_version[find(b"\x03ram") + 11] = 3;
        assert!(load(wrong_version).contains("version 3"));
    }
}
