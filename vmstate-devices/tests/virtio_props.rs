//! Property: for every virtio-blk (and, below, virtio-net, -rng and
//! -balloon) state a driver can reach (feature subset,
//! queue size, requests completed or left in flight, ISR reads, MSI-X table
//! writes), save then load into a fresh device is the identity: the
//! destination resaves the same bytes and completes the same requests.

mod common;

use common::virtio::{
    blk, disk, guest_mem, init_blk, RingLayout, F_EVENT_IDX, F_INDIRECT, F_VERSION_1,
};
use proptest::prelude::*;
use vm_memory::{Bytes, GuestAddress};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, VmState};

const MEM: usize = 2 << 20;

#[derive(Debug, Clone)]
enum Op {
    Write {
        sector: u64,
        seed: u8,
        indirect: bool,
    },
    Read {
        sector: u64,
    },
    Flush,
    Stall(bool),
    ReadIsr,
    MsixWrite {
        entry: usize,
        byte: usize,
        value: u8,
    },
    ConfigRead,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..2040, any::<u8>(), any::<bool>()).prop_map(|(sector, seed, indirect)| Op::Write {
            sector,
            seed,
            indirect
        }),
        (0u64..2040).prop_map(|sector| Op::Read { sector }),
        Just(Op::Flush),
        any::<bool>().prop_map(Op::Stall),
        Just(Op::ReadIsr),
        (0usize..2, 0usize..16, any::<u8>()).prop_map(|(entry, byte, value)| Op::MsixWrite {
            entry,
            byte,
            value
        }),
        Just(Op::ConfigRead),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn save_then_load_is_identity(
        features in prop_oneof![Just(F_VERSION_1), Just(F_VERSION_1 | F_INDIRECT), Just(F_VERSION_1 | F_EVENT_IDX | F_INDIRECT)],
        size_log in 2u32..9,
        ops in proptest::collection::vec(op(), 0..24),
    ) {
        let mem = guest_mem(MEM);
        let file = disk(1 << 20, 0);
        let mut src = blk(&file, &mem);
        let size = 1u16 << size_log;
        let mut drv = init_blk(&mut src, features, RingLayout::at(0x10000, size), 0x40000);
        for op in ops {
            // A request takes up to 3 descriptors of the driver's `size`.
            let room = drv.free_descriptors() >= 3;
            match op {
                Op::Write { sector, seed, indirect } if room => {
                    let data = vec![seed; 512];
                    drv.request(&mem, 1, sector, &data, 512, indirect && features & F_INDIRECT != 0).unwrap();
                    src.virtio.queue_notify(0);
                }
                Op::Read { sector } if room => {
                    drv.request(&mem, 0, sector, &[], 512, false).unwrap();
                    src.virtio.queue_notify(0);
                }
                Op::Flush if room => {
                    drv.request(&mem, 4, 0, &[], 0, false).unwrap();
                    src.virtio.queue_notify(0);
                }
                Op::Stall(s) => {
                    if s {
                        src.virtio.device.set_io_stalled(true);
                    } else {
                        src.virtio.with_device(|d, ctx| d.resume(ctx));
                    }
                }
                Op::ReadIsr => { src.virtio.isr_read(); }
                Op::MsixWrite { entry, byte, value } => src.virtio.transport.write_msix_table(entry * 16 + byte, &[value]),
                Op::ConfigRead => { let mut b = [0u8; 8]; src.virtio.config_read(0, &mut b); }
                _ => {}
            }
            // Reap so descriptors can be reused.
            drv.reap(&mem).unwrap();
        }
        let body = to_bytes(&src).unwrap();
        let mut dst = blk(&file, &mem);
        dst.load(&mut Reader::new(&body[..]), 2).unwrap();
        prop_assert_eq!(to_bytes(&dst).unwrap(), body);
        prop_assert_eq!(dst.virtio.device.in_flight(), src.virtio.device.in_flight());
        prop_assert_eq!(dst.virtio.core.guest_features, src.virtio.core.guest_features);
        prop_assert_eq!(dst.virtio.core.queues[0].inuse(), src.virtio.core.queues[0].inuse());
        prop_assert_eq!(dst.virtio.core.queues[0].size(), size);
        // Both complete the same outstanding requests.
        let pending = src.virtio.device.in_flight().len() as u64;
        dst.virtio.with_device(|d, ctx| d.resume(ctx));
        prop_assert_eq!(dst.virtio.device.completed(), pending);
        let used: u16 = mem.read_obj(GuestAddress(drv.ring.used + 2)).unwrap();
        prop_assert_eq!(u16::from_le(used), drv.avail_idx);
    }
}

mod net_rng_balloon {
    //! The same property for virtio-net, virtio-rng and virtio-balloon, each
    //! driven by the library's driver through the states it can reach.

    use super::common::virtio::guest_mem;
    use proptest::prelude::*;
    use vmstate_devices::virtio::balloon::{VirtioBalloonSection, DEFLATE, INFLATE, STATS};
    use vmstate_devices::virtio::driver::balloon::BalloonDriver;
    use vmstate_devices::virtio::driver::net::NetDriver;
    use vmstate_devices::virtio::driver::rng::RngDriver;
    use vmstate_devices::virtio::driver::RingLayout;
    use vmstate_devices::virtio::net::{VirtioNetSection, CTRL, RX, TX};
    use vmstate_devices::virtio::rng::VirtioRngSection;
    use vmstate_runtime::wire::Reader;
    use vmstate_runtime::{to_bytes, VmState};

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    #[derive(Debug, Clone)]
    enum NetOp {
        Transmit(u8, u16),
        PostRx(usize),
        HostFrame(u8),
        Rx(u8, bool),
        MacTable(u8, u8),
        Vlan(u16, bool),
        SetMac(u8),
        ReadIsr,
    }

    fn net_op() -> impl Strategy<Value = NetOp> {
        prop_oneof![
            (any::<u8>(), 14u16..1500).prop_map(|(s, l)| NetOp::Transmit(s, l)),
            (0usize..8).prop_map(NetOp::PostRx),
            any::<u8>().prop_map(NetOp::HostFrame),
            (0u8..6, any::<bool>()).prop_map(|(c, on)| NetOp::Rx(c, on)),
            (0u8..4, 0u8..70).prop_map(|(u, m)| NetOp::MacTable(u, m)),
            (0u16..4200, any::<bool>()).prop_map(|(v, add)| NetOp::Vlan(v, add)),
            any::<u8>().prop_map(NetOp::SetMac),
            Just(NetOp::ReadIsr),
        ]
    }

    fn frame(dst: [u8; 6], seed: u8, len: usize) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&MAC);
        f.extend((0..len.saturating_sub(12)).map(|i| seed.wrapping_add(i as u8)));
        f
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn net_save_then_load_is_identity(size_log in 2u32..7, ops in proptest::collection::vec(net_op(), 0..24)) {
            let mem = guest_mem(4 << 20);
            let mut src = VirtioNetSection::new(MAC, mem.clone());
            let size = 1u16 << size_log;
            let mut drv = NetDriver::init(&mut src.virtio, 0x10_0000, size).unwrap();
            for op in ops {
                match op {
                    NetOp::Transmit(seed, len) => {
                        if drv.transmit(&mem, &frame([0xff; 6], seed, len as usize)).is_ok() {
                            src.virtio.queue_notify(TX);
                        }
                        drv.reap_tx(&mem).unwrap();
                        src.virtio.device.take_transmitted();
                    }
                    NetOp::PostRx(n) => {
                        drv.post_rx(&mem, n).unwrap();
                        src.virtio.queue_notify(RX);
                    }
                    NetOp::HostFrame(seed) => {
                        let dst = if seed % 3 == 0 { [0x01, 0, 0x5e, 0, 0, seed] } else { MAC };
                        src.virtio.with_device(|n, ctx| n.receive(ctx, &frame(dst, seed, 64)));
                        drv.receive(&mem).unwrap();
                    }
                    NetOp::Rx(cmd, on) => {
                        if drv.ctrl(&mem, 0, cmd, &[u8::from(on)]).is_ok() {
                            src.virtio.queue_notify(CTRL);
                        }
                    }
                    NetOp::MacTable(uni, multi) => {
                        let mut d = u32::from(uni).to_le_bytes().to_vec();
                        d.extend((0..uni).flat_map(|i| [2, 0, 0, 0, 0, i]));
                        d.extend_from_slice(&u32::from(multi).to_le_bytes());
                        d.extend((0..multi).flat_map(|i| [1, 0, 0x5e, 0, 0, i]));
                        if d.len() < 2000 && drv.ctrl(&mem, 1, 0, &d).is_ok() {
                            src.virtio.queue_notify(CTRL);
                        }
                    }
                    NetOp::Vlan(vid, add) => {
                        if drv.ctrl(&mem, 2, u8::from(!add), &vid.to_le_bytes()).is_ok() {
                            src.virtio.queue_notify(CTRL);
                        }
                    }
                    NetOp::SetMac(b) => {
                        if drv.ctrl(&mem, 1, 1, &[0x52, 0, 0, 0, 0, b]).is_ok() {
                            src.virtio.queue_notify(CTRL);
                        }
                    }
                    NetOp::ReadIsr => { src.virtio.isr_read(); }
                }
                drv.ctrl_ack(&mem).unwrap();
            }
            let body = to_bytes(&src).unwrap();
            let mut dst = VirtioNetSection::new(MAC, mem.clone());
            dst.load(&mut Reader::new(&body[..]), 11).unwrap();
            prop_assert_eq!(to_bytes(&dst).unwrap(), body);
            prop_assert_eq!(&dst.virtio.device.filter, &src.virtio.device.filter);
            prop_assert_eq!(dst.virtio.device.mac, src.virtio.device.mac);
            for q in 0..3 {
                prop_assert_eq!(dst.virtio.core.queues[q].inuse(), src.virtio.core.queues[q].inuse());
            }
        }

        #[test]
        fn rng_save_then_load_is_identity(ops in proptest::collection::vec((1u32..64, any::<bool>(), any::<bool>()), 0..24)) {
            let mem = guest_mem(1 << 20);
            let mut src = VirtioRngSection::new(std::fs::File::open("/dev/urandom").unwrap(), mem.clone());
            let mut drv = RngDriver::init(&mut src.virtio, RingLayout::at(0x10000, 8), 0x20000).unwrap();
            for (len, kick, isr) in ops {
                let _ = drv.request(&mem, len);
                if kick {
                    src.virtio.queue_notify(0);
                    drv.take(&mem).unwrap();
                }
                if isr {
                    src.virtio.isr_read();
                }
            }
            let body = to_bytes(&src).unwrap();
            let mut dst = VirtioRngSection::new(std::fs::File::open("/dev/urandom").unwrap(), mem.clone());
            dst.load(&mut Reader::new(&body[..]), 1).unwrap();
            prop_assert_eq!(to_bytes(&dst).unwrap(), body);
            // Requests the source left on the ring are served by the destination.
            dst.virtio.queue_notify(0);
            drv.take(&mem).unwrap();
            prop_assert_eq!(drv.queue.in_flight(), 0);
        }

        #[test]
        fn balloon_save_then_load_is_identity(
            poison in any::<bool>(),
            ops in proptest::collection::vec((0u8..7, any::<u32>()), 0..24),
        ) {
            let mem = guest_mem(4 << 20);
            let mut src = VirtioBalloonSection::new(mem.clone());
            let mut drv = BalloonDriver::init(&mut src.virtio, 0x10_0000, 16, poison).unwrap();
            for (op, v) in ops {
                let pfns: Vec<u32> = (0..(v % 8)).map(|k| 0x200 + (v >> 8) % 64 + k).collect();
                match op {
                    0 => if drv.frames(&mem, true, &pfns).is_ok() { src.virtio.queue_notify(INFLATE) },
                    1 => if drv.frames(&mem, false, &pfns).is_ok() { src.virtio.queue_notify(DEFLATE) },
                    2 => BalloonDriver::set_actual(&mut src.virtio, v % 1024),
                    3 => BalloonDriver::set_poison(&mut src.virtio, v),
                    4 => src.request(v % 1024),
                    5 => if drv.post_stats(&mem, &[((v % 12) as u16, u64::from(v))]).is_ok() { src.virtio.queue_notify(STATS) },
                    _ => { src.virtio.with_device(|b, ctx| b.request_stats(ctx)); }
                }
                drv.reap(&mem).unwrap();
            }
            let body = to_bytes(&src).unwrap();
            let mut dst = VirtioBalloonSection::new(mem.clone());
            dst.load(&mut Reader::new(&body[..]), 1).unwrap();
            prop_assert_eq!(to_bytes(&dst).unwrap(), body);
            let (s, d) = (&src.virtio.device, &dst.virtio.device);
            prop_assert_eq!((s.num_pages, s.actual, s.poison_val), (d.num_pages, d.actual, d.poison_val));
            prop_assert_eq!(dst.virtio.core.queues[STATS].inuse(), u16::from(s.holds_stats_buffer()));
            // The destination takes the held statistics buffer again.
            dst.virtio.with_device(|b, ctx| b.resume(ctx));
            prop_assert_eq!(dst.virtio.device.holds_stats_buffer(), s.holds_stats_buffer());
        }
    }
}
