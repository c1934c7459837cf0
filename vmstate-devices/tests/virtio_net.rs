//! virtio-net: wire identity with QEMU 7.2 (pc-virtio-net.mig), a guest
//! driver transmitting, receiving and programming the filter through the
//! control queue, the filter state migrating, and the MAC-table / backend
//! checks of "virtio-net-device" (CVE-2013-4148/4149).

mod common;

use common::fixtures::fixture;
use common::sections::{body_to_footer, find_full_section};
use common::virtio::{guest_mem, RingLayout, SplitRing, SLOT};
use vm_memory::{Bytes, GuestAddress};
use vmstate_devices::virtio::net::{VirtioNetSection, CTRL, RX, TX};
use vmstate_devices::virtio::pci::common as reg;
use vmstate_devices::virtio::{GuestMem, VirtioError};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, VmState};

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
// Offsets in QEMU's body: the device part starts after 3 queues.
const IN_USE: usize = 433;
const VNET: usize = 949;

fn qemu_net_body() -> Vec<u8> {
    let s = fixture("pc-virtio-net.mig");
    let h = find_full_section(&s, "0000:00:02.0/virtio-net");
    assert_eq!(h.version_id, 11);
    body_to_footer(&s, &h).to_vec()
}

fn load(body: &[u8]) -> (VirtioNetSection, vmstate_runtime::Result<()>) {
    let mut dev = VirtioNetSection::new([0; 6], guest_mem(32 << 20));
    let r = dev.load(&mut Reader::new(body), 11);
    (dev, r)
}

#[test]
fn qemu_body_loads_saves_back_and_equals_a_fresh_model() {
    let body = qemu_net_body();
    assert_eq!(body.len(), 46143);
    let (dev, r) = load(&body);
    r.unwrap();
    assert_eq!(to_bytes(&dev).unwrap(), body);
    let n = &dev.virtio.device;
    assert_eq!(n.mac, MAC);
    assert_eq!(n.status, 1, "link up");
    assert!(n.filter.promisc && n.filter.macs.is_empty());
    assert!(n.filter.vlans.iter().all(|&b| b == 0xff));
    let sizes: Vec<u16> = dev.virtio.core.queues.iter().map(|q| q.size()).collect();
    assert_eq!(sizes, [256, 256, 64]);
    let fresh = VirtioNetSection::new(MAC, guest_mem(1 << 20));
    assert_eq!(to_bytes(&fresh).unwrap(), body);
}

#[test]
fn mac_table_and_backend_checks() {
    let body = qemu_net_body();
    let with_in_use = |n: u32, extra: usize| {
        let mut b = body[..IN_USE].to_vec();
        b.extend_from_slice(&n.to_be_bytes());
        b.extend(std::iter::repeat_n(0x01, extra));
        b.extend_from_slice(&body[IN_USE + 4..]);
        b
    };
    for n in [0x8100_0000u32, 0xffff_ffff] {
        let (_, r) = load(&with_in_use(n, 0));
        let e = r.unwrap_err();
        assert_eq!(
            VirtioError::of(&e),
            Some(&VirtioError::MacTableTooLarge(n)),
            "CVE-2013-4148 in_use {n:#x}"
        );
    }
    // CVE-2013-4149: 65..1000 entries are skipped, the table ends up empty.
    for n in [65u32, 1000] {
        let (dev, r) = load(&with_in_use(n, 6 * n as usize));
        r.unwrap_or_else(|e| panic!("in_use {n}: {e}"));
        assert!(dev.virtio.device.filter.macs.is_empty());
    }
    // Two entries fit.
    let (dev, r) = load(&with_in_use(2, 12));
    r.unwrap();
    assert_eq!(dev.virtio.device.filter.macs, [[1; 6], [1; 6]]);
    let mut b = body.clone();
    b[VNET + 3] = 1;
    let (_, r) = load(&b);
    assert_eq!(
        VirtioError::of(&r.unwrap_err()),
        Some(&VirtioError::BackendLacks("vnet header"))
    );
}

struct Rings {
    rx: SplitRing,
    tx: SplitRing,
    ctrl: SplitRing,
}

fn init(dev: &mut VirtioNetSection) -> Rings {
    let v = &mut dev.virtio;
    for s in [0, 1, 3] {
        v.common_write(reg::STATUS, s);
    }
    v.common_write(reg::GFSELECT, 0);
    v.common_write(
        reg::GF,
        (1 << 5) | (1 << 16) | (1 << 17) | (1 << 18) | (1 << 19),
    );
    v.common_write(reg::GFSELECT, 1);
    v.common_write(reg::GF, 1);
    v.common_write(reg::STATUS, 1 | 2 | 8);
    let mut rings = Vec::new();
    for (q, base) in [(RX, 0x10000u64), (TX, 0x20000), (CTRL, 0x30000)] {
        let ring = RingLayout::at(base, 16);
        v.common_write(reg::Q_SELECT, q as u32);
        v.common_write(reg::Q_SIZE, 16);
        v.common_write(reg::Q_DESCLO, ring.desc as u32);
        v.common_write(reg::Q_AVAILLO, ring.avail as u32);
        v.common_write(reg::Q_USEDLO, ring.used as u32);
        v.common_write(reg::Q_ENABLE, 1);
        rings.push(SplitRing::new(ring, base + 0x100000, SLOT));
    }
    v.common_write(reg::STATUS, 1 | 2 | 8 | 4);
    let ctrl = rings.pop().unwrap();
    let tx = rings.pop().unwrap();
    let rx = rings.pop().unwrap();
    Rings { rx, tx, ctrl }
}

fn ctrl(dev: &mut VirtioNetSection, mem: &GuestMem, r: &mut Rings, cmd: &[u8]) -> u8 {
    let (a, ack) = (
        0x300000 + 0x100 * u64::from(r.ctrl.avail_idx),
        0x380000 + u64::from(r.ctrl.avail_idx),
    );
    mem.write_slice(cmd, GuestAddress(a)).unwrap();
    r.ctrl
        .submit(mem, &[(a, cmd.len() as u32, false), (ack, 1, true)], false)
        .unwrap();
    dev.virtio.queue_notify(CTRL);
    assert_eq!(r.ctrl.reap(mem).unwrap().len(), 1);
    mem.read_obj(GuestAddress(ack)).unwrap()
}

fn frame(dst: [u8; 6], payload: u8) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend(std::iter::repeat_n(payload, 50));
    f
}

#[test]
fn driver_transmits_receives_and_filters_and_the_filter_migrates() {
    let mem = guest_mem(8 << 20);
    let mut dev = VirtioNetSection::new(MAC, mem.clone());
    let mut r = init(&mut dev);
    // Transmit: 12-byte header + frame, in two descriptors.
    let pkt = frame([0xff; 6], 7);
    mem.write_slice(&[0; 12], GuestAddress(0x200000)).unwrap();
    mem.write_slice(&pkt, GuestAddress(0x201000)).unwrap();
    r.tx.submit(
        &mem,
        &[(0x200000, 12, false), (0x201000, pkt.len() as u32, false)],
        false,
    )
    .unwrap();
    dev.virtio.queue_notify(TX);
    assert_eq!(dev.virtio.device.take_transmitted(), [pkt]);
    assert_eq!(r.tx.reap(&mem).unwrap().len(), 1);

    // Receive before a buffer is posted: kept, then delivered on the rx kick.
    assert!(dev
        .virtio
        .with_device(|d, ctx| d.receive(ctx, &frame(MAC, 1))));
    assert_eq!(dev.virtio.device.rx_backlog(), 1);
    r.rx.submit(&mem, &[(0x210000, 1536, true)], false).unwrap();
    r.rx.submit(&mem, &[(0x211000, 1536, true)], false).unwrap();
    dev.virtio.queue_notify(RX);
    assert_eq!(r.rx.reap(&mem).unwrap(), [(0, 12 + 64)]);
    let mut got = vec![0u8; 64];
    mem.read_slice(&mut got, GuestAddress(0x210000 + 12))
        .unwrap();
    assert_eq!(got, frame(MAC, 1));

    // Control queue: promisc off, a multicast MAC table, VLAN 5 only.
    assert_eq!(ctrl(&mut dev, &mem, &mut r, &[0, 0, 0]), 0);
    let multi = [0x01, 0x00, 0x5e, 0, 0, 1];
    let mut table = vec![1, 0];
    table.extend_from_slice(&0u32.to_le_bytes());
    table.extend_from_slice(&1u32.to_le_bytes());
    table.extend_from_slice(&multi);
    assert_eq!(ctrl(&mut dev, &mem, &mut r, &table), 0);
    assert_eq!(
        ctrl(&mut dev, &mem, &mut r, &[2, 1, 6, 0]),
        0,
        "VLAN 6 removed"
    );
    assert_eq!(
        ctrl(&mut dev, &mem, &mut r, &[9, 9]),
        1,
        "unknown class: error"
    );
    let other = [0x02, 0, 0, 0, 0, 9];
    let accept = |d: &mut VirtioNetSection, dst| {
        d.virtio
            .with_device(|n, ctx| n.receive(ctx, &frame(dst, 2)))
    };
    assert!(
        !accept(&mut dev, other),
        "promisc off: foreign unicast dropped"
    );
    assert!(accept(&mut dev, multi), "table multicast accepted");
    assert!(!accept(&mut dev, [0x01, 0, 0x5e, 0, 0, 2]));
    assert!(!dev.virtio.device.vlan_allowed(6) && dev.virtio.device.vlan_allowed(5));

    // Migrate the programmed device.
    let body = to_bytes(&dev).unwrap();
    let mut dst = VirtioNetSection::new(MAC, mem.clone());
    dst.load(&mut Reader::new(&body[..]), 11).unwrap();
    assert_eq!(to_bytes(&dst).unwrap(), body);
    assert_eq!(dst.virtio.device.filter, dev.virtio.device.filter);
    assert!(!accept(&mut dst, other));
    // The source put its multicast frame into the second buffer; the
    // destination has none left and keeps its frame until the driver posts one.
    assert_eq!(r.rx.reap(&mem).unwrap(), [(1, 12 + 64)]);
    assert!(accept(&mut dst, multi));
    assert_eq!(dst.virtio.device.rx_backlog(), 1);
}
