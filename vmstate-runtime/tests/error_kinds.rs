//! The migration layer's failures as typed kinds: a caller matches on
//! [`ErrorKind`] (and its detail enums) instead of comparing messages. One test per
//! main path: transport, cancel, peer failure, return path, postcopy pause and
//! recovery, plus the stream, configuration and registry kinds.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use vmstate_runtime::error::{
    ConfigMismatch, ReturnPathError, TransportError, TransportOp, UriError,
};
use vmstate_runtime::migration::{
    connect, run_incoming, start_migration, Incoming, MigrationCapabilities, MigrationConfig,
    MigrationHandle, MigrationStatus, MigrationUri, StatsHandle, VmControl,
};
use vmstate_runtime::savevm::format::{MigCmd, FILE_MAGIC};
use vmstate_runtime::savevm::{
    Command, Configuration, IterateStatus, LoadOptions, NoCommands, Pending, QemuVersion, Registry,
    SaveVmHandlers, SectionReader, SectionWriter, StreamLoader, StreamWriter,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{ErrorKind, Result, VmState};

const MACHINE: &str = "pc-i440fx-7.2";
const PATIENCE: Duration = Duration::from_secs(10);

struct NopVm;
impl VmControl for NopVm {
    fn pause(&mut self) -> Result<()> {
        Ok(())
    }
    fn resume(&mut self) -> Result<()> {
        Ok(())
    }
}

/// An iterative section that never runs out of data (precopy never converges;
/// in postcopy everything is postcopy-able).
struct Endless {
    postcopy: bool,
}

impl SaveVmHandlers for Endless {
    fn is_iterative(&self) -> bool {
        true
    }
    fn has_postcopy(&self) -> bool {
        self.postcopy
    }
    fn save_live_iterate(&mut self, w: &mut SectionWriter) -> Result<IterateStatus> {
        w.write_bytes(&[0; 256])?;
        Ok(IterateStatus::Continue)
    }
    fn state_pending_estimate(&mut self) -> Pending {
        if self.postcopy {
            Pending {
                must_precopy: 0,
                can_postcopy: 1 << 40,
            }
        } else {
            Pending {
                must_precopy: 1 << 40,
                can_postcopy: 0,
            }
        }
    }
    fn load_state(&mut self, _: &mut SectionReader, _: u32) -> Result<()> {
        Ok(())
    }
}

#[derive(VmState, Default, Debug)]
#[vmstate(name = "dev", version = 1)]
struct Dev {
    x: u32,
}

fn socket(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "vmstate-error-kinds-{name}-{}.sock",
        std::process::id()
    ))
}

fn config(uri: MigrationUri, caps: MigrationCapabilities) -> MigrationConfig {
    MigrationConfig::new(uri)
        .with_machine(MACHINE)
        .with_caps(caps)
}

/// A destination that accepts and reads everything until the source hangs up,
/// never answering on the return path.
fn silent_destination(path: &Path) -> thread::JoinHandle<()> {
    let incoming = Incoming::listen(&MigrationUri::Unix(path.to_path_buf())).unwrap();
    thread::spawn(move || {
        let mut conn = incoming.accept().unwrap();
        let _ = std::io::copy(&mut conn.stream, &mut std::io::sink());
    })
}

fn wait_for_status(stats: &StatsHandle, want: MigrationStatus) {
    let deadline = Instant::now() + PATIENCE;
    while stats.snapshot().status != want {
        assert!(
            Instant::now() < deadline,
            "never {want}: {:?}",
            stats.snapshot()
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// Cancels a running migration and checks that its result is `Cancelled`, with
/// `in_postcopy_pause` as given; gives the error for further checks.
fn cancel_and_expect_cancelled(handle: MigrationHandle, in_pause: bool) -> vmstate_runtime::Error {
    handle.cancel();
    let (_, r) = handle.wait();
    let e = r.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Cancelled { in_postcopy_pause } if *in_postcopy_pause == in_pause),
        "{e:?}"
    );
    e
}

/// Migrates one registered `Dev` over the unix socket at `path` with the return
/// path on, and gives the source's result.
fn migrate_dev_with_return_path(path: PathBuf) -> vmstate_runtime::Result<()> {
    let mut reg = Registry::new();
    reg.vmstate_register(0, Arc::new(Mutex::new(Dev { x: 7 })))
        .unwrap();
    let caps = MigrationCapabilities::default().with_return_path(true);
    let handle =
        start_migration(config(MigrationUri::Unix(path), caps), reg, Box::new(NopVm)).unwrap();
    handle.wait().1
}

#[test]
fn transport_failures_name_the_operation() {
    let path = socket("nobody");
    let e = connect(&MigrationUri::Unix(path.clone())).unwrap_err();
    let ErrorKind::Transport(TransportError::Io {
        op: TransportOp::UnixConnect(p),
        source,
    }) = e.kind()
    else {
        panic!("{e:?}")
    };
    assert_eq!(p, &path);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().starts_with("unix connect to "), "{e}");

    // The same failure, through a migration: the outcome carries the kind.
    let handle = start_migration(
        config(MigrationUri::Unix(path), MigrationCapabilities::default()),
        Registry::new(),
        Box::new(NopVm),
    )
    .unwrap();
    let (_, r) = handle.wait();
    let e = r.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Transport(TransportError::Io { .. })),
        "{e:?}"
    );

    let e = Incoming::listen(&MigrationUri::File("/nonexistent/dir/stream".into())).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Transport(TransportError::Io {
                op: TransportOp::Open(_),
                ..
            })
        ),
        "{e:?}"
    );
    let e = "tcp:nohost".parse::<MigrationUri>().unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvalidUri(UriError::TcpNeedsPort { uri }) if uri == "tcp:nohost"),
        "{e:?}"
    );
}

#[test]
fn cancel_is_cancelled() {
    let path = socket("cancel");
    let dst = silent_destination(&path);
    let mut reg = Registry::new();
    reg.register_savevm_live("endless", 0, 1, Box::new(Endless { postcopy: false }))
        .unwrap();
    let handle = start_migration(
        config(MigrationUri::Unix(path), MigrationCapabilities::default()),
        reg,
        Box::new(NopVm),
    )
    .unwrap();
    let stats = handle.stats();
    wait_for_status(&stats, MigrationStatus::Active);
    let e = cancel_and_expect_cancelled(handle, false);
    assert_eq!(e.to_string(), "migration cancelled");
    assert_eq!(stats.snapshot().status, MigrationStatus::Cancelled);
    dst.join().unwrap();
}

#[test]
fn a_destination_that_fails_to_load_is_peer_failed() {
    let path = socket("peer");
    let incoming = Incoming::listen(&MigrationUri::Unix(path.clone())).unwrap();
    // The destination knows no "dev" section: its load fails, and SHUT says so.
    let dst = thread::spawn(move || {
        let mut reg = Registry::new();
        let opts = LoadOptions::default().with_configuration(Configuration::new(MACHINE));
        run_incoming(incoming, &mut reg, opts, &StatsHandle::default())
    });
    let e = migrate_dev_with_return_path(path).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::PeerFailed), "{e:?}");
    let de = dst.join().unwrap().unwrap_err();
    assert!(
        matches!(
            de.kind(),
            ErrorKind::UnknownSection { idstr, instance_id: 0 } if idstr == "dev"
        ),
        "{de:?}"
    );
}

#[test]
fn a_destination_that_hangs_up_is_a_return_path_error() {
    let path = socket("hangup");
    let dst = silent_destination(&path);
    let e = migrate_dev_with_return_path(path).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::ReturnPath(ReturnPathError::ClosedBeforeShut)
        ),
        "{e:?}"
    );
    dst.join().unwrap();
}

#[test]
fn postcopy_pause_recovery_failure_and_cancel() {
    let path = socket("postcopy");
    // Reads until the source switched to postcopy, then drops the connection.
    let incoming = Incoming::listen(&MigrationUri::Unix(path.clone())).unwrap();
    let hung_up = Arc::new(AtomicBool::new(false));
    let h = hung_up.clone();
    let dst = thread::spawn(move || {
        let mut conn = incoming.accept().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut seen = Vec::new();
        let run = {
            let mut w = vmstate_runtime::wire::Writer::new(Vec::new());
            Command::PostcopyRun.write(&mut w).unwrap();
            w.into_inner()
        };
        while !seen.windows(run.len()).any(|w| w == run.as_slice()) {
            let n = conn.stream.read(&mut buf).unwrap();
            assert!(n > 0, "source hung up before POSTCOPY_RUN");
            seen.extend_from_slice(&buf[..n]);
        }
        let _ = conn.reverse.take().map(|r| r.shutdown());
        let _ = conn.stream.shutdown();
        h.store(true, Ordering::SeqCst);
    });
    let mut reg = Registry::new();
    reg.register_savevm_live("endless", 0, 1, Box::new(Endless { postcopy: true }))
        .unwrap();
    let caps = MigrationCapabilities::default().with_postcopy_ram(true);
    let handle =
        start_migration(config(MigrationUri::Unix(path), caps), reg, Box::new(NopVm)).unwrap();
    handle.start_postcopy();
    let stats = handle.stats();
    wait_for_status(&stats, MigrationStatus::PostcopyPaused);
    dst.join().unwrap();
    assert!(hung_up.load(Ordering::SeqCst));
    // Recovery over a one-way transport fails and stays paused.
    let file = std::env::temp_dir().join(format!("vmstate-error-kinds-{}.mig", std::process::id()));
    handle.resume(MigrationUri::File(file.clone())).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = stats.snapshot();
        if s.error.as_deref() == Some("postcopy recovery needs a bidirectional transport") {
            assert_eq!(s.status, MigrationStatus::PostcopyPaused);
            break;
        }
        assert!(Instant::now() < deadline, "{s:?}");
        thread::sleep(Duration::from_millis(2));
    }
    cancel_and_expect_cancelled(handle, true);
    let _ = std::fs::remove_file(file);
}

#[test]
fn stream_kinds() {
    let load = |bytes: Vec<u8>, opts: LoadOptions| {
        let mut reg = Registry::new();
        reg.vmstate_register(0, Arc::new(Mutex::new(Dev::default())))
            .unwrap();
        let mut r = Reader::new(BytesMut::from(&bytes[..]));
        StreamLoader::new(opts)
            .load(&mut r, &mut reg, &mut NoCommands)
            .unwrap_err()
    };
    let e = load(b"QEMU\0\0\0\x03".to_vec(), LoadOptions::default());
    assert!(
        matches!(e.kind(), ErrorKind::BadMagic { magic: 0x5145_4d55 }),
        "{e}"
    );
    let mut v2 = FILE_MAGIC.to_be_bytes().to_vec();
    v2.extend_from_slice(&2u32.to_be_bytes());
    let e = load(v2, LoadOptions::default());
    assert!(
        matches!(e.kind(), ErrorKind::UnsupportedStreamVersion { version: 2 }),
        "{e}"
    );
    assert!(
        e.to_string().starts_with("stream version 2 is obsolete"),
        "{e}"
    );

    // A stream with a command where none may be.
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    w.write_command(&Command::Ping(1)).unwrap();
    let e = load(
        w.into_inner().unwrap(),
        LoadOptions::default().with_configuration(None),
    );
    assert!(
        matches!(e.kind(), ErrorKind::UnexpectedCommand { cmd: MigCmd::Ping }),
        "{e}"
    );
    // The 7.2 dialect has no SWITCHOVER_START.
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    let e = w.write_command(&Command::SwitchoverStart).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CommandNotInVersion {
                cmd: MigCmd::SwitchoverStart,
                version: QemuVersion::V7_2
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "SWITCHOVER_START does not exist in QEMU 7.2 (its loader rejects it)"
    );

    // Configuration mismatch.
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.suppress_vmdesc();
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new("pc-q35-7.2"))
        .unwrap();
    let e = load(
        w.into_inner().unwrap(),
        LoadOptions::default().with_configuration(Configuration::new(MACHINE)),
    );
    assert!(
        matches!(
            e.kind(),
            ErrorKind::ConfigurationMismatch(ConfigMismatch::MachineType { .. })
        ),
        "{e}"
    );
}

#[test]
fn registry_kinds() {
    let mut reg = Registry::new();
    reg.register_savevm_live("endless", 0, 1, Box::new(Endless { postcopy: false }))
        .unwrap();
    let e = reg
        .register_savevm_live("endless", 0, 1, Box::new(Endless { postcopy: false }))
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::DuplicateInstance { idstr, instance_id: 0 } if idstr == "endless"
        ),
        "{e}"
    );
    let e = reg.set_alias(99, 1).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::NoSuchSection { section_id: 99 }),
        "{e}"
    );
    let e = reg
        .register_savevm_live("", 0, 1, Box::new(Endless { postcopy: false }))
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::BadIdstr { .. }), "{e}");
}
