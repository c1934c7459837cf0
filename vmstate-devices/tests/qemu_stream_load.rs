//! Whole streams written by real QEMU 7.2 load through our `StreamLoader`:
//! header, configuration, the RAM section's START/PART/END chunks, every FULL
//! section with its footer, EOF and the vmdesc trailer. The keyboard controller
//! sections load into the real models; the other devices (not modelled here) are
//! consumed by size, taken from the stream's own vmdesc.

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use vmstate_devices::pckbd::{Ps2Keyboard, Ps2Mouse, I8042};
use vmstate_devices::ram::section::RamCounters;
use vmstate_devices::ram::{RamBlockList, RamSection};
use vmstate_runtime::savevm::{
    Configuration, LoadOptions, NoCommands, QemuVersion, Registry, SaveVmHandlers, SectionReader,
    StreamLoader,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{Result, VmState};

mod common;
use common::fixtures::fixture;
use common::opaque::register_devices;
use common::qemu::{qemu_available, Qemu, TempDir};

struct Shared<T>(Arc<Mutex<T>>);

impl<T: VmState + Send> SaveVmHandlers for Shared<T> {
    fn has_full_section(&self) -> bool {
        true
    }
    fn load_state(&mut self, r: &mut SectionReader, v: u32) -> Result<()> {
        self.0.lock().unwrap().load(r, v)
    }
    fn save_state(&mut self, w: &mut vmstate_runtime::savevm::SectionWriter) -> Result<()> {
        self.0.lock().unwrap().save(w)
    }
}

struct Loaded {
    kbd: Arc<Mutex<Ps2Keyboard>>,
    mouse: Arc<Mutex<Ps2Mouse>>,
    ctl: Arc<Mutex<I8042>>,
    /// The machine's RAM model (QEMU 7.2's pc block set), loaded.
    ram: Arc<Mutex<RamBlockList>>,
    ram_counters: Arc<RamCounters>,
    vmdesc: String,
    /// The registry, loaded: it can write the same machine state again.
    reg: Registry,
}

const NET_ROM: &str = "0000:00:02.0/virtio-net-pci.rom";

/// Registers the RAM model ("ram" with the pc block set), the keyboard
/// controller models and every other section QEMU's vmdesc lists, then loads
/// the stream.
fn load(stream: &[u8]) -> Result<Loaded> {
    let mut reg = Registry::new();
    // The virtio-net stream has one more RAMBlock (the device's option ROM).
    let with_net_rom = stream
        .windows(NET_ROM.len())
        .any(|w| w == NET_ROM.as_bytes());
    let ram = Arc::new(Mutex::new(
        RamBlockList::qemu_pc(32 << 20, with_net_rom).unwrap(),
    ));
    let section = RamSection::new(ram.clone());
    let ram_counters = section.counters();
    section.register(&mut reg)?;
    let kbd = Arc::new(Mutex::new(Ps2Keyboard::default()));
    let mouse = Arc::new(Mutex::new(Ps2Mouse::default()));
    let ctl = Arc::new(Mutex::new(I8042::default()));
    register_devices(
        &mut reg,
        stream,
        |name| -> Option<Box<dyn SaveVmHandlers>> {
            match name {
                "ps2kbd" => Some(Box::new(Shared(kbd.clone()))),
                "ps2mouse" => Some(Box::new(Shared(mouse.clone()))),
                "pckbd" => Some(Box::new(Shared(ctl.clone()))),
                _ => None,
            }
        },
    )?;
    let mut loader = StreamLoader::new(
        LoadOptions::default().with_configuration(Configuration::new("pc-i440fx-7.2")),
    );
    let mut r = Reader::new(BytesMut::from(stream));
    let vmdesc = loader
        .load(&mut r, &mut reg, &mut NoCommands)?
        .expect("QEMU sends a vmdesc");
    assert_eq!(r.remaining(), 0, "nothing after the vmdesc");
    Ok(Loaded {
        kbd,
        mouse,
        ctl,
        ram,
        ram_counters,
        vmdesc,
        reg,
    })
}

/// Every block's contents, by name.
fn ram_contents(ram: &Mutex<RamBlockList>) -> Vec<(String, Vec<u8>)> {
    ram.lock()
        .unwrap()
        .blocks()
        .iter()
        .map(|b| (b.idstr().to_string(), b.to_vec().unwrap()))
        .collect()
}

#[test]
fn qemu_7_2_streams_load_end_to_end() {
    for name in [
        "pc-default.mig",
        "pc-i8042.mig",
        "pc-virtio-blk.mig",
        "pc-virtio-net.mig",
    ] {
        let stream = fixture(name);
        let loaded = load(&stream).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ram = loaded.ram.lock().unwrap();
        assert_eq!(ram.get("pc.ram").unwrap().used_length(), 32 << 20);
        let c = &loaded.ram_counters;
        let pages = c.normal.load(std::sync::atomic::Ordering::Relaxed)
            + c.duplicate.load(std::sync::atomic::Ordering::Relaxed);
        assert!(pages > 8000, "{name}: {pages} pages");
        assert!(loaded.vmdesc.starts_with("{\"page_size\": 4096"));
        // The controller sections went into the real models and save back to
        // exactly QEMU's bodies.
        for (idstr, body) in [
            (
                "ps2kbd",
                vmstate_runtime::to_bytes(&*loaded.kbd.lock().unwrap()).unwrap(),
            ),
            (
                "ps2mouse",
                vmstate_runtime::to_bytes(&*loaded.mouse.lock().unwrap()).unwrap(),
            ),
            (
                "pckbd",
                vmstate_runtime::to_bytes(&*loaded.ctl.lock().unwrap()).unwrap(),
            ),
        ] {
            let mut header = vec![idstr.len() as u8];
            header.extend_from_slice(idstr.as_bytes());
            let at = stream
                .windows(header.len())
                .position(|w| w == header.as_slice())
                .unwrap();
            let body_at = at + header.len() + 8;
            assert_eq!(
                &stream[body_at..body_at + body.len()],
                &body[..],
                "{name} {idstr}"
            );
            assert_eq!(stream[body_at + body.len()], 0x7e, "{name} {idstr} footer");
        }
    }
}

#[test]
fn corrupted_qemu_stream_fails_with_section_and_offset() {
    let mut stream = fixture("pc-i8042.mig");
    // Break the footer of the "pckbd" section.
    let at = stream.windows(6).position(|w| w == b"\x05pckbd").unwrap();
    let footer = at + 6 + 8 + 60;
    assert_eq!(stream[footer], 0x7e);
    stream[footer] = 0x7f;
    let e = load(&stream).err().expect("must fail");
    assert!(e.to_string().contains("missing section footer"), "{e}");
    assert_eq!(e.section(), Some("section 'pckbd' instance 0 (id 25)"));
    assert_eq!(e.offset(), Some(footer as u64));
}

/// Writes the loaded machine state again with our `StreamWriter` (our framing,
/// our RAM records, our keyboard controller bodies).
fn rewrite(loaded: &mut Loaded) -> Vec<u8> {
    use vmstate_runtime::savevm::{IterateStatus, StreamWriter};
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new("pc-i440fx-7.2"))
        .unwrap();
    w.setup(&mut loaded.reg).unwrap();
    while w.iterate(&mut loaded.reg, false, &mut |_| false).unwrap() != IterateStatus::Done {}
    w.complete_precopy(&mut loaded.reg).unwrap();
    w.into_inner().unwrap()
}

#[test]
fn our_rewritten_stream_loads_back_here() {
    let mut loaded = load(&fixture("pc-i8042.mig")).unwrap();
    let ours = rewrite(&mut loaded);
    let again = load(&ours).unwrap();
    assert_eq!(
        vmstate_runtime::to_bytes(&*again.ctl.lock().unwrap()).unwrap(),
        vmstate_runtime::to_bytes(&*loaded.ctl.lock().unwrap()).unwrap()
    );
    assert!(ram_contents(&again.ram) == ram_contents(&loaded.ram));
}

/// The decisive interop check: real QEMU 7.2 loads a stream written by us.
#[test]
fn qemu_7_2_loads_a_stream_written_here() {
    if !qemu_available() {
        return;
    }
    for name in ["pc-default.mig", "pc-i8042.mig"] {
        let mut loaded = load(&fixture(name)).unwrap();
        let ours = rewrite(&mut loaded);
        let dir = TempDir::new(&format!("qemu-in-{name}"));
        let file = dir.path().join("ours.mig");
        std::fs::write(&file, &ours).unwrap();
        let mut qemu = Qemu::start_keeping_stderr(dir.path(), &["-S", "-incoming", "defer"]);
        let status = qemu.migrate_incoming(&format!("exec:cat {}", file.display()));
        let stderr = qemu.kill_and_stderr();
        assert_eq!(
            status, "completed",
            "{name}: QEMU refused our stream: {stderr}"
        );
    }
}
