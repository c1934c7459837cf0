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
    assert!(
        text.lines()
            .any(|l| l.starts_with("ram 0: model (RAM blocks; 3 sections, ")),
        "{text}"
    );
    for line in [
        "ps2kbd 0: model",
        "ps2mouse 0: model",
        "pckbd 0: model",
        "cpu 0: opaque",
        "globalstate 0: opaque",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    // The RAM records replayed in QEMU's order and chunking, every section
    // with QEMU's section id: the same bytes.
    assert!(text.lines().any(|l| l == "byte-identical"), "{text}");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&input).unwrap());
    assert_eq!(state_of(&out), state_of(&input));
}

#[test]
fn rewrite_strict_passes_every_fixture_with_virtio_through_its_model() {
    let dir = TempDir::new("cli-strict");
    let out = dir.path().join("out.mig");
    for name in ["pc-default", "pc-i8042", "pc-virtio-blk", "pc-virtio-net"] {
        let run = Command::new(VMSTATE)
            .args(["rewrite", "--strict", "--report"])
            .arg(stream_path(name))
            .arg(&out)
            .output()
            .unwrap();
        assert!(run.status.success(), "{name}: {run:?}");
        let text = String::from_utf8(run.stdout).unwrap();
        assert!(text.ends_with("byte-identical\n"), "{name}: {text}");
        if let Some(kind) = name.strip_prefix("pc-") {
            if kind.starts_with("virtio") {
                let line = format!("0000:00:02.0/{kind} 0: model");
                assert!(text.lines().any(|l| l == line), "{name}: {text}");
            }
        }
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(stream_path(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn rewrite_without_a_vmdesc_fails_saying_so() {
    // A stream QEMU wrote with its vmdesc trailer cut off: the sections not
    // modelled cannot be framed, and the rewrite says why.
    let dir = TempDir::new("cli-strict-bad");
    let input = dir.path().join("in.mig");
    let out = dir.path().join("out.mig");
    let mut s = std::fs::read(stream_path("pc-default")).unwrap();
    let vmdesc = s
        .windows(13)
        .rposition(|w| w == b"{\"page_size\":")
        .unwrap();
    s.truncate(vmdesc - 5);
    std::fs::write(&input, &s).unwrap();
    let run = Command::new(VMSTATE)
        .args(["rewrite", "--strict"])
        .arg(&input)
        .arg(&out)
        .output()
        .unwrap();
    assert!(!run.status.success(), "{run:?}");
    let err = String::from_utf8(run.stderr).unwrap();
    assert!(err.contains("vmdesc"), "{err}");
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

/// Starts `vmstate receive ARGS...` and returns it with the address it
/// printed ("listening on tcp:ADDR", or "listening" for a unix socket).
fn spawn_receiver(args: &[&str]) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let mut child = Command::new(VMSTATE)
        .arg("receive")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    // Keep draining stderr so the child never blocks on it; the rest of it
    // comes back from the thread.
    let rest = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
        text
    });
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_default()
        .to_string();
    (child, addr, rest)
}

/// `vmstate receive` without `--like` (the whole stream kept, framed by its
/// own vmdesc) from a running QEMU with virtio-blk over TCP loopback; then
/// `vmstate send --postcopy` of what it wrote into a QEMU destination with
/// `postcopy-ram`, which completes and runs.
#[test]
fn receive_without_like_then_send_with_postcopy() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("cli-whole");
    let img = dir.path().join("blk.raw");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let drive = format!("file={},format=raw,if=none,id=d0", img.display());
    let devices = [
        "-drive",
        &drive,
        "-device",
        "virtio-blk-pci,drive=d0,addr=02.0",
    ];
    let mut src = Qemu::start_keeping_stderr(dir.path(), &devices);
    src.wait_running(true);
    std::thread::sleep(Duration::from_millis(300));
    let received = dir.path().join("received.mig");
    let out = received.to_str().unwrap();
    let (receiver, addr, _) = spawn_receiver(&["tcp:127.0.0.1:0", out, "--timeout", "30"]);
    assert!(addr.starts_with("tcp:127.0.0.1:"), "{addr}");
    src.execute("migrate", json!({ "uri": addr }));
    let run = receiver.wait_with_output().unwrap();
    if !run.status.success() {
        let st = src.try_execute("query-migrate", json!({}));
        panic!("receive: {run:?}; QEMU: {st:?} {}", src.kill_and_stderr());
    }
    let summary = String::from_utf8(run.stdout).unwrap();
    assert!(summary.starts_with("status: completed"), "{summary}");
    assert!(summary.contains("transferred: "), "{summary}");
    // What we wrote goes through the models again, virtio-blk included.
    let rewrite = Command::new(VMSTATE)
        .args(["rewrite", "--strict", "--report"])
        .arg(&received)
        .arg(dir.path().join("again.mig"))
        .output()
        .unwrap();
    assert!(rewrite.status.success(), "{rewrite:?}");
    let text = String::from_utf8(rewrite.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l == "0000:00:02.0/virtio-blk 0: model"),
        "{text}"
    );

    let dst_dir = TempDir::new("cli-whole-dst");
    let in_sock = dst_dir.path().join("in.sock");
    let in_uri = format!("unix:{}", in_sock.display());
    let mut args = devices.to_vec();
    args.extend(["-S", "-incoming", "defer"]);
    let mut dst = Qemu::start_keeping_stderr(dst_dir.path(), &args);
    dst.execute(
        "migrate-set-capabilities",
        json!({ "capabilities": [{ "capability": "postcopy-ram", "state": true }] }),
    );
    dst.execute("migrate-incoming", json!({ "uri": in_uri }));
    wait_for(&in_sock);
    let run = Command::new(VMSTATE)
        .arg("send")
        .arg(&received)
        .arg(&in_uri)
        .arg("--postcopy")
        .output()
        .unwrap();
    if !run.status.success() {
        panic!("send --postcopy: {run:?}; QEMU: {}", dst.kill_and_stderr());
    }
    let summary = String::from_utf8(run.stdout).unwrap();
    assert!(summary.starts_with("status: completed"), "{summary}");
    let status = dst.wait_incoming();
    if status != "completed" {
        panic!("QEMU's incoming: {status}: {}", dst.kill_and_stderr());
    }
    // Started with -S: paused after the load; `cont` runs the guest.
    dst.wait_running(false);
    dst.execute("cont", json!({}));
    dst.wait_running(true);
}

/// Without `--like`, a QEMU source that opens a return path is refused with
/// a message saying what to do.
#[test]
fn receive_without_like_refuses_a_return_path_clearly() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("cli-whole-rp");
    let mut src = Qemu::start_keeping_stderr(dir.path(), &["-S"]);
    let out = dir.path().join("never.mig");
    let (receiver, addr, stderr) =
        spawn_receiver(&["tcp:127.0.0.1:0", out.to_str().unwrap(), "--timeout", "20"]);
    src.execute(
        "migrate-set-capabilities",
        json!({ "capabilities": [{ "capability": "postcopy-ram", "state": true }] }),
    );
    src.execute("migrate", json!({ "uri": addr }));
    let run = receiver.wait_with_output().unwrap();
    assert!(!run.status.success(), "{run:?}");
    assert!(!out.exists());
    let err = stderr.join().unwrap();
    assert!(
        err.contains("vmstate: error: receiving:")
            && err.contains("return path")
            && err.contains("--like"),
        "{err}"
    );
    drop(src);
}

/// `vmstate receive --like` as the destination of a QEMU postcopy source
/// (`postcopy-ram`, switched with `migrate-start-postcopy` mid-precopy) over
/// a unix socket; what it wrote rewrites byte-identically too (our own
/// writer's stream through the models).
#[test]
fn receive_with_like_takes_a_postcopy_migration() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("cli-postcopy");
    let mut src = Qemu::start_keeping_stderr(dir.path(), &[]);
    src.wait_running(true);
    let like = dir.path().join("like.mig");
    std::fs::write(&like, src.save_after_boot(dir.path())).unwrap();
    let sock = dir.path().join("recv.sock");
    let uri = format!("unix:{}", sock.display());
    let received = dir.path().join("received.mig");
    let (receiver, _, stderr) = spawn_receiver(&[
        &uri,
        received.to_str().unwrap(),
        "--like",
        like.to_str().unwrap(),
        "--timeout",
        "30",
    ]);
    wait_for(&sock);
    src.execute(
        "migrate-set-capabilities",
        json!({ "capabilities": [{ "capability": "postcopy-ram", "state": true }] }),
    );
    src.execute(
        "migrate-set-parameters",
        json!({ "max-bandwidth": 1 << 20 }),
    );
    src.execute("migrate", json!({ "uri": uri }));
    std::thread::sleep(Duration::from_millis(100));
    src.execute("migrate-start-postcopy", json!({}));
    let run = receiver.wait_with_output().unwrap();
    let st = src.try_execute("query-migrate", json!({}));
    if !run.status.success() {
        panic!(
            "receive: {run:?} {}; QEMU: {st:?} {}",
            stderr.join().unwrap(),
            src.kill_and_stderr()
        );
    }
    let st = st.unwrap();
    assert_eq!(st["status"], "completed", "{st}");
    assert!(
        st["ram"]["postcopy-bytes"].as_u64().unwrap_or(0) > 0,
        "{st}"
    );
    let summary = String::from_utf8(run.stdout).unwrap();
    assert!(summary.starts_with("status: completed"), "{summary}");
    let again = dir.path().join("again.mig");
    let run = Command::new(VMSTATE)
        .args(["rewrite", "--strict"])
        .arg(&received)
        .arg(&again)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&received).unwrap()
    );
}

/// A stream with a virtio-blk into a QEMU without one: QEMU refuses the load
/// and `vmstate send` (with the return path it opens) fails, saying so,
/// instead of reporting "completed".
#[test]
fn send_into_a_qemu_with_other_devices_fails() {
    if !qemu_available() {
        return;
    }
    let dir = TempDir::new("cli-send-mismatch");
    let sock = dir.path().join("in.sock");
    let uri = format!("unix:{}", sock.display());
    let mut dst = Qemu::start_keeping_stderr(dir.path(), &["-S", "-incoming", &uri]);
    wait_for(&sock);
    let run = Command::new(VMSTATE)
        .arg("send")
        .arg(stream_path("pc-virtio-blk"))
        .arg(&uri)
        .output()
        .unwrap();
    assert!(!run.status.success(), "{run:?}");
    let err = String::from_utf8(run.stderr).unwrap();
    assert!(
        err.starts_with("vmstate: error: sending:") && err.contains("refused the load"),
        "{err}"
    );
    assert_eq!(dst.wait_incoming(), "failed");
}
