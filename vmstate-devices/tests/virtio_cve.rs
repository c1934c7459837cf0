//! The virtio rows of the malicious-stream catalogue (qemu-wire.md §9), one
//! named test each, every hostile body going through the whole loader inside
//! a stream (`common::streams`), as a peer would send it, into the models
//! registered at their PCI paths. The body-level table of every
//! `virtio_load` check is `virtio_hostile.rs`.
//!
//! | §9 row | test |
//! |---|---|
//! | CVE-2013-4151 queue count | `cve_2013_4151_queue_count` |
//! | CVE-2013-6399 queue_sel | `cve_2013_6399_queue_sel` |
//! | CVE-2014-0182 config_len (larger: copy and skip; huge, negative: fail) | `cve_2014_0182_config_len` |
//! | CVE-2013-4535 / CVE-2013-4536 num_sg of an in-flight element | `cve_2013_4535_4536_num_sg` |
//! | CVE-2013-4148 MAC table in_use | `cve_2013_4148_mac_table_in_use` |
//! | CVE-2013-4149 MAC table overflow skipped | `cve_2013_4149_mac_table_overflow_is_skipped` |
//! | CVE-2013-4150 curr_queue_pairs (multiqueue fields) | `cve_2013_4150_multiqueue_fields_are_refused` |
//! | (features not offered, vring outside memory, inuse > size) | `virtio_load_consistency_checks` |
//! | (balloon: no §9 row; its device part's subsections) | `balloon_unknown_device_subsection` |

mod common;

use std::sync::{Arc, Mutex};

use common::fixtures::fixture;
use common::sections::{body_to_footer, find_full_section};
use common::streams::{load, stream, Section};
use common::virtio::{blk, disk, guest_mem, qemu_blk_body, MEM_SIZE};
use vmstate_devices::virtio::balloon::VirtioBalloonSection;
use vmstate_devices::virtio::net::VirtioNetSection;
use vmstate_devices::virtio::VirtioError;
use vmstate_runtime::savevm::Registry;
use vmstate_runtime::Error;

const BLK: &str = "0000:00:02.0/virtio-blk";
const NET: &str = "0000:00:02.0/virtio-net";
// Offsets in QEMU's virtio-blk body (pc-virtio-blk.mig).
const QUEUE_SEL: usize = 313;
const CONFIG_LEN: usize = 319;
const NUM_QUEUES: usize = 380;
const REQUESTS: usize = 400;
const FEATURES64: usize = 428;
const Q0_DESC: usize = 388;
const Q0_LAST_AVAIL: usize = 396;
const Q0_AVAIL: usize = 459;
const Q0_USED: usize = 467;
// Offsets in QEMU's virtio-net body (pc-virtio-net.mig).
const IN_USE: usize = 433;
const HAS_UFO: usize = 959;

fn patch(b: &mut [u8], at: usize, bytes: &[u8]) {
    b[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Loads `body` as the virtio-blk section of a stream.
fn load_blk(body: Vec<u8>) -> Result<(), Error> {
    let mem = guest_mem(MEM_SIZE);
    let dev = Arc::new(Mutex::new(blk(&disk(1 << 20, 0), &mem)));
    let mut reg = Registry::new();
    reg.vmstate_register_at(Some("0000:00:02.0"), 0u32, dev)?;
    let (s, _) = stream(&[Section::full(1, BLK, 0, 2, body)]);
    load(&s, &mut reg)
}

fn qemu_net_body() -> Vec<u8> {
    let s = fixture("pc-virtio-net.mig");
    let h = find_full_section(&s, NET);
    body_to_footer(&s, &h).to_vec()
}

/// Loads `body` as the virtio-net section of a stream; the device after.
fn load_net(body: Vec<u8>) -> (Arc<Mutex<VirtioNetSection>>, Result<(), Error>) {
    let dev = Arc::new(Mutex::new(VirtioNetSection::new(
        [0; 6],
        guest_mem(MEM_SIZE),
    )));
    let mut reg = Registry::new();
    reg.vmstate_register_at(Some("0000:00:02.0"), 0u32, dev.clone())
        .unwrap();
    let (s, _) = stream(&[Section::full(1, NET, 0, 11, body)]);
    let r = load(&s, &mut reg);
    (dev, r)
}

/// The typed virtio error inside a loader error (the loader may wrap it).
fn virtio_error(e: &Error) -> Option<VirtioError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        if let Some(v) = x.downcast_ref::<VirtioError>() {
            return Some(v.clone());
        }
        if let Some(v) = x.downcast_ref::<Error>().and_then(VirtioError::of) {
            return Some(v.clone());
        }
        cur = x.source();
    }
    None
}

fn expect(r: Result<(), Error>, what: &str, check: impl Fn(&VirtioError) -> bool) {
    let e = r.expect_err(what);
    let v = virtio_error(&e).unwrap_or_else(|| panic!("{what}: not a virtio error: {e}"));
    assert!(check(&v), "{what}: {v}");
}

#[test]
fn cve_2013_4151_queue_count() {
    for n in [1025u32, 0xffff_ffff] {
        let mut b = qemu_blk_body();
        patch(&mut b, NUM_QUEUES, &n.to_be_bytes());
        expect(load_blk(b), "queue count", |v| {
            *v == VirtioError::TooManyQueues(n)
        });
    }
}

#[test]
fn cve_2013_6399_queue_sel() {
    for sel in [0x400u16, 0xffff] {
        let mut b = qemu_blk_body();
        patch(&mut b, QUEUE_SEL, &sel.to_be_bytes());
        expect(load_blk(b), "queue_sel", |v| {
            *v == VirtioError::QueueSelOutOfRange { queue_sel: sel }
        });
    }
}

#[test]
fn cve_2014_0182_config_len() {
    // Larger than ours, with the bytes: ours copied, the rest skipped.
    let b = qemu_blk_body();
    let len = u32::from_be_bytes(b[CONFIG_LEN..CONFIG_LEN + 4].try_into().unwrap()) as usize;
    let mut big = b[..CONFIG_LEN].to_vec();
    big.extend_from_slice(&((len + 1000) as u32).to_be_bytes());
    big.extend_from_slice(&b[CONFIG_LEN + 4..CONFIG_LEN + 4 + len]);
    big.extend(std::iter::repeat_n(0xaa, 1000));
    big.extend_from_slice(&b[CONFIG_LEN + 4 + len..]);
    load_blk(big).unwrap();
    // Huge and negative: refused before any skipping.
    let mut huge = qemu_blk_body();
    patch(&mut huge, CONFIG_LEN, &0x7fff_ffffu32.to_be_bytes());
    expect(load_blk(huge), "huge config_len", |v| {
        matches!(
            v,
            VirtioError::ConfigLenTooLarge {
                config_len: 0x7fff_ffff,
                ..
            }
        )
    });
    let mut neg = qemu_blk_body();
    patch(&mut neg, CONFIG_LEN, &(-5i32).to_be_bytes());
    expect(load_blk(neg), "negative config_len", |v| {
        *v == VirtioError::ConfigLenNegative(-5)
    });
}

#[test]
fn cve_2013_4535_4536_num_sg() {
    for (in_num, out_num) in [(2000u32, 0u32), (0, 1025)] {
        let b = qemu_blk_body();
        let mut elem = vec![0u8; vmstate_devices::virtio::element::ELEMENT_WIRE_SIZE];
        elem[4..8].copy_from_slice(&out_num.to_le_bytes());
        elem[8..12].copy_from_slice(&in_num.to_le_bytes());
        let mut out = b[..REQUESTS].to_vec();
        out.push(1);
        out.extend_from_slice(&elem);
        out.extend_from_slice(&b[REQUESTS..]);
        expect(load_blk(out), "num_sg", |v| {
            *v == VirtioError::TooManySegments { in_num, out_num }
        });
    }
}

fn net_with_in_use(n: u32, entries: usize) -> Vec<u8> {
    let body = qemu_net_body();
    let mut b = body[..IN_USE].to_vec();
    b.extend_from_slice(&n.to_be_bytes());
    b.extend(std::iter::repeat_n(0x01, 6 * entries));
    b.extend_from_slice(&body[IN_USE + 4..]);
    b
}

#[test]
fn cve_2013_4148_mac_table_in_use() {
    for n in [0x8100_0000u32, 0xffff_ffff] {
        let (_, r) = load_net(net_with_in_use(n, 0));
        expect(r, "in_use", |v| *v == VirtioError::MacTableTooLarge(n));
    }
}

#[test]
fn cve_2013_4149_mac_table_overflow_is_skipped() {
    for n in [65u32, 1000] {
        let (dev, r) = load_net(net_with_in_use(n, n as usize));
        r.unwrap_or_else(|e| panic!("in_use {n}: {e}"));
        assert!(dev.lock().unwrap().virtio.device.filter.macs.is_empty());
    }
}

#[test]
fn cve_2013_4150_multiqueue_fields_are_refused() {
    // Our device has one queue pair, so max_queue_pairs/curr_queue_pairs are
    // not on its wire: a multiqueue source's fields (max 2, curr 3, one more
    // tx_waiting) after has_ufo cannot load here.
    let body = qemu_net_body();
    let mut b = body[..HAS_UFO + 1].to_vec();
    b.extend_from_slice(&2u16.to_be_bytes());
    b.extend_from_slice(&3u16.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&body[HAS_UFO + 1..]);
    let (_, r) = load_net(b);
    assert!(
        r.is_err(),
        "a multiqueue body loaded into a one-pair device"
    );
}

#[test]
fn virtio_load_consistency_checks() {
    let ring = |last_avail: u16| {
        let mut b = qemu_blk_body();
        patch(&mut b, FEATURES64, &(1u64 << 32).to_be_bytes());
        patch(&mut b, Q0_DESC, &0x10000u64.to_be_bytes());
        patch(&mut b, Q0_LAST_AVAIL, &last_avail.to_be_bytes());
        patch(&mut b, Q0_AVAIL, &0x11000u64.to_be_bytes());
        patch(&mut b, Q0_USED, &0x12000u64.to_be_bytes());
        b
    };
    load_blk(ring(0)).unwrap();
    let mut f = qemu_blk_body();
    patch(&mut f, FEATURES64, &(1u64 << 62).to_be_bytes());
    expect(load_blk(f), "features not offered", |v| {
        matches!(v, VirtioError::FeaturesNotOffered { .. })
    });
    let mut outside = ring(0);
    patch(&mut outside, Q0_USED, &(1u64 << 40).to_be_bytes());
    expect(load_blk(outside), "vring outside memory", |v| {
        matches!(v, VirtioError::RingOutsideMemory { queue: 0, .. })
    });
    expect(load_blk(ring(300)), "inuse > size", |v| {
        matches!(
            v,
            VirtioError::InUseExceedsSize {
                inuse: 300,
                size: 256,
                ..
            }
        )
    });
}

#[test]
fn balloon_unknown_device_subsection() {
    use vmstate_devices::virtio::driver::balloon::BalloonDriver;
    let mem = guest_mem(8 << 20);
    let mut src = VirtioBalloonSection::new(mem.clone());
    BalloonDriver::init(&mut src.virtio, 0x10_0000, 16, true).unwrap();
    src.request(3);
    let body = vmstate_runtime::to_bytes(&src).unwrap();
    let name = b"virtio-balloon-device/page-poison";
    let at = body.windows(name.len()).position(|w| w == name).unwrap();
    let run = |b: Vec<u8>| {
        let dev = Arc::new(Mutex::new(VirtioBalloonSection::new(mem.clone())));
        let mut reg = Registry::new();
        reg.vmstate_register_at(Some("0000:00:05.0"), 0u32, dev.clone())
            .unwrap();
        let (s, _) = stream(&[Section::full(1, "0000:00:05.0/virtio-balloon", 0, 1, b)]);
        (dev, load(&s, &mut reg))
    };
    let (dev, r) = run(body.clone());
    r.unwrap();
    assert_eq!(dev.lock().unwrap().virtio.device.num_pages, 3);
    let mut bad = body;
    bad[at + name.len() - 1] = b'X';
    let (_, r) = run(bad);
    expect(
        r,
        "unknown balloon subsection",
        |v| matches!(v, VirtioError::UnknownSubsection(n) if n.ends_with("page-poisoX")),
    );
}
