//! virtio-blk driven as a guest driver drives it (modern PCI interface, one
//! split queue in guest memory): read, write, flush, get-id, error statuses,
//! indirect descriptors, interrupts; and a migration with requests in flight
//! that the destination completes exactly once.

mod common;

use std::os::unix::fs::FileExt;

use common::virtio::{
    blk, disk, guest_mem, init_blk, RingLayout, F_EVENT_IDX, F_INDIRECT, F_VERSION_1,
};
use vm_memory::{Bytes, GuestAddress};
use vmstate_devices::virtio::pci::Interrupt;
use vmstate_devices::virtio::GuestMem;
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, VmState};

const MEM: usize = 4 << 20;
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;

fn status(mem: &GuestMem, at: u64) -> u8 {
    mem.read_obj(GuestAddress(at)).unwrap()
}

fn data(mem: &GuestMem, at: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    mem.read_slice(&mut v, GuestAddress(at)).unwrap();
    v
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add(i as u8).wrapping_mul(7))
        .collect()
}

#[test]
fn driver_writes_reads_flushes_and_gets_id() {
    for indirect in [false, true] {
        let mem = guest_mem(MEM);
        let file = disk(1 << 20, 0);
        let mut dev = blk(&file, &mem);
        let mut drv = init_blk(
            &mut dev,
            F_VERSION_1 | F_INDIRECT,
            RingLayout::at(0x10000, 256),
            0x100000,
        );
        assert_eq!(dev.virtio.core.guest_features, F_VERSION_1 | F_INDIRECT);

        let w = pattern(3, 1024);
        let (h1, _, s1) = drv.request(&mem, T_OUT, 8, &w, 1024, indirect).unwrap();
        dev.virtio.queue_notify(0);
        assert_eq!(status(&mem, s1), 0, "write ok");
        let mut on_disk = vec![0; 1024];
        file.read_exact_at(&mut on_disk, 8 * 512).unwrap();
        assert_eq!(on_disk, w);

        let (h2, d2, s2) = drv.request(&mem, T_IN, 8, &[], 1024, indirect).unwrap();
        let (h3, _, s3) = drv.request(&mem, T_FLUSH, 0, &[], 0, indirect).unwrap();
        let (h4, d4, s4) = drv.request(&mem, T_GET_ID, 0, &[], 20, indirect).unwrap();
        dev.virtio.queue_notify(0);
        assert_eq!(
            (status(&mem, s2), status(&mem, s3), status(&mem, s4)),
            (0, 0, 0)
        );
        assert_eq!(data(&mem, d2, 1024), w);
        assert_eq!(&data(&mem, d4, 20)[..10], b"vmstate-rs");
        // Used lengths: the device-writable size of each chain (QEMU's in_len).
        assert_eq!(
            drv.reap(&mem).unwrap(),
            [
                (u32::from(h1), 1),
                (u32::from(h2), 1025),
                (u32::from(h3), 1),
                (u32::from(h4), 21)
            ]
        );
        // MSI-X is off: INTx, and the ISR says "queue", read-to-clear.
        assert_eq!(
            dev.virtio.transport.take_interrupts().first(),
            Some(&Interrupt::Intx(true))
        );
        assert_eq!(dev.virtio.isr_read(), 1);
        assert_eq!(dev.virtio.isr_read(), 0);
        assert!(!dev.virtio.transport.irq_state[0]);
    }
}

#[test]
fn bad_requests_get_error_statuses() {
    let mem = guest_mem(MEM);
    let file = disk(64 << 10, 0);
    let mut dev = blk(&file, &mem);
    let mut drv = init_blk(&mut dev, F_VERSION_1, RingLayout::at(0x10000, 16), 0x100000);
    let cases: [(u32, u64, u32, u8); 4] = [
        (T_IN, 128, 512, 1), // past the end of a 128-sector disk: IOERR
        (T_OUT, 0, 100, 1),  // not a whole sector: IOERR
        (99, 0, 0, 2),       // unknown type: UNSUPP
        (T_IN, 127, 512, 0), // the last sector: OK
    ];
    for (ty, sector, len, want) in cases {
        let (_, _, s) = drv
            .request(&mem, ty, sector, &vec![0; len as usize], len, false)
            .unwrap();
        dev.virtio.queue_notify(0);
        assert_eq!(status(&mem, s), want, "type {ty} sector {sector} len {len}");
    }
}

#[test]
fn config_space_reads_refresh_the_migrated_cache() {
    let mem = guest_mem(MEM);
    let mut dev = blk(&disk(1 << 20, 0), &mem);
    assert!(
        dev.virtio.core.config.iter().all(|&b| b == 0),
        "QEMU's cache starts zeroed"
    );
    let mut cap = [0u8; 8];
    dev.virtio.config_read(0, &mut cap);
    assert_eq!(u64::from_le_bytes(cap), 2048);
    assert_eq!(&dev.virtio.core.config[..8], &cap);
}

#[test]
fn event_idx_suppresses_interrupts_until_used_event() {
    let mem = guest_mem(MEM);
    let mut dev = blk(&disk(1 << 20, 0), &mem);
    let mut drv = init_blk(
        &mut dev,
        F_VERSION_1 | F_EVENT_IDX,
        RingLayout::at(0x10000, 16),
        0x100000,
    );
    drv.set_used_event(&mem, 2).unwrap(); // interrupt once the third request is used
    for _ in 0..2 {
        drv.request(&mem, T_FLUSH, 0, &[], 0, false).unwrap();
        dev.virtio.queue_notify(0);
    }
    assert!(dev.virtio.transport.take_interrupts().is_empty());
    drv.request(&mem, T_FLUSH, 0, &[], 0, false).unwrap();
    dev.virtio.queue_notify(0);
    assert_eq!(
        dev.virtio.transport.take_interrupts(),
        [Interrupt::Intx(true)]
    );
}

fn copy_ram(from: &GuestMem, to: &GuestMem) {
    let mut buf = vec![0u8; MEM];
    from.read_slice(&mut buf, GuestAddress(0)).unwrap();
    to.write_slice(&buf, GuestAddress(0)).unwrap();
}

#[test]
fn in_flight_requests_migrate_and_complete_exactly_once() {
    let src_mem = guest_mem(MEM);
    let file = disk(1 << 20, 0);
    let mut src = blk(&file, &src_mem);
    let mut drv = init_blk(
        &mut src,
        F_VERSION_1 | F_INDIRECT,
        RingLayout::at(0x10000, 64),
        0x100000,
    );
    // One request completes before the I/O stall, three stay in flight.
    let (_, _, s0) = drv
        .request(&src_mem, T_OUT, 0, &pattern(1, 512), 512, false)
        .unwrap();
    src.virtio.queue_notify(0);
    assert_eq!(status(&src_mem, s0), 0);
    src.virtio.device.set_io_stalled(true);
    let writes: Vec<(u64, Vec<u8>)> = (0..3)
        .map(|k| (10 + 4 * k, pattern(k as u8 + 9, 2048)))
        .collect();
    let mut statuses = Vec::new();
    for (k, (sector, bytes)) in writes.iter().enumerate() {
        let (_, _, s) = drv
            .request(&src_mem, T_OUT, *sector, bytes, 2048, k == 1)
            .unwrap();
        statuses.push(s);
    }
    src.virtio.queue_notify(0);
    assert_eq!(src.virtio.device.in_flight().len(), 3);
    assert_eq!(src.virtio.core.queues[0].inuse(), 3);
    assert_eq!(drv.reap(&src_mem).unwrap().len(), 1);

    // Migrate: RAM, then the device section.
    let body = to_bytes(&src).unwrap();
    let dst_mem = guest_mem(MEM);
    copy_ram(&src_mem, &dst_mem);
    let mut dst = blk(&file, &dst_mem);
    dst.load(&mut Reader::new(&body[..]), 2).unwrap();
    assert_eq!(
        to_bytes(&dst).unwrap(),
        body,
        "in-flight state resaves identically"
    );
    assert_eq!(dst.virtio.device.in_flight(), src.virtio.device.in_flight());
    assert_eq!(dst.virtio.core.queues[0].inuse(), 3);
    drop(src);

    // Nothing happened on disk yet; the destination resumes and re-submits.
    let mut buf = vec![0; 2048];
    file.read_exact_at(&mut buf, 10 * 512).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    dst.virtio.with_device(|d, ctx| d.resume(ctx));
    // A later kick must not find them again on the avail ring.
    dst.virtio.queue_notify(0);
    assert_eq!(
        dst.virtio.device.completed(),
        3,
        "each in-flight request exactly once"
    );
    let used = drv.reap(&dst_mem).unwrap();
    assert_eq!(used.len(), 3);
    assert!(drv.reap(&dst_mem).unwrap().is_empty());
    for ((sector, bytes), s) in writes.iter().zip(statuses) {
        assert_eq!(status(&dst_mem, s), 0);
        file.read_exact_at(&mut buf, sector * 512).unwrap();
        assert_eq!(&buf, bytes);
    }
    assert_eq!(dst.virtio.core.queues[0].inuse(), 0);
}
