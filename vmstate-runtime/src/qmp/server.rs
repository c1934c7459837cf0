//! QMP servers: a unix socket or a tcp port on loopback (QMP has no
//! authentication, so a tcp server refuses any other address), each client on
//! its own thread, with bounded reads (a message of at most
//! [`MAX_MESSAGE_BYTES`](super::framing::MAX_MESSAGE_BYTES)), a write timeout
//! (a client that stops reading is dropped, never holds the monitor) and at
//! most [`MAX_CLIENTS`] at once.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use super::framing::{encode, Splitter};
use super::monitor::{EventListener, Monitor};
use super::protocol::{greeting, Session};
use super::QmpError;

/// Clients served at once; one more is greeted with an error and closed.
pub const MAX_CLIENTS: usize = 16;
/// How long one reply or event may take to write before the client is dropped.
pub const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often blocked accepts and reads look at the stop flag.
const TICK: Duration = Duration::from_millis(50);

/// Where a QMP server listens: `unix:PATH` or `tcp:HOST:PORT` (loopback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QmpAddress {
    /// A unix socket at this path (created; removed when the server stops).
    Unix(PathBuf),
    /// A loopback tcp address (port 0: any free port).
    Tcp(SocketAddr),
}

impl std::fmt::Display for QmpAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpAddress::Unix(p) => write!(f, "unix:{}", p.display()),
            QmpAddress::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

impl std::str::FromStr for QmpAddress {
    type Err = QmpError;

    /// ```
    /// use vmstate_runtime::qmp::QmpAddress;
    /// assert!("unix:/tmp/q.sock".parse::<QmpAddress>().is_ok());
    /// assert!("tcp:127.0.0.1:4444".parse::<QmpAddress>().is_ok());
    /// // QMP has no authentication: loopback only.
    /// assert!("tcp:0.0.0.0:4444".parse::<QmpAddress>().is_err());
    /// assert!("ftp:x".parse::<QmpAddress>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, QmpError> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(QmpError::generic(format!("{s}: unix: needs a path")));
            }
            return Ok(QmpAddress::Unix(path.into()));
        }
        if let Some(addr) = s.strip_prefix("tcp:") {
            let host_port = addr.replace("localhost:", "127.0.0.1:");
            let a: SocketAddr = host_port
                .parse()
                .map_err(|e| QmpError::generic(format!("{s}: not a HOST:PORT address ({e})")))?;
            if !a.ip().is_loopback() {
                return Err(QmpError::generic(format!(
                    "{s}: QMP has no authentication; listen on loopback (127.0.0.1) \
                     and reach it through ssh from another host"
                )));
            }
            return Ok(QmpAddress::Tcp(a));
        }
        Err(QmpError::generic(format!(
            "{s}: a QMP address is unix:PATH or tcp:127.0.0.1:PORT"
        )))
    }
}

enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }
    fn prepare(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(TICK))?;
                s.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT))
            }
            Stream::Tcp(s) => {
                s.set_nonblocking(false)?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(TICK))?;
                s.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT))
            }
        }
    }
    fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// A client's sending half, shared by its reader (replies) and the monitor
/// (events).
struct ClientOut {
    w: Mutex<Stream>,
    negotiated: AtomicBool,
    dead: AtomicBool,
}

impl ClientOut {
    fn send(&self, v: &Value) -> bool {
        if self.dead.load(Ordering::SeqCst) {
            return false;
        }
        let ok = match self.w.lock() {
            Ok(mut w) => w.write_all(&encode(v)).and_then(|_| w.flush()).is_ok(),
            Err(_) => false,
        };
        if !ok {
            self.dead.store(true, Ordering::SeqCst);
        }
        ok
    }
}

impl EventListener for ClientOut {
    fn event(&self, e: &Value) -> bool {
        if self.dead.load(Ordering::SeqCst) {
            return false;
        }
        // Events go to clients past capabilities negotiation only.
        if !self.negotiated.load(Ordering::SeqCst) {
            return true;
        }
        self.send(e)
    }
}

/// A running QMP server; stops (and removes its unix socket) when dropped.
pub struct QmpServer {
    address: QmpAddress,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for QmpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QmpServer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl QmpServer {
    /// Listens at `address` and serves `monitor` to every client.
    pub fn start(monitor: Monitor, address: &QmpAddress) -> io::Result<QmpServer> {
        let (listener, address) = match address {
            QmpAddress::Unix(p) => {
                let l = UnixListener::bind(p)?;
                l.set_nonblocking(true)?;
                (Listener::Unix(l, p.clone()), address.clone())
            }
            QmpAddress::Tcp(a) => {
                let l = TcpListener::bind(a)?;
                l.set_nonblocking(true)?;
                let bound = l.local_addr()?;
                (Listener::Tcp(l), QmpAddress::Tcp(bound))
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("qmp-server".into())
            .spawn(move || accept_loop(listener, monitor, s2))?;
        Ok(QmpServer {
            address,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens (a tcp port 0 resolved to the port it got).
    pub fn address(&self) -> &QmpAddress {
        &self.address
    }

    /// Stops accepting and closes every client.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for QmpServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn accept_loop(listener: Listener, monitor: Monitor, stop: Arc<AtomicBool>) {
    let clients = Arc::new(AtomicUsize::new(0));
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let accepted = match &listener {
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
        };
        match accepted {
            Ok(mut stream) => {
                if stream.prepare().is_err() {
                    continue;
                }
                if clients.load(Ordering::SeqCst) >= MAX_CLIENTS {
                    let e = super::protocol::error_reply(
                        &QmpError::generic(format!("Too many QMP clients (at most {MAX_CLIENTS})")),
                        None,
                    );
                    let _ = stream.write_all(&encode(&e));
                    stream.shutdown();
                    continue;
                }
                clients.fetch_add(1, Ordering::SeqCst);
                let (m, s, c) = (monitor.clone(), stop.clone(), clients.clone());
                let spawned =
                    std::thread::Builder::new()
                        .name("qmp-client".into())
                        .spawn(move || {
                            serve_client(stream, &m, &s);
                            c.fetch_sub(1, Ordering::SeqCst);
                        });
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(_) => {
                        clients.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                threads.retain(|t| !t.is_finished());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => std::thread::sleep(TICK),
        }
    }
    for t in threads {
        let _ = t.join();
    }
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
}

fn serve_client(stream: Stream, monitor: &Monitor, stop: &AtomicBool) {
    let Ok(mut reader) = stream.try_clone() else {
        return;
    };
    let out = Arc::new(ClientOut {
        w: Mutex::new(stream),
        negotiated: AtomicBool::new(false),
        dead: AtomicBool::new(false),
    });
    if !out.send(&greeting(monitor.version())) {
        return;
    }
    monitor.add_listener(out.clone());
    let mut session = Session::new();
    let mut splitter = Splitter::new();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) && !out.dead.load(Ordering::SeqCst) {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        for frame in splitter.push(&buf[..n]) {
            let reply = session.handle_frame(frame, monitor);
            out.negotiated.store(session.negotiated(), Ordering::SeqCst);
            if !out.send(&reply) {
                break;
            }
        }
    }
    out.dead.store(true, Ordering::SeqCst);
    let closed = out.w.lock().map(|w| w.shutdown());
    drop(closed);
}
