//! Live migration between a real QEMU 7.2 `pc` machine (`-nodefaults`, no
//! virtio devices) and this crate's models, over unix sockets and TCP
//! loopback, both ways:
//!
//! * QEMU (running SeaBIOS, keys typed) is the precopy source, our
//!   destination ([`QemuPc`]: RAM model, keyboard controller models, opaque
//!   carriers framed by a vmdesc of a save of the same machine) loads the
//!   stream over several passes. What we hold equals: the same bytes (tapped
//!   on the way) loaded from a file, every section and RAM block; QEMU's
//!   guest memory (`pmemsave` of the paused source); and QEMU's own save a
//!   moment later, for every section a moment of guest run time leaves alone.
//! * Our source (a QEMU stream file loaded into the models) migrates into a
//!   QEMU started with `-S -incoming`; QEMU completes, its re-save holds our
//!   RAM and every section body byte for byte (the run state aside where the
//!   stream said "running"), and `cont` runs the guest.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vmstate_devices::qemu_pc::{parse_vmdesc, stream_vmdesc, MachineState, QemuPc, QemuPcLayout};
use vmstate_runtime::migration::{
    run_incoming, start_migration, Incoming, MigrationConfig, MigrationUri, StatsHandle,
};

mod common;
use common::fixtures::fixture;
use common::link::StillGuest;
use common::qemu::{qemu_available, Qemu, TempDir};

/// The harness's `-m 32`.
const RAM_SIZE: u64 = 32 << 20;
/// The legacy VGA window of the guest's address space (no RAM there).
const VGA: std::ops::Range<usize> = 0xa0000..0xc0000;
/// What a moment of guest run time may change between QEMU's state at the end
/// of a migration and its save a moment later: RAM the idle guest writes
/// (compared through `pmemsave` instead), the clocks ("timer"), the run state
/// ("globalstate": "running" when sent, "paused" now), the CPU, the timer
/// interrupt's path (PIT, PIC, APICs, RTC, HPET, the PM timer) and the
/// keyboard controller, which delivers the keys still queued (these are
/// compared with the tapped stream instead). Seen to move under load: timer,
/// globalstate, cpu_common, i8259, i8254, ps2kbd.
const GUEST_RUN_MOVES: &[&str] = &[
    "pc.ram",
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

/// Where our destination listens.
enum Endpoint {
    Unix(std::path::PathBuf),
    Tcp(std::net::SocketAddr),
}

/// A one-connection tap on the same transport: listens (a unix socket in
/// `dir`, or a loopback port), forwards what the peer sends to `to` and
/// returns the bytes once the peer closes. Gives the URI to send to.
fn tap(dir: &TempDir, to: Endpoint) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read, Write};
    let (uri, accept): (String, Box<dyn FnOnce() -> Box<dyn Read> + Send>) = match &to {
        Endpoint::Unix(_) => {
            let p = dir.path().join("tap.sock");
            let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
            (
                format!("unix:{}", p.display()),
                Box::new(move || Box::new(l.accept().unwrap().0)),
            )
        }
        Endpoint::Tcp(_) => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            (
                format!("tcp:{}", l.local_addr().unwrap()),
                Box::new(move || Box::new(l.accept().unwrap().0)),
            )
        }
    };
    let handle = std::thread::spawn(move || {
        let mut from = accept();
        let mut out: Box<dyn Write> = match to {
            Endpoint::Unix(p) => Box::new(std::os::unix::net::UnixStream::connect(p).unwrap()),
            Endpoint::Tcp(a) => Box::new(std::net::TcpStream::connect(a).unwrap()),
        };
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = from.read(&mut buf).unwrap();
            if n == 0 {
                return kept;
            }
            out.write_all(&buf[..n]).unwrap();
            kept.extend_from_slice(&buf[..n]);
        }
    });
    (uri, handle)
}

/// Longest a migration may take here.
const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `query-migrate` until it reaches a terminal status; calls `tick`
/// with every snapshot while it runs. Returns the last snapshot.
fn wait_migrate(qemu: &mut Qemu, mut tick: impl FnMut(&mut Qemu, &Value)) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let st = qemu.execute("query-migrate", json!({}));
        match st["status"].as_str() {
            Some("completed") | Some("failed") | Some("cancelled") => return st,
            _ if Instant::now() > deadline => panic!("migration timed out: {st}"),
            _ => tick(qemu, &st),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free TCP port on loopback (bound and released: QEMU takes it next).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Types a few keys into the running guest (the PS/2 keyboard and the
/// controller's state move; SeaBIOS's interrupt handler writes them into the
/// BIOS data area). Press and release are both sent now (`send-key` would
/// release on a timer, after a migration that completed meanwhile).
fn type_keys(qemu: &mut Qemu) {
    for key in ["a", "b", "ret"] {
        for down in [true, false] {
            // Refused once the migration has stopped the guest: fine.
            let _ = qemu.try_execute(
                "input-send-event",
                json!({ "events": [{ "type": "key", "data": {
                    "down": down, "key": { "type": "qcode", "data": key } } }] }),
            );
        }
    }
}

/// QEMU's save of its current state (`exec:cat`), loaded into fresh models.
fn qemu_state(qemu: &mut Qemu, dir: &TempDir) -> (Vec<u8>, MachineState) {
    let stream = qemu.migrate_to_file(dir.path());
    let (pc, _, _) = QemuPc::load_stream(&stream).unwrap_or_else(|e| panic!("QEMU's save: {e}"));
    (stream, pc.state().unwrap())
}

/// RAM block by block and the keyboard controller's three bodies are equal,
/// and so is every opaque section but those in `may_differ`.
/// (RAM blocks named in `may_differ` are not compared either.)
fn assert_same_state(ours: &MachineState, theirs: &MachineState, may_differ: &[&str], how: &str) {
    assert_eq!(ours.ram.len(), theirs.ram.len(), "{how}");
    for ((name, a), (_, b)) in ours.ram.iter().zip(&theirs.ram) {
        assert!(
            a == b || may_differ.contains(&name.as_str()),
            "RAM block {name} differs ({how})"
        );
    }
    // (The live tests list the controller in `may_differ`: the guest takes
    // queued keys in its moment of run time; their bodies are compared with
    // the tapped stream loaded from a file instead.)
    for name in ["ps2kbd", "ps2mouse", "pckbd"] {
        if may_differ.contains(&name) {
            continue;
        }
        let body = |s: &MachineState| s.sections.iter().find(|x| x.0 == name).unwrap().2.clone();
        assert_eq!(body(ours), body(theirs), "{name} ({how})");
    }
    let differ: Vec<&str> = ours
        .sections
        .iter()
        .zip(&theirs.sections)
        .filter(|(a, b)| a.2 != b.2)
        .map(|(a, _)| a.0.as_str())
        .collect();
    eprintln!("{how}: sections that differ: {differ:?}");
    assert!(
        differ.iter().all(|d| may_differ.contains(d)),
        "{how}: sections differ: {differ:?}"
    );
    assert_eq!(ours.sections.len(), theirs.sections.len(), "{how}");
}

/// One live precopy migration from a running QEMU into our destination, over
/// a unix socket or TCP loopback.
fn qemu_to_us(unix: bool, extra: &[&str]) {
    let dir = TempDir::new(if unix { "live-unix" } else { "live-tcp" });
    let mut args: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
    let img = dir.path().join("blk.raw");
    if let Some(d) = args.iter_mut().find(|a| a.contains("DISK")) {
        std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
        *d = d.replace("DISK", img.to_str().unwrap());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut qemu = Qemu::start(dir.path(), &args);
    qemu.wait_running(true);
    // SeaBIOS runs its boot attempts; keys arrive while it does.
    std::thread::sleep(Duration::from_millis(300));
    type_keys(&mut qemu);
    // The vmdesc arrives after the sections: frame the opaque ones with the
    // vmdesc of a save of this same machine, then let it run on.
    let presave = qemu.save_after_boot(dir.path());
    let devices = parse_vmdesc(stream_vmdesc(&presave).expect("vmdesc")).unwrap();
    type_keys(&mut qemu);

    let layout = QemuPcLayout::of_stream(&presave).unwrap();
    assert_eq!(layout.ram_size, RAM_SIZE);
    let (pc, mut reg) = QemuPc::build(layout, &devices).unwrap();
    let uri = if unix {
        MigrationUri::Unix(dir.path().join("mig.sock"))
    } else {
        MigrationUri::Tcp("127.0.0.1:0".into())
    };
    let incoming = Incoming::listen(&uri).unwrap();
    let ours_at = match &uri {
        MigrationUri::Unix(p) => Endpoint::Unix(p.clone()),
        _ => Endpoint::Tcp(incoming.local_tcp_addr().unwrap()),
    };
    // QEMU sends to a tap that forwards every byte to our destination and
    // keeps a copy: the stream our destination loaded, to load again from
    // the file.
    let (qemu_uri, tap) = tap(&dir, ours_at);
    let stats = StatsHandle::default();
    let dst_stats = stats.clone();
    let dst = std::thread::spawn(move || {
        let mut opts = QemuPc::load_options();
        opts.accept_timeout = Some(PATIENCE);
        opts.idle_timeout = Some(PATIENCE);
        let r = run_incoming(incoming, &mut reg, opts, &dst_stats);
        (reg, r)
    });

    // Slow enough, and a downtime limit tight enough, that QEMU iterates: it
    // may complete only once it has synced the dirty log several times.
    qemu.execute(
        "migrate-set-parameters",
        json!({ "max-bandwidth": 1 << 20, "downtime-limit": 1 }),
    );
    qemu.execute("migrate", json!({ "uri": qemu_uri }));
    let mut released = false;
    let st = wait_migrate(&mut qemu, |qemu: &mut Qemu, st: &Value| {
        let syncs = st["ram"]["dirty-sync-count"].as_u64().unwrap_or(0);
        if syncs < 4 {
            type_keys(qemu);
        } else if !released {
            // Let the guest take the last keys while QEMU still iterates,
            // then let it converge.
            std::thread::sleep(Duration::from_millis(200));
            released = true;
            qemu.execute("migrate-set-parameters", json!({ "downtime-limit": 300 }));
        }
    });
    let (_reg, r) = dst.join().unwrap();
    assert_eq!(st["status"], "completed", "QEMU: {st}");
    r.unwrap_or_else(|e| panic!("our destination: {e}"));
    let sent = tap.join().unwrap();
    let syncs = st["ram"]["dirty-sync-count"].as_u64().unwrap();
    eprintln!(
        "QEMU -> us over {qemu_uri}: {syncs} passes (dirty-sync-count), {} bytes, {} normal pages, ours: {:?}",
        st["ram"]["transferred"],
        st["ram"]["normal"],
        stats.snapshot().status,
    );
    assert!(syncs >= 3, "expected several passes: {st}");
    let ours = pc.state().unwrap();
    // Guest RAM as the paused source holds it, read at once (see below).
    let dump = dir.path().join("pc.ram.dump");
    qemu.execute(
        "pmemsave",
        json!({ "val": 0, "size": RAM_SIZE, "filename": dump.to_str().unwrap() }),
    );

    // The live stream (several passes over a socket) rewrites byte for byte.
    let again = vmstate_devices::qemu_pc::rewrite(&sent).unwrap();
    assert_eq!(again.first_difference, None, "rewrite of the live stream");
    assert!(again.opaque_of_modelled_kinds().is_empty());

    // Every section we loaded live is what the same bytes load from a file
    // (the live stream: several RAM passes, then the device sections).
    let (from_file, _, _) = QemuPc::load_stream(&sent).unwrap();
    assert_eq!(
        ours.first_difference(&from_file.state().unwrap()),
        None,
        "live load vs file load of the same stream ({qemu_uri})"
    );

    // Guest RAM as the paused source holds it (pmemsave: guest-physical
    // bytes, pc.ram below 4 GiB) is what we received, but for the legacy
    // VGA window, which is not RAM on the guest's address space. What we
    // hold is exactly the stream's last contents of every page (checked
    // above against a file load of the same bytes). QEMU 7.2's paused
    // source was seen (in about one run in four) holding a word or two that
    // differ from what it had sent last: the BIOS data area's tick counter
    // (0x46c), SeaBIOS's stack, and with virtio devices the firmware's rings
    // high in RAM. Up to three such pages are allowed, and reported; a lost
    // or misplaced page shows as many more.
    let theirs_ram = std::fs::read(&dump).unwrap();
    let our_ram = &ours.ram.iter().find(|b| b.0 == "pc.ram").unwrap().1;
    assert_eq!(theirs_ram.len(), our_ram.len());
    let mut changed_after_send = Vec::new();
    for (range, what) in [(0..VGA.start, "low"), (VGA.end..our_ram.len(), "high")] {
        for page in range.clone().step_by(4096) {
            let end = (page + 4096).min(range.end);
            if our_ram[page..end] != theirs_ram[page..end] {
                let at = (page..end).find(|&i| our_ram[i] != theirs_ram[i]).unwrap();
                changed_after_send.push(format!("{at:#x} ({what} memory)"));
            }
        }
    }
    if !changed_after_send.is_empty() {
        eprintln!(
            "QEMU changed after sending them (over {qemu_uri}): {}",
            changed_after_send.join(", ")
        );
    }
    let allowed = 3;
    assert!(
        changed_after_send.len() <= allowed,
        "pc.ram differs from QEMU's at {} page(s) (over {qemu_uri}): {}",
        changed_after_send.len(),
        changed_after_send.join(", ")
    );

    // And QEMU's own save: QEMU 7.2 refuses to migrate a VM paused by a
    // finished migration, so it runs for a moment first; the ROM blocks and
    // every section that a moment of guest run time leaves alone are ours.
    qemu.execute("cont", json!({}));
    qemu.execute("stop", json!({}));
    let (_, theirs) = qemu_state(&mut qemu, &dir);
    assert_same_state(&ours, &theirs, GUEST_RUN_MOVES, &qemu_uri);
    // The guest's keys made it into the keyboard model.
    let kbd = &ours.sections.iter().find(|s| s.0 == "ps2kbd").unwrap().2;
    let reset =
        vmstate_runtime::to_bytes(vmstate_devices::pckbd::I8042::default().keyboard()).unwrap();
    assert_ne!(kbd, &reset, "the keyboard state moved");
}

#[test]
fn qemu_precopy_into_us_over_unix_socket() {
    if !qemu_available() {
        return;
    }
    qemu_to_us(true, &[]);
}

#[test]
fn qemu_precopy_into_us_over_tcp_loopback() {
    if !qemu_available() {
        return;
    }
    qemu_to_us(false, &[]);
}

/// The same with virtio-net, virtio-blk and virtio-balloon (their sections
/// into the virtio models), over TCP loopback. (virtio-rng is
/// left out here: with it, QEMU's paused source was seen holding a page of
/// SeaBIOS's high memory that differs from what it sent, as if the entropy
/// request completed into guest memory after the last pass; its section
/// goes through the model in `qemu_rewrite`.)
#[test]
fn qemu_precopy_with_virtio_devices_into_us() {
    if !qemu_available() {
        return;
    }
    qemu_to_us(
        false,
        &[
            "-netdev",
            "hubport,id=n0,hubid=0",
            "-device",
            "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,addr=02.0",
            "-drive",
            "file=DISK,format=raw,if=none,id=d0",
            "-device",
            "virtio-blk-pci,drive=d0,addr=03.0",
            "-device",
            "virtio-balloon-pci,addr=05.0",
        ],
    );
}

/// Our source, loaded from `stream`, migrates into a QEMU `-incoming` at a
/// unix socket or a TCP port.
/// `may_differ`: the sections QEMU's re-save may change (its run state).
fn us_to_qemu(stream: &[u8], unix: bool, may_differ: &[&str]) {
    let dir = TempDir::new(if unix { "out-unix" } else { "out-tcp" });
    let (pc, reg, _) = QemuPc::load_stream(stream).unwrap();
    let (uri, qemu_uri) = if unix {
        let p = dir.path().join("in.sock");
        (
            MigrationUri::Unix(p.clone()),
            format!("unix:{}", p.display()),
        )
    } else {
        let port = free_port();
        (
            MigrationUri::Tcp(format!("127.0.0.1:{port}")),
            format!("tcp:127.0.0.1:{port}"),
        )
    };
    let mut qemu = Qemu::start_keeping_stderr(dir.path(), &["-S", "-incoming", &qemu_uri]);
    let config = MigrationConfig::new(uri).with_machine(vmstate_devices::qemu_pc::MACHINE_TYPE);
    let handle = start_migration(config, reg, Box::new(StillGuest)).unwrap();
    let stats = handle.stats();
    let (_reg, r) = handle.wait();
    if let Err(e) = r {
        panic!("our source: {e}; QEMU said: {}", qemu.kill_and_stderr());
    }
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
    // Not running (-S); the run state is the one the stream's "globalstate"
    // section carries ("prelaunch" for a guest saved before it ever ran).
    let status = qemu.execute("query-status", json!({}));
    assert_eq!(status["running"], false, "{status}");
    let runstate = status["status"].as_str().unwrap_or_default().to_string();
    assert!(
        ["paused", "prelaunch"].contains(&runstate.as_str()),
        "{status}"
    );
    eprintln!("us -> QEMU over {qemu_uri}: {:?}", stats.snapshot());

    // QEMU's own save of what it loaded: RAM and the controller bodies are ours.
    // QEMU's own save of what it loaded holds exactly our state: RAM, our
    // keyboard controller bodies and every section we carried.
    let (_, theirs) = qemu_state(&mut qemu, &dir);
    let ours = pc.state().unwrap();
    assert_same_state(&ours, &theirs, may_differ, &qemu_uri);
    // And the guest runs from there.
    qemu.execute("cont", json!({}));
    qemu.wait_running(true);
}

#[test]
fn our_source_into_qemu_over_unix_socket() {
    if !qemu_available() {
        return;
    }
    us_to_qemu(&fixture("pc-i8042.mig"), true, &[]);
}

#[test]
fn our_source_into_qemu_over_tcp_loopback() {
    if !qemu_available() {
        return;
    }
    us_to_qemu(&fixture("pc-i8042.mig"), false, &[]);
}

/// A stream QEMU saved from a running guest (its "globalstate" says
/// "running"): QEMU `-S -incoming` lands paused.
#[test]
fn our_source_from_a_running_guests_save_into_qemu() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("running-save");
    let stream = {
        let mut qemu = Qemu::start(dir.path(), &[]);
        qemu.wait_running(true);
        std::thread::sleep(Duration::from_millis(200));
        type_keys(&mut qemu);
        qemu.migrate_to_file(dir.path())
    };
    // Its "globalstate" said "running"; QEMU (-S) re-saves "paused".
    us_to_qemu(&stream, true, &["globalstate"]);
}

/// Without QEMU: every fixture stream (with and without virtio devices) loads
/// into a `QemuPc`, and each section body it holds, model or opaque, is the
/// stream's own body byte for byte.
#[test]
fn fixtures_load_into_the_pc_section_set() {
    for name in [
        "pc-default.mig",
        "pc-i8042.mig",
        "pc-virtio-blk.mig",
        "pc-virtio-net.mig",
    ] {
        let stream = fixture(name);
        let (pc, _, _) = QemuPc::load_stream(&stream).unwrap_or_else(|e| panic!("{name}: {e}"));
        let state = pc.state().unwrap();
        assert!(state.sections.len() > 20, "{name}");
        for (idstr, instance, body) in &state.sections {
            let at = full_section_body(&stream, idstr, *instance);
            assert_eq!(
                &stream[at..at + body.len()],
                &body[..],
                "{name}: {idstr}/{instance}"
            );
            assert_eq!(stream[at + body.len()], 0x7e, "{name}: {idstr}");
        }
        let modelled: Vec<&str> = pc
            .sections()
            .iter()
            .filter(|s| s.2 == vmstate_devices::qemu_pc::SectionCarrier::Model)
            .map(|s| s.0.as_str())
            .collect();
        let mut want = vec!["ps2kbd", "ps2mouse", "pckbd"];
        if name == "pc-virtio-blk.mig" {
            want.push("0000:00:02.0/virtio-blk");
        }
        if name == "pc-virtio-net.mig" {
            want.push("0000:00:02.0/virtio-net");
        }
        assert_eq!(modelled, want, "{name}");
    }
}

/// Where the body of FULL section `idstr`/`instance` starts: after
/// `04 | be32 id | len idstr | be32 instance | be32 version` (found by its
/// bytes, independently of the loader).
fn full_section_body(stream: &[u8], idstr: &str, instance: u32) -> usize {
    let mut needle = vec![idstr.len() as u8];
    needle.extend_from_slice(idstr.as_bytes());
    needle.extend_from_slice(&instance.to_be_bytes());
    let at = (5..stream.len() - needle.len())
        .find(|&i| stream[i - 5] == 0x04 && stream[i..].starts_with(&needle))
        .unwrap_or_else(|| panic!("no FULL section {idstr}/{instance}"));
    at + needle.len() + 4
}

/// Without QEMU: a QEMU stream cut anywhere, or with its vmdesc gone, is an
/// error from `load_stream`, never a panic.
#[test]
fn cut_streams_are_errors() {
    let stream = fixture("pc-i8042.mig");
    let vmdesc_at = stream.len() - stream_vmdesc(&stream).unwrap().len();
    let e = QemuPc::load_stream(&stream[..vmdesc_at - 5]).unwrap_err();
    assert!(e.to_string().contains("no vmdesc"), "{e}");
    // Keep the trailer (it frames the sections), cut the sections before it.
    let trailer = &stream[vmdesc_at - 5..];
    for cut in (0..vmdesc_at - 5).step_by(vmdesc_at / 13) {
        let mut s = stream[..cut].to_vec();
        s.extend_from_slice(trailer);
        assert!(QemuPc::load_stream(&s).is_err(), "cut at {cut}");
    }
}
