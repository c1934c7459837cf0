//! `virtio_load`'s checks (qemu-wire.md §7.6, §9): each hostile value,
//! patched into QEMU's own virtio-blk body, is refused with its typed
//! [`VirtioError`] (or, where QEMU accepts it, loads as QEMU would).

mod common;

use common::virtio::{blk, disk, guest_mem, qemu_blk_body, MEM_SIZE};
use vmstate_devices::virtio::blk::VirtioBlkSection;
use vmstate_devices::virtio::element::ELEMENT_WIRE_SIZE;
use vmstate_devices::virtio::VirtioError;
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, Error, VmState};

// Offsets in QEMU's virtio-blk body (2 MSI-X vectors, 57 config bytes, 1 queue).
const PCI_VERSION: usize = 0;
const CONFIG: usize = 4;
const IRQ_STATE: usize = 260;
const CONFIG_VECTOR: usize = 309;
const QUEUE_SEL: usize = 313;
const CONFIG_LEN: usize = 319;
const NUM_QUEUES: usize = 380;
const Q0_NUM: usize = 384;
const Q0_DESC: usize = 388;
const Q0_LAST_AVAIL: usize = 396;
const Q0_VECTOR: usize = 398;
const REQUESTS: usize = 400;
const SUB_64BIT_NAME: usize = 403;
const FEATURES64: usize = 428;
const Q0_AVAIL: usize = 459;
const Q0_USED: usize = 467;

const VERSION_1: u64 = 1 << 32;

fn patch(body: &mut [u8], at: usize, bytes: &[u8]) {
    body[at..at + bytes.len()].copy_from_slice(bytes);
}

fn load(body: &[u8]) -> (VirtioBlkSection, Result<(), Error>) {
    let mem = guest_mem(MEM_SIZE);
    let mut dev = blk(&disk(1 << 20, 0), &mem);
    let r = dev.load(&mut Reader::new(body), 2);
    (dev, r)
}

/// A modern (VERSION_1) body whose queue 0 has rings at 0x10000/0x11000/0x12000.
fn modern_with_ring(last_avail: u16) -> Vec<u8> {
    let mut b = qemu_blk_body();
    patch(&mut b, FEATURES64, &VERSION_1.to_be_bytes());
    patch(&mut b, Q0_DESC, &0x10000u64.to_be_bytes());
    patch(&mut b, Q0_LAST_AVAIL, &last_avail.to_be_bytes());
    patch(&mut b, Q0_AVAIL, &0x11000u64.to_be_bytes());
    patch(&mut b, Q0_USED, &0x12000u64.to_be_bytes());
    b
}

/// The body with one in-flight request (hand-built VirtQueueElementOld).
fn with_request(in_num: u32, out_num: u32, in_addr0: u64, in_len0: u64) -> Vec<u8> {
    let b = qemu_blk_body();
    let mut elem = vec![0u8; ELEMENT_WIRE_SIZE];
    elem[4..8].copy_from_slice(&out_num.to_le_bytes());
    elem[8..12].copy_from_slice(&in_num.to_le_bytes());
    elem[16..24].copy_from_slice(&in_addr0.to_le_bytes());
    let in_sg = 16 + 2 * 8 * 1024;
    elem[in_sg + 8..in_sg + 16].copy_from_slice(&in_len0.to_le_bytes());
    let mut out = b[..REQUESTS].to_vec();
    out.push(1);
    out.extend_from_slice(&elem);
    out.extend_from_slice(&b[REQUESTS..]);
    out
}

fn modified(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = qemu_blk_body();
    f(&mut b);
    b
}

#[test]
fn hostile_values_fail_with_their_typed_error() {
    type Check = fn(&VirtioError) -> bool;
    let cases: Vec<(&str, Vec<u8>, Check)> = vec![
        (
            "CVE-2013-6399 queue_sel 0x400",
            modified(|b| patch(b, QUEUE_SEL, &[0x04, 0x00])),
            |e| matches!(e, VirtioError::QueueSelOutOfRange { queue_sel: 0x400 }),
        ),
        (
            "CVE-2013-6399 queue_sel 0xffff",
            modified(|b| patch(b, QUEUE_SEL, &[0xff, 0xff])),
            |e| matches!(e, VirtioError::QueueSelOutOfRange { queue_sel: 0xffff }),
        ),
        (
            "CVE-2013-4151 1025 queues",
            modified(|b| patch(b, NUM_QUEUES, &1025u32.to_be_bytes())),
            |e| matches!(e, VirtioError::TooManyQueues(1025)),
        ),
        (
            "CVE-2013-4151 0xffffffff queues",
            modified(|b| patch(b, NUM_QUEUES, &u32::MAX.to_be_bytes())),
            |e| matches!(e, VirtioError::TooManyQueues(u32::MAX)),
        ),
        (
            "more queues than the device has",
            modified(|b| patch(b, NUM_QUEUES, &2u32.to_be_bytes())),
            |e| {
                matches!(
                    e,
                    VirtioError::QueueCountMismatch {
                        stream: 2,
                        local: 1
                    }
                )
            },
        ),
        (
            "CVE-2014-0182 config_len 0x7fffffff",
            modified(|b| patch(b, CONFIG_LEN, &0x7fff_ffffu32.to_be_bytes())),
            |e| {
                matches!(
                    e,
                    VirtioError::ConfigLenTooLarge {
                        config_len: 0x7fff_ffff,
                        ..
                    }
                )
            },
        ),
        (
            "CVE-2014-0182 negative config_len",
            modified(|b| patch(b, CONFIG_LEN, &(-1i32).to_be_bytes())),
            |e| matches!(e, VirtioError::ConfigLenNegative(-1)),
        ),
        (
            "CVE-2013-4535/4536 in_num 2000",
            with_request(2000, 1, 0x8000, 1),
            |e| matches!(e, VirtioError::TooManySegments { in_num: 2000, .. }),
        ),
        (
            "CVE-2013-4535/4536 out_num 1025",
            with_request(1, 1025, 0x8000, 1),
            |e| matches!(e, VirtioError::TooManySegments { out_num: 1025, .. }),
        ),
        (
            "in-flight segment outside guest memory",
            with_request(1, 0, 0x4000_0000, 512),
            |e| {
                matches!(
                    e,
                    VirtioError::SegmentOutsideMemory {
                        addr: 0x4000_0000,
                        ..
                    }
                )
            },
        ),
        (
            "features not offered",
            modified(|b| patch(b, FEATURES64, &(1u64 << 63).to_be_bytes())),
            |e| matches!(e, VirtioError::FeaturesNotOffered { requested, .. } if *requested == 1 << 63),
        ),
        (
            "vring outside guest memory",
            {
                let mut b = modern_with_ring(0);
                patch(&mut b, Q0_DESC, &0x4000_0000u64.to_be_bytes());
                b
            },
            |e| {
                matches!(
                    e,
                    VirtioError::RingOutsideMemory {
                        queue: 0,
                        desc: 0x4000_0000,
                        ..
                    }
                )
            },
        ),
        (
            "last_avail_idx 300 vs used idx 0 in a 256 ring",
            modern_with_ring(300),
            |e| {
                matches!(
                    e,
                    VirtioError::InUseExceedsSize {
                        inuse: 300,
                        size: 256,
                        ..
                    }
                )
            },
        ),
        (
            "no ring but last_avail_idx",
            modified(|b| patch(b, Q0_LAST_AVAIL, &5u16.to_be_bytes())),
            |e| {
                matches!(
                    e,
                    VirtioError::NoRingButIndex {
                        queue: 0,
                        last_avail_idx: 5
                    }
                )
            },
        ),
        (
            "queue vector out of range",
            modified(|b| patch(b, Q0_VECTOR, &2u16.to_be_bytes())),
            |e| {
                matches!(
                    e,
                    VirtioError::BadVector {
                        vector: 2,
                        nvectors: 2,
                        ..
                    }
                )
            },
        ),
        (
            "config vector out of range",
            modified(|b| patch(b, CONFIG_VECTOR, &7u16.to_be_bytes())),
            |e| matches!(e, VirtioError::BadVector { vector: 7, .. }),
        ),
        (
            "queue size not a power of two",
            modified(|b| patch(b, Q0_NUM, &100u32.to_be_bytes())),
            |e| matches!(e, VirtioError::BadQueueSize { num: 100, .. }),
        ),
        (
            "irq_state 2",
            modified(|b| patch(b, IRQ_STATE + 4, &2u32.to_be_bytes())),
            |e| matches!(e, VirtioError::BadIrqState { pin: 1, value: 2 }),
        ),
        (
            "read-only config byte (vendor id)",
            modified(|b| b[CONFIG] = 0x86),
            |e| {
                matches!(
                    e,
                    VirtioError::BadConfigData {
                        offset: 0,
                        stream: 0x86,
                        local: 0xf4
                    }
                )
            },
        ),
        (
            "PCIDevice version 3",
            modified(|b| patch(b, PCI_VERSION, &3u32.to_be_bytes())),
            |e| matches!(e, VirtioError::BadPciVersion(3)),
        ),
        (
            "unknown virtio subsection",
            modified(|b| patch(b, SUB_64BIT_NAME + 20, b"X")),
            |e| matches!(e, VirtioError::UnknownSubsection(n) if n == "virtio/64bit_featureX"),
        ),
        (
            "request list marker 2",
            modified(|b| b[REQUESTS] = 2),
            |e| matches!(e, VirtioError::BadRequestMarker(2)),
        ),
    ];
    for (what, body, check) in cases {
        let (_, r) = load(&body);
        let err = r.expect_err(what);
        let v =
            VirtioError::of(&err).unwrap_or_else(|| panic!("{what}: not a virtio error: {err}"));
        assert!(check(v), "{what}: got {v}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn truncated_bodies_fail_cleanly_at_every_length() {
    let body = modern_with_ring(0);
    // Every cut inside the fixed part and the first subsections; a cut right
    // after a whole subsection (or before the first) is a complete body.
    let boundaries = [REQUESTS + 1, FEATURES64 + 8];
    for len in (0..600)
        .chain([body.len() - 1])
        .filter(|l| !boundaries.contains(l))
    {
        let (_, r) = load(&body[..len]);
        assert!(r.is_err(), "a body cut at {len} loaded");
    }
}

#[test]
fn larger_config_len_copies_ours_and_skips_the_rest() {
    let orig = qemu_blk_body();
    let mut b = orig[..CONFIG_LEN].to_vec();
    b.extend_from_slice(&(57u32 + 1000).to_be_bytes());
    b.extend_from_slice(&[0xaa; 57]);
    b.extend_from_slice(&[0xbb; 1000]);
    b.extend_from_slice(&orig[CONFIG_LEN + 4 + 57..]);
    let (dev, r) = load(&b);
    r.expect("CVE-2014-0182: a larger config loads");
    assert_eq!(dev.virtio.core.config, vec![0xaa; 57]);
    let resaved = to_bytes(&dev).unwrap();
    assert_eq!(resaved.len(), orig.len());
}

#[test]
fn smaller_config_len_copies_what_is_there() {
    let orig = qemu_blk_body();
    let mut b = orig[..CONFIG_LEN].to_vec();
    b.extend_from_slice(&8u32.to_be_bytes());
    b.extend_from_slice(&[0x11; 8]);
    b.extend_from_slice(&orig[CONFIG_LEN + 4 + 57..]);
    let (dev, r) = load(&b);
    r.unwrap();
    assert_eq!(
        &dev.virtio.core.config[..9],
        &[0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0]
    );
}

#[test]
fn avail_index_far_ahead_marks_the_device_broken_but_loads() {
    // Guest avail.idx is 0, last_avail_idx 0xff00: 256 < nheads -> broken, as QEMU's
    // virtio_error does; used idx 0 -> inuse 0xff00 > 256 would fail, so put used at 0xff00.
    let body = modern_with_ring(0);
    let mem = guest_mem(MEM_SIZE);
    use vm_memory::{Bytes, GuestAddress};
    mem.write_obj(1000u16.to_le(), GuestAddress(0x11002))
        .unwrap();
    let mut dev = blk(&disk(1 << 20, 0), &mem);
    dev.load(&mut Reader::new(&body[..]), 2).unwrap();
    assert!(dev.virtio.core.broken);
    let resaved = to_bytes(&dev).unwrap();
    let needle = b"virtio/broken";
    assert!(
        resaved.windows(needle.len()).any(|w| w == needle),
        "broken is migrated"
    );
}
