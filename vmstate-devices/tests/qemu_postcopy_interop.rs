//! Live postcopy between a real QEMU 7.2 `pc` machine and this crate's models.
//!
//! QEMU -> us:
//! QEMU (running SeaBIOS, 4 MiB of its RAM filled with data by a `loader`
//! device so that precopy at 1 MB/s is far from done) is the source with the
//! `postcopy-ram` capability; after a moment of precopy it is switched to
//! postcopy (`migrate-start-postcopy`). Our destination ([`receive_with`])
//! handles ADVISE, LISTEN, the PACKAGED device state and RUN, and then a
//! thread standing in for a vCPU reads pages of the filled region through
//! [`PostcopyAccess`](vmstate_devices::ram::PostcopyAccess): the ones not
//! received yet are asked for on the return path (REQ_PAGES). Checked: QEMU
//! completes, we sent page requests, what the reader saw is QEMU's memory,
//! all of our `pc.ram` is QEMU's (`pmemsave` of the stopped source), and the
//! device sections are QEMU's own later save but for what a moment of guest
//! run time changes. Over a unix socket and over TCP loopback.
//!
//! Us -> QEMU: our source (a QEMU stream file in the models, RAM section
//! postcopy-capable) into a QEMU `-incoming defer` with `postcopy-ram`,
//! switching to postcopy at once: ADVISE, DISCARD (every page still dirty,
//! as QEMU's own source sends), the package (LISTEN, device state, RUN),
//! then the pages. QEMU completes and its save holds our RAM and sections.
//!
//! Skips (printing why) when QEMU is not installed, unless
//! `VMSTATE_REQUIRE_QEMU=1`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use vmstate_devices::qemu_pc::{receive_with, QemuPc};
use vmstate_runtime::migration::{MigrationStatus, MigrationUri};

mod common;
use common::fixtures::fixture;
use common::qemu::{qemu_available, Qemu, TempDir};

const RAM_SIZE: u64 = 32 << 20;
/// Where the loader device puts its data, and how much.
const FILL_AT: u64 = 0x100_0000;
const FILL_LEN: u64 = 4 << 20;
const PAGE: u64 = 4096;
const VGA: std::ops::Range<usize> = 0xa0000..0xc0000;
const PATIENCE: Duration = Duration::from_secs(30);
/// Sections a moment of guest run time may change (as in qemu_live_interop).
const GUEST_RUN_MOVES: &[&str] = &[
    "timer",
    "globalstate",
    "cpu_common",
    "cpu",
    "apic",
    "i8259",
    "ioapic",
    "hpet",
    "mc146818rtc",
    "i8254",
    "0000:00:01.3/piix4_pm",
    "ps2kbd",
    "ps2mouse",
    "pckbd",
];

/// Pages the "vCPU" read: (guest address, contents).
type Reads = Vec<(u64, Vec<u8>)>;

fn qemu_postcopy_to_us(unix: bool, virtio: bool) {
    let dir = TempDir::new(if unix { "pc-unix" } else { "pc-tcp" });
    // Pseudo-random, so no page is a zero page.
    let blob = dir.path().join("fill.bin");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..FILL_LEN / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    std::fs::write(&blob, &data).unwrap();
    let loader = format!(
        "loader,file={},addr={FILL_AT:#x},force-raw=on",
        blob.display()
    );
    let img = dir.path().join("blk.raw");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let drive = format!("file={},format=raw,if=none,id=d0", img.display());
    let mut args = vec!["-device", loader.as_str()];
    if virtio {
        args.extend([
            "-netdev",
            "hubport,id=n0,hubid=0",
            "-device",
            "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,addr=02.0",
            "-drive",
            drive.as_str(),
            "-device",
            "virtio-blk-pci,drive=d0,addr=03.0",
        ]);
    }
    let mut qemu = Qemu::start_keeping_stderr(dir.path(), &args);
    qemu.wait_running(true);
    let like = qemu.save_after_boot(dir.path());

    let uri = if unix {
        MigrationUri::Unix(dir.path().join("mig.sock"))
    } else {
        MigrationUri::Tcp("127.0.0.1:0".into())
    };
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let reads: Arc<Mutex<Option<std::thread::JoinHandle<Reads>>>> = Arc::default();
    let reader = reads.clone();
    let dst = std::thread::spawn(move || {
        receive_with(
            &uri,
            &[like],
            PATIENCE,
            |inc| {
                let to = match (inc.local_tcp_addr(), &uri) {
                    (Some(a), _) => format!("tcp:{a}"),
                    (None, MigrationUri::Unix(p)) => format!("unix:{}", p.display()),
                    (None, u) => panic!("{u:?}"),
                };
                addr_tx.send(to).unwrap();
            },
            move |access| {
                // A vCPU touching the filled region from its top down: what
                // precopy has not sent yet is asked for.
                *reader.lock().unwrap() = Some(std::thread::spawn(move || {
                    let mut buf = vec![0u8; PAGE as usize];
                    (0..FILL_LEN / PAGE)
                        .rev()
                        .step_by(5)
                        .map(|p| {
                            let at = FILL_AT + p * PAGE;
                            access.read("pc.ram", at, &mut buf).unwrap();
                            (at, buf.clone())
                        })
                        .collect()
                }));
            },
        )
    });
    let to = addr_rx.recv_timeout(PATIENCE).unwrap();
    qemu.execute(
        "migrate-set-capabilities",
        json!({ "capabilities": [{ "capability": "postcopy-ram", "state": true }] }),
    );
    qemu.execute(
        "migrate-set-parameters",
        json!({ "max-bandwidth": 1 << 20 }),
    );
    qemu.execute("migrate", json!({ "uri": to }));
    // A moment of precopy, then the switch.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let st = qemu.execute("query-migrate", json!({}));
        if st["ram"]["transferred"].as_u64().unwrap_or(0) > 256 << 10 {
            break;
        }
        assert!(st["status"] != "failed", "QEMU: {st}");
        assert!(Instant::now() < deadline, "QEMU: {st}");
        std::thread::sleep(Duration::from_millis(10));
    }
    qemu.execute("migrate-start-postcopy", json!({}));
    let mut seen_postcopy = false;
    let st = loop {
        let st = qemu.execute("query-migrate", json!({}));
        seen_postcopy |= st["status"] == "postcopy-active";
        match st["status"].as_str() {
            Some("completed") | Some("failed") | Some("cancelled") => break st,
            _ if Instant::now() > deadline => panic!("QEMU: {st}"),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let received = dst.join().unwrap();
    if st["status"] != "completed" {
        panic!(
            "QEMU: {st}; ours: {:?}; QEMU said: {}",
            received.map(|r| r.2),
            qemu.kill_and_stderr()
        );
    }
    let (pc, _reg, stats): (QemuPc, _, _) =
        received.unwrap_or_else(|e| panic!("our destination: {e}"));
    assert!(seen_postcopy, "QEMU went through postcopy-active: {st}");
    assert_eq!(stats.status, MigrationStatus::Completed, "{stats:?}");
    let reads = reads
        .lock()
        .unwrap()
        .take()
        .expect("POSTCOPY_RUN came")
        .join()
        .unwrap();
    let requests = pc.ram_access.requests_sent();
    eprintln!(
        "QEMU -> us postcopy over {to}: QEMU {} bytes ({} postcopy requests on QEMU's side), \
         we asked {requests} times, read {} pages",
        st["ram"]["transferred"],
        st["ram"]["postcopy-requests"],
        reads.len()
    );
    assert!(requests > 0, "no page was asked for: {st}");
    assert!(
        st["ram"]["postcopy-requests"].as_u64().unwrap_or(0) > 0,
        "QEMU saw no request: {st}"
    );

    // All of pc.ram is the stopped source's (pmemsave), VGA window aside.
    let dump = dir.path().join("pc.ram.dump");
    qemu.execute(
        "pmemsave",
        json!({ "val": 0, "size": RAM_SIZE, "filename": dump.to_str().unwrap() }),
    );
    let theirs_ram = std::fs::read(&dump).unwrap();
    let ours = pc.state().unwrap();
    let our_ram = &ours.ram.iter().find(|b| b.0 == "pc.ram").unwrap().1;
    for (range, what) in [(0..VGA.start, "low"), (VGA.end..our_ram.len(), "high")] {
        if let Some(at) = range.clone().find(|&i| our_ram[i] != theirs_ram[i]) {
            panic!("pc.ram differs at {at:#x} ({what} memory, over {to})");
        }
    }
    // What the vCPU read is what QEMU has there (the loader's data, as the
    // guest never writes that region).
    for (at, page) in &reads {
        let at = *at as usize;
        assert_eq!(&theirs_ram[at..at + PAGE as usize], &page[..], "{at:#x}");
        let off = at - FILL_AT as usize;
        assert_eq!(&data[off..off + PAGE as usize], &page[..], "{at:#x}");
    }
    // Device sections: QEMU's own later save (it migrates again only after
    // running a moment), without postcopy for a file.
    qemu.execute(
        "migrate-set-capabilities",
        json!({ "capabilities": [{ "capability": "postcopy-ram", "state": false }] }),
    );
    qemu.execute("migrate-set-parameters", json!({ "max-bandwidth": 0 }));
    qemu.execute("cont", json!({}));
    qemu.execute("stop", json!({}));
    let save = qemu.migrate_to_file(dir.path());
    let theirs = QemuPc::load_stream(&save).unwrap().0.state().unwrap();
    let differ: Vec<&str> = ours
        .sections
        .iter()
        .zip(&theirs.sections)
        .filter(|(a, b)| a.2 != b.2)
        .map(|(a, _)| a.0.as_str())
        .collect();
    eprintln!("sections that differ from QEMU's later save: {differ:?}");
    // With virtio, the guest's moment of run time may move the devices the
    // firmware drives (SeaBIOS reads the disk); they went through their
    // models, which save back exactly what they loaded (qemu_rewrite).
    let moves = |d: &str| {
        GUEST_RUN_MOVES.contains(&d)
            || (virtio && (d.ends_with("/virtio-blk") || d.ends_with("/virtio-net")))
    };
    assert!(
        differ.iter().all(|d| moves(d)),
        "sections differ: {differ:?}"
    );
    if virtio {
        for kind in ["0000:00:02.0/virtio-net", "0000:00:03.0/virtio-blk"] {
            assert_eq!(
                pc.carrier(kind, 0),
                Some(vmstate_devices::qemu_pc::SectionCarrier::Model),
                "{kind}"
            );
        }
    }
    assert_eq!(ours.sections.len(), theirs.sections.len());
}

#[test]
fn qemu_postcopy_into_us_over_unix_socket() {
    if !qemu_available() {
        return;
    }
    qemu_postcopy_to_us(true, false);
}

#[test]
fn qemu_postcopy_into_us_over_tcp_loopback() {
    if !qemu_available() {
        return;
    }
    qemu_postcopy_to_us(false, false);
}

/// The same with virtio-net and virtio-blk (their sections into the virtio
/// models, from the package QEMU sends at the switch).
#[test]
fn qemu_postcopy_with_virtio_devices_into_us() {
    if !qemu_available() {
        return;
    }
    qemu_postcopy_to_us(false, true);
}

/// Our source (a QEMU stream file loaded into the models) migrates into a
/// QEMU destination with `postcopy-ram`, switching to postcopy: QEMU
/// completes, its re-save holds our RAM and section bodies, `cont` runs.
fn our_postcopy_source_into_qemu(stream: &[u8], unix: bool) {
    let dir = TempDir::new(if unix { "pc-out-unix" } else { "pc-out-tcp" });
    let (uri, qemu_uri) = if unix {
        let p = dir.path().join("in.sock");
        (
            MigrationUri::Unix(p.clone()),
            format!("unix:{}", p.display()),
        )
    } else {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        (
            MigrationUri::Tcp(format!("127.0.0.1:{port}")),
            format!("tcp:127.0.0.1:{port}"),
        )
    };
    let mut qemu = Qemu::start_keeping_stderr(dir.path(), &["-S", "-incoming", "defer"]);
    qemu.execute(
        "migrate-set-capabilities",
        json!({ "capabilities": [{ "capability": "postcopy-ram", "state": true }] }),
    );
    qemu.execute("migrate-incoming", json!({ "uri": qemu_uri }));
    let sent = vmstate_devices::qemu_pc::send(stream, uri, true);
    let stats = match sent {
        Ok(s) => s,
        Err(e) => panic!("our source: {e}; QEMU said: {}", qemu.kill_and_stderr()),
    };
    eprintln!(
        "us -> QEMU postcopy over {qemu_uri}:\n{}",
        vmstate_devices::qemu_pc::summary(&stats)
    );
    let ram = stats.ram.expect("RAM statistics");
    assert!(
        ram.postcopy_bytes > 0,
        "nothing went after the switch: {stats:?}"
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let st = qemu.execute("query-migrate", json!({}));
        if st["status"] == "completed" {
            break;
        }
        assert!(st["status"] != "failed", "QEMU: {st}");
        assert!(Instant::now() < deadline, "QEMU: {st}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A postcopy destination runs the guest at POSTCOPY_RUN unless the
    // stream said it was not running (the fixture: paused, never ran).
    let status = qemu.execute("query-status", json!({}));
    assert_eq!(status["running"], false, "{status}");
    qemu.execute(
        "migrate-set-capabilities",
        json!({ "capabilities": [{ "capability": "postcopy-ram", "state": false }] }),
    );
    // QEMU's own save of what it loaded holds our state: every RAM block
    // (pages sent before and after the switch) and every section but the
    // run state ("prelaunch" sent, "paused" after a postcopy load).
    let save = qemu.migrate_to_file(dir.path());
    let mut theirs = QemuPc::load_stream(&save).unwrap().0.state().unwrap();
    let mut ours = QemuPc::load_stream(stream).unwrap().0.state().unwrap();
    for s in [&mut ours, &mut theirs] {
        s.sections.retain(|x| x.0 != "globalstate");
    }
    assert_eq!(ours.first_difference(&theirs), None, "over {qemu_uri}");
    qemu.execute("cont", json!({}));
    qemu.wait_running(true);
}

#[test]
fn our_postcopy_source_into_qemu_over_unix_socket() {
    if !qemu_available() {
        return;
    }
    our_postcopy_source_into_qemu(&fixture("pc-i8042.mig"), true);
}

#[test]
fn our_postcopy_source_into_qemu_over_tcp_loopback() {
    if !qemu_available() {
        return;
    }
    our_postcopy_source_into_qemu(&fixture("pc-i8042.mig"), false);
}
