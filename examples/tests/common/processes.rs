//! Running the built `demo` binary as separate processes: one side each, as
//! two QEMU processes run, reading what they print as they print it.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The demo binary Cargo built for these tests.
pub fn demo_exe() -> &'static str {
    env!("CARGO_BIN_EXE_demo")
}

/// A running demo process whose stdout lines arrive on a channel.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

/// Starts the demo binary with `args`, stdout and stderr piped.
pub fn spawn_demo(args: &[&str]) -> Running {
    let mut child = Command::new(demo_exe())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo binary starts");
    let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        child,
        lines,
        seen: Vec::new(),
    }
}

impl Running {
    /// Waits (up to `within`) for a line containing `needle`; returns it.
    pub fn wait_for_line(&mut self, needle: &str, within: Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no line with {needle:?} within {within:?}; seen:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// Waits for the process to end; returns its status, all of its stdout
    /// (as lines) and its stderr.
    pub fn finish(mut self) -> (std::process::ExitStatus, String, String) {
        let Output { status, stderr, .. } = self
            .child
            .wait_with_output()
            .expect("the demo process ends");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (
            status,
            self.seen.join("\n"),
            String::from_utf8_lossy(&stderr).into_owned(),
        )
    }
}

/// The checksum lines a demo printed (`  ram ... xxh64 HASH`, `  device ...`),
/// as (kind, name, size, hash) rows.
pub fn checksum_rows(stdout: &str) -> Vec<(String, String, String, String)> {
    stdout
        .lines()
        .filter(|l| l.contains(" xxh64 "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "checksum line {l:?}");
            (f[0].into(), f[1].into(), f[2].into(), f[4].into())
        })
        .collect()
}
