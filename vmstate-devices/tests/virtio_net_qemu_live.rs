//! A virtio-net state that firmware produced: QEMU 7.2 boots SeaBIOS, whose
//! network boot runs the iPXE ROM of virtio-net-pci; iPXE negotiates
//! features, sets up the queues, posts receive buffers and transmits (DHCP).
//! QEMU is then stopped and migrated to a file; the whole stream loads here
//! (RAM model, with the NIC's ROM block, then the virtio-net model), the
//! virtio-net body saves back byte for byte, and its fields say what iPXE did.
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
use serde_json::json;
use vmstate_devices::ram::{RamBlockList, RamSection};
use vmstate_devices::virtio::net::{VirtioNetSection, RX, TX};
use vmstate_runtime::savevm::{
    Configuration, LoadOptions, NoCommands, Registry, SaveVmHandlers, SectionReader, SectionWriter,
    StreamLoader,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, Result, VmState};

const IDSTR: &str = "0000:00:02.0/virtio-net";
const PATH: &str = "/machine/peripheral/vnet/virtio-backend";
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

struct Net(Arc<Mutex<VirtioNetSection>>);

impl SaveVmHandlers for Net {
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

/// Boots until iPXE has transmitted a packet, then stops and migrates.
fn ipxe_driven_stream(dir: &TempDir) -> Vec<u8> {
    let mut q = Qemu::start(
        dir.path(),
        &[
            "-netdev",
            "hubport,id=n0,hubid=0",
            "-device",
            "virtio-net-pci,netdev=n0,id=vnet,mac=52:54:00:12:34:56,addr=02.0",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tx = q.execute(
            "x-query-virtio-queue-status",
            json!({ "path": PATH, "queue": TX }),
        );
        if tx["last-avail-idx"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "iPXE never transmitted: {tx}");
        std::thread::sleep(Duration::from_millis(50));
    }
    q.execute("stop", json!({}));
    q.wait_running(false);
    q.migrate_to_file(dir.path())
}

#[test]
fn ipxe_driven_virtio_net_loads_and_saves_back_identically() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("virtio-net");
    let stream = ipxe_driven_stream(&dir);
    let h = find_full_section(&stream, IDSTR);
    let qemu_body = body_to_footer(&stream, &h).to_vec();

    let mut reg = Registry::new();
    let ram = Arc::new(Mutex::new(RamBlockList::qemu_pc(32 << 20, true).unwrap()));
    let mem = ram.lock().unwrap().guest_memory(&["pc.ram"]).unwrap();
    RamSection::new(ram.clone()).register(&mut reg).unwrap();
    let dev = Arc::new(Mutex::new(VirtioNetSection::new([0; 6], mem)));
    register_devices(
        &mut reg,
        &stream,
        |name| -> Option<Box<dyn SaveVmHandlers>> {
            (name == IDSTR).then(|| Box::new(Net(dev.clone())) as Box<dyn SaveVmHandlers>)
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
        .unwrap_or_else(|e| panic!("loading QEMU's iPXE-driven stream: {e}"));

    let dev = dev.lock().unwrap();
    assert_eq!(
        to_bytes(&*dev).unwrap(),
        qemu_body,
        "resaved virtio-net body differs"
    );
    let v = &dev.virtio;
    assert_eq!(dev.virtio.device.mac, MAC);
    assert_ne!(v.core.status & 4, 0, "DRIVER_OK");
    assert!(v.core.started);
    assert_ne!(v.core.guest_features & (1 << 32), 0, "VERSION_1");
    assert!(v.core.queues[TX].last_avail_idx() > 0, "iPXE transmitted");
    assert!(v.core.queues[RX].desc() != 0, "receive ring set up");
}
