//! The whole pc-virtio-blk.mig stream loads through the savevm loader with the
//! virtio-blk model registered at QEMU's idstr `0000:00:02.0/virtio-blk` and
//! its rings in the machine's RAM model ("pc.ram", loaded first by the RAM
//! section, as virtio_load needs). The model then saves QEMU's body again.
//! This is also how a machine registers the device.
// The runtime's option structs are built field by field, never as literals
// (they are `#[non_exhaustive]`).
#![allow(clippy::field_reassign_with_default)]

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use vmstate_devices::ram::{RamBlockList, RamSection};
use vmstate_devices::virtio::blk::VirtioBlkSection;
use vmstate_runtime::savevm::{
    Configuration, LoadOptions, NoCommands, Registry, SaveVmHandlers, SectionReader, SectionWriter,
    StreamLoader,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, Result, VmState};

mod common;
use common::fixtures::fixture;
use common::opaque::register_devices;
use common::virtio::{disk, qemu_blk_body};

const IDSTR: &str = "0000:00:02.0/virtio-blk";

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

#[test]
fn whole_qemu_stream_loads_with_the_virtio_blk_model() {
    let stream = fixture("pc-virtio-blk.mig");
    let mut reg = Registry::new();
    let ram = Arc::new(Mutex::new(RamBlockList::qemu_pc(32 << 20, false).unwrap()));
    let mem = ram.lock().unwrap().guest_memory(&["pc.ram"]).unwrap();
    RamSection::new(ram.clone()).register(&mut reg).unwrap();
    let file = disk(1 << 20, 0);
    let dev = Arc::new(Mutex::new(VirtioBlkSection::new(file, "d0", mem).unwrap()));
    let mut seen = false;
    register_devices(
        &mut reg,
        &stream,
        |name| -> Option<Box<dyn SaveVmHandlers>> {
            (name == IDSTR).then(|| {
                seen = true;
                Box::new(Blk(dev.clone())) as Box<dyn SaveVmHandlers>
            })
        },
    )
    .unwrap();
    assert!(seen, "the vmdesc lists {IDSTR}");
    let mut loader = StreamLoader::new(
        LoadOptions::default().with_configuration(Configuration::new("pc-i440fx-7.2")),
    );
    // State QEMU's stream must overwrite.
    dev.lock().unwrap().virtio.core.status = 0x0f;
    dev.lock().unwrap().virtio.core.queues[0].vector = 1;
    let mut r = Reader::new(BytesMut::from(&stream[..]));
    loader.load(&mut r, &mut reg, &mut NoCommands).unwrap();
    assert_eq!(dev.lock().unwrap().virtio.core.status, 0);
    assert_eq!(to_bytes(&*dev.lock().unwrap()).unwrap(), qemu_blk_body());
}
