//! Two demo processes (`--role source` and `--role destination`, each with
//! `--qmp unix:...`) migrated by QEMU's own Python QMP client, `qemu.qmp`
//! from PyPI, running `tests/qmp/drive_migration.py`: greeting, negotiation,
//! QEMU-shaped errors, capabilities, parameters, a whole migration, its
//! MIGRATION / MIGRATION_PASS / STOP / RESUME events, `quit`. Then the two
//! processes' checksums must be identical.
//!
//! The Python comes from `VMSTATE_QMP_PYTHON` (a venv's `bin/python` with
//! `qemu.qmp` installed; `.ci/run` makes one). Without it the test skips,
//! saying why, unless `VMSTATE_REQUIRE_QEMU=1`, where it fails.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::processes::{checksum_rows, spawn_demo, Running};

/// The Python to run the script with, or why there is none.
fn python() -> Result<String, String> {
    let py = std::env::var("VMSTATE_QMP_PYTHON").map_err(|_| {
        "VMSTATE_QMP_PYTHON is not set (a python with qemu.qmp installed)".to_string()
    })?;
    let ok = Command::new(&py)
        .args(["-c", "import qemu.qmp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return Err(format!(
            "{py} cannot import qemu.qmp (pip install qemu.qmp)"
        ));
    }
    Ok(py)
}

fn python_or_skip() -> Option<String> {
    match python() {
        Ok(p) => Some(p),
        Err(why) => {
            if std::env::var("VMSTATE_REQUIRE_QEMU").as_deref() == Ok("1") {
                panic!("VMSTATE_REQUIRE_QEMU=1 but the qemu.qmp client is unavailable: {why}");
            }
            eprintln!("skipping: {why}");
            None
        }
    }
}

/// Kills the demo processes (by PID) if the test ends early.
struct Reap(Vec<Running>);

impl Drop for Reap {
    fn drop(&mut self) {
        for r in &mut self.0 {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}

/// Waits for a child for at most `within`, killing it (by PID) after that.
fn wait_bounded(
    child: &mut std::process::Child,
    within: Duration,
) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if t.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn qemu_qmp_drives_a_migration_between_two_demo_processes() {
    let Some(py) = python_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src_qmp = dir.path().join("src.qmp");
    let dst_qmp = dir.path().join("dst.qmp");
    let mig = dir.path().join("mig.sock");
    let common = [
        "--ram-size",
        "16M",
        "--dirty-rate",
        "500",
        "--max-bandwidth",
        "32M",
        "--no-progress-bar",
    ];
    let dst_arg = format!("unix:{}", dst_qmp.display());
    let src_arg = format!("unix:{}", src_qmp.display());
    let mut dst_args = vec!["--role", "destination", "--qmp", &dst_arg];
    dst_args.extend_from_slice(&common);
    let mut src_args = vec!["--role", "source", "--qmp", &src_arg];
    src_args.extend_from_slice(&common);
    let mut procs = Reap(vec![spawn_demo(&dst_args), spawn_demo(&src_args)]);
    procs.0[0].wait_for_line("QMP ", Duration::from_secs(30));
    procs.0[1].wait_for_line("QMP ", Duration::from_secs(30));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/qmp/drive_migration.py");
    let mut driver = Command::new(&py)
        .arg(script)
        .arg(&src_qmp)
        .arg(&dst_qmp)
        .arg(format!("unix:{}", mig.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    let status = wait_bounded(&mut driver, Duration::from_secs(120));
    let out = driver.wait_with_output().expect("driver output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        status.is_some_and(|s| s.success()),
        "drive_migration.py failed ({status:?}):\nstdout: {stdout}\nstderr: {stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("the script's report");
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        report["greeting_package"]
            .as_str()
            .is_some_and(|p| p.starts_with("vmstate-rs")),
        "{report}"
    );
    eprintln!(
        "qemu.qmp migrated 16 MiB between two processes in {} s; source events {}",
        report["seconds"], report["source_events"]
    );

    // Both processes end on `quit`; their checksums must match.
    let mut results = Vec::new();
    for mut p in std::mem::take(&mut procs.0) {
        let exited = wait_bounded(&mut p.child, Duration::from_secs(20));
        assert!(exited.is_some(), "a demo process did not end on quit");
        results.push(p.finish());
    }
    let (dst_status, dst_out, dst_err) = &results[0];
    let (src_status, src_out, src_err) = &results[1];
    assert!(src_status.success(), "source: {src_out}\n{src_err}");
    assert!(dst_status.success(), "destination: {dst_out}\n{dst_err}");
    let src_rows = checksum_rows(src_out);
    let dst_rows = checksum_rows(dst_out);
    assert!(
        !src_rows.is_empty(),
        "source printed no checksums:\n{src_out}"
    );
    assert_eq!(
        src_rows, dst_rows,
        "source:\n{src_out}\ndestination:\n{dst_out}"
    );
}

/// A raw QMP connection: one request text out, the next reply (events
/// skipped) back.
struct Raw {
    w: std::os::unix::net::UnixStream,
    r: std::io::BufReader<std::os::unix::net::UnixStream>,
    /// The events read so far.
    events: Vec<serde_json::Value>,
}

impl Raw {
    fn connect(path: &std::path::Path) -> Raw {
        let t = Instant::now();
        let s = loop {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if t.elapsed() < Duration::from_secs(30) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("connect {}: {e}", path.display()),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut raw = Raw {
            w: s.try_clone().unwrap(),
            r: std::io::BufReader::new(s),
            events: Vec::new(),
        };
        let greeting = raw.next();
        assert!(greeting.get("QMP").is_some(), "{greeting}");
        raw
    }

    fn next(&mut self) -> serde_json::Value {
        use std::io::BufRead;
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).expect("a reply line");
            let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON reply");
            if v.get("event").is_none() {
                return v;
            }
            self.events.push(v);
        }
    }

    fn ask(&mut self, request: &str) -> serde_json::Value {
        use std::io::Write;
        self.w.write_all(request.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
        self.next()
    }
}

fn qemu_or_skip() -> bool {
    let ok = Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("VMSTATE_REQUIRE_QEMU").as_deref() == Ok("1") {
            panic!("VMSTATE_REQUIRE_QEMU=1 but qemu-system-x86_64 is not installed");
        }
        eprintln!("skipping: qemu-system-x86_64 is not installed");
    }
    ok
}

/// The same requests, byte for byte, to a real QEMU 7.2 and to a demo
/// process: every reply (return or error, class and desc, id) must be the same.
#[test]
fn replies_match_a_real_qemu_for_the_same_requests() {
    if !qemu_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let qemu_sock = dir.path().join("qemu.qmp");
    let ours_sock = dir.path().join("ours.qmp");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _qemu = Kill(
        Command::new("qemu-system-x86_64")
            .args([
                "-machine",
                "pc",
                "-m",
                "32",
                "-display",
                "none",
                "-nodefaults",
            ])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qemu_sock.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu starts"),
    );
    let ours_arg = format!("unix:{}", ours_sock.display());
    let demo = spawn_demo(&[
        "--role",
        "source",
        "--qmp",
        &ours_arg,
        "--ram-size",
        "4M",
        "--no-progress-bar",
    ]);
    let _demo_guard = Reap(vec![demo]);
    let mut q = Raw::connect(&qemu_sock);
    let mut o = Raw::connect(&ours_sock);
    let requests = [
        // Negotiation mode.
        r#"{"execute": "query-status", "id": 1}"#,
        r#"{"execute": "qmp_capabilities", "arguments": {"enable": ["foo"]}}"#,
        r#"{"execute": "qmp_capabilities", "id": "neg"}"#,
        r#"{"execute": "qmp_capabilities"}"#,
        // Malformed requests.
        r#"[1, 2]"#,
        r#""str""#,
        r#"{"execute": 5}"#,
        r#"{"arguments": {}}"#,
        r#"{"execute": "stop", "arguments": []}"#,
        r#"{"execute": "stop", "foo": 1}"#,
        r#"{"execute": "query-status", "id": 1, "id": 2}"#,
        r#"{"execute": "no-such-command", "id": {"a": [1]}}"#,
        // Bad arguments.
        r#"{"execute": "stop", "arguments": {"x": 1}}"#,
        r#"{"execute": "migrate"}"#,
        r#"{"execute": "migrate", "arguments": {"uri": 5}}"#,
        r#"{"execute": "migrate", "arguments": {"uri": "tcp:127.0.0.1:1", "bogus": 1}}"#,
        r#"{"execute": "migrate", "arguments": {"uri": "ftp:x"}}"#,
        r#"{"execute": "migrate-incoming", "arguments": {"uri": "tcp:127.0.0.1:0"}}"#,
        r#"{"execute": "migrate-set-capabilities"}"#,
        r#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "foo", "state": true}]}}"#,
        r#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events"}]}}"#,
        r#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": "yes"}]}}"#,
        r#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": {"capability": "events"}}}"#,
        r#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [5]}}"#,
        r#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": true, "x": 1}]}}"#,
        r#"{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": 3000000}}"#,
        r#"{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": 18446744073709551616}}"#,
        r#"{"execute": "migrate-set-parameters", "arguments": {"cpu-throttle-initial": 300}}"#,
        r#"{"execute": "migrate-set-parameters", "arguments": {"cpu-throttle-initial": 0}}"#,
        r#"{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": "x"}}"#,
        r#"{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 1.5}}"#,
        r#"{"execute": "migrate-set-parameters", "arguments": {"foo": 1}}"#,
        r#"{"execute": "migrate-set-parameters", "arguments": {"xbzrle-cache-size": 1000}}"#,
        r#"{"execute": "migrate-continue"}"#,
        r#"{"execute": "migrate-continue", "arguments": {"state": "bogus"}}"#,
        r#"{"execute": "migrate-continue", "arguments": {"state": "pre-switchover"}}"#,
        r#"{"execute": "migrate-pause"}"#,
        r#"{"execute": "migrate-recover", "arguments": {"uri": "tcp:127.0.0.1:1"}}"#,
        r#"{"execute": "migrate-start-postcopy"}"#,
        // Valid: the same (empty) returns, ids echoed.
        r#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": true}]}, "id": 9}"#,
        r#"{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": 500, "max-bandwidth": 1048576}}"#,
        r#"{"execute": "query-migrate"}"#,
        r#"{"execute": "migrate_cancel", "id": "c"}"#,
    ];
    let mut compared = 0;
    for r in requests {
        let (a, b) = (q.ask(r), o.ask(r));
        assert_eq!(b, a, "request {r}: ours (left) vs QEMU 7.2 (right)");
        compared += 1;
    }
    // The queries agree on what QEMU's migration code reports for the
    // members both implement.
    let qp = q.ask(r#"{"execute": "query-migrate-parameters"}"#)["return"].clone();
    let op = o.ask(r#"{"execute": "query-migrate-parameters"}"#)["return"].clone();
    for (k, v) in op.as_object().unwrap() {
        assert_eq!(&qp[k], v, "parameter {k}");
    }
    let qc = q.ask(r#"{"execute": "query-migrate-capabilities"}"#)["return"].clone();
    let oc = o.ask(r#"{"execute": "query-migrate-capabilities"}"#)["return"].clone();
    assert_eq!(oc, qc, "capabilities");
    eprintln!("{compared} requests answered exactly as QEMU 7.2 answers them");
}

/// The MIGRATION statuses among `events`, in order.
fn statuses(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "MIGRATION")
        .map(|e| e["data"]["status"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Postcopy driven over QMP, as with two QEMUs: postcopy-ram on both sides,
/// `migrate`, then `migrate-start-postcopy`; the source goes through
/// postcopy-active to completed and the destination holds the same state.
#[test]
fn postcopy_started_over_qmp_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (src_qmp, dst_qmp) = (dir.path().join("src.qmp"), dir.path().join("dst.qmp"));
    let mig = format!("unix:{}", dir.path().join("mig.sock").display());
    // A guest that dirties faster than the link: precopy alone would not end.
    let common = [
        "--ram-size",
        "32M",
        "--dirty-rate",
        "20000",
        "--max-bandwidth",
        "16M",
        "--no-progress-bar",
    ];
    let (sa, da) = (
        format!("unix:{}", src_qmp.display()),
        format!("unix:{}", dst_qmp.display()),
    );
    let mut dst_args = vec!["--role", "destination", "--qmp", &da];
    dst_args.extend_from_slice(&common);
    let mut src_args = vec!["--role", "source", "--qmp", &sa];
    src_args.extend_from_slice(&common);
    let mut procs = Reap(vec![spawn_demo(&dst_args), spawn_demo(&src_args)]);
    let (mut d, mut s) = (Raw::connect(&dst_qmp), Raw::connect(&src_qmp));
    let ok = serde_json::json!({"return": {}});
    let caps = r#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [
        {"capability": "events", "state": true}, {"capability": "postcopy-ram", "state": true}]}}"#;
    for c in [&mut d, &mut s] {
        assert_eq!(c.ask(r#"{"execute": "qmp_capabilities"}"#), ok);
        assert_eq!(c.ask(caps), ok);
    }
    let inc = format!(r#"{{"execute": "migrate-incoming", "arguments": {{"uri": "{mig}"}}}}"#);
    assert_eq!(d.ask(&inc), ok);
    let m = format!(r#"{{"execute": "migrate", "arguments": {{"uri": "{mig}"}}}}"#);
    assert_eq!(s.ask(&m), ok);
    assert_eq!(s.ask(r#"{"execute": "migrate-start-postcopy"}"#), ok);
    let t = Instant::now();
    loop {
        let q = s.ask(r#"{"execute": "query-migrate"}"#);
        let st = q["return"]["status"].as_str().unwrap_or("").to_string();
        if st == "completed" {
            break;
        }
        assert!(
            !matches!(st.as_str(), "failed" | "cancelled"),
            "postcopy migration ended {st}: {q}"
        );
        assert!(t.elapsed() < Duration::from_secs(60), "not done: {q}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = Instant::now();
    while d.ask(r#"{"execute": "query-status"}"#)["return"]["status"] != "running" {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "destination never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The guest runs there from POSTCOPY_RUN on; the stream is all in once
    // the destination says so.
    procs.0[0].wait_for_line("Incoming migration completed", Duration::from_secs(30));
    // The MIGRATION "completed" event comes with (or just after) the status.
    let t = Instant::now();
    while statuses(&s.events).last().map(String::as_str) != Some("completed") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}",
            statuses(&s.events)
        );
        s.ask(r#"{"execute": "query-status"}"#);
        std::thread::sleep(Duration::from_millis(20));
    }
    let src_path = statuses(&s.events);
    assert!(
        src_path.contains(&"postcopy-active".to_string()),
        "source statuses {src_path:?}"
    );
    assert_eq!(src_path.last().map(String::as_str), Some("completed"));
    for c in [&mut d, &mut s] {
        assert_eq!(c.ask(r#"{"execute": "quit"}"#), ok);
    }
    let mut results = Vec::new();
    for mut p in std::mem::take(&mut procs.0) {
        assert!(
            wait_bounded(&mut p.child, Duration::from_secs(20)).is_some(),
            "a demo process did not end on quit"
        );
        results.push(p.finish());
    }
    let (src_rows, dst_rows) = (checksum_rows(&results[1].1), checksum_rows(&results[0].1));
    assert!(!src_rows.is_empty(), "{}", results[1].1);
    assert_eq!(src_rows, dst_rows, "{}\n{}", results[1].1, results[0].1);
}

#[test]
fn qmp_flags_are_checked() {
    for (args, says) in [
        (
            &["--qmp", "unix:/tmp/x.qmp"][..],
            "--qmp goes with --role source or --role destination",
        ),
        (
            &["--role", "destination", "--incoming", "defer"][..],
            "add --qmp",
        ),
        (
            &["--role", "source", "--qmp", "tcp:0.0.0.0:4444"][..],
            "QMP has no authentication",
        ),
    ] {
        let out = Command::new(common::processes::demo_exe())
            .args(args)
            .output()
            .expect("demo runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// Postcopy broken and recovered over QMP, as with two QEMUs: `migrate-pause`
/// on the source (both sides go postcopy-paused), `migrate-recover URI2` on
/// the destination, `migrate` with `resume: true` to URI2 on the source; it
/// completes and the destination holds the source's state (no page lost).
#[test]
fn postcopy_paused_and_recovered_over_qmp() {
    let dir = tempfile::tempdir().unwrap();
    let (src_qmp, dst_qmp) = (dir.path().join("src.qmp"), dir.path().join("dst.qmp"));
    let mig = format!("unix:{}", dir.path().join("mig.sock").display());
    let mig2 = format!("unix:{}", dir.path().join("mig2.sock").display());
    let common = [
        "--ram-size",
        "32M",
        "--dirty-rate",
        "20000",
        "--max-bandwidth",
        "16M",
        "--no-progress-bar",
    ];
    let (sa, da) = (
        format!("unix:{}", src_qmp.display()),
        format!("unix:{}", dst_qmp.display()),
    );
    let mut dst_args = vec!["--role", "destination", "--qmp", &da];
    dst_args.extend_from_slice(&common);
    let mut src_args = vec!["--role", "source", "--qmp", &sa];
    src_args.extend_from_slice(&common);
    let mut procs = Reap(vec![spawn_demo(&dst_args), spawn_demo(&src_args)]);
    let (mut d, mut s) = (Raw::connect(&dst_qmp), Raw::connect(&src_qmp));
    let ok = serde_json::json!({"return": {}});
    let caps = r#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [
        {"capability": "events", "state": true}, {"capability": "postcopy-ram", "state": true}]}}"#;
    for c in [&mut d, &mut s] {
        assert_eq!(c.ask(r#"{"execute": "qmp_capabilities"}"#), ok);
        assert_eq!(c.ask(caps), ok);
    }
    // Slow postcopy (4 MiB/s), so that there is time to break it.
    assert_eq!(
        s.ask(r#"{"execute": "migrate-set-parameters", "arguments": {"max-postcopy-bandwidth": 4194304}}"#),
        ok
    );
    let ask_uri = |cmd: &str, uri: &str, extra: &str| {
        format!(r#"{{"execute": "{cmd}", "arguments": {{"uri": "{uri}"{extra}}}}}"#)
    };
    assert_eq!(d.ask(&ask_uri("migrate-incoming", &mig, "")), ok);
    assert_eq!(s.ask(&ask_uri("migrate", &mig, "")), ok);
    assert_eq!(s.ask(r#"{"execute": "migrate-start-postcopy"}"#), ok);
    let status = |c: &mut Raw| {
        c.ask(r#"{"execute": "query-migrate"}"#)["return"]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let wait = |c: &mut Raw, want: &str| {
        let t = Instant::now();
        loop {
            let st = status(c);
            if st == want {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30)
                    && !matches!(st.as_str(), "failed" | "cancelled"),
                "never {want}: {}",
                c.ask(r#"{"execute": "query-migrate"}"#)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait(&mut s, "postcopy-active");
    // The destination runs the guest (past POSTCOPY_RUN) before the link
    // breaks; broken earlier, the destination fails instead of pausing.
    wait(&mut d, "postcopy-active");
    assert_eq!(s.ask(r#"{"execute": "migrate-pause"}"#), ok);
    wait(&mut s, "postcopy-paused");
    wait(&mut d, "postcopy-paused");
    assert_eq!(
        s.ask(&ask_uri("migrate", &mig2, r#", "resume": false"#))["error"]["desc"],
        "There's a migration process in progress"
    );
    assert_eq!(d.ask(&ask_uri("migrate-recover", &mig2, "")), ok);
    assert_eq!(
        d.ask(&ask_uri("migrate-recover", &mig2, ""))["error"]["desc"],
        "Migrate recovery is triggered already"
    );
    assert_eq!(s.ask(&ask_uri("migrate", &mig2, r#", "resume": true"#)), ok);
    wait(&mut s, "completed");
    procs.0[0].wait_for_line("Incoming migration completed", Duration::from_secs(60));
    let t = Instant::now();
    while statuses(&s.events).last().map(String::as_str) != Some("completed") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}",
            statuses(&s.events)
        );
        s.ask(r#"{"execute": "query-status"}"#);
        std::thread::sleep(Duration::from_millis(20));
    }
    let path = statuses(&s.events);
    for st in [
        "postcopy-active",
        "postcopy-paused",
        "postcopy-recover",
        "completed",
    ] {
        assert!(path.contains(&st.to_string()), "source statuses {path:?}");
    }
    let dpath = statuses(&d.events);
    assert!(
        dpath.contains(&"postcopy-paused".to_string()),
        "destination statuses {dpath:?}"
    );
    for c in [&mut d, &mut s] {
        assert_eq!(c.ask(r#"{"execute": "quit"}"#), ok);
    }
    let mut results = Vec::new();
    for mut p in std::mem::take(&mut procs.0) {
        assert!(
            wait_bounded(&mut p.child, Duration::from_secs(20)).is_some(),
            "a demo process did not end on quit"
        );
        results.push(p.finish());
    }
    let (src_rows, dst_rows) = (checksum_rows(&results[1].1), checksum_rows(&results[0].1));
    assert!(!src_rows.is_empty(), "{}", results[1].1);
    assert_eq!(src_rows, dst_rows, "{}\n{}", results[1].1, results[0].1);
}

/// `migrate_cancel` over QMP: the source goes cancelling → cancelled, its
/// guest runs on (RESUME if it had stopped; `query-status` running), and it
/// can migrate again.
#[test]
fn migrate_cancel_over_qmp_leaves_the_source_running() {
    let dir = tempfile::tempdir().unwrap();
    let (src_qmp, dst_qmp) = (dir.path().join("src.qmp"), dir.path().join("dst.qmp"));
    let mig = format!("unix:{}", dir.path().join("mig.sock").display());
    // 1 MiB/s for 16 MiB: far from done when the cancel comes.
    let common = [
        "--ram-size",
        "16M",
        "--max-bandwidth",
        "1M",
        "--no-progress-bar",
    ];
    let (sa, da) = (
        format!("unix:{}", src_qmp.display()),
        format!("unix:{}", dst_qmp.display()),
    );
    let mut dst_args = vec!["--role", "destination", "--qmp", &da];
    dst_args.extend_from_slice(&common);
    let mut src_args = vec!["--role", "source", "--qmp", &sa];
    src_args.extend_from_slice(&common);
    let _procs = Reap(vec![spawn_demo(&dst_args), spawn_demo(&src_args)]);
    let (mut d, mut s) = (Raw::connect(&dst_qmp), Raw::connect(&src_qmp));
    let ok = serde_json::json!({"return": {}});
    let events = r#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [
        {"capability": "events", "state": true}]}}"#;
    for c in [&mut d, &mut s] {
        assert_eq!(c.ask(r#"{"execute": "qmp_capabilities"}"#), ok);
        assert_eq!(c.ask(events), ok);
    }
    let inc = format!(r#"{{"execute": "migrate-incoming", "arguments": {{"uri": "{mig}"}}}}"#);
    assert_eq!(d.ask(&inc), ok);
    let m = format!(r#"{{"execute": "migrate", "arguments": {{"uri": "{mig}"}}}}"#);
    assert_eq!(s.ask(&m), ok);
    let t = Instant::now();
    while s.ask(r#"{"execute": "query-migrate"}"#)["return"]["status"] != "active" {
        assert!(t.elapsed() < Duration::from_secs(20), "never active");
        std::thread::sleep(Duration::from_millis(10));
    }
    let q = s.ask(r#"{"execute": "query-migrate"}"#)["return"].clone();
    assert!(q["expected-downtime"].as_u64().is_some(), "{q}");
    assert!(q["ram"]["remaining"].as_u64().unwrap_or(0) > 0, "{q}");
    assert_eq!(s.ask(r#"{"execute": "migrate_cancel"}"#), ok);
    let t = Instant::now();
    while s.ask(r#"{"execute": "query-migrate"}"#)["return"]["status"] != "cancelled" {
        assert!(t.elapsed() < Duration::from_secs(20), "never cancelled");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        s.ask(r#"{"execute": "query-status"}"#)["return"],
        serde_json::json!({"status": "running", "singlestep": false, "running": true})
    );
    let t = Instant::now();
    while !statuses(&s.events).contains(&"cancelled".to_string()) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}",
            statuses(&s.events)
        );
        s.ask(r#"{"execute": "query-status"}"#);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!statuses(&s.events).contains(&"completed".to_string()));
}
