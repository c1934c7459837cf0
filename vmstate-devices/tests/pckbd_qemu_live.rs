//! Interop with a live QEMU: drive a paused `qemu-system-x86_64 -M pc` through
//! port I/O (HMP `o /b` / `i /b` over QMP), migrate it to a file, and compare
//! its pckbd / ps2kbd / ps2mouse sections with the models driven the same way.
//!
//! Skips (printing why) when QEMU is not installed, unless
//! `VMSTATE_REQUIRE_QEMU=1` (CI), where a missing QEMU is a failure.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{i8042_bodies, save_sections};
use serde_json::{json, Value};
use vmstate_devices::pckbd::{I8042Config, I8042};

const QEMU: &str = "qemu-system-x86_64";

/// Whether QEMU can be used; prints the reason when it cannot.
fn qemu_available() -> bool {
    let found = Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("VMSTATE_REQUIRE_QEMU").as_deref() == Ok("1") {
            panic!("{QEMU} not found but VMSTATE_REQUIRE_QEMU=1");
        }
        eprintln!("skipping: {QEMU} not found (apt-get install qemu-system-x86)");
    }
    found
}

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("pckbd-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A paused QEMU with a QMP connection; killed (by its own pid) on drop.
struct Qemu {
    child: Child,
    qmp: BufReader<UnixStream>,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Qemu {
    fn start(dir: &Path, extra: &[&str]) -> Qemu {
        let sock = dir.join("qmp.sock");
        let child = Command::new(QEMU)
            .args(["-M", "pc", "-m", "32", "-nodefaults", "-nographic"])
            .args(["-rtc", "base=2020-01-01T00:00:00,clock=vm", "-S"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", sock.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn qemu");
        let mut qemu = Qemu {
            child,
            qmp: BufReader::new(Self::connect(&sock)),
        };
        let greeting = qemu.read_message();
        assert!(greeting.get("QMP").is_some(), "QMP greeting: {greeting}");
        qemu.execute("qmp_capabilities", json!({}));
        qemu
    }

    fn connect(sock: &Path) -> UnixStream {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match UnixStream::connect(sock) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    return s;
                }
                Err(e) if Instant::now() > deadline => panic!("QMP socket: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn read_message(&mut self) -> Value {
        let mut line = String::new();
        self.qmp.read_line(&mut line).expect("QMP read");
        assert!(!line.is_empty(), "QMP connection closed");
        serde_json::from_str(&line).expect("QMP json")
    }

    /// Runs a QMP command and returns its `return` value (events are skipped).
    fn execute(&mut self, command: &str, arguments: Value) -> Value {
        let msg = json!({ "execute": command, "arguments": arguments });
        let stream = self.qmp.get_mut();
        writeln!(stream, "{msg}").expect("QMP write");
        loop {
            let reply = self.read_message();
            if reply.get("event").is_some() {
                continue;
            }
            if let Some(r) = reply.get("return") {
                return r.clone();
            }
            panic!("QMP {command}: {reply}");
        }
    }

    fn hmp(&mut self, line: &str) -> String {
        let r = self.execute("human-monitor-command", json!({ "command-line": line }));
        r.as_str().unwrap_or_default().to_string()
    }

    fn out(&mut self, port: u16, val: u8) {
        self.hmp(&format!("o /b {port:#x} {val:#x}"));
    }

    /// `i /b` prints "portb[0x0060] = 0xfa".
    fn inb(&mut self, port: u16) -> u8 {
        let text = self.hmp(&format!("i /b {port:#x}"));
        let v = text.rsplit("0x").next().expect("value").trim();
        u8::from_str_radix(v, 16).unwrap_or_else(|_| panic!("HMP said {text:?}"))
    }

    /// Migrates to a file and returns the stream.
    fn migrate_to_file(&mut self, dir: &Path) -> Vec<u8> {
        let file = dir.join("out.mig");
        self.execute(
            "migrate",
            json!({ "uri": format!("exec:cat > {}", file.display()) }),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st = self.execute("query-migrate", json!({}));
            match st["status"].as_str() {
                Some("completed") => break,
                Some("failed") | Some("cancelled") => panic!("migration: {st}"),
                _ if Instant::now() > deadline => panic!("migration timed out: {st}"),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        std::fs::read(&file).expect("migration file")
    }
}

#[derive(Clone, Copy)]
enum Io {
    Out(u16, u8),
    In(u16),
}
use Io::*;

/// Port I/O reaching most of the controller, keyboard and mouse state, ending
/// with data unread, a half-written controller command and a keyboard command
/// waiting for its argument.
fn stimulus() -> Vec<Io> {
    let mut s = vec![
        Out(0x64, 0xaa),
        In(0x64),
        In(0x60),
        Out(0x64, 0x60),
        Out(0x60, 0x47),
        Out(0x64, 0x20),
        In(0x60),
        Out(0x64, 0xa8),
        Out(0x64, 0xab),
        In(0x60),
        Out(0x64, 0xc0),
        In(0x60),
        Out(0x64, 0xd0),
        In(0x60),
        Out(0x64, 0xdd),
        Out(0x64, 0xa9),
        In(0x60),
        Out(0x64, 0xdf),
        Out(0x64, 0xd1),
        Out(0x60, 0xdd),
        Out(0x64, 0xd0),
        In(0x60),
        Out(0x64, 0xff),
        Out(0x64, 0xf1),
        // Keyboard: reset, LEDs, scancode sets (translated replies), id.
        Out(0x60, 0xff),
        In(0x60),
        In(0x60),
        Out(0x60, 0xed),
        In(0x60),
        Out(0x60, 0x07),
        Out(0x60, 0xf0),
        Out(0x60, 0x00),
        In(0x60),
        In(0x60),
        In(0x60),
        Out(0x60, 0xf0),
        Out(0x60, 0x03),
        Out(0x60, 0xf2),
        In(0x60),
    ];
    // Mouse (its interface disabled first: writing to it re-enables it):
    // Explorer knock, settings, status, remote poll, wrap echo.
    s.push(Out(0x64, 0xa7));
    for b in [
        0xf3, 200, 0xf3, 200, 0xf3, 80, 0xf2, 0xe8, 3, 0xe7, 0xf0, 0xe9, 0xeb, 0xee, 0x42, 0xec,
        0xf4,
    ] {
        s.push(Out(0x64, 0xd4));
        s.push(Out(0x60, b));
    }
    s.extend([
        In(0x64),
        In(0x60),
        In(0x60),
        In(0x64),
        In(0x60),
        In(0x60),
        In(0x60),
    ]);
    s.extend([
        Out(0x64, 0xd2),
        Out(0x60, 0x5a),
        Out(0x64, 0xd3),
        Out(0x60, 0xa5),
        In(0x60),
        In(0x64),
        Out(0x64, 0xad),
        Out(0x60, 0xee),
        In(0x60),
        Out(0x60, 0xf3),
        Out(0x64, 0xa7),
        Out(0x64, 0x60),
    ]);
    s
}

/// Drives QEMU and the model with the same I/O, comparing every read, then
/// compares the three migrated sections byte for byte.
/// Returns QEMU's three bodies, or `None` when QEMU is not available.
fn compare_with_qemu(tag: &str, extra: &[&str], config: I8042Config) -> Option<[Vec<u8>; 3]> {
    if !qemu_available() {
        return None;
    }
    let dir = TempDir::new(tag);
    let mut qemu = Qemu::start(&dir.0, extra);
    let mut model = I8042::new(config);
    for (i, io) in stimulus().into_iter().enumerate() {
        match io {
            Out(port, v) => {
                qemu.out(port, v);
                model.write_port(port, v);
            }
            In(port) => {
                let q = qemu.inb(port);
                assert_eq!(
                    model.read_port(port),
                    q,
                    "{tag}: read #{i} of port {port:#x}"
                );
            }
        }
    }
    let stream = qemu.migrate_to_file(&dir.0);
    drop(qemu);
    let qemu_bodies = i8042_bodies(&stream);
    let ours = save_sections(&model);
    for (name, (o, q)) in ["ps2kbd", "ps2mouse", "pckbd"]
        .iter()
        .zip(ours.iter().zip(&qemu_bodies))
    {
        assert!(o == q, "{tag} {name}:\n ours {o:02x?}\n qemu {q:02x?}");
    }
    // And what QEMU wrote loads into a fresh model and saves back unchanged.
    let mut dst = I8042::new(config);
    common::load_sections(&mut dst, &qemu_bodies).unwrap();
    assert_eq!(save_sections(&dst), qemu_bodies);
    Some(qemu_bodies)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn live_qemu_default_machine() {
    let Some([kbd, _, ctl]) = compare_with_qemu("default", &[], I8042Config::default()) else {
        return;
    };
    // The state reached needs every optional subsection but need_high_bit.
    assert!(contains(&kbd, b"ps2kbd/ledstate") && contains(&kbd, b"ps2kbd/command_reply_queue"));
    assert!(contains(&ctl, b"pckbd_outport") && contains(&ctl, b"pckbd/extended_state"));
}

#[test]
fn live_qemu_without_extended_state() {
    let bodies = compare_with_qemu(
        "noext",
        &["-global", "i8042.extended-state=off"],
        I8042Config {
            extended_state: false,
            kbd_throttle: false,
        },
    );
    if let Some([_, _, ctl]) = bodies {
        assert!(!contains(&ctl, b"pckbd/extended_state"));
    }
}

/// The guest is paused, so the throttle timer armed by a keyboard read never
/// expires: QEMU saves `migration_flags` = 1.
#[test]
fn live_qemu_with_kbd_throttle() {
    let bodies = compare_with_qemu(
        "throttle",
        &["-global", "i8042.kbd-throttle=on"],
        I8042Config {
            extended_state: true,
            kbd_throttle: true,
        },
    );
    if let Some([_, _, ctl]) = bodies {
        // migration_flags, just after the extended-state subsection header.
        let at = ctl
            .windows(20)
            .position(|w| w == b"pckbd/extended_state")
            .unwrap()
            + 24;
        assert_eq!(ctl[at..at + 4], [0, 0, 0, 1]);
    }
}
