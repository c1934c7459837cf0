//! virtio-balloon: wire identity with a live QEMU 7.2 (`virtio-balloon-pci`
//! on pc-i440fx-7.2, paused, before and after QMP `balloon`), a guest driver
//! inflating, deflating, reporting `actual`, the poison value and
//! statistics, the state migrating (the held statistics buffer taken again
//! on the destination), and the checks of the "virtio-balloon-device" part.

mod common;

use common::qemu::{qemu_available, Qemu, TempDir};
use common::sections::{body_to_footer, find_full_section};
use common::virtio::guest_mem;
use serde_json::json;
use vm_memory::{Bytes, GuestAddress};
use vmstate_devices::virtio::balloon::{features, VirtioBalloonSection, DEFLATE, INFLATE, STATS};
use vmstate_devices::virtio::driver::balloon::BalloonDriver;
use vmstate_devices::virtio::{GuestMem, VirtioError};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, VmState};

const IDSTR: &str = "0000:00:05.0/virtio-balloon";
const RAM: usize = 32 << 20;

/// Asserts equal bodies, naming the first differing offset (not the bytes).
fn same(a: &[u8], b: &[u8], what: &str) {
    if a != b {
        let at = a
            .iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        panic!(
            "{what}: lengths {} / {}, first difference at {at}: {:02x?} / {:02x?}",
            a.len(),
            b.len(),
            &a[at.min(a.len())..(at + 8).min(a.len())],
            &b[at.min(b.len())..(at + 8).min(b.len())]
        );
    }
}

fn load(body: &[u8]) -> (VirtioBalloonSection, vmstate_runtime::Result<()>) {
    let mut dev = VirtioBalloonSection::new(guest_mem(RAM));
    let r = dev.load(&mut Reader::new(body), 1);
    (dev, r)
}

/// The balloon section of a paused QEMU, after QMP `balloon` to `target`
/// bytes when given.
fn qemu_balloon_body(target: Option<u64>) -> Vec<u8> {
    let dir = TempDir::new("virtio-balloon");
    let mut q = Qemu::start(
        dir.path(),
        &["-S", "-device", "virtio-balloon-pci,id=vb,addr=05.0"],
    );
    if let Some(t) = target {
        q.execute("balloon", json!({ "value": t }));
    }
    let stream = q.migrate_to_file(dir.path());
    drop(q);
    let h = find_full_section(&stream, IDSTR);
    assert_eq!((h.instance_id, h.version_id), (0, 1));
    body_to_footer(&stream, &h).to_vec()
}

#[test]
fn qemu_balloon_sections_load_save_back_and_equal_the_model() {
    if !qemu_available() {
        return;
    }
    // Fresh: the model's own bytes are QEMU's.
    let fresh = qemu_balloon_body(None);
    let model = VirtioBalloonSection::new(guest_mem(RAM));
    same(&to_bytes(&model).unwrap(), &fresh, "fresh model vs QEMU");
    let (dev, r) = load(&fresh);
    r.unwrap();
    same(&to_bytes(&dev).unwrap(), &fresh, "fresh resave");
    let queues: Vec<u16> = dev.virtio.core.queues.iter().map(|q| q.size()).collect();
    assert_eq!(queues, [128, 128, 128], "inflate, deflate, stats");
    assert_eq!(dev.virtio.core.config.len(), 16);

    // QMP balloon to 24 MiB of 32: 2048 pages asked for.
    let ballooned = qemu_balloon_body(Some(24 << 20));
    assert_ne!(ballooned, fresh);
    let (dev, r) = load(&ballooned);
    r.unwrap();
    same(
        &to_bytes(&dev).unwrap(),
        &ballooned,
        "resave byte-identical",
    );
    assert_eq!(dev.virtio.device.num_pages, 2048);
    assert_eq!(dev.virtio.device.actual, 0);
    // The same request on the model gives QEMU's bytes (no driver: no
    // config interrupt, no generation bump).
    let mut model = VirtioBalloonSection::new(guest_mem(RAM));
    model.balloon(24 << 20);
    same(
        &to_bytes(&model).unwrap(),
        &ballooned,
        "model after balloon vs QEMU",
    );
    assert_eq!(model.virtio.core.isr, 0);
}

fn pfn_of(addr: u64) -> u32 {
    (addr >> 12) as u32
}

/// A started balloon with its driver; the rings at 1 MiB.
fn started(mem: &GuestMem, poison: bool) -> (VirtioBalloonSection, BalloonDriver) {
    let mut dev = VirtioBalloonSection::new(mem.clone());
    let drv = BalloonDriver::init(&mut dev.virtio, 0x10_0000, 16, poison).unwrap();
    (dev, drv)
}

#[test]
fn driver_inflates_deflates_reports_and_the_state_migrates() {
    let mem = guest_mem(8 << 20);
    let (mut dev, mut drv) = started(&mem, true);
    assert_eq!(
        drv.features & (1 << features::PAGE_POISON | 1 << features::STATS_VQ),
        1 << features::PAGE_POISON | 1 << features::STATS_VQ
    );
    // The host asks for 4 pages: a config interrupt (INTx: no MSI-X), generation bumped.
    dev.virtio.transport.take_interrupts();
    dev.request(4);
    assert_eq!(dev.virtio.core.config_generation, 1);
    assert_eq!(dev.virtio.isr_read(), 3, "config change sets both ISR bits");
    assert_eq!(BalloonDriver::num_pages(&mut dev.virtio), 4);

    // The guest inflates 4 pages holding data: they read back as zeros.
    let pages: Vec<u64> = (0..4).map(|k| 0x40_0000 + k * 0x1000).collect();
    for &p in &pages {
        mem.write_slice(&[0xaa; 4096], GuestAddress(p)).unwrap();
    }
    let pfns: Vec<u32> = pages.iter().map(|&p| pfn_of(p)).collect();
    drv.frames(&mem, true, &pfns).unwrap();
    // A frame outside RAM is skipped.
    drv.frames(&mem, true, &[pfn_of(64 << 20)]).unwrap();
    dev.virtio.queue_notify(INFLATE);
    assert_eq!(drv.reap(&mem).unwrap(), [2, 0, 0]);
    let mut b = [0u8; 4096];
    mem.read_slice(&mut b, GuestAddress(pages[0])).unwrap();
    assert!(b.iter().all(|&x| x == 0), "inflated page discarded");
    assert_eq!(dev.virtio.device.inflated().len(), 4);
    BalloonDriver::set_actual(&mut dev.virtio, 4);
    BalloonDriver::set_poison(&mut dev.virtio, 0xdead_beef);
    assert_eq!(dev.virtio.device.actual, 4);
    assert_eq!(dev.actual_bytes(), (8 << 20) - 4 * 4096);
    assert_eq!(dev.virtio.device.poison_val, 0xdead_beef);

    // Deflate one; statistics buffer posted and held.
    drv.frames(&mem, false, &pfns[..1]).unwrap();
    dev.virtio.queue_notify(DEFLATE);
    drv.post_stats(&mem, &[(4, 1 << 20), (5, 8 << 20), (99, 7)])
        .unwrap();
    dev.virtio.queue_notify(STATS);
    assert_eq!(drv.reap(&mem).unwrap(), [0, 1, 0], "stats buffer held");
    let d = &dev.virtio.device;
    assert_eq!(d.inflated().len(), 3);
    assert_eq!(d.requests(), (2, 1));
    assert_eq!(
        (d.stats()[4], d.stats()[5], d.stats()[0]),
        (Some(1 << 20), Some(8 << 20), None)
    );
    assert!(d.holds_stats_buffer());
    assert_eq!(dev.virtio.core.queues[STATS].inuse(), 1);

    // Migrate: num_pages, actual, the page-poison subsection.
    let body = to_bytes(&dev).unwrap();
    let poison = b"virtio-balloon-device/page-poison";
    assert!(body.windows(poison.len()).any(|w| w == poison));
    let mut dst = VirtioBalloonSection::new(mem.clone());
    dst.load(&mut Reader::new(&body[..]), 1).unwrap();
    assert_eq!(to_bytes(&dst).unwrap(), body);
    let d = &dst.virtio.device;
    assert_eq!((d.num_pages, d.actual, d.poison_val), (4, 4, 0xdead_beef));
    assert!(!d.holds_stats_buffer());
    assert_eq!(
        dst.virtio.core.queues[STATS].inuse(),
        1,
        "source's held buffer"
    );
    // Resumed, the destination takes the statistics buffer again (as QEMU's
    // rewind does) and hands it back when asked for fresh statistics.
    dst.virtio.with_device(|b, ctx| b.resume(ctx));
    assert!(dst.virtio.device.holds_stats_buffer());
    assert_eq!(dst.virtio.device.stats()[5], Some(8 << 20));
    assert!(dst.virtio.with_device(|b, ctx| b.request_stats(ctx)));
    assert_eq!(drv.reap(&mem).unwrap(), [0, 0, 1]);
    assert_eq!(dst.virtio.core.queues[STATS].inuse(), 0);
    // The guest keeps ballooning on the destination.
    drv.frames(&mem, false, &pfns[1..]).unwrap();
    dst.virtio.queue_notify(DEFLATE);
    assert_eq!(drv.reap(&mem).unwrap(), [0, 1, 0]);

    // A reset forgets the poison value.
    dst.virtio
        .common_write(vmstate_devices::virtio::pci::common::STATUS, 0);
    assert_eq!(dst.virtio.device.poison_val, 0);
}

#[test]
fn without_page_poison_the_poison_value_is_ignored_and_not_sent() {
    let mem = guest_mem(4 << 20);
    let (mut dev, _drv) = started(&mem, false);
    BalloonDriver::set_poison(&mut dev.virtio, 0x55);
    assert_eq!(dev.virtio.device.poison_val, 0);
    let body = to_bytes(&dev).unwrap();
    assert!(!body.windows(11).any(|w| w == b"page-poison"));
    let mut dst = VirtioBalloonSection::new(mem);
    dst.load(&mut Reader::new(&body[..]), 1).unwrap();
    assert_eq!(to_bytes(&dst).unwrap(), body);
}

/// The device part starts after the three queues (no MSI-X):
/// A 4+256+16, B 12+16, C 4, D 3 × 14.
const DEVICE_PART: usize = 276 + 28 + 4 + 42;

#[test]
fn balloon_device_part_checks() {
    let mem = guest_mem(4 << 20);
    let (mut dev, _drv) = started(&mem, true);
    dev.request(9);
    let body = to_bytes(&dev).unwrap();
    assert_eq!(&body[DEVICE_PART..DEVICE_PART + 4], &9u32.to_be_bytes());
    let sub = DEVICE_PART + 8;
    assert_eq!(body[sub], 0x05);
    let name = b"virtio-balloon-device/page-poison";
    assert_eq!(&body[sub + 2..sub + 2 + name.len()], name);

    // An unknown subsection under the device's name fails.
    let mut bad = body.clone();
    bad[sub + 2 + 22] = b'X'; // "virtio-balloon-device/Xage-poison"
    let (_, r) = load(&bad);
    let e = r.unwrap_err();
    assert!(
        matches!(VirtioError::of(&e), Some(VirtioError::UnknownSubsection(n)) if n.ends_with("Xage-poison")),
        "{e}"
    );
    // A subsection version other than 1 fails.
    let mut bad = body.clone();
    bad[sub + 2 + name.len() + 3] = 2;
    let (_, r) = load(&bad);
    assert!(matches!(
        VirtioError::of(&r.unwrap_err()),
        Some(VirtioError::SubsectionVersion { version: 2, .. })
    ));
    // Truncated anywhere: an error, never a panic.
    for cut in (0..body.len()).step_by(97).chain(DEVICE_PART..sub + 50) {
        let (_, r) = load(&body[..cut]);
        // A cut right before a subsection leaves a complete body.
        assert!(r.is_err() || body[cut] == 0x05, "cut at {cut}");
    }
    // The free-page-report subsection (never negotiated here) loads, as in
    // QEMU, and is not sent again (QEMU sends it only with FREE_PAGE_HINT).
    let mut with_hint = body[..sub].to_vec();
    let hint = b"virtio-balloon-device/free-page-report";
    with_hint.push(0x05);
    with_hint.push(hint.len() as u8);
    with_hint.extend_from_slice(hint);
    with_hint.extend_from_slice(&1u32.to_be_bytes());
    with_hint.extend_from_slice(&0x8000_0005u32.to_be_bytes());
    with_hint.extend_from_slice(&2u32.to_be_bytes());
    with_hint.extend_from_slice(&body[sub..]);
    let (dev2, r) = load(&with_hint);
    r.unwrap();
    assert_eq!(dev2.virtio.device.free_page_hint_cmd_id, 0x8000_0005);
    assert_eq!(to_bytes(&dev2).unwrap(), body);
}

#[test]
fn fuzz_seeds_load_and_save_back() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/virtio_body");
    for name in [
        "qemu-virtio-balloon-after-qmp-balloon",
        "balloon-page-poison",
    ] {
        let seed = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(seed[0] % 4, 3, "{name}: the balloon selector");
        let (dev, r) = load(&seed[1..]);
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
        same(&to_bytes(&dev).unwrap(), &seed[1..], name);
        assert_eq!(dev.virtio.device.num_pages, 2048, "{name}");
    }
}
