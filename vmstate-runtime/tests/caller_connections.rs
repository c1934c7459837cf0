//! Migrations over connections the caller already has: a connected
//! `UnixStream`, a `TcpStream`, an `OwnedFd`, a reader/writer pair, QEMU's
//! `fd:N` URI (a socketpair, and an fd handed to a child process as its
//! stdin, as `-incoming fd:0` is used); and an incoming migration that a
//! cancel from another thread ends while it waits in accept.
// Config structs are built as `default()` plus fields: they are (or will be)
// `#[non_exhaustive]`, where struct literals do not compile.
#![allow(clippy::field_reassign_with_default)]

mod common;
use common::ram::{SharedMemory, SyntheticRam};
use common::vm::Vm;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use vmstate_runtime::migration::{
    run_incoming, start_migration, start_migration_on, CancelToken, Connection, Incoming,
    MigrationCapabilities, MigrationConfig, MigrationStatus, MigrationUri, SourceOptions,
    StatsHandle, POLL_INTERVAL,
};
use vmstate_runtime::savevm::{Configuration, InstanceId, LoadOptions, QemuVersion, Registry};
use vmstate_runtime::{ErrorKind, VmState};

const PAGES: usize = 64;
const PAGE: usize = 4096;
const MACHINE: &str = "pc-i440fx-7.2";

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "cpu", version = 1)]
struct Cpu {
    rip: u64,
    regs: [u64; 4],
}

fn sample_cpu() -> Cpu {
    Cpu {
        rip: 0xfff0,
        regs: [5, 6, 7, 8],
    }
}

fn memory(seed: u8) -> SharedMemory {
    SharedMemory::new(PAGES, PAGE, |i| vec![seed.wrapping_add(i as u8); PAGE])
}

fn source_registry(mem: &SharedMemory) -> Registry {
    let mut reg = Registry::new();
    reg.register_savevm_live("ram", 0, 1, Box::new(SyntheticRam::new(mem.clone())))
        .unwrap();
    reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(sample_cpu())))
        .unwrap();
    reg
}

fn config(caps: MigrationCapabilities) -> MigrationConfig {
    // The URI only names the destination when a connection is given.
    let mut c = MigrationConfig::new(MigrationUri::Unix("/nonexistent/caller-owned".into()))
        .with_machine(MACHINE)
        .with_version(QemuVersion::V7_2)
        .with_caps(caps);
    c.params.downtime_limit_ms = 50;
    c.params.max_bandwidth = 0;
    c
}

fn load_options() -> LoadOptions {
    let mut o = LoadOptions::default();
    o.version = QemuVersion::V7_2;
    o.configuration = Some(Configuration::new(MACHINE));
    o.idle_timeout = Some(Duration::from_secs(10));
    o
}

fn return_path() -> MigrationCapabilities {
    let mut caps = MigrationCapabilities::default();
    caps.return_path = true;
    caps
}

/// What the destination loaded: the cpu and the memory.
fn destination(incoming: Incoming) -> thread::JoinHandle<(Cpu, SharedMemory, MigrationStatus)> {
    thread::spawn(move || {
        let mem = memory(0);
        let cpu = Arc::new(Mutex::new(Cpu::default()));
        let mut reg = Registry::new();
        reg.register_savevm_live("ram", 0, 1, Box::new(SyntheticRam::new(mem.clone())))
            .unwrap();
        reg.vmstate_register(InstanceId::Any, cpu.clone()).unwrap();
        let stats = StatsHandle::default();
        run_incoming(incoming, &mut reg, load_options(), &stats).expect("destination loads");
        let loaded = cpu.lock().unwrap().clone();
        (loaded, mem, stats.snapshot().status)
    })
}

/// Migrates over `src` (the source's end) to `dst` (the destination's), with
/// `caps`; checks that the device and every page arrived.
fn migrate_over(src: Connection, dst: Incoming, caps: MigrationCapabilities) {
    let src_mem = memory(9);
    let dst_thread = destination(dst);
    let handle = start_migration_on(
        src,
        config(caps),
        source_registry(&src_mem),
        Box::new(Vm::default()),
        SourceOptions::default(),
    )
    .unwrap();
    let stats = handle.stats();
    let (_reg, outcome) = handle.wait();
    outcome.expect("source completes");
    assert_eq!(stats.snapshot().status, MigrationStatus::Completed);
    let (cpu, dst_mem, status) = dst_thread.join().unwrap();
    assert_eq!(status, MigrationStatus::Completed);
    assert_eq!(cpu, sample_cpu());
    assert_eq!(dst_mem.pages(), src_mem.pages());
}

#[test]
fn unix_stream_pair_migrates_a_device_with_return_path() {
    let (a, b) = UnixStream::pair().unwrap();
    migrate_over(
        Connection::from_unix_stream(a).unwrap(),
        Incoming::from_connection(Connection::from_unix_stream(b).unwrap()),
        return_path(),
    );
}

#[test]
fn tcp_stream_the_caller_connected_migrates_a_device() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    migrate_over(
        Connection::from_tcp_stream(client).unwrap(),
        Connection::from_tcp_stream(server).unwrap().into(),
        return_path(),
    );
}

#[test]
fn owned_fds_migrate_a_device_socket_with_return_path_and_pipe_one_way() {
    let (a, b) = UnixStream::pair().unwrap();
    let src = Connection::from_fd(OwnedFd::from(a)).unwrap();
    let dst = Connection::from_fd(OwnedFd::from(b)).unwrap();
    assert!(src.is_bidirectional() && dst.is_bidirectional());
    migrate_over(src, dst.into(), return_path());

    // A pipe is one direction: the stream goes through, no return path.
    let (r, w) = std::io::pipe().unwrap();
    let src = Connection::from_fd(OwnedFd::from(w)).unwrap();
    let dst = Connection::from_fd(OwnedFd::from(r)).unwrap();
    assert!(!src.is_bidirectional());
    migrate_over(src, dst.into(), MigrationCapabilities::default());

    // And a capability that needs the return path is refused on it, typed.
    let (r, w) = std::io::pipe().unwrap();
    let handle = start_migration_on(
        Connection::from_fd(OwnedFd::from(w)).unwrap(),
        config(return_path()),
        source_registry(&memory(1)),
        Box::new(Vm::default()),
        SourceOptions::default(),
    )
    .unwrap();
    let (_, outcome) = handle.wait();
    drop(r);
    let e = outcome.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NoReturnPath(_)), "{e}");
}

#[test]
fn a_reader_writer_pair_migrates_a_device_with_return_path() {
    // Two pipes: the stream one way, the return path the other.
    let (stream_r, stream_w) = std::io::pipe().unwrap();
    let (rp_r, rp_w) = std::io::pipe().unwrap();
    migrate_over(
        Connection::from_split(rp_r, stream_w),
        Connection::from_split(stream_r, rp_w).into(),
        return_path(),
    );
}

#[test]
fn fd_uri_on_a_socketpair_migrates_a_device() {
    let (a, b) = UnixStream::pair().unwrap();
    // Ownership goes to the URIs: the runtime closes them.
    let src_uri: MigrationUri = format!("fd:{}", a.into_raw_fd()).parse().unwrap();
    let dst_uri: MigrationUri = format!("fd:{}", b.into_raw_fd()).parse().unwrap();
    assert!(matches!(src_uri, MigrationUri::Fd(_)));
    let dst = destination(Incoming::listen(&dst_uri).unwrap());
    let src_mem = memory(3);
    let mut cfg = config(return_path());
    cfg.uri = src_uri;
    let handle = start_migration(cfg, source_registry(&src_mem), Box::new(Vm::default())).unwrap();
    let (_, outcome) = handle.wait();
    outcome.unwrap();
    let (cpu, dst_mem, status) = dst.join().unwrap();
    assert_eq!(status, MigrationStatus::Completed);
    assert_eq!(cpu, sample_cpu());
    assert_eq!(dst_mem.pages(), src_mem.pages());
}

#[test]
fn fd_uri_errors_are_typed() {
    let e = "fd:named".parse::<MigrationUri>().unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidUri(_)), "{e}");
    assert!("fd:-1".parse::<MigrationUri>().is_err());
    // An fd number nothing has open: refused before anything owns it.
    let e = Incoming::listen(&MigrationUri::Fd(987_654)).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Transport(_)), "{e}");
    assert!(e.to_string().contains("987654"), "{e}");
}

/// The role variable of [`fd_child_entry`].
const FD_CHILD: &str = "VMSTATE_FD0_CHILD";

/// In the child only: an incoming migration on `fd:0` (its stdin is one end
/// of a socketpair); reports the loaded cpu on stdout.
#[test]
fn fd_child_entry() {
    if std::env::var_os(FD_CHILD).is_none() {
        return;
    }
    let incoming = Incoming::listen(&"fd:0".parse().unwrap()).unwrap();
    let (cpu, mem, status) = destination(incoming).join().unwrap();
    let sum: u64 = mem.pages().iter().flatten().map(|&b| b as u64).sum();
    println!(
        "@child: {status} rip={:#x} regs={:?} sum={sum}",
        cpu.rip, cpu.regs
    );
}

#[test]
fn fd0_inherited_by_a_child_process_migrates_a_device() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fd_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FD_CHILD, "1")
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let src_mem = memory(5);
    let handle = start_migration_on(
        Connection::from_unix_stream(ours).unwrap(),
        config(return_path()),
        source_registry(&src_mem),
        Box::new(Vm::default()),
        SourceOptions::default(),
    )
    .unwrap();
    let (_, outcome) = handle.wait();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let exit = child.wait().unwrap();
    outcome.unwrap();
    assert!(exit.success(), "child: {exit}\n{out}");
    let sum: u64 = src_mem.pages().iter().flatten().map(|&b| b as u64).sum();
    let want = format!("@child: completed rip=0xfff0 regs=[5, 6, 7, 8] sum={sum}");
    assert!(
        out.lines().any(|l| l.ends_with(&want)),
        "want {want:?} in:\n{out}"
    );
}

#[test]
fn cancel_ends_a_pending_accept_promptly_with_a_typed_error() {
    let dir = std::env::temp_dir().join(format!("vmstate-callers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for uri in [
        MigrationUri::Unix(dir.join("cancel.sock")),
        MigrationUri::Tcp("127.0.0.1:0".into()),
    ] {
        let incoming = Incoming::listen(&uri).unwrap();
        let cancel = CancelToken::new();
        let stats = StatsHandle::default();
        let (c, s) = (cancel.clone(), stats.clone());
        let t = thread::spawn(move || {
            let mut opts = load_options();
            opts.cancel = Some(c);
            // A long accept timeout: only the cancel can end this wait.
            opts.accept_timeout = Some(Duration::from_secs(60));
            let mut reg = Registry::new();
            run_incoming(incoming, &mut reg, opts, &s)
        });
        thread::sleep(Duration::from_millis(100));
        assert_eq!(stats.snapshot().status, MigrationStatus::Setup);
        let at = Instant::now();
        cancel.cancel();
        let e = t.join().unwrap().unwrap_err();
        let took = at.elapsed();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::Cancelled {
                    in_postcopy_pause: false
                }
            ),
            "{e}"
        );
        assert!(took < POLL_INTERVAL * 10, "cancel took {took:?}");
        assert_eq!(stats.snapshot().status, MigrationStatus::Cancelled);
    }
    // And the accept timeout alone ends it too, typed.
    let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
    let at = Instant::now();
    let e = incoming
        .accept_within(Some(Duration::from_millis(80)), None)
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::TimedOut(_)), "{e}");
    assert!(at.elapsed() < Duration::from_secs(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
