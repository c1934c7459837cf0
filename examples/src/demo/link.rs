//! The destination side and the way there: the destination machine loading the
//! stream in its own thread ([`Receiver`]), and, with both sides in one
//! process, the [`Link`] to it: with `--keep-stream`, a tee that copies the
//! stream to a file on its way.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use vmstate_runtime::migration::{
    connect, run_incoming, CancelToken, Incoming, MigrationUri, StatsHandle,
};
use vmstate_runtime::savevm::{Configuration, LoadOptions, QemuVersion, VmDescPolicy};

use super::{fail, DemoError};
use vmstate_devices::machine::{Machine, MACHINE_TYPE};
use vmstate_devices::ram::RamSectionConfig;

/// The destination thread and the optional tee, and the URIs to reach them.
pub(super) struct Link {
    /// Where the destination listens.
    pub(super) dst_uri: MigrationUri,
    /// Where the source connects (the tee, or the destination).
    pub(super) src_uri: MigrationUri,
    receiver: Receiver,
    tee: Option<JoinHandle<io::Result<u64>>>,
    /// Ends the tee's wait for the source to connect.
    tee_cancel: CancelToken,
}

/// How long [`Link::abandon`] lets the destination end on its own.
const ABANDON_GRACE: Duration = Duration::from_secs(1);

/// How long the destination waits for the source (`--accept-timeout`,
/// `--idle-timeout`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Patience {
    /// For the source to connect.
    pub(super) accept: Option<Duration>,
    /// For the next byte in the middle of the stream.
    pub(super) idle: Option<Duration>,
}

/// The destination once the migration ended well.
pub(super) struct Arrived {
    pub(super) machine: Machine,
    pub(super) stats: StatsHandle,
    /// Bytes of the kept stream file, when one was written.
    pub(super) kept_bytes: Option<u64>,
}

/// The destination VM loading the stream on its own thread.
pub(super) struct Receiver {
    pub(super) machine: Machine,
    pub(super) stats: StatsHandle,
    thread: JoinHandle<vmstate_runtime::Result<()>>,
    /// Stops the destination wherever it waits (accept, a read).
    pub(super) cancel: CancelToken,
}

impl Receiver {
    /// An empty machine of `ram_size` bytes of guest RAM (QEMU's pc blocks)
    /// loading from `incoming` on a thread of its own.
    pub(super) fn spawn(
        incoming: Incoming,
        ram_size: u64,
        ram_config: RamSectionConfig,
        patience: Patience,
        cancel: CancelToken,
        disk: Option<&std::path::Path>,
        mem_path: Option<&std::path::Path>,
    ) -> Result<Receiver, DemoError> {
        let machine = Machine::demo_over(ram_size, disk, mem_path)?;
        let stats = StatsHandle::default();
        let mut reg = machine.incoming_registry_with(ram_config)?;
        let (s, c) = (stats.clone(), cancel.clone());
        let thread = std::thread::Builder::new()
            .name("destination".into())
            .spawn(move || -> vmstate_runtime::Result<()> {
                // As QEMU's destination decides (its machine has no
                // suppress-vmdesc): a precopy stream ends with a vmdesc, read
                // without peeking; after postcopy none is read.
                let opts = LoadOptions::default()
                    .with_version(QemuVersion::V7_2)
                    .with_configuration(Configuration::new(MACHINE_TYPE))
                    .with_accept_timeout(patience.accept)
                    .with_idle_timeout(patience.idle)
                    .with_cancel(c)
                    .with_vmdesc(VmDescPolicy::Expected);
                run_incoming(incoming, &mut reg, opts, &s)
            })?;
        Ok(Receiver {
            machine,
            stats,
            thread,
            cancel,
        })
    }

    /// Whether the destination has ended.
    pub(super) fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the destination's outcome.
    pub(super) fn join(self) -> (Machine, StatsHandle, vmstate_runtime::Result<()>) {
        let r = match self.thread.join() {
            Ok(r) => r,
            Err(_) => Err(vmstate_runtime::Error::new(
                vmstate_runtime::ErrorKind::ThreadPanicked {
                    thread: "destination",
                },
            )),
        };
        (self.machine, self.stats, r)
    }
}

impl Link {
    /// Starts the destination listening on `listen_uri` (before the source
    /// starts), and the tee when the stream is to be kept.
    pub(super) fn open(
        listen_uri: &MigrationUri,
        keep_stream: Option<&Path>,
        spawn: impl FnOnce(Incoming) -> Result<Receiver, DemoError>,
        tmp: &Path,
    ) -> Result<Link, DemoError> {
        let incoming = Incoming::listen(listen_uri)?;
        let dst_uri = match incoming.local_tcp_addr() {
            Some(a) => MigrationUri::Tcp(a.to_string()),
            None => listen_uri.clone(),
        };
        let receiver = spawn(incoming)?;
        let tee_cancel = CancelToken::new();
        let (src_uri, tee) = match keep_stream {
            Some(path) => {
                let file = File::create(path).map_err(|e| {
                    DemoError::Failed(format!("--keep-stream {}: {e}", path.display()))
                })?;
                let sock = tmp.join("tee.sock");
                let listener = UnixListener::bind(&sock)?;
                let tee = spawn_tee(listener, dst_uri.clone(), file, tee_cancel.clone())?;
                (MigrationUri::Unix(sock), Some(tee))
            }
            None => (dst_uri.clone(), None),
        };
        Ok(Link {
            dst_uri,
            src_uri,
            receiver,
            tee,
            tee_cancel,
        })
    }

    /// Whether a tee keeps a copy of the stream.
    pub(super) fn has_tee(&self) -> bool {
        self.tee.is_some()
    }

    /// Stops the destination wherever it waits (after the source failed), and
    /// the tee if it still waits for a connection (its accept polls the token).
    pub(super) fn unblock(&self) {
        self.receiver.cancel.cancel();
        self.tee_cancel.cancel();
    }

    /// After a failed migration: stops both threads; returns the destination's
    /// own error, as a note for the failure message.
    pub(super) fn abandon(self) -> String {
        // A source that failed mid-stream closed the connection: give the
        // destination a moment to report its own view of it before cancelling.
        let grace = std::time::Instant::now();
        while !self.receiver.is_finished() && grace.elapsed() < ABANDON_GRACE {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.unblock();
        let (_, _, dst) = self.receiver.join();
        if let Some(t) = self.tee {
            let _ = t.join();
        }
        match dst {
            Err(de) => format!("; destination: {de}"),
            Ok(()) => String::new(),
        }
    }

    /// After a completed migration: the destination's outcome and the tee's.
    pub(super) fn finish(self) -> Result<Arrived, DemoError> {
        let (machine, stats, r) = self.receiver.join();
        if let Err(e) = r {
            return fail(format!("destination failed: {e}"));
        }
        let kept_bytes = match self.tee {
            Some(t) => match t.join() {
                Ok(Ok(n)) => Some(n),
                Ok(Err(e)) => return fail(format!("keeping the stream: {e}")),
                Err(_) => return fail("tee thread panicked"),
            },
            None => None,
        };
        Ok(Arrived {
            machine,
            stats,
            kept_bytes,
        })
    }
}

/// Copies the source's stream to the destination and to `file`, and the return
/// path back; returns the bytes of the stream.
fn spawn_tee(
    listener: UnixListener,
    target: MigrationUri,
    file: File,
    cancel: CancelToken,
) -> io::Result<JoinHandle<io::Result<u64>>> {
    let path = listener
        .local_addr()?
        .as_pathname()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    std::thread::Builder::new()
        .name("tee".into())
        .spawn(move || {
            let src = Incoming::Unix(listener, path)
                .accept_within(None, Some(&cancel))
                .map_err(io::Error::other)?;
            let dst = connect(&target).map_err(io::Error::other)?;
            let mut dst_w = dst.stream;
            let dst_r = dst.reverse;
            let mut src_r = src.stream;
            let Some(mut src_w) = src.reverse else {
                return Err(io::Error::other("tee: a unix socket has two directions"));
            };
            let back = std::thread::spawn(move || {
                if let Some(mut r) = dst_r {
                    let _ = io::copy(&mut r, &mut src_w);
                }
                let _ = src_w.shutdown();
            });
            let mut file = BufWriter::new(file);
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            let copied = (|| -> io::Result<()> {
                loop {
                    let n = match src_r.read(&mut buf) {
                        Ok(0) => return Ok(()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    file.write_all(&buf[..n])?;
                    dst_w.write_all(&buf[..n])?;
                    total += n as u64;
                }
            })();
            let flushed = file.flush();
            if copied.is_err() {
                let _ = dst_w.shutdown();
                let _ = src_r.shutdown();
            } else {
                let _ = dst_w.flush();
                let _ = dst_w.shutdown_write();
            }
            let _ = back.join();
            copied.and(flushed).map(|_| total)
        })
}
