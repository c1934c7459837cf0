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
