//! virtio-rng: a driver posts buffers and gets them filled from the host
//! source; the section migrates; and, with a live QEMU 7.2, a paused
//! `virtio-rng-pci` section equals a fresh model's bytes and loads back.

mod common;

use std::io::Write;

use common::qemu::{qemu_available, Qemu, TempDir};
use common::sections::{body_to_footer, find_full_section};
use common::virtio::{guest_mem, RingLayout, SplitRing, SLOT};
use vm_memory::{Bytes, GuestAddress};
use vmstate_devices::virtio::pci::common as reg;
use vmstate_devices::virtio::rng::VirtioRngSection;
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, VmState};

fn source(bytes: &[u8]) -> std::fs::File {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    use std::io::Seek;
    f.rewind().unwrap();
    f
}

#[test]
fn driver_buffers_are_filled_from_the_source_and_the_state_migrates() {
    let mem = guest_mem(1 << 20);
    let entropy: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(37)).collect();
    let mut dev = VirtioRngSection::new(source(&entropy), mem.clone());
    let v = &mut dev.virtio;
    for s in [0, 1, 3] {
        v.common_write(reg::STATUS, s);
    }
    v.common_write(reg::GFSELECT, 1);
    v.common_write(reg::GF, 1); // VERSION_1
    v.common_write(reg::STATUS, 1 | 2 | 8);
    let ring = RingLayout::at(0x10000, 8);
    v.common_write(reg::Q_SIZE, 8);
    v.common_write(reg::Q_DESCLO, ring.desc as u32);
    v.common_write(reg::Q_AVAILLO, ring.avail as u32);
    v.common_write(reg::Q_USEDLO, ring.used as u32);
    v.common_write(reg::Q_ENABLE, 1);
    v.common_write(reg::STATUS, 1 | 2 | 8 | 4);
    let mut drv = SplitRing::new(ring, 0x20000, SLOT);
    drv.submit(&mem, &[(0x30000, 16, true)], false).unwrap();
    drv.submit(&mem, &[(0x31000, 8, true), (0x32000, 8, true)], false)
        .unwrap();
    dev.virtio.queue_notify(0);
    assert_eq!(drv.reap(&mem).unwrap(), [(0, 16), (1, 16)]);
    let mut got = [0u8; 16];
    mem.read_slice(&mut got, GuestAddress(0x30000)).unwrap();
    assert_eq!(got, entropy[..16]);
    mem.read_slice(&mut got[..8], GuestAddress(0x32000))
        .unwrap();
    assert_eq!(got[..8], entropy[24..32]);
    assert_eq!(dev.virtio.device.delivered(), 32);

    let body = to_bytes(&dev).unwrap();
    let mut dst = VirtioRngSection::new(source(&entropy[32..]), mem.clone());
    dst.load(&mut Reader::new(&body[..]), 1).unwrap();
    assert_eq!(to_bytes(&dst).unwrap(), body);
    drv.submit(&mem, &[(0x33000, 4, true)], false).unwrap();
    dst.virtio.queue_notify(0);
    assert_eq!(drv.reap(&mem).unwrap(), [(3, 4)]); // descriptors 1-2 were the second chain
    mem.read_slice(&mut got[..4], GuestAddress(0x33000))
        .unwrap();
    assert_eq!(got[..4], entropy[32..36]);
}

#[test]
fn paused_qemu_virtio_rng_matches_a_fresh_model() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("virtio-rng");
    let mut q = Qemu::start(dir.path(), &["-S", "-device", "virtio-rng-pci,addr=04.0"]);
    let stream = q.migrate_to_file(dir.path());
    drop(q);
    let h = find_full_section(&stream, "0000:00:04.0/virtio-rng");
    assert_eq!(h.version_id, 1);
    let qemu_body = body_to_footer(&stream, &h).to_vec();
    let mem = guest_mem(32 << 20);
    let fresh = VirtioRngSection::new(source(&[]), mem.clone());
    assert_eq!(to_bytes(&fresh).unwrap(), qemu_body, "fresh model vs QEMU");
    let mut loaded = VirtioRngSection::new(source(&[]), mem);
    loaded.virtio.core.status = 7;
    loaded.load(&mut Reader::new(&qemu_body[..]), 1).unwrap();
    assert_eq!(loaded.virtio.core.status, 0);
    assert_eq!(to_bytes(&loaded).unwrap(), qemu_body);
}
