//! A virtio-blk state that firmware produced: QEMU 7.2 boots SeaBIOS, which
//! probes the virtio-blk disk (modern interface, queue set up, DRIVER_OK,
//! boot-sector read); then QEMU is stopped and migrated to a file. The whole
//! stream loads here (RAM model first, then the virtio-blk model, whose
//! rings live in that RAM), the body saves back byte for byte, and its
//! fields say what the firmware did.
//!
//! Skips (printing why) when QEMU is not installed, unless
//! `VMSTATE_REQUIRE_QEMU=1`.
// The runtime's option structs are built field by field, never as literals
// (they are `#[non_exhaustive]`).
#![allow(clippy::field_reassign_with_default)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::opaque::register_devices;
use common::qemu::{qemu_available, Qemu, TempDir};
use common::sections::{body_to_footer, find_full_section};
use common::virtio::disk;
use serde_json::json;
use vmstate_devices::ram::{RamBlockList, RamSection};
use vmstate_devices::virtio::blk::VirtioBlkSection;
use vmstate_runtime::savevm::{
    Configuration, LoadOptions, NoCommands, Registry, SaveVmHandlers, SectionReader, SectionWriter,
    StreamLoader,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, Result, VmState};

const IDSTR: &str = "0000:00:02.0/virtio-blk";
const DRIVER_OK: u64 = 4;

struct Blk(Arc<Mutex<VirtioBlkSection>>);

impl SaveVmHandlers for Blk {
    fn has_full_section(&self) -> bool {
        true
    }
    fn load_state(&mut self, r: &mut SectionReader, v: u32) -> Result<()> {
        self.0.lock().unwrap().load(r, v)
    }
    fn save_state(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.0.lock().unwrap().save(w)
    }
}

/// Boots SeaBIOS with a virtio-blk disk until the firmware set DRIVER_OK
/// and submitted a request, then stops QEMU (which drains the request) and
/// migrates.
fn firmware_driven_stream(dir: &TempDir) -> Vec<u8> {
    let img = dir.path().join("blk.raw");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let drive = format!("file={},format=raw,if=none,id=d0", img.display());
    let mut q = Qemu::start(
        dir.path(),
        &[
            "-drive",
            &drive,
            "-device",
            "virtio-blk-pci,drive=d0,id=vblk,addr=02.0",
        ],
    );
    // DRIVER_OK comes before the first request: wait for a request too.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = q.execute(
            "x-query-virtio-status",
            json!({ "path": "/machine/peripheral/vblk/virtio-backend" }),
        );
        let driver_ok = st["status"]["statuses"].as_array().is_some_and(|a| {
            a.iter()
                .any(|s| s.as_str().is_some_and(|s| s.contains("DRIVER_OK")))
        });
        let queue = q.execute(
            "x-query-virtio-queue-status",
            json!({ "path": "/machine/peripheral/vblk/virtio-backend", "queue": 0 }),
        );
        let submitted = queue["last-avail-idx"].as_u64().unwrap_or(0);
        if driver_ok && submitted > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "firmware never drove the disk: {st} {queue}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    q.execute("stop", json!({}));
    q.wait_running(false);
    q.migrate_to_file(dir.path())
}

#[test]
fn firmware_driven_virtio_blk_loads_and_saves_back_identically() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("virtio-blk");
    let stream = firmware_driven_stream(&dir);
    let h = find_full_section(&stream, IDSTR);
    let qemu_body = body_to_footer(&stream, &h).to_vec();

    let mut reg = Registry::new();
    let ram = Arc::new(Mutex::new(RamBlockList::qemu_pc(32 << 20, false).unwrap()));
    let mem = ram.lock().unwrap().guest_memory(&["pc.ram"]).unwrap();
    RamSection::new(ram.clone()).register(&mut reg).unwrap();
    let dev = Arc::new(Mutex::new(
        VirtioBlkSection::new(disk(1 << 20, 0), "d0", mem).unwrap(),
    ));
    register_devices(
        &mut reg,
        &stream,
        |name| -> Option<Box<dyn SaveVmHandlers>> {
            (name == IDSTR).then(|| Box::new(Blk(dev.clone())) as Box<dyn SaveVmHandlers>)
        },
    )
    .unwrap();
    let mut loader = StreamLoader::new(
        LoadOptions::default().with_configuration(Configuration::new("pc-i440fx-7.2")),
    );
    loader
        .load(
            &mut Reader::new(BytesMut::from(&stream[..])),
            &mut reg,
            &mut NoCommands,
        )
        .unwrap_or_else(|e| panic!("loading QEMU's firmware-driven stream: {e}"));

    let dev = dev.lock().unwrap();
    assert_eq!(
        to_bytes(&*dev).unwrap(),
        qemu_body,
        "resaved virtio-blk body differs"
    );
    let v = &dev.virtio;
    assert_ne!(
        u64::from(v.core.status) & DRIVER_OK,
        0,
        "status {:#x}",
        v.core.status
    );
    assert!(v.core.started);
    assert_ne!(
        v.core.guest_features & (1 << 32),
        0,
        "SeaBIOS drives the modern interface"
    );
    let q = &v.core.queues[0];
    assert!(
        q.desc() != 0 && q.avail() != 0 && q.used() != 0,
        "queue 0 set up"
    );
    assert!(q.last_avail_idx() > 0, "the firmware submitted requests");
    assert_eq!(q.inuse(), 0, "and got them all back");
    // The firmware read the config: the migrated cache holds the capacity.
    assert_eq!(
        u64::from_le_bytes(v.core.config[..8].try_into().unwrap()),
        2048
    );
    assert!(v.transport.modern_queues[0].enabled);
}
