//! `vmstate rewrite`, `vmstate receive` and `vmstate send` as a user runs
//! them: the binary, real QEMU 7.2 on the other end of the socket.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use vmstate_devices::qemu_pc::QemuPc;

mod common;
use common::fixtures::stream_path;

/// The QEMU harness of vmstate-devices' tests, shared rather than copied.
#[path = "../../vmstate-devices/tests/common/qemu.rs"]
#[allow(dead_code)]
mod qemu;
use qemu::{qemu_available, Qemu, TempDir};

const VMSTATE: &str = env!("CARGO_BIN_EXE_vmstate");

/// The state a stream file holds, through fresh models.
fn state_of(path: &Path) -> vmstate_devices::qemu_pc::MachineState {
    let stream = std::fs::read(path).unwrap();
    QemuPc::load_stream(&stream)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .0
        .state()
        .unwrap()
}

#[test]
fn rewrite_reports_each_section_and_writes_the_same_state() {
    let dir = TempDir::new("cli-rewrite");
    let out = dir.path().join("out.mig");
    let input = stream_path("pc-i8042");
    let run = Command::new(VMSTATE)
        .arg("rewrite")
        .arg("--report")
        .arg(&input)
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let text = String::from_utf8(run.stdout).unwrap();
    for line in [
        "ram 0: model (RAM blocks)",
        "ps2kbd 0: model",
        "ps2mouse 0: model",
        "pckbd 0: model",
        "cpu 0: opaque",
        "globalstate 0: opaque",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    // Our writer chunks RAM its own way: the state is the same, the bytes not.
    assert!(text.contains("not byte-identical"), "{text}");
    assert_eq!(state_of(&out), state_of(&input));
}

#[test]
fn rewrite_strict_fails_only_where_a_kind_to_model_went_opaque() {
    let dir = TempDir::new("cli-strict");
    let out = dir.path().join("out.mig");
    let strict = |name: &str| {
        Command::new(VMSTATE)
            .args(["rewrite", "--strict", "--report"])
            .arg(stream_path(name))
            .arg(&out)
            .output()
            .unwrap()
    };
    let run = strict("pc-i8042");
    assert!(run.status.success(), "{run:?}");
    // The virtio models are not here yet: their sections go opaque.
    let run = strict("pc-virtio-blk");
    assert!(!run.status.success());
    let err = String::from_utf8(run.stderr).unwrap();
    assert!(
        err.contains("--strict") && err.contains("0000:00:02.0/virtio-blk 0"),
        "{err}"
    );
    let run = Command::new(VMSTATE)
        .args(["rewrite", "--report"])
        .arg(stream_path("pc-virtio-net"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let text = String::from_utf8(run.stdout).unwrap();
    assert!(
        text.contains("0000:00:02.0/virtio-net 0: opaque (not modelled yet)"),
        "{text}"
    );
}

#[test]
fn rewrite_of_a_missing_file_fails_with_its_name() {
    let run = Command::new(VMSTATE)
        .args(["rewrite", "/nonexistent/in.mig", "/nonexistent/out.mig"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8(run.stderr).unwrap();
    assert!(err.contains("/nonexistent/in.mig"), "{err}");
}

/// Waits for `path` to appear (a socket the child listens on).
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running QEMU migrates live into `vmstate receive`; the state it wrote
/// goes with `vmstate send` into a second QEMU, which completes and runs.
#[test]
fn receive_from_qemu_then_send_into_qemu() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("cli-live");
    let mut src = Qemu::start_keeping_stderr(dir.path(), &[]);
    src.wait_running(true);
    // A save of the same machine tells `receive` its sections.
    let like = dir.path().join("like.mig");
    std::fs::write(&like, src.save_after_boot(dir.path())).unwrap();

    let sock = dir.path().join("recv.sock");
    let received = dir.path().join("received.mig");
    let receiver = Command::new(VMSTATE)
        .arg("receive")
        .arg(format!("unix:{}", sock.display()))
        .arg(&received)
        .arg("--like")
        .arg(&like)
        .args(["--timeout", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&sock);
    src.execute(
        "migrate",
        json!({ "uri": format!("unix:{}", sock.display()) }),
    );
    let run = receiver.wait_with_output().unwrap();
    let st = src.try_execute("query-migrate", json!({}));
    if !run.status.success() {
        panic!("receive: {run:?}; QEMU: {st:?} {}", src.kill_and_stderr());
    }
    let summary = String::from_utf8(run.stdout).unwrap();
    assert!(summary.starts_with("status: completed"), "{summary}");

    let dst_dir = TempDir::new("cli-live-dst");
    let in_sock = dst_dir.path().join("in.sock");
    let in_uri = format!("unix:{}", in_sock.display());
    let mut dst = Qemu::start_keeping_stderr(dst_dir.path(), &["-S", "-incoming", &in_uri]);
    wait_for(&in_sock);
    let run = Command::new(VMSTATE)
        .arg("send")
        .arg(&received)
        .arg(&in_uri)
        .output()
        .unwrap();
    if !run.status.success() {
        panic!("send: {run:?}; QEMU: {}", dst.kill_and_stderr());
    }
    let summary = String::from_utf8(run.stdout).unwrap();
    assert!(summary.starts_with("status: completed"), "{summary}");
    let status = dst.wait_incoming();
    if status != "completed" {
        panic!("QEMU's incoming: {status}: {}", dst.kill_and_stderr());
    }
    dst.execute("cont", json!({}));
    dst.wait_running(true);
}

#[test]
fn send_to_nobody_fails_with_a_message() {
    let dir = TempDir::new("cli-send-nobody");
    let run = Command::new(VMSTATE)
        .arg("send")
        .arg(stream_path("pc-default"))
        .arg(format!("unix:{}", dir.path().join("none.sock").display()))
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8(run.stderr).unwrap();
    assert!(err.starts_with("vmstate: error: sending:"), "{err}");
}
