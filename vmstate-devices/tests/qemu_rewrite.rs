//! `rewrite` (what `vmstate rewrite` runs) on streams real QEMU 7.2 writes:
//! the fixtures and fresh saves of a paused guest, of a running one (in one
//! pass, and throttled over many passes with pages sent again), and of a
//! guest with virtio-net, virtio-blk, virtio-rng and virtio-balloon. Each is
//! parsed into the models (RAM, keyboard controller, virtio-blk/net/rng; only
//! the other sections opaque) and written again byte for byte.
//!
//! The fresh ones skip (printing why) when QEMU is not installed, unless
//! `VMSTATE_REQUIRE_QEMU=1`.

use std::time::{Duration, Instant};

use serde_json::json;
use vmstate_devices::qemu_pc::{rewrite, QemuPc, SectionCarrier, SectionKind};

mod common;
use common::fixtures::fixture;
use common::qemu::{qemu_available, Qemu, TempDir};

/// Rewrites `stream`, checks it comes back byte for byte with every modelled
/// kind through its model; returns the report's lines.
fn check_identical(name: &str, stream: &[u8], want_models: &[&str]) -> Vec<String> {
    let r = rewrite(stream).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        r.first_difference,
        None,
        "{name}: rewrite differs ({} and {} bytes)",
        stream.len(),
        r.output.len()
    );
    assert_eq!(r.output, stream, "{name}");
    assert!(
        r.opaque_of_modelled_kinds().is_empty(),
        "{name}: {:?}",
        r.opaque_of_modelled_kinds()
    );
    for m in want_models {
        assert!(
            r.sections
                .iter()
                .any(|(n, _, c)| n == m && *c == SectionCarrier::Model),
            "{name}: {m} not through a model: {:?}",
            r.sections
        );
    }
    // The output loads again into the same state.
    let a = QemuPc::load_stream(stream).unwrap().0.state().unwrap();
    let b = QemuPc::load_stream(&r.output).unwrap().0.state().unwrap();
    assert_eq!(a.first_difference(&b), None, "{name}");
    r.lines()
}

#[test]
fn every_fixture_rewrites_byte_identically() {
    for (name, models) in [
        ("pc-default.mig", &["ps2kbd", "ps2mouse", "pckbd"][..]),
        ("pc-i8042.mig", &["pckbd"][..]),
        ("pc-virtio-blk.mig", &["0000:00:02.0/virtio-blk"][..]),
        ("pc-virtio-net.mig", &["0000:00:02.0/virtio-net"][..]),
    ] {
        let lines = check_identical(name, &fixture(name), models);
        assert!(lines[0].starts_with("ram 0: model"), "{lines:?}");
    }
}

#[test]
fn a_stream_with_a_page_changed_rewrites_with_the_change() {
    // A BIOS PAGE record's payload changed: the page goes into the RAM model
    // and comes out of it in the same record (the chunking record holds no
    // page contents, only where each record was), so the output is the
    // changed input, and differs from the fixture's rewrite at that byte.
    let mut s = fixture("pc-default.mig");
    // The record that starts the BIOS pages (a ZERO, named), then its records
    // on (CONTINUE: no name) up to the first PAGE.
    let bios = b"\x07pc.bios";
    let mut at = s.windows(bios.len()).rposition(|w| w == bios).unwrap() + bios.len();
    assert_eq!(s[at - bios.len() - 1], 0x02, "a named ZERO record");
    at += 1;
    let page = loop {
        let word = u64::from_be_bytes(s[at..at + 8].try_into().unwrap());
        assert_eq!(word & 0x20, 0x20, "CONTINUE records follow");
        at += 8;
        match word & 0xfff {
            0x22 => at += 1,
            0x28 => break at,
            f => panic!("record flags {f:#x}"),
        }
    };
    s[page + 100] ^= 0xff;
    let r = rewrite(&s).unwrap();
    assert_eq!(r.first_difference, None);
    assert_eq!(r.output, s);
    let plain = rewrite(&fixture("pc-default.mig")).unwrap().output;
    let at: Vec<usize> = (0..plain.len())
        .filter(|&i| plain[i] != r.output[i])
        .collect();
    assert_eq!(at, [page + 100]);
}

/// A `-m 32` QEMU, running (no `-S`) unless `paused`, with `extra` devices.
fn start(dir: &TempDir, paused: bool, extra: &[&str]) -> Qemu {
    let mut args: Vec<&str> = extra.to_vec();
    if paused {
        args.push("-S");
    }
    Qemu::start(dir.path(), &args)
}

/// Waits until the guest has run for a moment (SeaBIOS set up its tables).
fn let_run(q: &mut Qemu, d: Duration) {
    q.wait_running(true);
    std::thread::sleep(d);
}

#[test]
fn fresh_paused_and_running_saves_rewrite_byte_identically() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("rewrite-fresh");
    let mut q = start(&dir, true, &[]);
    let paused = q.migrate_to_file(dir.path());
    check_identical("paused", &paused, &["pckbd"]);
    drop(q);

    let dir = TempDir::new("rewrite-running");
    let mut q = start(&dir, false, &[]);
    let_run(&mut q, Duration::from_millis(300));
    let running = q.migrate_to_file(dir.path());
    check_identical("running", &running, &["pckbd"]);
}

#[test]
fn a_throttled_many_pass_save_of_a_running_guest_rewrites_byte_identically() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("rewrite-passes");
    let mut q = start(&dir, false, &[]);
    let_run(&mut q, Duration::from_millis(200));
    // ~1 MB/s: the bulk pass takes many PARTs while the guest runs and
    // dirties pages, which go again in later passes.
    q.execute(
        "migrate-set-parameters",
        json!({ "max-bandwidth": 1_000_000, "downtime-limit": 1 }),
    );
    let started = Instant::now();
    let stream = q.migrate_to_file(dir.path());
    let st = q.execute("query-migrate", json!({}));
    let r = rewrite(&stream).unwrap();
    let parts = r
        .events
        .iter()
        .filter(|e| e.kind == SectionKind::Part)
        .count();
    assert!(parts > 3, "{parts} PARTs in {:?}: {st}", started.elapsed());
    check_identical("throttled", &stream, &["pckbd"]);
}

#[test]
fn a_save_with_every_virtio_device_rewrites_byte_identically() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("rewrite-virtio");
    let img = dir.path().join("blk.raw");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let drive = format!("file={},format=raw,if=none,id=d0", img.display());
    let mut q = start(
        &dir,
        false,
        &[
            "-netdev",
            "hubport,id=n0,hubid=0",
            "-device",
            "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,addr=02.0",
            "-drive",
            &drive,
            "-device",
            "virtio-blk-pci,drive=d0,addr=03.0",
            "-device",
            "virtio-rng-pci,addr=04.0",
            "-device",
            "virtio-balloon-pci,addr=05.0",
        ],
    );
    let_run(&mut q, Duration::from_millis(500));
    let stream = q.migrate_to_file(dir.path());
    let lines = check_identical(
        "virtio",
        &stream,
        &[
            "0000:00:02.0/virtio-net",
            "0000:00:03.0/virtio-blk",
            "0000:00:04.0/virtio-rng",
            "0000:00:05.0/virtio-balloon",
        ],
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "0000:00:05.0/virtio-balloon 0: model"),
        "{lines:?}"
    );
}
