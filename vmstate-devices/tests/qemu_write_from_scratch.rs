//! A stream built here that real QEMU 7.2 runs: the state of our own models
//! (guest RAM contents we chose, the keyboard controller, keyboard and mouse
//! programmed through their ports and a key pressed, a virtio-blk device a
//! driver negotiated features with and set its queue up on), the remaining
//! `pc` sections (CPU, chipset, timers, ...) taken from a QEMU save of the
//! same command line, written by our writer ([`write_stream`]: our RAM
//! chunking, our vmdesc). `qemu-system-x86_64 -incoming "exec:cat FILE"`
//! loads it and lands paused after the migration; its own save then holds
//! our pckbd, ps2kbd, ps2mouse and virtio-blk bodies byte for byte and our
//! RAM; `cont` runs the guest.
//!
//! Skips (printing why) when QEMU is not installed, unless
//! `VMSTATE_REQUIRE_QEMU=1`.

use serde_json::json;
use vmstate_devices::pckbd::KeyCode;
use vmstate_devices::qemu_pc::{write_stream, MachineState, QemuPc, VirtioModel};
use vmstate_devices::virtio::blk::QUEUE_SIZE;

mod common;
use common::qemu::{qemu_available, Qemu, TempDir};
use common::virtio::{BlkDriver, RingLayout, F_VERSION_1};

const BLK: &str = "0000:00:02.0/virtio-blk";
/// Where our RAM pattern goes, and how much of it.
const OURS_AT: u64 = 0x40_0000;
const OURS_LEN: usize = 1 << 20;

fn body<'a>(s: &'a MachineState, name: &str) -> &'a [u8] {
    &s.sections
        .iter()
        .find(|x| x.0 == name)
        .unwrap_or_else(|| panic!("no section {name}"))
        .2
}

#[test]
fn qemu_runs_a_stream_written_from_our_models() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("from-scratch");
    let img = dir.path().join("blk.raw");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let drive = format!("file={},format=raw,if=none,id=d0", img.display());
    let devices = [
        "-drive",
        drive.as_str(),
        "-device",
        "virtio-blk-pci,drive=d0,addr=02.0",
    ];
    // The sections we do not model come from QEMU's save of this machine.
    let base = {
        let mut args = devices.to_vec();
        args.push("-S");
        Qemu::start(dir.path(), &args).migrate_to_file(dir.path())
    };
    let (pc, mut reg, _) = QemuPc::load_stream(&base).unwrap();
    let before = pc.state().unwrap();

    // Our RAM contents: a pattern over 1 MiB, and one page of text.
    let pattern: Vec<u8> = (0..OURS_LEN)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect();
    {
        let ram = pc.ram.lock().unwrap();
        let b = ram.get("pc.ram").unwrap();
        b.write(OURS_AT, &pattern).unwrap();
        b.write(0x7f_0000, b"written by vmstate-rs, run by QEMU")
            .unwrap();
    }
    // The keyboard controller, programmed through its ports as a driver
    // does: command byte, LEDs, scancode set, mouse sample rate and
    // enable, and a key pressed.
    {
        let mut i8042 = pc.i8042.lock().unwrap();
        for (port, val) in [
            (0x64, 0x60),
            (0x60, 0x47),
            (0x64, 0xa8),
            (0x60, 0xed),
            (0x60, 0x07),
            (0x64, 0xd4),
            (0x60, 0xf3),
            (0x64, 0xd4),
            (0x60, 0x50),
            (0x64, 0xd4),
            (0x60, 0xf4),
        ] {
            i8042.write_port(port, val);
        }
        i8042.key_event(KeyCode::from_qcode_name("q").unwrap(), true);
    }
    // virtio-blk: features negotiated (VERSION_1), queue 0 set up, DRIVER_OK.
    let Some((_, _, VirtioModel::Blk(blk))) = pc.virtio.iter().find(|v| v.0 == BLK) else {
        panic!("no virtio-blk model: {:?}", pc.sections());
    };
    {
        let mut dev = blk.lock().unwrap();
        BlkDriver::init(
            &mut dev.virtio,
            F_VERSION_1,
            RingLayout::at(0x30_0000, QUEUE_SIZE),
            0x38_0000,
        )
        .expect("blk driver init");
        assert_ne!(dev.virtio.core.status & 4, 0, "DRIVER_OK");
    }
    let ours = pc.state().unwrap();
    for name in ["pckbd", "ps2kbd", "ps2mouse", BLK] {
        assert_ne!(body(&ours, name), body(&before, name), "{name} is ours");
    }

    let stream = write_stream(&mut reg).unwrap();
    let file = dir.path().join("ours.mig");
    std::fs::write(&file, &stream).unwrap();
    let incoming = format!("exec:cat {}", file.display());
    let dst_dir = TempDir::new("from-scratch-dst");
    let mut args = devices.to_vec();
    args.extend(["-S", "-incoming", incoming.as_str()]);
    let mut qemu = Qemu::start_keeping_stderr(dst_dir.path(), &args);
    let status = qemu.wait_incoming();
    if status != "completed" {
        panic!("QEMU's incoming: {status}: {}", qemu.kill_and_stderr());
    }
    let st = qemu.execute("query-status", json!({}));
    assert_eq!(st["running"], false, "{st}");

    // QEMU's own save of what it loaded.
    let theirs = QemuPc::load_stream(&qemu.migrate_to_file(dst_dir.path()))
        .unwrap()
        .0
        .state()
        .unwrap();
    for name in ["pckbd", "ps2kbd", "ps2mouse", BLK] {
        assert_eq!(body(&theirs, name), body(&ours, name), "{name}");
    }
    for ((name, a), (_, b)) in ours.ram.iter().zip(&theirs.ram) {
        assert!(a == b, "RAM block {name} differs");
    }
    let ram = &theirs.ram.iter().find(|b| b.0 == "pc.ram").unwrap().1;
    let at = OURS_AT as usize;
    assert_eq!(&ram[at..at + OURS_LEN], &pattern[..]);

    // And the guest runs from there.
    qemu.execute("cont", json!({}));
    qemu.wait_running(true);
}
