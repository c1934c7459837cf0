//! Property: for every virtio-blk state a driver can reach (feature subset,
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
