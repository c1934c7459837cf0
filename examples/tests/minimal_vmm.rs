//! `minimal_vmm`, the crate docs' walk-through as a program: two processes
//! (one per role, as on two hosts) migrate its device over a unix socket, and
//! the one-command form (which starts its own destination) checks itself.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_minimal_vmm");

#[test]
fn one_process_per_role_migrates_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("unix:{}", dir.path().join("m.sock").display());
    let mut dst = Command::new(EXE)
        .args(["--role", "destination", "--incoming", &uri])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(dst.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "destination: listening");

    let src = Command::new(EXE)
        .args(["--role", "source", "--uri", &uri])
        .output()
        .unwrap();
    if !src.status.success() {
        // The destination may still wait for a connection: end it (by its PID).
        let _ = dst.kill();
        let _ = dst.wait();
        panic!("source failed: {}", String::from_utf8_lossy(&src.stderr));
    }
    let src_out = String::from_utf8(src.stdout).unwrap();
    let sent = src_out
        .trim()
        .split_once(", sent ")
        .map(|(_, s)| s.to_owned())
        .unwrap_or_else(|| panic!("source said: {src_out}"));
    assert!(src_out.starts_with("source: completed in "), "{src_out}");
    assert!(sent.starts_with("Timer { ticks: "), "{sent}");

    let loaded = lines.next().unwrap().unwrap();
    assert!(dst.wait().unwrap().success());
    assert_eq!(loaded, format!("destination: loaded {sent}"));
}

#[test]
fn the_one_command_form_starts_its_destination_and_checks_it() {
    let out = Command::new(EXE).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("source: completed"), "{stdout}");
    assert!(stdout.contains("destination: loaded Timer"), "{stdout}");
}

#[test]
fn a_missing_uri_is_an_error_not_a_hang() {
    let out = Command::new(EXE)
        .args(["--role", "source"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--uri URI missing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
