//! Split-ring behaviour of [`VirtQueue`] over guest memory: descriptor
//! chains, indirect tables, 16-bit index wrap-around, EVENT_IDX suppression
//! and the post-load consistency checks.

use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::virtio::element::{Element, Segment};
use crate::virtio::GuestMem;

const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
const SIZE: u16 = 8;

fn mem() -> GuestMem {
    GuestMem::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
}

fn desc(m: &GuestMem, table: u64, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let at = table + 16 * u64::from(i);
    m.write_obj(addr, GuestAddress(at)).unwrap();
    m.write_obj(len, GuestAddress(at + 8)).unwrap();
    m.write_obj(flags, GuestAddress(at + 12)).unwrap();
    m.write_obj(next, GuestAddress(at + 14)).unwrap();
}

fn publish(m: &GuestMem, slot: u16, head: u16, idx: u16) {
    m.write_obj(head, GuestAddress(AVAIL + 4 + 2 * u64::from(slot % SIZE)))
        .unwrap();
    m.write_obj(idx, GuestAddress(AVAIL + 2)).unwrap();
}

fn queue(event_idx: bool) -> VirtQueue {
    let mut q = VirtQueue::new(SIZE);
    q.set_addresses(DESC, AVAIL, USED);
    q.set_event_idx(event_idx);
    q.set_ready(true);
    q
}

fn pop(q: &mut VirtQueue, m: &GuestMem) -> Option<Element> {
    let c = q.ring_mut().pop_descriptor_chain(m)?;
    q.took();
    Some(Element::from_chain(c))
}

#[test]
fn chain_of_three_splits_into_readable_and_writable_segments() {
    let m = mem();
    desc(&m, DESC, 0, 0x8000, 16, 1, 1);
    desc(&m, DESC, 1, 0x9000, 512, 1 | 2, 2);
    desc(&m, DESC, 2, 0xa000, 1, 2, 0);
    publish(&m, 0, 0, 1);
    let mut q = queue(false);
    let e = pop(&mut q, &m).unwrap();
    assert_eq!(e.head, 0);
    assert_eq!(
        e.out,
        [Segment {
            addr: 0x8000,
            len: 16
        }]
    );
    assert_eq!(
        e.inn,
        [
            Segment {
                addr: 0x9000,
                len: 512
            },
            Segment {
                addr: 0xa000,
                len: 1
            }
        ]
    );
    assert_eq!((e.out_len(), e.in_len()), (16, 513));
    assert!(pop(&mut q, &m).is_none(), "only one chain published");
    assert_eq!((q.last_avail_idx(), q.inuse()), (1, 1));
}

#[test]
fn indirect_table_is_followed() {
    let m = mem();
    let table = 0x5000;
    desc(&m, table, 0, 0x8000, 16, 1, 1);
    desc(&m, table, 1, 0x9000, 4096, 1, 2);
    desc(&m, table, 2, 0xa000, 1, 2, 0);
    desc(&m, DESC, 3, table, 48, 4, 0);
    publish(&m, 0, 3, 1);
    let mut q = queue(false);
    let e = pop(&mut q, &m).unwrap();
    assert_eq!(e.head, 3);
    assert_eq!(e.out.len(), 2);
    assert_eq!(
        e.inn,
        [Segment {
            addr: 0xa000,
            len: 1
        }]
    );
}

#[test]
fn avail_and_used_indices_wrap_at_16_bits() {
    let m = mem();
    for i in 0..SIZE {
        desc(&m, DESC, i, 0x8000 + 0x100 * u64::from(i), 0x10, 2, 0);
    }
    let mut q = queue(false);
    q.set_last_avail_idx(0xfffe);
    q.ring_mut().set_next_used(0xfffe);
    // Three chains published across the wrap: avail idx goes 0xfffe -> 1.
    for (k, idx) in [0xfffeu16, 0xffff, 0].into_iter().enumerate() {
        publish(&m, idx, k as u16, idx.wrapping_add(1));
    }
    let heads: Vec<u32> = std::iter::from_fn(|| pop(&mut q, &m))
        .map(|e| e.head)
        .collect();
    assert_eq!(heads, [0, 1, 2]);
    assert_eq!(q.last_avail_idx(), 1);
    for h in [0u16, 1, 2] {
        q.complete(&m, 0, h, 0x10).unwrap();
    }
    assert_eq!(q.used_idx(), 1);
    let used_idx: u16 = m.read_obj(GuestAddress(USED + 2)).unwrap();
    assert_eq!(used_idx, 1);
    // The third element landed in slot 0 of the used ring (0x10000 % 8).
    let id: u32 = m.read_obj(GuestAddress(USED + 4)).unwrap();
    assert_eq!(id, 2);
    assert_eq!(q.inuse(), 0);
}

#[test]
fn event_idx_suppresses_until_used_event_is_passed() {
    let m = mem();
    for i in 0..SIZE {
        desc(&m, DESC, i, 0x8000, 1, 2, 0);
        publish(&m, i, i, i + 1);
    }
    let mut q = queue(true);
    // The driver wants an interrupt only after the used entry with index 2.
    m.write_obj(2u16, GuestAddress(AVAIL + 4 + 2 * u64::from(SIZE)))
        .unwrap();
    let mut wanted = Vec::new();
    for _ in 0..4 {
        let e = pop(&mut q, &m).unwrap();
        wanted.push(q.complete(&m, 0, e.head as u16, 1).unwrap());
    }
    assert_eq!(wanted, [false, false, true, false]);
}

#[test]
fn without_event_idx_no_interrupt_flag_is_honoured() {
    let m = mem();
    desc(&m, DESC, 0, 0x8000, 1, 2, 0);
    publish(&m, 0, 0, 1);
    m.write_obj(1u16, GuestAddress(AVAIL)).unwrap(); // VRING_AVAIL_F_NO_INTERRUPT
    let mut q = queue(false);
    let e = pop(&mut q, &m).unwrap();
    assert!(!q.complete(&m, 0, e.head as u16, 1).unwrap());
}

#[test]
fn legacy_layout_puts_used_on_the_next_page() {
    assert_eq!(legacy_ring_addresses(0x10000, 256), (0x11000, 0x12000));
    // 128 entries: desc 2 KiB, avail 260 bytes -> used at 0x11000.
    assert_eq!(legacy_ring_addresses(0x10000, 128), (0x10800, 0x11000));
}

#[test]
fn post_load_recomputes_inuse_from_guest_used_idx() {
    let m = mem();
    m.write_obj(5u16, GuestAddress(AVAIL + 2)).unwrap();
    m.write_obj(3u16, GuestAddress(USED + 2)).unwrap();
    let mut q = queue(false);
    q.set_last_avail_idx(5);
    assert!(q.post_load(&m, 0).unwrap());
    assert_eq!((q.used_idx(), q.inuse()), (3, 2));
}

#[test]
fn post_load_rejects_more_in_use_than_the_ring_holds() {
    let m = mem();
    m.write_obj(100u16, GuestAddress(AVAIL + 2)).unwrap();
    let mut q = queue(false);
    q.set_last_avail_idx(100); // used idx 0: 100 in use in an 8-entry ring
    let e = q.post_load(&m, 0).unwrap_err();
    assert!(
        matches!(
            e,
            VirtioError::InUseExceedsSize {
                inuse: 100,
                size: 8,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn post_load_flags_avail_too_far_ahead() {
    let m = mem();
    m.write_obj(20u16, GuestAddress(AVAIL + 2)).unwrap();
    let mut q = queue(false);
    assert!(
        !q.post_load(&m, 0).unwrap(),
        "20 new heads in an 8-entry ring"
    );
}

#[test]
fn post_load_rejects_rings_outside_memory() {
    let m = mem();
    let mut q = VirtQueue::new(SIZE);
    q.set_addresses(0x20_0000, AVAIL, USED);
    assert!(matches!(
        q.post_load(&m, 3),
        Err(VirtioError::RingOutsideMemory { queue: 3, .. })
    ));
}

#[test]
fn range_in_memory_checks_both_ends_and_overflow() {
    let m = mem();
    assert!(VirtQueue::range_in_memory(&m, 0, 0x10_0000));
    assert!(!VirtQueue::range_in_memory(&m, 1, 0x10_0000));
    assert!(!VirtQueue::range_in_memory(&m, u64::MAX, 2));
    assert!(VirtQueue::range_in_memory(&m, u64::MAX, 0));
}
