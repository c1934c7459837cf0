//! A hostile or broken source, over real unix and TCP sockets: nobody connects,
//! a peer that goes silent after any prefix, a cancel from another thread, a
//! return path nobody reads, lengths claimed and never sent, and a source that
//! sends no vmdesc and waits for SHUT. The destination must end every one of
//! them, promptly, with an error that says what it waited for, and without
//! allocating what the peer merely claims.

mod common;
use common::kinds::assert_kind;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use vmstate_runtime::error::TimeoutError;
use vmstate_runtime::migration::{
    run_incoming, CancelToken, Incoming, IncomingPhase, MigrationStatus, MigrationUri, StatsHandle,
};
use vmstate_runtime::savevm::{LoadOptions, QemuVersion, Registry, RpMessage, VmDescPolicy};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{ErrorKind, Result};

#[global_allocator]
static ALLOC: common::alloc::Counting = common::alloc::Counting;

/// The timeout the tests use: short, so the suite stays fast.
const T: Duration = Duration::from_millis(200);
/// How late a timeout or cancel may take effect before the test calls it a hang.
const SLACK: Duration = Duration::from_millis(1500);

/// The stream header: magic and version 3.
const HEADER: [u8; 8] = [b'Q', b'E', b'V', b'M', 0, 0, 0, 3];
/// MIG_CMD_OPEN_RETURN_PATH.
const OPEN_RP: [u8; 5] = [0x08, 0, 1, 0, 0];
/// QEMU_VM_EOF.
const EOF: u8 = 0x00;

#[derive(Debug, Clone, Copy)]
enum Sock {
    Unix,
    Tcp,
}

const BOTH: [Sock; 2] = [Sock::Unix, Sock::Tcp];

/// A listener and the URI a peer connects to.
fn listen(sock: Sock, name: &str) -> (Incoming, MigrationUri) {
    let uri = match sock {
        Sock::Unix => MigrationUri::Unix(std::env::temp_dir().join(format!(
            "vmstate-hostile-{}-{name}.sock",
            std::process::id()
        ))),
        Sock::Tcp => MigrationUri::Tcp("127.0.0.1:0".into()),
    };
    let incoming = Incoming::listen(&uri).unwrap();
    let uri = match incoming.local_tcp_addr() {
        Some(a) => MigrationUri::Tcp(a.to_string()),
        None => uri,
    };
    (incoming, uri)
}

/// Both directions of a peer's connection.
enum Peer {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Peer {
    fn connect(uri: &MigrationUri) -> Peer {
        match uri {
            MigrationUri::Unix(p) => Peer::Unix(UnixStream::connect(p).unwrap()),
            MigrationUri::Tcp(a) => Peer::Tcp(TcpStream::connect(a).unwrap()),
            other => panic!("{other:?}"),
        }
    }

    fn io(&mut self) -> &mut dyn ReadWriteDyn {
        match self {
            Peer::Unix(s) => s,
            Peer::Tcp(s) => s,
        }
    }
}

trait ReadWriteDyn: Read + Write {}
impl<T: Read + Write> ReadWriteDyn for T {}

/// A peer on its own thread that connects, sends `bytes`, then stays silent with
/// the connection open until the returned sender is dropped (or sent to).
fn stalling_peer(uri: MigrationUri, bytes: Vec<u8>) -> mpsc::Sender<()> {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let mut peer = Peer::connect(&uri);
        peer.io().write_all(&bytes).unwrap();
        let _ = done_rx.recv();
        drop(peer);
    });
    done_tx
}

/// The destination into an empty registry.
/// The peers here write their streams by hand, without the configuration
/// record the default options expect.
fn raw_stream_opts() -> LoadOptions {
    LoadOptions::default().with_configuration(None)
}

fn incoming(incoming: Incoming, opts: LoadOptions) -> Result<()> {
    run_incoming(
        incoming,
        &mut Registry::new(),
        opts,
        &StatsHandle::default(),
    )
}

fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

#[test]
fn nobody_connects_and_the_accept_timeout_fires() {
    for sock in BOTH {
        let (listener, _) = listen(sock, "accept-timeout");
        let opts = raw_stream_opts().with_accept_timeout(T);
        let stats = StatsHandle::default();
        let (r, took) = timed(|| run_incoming(listener, &mut Registry::new(), opts, &stats));
        let e = r.unwrap_err();
        assert_kind!(e, ErrorKind::TimedOut(TimeoutError::Accept { waited }) if *waited == T);
        let s = stats.snapshot();
        assert_eq!(s.status, MigrationStatus::Failed, "{sock:?}");
        assert_eq!(s.error, Some(e.to_string()));
        assert!(took >= T && took < T + SLACK, "{sock:?}: took {took:?}");
    }
}

#[test]
fn a_peer_that_goes_silent_trips_the_idle_timeout_naming_where() {
    let mut main_prefix = HEADER.to_vec();
    main_prefix.extend_from_slice(&[0x08, 0x00]); // a command record, cut in its number
                                                  // (what the peer sends, the phase, the bytes received, the offset of the read)
    let cases: [(Vec<u8>, IncomingPhase, u64, u64); 3] = [
        (vec![], IncomingPhase::Header, 0, 0),
        (HEADER[..6].to_vec(), IncomingPhase::Header, 6, 4),
        (main_prefix, IncomingPhase::Main, 10, 9),
    ];
    for sock in BOTH {
        for (i, (bytes, phase, received, offset)) in cases.iter().enumerate() {
            let (listener, uri) = listen(sock, &format!("idle-{i}"));
            let _peer = stalling_peer(uri, bytes.clone());
            let opts = raw_stream_opts().with_idle_timeout(T);
            let (r, took) = timed(|| incoming(listener, opts));
            let e = r.unwrap_err();
            assert_kind!(
                e,
                ErrorKind::TimedOut(TimeoutError::Idle { phase: p, idle, received: n })
                    if p == phase && *idle == T && n == received
            );
            assert_eq!(e.offset(), Some(*offset), "{sock:?} case {i}: {e}");
            assert!(
                took >= T && took < T + SLACK,
                "{sock:?} case {i}: took {took:?}"
            );
            let text = e.to_string();
            assert!(text.contains(&phase.to_string()), "{text}");
        }
    }
}

/// Runs the destination with a cancel token (and no timeout), cancels it from
/// another thread after `T`, and checks it returned `Cancelled` promptly.
fn cancelled_after_t(listener: Incoming, sock: Sock) -> vmstate_runtime::Error {
    let cancel = CancelToken::new();
    let opts = raw_stream_opts().with_cancel(cancel.clone());
    let canceller = thread::spawn(move || {
        thread::sleep(T);
        cancel.cancel();
    });
    let stats = StatsHandle::default();
    let (r, took) = timed(|| run_incoming(listener, &mut Registry::new(), opts, &stats));
    canceller.join().unwrap();
    let e = r.unwrap_err();
    assert_eq!(
        stats.snapshot().status,
        MigrationStatus::Cancelled,
        "{sock:?}"
    );
    assert_kind!(
        e,
        ErrorKind::Cancelled {
            in_postcopy_pause: false
        }
    );
    assert!(took >= T && took < T + SLACK, "{sock:?}: took {took:?}");
    e
}

#[test]
fn cancel_from_another_thread_ends_a_blocked_accept() {
    for sock in BOTH {
        let (listener, _) = listen(sock, "cancel-accept");
        cancelled_after_t(listener, sock);
    }
}

#[test]
fn cancel_from_another_thread_ends_a_blocked_read() {
    for sock in BOTH {
        let (listener, uri) = listen(sock, "cancel-read");
        let _peer = stalling_peer(uri, HEADER.to_vec());
        let e = cancelled_after_t(listener, sock);
        // Where it waited: the first record after the header.
        assert_eq!(e.offset(), Some(8), "{e}");
    }
}

/// A source that sends no vmdesc after EOF and then waits, connection open, for
/// SHUT on the return path (QEMU with `suppress-vmdesc=on`). Returns what it read.
fn source_waiting_for_shut(uri: MigrationUri) -> thread::JoinHandle<Option<RpMessage>> {
    thread::spawn(move || {
        let mut peer = Peer::connect(&uri);
        let mut stream = HEADER.to_vec();
        stream.extend_from_slice(&OPEN_RP);
        stream.push(EOF);
        peer.io().write_all(&stream).unwrap();
        // SHUT: be16 type, be16 length 4, be32 error flag.
        let mut shut = [0u8; 8];
        peer.io().read_exact(&mut shut).ok()?;
        let mut r = Reader::new(&shut[..]);
        RpMessage::read(&mut r, QemuVersion::V7_2).ok()
    })
}

#[test]
fn a_source_without_vmdesc_waiting_for_shut_completes_when_none_is_expected() {
    for sock in BOTH {
        let (listener, uri) = listen(sock, "no-vmdesc");
        let source = source_waiting_for_shut(uri);
        let opts = raw_stream_opts()
            .with_vmdesc(VmDescPolicy::Suppressed)
            // A guard: were the destination to wait for a vmdesc, this would end
            // the test with an error instead of a hang.
            .with_idle_timeout(SLACK);
        let (r, took) = timed(|| incoming(listener, opts));
        r.unwrap();
        // Done at EOF: the idle guard (SLACK) would have ended a wait for a vmdesc.
        assert!(took < SLACK, "{sock:?}: took {took:?}");
        assert_eq!(
            source.join().unwrap(),
            Some(RpMessage::Shut { error: false }),
            "{sock:?}"
        );
    }
}

/// Options with only the idle timeout set (to `T`).
fn idle_after_t() -> LoadOptions {
    raw_stream_opts().with_idle_timeout(T)
}

/// Asserts `e` is the idle timeout, fired while reading `phase`.
fn assert_idle_in(e: &vmstate_runtime::Error, phase: IncomingPhase) {
    assert_kind!(
        e,
        ErrorKind::TimedOut(TimeoutError::Idle { phase: p, .. }) if *p == phase
    );
}

#[test]
fn peeking_for_a_vmdesc_the_source_never_sends_waits_and_says_so() {
    // The contrast: with the peek (the default policy) the destination waits for
    // the byte after EOF; the idle timeout names the vmdesc, and the source gets
    // SHUT with the error instead of hanging.
    let (listener, uri) = listen(Sock::Unix, "peek-vmdesc");
    let source = source_waiting_for_shut(uri);
    let e = incoming(listener, idle_after_t()).unwrap_err();
    assert_idle_in(&e, IncomingPhase::VmDesc);
    assert_eq!(
        source.join().unwrap(),
        Some(RpMessage::Shut { error: true })
    );
}

#[test]
fn a_source_that_never_reads_the_return_path_trips_the_write_timeout() {
    let (listener, uri) = listen(Sock::Unix, "rp-write");
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let source = thread::spawn(move || {
        let mut peer = Peer::connect(&uri);
        let mut start = HEADER.to_vec();
        start.extend_from_slice(&OPEN_RP);
        if peer.io().write_all(&start).is_err() {
            return;
        }
        // PINGs, each answered by a PONG the source never reads, until the
        // destination gives up and the writes fail.
        let ping = [0x08, 0, 2, 0, 4, 0, 0, 0, 1];
        let batch: Vec<u8> = ping
            .iter()
            .copied()
            .cycle()
            .take(ping.len() * 4096)
            .collect();
        while stop_rx.try_recv().is_err() {
            if peer.io().write_all(&batch).is_err() {
                break;
            }
        }
    });
    let opts = raw_stream_opts().with_write_timeout(T);
    let (r, took) = timed(|| incoming(listener, opts));
    let _ = stop_tx.send(());
    let e = r.unwrap_err();
    assert_kind!(e, ErrorKind::TimedOut(TimeoutError::ReturnPathWrite { timeout }) if *timeout == T);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    source.join().unwrap();
}

/// Most a claimed-length case may hold at once: the refill chunk (64 KiB) and
/// the loader's small buffers, with room to spare; far below the claims.
const PEAK_BOUND: usize = 4 * 1024 * 1024;

/// Runs the destination against a peer that sends `bytes` and then closes or
/// stays silent, and returns the error with the bytes the destination held at
/// its peak.
fn claimed_length(bytes: Vec<u8>, close: bool, name: &str) -> (vmstate_runtime::Error, usize) {
    let (listener, uri) = listen(Sock::Unix, name);
    let peer = if close {
        thread::spawn(move || {
            let mut peer = Peer::connect(&uri);
            peer.io().write_all(&bytes).unwrap();
        });
        None
    } else {
        Some(stalling_peer(uri, bytes))
    };
    let opts = raw_stream_opts()
        .with_vmdesc(VmDescPolicy::Expected)
        .with_idle_timeout(T);
    let (r, seen) = common::alloc::measure(|| incoming(listener, opts));
    drop(peer);
    (r.unwrap_err(), seen.peak)
}

/// A peer sends `bytes`, whose last record claims `claimed` more bytes, then
/// closes (the error is truncation) or stays silent (the idle timeout in
/// `phase`): either way the destination holds far less than the claim.
fn claim_costs_nothing(bytes: Vec<u8>, claimed: usize, phase: IncomingPhase, name: &str) {
    let (e, peak) = claimed_length(bytes.clone(), true, &format!("{name}-eof"));
    assert_kind!(e, ErrorKind::Truncated { needed, .. } if *needed == claimed);
    assert!(peak < PEAK_BOUND, "held {peak} bytes at the peak: {e}");
    let (e, peak) = claimed_length(bytes.clone(), false, &format!("{name}-silent"));
    let sent = bytes.len() as u64;
    assert_kind!(
        e,
        ErrorKind::TimedOut(TimeoutError::Idle { phase: p, received, .. })
            if *p == phase && *received == sent
    );
    assert!(peak < PEAK_BOUND, "held {peak} bytes at the peak: {e}");
}

#[test]
fn a_package_claiming_256_mib_holds_only_what_arrived() {
    let mut bytes = HEADER.to_vec();
    // MIG_CMD_PACKAGED, payload be32 length 256 MiB (the largest accepted).
    bytes.extend_from_slice(&[0x08, 0, 7, 0, 4, 0x10, 0, 0, 0]);
    claim_costs_nothing(bytes, 256 << 20, IncomingPhase::Main, "package");
}

#[test]
fn a_vmdesc_claiming_64_mib_holds_only_what_arrived() {
    let mut bytes = HEADER.to_vec();
    // EOF, then the vmdesc record with be32 length 64 MiB (the largest accepted).
    bytes.extend_from_slice(&[EOF, 0x06, 0x04, 0, 0, 0]);
    claim_costs_nothing(bytes, 64 << 20, IncomingPhase::VmDesc, "vmdesc");
}

#[test]
fn a_package_that_does_arrive_costs_about_its_size_once() {
    // 8 MiB of package, all sent, whose inner stream is bad from its first byte:
    // the destination holds the package (the refill buffer, grown as it came, is
    // split off without a copy), not copies of it.
    const LEN: usize = 8 << 20;
    let mut bytes = HEADER.to_vec();
    bytes.extend_from_slice(&[0x08, 0, 7, 0, 4]);
    bytes.extend_from_slice(&(LEN as u32).to_be_bytes());
    let inner_at = bytes.len() as u64;
    bytes.push(0x42);
    bytes.resize(bytes.len() + LEN - 1, 0);
    let (e, peak) = claimed_length(bytes, true, "package-arrives");
    assert_kind!(e, ErrorKind::UnknownRecordType { ty: 0x42 });
    assert_eq!(e.offset(), Some(inner_at), "{e}");
    assert!(peak >= LEN, "the package itself is held: {peak}");
    assert!(
        peak < 2 * LEN + PEAK_BOUND,
        "held {peak} bytes for {LEN}: {e}"
    );
}

#[test]
fn the_counting_allocator_sees_what_is_held() {
    // Without this, a broken allocator would make the peak checks pass vacuously.
    let (v, seen) = common::alloc::measure(|| vec![1u8; 8 << 20]);
    assert_eq!(v.len(), 8 << 20);
    assert!(seen.peak >= 8 << 20 && seen.largest >= 8 << 20, "{seen:?}");
}

/// The stream up to POSTCOPY_RUN: the return path, ADVISE (4 KiB pages), LISTEN,
/// RUN. After it the guest runs on the destination.
fn up_to_postcopy_run() -> Vec<u8> {
    let mut s = HEADER.to_vec();
    s.extend_from_slice(&OPEN_RP);
    s.extend_from_slice(&[0x08, 0, 3, 0, 16]);
    s.extend_from_slice(&4096u64.to_be_bytes());
    s.extend_from_slice(&4096u64.to_be_bytes());
    s.extend_from_slice(&[0x08, 0, 4, 0, 0]);
    s.extend_from_slice(&[0x08, 0, 5, 0, 0]);
    s
}

#[test]
fn silence_after_postcopy_run_fails_without_recovery_naming_postcopy() {
    let (listener, uri) = listen(Sock::Unix, "postcopy-idle");
    let _peer = stalling_peer(uri, up_to_postcopy_run());
    let e = incoming(listener, idle_after_t()).unwrap_err();
    assert_idle_in(&e, IncomingPhase::PostcopyActive);
}

#[test]
fn silence_after_postcopy_run_pauses_and_only_a_cancel_ends_the_pause() {
    use std::sync::{Arc, Mutex};
    use vmstate_runtime::migration::{run_incoming_with, IncomingHooks};

    let (listener, uri) = listen(Sock::Unix, "postcopy-pause");
    let _peer = stalling_peer(uri, up_to_postcopy_run());
    let cancel = CancelToken::new();
    let stats = StatsHandle::default();
    let paused_by = Arc::new(Mutex::new(None::<String>));
    let (seen, stats2, cancel2) = (paused_by.clone(), stats.clone(), cancel.clone());
    let hooks = IncomingHooks::default().with_on_postcopy_paused(move |e| {
        *seen.lock().unwrap() = Some(e.to_string());
        assert_eq!(stats2.snapshot().status, MigrationStatus::PostcopyPaused);
        // Nobody reconnects: the wait has no timeout (an accept timeout is set
        // and must not apply here), so only the cancel below ends it.
        let (again, _) = listen(Sock::Unix, "postcopy-pause-again");
        let c = cancel2.clone();
        thread::spawn(move || {
            thread::sleep(3 * T);
            c.cancel();
        });
        Ok(again)
    });
    let opts = raw_stream_opts()
        .with_idle_timeout(T)
        .with_accept_timeout(T)
        .with_cancel(cancel);
    let (r, took) =
        timed(|| run_incoming_with(listener, &mut Registry::new(), opts, &stats, hooks));
    assert_kind!(
        r.unwrap_err(),
        ErrorKind::Cancelled {
            in_postcopy_pause: true
        }
    );
    let why = paused_by.lock().unwrap().clone().expect("postcopy paused");
    assert!(why.contains("the postcopy stream"), "{why}");
    // Idle timeout, then three more T in the pause before the cancel.
    assert!(took >= 4 * T, "took {took:?}");
    assert_eq!(stats.snapshot().status, MigrationStatus::Cancelled);
}
