//! `StreamWriter` throughput against writing the same bytes by hand.
//!
//! * `full_sections_1000x16`: a registry of 1000 `VmState` devices with 16-byte
//!   bodies, written as header + configuration + 1000 FULL sections + EOF (no
//!   vmdesc), against a loop that appends the same framing and bodies to a plain
//!   `Vec<u8>`. A third line adds the vmdesc trailer (no hand-written twin; it
//!   shows what describing the devices costs).
//! * `part_sections_64mib`: one iterative handler sending 64 MiB of 4 KiB pages
//!   in PART sections of 256 pages (RAM-style records: be64 offset|flags, page;
//!   be64 EOS), against the same bytes appended by hand.
//!
//! It lives in vmstate-devices, not beside the runtime's writer, because its RAM-style
//! records take their flags from `vmstate_devices::ram::protocol`, the one table of them.
//!
//! Both sides write into one reused, pre-sized `Vec<u8>`; the bytes are checked
//! to be identical before measuring. Run with
//! `cargo bench -p vmstate-devices --bench stream_writer`; criterion prints the
//! throughput of each line, and the ratio generated / plain is the figure of merit.

use std::hint::black_box;
use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vmstate_devices::ram::protocol::RamFlag;
use vmstate_runtime::savevm::format::{RecordType, FILE_MAGIC, FILE_VERSION, TARGET_PAGE_SIZE};
use vmstate_runtime::savevm::{
    Configuration, InstanceId, IterateStatus, Pending, QemuVersion, Registry, SaveVmHandlers,
    SectionReader, SectionWriter, StreamWriter,
};
use vmstate_runtime::{Result, VmState};

const MACHINE: &str = "pc-i440fx-7.2";

// ---------------------------------------------------------------------------
// (a) many small FULL sections.

const DEVICES: usize = 1000;

#[derive(VmState, Default, Clone, Debug, PartialEq)]
#[vmstate(name = "dev16", version = 1)]
struct Dev16 {
    a: u64,
    b: u64,
}

fn dev_value(i: usize) -> Dev16 {
    Dev16 {
        a: i as u64 * 0x0101_0101,
        b: !(i as u64),
    }
}

fn device_registry() -> Registry {
    let mut reg = Registry::new();
    for i in 0..DEVICES {
        reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(dev_value(i))))
            .unwrap();
    }
    reg
}

/// What the hand-written side works from: the values and their numbering.
struct PlainDevice {
    section_id: u32,
    instance_id: u32,
    dev: Dev16,
}

fn plain_devices() -> Vec<PlainDevice> {
    (0..DEVICES)
        .map(|i| PlainDevice {
            section_id: i as u32,
            instance_id: i as u32,
            dev: dev_value(i),
        })
        .collect()
}

fn plain_header(out: &mut Vec<u8>) {
    out.extend_from_slice(&FILE_MAGIC.to_be_bytes());
    out.extend_from_slice(&FILE_VERSION.to_be_bytes());
    out.push(RecordType::Configuration as u8);
    out.extend_from_slice(&(MACHINE.len() as u32).to_be_bytes());
    out.extend_from_slice(MACHINE.as_bytes());
}

fn plain_full(out: &mut Vec<u8>, devs: &[PlainDevice]) {
    plain_header(out);
    for d in devs {
        out.push(RecordType::SectionFull as u8);
        out.extend_from_slice(&d.section_id.to_be_bytes());
        out.push(5);
        out.extend_from_slice(b"dev16");
        out.extend_from_slice(&d.instance_id.to_be_bytes());
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&d.dev.a.to_be_bytes());
        out.extend_from_slice(&d.dev.b.to_be_bytes());
        out.push(RecordType::SectionFooter as u8);
        out.extend_from_slice(&d.section_id.to_be_bytes());
    }
    out.push(RecordType::Eof as u8);
}

fn generated_full(out: &mut Vec<u8>, reg: &mut Registry, vmdesc: bool) {
    let config = Configuration::new(MACHINE);
    let mut w = StreamWriter::new(out, QemuVersion::V7_2);
    if !vmdesc {
        w.suppress_vmdesc();
    }
    w.write_header().unwrap();
    w.write_configuration(&config).unwrap();
    w.full_sections(reg).unwrap();
    w.write_eof().unwrap();
    w.into_inner().unwrap();
}

// ---------------------------------------------------------------------------
// (b) large iterative payloads.

const PAGE: usize = TARGET_PAGE_SIZE as usize;
const RAM: usize = 64 << 20;
const PAGES_PER_PART: usize = 256;
// RAM record flags from their one table (`ram::protocol`); this bench lives in
// vmstate-devices so that it can use them.
const FLAG_MEM_SIZE: u64 = RamFlag::MemSize.bit();
const FLAG_PAGE: u64 = RamFlag::Page.bit();
const FLAG_EOS: u64 = RamFlag::Eos.bit();

struct Ram {
    mem: Arc<Vec<u8>>,
    /// The same memory as shared pages, for the zero-copy variant.
    pages: Option<Vec<bytes::Bytes>>,
    next: usize,
}

impl SaveVmHandlers for Ram {
    fn is_iterative(&self) -> bool {
        true
    }
    fn save_setup(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.next = 0;
        w.write_u64(self.mem.len() as u64 | FLAG_MEM_SIZE)?;
        w.write_u64(FLAG_EOS)
    }
    fn save_live_iterate(&mut self, w: &mut SectionWriter) -> Result<IterateStatus> {
        let pages = self.mem.len() / PAGE;
        let end = (self.next + PAGES_PER_PART).min(pages);
        for p in self.next..end {
            let off = p * PAGE;
            w.write_u64(off as u64 | FLAG_PAGE)?;
            match &self.pages {
                // Zero-copy: the page goes to the transport as it is.
                Some(pages) => w.put_shared(pages[p].clone()),
                None => w.write_bytes(&self.mem[off..off + PAGE])?,
            }
        }
        self.next = end;
        w.write_u64(FLAG_EOS)?;
        Ok(if end == pages {
            IterateStatus::Done
        } else {
            IterateStatus::Continue
        })
    }
    fn state_pending_estimate(&mut self) -> Pending {
        Pending {
            must_precopy: (self.mem.len() - self.next * PAGE) as u64,
            can_postcopy: 0,
        }
    }
    fn save_live_complete_precopy(&mut self, w: &mut SectionWriter) -> Result<()> {
        w.write_u64(FLAG_EOS)
    }
    fn load_state(&mut self, _: &mut SectionReader, _: u32) -> Result<()> {
        unreachable!("source only")
    }
}

fn memory() -> Arc<Vec<u8>> {
    Arc::new(
        (0..RAM)
            .map(|i| (i as u8).wrapping_mul(7) ^ (i >> 12) as u8)
            .collect(),
    )
}

fn ram_registry(mem: &Arc<Vec<u8>>, shared: bool) -> Registry {
    let pages = shared.then(|| {
        mem.chunks(PAGE)
            .map(bytes::Bytes::copy_from_slice)
            .collect()
    });
    let mut reg = Registry::new();
    reg.register_savevm_live(
        "ram",
        0,
        4,
        Box::new(Ram {
            mem: mem.clone(),
            pages,
            next: 0,
        }),
    )
    .unwrap();
    reg
}

fn generated_ram(out: &mut Vec<u8>, reg: &mut Registry) {
    let mut w = StreamWriter::new(out, QemuVersion::V7_2);
    w.suppress_vmdesc();
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new(MACHINE)).unwrap();
    w.setup(reg).unwrap();
    while w.iterate(reg, false, &mut |_| false).unwrap() == IterateStatus::Continue {}
    w.complete_precopy(reg).unwrap();
    w.into_inner().unwrap();
}

fn plain_ram(out: &mut Vec<u8>, mem: &[u8]) {
    // Iterative sections never get id 0 (QEMU would resolve their PARTs to its
    // first device), so the registry's first and only section is 1.
    const ID: u32 = 1;
    let footer = |out: &mut Vec<u8>| {
        out.push(RecordType::SectionFooter as u8);
        out.extend_from_slice(&ID.to_be_bytes());
    };
    plain_header(out);
    // START: full header, MEM_SIZE, EOS.
    out.push(RecordType::SectionStart as u8);
    out.extend_from_slice(&ID.to_be_bytes());
    out.push(3);
    out.extend_from_slice(b"ram");
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&4u32.to_be_bytes());
    out.extend_from_slice(&(mem.len() as u64 | FLAG_MEM_SIZE).to_be_bytes());
    out.extend_from_slice(&FLAG_EOS.to_be_bytes());
    footer(out);
    for (part, chunk) in mem.chunks(PAGES_PER_PART * PAGE).enumerate() {
        out.push(RecordType::SectionPart as u8);
        out.extend_from_slice(&ID.to_be_bytes());
        let base = part * PAGES_PER_PART * PAGE;
        for (i, page) in chunk.chunks(PAGE).enumerate() {
            out.extend_from_slice(&((base + i * PAGE) as u64 | FLAG_PAGE).to_be_bytes());
            out.extend_from_slice(page);
        }
        out.extend_from_slice(&FLAG_EOS.to_be_bytes());
        footer(out);
    }
    // END with nothing left, then EOF.
    out.push(RecordType::SectionEnd as u8);
    out.extend_from_slice(&ID.to_be_bytes());
    out.extend_from_slice(&FLAG_EOS.to_be_bytes());
    footer(out);
    out.push(RecordType::Eof as u8);
}

// ---------------------------------------------------------------------------

fn bench(c: &mut Criterion) {
    // (a)
    let mut reg = device_registry();
    let devs = plain_devices();
    let mut generated = Vec::new();
    generated_full(&mut generated, &mut reg, false);
    let mut plain = Vec::new();
    plain_full(&mut plain, &devs);
    assert_eq!(generated, plain, "baseline must write the same bytes");
    let len = plain.len();
    let mut buf = Vec::with_capacity(2 * len + (1 << 20));

    let mut g = c.benchmark_group("full_sections_1000x16");
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function(BenchmarkId::new("stream_writer", len), |b| {
        b.iter(|| {
            buf.clear();
            generated_full(&mut buf, black_box(&mut reg), false);
            black_box(buf.len())
        })
    });
    g.bench_function(BenchmarkId::new("plain_vec", len), |b| {
        b.iter(|| {
            buf.clear();
            plain_full(&mut buf, black_box(&devs));
            black_box(buf.len())
        })
    });
    g.bench_function(BenchmarkId::new("stream_writer_with_vmdesc", len), |b| {
        b.iter(|| {
            buf.clear();
            generated_full(&mut buf, black_box(&mut reg), true);
            black_box(buf.len())
        })
    });
    g.finish();
    drop(buf);

    // (b)
    let mem = memory();
    let mut reg = ram_registry(&mem, false);
    let mut reg_shared = ram_registry(&mem, true);
    let mut generated = Vec::new();
    generated_ram(&mut generated, &mut reg);
    let mut plain = Vec::new();
    plain_ram(&mut plain, &mem);
    assert!(generated == plain, "baseline must write the same bytes");
    generated.clear();
    generated_ram(&mut generated, &mut reg_shared);
    assert!(generated == plain, "shared pages must write the same bytes");
    let len = plain.len();
    drop((generated, plain));
    let mut buf = Vec::with_capacity(len);

    let mut g = c.benchmark_group("part_sections_64mib");
    g.throughput(Throughput::Bytes(len as u64));
    g.sample_size(20);
    g.bench_function(BenchmarkId::new("stream_writer", len), |b| {
        b.iter(|| {
            buf.clear();
            generated_ram(&mut buf, black_box(&mut reg));
            black_box(buf.len())
        })
    });
    g.bench_function(BenchmarkId::new("stream_writer_shared_pages", len), |b| {
        b.iter(|| {
            buf.clear();
            generated_ram(&mut buf, black_box(&mut reg_shared));
            black_box(buf.len())
        })
    });
    g.bench_function(BenchmarkId::new("plain_vec", len), |b| {
        b.iter(|| {
            buf.clear();
            plain_ram(&mut buf, black_box(&mem));
            black_box(buf.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
