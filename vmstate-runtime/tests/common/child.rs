//! A migration peer in a child process: the test binary runs itself again with
//! an environment variable naming the role, and the child reports on stdout in
//! lines `@child: TAG value` (the test harness's own output is ignored).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread;
use std::time::Duration;

/// Starts each report, so the parent tells it from the harness's output.
const REPORT_MARK: &str = "@child: ";

/// The variable that names the child's role (unset: the normal test run).
pub const ROLE_VAR: &str = "VMSTATE_CHILD_ROLE";

/// The child process and the lines it reports.
pub struct ChildPeer {
    /// The process (kill it with [`Child::kill`]: SIGKILL).
    pub child: Child,
    lines: Receiver<String>,
}

impl ChildPeer {
    /// Runs the test `entry` of this test binary as a child in `role`, with
    /// `env` set.
    pub fn spawn(entry: &str, role: &str, env: &[(&str, String)]) -> ChildPeer {
        let exe = std::env::current_exe().expect("the test binary");
        let mut cmd = Command::new(exe);
        cmd.args(["--exact", entry, "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, role)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn the child");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildPeer { child, lines }
    }

    /// The value of the next `tag` line (panics after `within`, or when the
    /// child closed its stdout first).
    pub fn expect(&self, tag: &str, within: Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the child never reported {tag}"));
            // The harness may have begun the line ("test child_process ... ").
            let key = format!("{REPORT_MARK}{tag} ");
            if let Some(at) = line.find(&key) {
                return line[at + key.len()..].to_string();
            }
        }
    }
}

impl Drop for ChildPeer {
    fn drop(&mut self) {
        // A child left over by a failed assertion must not outlive the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reports `tag value` to the parent (a line of its own on stdout).
pub fn report(tag: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{REPORT_MARK}{tag} {value}");
    let _ = out.flush();
}

/// The role this process plays, when it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}
