//! A hostile or broken destination, over real unix sockets: it stops reading
//! the stream, owes a reply and stays silent, or writes crafted return-path
//! bytes (unknown types, bad lengths, page requests for unknown blocks or
//! beyond the RAM, huge ranges, floods, received bitmaps with a bad size or
//! end mark). The source must end every one of them with a typed error, with
//! bounded work and allocation, and keep its VM running (precopy) or stay
//! recoverable in postcopy-paused. Silence where it is legitimate
//! (pre-switchover, postcopy-paused) must not time out.

mod common;
use common::kinds::assert_kind;
use common::ram::{SharedMemory, SyntheticRam};
use common::vm::{Vm, VmLog};

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use vmstate_runtime::error::{PostcopyError, RecoveryError, ReturnPathError, TimeoutError};
use vmstate_runtime::migration::{
    read_return_path, start_migration_with, MigrationCapabilities, MigrationConfig,
    MigrationHandle, MigrationParameters, MigrationStatus, MigrationUri, SourceOptions,
    StatsHandle, MAX_QUEUED_PAGE_REQUESTS,
};
use vmstate_runtime::savevm::format::RECV_BITMAP_ENDING;
use vmstate_runtime::savevm::{QemuVersion, Registry, RpMessage};
use vmstate_runtime::wire::Writer;
use vmstate_runtime::{Error, ErrorKind};

#[global_allocator]
static ALLOC: common::alloc::Counting = common::alloc::Counting;

/// The timeouts the tests use: short, so the suite stays fast.
const T: Duration = Duration::from_millis(200);
/// How long a test waits for a state before calling it a hang.
const PATIENCE: Duration = Duration::from_secs(20);
/// The write timeout where the fake destination reads everything and the
/// test is about something else: a reader thread starved for `T` on a loaded
/// machine must not pass for a destination that stopped reading.
const READER_WRITE_TIMEOUT: Option<Duration> = Some(PATIENCE);
const BLOCK: &str = "pc.ram";
const PAGE: usize = 4096;
const PAGES: usize = 512;
const RAM_BYTES: u64 = (PAGE * PAGES) as u64;
/// The RAM of the tests whose destination stops reading: 32 MiB, well over
/// what the socket holds (a 4 MiB send buffer, which the kernel doubles), so
/// the source's write blocks.
const STALL_PAGES: usize = 8192;

// ---- the fake destination ----

/// When the fake destination writes its bytes.
#[derive(Clone, Copy, Debug)]
enum When {
    /// As soon as the source connected.
    AtOnce,
    /// Once the source's status is this.
    AtStatus(MigrationStatus),
    /// Once the first byte of the stream arrived (the source asked something).
    AfterFirstByte,
    /// After the stream's EOF (the source finished writing).
    AtEof,
}

/// How much of the stream the fake destination reads.
#[derive(Clone, Copy, Debug)]
enum Reading {
    /// All of it.
    All,
    /// Until the source's status is this, then nothing more.
    UntilStatus(MigrationStatus),
    /// Nothing at all.
    Never,
}

/// A destination that accepts one connection, reads the stream as told,
/// writes `answer` on the return path when told, then ends the return path
/// (`close`) or not, and holds the connection until released.
struct Fake {
    uri: MigrationUri,
    release: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.release.store(true, Ordering::SeqCst);
    }
}

fn socket_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "vmstate-hostile-dst-{}-{name}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// Polls `f` every millisecond until it holds or `PATIENCE` passes.
fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

/// The source's stats, once it started (the fake is bound before).
type StatsSlot = Arc<Mutex<Option<StatsHandle>>>;

fn status_of(slot: &StatsSlot) -> MigrationStatus {
    slot.lock()
        .unwrap()
        .as_ref()
        .map(|s| s.snapshot().status)
        .unwrap_or_default()
}

fn fake(
    name: &str,
    stats: StatsSlot,
    reading: Reading,
    when: When,
    answer: Vec<u8>,
    close: bool,
) -> Fake {
    let path = socket_path(name);
    let listener = UnixListener::bind(&path).unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let (rel, got) = (release.clone(), received.clone());
    thread::spawn(move || {
        let Ok((mut rp, _)) = listener.accept() else {
            return;
        };
        let mut stream = rp.try_clone().unwrap();
        let eof = Arc::new(AtomicBool::new(false));
        let (eof2, got2, stats2, rel2) = (eof.clone(), got.clone(), stats.clone(), rel.clone());
        let drain = thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let stop = match reading {
                    Reading::All => false,
                    Reading::UntilStatus(s) => status_of(&stats2) == s,
                    Reading::Never => true,
                };
                if stop {
                    // Stops reading but keeps the socket: the source's writes
                    // fill the buffers and block.
                    while !rel2.load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(5));
                    }
                    return;
                }
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        eof2.store(true, Ordering::SeqCst);
                        return;
                    }
                    Ok(n) => {
                        got2.fetch_add(n as u64, Ordering::SeqCst);
                    }
                }
            }
        });
        let ready = wait_until(|| match when {
            When::AtOnce => true,
            When::AtStatus(s) => status_of(&stats) == s,
            When::AfterFirstByte => got.load(Ordering::SeqCst) > 0,
            When::AtEof => eof.load(Ordering::SeqCst),
        });
        if ready {
            let _ = rp.write_all(&answer);
        }
        if close {
            // Ends the return path only: the stream is still read, so the
            // source learns of the end from its return-path thread.
            let _ = rp.shutdown(std::net::Shutdown::Write);
        }
        {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !rel.load(Ordering::SeqCst) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
        }
        drop(rp);
        let _ = drain.join();
    });
    Fake {
        uri: MigrationUri::Unix(path),
        release,
        received,
    }
}

// ---- the source ----

/// How the source is set up.
#[derive(Clone, Copy, Debug)]
struct Setup {
    version: QemuVersion,
    caps: MigrationCapabilities,
    max_bandwidth: u64,
    max_postcopy_bandwidth: u64,
    opts_write: Option<Duration>,
    opts_reply: Option<Duration>,
    start_postcopy: bool,
    /// Pages of synthetic RAM.
    pages: usize,
}

impl Setup {
    /// Precopy with a return path, 1 MiB/s (two seconds for the RAM).
    fn precopy() -> Setup {
        Setup {
            version: QemuVersion::V7_2,
            caps: MigrationCapabilities::default().with_return_path(true),
            max_bandwidth: 1 << 20,
            max_postcopy_bandwidth: 0,
            opts_write: Some(T),
            opts_reply: Some(T),
            start_postcopy: false,
            pages: PAGES,
        }
    }

    /// Postcopy from the first moment, 1 MiB/s after the switch.
    fn postcopy() -> Setup {
        Setup {
            caps: MigrationCapabilities::default()
                .with_return_path(true)
                .with_postcopy_ram(true),
            max_postcopy_bandwidth: 1 << 20,
            start_postcopy: true,
            ..Setup::precopy()
        }
    }
}

/// Starts a migration of `setup.pages` synthetic pages to `uri`; returns the
/// handle and the VM's log.
fn source(uri: MigrationUri, setup: Setup) -> (MigrationHandle, Arc<VmLog>) {
    let mem = SharedMemory::new(setup.pages, PAGE, |i| vec![i as u8; PAGE]);
    let mut reg = Registry::new();
    reg.register_savevm_live(
        "ram",
        0,
        4,
        Box::new(SyntheticRam::new(mem).burst(8).postcopy(BLOCK)),
    )
    .unwrap();
    let vm = Arc::new(VmLog::default());
    let handle = start_migration_with(
        MigrationConfig::new(uri)
            .with_machine("pc-i440fx-7.2")
            .with_version(setup.version)
            .with_params(
                MigrationParameters::default()
                    .with_downtime_limit_ms(10)
                    .with_max_bandwidth(setup.max_bandwidth)
                    .with_max_postcopy_bandwidth(setup.max_postcopy_bandwidth),
            )
            .with_caps(setup.caps),
        reg,
        Box::new(Vm(vm.clone())),
        SourceOptions::default()
            .with_write_timeout(setup.opts_write)
            .with_reply_timeout(setup.opts_reply),
    )
    .unwrap();
    if setup.start_postcopy {
        handle.start_postcopy();
    }
    (handle, vm)
}

/// A source migrating to a fake destination.
struct Run {
    handle: MigrationHandle,
    vm: Arc<VmLog>,
    _fake: Fake,
}

fn run(
    name: &str,
    setup: Setup,
    reading: Reading,
    when: When,
    answer: Vec<u8>,
    close: bool,
) -> Run {
    let slot = StatsSlot::default();
    let fake = fake(name, slot.clone(), reading, when, answer, close);
    let (handle, vm) = source(fake.uri.clone(), setup);
    *slot.lock().unwrap() = Some(handle.stats());
    Run {
        handle,
        vm,
        _fake: fake,
    }
}

fn status(h: &MigrationHandle) -> MigrationStatus {
    h.stats().snapshot().status
}

// ---- crafted return-path bytes ----

fn frames(msgs: &[RpMessage]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    for m in msgs {
        m.write(&mut w).unwrap();
    }
    w.into_inner()
}

fn req(block: Option<&str>, start: u64, len: u32) -> RpMessage {
    RpMessage::ReqPages {
        block: block.map(str::to_string),
        start,
        len,
    }
}

/// A RECV_BITMAP for `block`, then the blob as given (size, bytes, end mark).
fn bitmap(block: &str, size: u64, bytes: &[u8], end: Option<u64>) -> Vec<u8> {
    let mut b = frames(&[RpMessage::RecvBitmap(block.into())]);
    b.extend_from_slice(&size.to_be_bytes());
    b.extend_from_slice(bytes);
    if let Some(end) = end {
        b.extend_from_slice(&end.to_be_bytes());
    }
    b
}

/// Whether `k` is a return-path read failure whose inner kind passes `inner`.
fn read_failure(k: &ErrorKind, inner: impl Fn(&ErrorKind) -> bool) -> bool {
    matches!(k, ErrorKind::ReturnPath(ReturnPathError::Read(e)) if inner(e.kind()))
}

fn bad_type(k: &ErrorKind, ty: u16) -> bool {
    read_failure(
        k,
        |i| matches!(i, ErrorKind::BadReturnPathMessage { ty: t, .. } if *t == ty),
    )
}

/// Where in the migration the crafted bytes arrive.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Precopy, return path only.
    Precopy,
    /// Precopy with the postcopy-ram capability (page requests allowed).
    PrecopyPostcopyCap,
    /// Postcopy-active.
    Postcopy,
    /// A postcopy recovery attempt (the answer to RECV_BITMAP).
    Recovery,
}

struct Case {
    what: &'static str,
    phase: Phase,
    bytes: Vec<u8>,
    /// Shut the connection down after the bytes (else hold it open).
    close: bool,
    check: fn(&ErrorKind) -> bool,
    /// Most bytes the source's return-path parser may hold at once reading
    /// `bytes` (on the test thread, with the counting allocator).
    max_peak: usize,
}

fn cases() -> Vec<Case> {
    let small = 64 * 1024;
    let mut flood = Vec::new();
    flood.extend(frames(&[req(Some(BLOCK), 0, PAGE as u32)]));
    for _ in 0..MAX_QUEUED_PAGE_REQUESTS + 10 {
        flood.extend(frames(&[req(None, 0, PAGE as u32)]));
    }
    let mut pongs = Vec::new();
    for i in 0..100_000 {
        pongs.extend(frames(&[RpMessage::Pong(i)]));
    }
    pongs.extend(frames(&[RpMessage::Shut { error: true }]));
    let mut bad_name = vec![0, 4, 0, 15];
    bad_name.extend_from_slice(&[0; 12]);
    bad_name.extend_from_slice(&[5, b'a', b'b']);
    let mut too_long = vec![0, 4, 0x02, 0x01];
    too_long.extend_from_slice(&[0; 513]);
    let good_blob = vec![0xffu8; PAGES / 8];
    vec![
        Case {
            what: "unknown message type 99",
            phase: Phase::Precopy,
            bytes: vec![0, 99, 0, 0],
            close: false,
            check: |k| bad_type(k, 99),
            max_peak: small,
        },
        Case {
            what: "message type 0",
            phase: Phase::Precopy,
            bytes: vec![0, 0, 0, 0],
            close: false,
            check: |k| bad_type(k, 0),
            max_peak: small,
        },
        Case {
            what: "SWITCHOVER_ACK, which QEMU 7.2 does not have",
            phase: Phase::Precopy,
            bytes: frames(&[RpMessage::SwitchoverAck]),
            close: false,
            check: |k| bad_type(k, 7),
            max_peak: small,
        },
        Case {
            what: "PONG of 3 bytes",
            phase: Phase::Precopy,
            bytes: vec![0, 2, 0, 3, 0, 0, 0],
            close: false,
            check: |k| bad_type(k, 2),
            max_peak: small,
        },
        Case {
            what: "a payload longer than the source's buffer",
            phase: Phase::Precopy,
            bytes: too_long,
            close: false,
            check: |k| bad_type(k, 4),
            max_peak: small,
        },
        Case {
            what: "a block name whose length disagrees with the frame",
            phase: Phase::Precopy,
            bytes: bad_name,
            close: false,
            check: |k| bad_type(k, 4),
            max_peak: small,
        },
        Case {
            what: "a frame cut short, then the connection closed",
            phase: Phase::Precopy,
            bytes: vec![0, 2, 0, 4, 0, 0],
            close: true,
            check: |k| read_failure(k, |i| matches!(i, ErrorKind::Io(_))),
            max_peak: small,
        },
        Case {
            what: "a page request without postcopy",
            phase: Phase::Precopy,
            bytes: frames(&[req(Some(BLOCK), 0, PAGE as u32)]),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::ReturnPath(ReturnPathError::Unexpected(RpMessage::ReqPages { .. }))
                )
            },
            max_peak: small,
        },
        Case {
            what: "a received bitmap nobody asked for, claiming 64 MiB",
            phase: Phase::Precopy,
            bytes: bitmap(BLOCK, 64 << 20, &[], None),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::ReturnPath(ReturnPathError::Unexpected(RpMessage::RecvBitmap(_)))
                )
            },
            max_peak: small,
        },
        Case {
            what: "RESUME_ACK with a bad value",
            phase: Phase::Precopy,
            bytes: frames(&[RpMessage::ResumeAck(2)]),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::ReturnPath(ReturnPathError::BadResumeAck { value: 2 })
                )
            },
            max_peak: small,
        },
        Case {
            what: "100 000 PONGs, then SHUT with an error",
            phase: Phase::Precopy,
            bytes: pongs,
            close: false,
            check: |k| matches!(k, ErrorKind::PeerFailed),
            max_peak: small,
        },
        Case {
            what: "REQ_PAGES before any block was named",
            phase: Phase::PrecopyPostcopyCap,
            bytes: frames(&[req(None, 0, PAGE as u32)]),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::ReturnPath(ReturnPathError::ReqPagesWithoutBlock)
                )
            },
            max_peak: small,
        },
        Case {
            what: "a page range whose end overflows",
            phase: Phase::PrecopyPostcopyCap,
            bytes: frames(&[req(Some(BLOCK), u64::MAX - 4095, 8192)]),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::ReturnPath(ReturnPathError::BadPageRange { len: 8192, .. })
                )
            },
            max_peak: small,
        },
        Case {
            what: "a page request of no bytes",
            phase: Phase::PrecopyPostcopyCap,
            bytes: frames(&[req(Some(BLOCK), 0, 0)]),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::ReturnPath(ReturnPathError::BadPageRange { len: 0, .. })
                )
            },
            max_peak: small,
        },
        Case {
            what: "a flood of page requests",
            phase: Phase::PrecopyPostcopyCap,
            bytes: flood,
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::ReturnPath(ReturnPathError::TooManyPageRequests { .. })
                )
            },
            // The bounded queue: 64 Ki requests of 32 bytes, doubled by the
            // growth of its buffer.
            max_peak: 5 << 20,
        },
        Case {
            what: "a page request for an unknown block",
            phase: Phase::Postcopy,
            bytes: frames(&[req(Some("pc.rom"), 0, PAGE as u32)]),
            close: false,
            check: |k| matches!(k, ErrorKind::Postcopy(PostcopyError::RequestForUnknownBlock { block }) if block == "pc.rom"),
            max_peak: small,
        },
        Case {
            what: "a page request beyond the block's used length",
            phase: Phase::Postcopy,
            bytes: frames(&[req(Some(BLOCK), RAM_BYTES, PAGE as u32)]),
            close: false,
            check: |k| matches!(k, ErrorKind::Invalid(m) if m.contains("beyond RAM")),
            max_peak: small,
        },
        Case {
            what: "a 4 GiB page range",
            phase: Phase::Postcopy,
            bytes: frames(&[req(Some(BLOCK), 0, u32::MAX)]),
            close: false,
            check: |k| matches!(k, ErrorKind::Invalid(m) if m.contains("beyond RAM")),
            max_peak: small,
        },
        Case {
            what: "a page range near the end of the address space",
            phase: Phase::Postcopy,
            bytes: frames(&[req(Some(BLOCK), u64::MAX - 10, PAGE as u32)]),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::ReturnPath(ReturnPathError::BadPageRange { .. })
                )
            },
            max_peak: small,
        },
        Case {
            what: "a bad frame in postcopy",
            phase: Phase::Postcopy,
            bytes: vec![0, 9, 0, 0],
            close: false,
            check: |k| bad_type(k, 9),
            max_peak: small,
        },
        Case {
            what: "a received bitmap of 3 bytes",
            phase: Phase::Recovery,
            bytes: bitmap(BLOCK, 3, &[0; 3], Some(RECV_BITMAP_ENDING)),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::PostcopyRecovery(RecoveryError::Wait {
                        cause: ReturnPathError::BadBitmapSize { size: 3 },
                        ..
                    })
                )
            },
            max_peak: small,
        },
        Case {
            what: "a received bitmap claiming 1 TiB",
            phase: Phase::Recovery,
            bytes: bitmap(BLOCK, 1 << 40, &[], None),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::PostcopyRecovery(RecoveryError::Wait {
                        cause: ReturnPathError::BadBitmapSize {
                            size: 0x100_0000_0000
                        },
                        ..
                    })
                )
            },
            max_peak: small,
        },
        Case {
            what: "a received bitmap claiming 32 MiB that sends 100 bytes",
            phase: Phase::Recovery,
            bytes: bitmap(BLOCK, 32 << 20, &[0; 100], None),
            close: true,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::PostcopyRecovery(RecoveryError::Wait {
                        cause: ReturnPathError::Read(_),
                        ..
                    })
                )
            },
            // One chunk of the blob, never the claimed 32 MiB.
            max_peak: 2 * small,
        },
        Case {
            what: "a received bitmap with a bad end mark",
            phase: Phase::Recovery,
            bytes: bitmap(BLOCK, good_blob.len() as u64, &good_blob, Some(7)),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::PostcopyRecovery(RecoveryError::Wait {
                        cause: ReturnPathError::BitmapEndMissing,
                        ..
                    })
                )
            },
            max_peak: small,
        },
        Case {
            what: "a received bitmap of another block",
            phase: Phase::Recovery,
            bytes: bitmap("pc.bios", 8, &[0; 8], Some(RECV_BITMAP_ENDING)),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::PostcopyRecovery(RecoveryError::Wait {
                        cause: ReturnPathError::Unexpected(RpMessage::RecvBitmap(_)),
                        ..
                    })
                )
            },
            max_peak: small,
        },
        Case {
            what: "a well-formed bitmap too short for the block",
            phase: Phase::Recovery,
            bytes: bitmap(BLOCK, 8, &[0xff; 8], Some(RECV_BITMAP_ENDING)),
            close: false,
            check: |k| matches!(k, ErrorKind::Invalid(m) if m.contains("bad bitmap")),
            max_peak: small,
        },
        Case {
            what: "a good bitmap, then no RESUME_ACK",
            phase: Phase::Recovery,
            bytes: bitmap(
                BLOCK,
                good_blob.len() as u64,
                &good_blob,
                Some(RECV_BITMAP_ENDING),
            ),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::PostcopyRecovery(RecoveryError::TimedOut {
                        waiting_for: "RESUME_ACK"
                    })
                )
            },
            max_peak: small,
        },
        Case {
            what: "no answer at all to RECV_BITMAP",
            phase: Phase::Recovery,
            bytes: Vec::new(),
            close: false,
            check: |k| {
                matches!(
                    k,
                    ErrorKind::PostcopyRecovery(RecoveryError::TimedOut {
                        waiting_for: "the received bitmap"
                    })
                )
            },
            max_peak: small,
        },
    ]
}

/// Waits for postcopy-paused with a pause error `check` accepts; returns it.
fn paused_with(h: &MigrationHandle, check: fn(&ErrorKind) -> bool) -> Option<Arc<Error>> {
    let mut last = None;
    wait_until(|| {
        last = h.paused_error();
        status(h) == MigrationStatus::PostcopyPaused
            && last.as_ref().is_some_and(|e| check(e.kind()))
    });
    last
}

#[test]
fn crafted_return_path_bytes_fail_cleanly_and_leave_the_source_whole() {
    for (n, case) in cases().into_iter().enumerate() {
        let what = case.what;
        // The parser on this thread: the same bytes, counted.
        let postcopy = case.phase != Phase::Precopy;
        let bitmap_for = (case.phase == Phase::Recovery).then_some(BLOCK);
        let (_, seen) = common::alloc::measure(|| {
            read_return_path(
                &mut &case.bytes[..],
                QemuVersion::V7_2,
                postcopy,
                bitmap_for,
            )
        });
        assert!(
            seen.peak <= case.max_peak,
            "{what}: the parser held {} bytes (at most {})",
            seen.peak,
            case.max_peak
        );

        let name = format!("case{n}");
        match case.phase {
            Phase::Precopy | Phase::PrecopyPostcopyCap => {
                let mut setup = Setup::precopy();
                setup.caps.postcopy_ram = case.phase == Phase::PrecopyPostcopyCap;
                let r = run(
                    &name,
                    setup,
                    Reading::All,
                    When::AtOnce,
                    case.bytes,
                    case.close,
                );
                let (_, result) = r.handle.wait();
                let e = result.expect_err(what);
                assert!((case.check)(e.kind()), "{what}: {e}");
                assert!(r.vm.running(), "{what}: the source VM runs again");
                assert_eq!(r.vm.pauses(), r.vm.resumes(), "{what}");
            }
            Phase::Postcopy => {
                let r = run(
                    &name,
                    Setup::postcopy(),
                    Reading::All,
                    When::AtStatus(MigrationStatus::PostcopyActive),
                    case.bytes,
                    case.close,
                );
                let e = paused_with(&r.handle, case.check);
                let e = e.unwrap_or_else(|| {
                    panic!(
                        "{what}: not paused with the expected error: {:?}",
                        r.handle.stats().snapshot()
                    )
                });
                assert!((case.check)(e.kind()), "{what}: {e}");
                assert!(!r.vm.running(), "{what}: the destination runs the guest");
                finish_paused(r, what);
            }
            Phase::Recovery => {
                // The first connection breaks in postcopy-active.
                let r = run(
                    &name,
                    Setup::postcopy(),
                    Reading::All,
                    When::AtStatus(MigrationStatus::PostcopyActive),
                    Vec::new(),
                    true,
                );
                assert!(
                    wait_until(|| status(&r.handle) == MigrationStatus::PostcopyPaused),
                    "{what}: paused after the first connection broke"
                );
                let first = r.handle.paused_error().expect("a pause error");
                // The recovery attempt meets the crafted answer.
                let again = fake(
                    &format!("{name}-again"),
                    StatsSlot::default(),
                    Reading::All,
                    When::AfterFirstByte,
                    case.bytes,
                    case.close,
                );
                r.handle.resume(again.uri.clone()).unwrap();
                let e = paused_with(&r.handle, case.check);
                let e =
                    e.unwrap_or_else(|| panic!("{what}: not paused again; first pause: {first}"));
                assert!((case.check)(e.kind()), "{what}: {e}");
                assert!(again.received.load(Ordering::SeqCst) > 0, "{what}: asked");
                assert!(!r.vm.running(), "{what}");
                finish_paused(r, what);
            }
        }
    }
}

/// A paused migration still answers to cancel, with the VM left stopped (the
/// destination ran it).
fn finish_paused(r: Run, what: &str) {
    assert_eq!(status(&r.handle), MigrationStatus::PostcopyPaused, "{what}");
    r.handle.cancel();
    let (_, result) = r.handle.wait();
    let e = result.expect_err(what);
    assert_kind!(
        e,
        ErrorKind::Cancelled {
            in_postcopy_pause: true
        }
    );
    assert!(!r.vm.running(), "{what}");
}

// ---- silence ----

/// A destination that never reads: the source's stream write times out, the
/// migration fails with a typed timeout, and the VM keeps running.
#[test]
fn a_destination_that_stops_reading_times_the_write_out() {
    let setup = Setup {
        caps: MigrationCapabilities::default(),
        max_bandwidth: 0,
        pages: STALL_PAGES,
        ..Setup::precopy()
    };
    let r = run(
        "stall",
        setup,
        Reading::Never,
        When::AtOnce,
        Vec::new(),
        false,
    );
    let started = Instant::now();
    let (_, result) = r.handle.wait();
    let e = result.unwrap_err();
    assert_kind!(e, ErrorKind::TimedOut(TimeoutError::StreamWrite { timeout }) if *timeout == T);
    assert!(started.elapsed() < PATIENCE);
    assert!(r.vm.running());
}

/// Without a write timeout, cancel() from another thread still unblocks a
/// write the destination never takes.
#[test]
fn cancel_unblocks_a_blocked_write() {
    let setup = Setup {
        caps: MigrationCapabilities::default(),
        max_bandwidth: 0,
        opts_write: None,
        pages: STALL_PAGES,
        ..Setup::precopy()
    };
    let r = run(
        "cancel",
        setup,
        Reading::Never,
        When::AtOnce,
        Vec::new(),
        false,
    );
    // The socket buffers hold well under the 32 MiB of RAM: once the sent
    // count stops moving the write is blocked.
    let stats = r.handle.stats();
    let mut last = (u64::MAX, Instant::now());
    assert!(wait_until(|| {
        let now = stats.snapshot().transferred;
        if now != last.0 {
            last = (now, Instant::now());
        }
        last.1.elapsed() > Duration::from_millis(300)
    }));
    assert_eq!(
        status(&r.handle),
        MigrationStatus::Active,
        "blocked, not failed"
    );
    let cancelled = Instant::now();
    r.handle.cancel();
    let (_, result) = r.handle.wait();
    assert_kind!(
        result.unwrap_err(),
        ErrorKind::Cancelled {
            in_postcopy_pause: false
        }
    );
    assert!(cancelled.elapsed() < Duration::from_secs(2));
    assert!(r.vm.running());
}

/// The stream is complete and the destination owes SHUT: after the reply
/// timeout the migration fails and the source VM runs again.
#[test]
fn a_destination_that_never_says_shut_times_out_and_the_vm_runs_again() {
    let setup = Setup {
        max_bandwidth: 0,
        opts_write: READER_WRITE_TIMEOUT,
        ..Setup::precopy()
    };
    let r = run("shut", setup, Reading::All, When::AtOnce, Vec::new(), false);
    let (_, result) = r.handle.wait();
    let e = result.unwrap_err();
    assert_kind!(
        e,
        ErrorKind::TimedOut(TimeoutError::Reply { waiting_for: "SHUT", timeout }) if *timeout == T
    );
    assert_eq!(r.vm.pauses(), 1, "stopped for the switchover");
    assert!(r.vm.running(), "and running again");
}

/// switchover-ack (QEMU 10.x): the destination owes SWITCHOVER_ACK once the
/// switchover could start; silence ends the migration, the VM never stopped.
#[test]
fn a_destination_that_never_acks_the_switchover_times_out() {
    let setup = Setup {
        version: QemuVersion::V10,
        caps: MigrationCapabilities::default()
            .with_return_path(true)
            .with_switchover_ack(true),
        max_bandwidth: 0,
        opts_write: READER_WRITE_TIMEOUT,
        ..Setup::precopy()
    };
    let r = run("ack", setup, Reading::All, When::AtOnce, Vec::new(), false);
    let (_, result) = r.handle.wait();
    assert_kind!(
        result.unwrap_err(),
        ErrorKind::TimedOut(TimeoutError::Reply {
            waiting_for: "SWITCHOVER_ACK",
            ..
        })
    );
    assert_eq!(r.vm.pauses(), 0);
    assert!(r.vm.running());
}

/// pre-switchover waits for the user, not the destination: many reply and
/// write timeouts long, it is still there, and migrate-continue completes.
#[test]
fn pre_switchover_silence_is_not_a_timeout() {
    let setup = Setup {
        caps: MigrationCapabilities::default()
            .with_return_path(true)
            .with_pause_before_switchover(true),
        max_bandwidth: 0,
        opts_write: READER_WRITE_TIMEOUT,
        ..Setup::precopy()
    };
    let shut_ok = frames(&[RpMessage::Shut { error: false }]);
    let r = run(
        "preswitch",
        setup,
        Reading::All,
        When::AtEof,
        shut_ok,
        false,
    );
    assert!(wait_until(
        || status(&r.handle) == MigrationStatus::PreSwitchover
    ));
    thread::sleep(5 * T);
    assert_eq!(status(&r.handle), MigrationStatus::PreSwitchover);
    r.handle.continue_switchover();
    let (_, result) = r.handle.wait();
    result.unwrap();
    assert_eq!(r.vm.pauses(), 1);
    assert!(!r.vm.running(), "the destination runs the guest now");
}

/// In postcopy a destination that stops reading pauses the migration (the
/// write times out); the pause itself waits for the user as long as it takes.
#[test]
fn a_postcopy_write_stall_pauses_and_the_pause_waits_for_the_user() {
    let setup = Setup {
        max_postcopy_bandwidth: 0,
        pages: STALL_PAGES,
        ..Setup::postcopy()
    };
    let r = run(
        "pc-stall",
        setup,
        Reading::UntilStatus(MigrationStatus::PostcopyActive),
        When::AtOnce,
        Vec::new(),
        false,
    );
    let e = paused_with(&r.handle, |k| {
        matches!(k, ErrorKind::TimedOut(TimeoutError::StreamWrite { .. }))
    })
    .expect("paused by the write timeout");
    assert!(e.to_string().contains("does not read"), "{e}");
    thread::sleep(5 * T);
    finish_paused(r, "postcopy write stall");
}

/// Postcopy sent everything and the destination owes SHUT: after the reply
/// timeout the migration pauses (recoverable), it does not fail.
#[test]
fn a_postcopy_destination_that_never_says_shut_pauses() {
    let setup = Setup {
        max_postcopy_bandwidth: 0,
        opts_write: READER_WRITE_TIMEOUT,
        ..Setup::postcopy()
    };
    let r = run(
        "pc-shut",
        setup,
        Reading::All,
        When::AtOnce,
        Vec::new(),
        false,
    );
    let e = paused_with(&r.handle, |k| {
        matches!(
            k,
            ErrorKind::TimedOut(TimeoutError::Reply {
                waiting_for: "SHUT",
                ..
            })
        )
    })
    .expect("paused waiting for SHUT");
    assert_eq!(
        e.to_string(),
        format!("no SHUT from the destination within {T:?}")
    );
    finish_paused(r, "postcopy SHUT owed");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Any bytes on the return path: the parser ends (SHUT, a typed error, or
    /// the end of the bytes) without a panic, holding at most a blob chunk
    /// beyond what arrived, whatever lengths and sizes the bytes claim.
    #[test]
    fn any_return_path_bytes_end_in_bounded_memory(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
        postcopy in proptest::prelude::any::<bool>(),
        frame_prefix in proptest::prelude::any::<bool>(),
    ) {
        // Half the inputs start with a real RECV_BITMAP header for the asked
        // block, so the claimed size is what the random bytes say.
        let mut input = if frame_prefix {
            frames(&[RpMessage::RecvBitmap(BLOCK.into())])
        } else {
            Vec::new()
        };
        input.extend_from_slice(&bytes);
        let (r, seen) = common::alloc::measure(|| {
            read_return_path(&mut &input[..], QemuVersion::V10, postcopy, Some(BLOCK))
        });
        if let Err(e) = &r {
            proptest::prop_assert!(matches!(e.kind(), ErrorKind::ReturnPath(_)), "{}", e);
        }
        proptest::prop_assert!(seen.peak <= 128 * 1024 + 8 * input.len(), "peak {}", seen.peak);
    }
}
