//! Wire identity of virtio-blk with QEMU 7.2 (pc-virtio-blk.mig): the
//! section body loads into the model and saves back byte for byte, its
//! fields hold the values QEMU had, and a freshly realized device saves
//! exactly QEMU's bytes.

mod common;

use common::virtio::{blk, disk, guest_mem, qemu_blk_body, MEM_SIZE};
use vmstate_devices::virtio::blk::{CONFIG_LEN, QUEUE_SIZE};
use vmstate_devices::virtio::{VIRTIO_NO_VECTOR, VIRTIO_QUEUE_MAX};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, VmState};

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

#[test]
fn qemu_body_has_the_documented_size() {
    // A 256-byte PCI config + 2 MSI-X vectors + 57 config bytes + one queue,
    // then 64bit_features, virtqueues (16 KiB) and extra_state (28 KiB).
    assert_eq!(qemu_blk_body().len(), 45584);
}

#[test]
fn qemu_body_loads_and_saves_back_identically() {
    let body = qemu_blk_body();
    let mem = guest_mem(MEM_SIZE);
    let file = disk(1 << 20, 0);
    let mut dev = blk(&file, &mem);
    dev.load(&mut Reader::new(&body[..]), 2)
        .expect("load QEMU's virtio-blk");
    let ours = to_bytes(&dev).unwrap();
    assert_eq!(first_difference(&ours, &body), None, "resaved body differs");
}

#[test]
fn qemu_body_fields_have_qemus_values() {
    let body = qemu_blk_body();
    let mem = guest_mem(MEM_SIZE);
    let mut dev = blk(&disk(1 << 20, 0), &mem);
    // Make the local state differ first, so the load has to set it.
    dev.virtio.core.status = 0x0f;
    dev.virtio.core.queues[0].vector = 1;
    dev.load(&mut Reader::new(&body[..]), 2).unwrap();
    let v = &dev.virtio;
    assert_eq!(&v.transport.config[..4], &[0xf4, 0x1a, 0x01, 0x10]);
    assert_eq!(v.transport.config[0x2e], 2, "subsystem id = virtio blk");
    assert_eq!(v.transport.config_vector, VIRTIO_NO_VECTOR);
    assert_eq!(v.transport.msix_table.len(), 2);
    assert!(
        v.transport.msix_table.iter().all(|e| e[12] == 1),
        "vectors masked"
    );
    assert_eq!((v.core.status, v.core.isr, v.core.queue_sel), (0, 0, 0));
    assert_eq!(v.core.guest_features, 0);
    assert_eq!(v.core.config.len(), CONFIG_LEN);
    assert_eq!(v.core.queues.len(), 1);
    let q = &v.core.queues[0];
    assert_eq!(
        (q.size(), q.desc(), q.last_avail_idx(), q.vector),
        (QUEUE_SIZE, 0, 0, VIRTIO_NO_VECTOR)
    );
    assert!(!v.core.broken && !v.core.started);
    assert!(dev.virtio.device.in_flight().is_empty());
    assert_eq!(v.transport.modern_queues[0].num, 0);
}

#[test]
fn fresh_device_saves_qemus_bytes() {
    let mem = guest_mem(MEM_SIZE);
    let dev = blk(&disk(1 << 20, 0), &mem);
    let ours = to_bytes(&dev).unwrap();
    assert_eq!(first_difference(&ours, &qemu_blk_body()), None);
}

#[test]
fn section_description_is_virtio_blk_v2() {
    use vmstate_devices::virtio::blk::VirtioBlkSection;
    let d = VirtioBlkSection::DESCRIPTION;
    assert_eq!(
        (d.name, d.version_id, d.minimum_version_id),
        ("virtio-blk", 2, 2)
    );
    assert_eq!(d.fields.len(), 1);
    assert_eq!(
        (d.fields[0].name, d.fields[0].ty.info),
        ("virtio", "virtio")
    );
    assert_eq!(VIRTIO_QUEUE_MAX, 1024);
}
