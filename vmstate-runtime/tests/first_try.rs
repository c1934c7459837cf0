//! Issue #12's first-run failure, as a test: a VMM author's 60-line program
//! (a derived device, `Registry::vmstate_register`, their own `VmControl`,
//! `start_migration` over `unix:` with `MigrationConfig::new`, `run_incoming`
//! in a thread with `LoadOptions::default()`) migrates on the first try; and
//! when the two sides disagree about the configuration record, the error says
//! what each side has and which option to set.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use bytes::BytesMut;
use vmstate_runtime::error::ConfigMismatch;
use vmstate_runtime::migration::{
    run_incoming, start_migration, Incoming, MigrationConfig, MigrationStatus, MigrationUri,
    StatsHandle, VmControl,
};
use vmstate_runtime::savevm::{
    LoadOptions, NoCommands, QemuVersion, Registry, StreamLoader, StreamWriter,
    DEFAULT_MACHINE_TYPE,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{ErrorKind, Result, VmState};

/// The user's device, declared with the derive.
#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "acme-uart", version = 2)]
struct Uart {
    regs: [u8; 8],
    rx_count: u32,
    #[vmstate(since = 2)]
    baud: u32,
}

/// The user's vCPU control: counts what the driver asked.
#[derive(Clone, Default)]
struct Vcpus {
    pauses: Arc<AtomicU32>,
    resumes: Arc<AtomicU32>,
}

impl VmControl for Vcpus {
    fn pause(&mut self) -> Result<()> {
        self.pauses.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn resume(&mut self) -> Result<()> {
        self.resumes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A fresh socket path (unix socket paths are short: the temp dir, pid, tag).
fn socket_path(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "vmstate-first-try-{}-{tag}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// Destination in a thread: listens on `uri` (before the source starts, so
/// nothing races), loads into a default `Uart` with `opts`.
fn destination(
    uri: &MigrationUri,
    opts: LoadOptions,
) -> thread::JoinHandle<(Result<()>, Uart, StatsHandle)> {
    let incoming = Incoming::listen(uri).expect("listen");
    thread::spawn(move || {
        let uart = Arc::new(Mutex::new(Uart::default()));
        let mut reg = Registry::new();
        reg.vmstate_register(0, uart.clone()).expect("register");
        let stats = StatsHandle::default();
        let r = run_incoming(incoming, &mut reg, opts, &stats);
        let got = uart.lock().unwrap().clone();
        (r, got, stats)
    })
}

fn source_device() -> Uart {
    Uart {
        regs: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
        rx_count: 4242,
        baud: 115_200,
    }
}

/// Source side of the program: registers the device and migrates with
/// `config`; returns the outcome, the final status and the control.
fn source(config: MigrationConfig) -> (Result<()>, MigrationStatus, Vcpus) {
    let mut reg = Registry::new();
    reg.vmstate_register(0, Arc::new(Mutex::new(source_device())))
        .expect("register");
    let vcpus = Vcpus::default();
    let handle = start_migration(config, reg, Box::new(vcpus.clone())).expect("start");
    let stats = handle.stats();
    let (_reg, r) = handle.wait();
    (r, stats.snapshot().status, vcpus)
}

#[test]
fn the_issue_program_migrates_on_the_first_try() {
    let path = socket_path("ok");
    let uri: MigrationUri = format!("unix:{}", path.display()).parse().unwrap();
    let dst = destination(&uri, LoadOptions::default());

    let (r, status, vcpus) = source(MigrationConfig::new(uri));
    let (dr, got, dstats) = dst.join().unwrap();
    let _ = std::fs::remove_file(&path);

    r.expect("source");
    dr.expect("destination");
    assert_eq!(status, MigrationStatus::Completed);
    assert_eq!(dstats.snapshot().status, MigrationStatus::Completed);
    assert_eq!(got, source_device());
    // Stopped once for the switchover, never resumed (the guest now runs there).
    assert_eq!(vcpus.pauses.load(Ordering::SeqCst), 1);
    assert_eq!(vcpus.resumes.load(Ordering::SeqCst), 0);
}

#[test]
fn a_destination_expecting_no_configuration_says_what_the_stream_has() {
    let path = socket_path("none");
    let uri: MigrationUri = format!("unix:{}", path.display()).parse().unwrap();
    let dst = destination(&uri, LoadOptions::default().with_configuration(None));
    // The source may finish (its whole stream fits the socket buffer) or see
    // the destination hang up: either way it ends.
    let _ = source(MigrationConfig::new(uri));
    let (dr, got, _) = dst.join().unwrap();
    let _ = std::fs::remove_file(&path);

    let e = dr.expect_err("a configuration record where none is expected");
    assert!(
        matches!(
            e.kind(),
            ErrorKind::UnexpectedConfiguration { stream_machine: Some(m) } if m == DEFAULT_MACHINE_TYPE
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    for part in [
        "unexpected configuration record",
        "machine type 'pc-i440fx-7.2'",
        "LoadOptions::configuration is None",
        "LoadOptions::default()",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    assert_eq!(got, Uart::default(), "nothing loaded");
}

#[test]
fn a_machine_type_mismatch_names_both_and_both_options() {
    let path = socket_path("q35");
    let uri: MigrationUri = format!("unix:{}", path.display()).parse().unwrap();
    let dst = destination(&uri, LoadOptions::default());
    let _ = source(MigrationConfig::new(uri).with_machine("pc-q35-7.2"));
    let (dr, _, _) = dst.join().unwrap();
    let _ = std::fs::remove_file(&path);

    let e = dr.expect_err("machine types differ");
    let ErrorKind::ConfigurationMismatch(ConfigMismatch::MachineType { stream, ours }) = e.kind()
    else {
        panic!("{e:?}")
    };
    assert_eq!(
        (stream.as_str(), ours.as_str()),
        ("pc-q35-7.2", "pc-i440fx-7.2")
    );
    let msg = e.to_string();
    for part in [
        "stream has 'pc-q35-7.2'",
        "this side expects 'pc-i440fx-7.2'",
        "LoadOptions::with_configuration(Configuration::new(\"pc-q35-7.2\"))",
        "MigrationConfig::with_machine(\"pc-i440fx-7.2\")",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
}

/// A stream written without a configuration record (QEMU's
/// `send-configuration=off`, or a snapshot writer that has none).
fn stream_without_configuration() -> Vec<u8> {
    let mut reg = Registry::new();
    reg.vmstate_register(0, Arc::new(Mutex::new(source_device())))
        .unwrap();
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.suppress_vmdesc();
    w.write_header().unwrap();
    w.full_sections(&mut reg).unwrap();
    w.write_eof().unwrap();
    w.into_inner().unwrap()
}

fn load(bytes: &[u8], opts: LoadOptions) -> (Result<Option<String>>, Uart) {
    let uart = Arc::new(Mutex::new(Uart::default()));
    let mut reg = Registry::new();
    reg.vmstate_register(0, uart.clone()).unwrap();
    let r = StreamLoader::new(opts).load(
        &mut Reader::new(BytesMut::from(bytes)),
        &mut reg,
        &mut NoCommands,
    );
    let got = uart.lock().unwrap().clone();
    (r, got)
}

#[test]
fn a_missing_configuration_names_the_option_that_loads_it() {
    let bytes = stream_without_configuration();
    let (r, _) = load(&bytes, LoadOptions::default());
    let e = r.expect_err("the default expects a configuration record");
    assert!(
        matches!(
            e.kind(),
            ErrorKind::MissingConfiguration { found: 0x04, expected } if expected == DEFAULT_MACHINE_TYPE
        ),
        "{e:?}"
    );
    assert_eq!(e.offset(), Some(8), "right after magic and version");
    let msg = e.to_string();
    for part in [
        "configuration record missing",
        "machine type 'pc-i440fx-7.2'",
        "record type 0x04",
        "LoadOptions::with_configuration(None)",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }

    // The option the message names loads it.
    let (r, got) = load(&bytes, LoadOptions::default().with_configuration(None));
    r.expect("loads without a configuration record");
    assert_eq!(got, source_device());
}
