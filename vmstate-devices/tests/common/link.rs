//! The pieces of a live migration test between two threads: a guest that has
//! nothing to stop, a TCP proxy that records and cuts the link, and a wait on
//! the source's statistics (a condition, not a duration).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use vmstate_runtime::migration::{MigrationStats, MigrationUri, StatsHandle, VmControl};

/// A source guest with nothing running: pausing and resuming it are no-ops.
#[derive(Clone, Copy, Default, Debug)]
pub struct StillGuest;

impl VmControl for StillGuest {
    fn pause(&mut self) -> vmstate_runtime::Result<()> {
        Ok(())
    }
    fn resume(&mut self) -> vmstate_runtime::Result<()> {
        Ok(())
    }
}

/// A TCP proxy for one connection between a source and a destination: it
/// records both directions (the stream, and the destination's return path),
/// can drop the return path's bytes from some point on, and can cut the link
/// (a network failure: both sides' sockets die).
pub struct Proxy {
    /// Where the source connects.
    pub addr: SocketAddr,
    /// What the source sent, in order.
    pub stream: Arc<Mutex<Vec<u8>>>,
    return_path: Arc<Mutex<Vec<u8>>>,
    swallow: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// A proxy in front of the destination listening at `to`.
    pub fn new(to: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = Proxy {
            addr,
            stream: Arc::default(),
            return_path: Arc::default(),
            swallow: Arc::default(),
            conns: Arc::default(),
        };
        let (stream, rp) = (proxy.stream.clone(), proxy.return_path.clone());
        let (swallow, conns) = (proxy.swallow.clone(), proxy.conns.clone());
        thread::spawn(move || {
            let Ok((src, _)) = listener.accept() else {
                return;
            };
            let dst = TcpStream::connect(to).unwrap();
            conns
                .lock()
                .unwrap()
                .extend([src.try_clone().unwrap(), dst.try_clone().unwrap()]);
            let (src2, dst2) = (src.try_clone().unwrap(), dst.try_clone().unwrap());
            let never = Arc::new(AtomicBool::new(false));
            thread::spawn(move || relay(src2, dst2, &stream, &never));
            relay(dst, src, &rp, &swallow);
        });
        proxy
    }

    /// The URI the source migrates to.
    pub fn uri(&self) -> MigrationUri {
        MigrationUri::Tcp(self.addr.to_string())
    }

    /// A network failure: both sides' sockets die.
    pub fn cut(&self) {
        for s in self.conns.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// From now on the return path's bytes are read and dropped: what the
    /// destination writes is lost with the link.
    pub fn swallow(&self) {
        self.swallow.store(true, Ordering::SeqCst);
    }

    /// Whether the destination sent `bytes` on this link's return path.
    pub fn saw(&self, bytes: &[u8]) -> bool {
        self.return_path
            .lock()
            .unwrap()
            .windows(bytes.len())
            .any(|w| w == bytes)
    }

    /// What the source sent so far, taken out of the recording.
    pub fn take_stream(&self) -> Vec<u8> {
        std::mem::take(&mut *self.stream.lock().unwrap())
    }
}

/// Copies `from` to `to`, recording what passes (or dropping it once `drop`
/// is set), until either side ends; then ends `to`'s writing half.
fn relay(mut from: TcpStream, mut to: TcpStream, record: &Mutex<Vec<u8>>, drop: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if drop.load(Ordering::SeqCst) {
            continue;
        }
        record.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Waits until `done` holds for the statistics, at most `guard`; fails the
/// test when the migration ends first. Returns the statistics that held.
pub fn await_stats(
    stats: &StatsHandle,
    what: &str,
    guard: Duration,
    done: impl Fn(&MigrationStats) -> bool,
) -> MigrationStats {
    let until = Instant::now() + guard;
    loop {
        let s = stats.snapshot();
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < until, "waiting for {what}: {s:?}");
        assert!(!s.status.is_terminal(), "waiting for {what}: {s:?}");
        thread::sleep(Duration::from_millis(2));
    }
}
