//! Every QEMU 7.2 fixture's RAM loads into the declared `pc` block set, and each
//! block then holds the stream's final page contents. The expectation is
//! computed independently of the section and of vm-memory: a plain handler
//! walks the same records with the codec into `Vec<u8>` buffers; QEMU's own
//! `query-migrate` counters (in the fixtures' stats files) must match what
//! was loaded.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use vmstate_devices::ram::protocol::{
    BlockSpecs, MemSizeOptions, RamDecoder, Record, X86_TARGET_PAGE_SIZE as PS,
};
use vmstate_devices::ram::section::RamCounters;
use vmstate_devices::ram::{xbzrle, RamBlockList, RamSection};
use vmstate_runtime::savevm::{
    Configuration, LoadOptions, NoCommands, Registry, SaveVmHandlers, SectionReader, StreamLoader,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::Result;

mod common;
use common::fixtures::{fixture, fixture_dir, STREAMS};
use common::opaque::register_devices;

const NET_ROM: &str = "0000:00:02.0/virtio-net-pci.rom";

fn pc_blocks(stream: &[u8]) -> RamBlockList {
    let net = stream
        .windows(NET_ROM.len())
        .any(|w| w == NET_ROM.as_bytes());
    RamBlockList::qemu_pc(32 << 20, net).unwrap()
}

/// The oracle: records decoded one by one and applied to plain buffers.
struct PlainRam {
    table: BlockSpecs,
    mem: Arc<Mutex<Vec<Vec<u8>>>>,
    decoder: RamDecoder,
}

impl SaveVmHandlers for PlainRam {
    fn is_iterative(&self) -> bool {
        true
    }
    fn load_state(&mut self, r: &mut SectionReader, _: u32) -> Result<()> {
        let mut mem = self.mem.lock().unwrap();
        loop {
            match self.decoder.next_record(r, &self.table)? {
                Record::Eos => return Ok(()),
                Record::MemSize(entries) => {
                    for e in entries {
                        let i = self
                            .table
                            .0
                            .iter()
                            .position(|b| b.idstr == e.idstr)
                            .unwrap();
                        assert_eq!(mem[i].len() as u64, e.used_length, "{}", e.idstr);
                    }
                }
                Record::Zero { block, offset } => {
                    let at = offset as usize;
                    mem[block][at..at + PS as usize].fill(0);
                }
                Record::Page {
                    block,
                    offset,
                    data,
                } => {
                    let at = offset as usize;
                    mem[block][at..at + PS as usize].copy_from_slice(&data);
                }
                Record::Xbzrle {
                    block,
                    offset,
                    data,
                } => {
                    let at = offset as usize;
                    xbzrle::decode(&data, &mut mem[block][at..at + PS as usize]).unwrap();
                }
            }
        }
    }
}

/// Loads a whole stream with `ram` as its "ram" section.
fn load_with(stream: &[u8], ram: Box<dyn SaveVmHandlers>) -> Result<()> {
    let mut reg = Registry::new();
    reg.register_savevm_live("ram", 0, 4, ram)?;
    register_devices(&mut reg, stream, |_| None)?;
    let mut loader = StreamLoader::new(
        LoadOptions::default().with_configuration(Configuration::new("pc-i440fx-7.2")),
    );
    let mut r = Reader::new(BytesMut::from(stream));
    loader.load(&mut r, &mut reg, &mut NoCommands)?;
    Ok(())
}

fn load_stream(stream: &[u8], ram: Box<dyn SaveVmHandlers>) {
    load_with(stream, ram).unwrap();
}

/// Loads a stream into `blocks` through the RAM section.
fn try_load(stream: &[u8], blocks: RamBlockList) -> Result<()> {
    load_with(
        stream,
        Box::new(RamSection::new(Arc::new(Mutex::new(blocks)))),
    )
}

/// QEMU's RAM counters for a fixture (`query-migrate` at completion).
fn qemu_ram_stats(name: &str) -> serde_json::Value {
    let path = fixture_dir().join(name.replace(".mig", ".stats.json"));
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    stats["query_migrate"]["ram"].clone()
}

#[test]
fn every_fixture_ram_loads_into_the_pc_block_set() {
    for name in STREAMS {
        let stream = fixture(name);
        let ram = Arc::new(Mutex::new(pc_blocks(&stream)));
        let section = RamSection::new(ram.clone());
        let counters: Arc<RamCounters> = section.counters();
        load_stream(&stream, Box::new(section));

        let table = ram.lock().unwrap().specs();
        // The oracle starts from garbage so every page must be written by a record.
        let mem = Arc::new(Mutex::new(
            table
                .0
                .iter()
                .map(|b| vec![0xa5; b.used_length as usize])
                .collect(),
        ));
        load_stream(
            &stream,
            Box::new(PlainRam {
                table: table.clone(),
                mem: mem.clone(),
                decoder: RamDecoder::new(PS, MemSizeOptions::default()),
            }),
        );
        let expected = mem.lock().unwrap();
        let ram = ram.lock().unwrap();
        for (block, want) in ram.blocks().iter().zip(expected.iter()) {
            assert!(
                !want
                    .chunks(PS as usize)
                    .any(|p| p.iter().all(|b| *b == 0xa5)),
                "{name}: {} has a page no record wrote",
                block.idstr()
            );
            assert!(
                block.to_vec().unwrap() == *want,
                "{name}: {} differs from the stream's pages",
                block.idstr()
            );
        }

        // QEMU's own figures for the stream.
        let q = qemu_ram_stats(name);
        assert_eq!(ram.total_used(), q["total"].as_u64().unwrap(), "{name}");
        assert_eq!(
            counters.normal.load(Ordering::Relaxed),
            q["normal"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            counters.duplicate.load(Ordering::Relaxed),
            q["duplicate"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            counters.normal_bytes.load(Ordering::Relaxed),
            q["normal-bytes"].as_u64().unwrap(),
            "{name}"
        );
        // SeaBIOS's reset vector (a far jump) sits 16 bytes below the top of pc.bios.
        let mut vector = [0u8; 1];
        ram.get("pc.bios")
            .unwrap()
            .read(0x3fff0, &mut vector)
            .unwrap();
        assert_eq!(vector, [0xea], "{name}: pc.bios reset vector");
    }
}

#[test]
fn a_block_set_without_the_virtio_rom_rejects_the_virtio_net_stream() {
    let stream = fixture("pc-virtio-net.mig");
    let e = try_load(&stream, RamBlockList::qemu_pc(32 << 20, false).unwrap()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!("unknown RAMBlock \"{NET_ROM}\"")),
        "{text}"
    );
    // The typed RAM error is reachable as the source.
    let ram_err = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<vmstate_devices::ram::RamError>())
        .expect("a RamError source");
    assert!(matches!(
        ram_err.kind(),
        vmstate_devices::ram::RamErrorKind::UnknownBlock { .. }
    ));
}

#[test]
fn a_smaller_pc_ram_rejects_the_stream_naming_the_block() {
    let stream = fixture("pc-default.mig");
    let e = try_load(&stream, RamBlockList::qemu_pc(16 << 20, false).unwrap()).unwrap_err();
    assert!(
        e.to_string()
            .contains("RAMBlock \"pc.ram\": length 0x2000000 in the stream, 0x1000000 here"),
        "{e}"
    );
    assert_eq!(e.section(), Some("section 'ram' instance 0 (id 2)"));
}
