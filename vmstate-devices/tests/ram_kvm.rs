//! The KVM dirty-log path with a real KVM guest (feature `kvm`, x86-64 Linux):
//! RAMBlocks registered as KVM memory slots, a real-mode vCPU whose code
//! writes bytes into chosen pages, [`KvmDirtyLog`] syncing KVM's log (and
//! vm-memory's, for the VMM's own writes) into the migration bitmap, exactly
//! the written pages dirty, and a precopy migration of the blocks through
//! `RamSection` that carries what the guest wrote after the bulk pass.
//!
//! Without `/dev/kvm` the tests print why and pass, unless
//! `VMSTATE_REQUIRE_KVM=1`, where a missing KVM is a failure.

#[cfg(all(feature = "kvm", target_arch = "x86_64"))]
mod kvm_guest {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use bytes::BytesMut;
    use kvm_ioctls::{VcpuExit, VcpuFd};
    use vmstate_devices::ram::kvm::{Kvm, KvmDirtyLog, VmFd};
    use vmstate_devices::ram::{
        DirtyBitmap, DirtyLog, RamBlockList, RamBlockSpec, RamSection, RamSectionConfig,
    };
    use vmstate_runtime::savevm::{
        Configuration, IterateStatus, LoadOptions, NoCommands, QemuVersion, Registry, StreamLoader,
        StreamWriter,
    };
    use vmstate_runtime::wire::Reader;

    const PS: u64 = 4096;
    const MACHINE: &str = "pc-i440fx-7.2";

    /// The guest's one routine, 16-bit real mode: `count` (CX) times, store AL
    /// at DS:BX, add DX to BX, increment AL; then HLT.
    const WRITER: [u8; 9] = [
        0x88, 0x07, // mov [bx], al
        0x01, 0xd3, // add bx, dx
        0xfe, 0xc0, // inc al
        0xe2, 0xf8, // loop -8 (back to the mov)
        0xf4, // hlt
    ];

    /// Where things are in the guest: the routine runs from the BIOS ROM.
    const BIOS_GPA: u64 = 0xf_0000;
    /// pc.ram's second slot: block offset 256 KiB, guest address 512 KiB.
    const HIGH_OFFSET: u64 = 0x4_0000;
    const HIGH_GPA: u64 = 0x8_0000;
    const VRAM_GPA: u64 = 0xc_0000;

    /// pc.ram (512 KiB, two slots around a hole), a 64 KiB "vga.vram" and
    /// the 64 KiB BIOS ROM holding the routine.
    fn specs() -> Vec<RamBlockSpec> {
        vec![
            RamBlockSpec::ram("pc.ram", 128 * PS),
            RamBlockSpec::ram("vga.vram", 16 * PS).at(VRAM_GPA),
            RamBlockSpec::rom("pc.bios", 16 * PS).at(BIOS_GPA),
        ]
    }

    /// The VM, or `None` with a printed reason (a failure with
    /// `VMSTATE_REQUIRE_KVM=1`).
    fn kvm_vm() -> Option<Arc<VmFd>> {
        let vm = Kvm::new().and_then(|k| k.create_vm());
        match vm {
            Ok(vm) => Some(Arc::new(vm)),
            Err(e) if std::env::var("VMSTATE_REQUIRE_KVM").as_deref() == Ok("1") => {
                panic!("cannot open /dev/kvm and create a VM ({e}) but VMSTATE_REQUIRE_KVM=1")
            }
            Err(e) => {
                eprintln!("skipping: cannot open /dev/kvm and create a VM: {e}");
                None
            }
        }
    }

    /// A real-mode vCPU running [`WRITER`] from the BIOS ROM.
    struct Guest {
        vcpu: VcpuFd,
    }

    impl Guest {
        fn new(vm: &VmFd) -> Guest {
            // Real mode without unrestricted guest support needs a TSS page.
            vm.set_tss_address(0xfffb_d000).unwrap();
            let vcpu = vm.create_vcpu(0).unwrap();
            let mut sregs = vcpu.get_sregs().unwrap();
            sregs.cs.base = BIOS_GPA;
            sregs.cs.selector = (BIOS_GPA >> 4) as u16;
            vcpu.set_sregs(&sregs).unwrap();
            Guest { vcpu }
        }

        /// Runs the routine with DS at `ds_base`: `count` bytes `value`,
        /// `value + 1`, ... at DS:`first`, DS:`first + stride`, ..., to its HLT.
        fn write(&mut self, ds_base: u64, first: u16, stride: u16, count: u16, value: u8) {
            let exit = self.run(ds_base, first, stride, count, value);
            assert_eq!(exit, "Hlt", "the routine ends in HLT");
        }

        /// Runs the routine once; the vCPU's exit, as text.
        fn run(&mut self, ds_base: u64, first: u16, stride: u16, count: u16, value: u8) -> String {
            assert!(count > 0 && ds_base.is_multiple_of(16) && ds_base < 0x10_0000);
            let mut sregs = self.vcpu.get_sregs().unwrap();
            sregs.ds.base = ds_base;
            sregs.ds.selector = (ds_base >> 4) as u16;
            self.vcpu.set_sregs(&sregs).unwrap();
            let mut regs = self.vcpu.get_regs().unwrap();
            regs.rip = 0;
            regs.rflags = 2;
            regs.rax = u64::from(value);
            regs.rbx = u64::from(first);
            regs.rcx = u64::from(count);
            regs.rdx = u64::from(stride);
            self.vcpu.set_regs(&regs).unwrap();
            match self.vcpu.run().unwrap() {
                VcpuExit::Hlt => "Hlt".into(),
                VcpuExit::MmioWrite(addr, data) => format!("MmioWrite({addr:#x}, {data:?})"),
                other => format!("{other:?}"),
            }
        }
    }

    /// The blocks, a KVM log with pc.ram in two slots and vga.vram and the
    /// BIOS in one each, and the routine loaded into the BIOS.
    fn setup(vm: &Arc<VmFd>) -> (RamBlockList, KvmDirtyLog) {
        let ram = RamBlockList::new(specs()).unwrap();
        let mut log = KvmDirtyLog::new(vm.clone()).unwrap();
        let pc = ram.get("pc.ram").unwrap();
        log.map_range(0, pc, 0, HIGH_OFFSET, 0).unwrap();
        let high = log
            .map_range(1, pc, HIGH_OFFSET, 128 * PS - HIGH_OFFSET, HIGH_GPA)
            .unwrap();
        assert_eq!((high.gpa, high.offset), (HIGH_GPA, HIGH_OFFSET));
        log.map_block(2, ram.get("vga.vram").unwrap()).unwrap();
        let bios = log.map_block(3, ram.get("pc.bios").unwrap()).unwrap();
        assert!(bios.read_only);
        ram.get("pc.bios").unwrap().write(0, &WRITER).unwrap();
        (ram, log)
    }

    /// Syncs every block into fresh bitmaps: the dirty pages per block.
    fn dirty_pages(ram: &RamBlockList, log: &mut KvmDirtyLog) -> Vec<BTreeSet<u64>> {
        ram.blocks()
            .iter()
            .map(|b| {
                let mut bm = DirtyBitmap::new(b.pages());
                log.sync(b, &mut bm);
                let pages: BTreeSet<u64> =
                    std::iter::successors(bm.next_set(0), |p| bm.next_set(p + 1)).collect();
                assert_eq!(pages.len() as u64, bm.count());
                pages
            })
            .collect()
    }

    fn set(pages: &[u64]) -> BTreeSet<u64> {
        pages.iter().copied().collect()
    }

    fn byte(ram: &RamBlockList, block: &str, offset: u64) -> u8 {
        let mut b = [0];
        ram.get(block).unwrap().read(offset, &mut b).unwrap();
        b[0]
    }

    #[test]
    fn kvm_dirty_log_sees_exactly_the_pages_the_guest_wrote() {
        let Some(vm) = kvm_vm() else { return };
        let (ram, mut log) = setup(&vm);
        let mut guest = Guest::new(&vm);
        for b in ram.blocks() {
            log.start(b);
        }
        assert_eq!(dirty_pages(&ram, &mut log), vec![set(&[]); 3]);

        // Slot 0 (pc.ram pages 1, 4, 7, 10, 13), slot 1 (pages 64, 69, 74:
        // guest 0x80000.. is block offset 0x40000..), slot 2 (vga.vram page 2).
        guest.write(0, 0x1000, 0x3000, 5, 0x10);
        guest.write(HIGH_GPA, 0x0010, 0x5000, 3, 0x20);
        guest.write(VRAM_GPA, 0x2abc, 0x1000, 1, 0x30);
        assert_eq!(
            dirty_pages(&ram, &mut log),
            vec![set(&[1, 4, 7, 10, 13, 64, 69, 74]), set(&[2]), set(&[])]
        );
        // What the guest wrote is in the blocks, where the slots put it.
        assert_eq!(byte(&ram, "pc.ram", 0xd000), 0x14);
        assert_eq!(byte(&ram, "pc.ram", HIGH_OFFSET + 0xa010), 0x22);
        assert_eq!(byte(&ram, "vga.vram", 0x2abc), 0x30);

        // The logs restarted: a second sync finds nothing.
        assert_eq!(dirty_pages(&ram, &mut log), vec![set(&[]); 3]);

        // New guest writes (page 4 again, 2, and 84 through slot 1), plus a
        // write the VMM makes itself (a device's DMA into page 50), which KVM
        // never sees and vm-memory's bitmap brings in.
        guest.write(0, 0x2000, 0x2000, 2, 0x40);
        guest.write(0x9_0000, 0x4000, 0x1000, 1, 0x50); // 0x94000: block page 84
        ram.get("pc.ram")
            .unwrap()
            .write(50 * PS + 9, b"dma")
            .unwrap();
        assert_eq!(
            dirty_pages(&ram, &mut log),
            vec![set(&[2, 4, 50, 84]), set(&[]), set(&[])]
        );

        // The BIOS slot is read-only: a guest write exits as MMIO and leaves
        // the ROM and its log alone.
        let exit = guest.run(BIOS_GPA, 0x1000, 0x1000, 1, 0x66);
        assert_eq!(exit, format!("MmioWrite({:#x}, [102])", BIOS_GPA + 0x1000));
        assert_eq!(byte(&ram, "pc.bios", 0x1000), 0);
        assert_eq!(dirty_pages(&ram, &mut log), vec![set(&[]); 3]);
        assert_eq!(log.failures().count(), 0);
    }

    #[test]
    fn slots_are_deleted_on_unmap_and_drop() {
        let Some(vm) = kvm_vm() else { return };
        let (ram, mut log) = setup(&vm);
        // Unmapped, slot 2's guest range and id are free again: mapping
        // vga.vram there as slot 7, then slot 2 elsewhere, both succeed.
        log.unmap(2).unwrap();
        let vram = ram.get("vga.vram").unwrap();
        log.map_block(7, vram).unwrap();
        log.map_range(2, vram, 0, PS, 0x20_0000).unwrap();
        let ids: Vec<u32> = log.slots().map(|s| s.slot).collect();
        assert_eq!(ids, [0, 1, 3, 7, 2]);
        // Dropped, every slot is gone from the VM: a new log maps the same
        // ids at the same addresses (KVM refuses an overlap otherwise).
        drop(log);
        let (_ram2, log2) = setup(&vm);
        assert_eq!(log2.slots().count(), 4);
        // The blocks' memory stayed valid all along (the log held it).
        assert_eq!(byte(&ram, "pc.bios", 0), WRITER[0]);
    }

    #[test]
    fn guest_writes_after_the_bulk_pass_reach_the_destination() {
        let Some(vm) = kvm_vm() else { return };
        let (ram, log) = setup(&vm);
        let mut guest = Guest::new(&vm);
        // Guest RAM before the migration starts: pc.ram pages 0..63 (BX is
        // 16-bit, so one run per 64 KiB segment).
        for seg in 0..4u8 {
            guest.write(u64::from(seg) * 0x1_0000, 0, 0x1000, 16, 1 + 16 * seg);
        }
        let src = Arc::new(Mutex::new(ram.clone())); // shares the regions
        let section = RamSection::with_config(
            src.clone(),
            RamSectionConfig {
                part_budget: 16 * PS,
                ..RamSectionConfig::default()
            },
            Box::new(log),
        );
        let counters = section.counters();
        let mut reg = Registry::new();
        section.register(&mut reg).unwrap();
        let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
        w.write_header().unwrap();
        w.write_configuration(&Configuration::new(MACHINE)).unwrap();
        w.setup(&mut reg).unwrap();
        // The bulk pass, the guest writing between its PARTs.
        let mut parts = 0u16;
        while w.iterate(&mut reg, false, &mut |_| false).unwrap() != IterateStatus::Done {
            parts += 1;
            guest.write(0, parts * 0x1000, 0x3000, 3, 0x80 + parts as u8);
        }
        assert!(parts >= 4, "{parts} PARTs");
        // Stop and copy after more writes in both pc.ram slots and vga.vram.
        guest.write(HIGH_GPA, 0x0100, 0x3000, 5, 0xa0);
        guest.write(VRAM_GPA, 0x0000, 0x3000, 4, 0xb0);
        w.complete_precopy(&mut reg).unwrap();
        let stream = w.into_inner().unwrap();
        StreamWriter::<Vec<u8>>::cleanup(&mut reg);
        let total_pages: u64 = ram.blocks().iter().map(|b| b.pages()).sum();
        let sent = counters.normal.load(std::sync::atomic::Ordering::Relaxed)
            + counters
                .duplicate
                .load(std::sync::atomic::Ordering::Relaxed);
        assert!(sent > total_pages, "re-dirtied pages went again: {sent}");

        let dst = Arc::new(Mutex::new(RamBlockList::new(specs()).unwrap()));
        let mut dreg = Registry::new();
        RamSection::new(dst.clone()).register(&mut dreg).unwrap();
        let mut loader = StreamLoader::new(
            LoadOptions::default().with_configuration(Configuration::new(MACHINE)),
        );
        let mut r = Reader::new(BytesMut::from(stream.as_slice()));
        loader.load(&mut r, &mut dreg, &mut NoCommands).unwrap();
        let dst = dst.lock().unwrap();
        for b in ram.blocks() {
            let there = dst.get(b.idstr()).unwrap().to_vec().unwrap();
            let here = b.to_vec().unwrap();
            for (p, (a, d)) in here
                .chunks(PS as usize)
                .zip(there.chunks(PS as usize))
                .enumerate()
            {
                assert!(a == d, "{} page {p} differs", b.idstr());
            }
        }
        // Spot checks of the last writes, on the destination.
        let read = |block: &str, off: u64| {
            let mut x = [0];
            dst.get(block).unwrap().read(off, &mut x).unwrap();
            x[0]
        };
        assert_eq!(read("pc.ram", HIGH_OFFSET + 0x100 + 4 * 0x3000), 0xa4);
        assert_eq!(read("vga.vram", 0x9000), 0xb3);
        assert_eq!(read("pc.ram", 0x3f000), 0x01 + 63);
        assert_eq!(read("pc.bios", 8), WRITER[8]);
    }
}

#[cfg(not(all(feature = "kvm", target_arch = "x86_64")))]
#[test]
fn kvm_dirty_log_needs_x86_64_linux() {
    assert!(
        std::env::var("VMSTATE_REQUIRE_KVM").as_deref() != Ok("1"),
        "VMSTATE_REQUIRE_KVM=1 but this build has no KVM support (x86-64 Linux, feature kvm)"
    );
    eprintln!("skipping: the KVM dirty-log tests run on x86-64 Linux with feature `kvm`");
}
