//! The one harness for tests against a live `qemu-system-x86_64` (7.2, `-M pc`):
//! whether it is installed (skip with a printed reason, unless
//! `VMSTATE_REQUIRE_QEMU=1`, where a missing QEMU is a failure), a private
//! temporary directory, and a QEMU process with its QMP connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The QEMU binary the tests drive.
pub const QEMU: &str = "qemu-system-x86_64";

/// Longest wait for the QMP socket to appear and for a QMP reply.
const QMP_PATIENCE: Duration = Duration::from_secs(20);

/// Whether QEMU can be used; prints the reason when it cannot. With
/// `VMSTATE_REQUIRE_QEMU=1` a missing QEMU panics instead.
pub fn qemu_available() -> bool {
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
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory whose name carries `tag`, the pid and the time.
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("pckbd-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What came back for one QMP command.
enum Reply {
    /// The command's `return` value.
    Return(Value),
    /// The whole error reply.
    Error(Value),
    /// The connection is gone (QEMU exits, for one, when an incoming load fails).
    Closed,
}

/// A QEMU with a QMP connection; killed (by its own pid) on drop.
pub struct Qemu {
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
    /// Starts QEMU (`-S` in `extra` for a paused guest) with its QMP socket in
    /// `dir`; its stderr is dropped.
    pub fn start(dir: &Path, extra: &[&str]) -> Qemu {
        Self::spawn(dir, extra, Stdio::null())
    }

    /// As [`start`](Self::start), keeping QEMU's stderr for
    /// [`kill_and_stderr`](Self::kill_and_stderr).
    pub fn start_keeping_stderr(dir: &Path, extra: &[&str]) -> Qemu {
        Self::spawn(dir, extra, Stdio::piped())
    }

    fn spawn(dir: &Path, extra: &[&str], stderr: Stdio) -> Qemu {
        let sock = dir.join("qmp.sock");
        let child = Command::new(QEMU)
            .args(["-M", "pc", "-m", "32", "-nodefaults", "-nographic"])
            .args(["-rtc", "base=2020-01-01T00:00:00,clock=vm"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", sock.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
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
        let deadline = Instant::now() + QMP_PATIENCE;
        loop {
            match UnixStream::connect(sock) {
                Ok(s) => {
                    s.set_read_timeout(Some(QMP_PATIENCE)).unwrap();
                    return s;
                }
                Err(e) if Instant::now() > deadline => panic!("QMP socket: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The next QMP message, or `None` when the connection is closed.
    fn next_message(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.qmp.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("QMP json")),
        }
    }

    fn read_message(&mut self) -> Value {
        self.next_message().expect("QMP connection closed")
    }

    /// The reply to the next command sent, skipping events.
    fn next_reply(&mut self) -> Reply {
        loop {
            let Some(reply) = self.next_message() else {
                return Reply::Closed;
            };
            if reply.get("event").is_some() {
                continue;
            }
            return match reply.get("return") {
                Some(r) => Reply::Return(r.clone()),
                None => Reply::Error(reply),
            };
        }
    }

    fn request(&mut self, command: &str, arguments: Value) -> Reply {
        let msg = json!({ "execute": command, "arguments": arguments });
        if writeln!(self.qmp.get_mut(), "{msg}").is_err() {
            return Reply::Closed;
        }
        self.next_reply()
    }

    /// Runs a QMP command: `Ok(return value)` or `Err(error reply)`; events
    /// are skipped.
    pub fn try_execute(&mut self, command: &str, arguments: Value) -> Result<Value, Value> {
        match self.request(command, arguments) {
            Reply::Return(r) => Ok(r),
            Reply::Error(e) => Err(e),
            Reply::Closed => panic!("QMP {command}: connection closed"),
        }
    }

    /// Runs a QMP command and returns its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Value {
        self.try_execute(command, arguments)
            .unwrap_or_else(|e| panic!("QMP {command}: {e}"))
    }

    /// Sends all the commands, then reads their replies (QMP answers a
    /// monitor's commands in order; events are skipped).
    pub fn pipeline(&mut self, commands: &[(&str, Value)]) -> Vec<Result<Value, Value>> {
        let mut text = String::new();
        for (command, arguments) in commands {
            text += &json!({ "execute": command, "arguments": arguments }).to_string();
            text.push('\n');
        }
        self.qmp
            .get_mut()
            .write_all(text.as_bytes())
            .expect("QMP write");
        (0..commands.len())
            .map(|_| match self.next_reply() {
                Reply::Return(r) => Ok(r),
                Reply::Error(e) => Err(e),
                Reply::Closed => panic!("QMP connection closed"),
            })
            .collect()
    }

    /// Polls `query-status` until `running` is `want` (QMP `cont`/`stop` and the
    /// start of a guest without `-S`).
    pub fn wait_running(&mut self, want: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = self.execute("query-status", json!({}));
            if st["running"].as_bool() == Some(want) {
                return;
            }
            assert!(Instant::now() < deadline, "query-status: {st}");
        }
    }

    /// Runs an HMP command line; returns its text.
    pub fn hmp(&mut self, line: &str) -> String {
        let r = self.execute("human-monitor-command", json!({ "command-line": line }));
        r.as_str().unwrap_or_default().to_string()
    }

    /// Port output (HMP `o /b`).
    pub fn out(&mut self, port: u16, val: u8) {
        self.hmp(&format!("o /b {port:#x} {val:#x}"));
    }

    /// Port input (HMP `i /b`).
    pub fn inb(&mut self, port: u16) -> u8 {
        port_value(&self.hmp(&format!("i /b {port:#x}")))
    }

    /// Migrates to a file in `dir` and returns the stream.
    pub fn migrate_to_file(&mut self, dir: &Path) -> Vec<u8> {
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

    /// Migrates a running guest to a file in `dir` once SeaBIOS has been
    /// through its SMM setup (its vmdesc lists "cpu/msr_smi_count", which the
    /// CPU sends from then on), and lets it run on. Such a save frames the
    /// sections of the guest's later live streams.
    pub fn save_after_boot(&mut self, dir: &Path) -> Vec<u8> {
        let deadline = Instant::now() + QMP_PATIENCE;
        loop {
            let stream = self.migrate_to_file(dir);
            self.execute("cont", json!({}));
            self.wait_running(true);
            let smi = b"cpu/msr_smi_count";
            if stream.windows(smi.len()).any(|w| w == smi) {
                return stream;
            }
            assert!(Instant::now() < deadline, "SeaBIOS never entered SMM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Loads an incoming migration from `uri` (QEMU started with `-incoming
    /// defer`) and returns where `query-migrate` ends: "completed", "failed"
    /// (also when QEMU exited, as it does when a load fails), or the last
    /// status seen when `QMP_PATIENCE` ran out.
    pub fn migrate_incoming(&mut self, uri: &str) -> String {
        let deadline = Instant::now() + QMP_PATIENCE;
        match self.request("migrate-incoming", json!({ "uri": uri })) {
            Reply::Return(_) => {}
            Reply::Closed => return "failed".into(),
            Reply::Error(e) => panic!("migrate-incoming: {e}"),
        }
        loop {
            let st = match self.request("query-migrate", json!({})) {
                Reply::Return(r) => r["status"].as_str().unwrap_or("").to_string(),
                Reply::Closed => return "failed".into(),
                Reply::Error(_) => String::new(),
            };
            if st == "completed" || st == "failed" || Instant::now() > deadline {
                return st;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the incoming migration of a QEMU started with `-incoming
    /// URI` to end, as [`migrate_incoming`](Self::migrate_incoming) does after
    /// its start: "completed", "failed" (also when QEMU exited) or the last
    /// status seen.
    pub fn wait_incoming(&mut self) -> String {
        let deadline = Instant::now() + QMP_PATIENCE;
        loop {
            let st = match self.request("query-migrate", json!({})) {
                Reply::Return(r) => r["status"].as_str().unwrap_or("").to_string(),
                Reply::Closed => return "failed".into(),
                Reply::Error(_) => String::new(),
            };
            if st == "completed" || st == "failed" || Instant::now() > deadline {
                return st;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills QEMU and returns what it wrote on stderr (empty unless started
    /// with [`start_keeping_stderr`](Self::start_keeping_stderr)).
    pub fn kill_and_stderr(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }

    /// The values of QMP's QKeyCode enum (the one that has "kp_5"), from the
    /// QMP schema.
    pub fn qkeycodes(&mut self) -> Vec<String> {
        let schema = self.execute("query-qmp-schema", json!({}));
        for t in schema.as_array().expect("schema") {
            if t["meta-type"] != "enum" {
                continue;
            }
            let values: Vec<String> = match t["values"].as_array() {
                Some(v) => v
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
                None => continue,
            };
            if values.iter().any(|v| v == "kp_5") {
                return values;
            }
        }
        panic!("no QKeyCode enum in the QMP schema");
    }
}

/// The value in HMP's `i /b` answer, "portb[0x0060] = 0xfa".
pub fn port_value(text: &str) -> u8 {
    let v = text.rsplit("0x").next().expect("value").trim();
    u8::from_str_radix(v, 16).unwrap_or_else(|_| panic!("HMP said {text:?}"))
}
