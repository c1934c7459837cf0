//! The monitor end to end, in-process: two monitors (a running source, a
//! destination started as `-incoming defer`) over a host that migrates one
//! device over a unix socket; QEMU 7.2's error texts for bad arguments (each
//! observed from a real QEMU 7.2); and the server over a unix socket with a
//! raw client, hostile input included.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::migration::{
    run_incoming, start_migration, Incoming, MigrationConfig, MigrationHandle, MigrationStats,
    VmControl,
};
use crate::savevm::{Configuration, LoadOptions, QemuVersion, Registry};
use crate::VmState;

#[derive(VmState, Debug, Default, Clone, PartialEq)]
#[vmstate(name = "qmp-test-dev", version = 1)]
struct Dev {
    regs: [u8; 4],
    count: u32,
}

const MACHINE: &str = "pc-i440fx-7.2";

fn tmp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "vmstate-qmp-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

struct Vm(Arc<AtomicBool>);

impl VmControl for Vm {
    fn pause(&mut self) -> crate::Result<()> {
        self.0.store(false, Ordering::SeqCst);
        Ok(())
    }
    fn resume(&mut self) -> crate::Result<()> {
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Clone)]
struct Side {
    dev: Arc<Mutex<Dev>>,
    running: Arc<AtomicBool>,
    finished: Arc<Mutex<Vec<String>>>,
}

impl Side {
    fn new(dev: Dev, running: bool) -> Side {
        Side {
            dev: Arc::new(Mutex::new(dev)),
            running: Arc::new(AtomicBool::new(running)),
            finished: Arc::default(),
        }
    }
}

impl MigrationHost for Side {
    fn start_migration(&mut self, setup: &OutgoingSetup) -> Result<MigrationHandle, HostError> {
        let mut reg = Registry::new();
        reg.vmstate_register(0, self.dev.clone())?;
        let config = MigrationConfig::new(setup.uri.clone())
            .with_machine(MACHINE)
            .with_version(QemuVersion::V7_2)
            .with_params(setup.params.clone())
            .with_caps(setup.caps);
        Ok(start_migration(
            config,
            reg,
            Box::new(Vm(self.running.clone())),
        )?)
    }

    fn migration_finished(
        &mut self,
        _registry: Registry,
        outcome: crate::Result<()>,
        stats: &MigrationStats,
    ) {
        if let Ok(mut f) = self.finished.lock() {
            f.push(format!("{} {:?}", stats.status, outcome.err()));
        }
    }

    // Field by field, not a literal: the config structs become #[non_exhaustive].
    #[allow(clippy::field_reassign_with_default)]
    fn start_incoming(&mut self, setup: IncomingSetup) -> Result<IncomingMigration, HostError> {
        let incoming = Incoming::listen(&setup.uri)?;
        let stats = setup.stats.clone();
        let (s, dev, running) = (stats.clone(), self.dev.clone(), self.running.clone());
        let cancel = setup.cancel.clone();
        std::thread::spawn(move || {
            let mut reg = Registry::new();
            if reg.vmstate_register(0, dev).is_err() {
                return;
            }
            let mut opts = LoadOptions::default();
            opts.configuration = Some(Configuration::new(MACHINE));
            opts.cancel = Some(cancel);
            if run_incoming(incoming, &mut reg, opts, &s).is_ok() {
                running.store(true, Ordering::SeqCst);
            }
        });
        Ok(IncomingMigration::new(stats))
    }

    fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    fn stop(&mut self) -> Result<(), HostError> {
        self.running.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn cont(&mut self) -> Result<(), HostError> {
        self.running.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Default)]
struct Collect(Mutex<Vec<Value>>);

impl EventListener for Collect {
    fn event(&self, e: &Value) -> bool {
        if let Ok(mut v) = self.0.lock() {
            v.push(e.clone());
        }
        true
    }
}

impl Collect {
    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e.get("data") {
                Some(d) if d.get("status").is_some() => {
                    format!(
                        "{} {}",
                        e["event"].as_str().unwrap(),
                        d["status"].as_str().unwrap()
                    )
                }
                Some(d) if d.get("pass").is_some() => format!("MIGRATION_PASS {}", d["pass"]),
                _ => e["event"].as_str().unwrap().to_string(),
            })
            .collect()
    }
}

fn exec(s: &mut Session, m: &Monitor, cmd: &str, args: Value) -> Value {
    s.handle(&json!({"execute": cmd, "arguments": args}), m)
}

fn negotiated(m: &Monitor) -> Session {
    let mut s = Session::new();
    assert_eq!(
        s.handle(&json!({"execute": "qmp_capabilities"}), m),
        json!({"return": {}})
    );
    s
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_whole_migration_driven_by_qmp_between_two_monitors() {
    let src_side = Side::new(
        Dev {
            regs: [1, 2, 3, 4],
            count: 77,
        },
        true,
    );
    let dst_side = Side::new(Dev::default(), false);
    let src = Monitor::new(Box::new(src_side.clone()), VmStart::Running).unwrap();
    let dst = Monitor::new(Box::new(dst_side.clone()), VmStart::IncomingDefer).unwrap();
    let (src_ev, dst_ev) = (Arc::new(Collect::default()), Arc::new(Collect::default()));
    src.add_listener(src_ev.clone());
    dst.add_listener(dst_ev.clone());
    let (mut s, mut d) = (negotiated(&src), negotiated(&dst));
    let events_on = json!({"capabilities": [{"capability": "events", "state": true}]});
    for (sess, mon) in [(&mut s, &src), (&mut d, &dst)] {
        assert_eq!(
            exec(sess, mon, "migrate-set-capabilities", events_on.clone()),
            json!({"return": {}})
        );
    }
    assert_eq!(
        exec(&mut d, &dst, "query-status", json!({}))["return"],
        json!({"status": "inmigrate", "singlestep": false, "running": false})
    );
    assert_eq!(
        exec(&mut d, &dst, "query-migrate", json!({}))["return"],
        json!({})
    );
    // The source cannot go anywhere before it is told where.
    assert_eq!(
        exec(&mut d, &dst, "migrate", json!({"uri": "unix:/nonexistent"}))["error"]["desc"],
        "Guest is waiting for an incoming migration"
    );
    let sock = tmp("mig.sock");
    let uri = format!("unix:{}", sock.display());
    assert_eq!(
        exec(&mut d, &dst, "migrate-incoming", json!({"uri": uri})),
        json!({"return": {}})
    );
    assert_eq!(
        exec(&mut d, &dst, "migrate-incoming", json!({"uri": uri}))["error"]["desc"],
        "The incoming migration has already been started"
    );
    let q = exec(&mut d, &dst, "query-migrate", json!({}))["return"].clone();
    assert_eq!(q["status"], "setup");
    assert_eq!(q["socket-address"][0]["type"], "unix");
    assert_eq!(
        exec(
            &mut s,
            &src,
            "migrate-set-parameters",
            json!({"downtime-limit": 500})
        ),
        json!({"return": {}})
    );
    assert_eq!(
        exec(&mut s, &src, "migrate", json!({"uri": uri})),
        json!({"return": {}})
    );
    wait_for("source completed", || {
        exec(&mut s, &src, "query-migrate", json!({}))["return"]["status"] == "completed"
    });
    wait_for("destination completed and running", || {
        exec(&mut d, &dst, "query-status", json!({}))["return"]["status"] == "running"
    });
    assert_eq!(*dst_side.dev.lock().unwrap(), *src_side.dev.lock().unwrap());
    wait_for("the source's registry handed back", || {
        !src_side.finished.lock().unwrap().is_empty()
    });
    assert_eq!(src_side.finished.lock().unwrap()[0], "completed None");
    let q = exec(&mut s, &src, "query-migrate", json!({}))["return"].clone();
    assert!(q["total-time"].as_u64().is_some(), "{q}");
    assert!(q["ram"]["transferred"].as_u64().unwrap() > 0, "{q}");
    assert_eq!(
        exec(&mut s, &src, "query-status", json!({}))["return"]["status"],
        "postmigrate"
    );
    assert_eq!(
        exec(&mut s, &src, "migrate", json!({"uri": uri}))["error"]["desc"],
        "Can't migrate the vm that was paused due to previous migration"
    );
    assert_eq!(
        exec(&mut d, &dst, "query-migrate", json!({}))["return"],
        json!({"status": "completed"})
    );
    src.poll();
    dst.poll();
    let se = src_ev.names();
    assert!(se.contains(&"STOP".to_string()), "{se:?}");
    assert_eq!(
        se.last().map(String::as_str),
        Some("MIGRATION completed"),
        "{se:?}"
    );
    assert!(se.iter().any(|e| e.starts_with("MIGRATION_PASS")), "{se:?}");
    // Every status and every pass, in order, none missed (the monitor reads
    // the migration's event channel, not snapshots).
    let statuses: Vec<_> = se.iter().filter(|e| e.starts_with("MIGRATION ")).collect();
    assert_eq!(
        statuses[..2],
        ["MIGRATION setup", "MIGRATION active"],
        "{se:?}"
    );
    let passes: Vec<u64> = se
        .iter()
        .filter_map(|e| e.strip_prefix("MIGRATION_PASS "))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(
        passes,
        (1..=passes.len() as u64).collect::<Vec<_>>(),
        "{se:?}"
    );
    let de = dst_ev.names();
    // The destination's statuses as QEMU 7.2's destination announces them,
    // every one and in order, however short (the monitor reads the incoming
    // migration's event channel).
    let dst_statuses: Vec<_> = de.iter().filter(|e| e.starts_with("MIGRATION ")).collect();
    assert_eq!(
        dst_statuses,
        ["MIGRATION setup", "MIGRATION active", "MIGRATION completed"],
        "{de:?}"
    );
    assert!(de.contains(&"RESUME".to_string()), "{de:?}");
    let _ = std::fs::remove_file(sock);
}

/// Each (request arguments, QEMU 7.2's `desc`) pair was observed from
/// `qemu-system-x86_64` 7.2 over QMP.
#[test]
fn bad_arguments_get_qemu_7_2s_errors() {
    let side = Side::new(Dev::default(), true);
    let m = Monitor::new(Box::new(side), VmStart::Running).unwrap();
    let mut s = negotiated(&m);
    let cases: &[(&str, Value, &str)] = &[
        ("migrate", json!({}), "Parameter 'uri' is missing"),
        (
            "migrate",
            json!({"uri": 5}),
            "Invalid parameter type for 'uri', expected: string",
        ),
        (
            "migrate",
            json!({"uri": "tcp:1.2.3.4:5", "bogus": 1}),
            "Parameter 'bogus' is unexpected",
        ),
        (
            "migrate",
            json!({"uri": "ftp:x"}),
            "Parameter 'uri' expects a valid migration protocol",
        ),
        (
            "migrate-incoming",
            json!({"uri": "tcp:127.0.0.1:0"}),
            "'-incoming' was not specified on the command line",
        ),
        ("stop", json!({"x": 1}), "Parameter 'x' is unexpected"),
        (
            "migrate-set-capabilities",
            json!({"capabilities": [{"capability": "foo", "state": true}]}),
            "Parameter 'capability' does not accept value 'foo'",
        ),
        (
            "migrate-set-capabilities",
            json!({"capabilities": [{"capability": "events"}]}),
            "Parameter 'capabilities[0].state' is missing",
        ),
        (
            "migrate-set-capabilities",
            json!({"capabilities": [{"capability": "events", "state": "yes"}]}),
            "Invalid parameter type for 'capabilities[0].state', expected: boolean",
        ),
        (
            "migrate-set-capabilities",
            json!({"capabilities": {"capability": "events", "state": true}}),
            "Invalid parameter type for 'capabilities', expected: array",
        ),
        (
            "migrate-set-capabilities",
            json!({"capabilities": [5]}),
            "Invalid parameter type for 'capabilities[0]', expected: object",
        ),
        (
            "migrate-set-capabilities",
            json!({"capabilities": [{"capability": "events", "state": true, "x": 1}]}),
            "Parameter 'capabilities[0].x' is unexpected",
        ),
        (
            "migrate-set-capabilities",
            json!({}),
            "Parameter 'capabilities' is missing",
        ),
        (
            "migrate-set-parameters",
            json!({"downtime-limit": 3000000}),
            "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms",
        ),
        (
            "migrate-set-parameters",
            json!({"cpu-throttle-initial": 300}),
            "Parameter 'cpu-throttle-initial' expects uint8_t",
        ),
        (
            "migrate-set-parameters",
            json!({"cpu-throttle-initial": 0}),
            "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99",
        ),
        (
            "migrate-set-parameters",
            json!({"max-bandwidth": "x"}),
            "Parameter 'max-bandwidth' expects uint64",
        ),
        (
            "migrate-set-parameters",
            json!({"max-bandwidth": 1.5}),
            "Parameter 'max-bandwidth' expects uint64",
        ),
        (
            "migrate-set-parameters",
            json!({"foo": 1}),
            "Parameter 'foo' is unexpected",
        ),
        (
            "migrate-set-parameters",
            json!({"xbzrle-cache-size": 1000}),
            "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size",
        ),
        ("migrate-continue", json!({}), "Parameter 'state' is missing"),
        (
            "migrate-continue",
            json!({"state": "bogus"}),
            "Parameter 'state' does not accept value 'bogus'",
        ),
        (
            "migrate-continue",
            json!({"state": "pre-switchover"}),
            "Migration not in expected state: failed",
        ),
        (
            "migrate-pause",
            json!({}),
            "migrate-pause is currently only supported during postcopy-active state",
        ),
        (
            "migrate-recover",
            json!({"uri": "tcp:127.0.0.1:1"}),
            "Migrate recover can only be run when postcopy is paused.",
        ),
        (
            "migrate-start-postcopy",
            json!({}),
            "Enable postcopy with migrate_set_capability before the start of migration",
        ),
    ];
    // (`migrate ftp:x` above left the migration failed, as in QEMU: hence
    // migrate-continue's "failed".)
    for (cmd, args, desc) in cases {
        let r = exec(&mut s, &m, cmd, args.clone());
        assert_eq!(r["error"]["class"], "GenericError", "{cmd} {args}: {r}");
        assert_eq!(r["error"]["desc"], *desc, "{cmd} {args}");
    }
    // Valid QAPI, not implemented here: refused, and said so.
    let r = exec(
        &mut s,
        &m,
        "migrate-set-capabilities",
        json!({"capabilities": [{"capability": "multifd", "state": true}]}),
    );
    assert!(r["error"]["desc"]
        .as_str()
        .unwrap()
        .starts_with("Capability 'multifd' is not supported"));
    // ... but switching it off, or setting a parameter to its default, is fine.
    for (cmd, args) in [
        (
            "migrate-set-capabilities",
            json!({"capabilities": [{"capability": "multifd", "state": false}]}),
        ),
        ("migrate-set-parameters", json!({"tls-creds": ""})),
        ("migrate_cancel", json!({})),
    ] {
        assert_eq!(exec(&mut s, &m, cmd, args), json!({"return": {}}));
    }
    let r = exec(
        &mut s,
        &m,
        "migrate-set-parameters",
        json!({"multifd-channels": 4}),
    );
    assert!(r["error"]["desc"]
        .as_str()
        .unwrap()
        .starts_with("Parameter 'multifd-channels' is not supported"));
    // Queries keep QEMU's shapes.
    let caps = exec(&mut s, &m, "query-migrate-capabilities", json!({}))["return"].clone();
    assert_eq!(caps.as_array().unwrap().len(), 21);
    assert_eq!(caps[0], json!({"capability": "xbzrle", "state": false}));
    let p = exec(&mut s, &m, "query-migrate-parameters", json!({}))["return"].clone();
    assert_eq!(
        p,
        json!({"downtime-limit": 300, "max-bandwidth": 134217728, "max-postcopy-bandwidth": 0})
    );
    assert_eq!(
        exec(&mut s, &m, "query-status", json!({}))["return"],
        json!({"status": "running", "singlestep": false, "running": true})
    );
    assert_eq!(exec(&mut s, &m, "stop", json!({})), json!({"return": {}}));
    assert_eq!(
        exec(&mut s, &m, "query-status", json!({}))["return"]["status"],
        "paused"
    );
}

#[test]
fn a_failed_connection_is_reported_as_qemu_reports_it() {
    let side = Side::new(Dev::default(), true);
    let m = Monitor::new(Box::new(side.clone()), VmStart::Running).unwrap();
    let mut s = negotiated(&m);
    let nowhere = tmp("nobody-listens.sock");
    let r = exec(
        &mut s,
        &m,
        "migrate",
        json!({"uri": format!("unix:{}", nowhere.display())}),
    );
    assert_eq!(r, json!({"return": {}}));
    wait_for("failed", || {
        exec(&mut s, &m, "query-migrate", json!({}))["return"]["status"] == "failed"
    });
    let q = exec(&mut s, &m, "query-migrate", json!({}))["return"].clone();
    assert!(
        q["error-desc"].as_str().is_some_and(|e| !e.is_empty()),
        "{q}"
    );
    assert_eq!(
        exec(&mut s, &m, "query-status", json!({}))["return"]["status"],
        "running"
    );
}

/// The next reply (events skipped).
fn read_reply(r: &mut BufReader<UnixStream>) -> Value {
    loop {
        let v = read_json(r);
        if v.get("event").is_none() {
            return v;
        }
    }
}

fn read_json(r: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.ends_with("\r\n"), "{line:?}");
    serde_json::from_str(&line).unwrap()
}

#[test]
fn server_over_a_unix_socket_survives_hostile_clients() {
    let side = Side::new(Dev::default(), true);
    let m = Monitor::new(Box::new(side), VmStart::Running).unwrap();
    let path = tmp("qmp.sock");
    let server = QmpServer::start(m.clone(), &QmpAddress::Unix(path.clone())).unwrap();
    let c = UnixStream::connect(&path).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    let g = read_json(&mut r);
    assert_eq!(g["QMP"]["version"]["qemu"]["major"], 7);
    // Two requests in one write, one split across writes.
    w.write_all(
        b"{\"execute\":\"qmp_capabilities\"}{\"execute\":\"query-status\",\"id\":7}\n{\"execute\":",
    )
    .unwrap();
    assert_eq!(read_reply(&mut r), json!({"return": {}}));
    assert_eq!(read_reply(&mut r)["id"], 7);
    w.write_all(b"\"stop\"}").unwrap();
    // STOP is announced before stop's reply, as QEMU does.
    assert_eq!(read_json(&mut r)["event"], "STOP");
    assert_eq!(read_json(&mut r), json!({"return": {}}));
    w.write_all(b"{\"execute\":\"cont\"}").unwrap();
    assert_eq!(read_json(&mut r)["event"], "RESUME");
    assert_eq!(read_json(&mut r), json!({"return": {}}));
    // A text far over the bound: one error, and the session goes on.
    let mut big = b"{\"execute\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'x', 200_000));
    big.extend_from_slice(b"\"}");
    w.write_all(&big).unwrap();
    assert_eq!(read_reply(&mut r)["error"]["class"], "GenericError");
    w.write_all(b"garbage\n{\"execute\":\"query-status\"}")
        .unwrap();
    assert!(read_reply(&mut r)["error"]["desc"]
        .as_str()
        .unwrap()
        .starts_with("JSON parse error"));
    assert_eq!(read_reply(&mut r)["return"]["running"], true);
    // A second client sees the same monitor.
    let c2 = UnixStream::connect(&path).unwrap();
    c2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r2 = BufReader::new(c2);
    assert!(read_json(&mut r2).get("QMP").is_some());
    drop(w);
    drop(r);
    server.shutdown();
    assert!(!path.exists(), "the socket is removed");
}

#[test]
fn server_on_loopback_tcp_and_refuses_other_addresses() {
    let side = Side::new(Dev::default(), true);
    let m = Monitor::new(Box::new(side), VmStart::Running).unwrap();
    let server = QmpServer::start(m, &"tcp:127.0.0.1:0".parse().unwrap()).unwrap();
    let QmpAddress::Tcp(addr) = *server.address() else {
        unreachable!("a tcp server has a tcp address")
    };
    assert_ne!(addr.port(), 0);
    let c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.contains("\"QMP\""), "{line}");
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "{\"return\":{}}\r\n");
    server.shutdown();
    for bad in [
        "tcp:0.0.0.0:4444",
        "tcp:192.0.2.1:1",
        "tcp:nohost",
        "unix:",
        "4444",
    ] {
        assert!(bad.parse::<QmpAddress>().is_err(), "{bad}");
    }
}

mod hostile {
    use super::*;
    use crate::qmp::framing::{Splitter, MAX_MESSAGE_BYTES};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any bytes, cut anywhere: no panic, one bounded reply per text,
        /// never more than the bound held.
        #[test]
        fn arbitrary_input_never_panics(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..512), 0..16)) {
            let side = Side::new(Dev::default(), true);
            let m = Monitor::new(Box::new(side), VmStart::Running).unwrap();
            let mut session = Session::new();
            let mut splitter = Splitter::new();
            for c in chunks {
                for frame in splitter.push(&c) {
                    let reply = session.handle_frame(frame, &m);
                    prop_assert!(reply.get("return").is_some() || reply.get("error").is_some());
                    prop_assert!(reply.to_string().len() < 4096);
                }
                prop_assert!(splitter.pending() <= MAX_MESSAGE_BYTES);
            }
        }

        /// Well-formed requests with arbitrary names and arguments: a reply
        /// each, never a panic, and the VM left running (no command here
        /// stops it by accident: `stop` is not among the generated names).
        #[test]
        fn arbitrary_commands_get_replies(
            cmd in prop::sample::select(vec![
                "migrate", "migrate-incoming", "query-migrate", "migrate-set-capabilities",
                "query-migrate-capabilities", "migrate-set-parameters",
                "query-migrate-parameters", "migrate-continue", "migrate-pause",
                "migrate-recover", "migrate-start-postcopy", "query-status", "nope",
            ]),
            // Never `uri`: a generated `exec:` URI would run a command.
            key in "[a-z-]{1,12}".prop_filter("not uri", |k| k != "uri"),
            val in prop_oneof![
                Just(json!(null)), any::<i64>().prop_map(|v| json!(v)),
                any::<bool>().prop_map(|v| json!(v)), "[ -~]{0,16}".prop_map(|v| json!(v)),
                Just(json!([{"capability": "events", "state": true}])),
                Just(json!({"a": [1, {"b": 2}]})),
            ],
        ) {
            let side = Side::new(Dev::default(), true);
            let m = Monitor::new(Box::new(side), VmStart::Running).unwrap();
            let mut s = negotiated(&m);
            let mut args = serde_json::Map::new();
            args.insert(key, val);
            let r = s.handle(&json!({"execute": cmd, "arguments": args}), &m);
            prop_assert!(r.get("return").is_some() || r.get("error").is_some(), "{}", r);
        }
    }
}
