//! A TCP proxy between a migration source and its destination that counts the
//! bytes of both directions, optionally keeps a copy of the main stream, and
//! kills the whole connection once one direction has carried a chosen number
//! of bytes: a network failure at an exact point of the stream.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::gate::{Gate, PATIENCE};

/// Where the proxy kills the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// After this many bytes from the source to the destination.
    Forward(usize),
    /// After this many bytes of the return path (destination to source).
    Return(usize),
    /// Never: a clean run, for measuring (each half-close is passed on).
    Never,
    /// Holds the main stream after this many bytes until
    /// [`CutProxy::release`], then goes on (a peer can be killed meanwhile,
    /// its unsent bytes still in the sockets).
    Stall(usize),
}

/// What went through the proxy, once both directions ended.
#[derive(Debug, Default)]
pub struct ProxyReport {
    /// Bytes forwarded from the source to the destination.
    pub forward: usize,
    /// Bytes forwarded on the return path.
    pub back: usize,
    /// Whether the proxy killed the connection (the limit was reached).
    pub cut: bool,
    /// The main stream as forwarded, when asked for.
    pub captured: Vec<u8>,
}

/// A running proxy: the address the source connects to, and its report.
pub struct CutProxy {
    /// Where the source connects.
    pub addr: SocketAddr,
    report: Receiver<ProxyReport>,
    progress: Arc<Progress>,
    stall: Gate,
}

/// What the proxy has done so far.
#[derive(Default)]
struct Progress {
    forward: AtomicUsize,
    cut: AtomicBool,
    /// Both sockets are shut down (after `cut`).
    killed: AtomicBool,
}

impl CutProxy {
    /// Lets a [`Cut::Stall`]ed stream go on.
    pub fn release(&self) {
        self.stall.open();
    }

    /// Waits until `n` bytes of the main stream went through or the
    /// connection was cut (panics after [`PATIENCE`]).
    pub fn wait_passed(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.progress.forward.load(Ordering::SeqCst) < n
            && !self.progress.cut.load(Ordering::SeqCst)
        {
            assert!(Instant::now() < deadline, "{n} bytes never went through");
            thread::yield_now();
        }
    }

    /// If the proxy has begun to cut the connection, waits until both
    /// sockets are shut down (panics after [`PATIENCE`]), so the source's end
    /// already shows the hang-up; returns whether it cut.
    pub fn wait_cut_done(&self) -> bool {
        if !self.progress.cut.load(Ordering::SeqCst) {
            return false;
        }
        let deadline = Instant::now() + PATIENCE;
        while !self.progress.killed.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the cut never finished");
            thread::yield_now();
        }
        true
    }

    /// The report, once the connection ended (panics after [`PATIENCE`]: a
    /// side that never closes its end is a hang the test must show).
    pub fn report(&self) -> ProxyReport {
        self.report
            .recv_timeout(PATIENCE * 3)
            .expect("the proxied connection ended")
    }
}

/// Both sockets of the proxied connection, to kill them at once.
struct Ends {
    source: TcpStream,
    destination: TcpStream,
    progress: Arc<Progress>,
}

impl Ends {
    fn kill(&self) {
        self.progress.cut.store(true, Ordering::SeqCst);
        let _ = self.source.shutdown(Shutdown::Both);
        // The destination gets EOF right after the last byte forwarded; what
        // it still sends is drained, not left unread: closing a socket with
        // unread bytes resets the connection, and a reset throws away what
        // the destination has not read yet (the cut would move).
        let _ = self.destination.shutdown(Shutdown::Write);
        self.progress.killed.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until EOF or `limit` bytes (then kills both ends;
/// the return path is drained until the destination closes); returns the
/// count. On the main stream (`main`) the progress is published
/// and `capture` keeps a copy.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    mut limit: Option<(usize, Option<&Gate>)>,
    ends: &Ends,
    main: bool,
    capture: Option<&Mutex<Vec<u8>>>,
) -> usize {
    let mut done = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let room = limit.map_or(buf.len(), |(l, _)| (l - done).min(buf.len()));
        if room == 0 {
            match limit.take() {
                Some((_, Some(stall))) => {
                    stall.pass();
                    continue;
                }
                _ => {
                    ends.kill();
                    if main {
                        return done;
                    }
                    // The return path was cut: drain it (below).
                    continue;
                }
            }
        }
        let n = match from.read(&mut buf[..room]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if ends.progress.cut.load(Ordering::SeqCst) {
            if main {
                // Cut on the other direction: nothing more goes through.
                break;
            }
            // Cut: drain the destination until it closes.
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        done += n;
        if let Some(c) = capture {
            c.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        if main {
            ends.progress.forward.store(done, Ordering::SeqCst);
        }
    }
    // The sender closed (or the other side failed): pass the half-close on.
    let _ = to.shutdown(Shutdown::Write);
    done
}

/// Starts a proxy to `to` for one connection, cutting as `cut` says; `capture`
/// keeps a copy of the main stream in the report.
pub fn cut_proxy(to: SocketAddr, cut: Cut, capture: bool) -> CutProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, report) = channel();
    let progress = Arc::new(Progress::default());
    let p2 = progress.clone();
    let stall = Gate::closed();
    let stall2 = stall.clone();
    thread::spawn(move || {
        let Ok((a, _)) = listener.accept() else {
            return;
        };
        let b = TcpStream::connect(to).unwrap();
        // Neither side may hold the proxy forever.
        for s in [&a, &b] {
            s.set_read_timeout(Some(PATIENCE * 2)).unwrap();
            s.set_nodelay(true).unwrap();
        }
        let ends = Arc::new(Ends {
            source: a.try_clone().unwrap(),
            destination: b.try_clone().unwrap(),
            progress: p2,
        });
        let (fwd_limit, back_limit) = match cut {
            Cut::Forward(n) => (Some((n, None)), None),
            Cut::Stall(n) => (Some((n, Some(&stall2))), None),
            Cut::Return(n) => (None, Some((n, None))),
            Cut::Never => (None, None),
        };
        let captured = Arc::new(Mutex::new(Vec::new()));
        let (a2, b2, ends2) = (a.try_clone().unwrap(), b.try_clone().unwrap(), ends.clone());
        let back = thread::spawn(move || pump(b2, a2, back_limit, &ends2, false, None));
        let c = captured.clone();
        let forward = pump(a, b, fwd_limit, &ends, true, capture.then_some(&*c));
        let back = back.join().unwrap_or(0);
        let report = ProxyReport {
            forward,
            back,
            cut: ends.progress.cut.load(Ordering::SeqCst),
            captured: std::mem::take(&mut *captured.lock().unwrap()),
        };
        let _ = tx.send(report);
    });
    CutProxy {
        addr,
        report,
        progress,
        stall,
    }
}

/// At least `count` offsets in `0..len` (if it has that many): `extra` (those
/// inside `0..len`) and evenly spread ones, sorted, without duplicates.
pub fn spread_offsets(len: usize, count: usize, extra: &[usize]) -> Vec<usize> {
    let base: Vec<usize> = extra.iter().copied().filter(|&o| o < len).collect();
    let mut even = count.saturating_sub(base.len()).max(1);
    loop {
        let mut v = base.clone();
        v.extend((0..even).map(|k| k * len / even));
        v.sort_unstable();
        v.dedup();
        if v.len() >= count.min(len) {
            return v;
        }
        even += count - v.len();
    }
}

/// How long a test waits for one side of a migration to finish.
pub const WAIT: Duration = Duration::from_secs(30);
