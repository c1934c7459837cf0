//! virtio-blk through the legacy (0.9.5) BAR0 interface: 32-bit features, a
//! page-frame ring, status and ISR; and its migration, where the destination
//! derives the avail and used rings from the descriptor table as QEMU does.

mod common;

use std::os::unix::fs::FileExt;

use common::virtio::{blk, disk, guest_mem, BlkDriver, RingLayout, SplitRing, SLOT};
use vm_memory::{Bytes, GuestAddress};
use vmstate_devices::virtio::legacy::reg;
use vmstate_devices::virtio::queue::legacy_ring_addresses;
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, VmState};

const MEM: usize = 4 << 20;
const PFN: u32 = 0x20;

#[test]
fn legacy_driver_works_and_migrates() {
    let mem = guest_mem(MEM);
    let file = disk(1 << 20, 0);
    let mut dev = blk(&file, &mem);
    let v = &mut dev.virtio;
    v.legacy_write(reg::STATUS, 1, 0);
    v.legacy_write(reg::STATUS, 1, 1 | 2);
    let host = v.legacy_read(reg::HOST_FEATURES, 4);
    assert_ne!(host & (1 << 28), 0, "indirect descriptors offered");
    v.legacy_write(reg::GUEST_FEATURES, 4, host & (1 << 28));
    v.legacy_write(reg::QUEUE_SEL, 2, 0);
    let num = v.legacy_read(reg::QUEUE_NUM, 2) as u16;
    assert_eq!(num, 256);
    v.legacy_write(reg::QUEUE_PFN, 4, PFN);
    v.legacy_write(reg::STATUS, 1, 1 | 2 | 4);
    // Config at 0x14 without MSI-X: the capacity.
    assert_eq!(v.legacy_read(0x14, 4), 2048);

    let desc = u64::from(PFN) << 12;
    let (avail, used) = legacy_ring_addresses(desc, num);
    let mut drv = BlkDriver::new(SplitRing::new(
        RingLayout {
            size: num,
            desc,
            avail,
            used,
        },
        0x100000,
        SLOT,
    ));
    let data = vec![0x5a; 512];
    let (_, _, s) = drv.request(&mem, 1, 3, &data, 512, true).unwrap();
    dev.virtio.legacy_write(reg::QUEUE_NOTIFY, 2, 0);
    assert_eq!(mem.read_obj::<u8>(GuestAddress(s)).unwrap(), 0);
    assert_eq!(dev.virtio.legacy_read(reg::ISR, 1), 1);
    assert_eq!(dev.virtio.legacy_read(reg::ISR, 1), 0, "read-to-clear");
    assert_eq!(drv.reap(&mem).unwrap().len(), 1);

    // Migrate: the stream carries only desc; the destination derives the rest.
    let body = to_bytes(&dev).unwrap();
    let mut dst = blk(&file, &mem);
    dst.load(&mut Reader::new(&body[..]), 2).unwrap();
    assert_eq!(to_bytes(&dst).unwrap(), body);
    let q = &dst.virtio.core.queues[0];
    assert_eq!((q.desc(), q.avail(), q.used()), (desc, avail, used));
    assert_eq!((q.last_avail_idx(), q.used_idx()), (1, 1));
    assert_eq!(dst.virtio.core.guest_features, 1 << 28);

    let (_, _, s2) = drv.request(&mem, 1, 4, &data, 512, false).unwrap();
    dst.virtio.legacy_write(reg::QUEUE_NOTIFY, 2, 0);
    assert_eq!(mem.read_obj::<u8>(GuestAddress(s2)).unwrap(), 0);
    assert_eq!(drv.reap(&mem).unwrap().len(), 1);
    let mut buf = [0u8; 1024];
    file.read_exact_at(&mut buf, 3 * 512).unwrap();
    assert!(buf.iter().all(|&b| b == 0x5a));
    // Reset through the status register forgets the ring.
    dst.virtio.legacy_write(reg::STATUS, 1, 0);
    assert_eq!(dst.virtio.legacy_read(reg::QUEUE_PFN, 4), 0);
}
