//! Transports with QEMU-style URIs: `tcp:host:port`, `unix:path`, `file:path`,
//! `exec:cmd`, `fd:N`, plus an in-memory pipe for tests. Each yields a byte stream
//! and, for bidirectional transports, the reverse direction for the return path.
//!
//! A VMM that already holds a connected stream (a socket it accepted or
//! was handed, an inherited descriptor, its own reader and writer) wraps it in a
//! [`Connection`] ([`Connection::from_unix_stream`], [`from_tcp_stream`](Connection::from_tcp_stream),
//! [`from_fd`](Connection::from_fd), [`from_split`](Connection::from_split)) and
//! migrates over it with [`start_migration_on`](super::start_migration_on) or
//! [`Incoming::from_connection`] and [`run_incoming`](super::run_incoming).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::stall::{is_timeout, poll_accept, CancelToken, ReadWatch};

use crate::error::{Error, ErrorKind, Result, TimeoutError, TransportError, TransportOp, UriError};

/// A parsed migration URI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationUri {
    /// `tcp:host:port`.
    Tcp(String),
    /// `unix:path`.
    Unix(PathBuf),
    /// `file:path` (one direction only, no return path). A source that fails
    /// or is cancelled removes the partial file (a regular file only); a
    /// failed write names the file.
    File(PathBuf),
    /// `exec:cmd`: a shell command whose stdin (outgoing) or stdout (incoming) is
    /// the stream.
    Exec(String),
    /// `fd:N`: a file descriptor this process inherited (or opened) and hands
    /// over, as with QEMU's `-incoming fd:0`. A connected socket carries the
    /// return path; a pipe or file is one-way. [`connect`] and
    /// [`Incoming::listen`] take ownership of the descriptor: it is closed
    /// when the migration is done with it, and must not be used (or owned) by
    /// anything else from then on. Only numbers: QEMU's named fds (QMP
    /// `getfd`) need a monitor.
    Fd(RawFd),
}

impl std::fmt::Display for MigrationUri {
    /// The URI as QEMU writes it (`unix:/run/m.sock`, `fd:3`); it parses back.
    ///
    /// ```
    /// use vmstate_runtime::migration::MigrationUri;
    /// for text in ["tcp:127.0.0.1:4444", "unix:/run/m.sock", "fd:0", "exec:cat"] {
    ///     let uri: MigrationUri = text.parse().unwrap();
    ///     assert_eq!(uri.to_string(), text);
    /// }
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrationUri::Tcp(a) => write!(f, "tcp:{a}"),
            MigrationUri::Unix(p) => write!(f, "unix:{}", p.display()),
            MigrationUri::File(p) => write!(f, "file:{}", p.display()),
            MigrationUri::Exec(c) => write!(f, "exec:{c}"),
            MigrationUri::Fd(n) => write!(f, "fd:{n}"),
        }
    }
}

impl std::str::FromStr for MigrationUri {
    type Err = Error;

    /// ```
    /// use vmstate_runtime::migration::MigrationUri;
    /// let u: MigrationUri = "tcp:127.0.0.1:4444".parse().unwrap();
    /// assert_eq!(u, MigrationUri::Tcp("127.0.0.1:4444".into()));
    /// assert!("ftp:x".parse::<MigrationUri>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        let uri = || s.to_string();
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| bad_uri(UriError::NoScheme { uri: uri() }))?;
        if rest.is_empty() {
            return Err(bad_uri(UriError::NoTarget { uri: uri() }));
        }
        Ok(match scheme {
            "tcp" => {
                if !rest.contains(':') {
                    return Err(bad_uri(UriError::TcpNeedsPort { uri: uri() }));
                }
                MigrationUri::Tcp(rest.to_string())
            }
            "unix" => MigrationUri::Unix(rest.into()),
            "file" => MigrationUri::File(rest.into()),
            "exec" => MigrationUri::Exec(rest.to_string()),
            "fd" => match rest.parse::<RawFd>() {
                Ok(n) if n >= 0 => MigrationUri::Fd(n),
                _ => return Err(bad_uri(UriError::FdNotANumber { uri: uri() })),
            },
            other => {
                return Err(bad_uri(UriError::UnsupportedScheme {
                    scheme: other.to_string(),
                }))
            }
        })
    }
}

fn bad_uri(e: UriError) -> Error {
    Error::new(ErrorKind::InvalidUri(e))
}

fn transport(e: TransportError) -> Error {
    Error::new(ErrorKind::Transport(e))
}

/// The error of a failed OS call while doing `op`.
fn failed(op: TransportOp) -> impl FnOnce(io::Error) -> Error {
    move |source| transport(TransportError::Io { op, source })
}

/// One end of a migration connection: the stream and, if the transport is
/// bidirectional, the reverse direction (return path).
pub struct Connection {
    /// Where the stream goes (source) or comes from (destination).
    pub stream: Box<dyn ReadWrite>,
    /// The other direction, for the return path (`None` for file/exec).
    pub reverse: Option<Box<dyn ReadWrite>>,
    /// A child process to reap (exec).
    child: Option<Child>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("bidirectional", &self.reverse.is_some())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection from its two directions: `stream` carries the migration
    /// stream (the source writes it, the destination reads it), `reverse` the
    /// return path (`None`: one-way, no capability that needs a return path).
    /// Both may be handles on the same socket; a cancel shuts `stream` down
    /// with [`ReadWrite::shutdown`].
    pub fn new(stream: Box<dyn ReadWrite>, reverse: Option<Box<dyn ReadWrite>>) -> Connection {
        Connection {
            stream,
            reverse,
            child: None,
        }
    }

    /// A connected unix socket the caller owns (from `UnixStream::pair`, an
    /// accept of its own, a socket passed over `SCM_RIGHTS`): bidirectional,
    /// with read and write timeouts, and a cancel shuts it down.
    pub fn from_unix_stream(stream: UnixStream) -> Result<Connection> {
        let reverse = stream
            .try_clone()
            .map_err(failed(TransportOp::CallerConnection))?;
        Ok(Connection::bidirectional(stream, reverse))
    }

    /// A connected TCP socket the caller owns (`TCP_NODELAY` is set, as for
    /// `tcp:`): bidirectional, like [`from_unix_stream`](Self::from_unix_stream).
    pub fn from_tcp_stream(stream: TcpStream) -> Result<Connection> {
        stream
            .set_nodelay(true)
            .map_err(failed(TransportOp::CallerConnection))?;
        let reverse = stream
            .try_clone()
            .map_err(failed(TransportOp::CallerConnection))?;
        Ok(Connection::bidirectional(stream, reverse))
    }

    /// Any open descriptor the caller owns: a connected stream socket (unix or
    /// TCP) is bidirectional; a pipe, FIFO, character device or regular file is
    /// one-way (the source writes it, the destination reads it). The
    /// descriptor is closed when the connection is dropped.
    pub fn from_fd(fd: OwnedFd) -> Result<Connection> {
        let fd_no = {
            use std::os::fd::AsRawFd;
            fd.as_raw_fd()
        };
        let file = std::fs::File::from(fd);
        let kind = file
            .metadata()
            .map_err(failed(TransportOp::Fd(fd_no)))?
            .file_type();
        if !kind.is_socket() {
            return Ok(Connection::one_way(file, None));
        }
        // An inet socket has an inet address; anything else (unix) is driven
        // through the same socket calls as a unix stream.
        let tcp = TcpStream::from(OwnedFd::from(file));
        if tcp.local_addr().is_ok() {
            return Connection::from_tcp_stream(tcp);
        }
        Connection::from_unix_stream(UnixStream::from(OwnedFd::from(tcp)))
    }

    /// A connection from separate halves (a generic `Read + Write` pair: two
    /// pipes, a channel-backed stream, the halves of a transport of the
    /// caller's): the destination reads the stream from `reader` and answers on
    /// `writer`; the source writes the stream to `writer` and reads the return
    /// path from `reader`. The halves cannot time out or be shut down from
    /// here: a cancel or timeout takes effect when the blocked call returns
    /// (wrap a socket with [`from_unix_stream`](Self::from_unix_stream) and the
    /// like instead where one is available).
    pub fn from_split<R, W>(reader: R, writer: W) -> Connection
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let end = SplitEnd {
            reader: Arc::new(Mutex::new(Box::new(reader))),
            writer: Arc::new(Mutex::new(Box::new(writer))),
        };
        let other = SplitEnd {
            reader: end.reader.clone(),
            writer: end.writer.clone(),
        };
        Connection::bidirectional(end, other)
    }

    /// Whether the connection carries a return path.
    pub fn is_bidirectional(&self) -> bool {
        self.reverse.is_some()
    }

    /// A socket connection: the stream, and a second handle on the same socket
    /// for the return path.
    fn bidirectional<S: ReadWrite + 'static>(stream: S, reverse: S) -> Connection {
        Connection {
            stream: Box::new(stream),
            reverse: Some(Box::new(reverse)),
            child: None,
        }
    }

    /// A one-directional connection (file, exec): no return path.
    fn one_way<S: ReadWrite + 'static>(stream: S, child: Option<Child>) -> Connection {
        Connection {
            stream: Box::new(stream),
            reverse: None,
            child,
        }
    }

    /// Waits for an exec child (if any) and reports its failure.
    pub fn finish(mut self) -> Result<()> {
        drop(self.stream);
        drop(self.reverse.take());
        if let Some(mut c) = self.child.take() {
            let status = c.wait()?;
            if !status.success() {
                return Err(transport(TransportError::ExecFailed { status }));
            }
        }
        Ok(())
    }
}

/// Read + Write + Send, boxed.
pub trait ReadWrite: Read + Write + Send {
    /// Shuts the connection down in both directions (unblocks a reader on the
    /// other half); a no-op where not applicable.
    fn shutdown(&self) -> io::Result<()> {
        Ok(())
    }

    /// Ends the outgoing direction only (the peer reads EOF; replies can still
    /// arrive); a no-op where not applicable.
    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }

    /// A second handle to the same connection (to shut it down from another
    /// thread, e.g. on cancel); `None` where the transport has none.
    fn try_clone_rw(&self) -> Option<Box<dyn ReadWrite>> {
        None
    }

    /// Makes a blocked read give up after `timeout` (`None`: never) with an
    /// `io::Error` of kind `WouldBlock` or `TimedOut`; returns whether the
    /// transport can (sockets can; files never block; pipes cannot).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let _ = timeout;
        Ok(false)
    }

    /// Makes a blocked write give up after `timeout` (`None`: never); returns
    /// whether the transport can.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let _ = timeout;
        Ok(false)
    }

    /// Whether the peer is known to be gone, seen without reading or waiting:
    /// it closed the connection or shut down its sending side, or the
    /// connection failed (sockets: `poll(2)` with a zero timeout reports
    /// `POLLRDHUP`, `POLLHUP` or `POLLERR`). `false` where the transport
    /// cannot tell (files, pipes, the in-memory pair) and while the link looks
    /// alive; a `true` is certain, a `false` is no promise that the next
    /// write arrives.
    fn peer_hung_up(&self) -> io::Result<bool> {
        Ok(false)
    }

    /// The connected unix stream socket under this transport, for the
    /// zero-copy sending of guest pages (`splice(2)`) and a larger send
    /// buffer; `None` for anything else. A transport that wraps a socket but
    /// must see every byte itself (a proxy that counts or rewrites) keeps the
    /// default.
    ///
    /// TCP is left out on purpose: over TCP loopback the same migration of
    /// 1 GiB ran at 1.05-1.15 GiB/s spliced against 1.8-2.1 GiB/s with
    /// `writev` (each 8-byte record header becomes a fragment of its own in
    /// TCP's segments), and the fixed 4 MiB buffer also lost to TCP's own
    /// buffer autotuning (measured 2026-12-03 with the demo's two roles).
    fn unix_socket_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
}

/// `poll(2)` on one socket with a zero timeout: did the peer hang up, or did
/// the connection fail? Only looks at the socket's state; reads nothing.
fn socket_hung_up(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    loop {
        // SAFETY: `p` is one valid, initialized pollfd that lives across the
        // call, and the count passed is 1; `fd` is borrowed from a socket that
        // stays open for the call. A zero timeout never blocks.
        #[allow(unsafe_code)]
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if n >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0)
}

/// Sockets: shut down with `shutdown(2)`, cloned with `dup(2)`.
macro_rules! socket_read_write {
    ($($socket:ty),+) => {$(
        impl ReadWrite for $socket {
            fn shutdown(&self) -> io::Result<()> {
                <$socket>::shutdown(self, std::net::Shutdown::Both)
            }
            fn shutdown_write(&self) -> io::Result<()> {
                <$socket>::shutdown(self, std::net::Shutdown::Write)
            }
            fn try_clone_rw(&self) -> Option<Box<dyn ReadWrite>> {
                self.try_clone()
                    .ok()
                    .map(|s| Box::new(s) as Box<dyn ReadWrite>)
            }
            fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<bool> {
                <$socket>::set_read_timeout(self, timeout).map(|()| true)
            }
            fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<bool> {
                <$socket>::set_write_timeout(self, timeout).map(|()| true)
            }
            fn peer_hung_up(&self) -> io::Result<bool> {
                socket_hung_up(std::os::fd::AsFd::as_fd(self))
            }
            fn unix_socket_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
                socket_is_unix::<$socket>().then(|| std::os::fd::AsFd::as_fd(self))
            }
        }
    )+};
}

socket_read_write!(TcpStream, UnixStream);

/// Whether `S` is the unix stream socket type (see
/// [`ReadWrite::unix_socket_fd`]).
fn socket_is_unix<S: 'static>() -> bool {
    std::any::TypeId::of::<S>() == std::any::TypeId::of::<UnixStream>()
}

/// The outgoing stream: its writes give up after the write timeout (a typed
/// [`TimeoutError::StreamWrite`] inside the `io::Error`), and it ends its
/// direction when dropped, so the destination sees EOF even while the
/// return-path half of the socket stays open.
pub(crate) struct Outgoing {
    conn: Box<dyn ReadWrite>,
    write_timeout: Option<Duration>,
}

impl Outgoing {
    /// Puts `write_timeout` on the connection (where the transport can).
    pub(crate) fn new(conn: Box<dyn ReadWrite>, write_timeout: Option<Duration>) -> Result<Self> {
        if let Some(fd) = conn.unix_socket_fd() {
            enlarge_send_buffer(fd);
        }
        let timeout = match write_timeout {
            Some(t) => conn.set_write_timeout(Some(t))?.then_some(t),
            None => None,
        };
        Ok(Outgoing {
            conn,
            write_timeout: timeout,
        })
    }

    fn typed(&self, e: io::Error) -> io::Error {
        match self.write_timeout {
            Some(timeout) => typed_write_error(e, timeout),
            None => e,
        }
    }

    /// A zero-copy sender onto this connection's socket
    /// ([`Splicer`](super::splice::Splicer)), where the transport is a unix
    /// socket and the system grants a pipe; `None` otherwise (the stream is
    /// then written with vectored writes).
    pub(crate) fn splicer(&self) -> Option<super::splice::Splicer> {
        let fd = self.conn.unix_socket_fd()?;
        match super::splice::Splicer::new(fd, self.write_timeout) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(error = %e, "no zero-copy sender; writing with writev");
                None
            }
        }
    }
}

/// The send buffer a migration socket asks for: 4 MiB (the kernel doubles
/// the request for its bookkeeping and caps it at `net.core.wmem_max`).
///
/// Why: with the default (208 KiB on Linux) the source fills the buffer in
/// well under a millisecond and then sleeps until the destination has read
/// it, and the destination sleeps in turn while the source refills it: on a
/// 2-core machine both sides were idle 40% of the time and a 1 GiB migration
/// ran at 1.9 GiB/s; with 4 MiB, 2.7 GiB/s (measured with `perf` and the demo,
/// 2026-12-03).
const SEND_BUFFER_BYTES: usize = 4 << 20;

/// Grows a socket's send buffer to [`SEND_BUFFER_BYTES`] (never shrinks one
/// the caller made larger). Only advice: a failure leaves the default.
pub(crate) fn enlarge_send_buffer(fd: std::os::fd::BorrowedFd<'_>) {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt::SndBuf};
    // getsockopt reports the doubled size the kernel keeps.
    let now = getsockopt(&fd, SndBuf).unwrap_or(0) / 2;
    if now < SEND_BUFFER_BYTES {
        if let Err(e) = setsockopt(&fd, SndBuf, &SEND_BUFFER_BYTES) {
            tracing::debug!(error = %e, "could not enlarge the send buffer");
        }
    }
}

/// A write that gave up after the stream's write timeout, as the typed
/// [`TimeoutError::StreamWrite`] inside the `io::Error`; other errors as they are.
pub(crate) fn typed_write_error(e: io::Error, timeout: Duration) -> io::Error {
    if is_timeout(&e) {
        io::Error::new(
            io::ErrorKind::TimedOut,
            Error::new(ErrorKind::TimedOut(TimeoutError::StreamWrite { timeout })),
        )
    } else {
        e
    }
}

impl Write for Outgoing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.conn.write(buf).map_err(|e| self.typed(e))
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.conn.write_vectored(bufs).map_err(|e| self.typed(e))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush().map_err(|e| self.typed(e))
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        let _ = self.conn.flush();
        let _ = self.conn.shutdown_write();
    }
}

impl ReadWrite for std::fs::File {}

/// One handle on a [`Connection::from_split`] pair: reads lock the reader,
/// writes the writer, so one thread can read while another writes.
struct SplitEnd {
    reader: Arc<Mutex<Box<dyn Read + Send>>>,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
}

fn poisoned_half() -> io::Error {
    io::Error::other("connection half poisoned by a panic")
}

impl Read for SplitEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.lock().map_err(|_| poisoned_half())?.read(buf)
    }
}

impl Write for SplitEnd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.lock().map_err(|_| poisoned_half())?.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.writer
            .lock()
            .map_err(|_| poisoned_half())?
            .write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.lock().map_err(|_| poisoned_half())?.flush()
    }
}

impl ReadWrite for SplitEnd {}

/// Takes ownership of descriptor `n` named by an `fd:` URI, after checking it
/// is open.
#[allow(unsafe_code)]
fn take_fd(n: RawFd) -> Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // An fd that is not open would make the OwnedFd below invalid: check
    // first (Linux names every open descriptor of the process here).
    std::fs::symlink_metadata(format!("/proc/self/fd/{n}")).map_err(|e| {
        let source = if e.kind() == io::ErrorKind::NotFound {
            io::Error::from_raw_os_error(9) // EBADF: not an open descriptor
        } else {
            e
        };
        transport(TransportError::Io {
            op: TransportOp::Fd(n),
            source,
        })
    })?;
    // SAFETY: `n` is open (checked just above), and the `fd:N` URI is the
    // caller handing it over, as QEMU's `fd:` does: nothing else in the process
    // owns or uses it from now on (documented on `MigrationUri::Fd`), so this
    // OwnedFd is its only owner and closes it once.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// The `file:` target: a write that fails (a full disk) names the file; the
/// OS error stays its source and its kind is kept.
struct FileTarget {
    file: std::fs::File,
    path: PathBuf,
}

/// A failed write to a `file:` target.
#[derive(Debug)]
struct FileWriteError {
    path: PathBuf,
    source: io::Error,
}

impl std::fmt::Display for FileWriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "write {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for FileWriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl FileTarget {
    fn named(&self, source: io::Error) -> io::Error {
        io::Error::new(
            source.kind(),
            FileWriteError {
                path: self.path.clone(),
                source,
            },
        )
    }
}

impl Read for FileTarget {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

impl Write for FileTarget {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf).map_err(|e| self.named(e))
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.file.write_vectored(bufs).map_err(|e| self.named(e))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush().map_err(|e| self.named(e))
    }
}

impl ReadWrite for FileTarget {}

/// A one-directional pipe end (child stdin/stdout) as a [`ReadWrite`].
struct OneWay<T>(T);

impl<T: Read + Send> Read for OneWay<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<T: Send> Write for OneWay<T> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "read-only transport",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct WriteOnly<T>(T);

impl<T: Send> Read for WriteOnly<T> {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "write-only transport",
        ))
    }
}

impl<T: Write + Send> Write for WriteOnly<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<T: Read + Send> ReadWrite for OneWay<T> {}
impl<T: Write + Send> ReadWrite for WriteOnly<T> {}

/// Which end of an `exec:` command carries the stream.
enum Direction {
    /// The source writes the stream into the command's stdin.
    ToCommand,
    /// The destination reads the stream from the command's stdout.
    FromCommand,
}

/// Starts an `exec:` command through the shell, as QEMU does; the stream is its
/// stdin (source) or stdout (destination).
fn exec(cmd: &str, dir: Direction) -> Result<Connection> {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(cmd);
    match dir {
        Direction::ToCommand => c.stdin(Stdio::piped()),
        Direction::FromCommand => c.stdout(Stdio::piped()),
    };
    let mut child = c
        .spawn()
        .map_err(failed(TransportOp::Exec(cmd.to_string())))?;
    let no_pipe = |pipe| transport(TransportError::NoPipe { pipe });
    Ok(match dir {
        Direction::ToCommand => {
            let stdin = child.stdin.take().ok_or_else(|| no_pipe("stdin"))?;
            Connection::one_way(WriteOnly(stdin), Some(child))
        }
        Direction::FromCommand => {
            let stdout = child.stdout.take().ok_or_else(|| no_pipe("stdout"))?;
            Connection::one_way(OneWay(stdout), Some(child))
        }
    })
}

/// Source side: connects to the destination.
pub fn connect(uri: &MigrationUri) -> Result<Connection> {
    Ok(match uri {
        MigrationUri::Tcp(addr) => {
            let s =
                TcpStream::connect(addr).map_err(failed(TransportOp::TcpConnect(addr.clone())))?;
            s.set_nodelay(true)?;
            let r = s.try_clone()?;
            Connection::bidirectional(s, r)
        }
        MigrationUri::Unix(path) => {
            let s = UnixStream::connect(path)
                .map_err(failed(TransportOp::UnixConnect(path.clone())))?;
            let r = s.try_clone()?;
            Connection::bidirectional(s, r)
        }
        MigrationUri::File(path) => Connection::one_way(
            FileTarget {
                file: std::fs::File::create(path)
                    .map_err(failed(TransportOp::Create(path.clone())))?,
                path: path.clone(),
            },
            None,
        ),
        MigrationUri::Exec(cmd) => exec(cmd, Direction::ToCommand)?,
        MigrationUri::Fd(n) => Connection::from_fd(take_fd(*n)?)?,
    })
}

/// Destination side: a bound listener (tcp/unix) or an opened source
/// (file/exec/fd, or a caller's [`Connection`]).
///
/// Waiting for the source ends on its own: [`accept_within`](Self::accept_within)
/// (and [`run_incoming`](super::run_incoming) with
/// [`LoadOptions::accept_timeout`](crate::savevm::LoadOptions::accept_timeout) /
/// [`cancel`](crate::savevm::LoadOptions::cancel)) polls a non-blocking
/// listener, so a timeout or a [`CancelToken`] from another thread ends the wait
/// without anyone connecting to it.
pub enum Incoming {
    /// Waiting for the source to connect.
    Tcp(TcpListener),
    /// Waiting for the source to connect.
    Unix(UnixListener, PathBuf),
    /// Ready to read.
    Ready(Connection),
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incoming::Tcp(l) => write!(f, "Incoming::Tcp({:?})", l.local_addr().ok()),
            Incoming::Unix(_, p) => write!(f, "Incoming::Unix({})", p.display()),
            Incoming::Ready(_) => write!(f, "Incoming::Ready"),
        }
    }
}

impl Incoming {
    /// Binds (tcp/unix) or opens (file/exec) the incoming side.
    pub fn listen(uri: &MigrationUri) -> Result<Incoming> {
        Ok(match uri {
            MigrationUri::Tcp(addr) => Incoming::Tcp(
                TcpListener::bind(addr).map_err(failed(TransportOp::TcpListen(addr.clone())))?,
            ),
            MigrationUri::Unix(path) => {
                let _ = std::fs::remove_file(path);
                Incoming::Unix(
                    UnixListener::bind(path)
                        .map_err(failed(TransportOp::UnixListen(path.clone())))?,
                    path.clone(),
                )
            }
            MigrationUri::File(path) => Incoming::Ready(Connection::one_way(
                std::fs::File::open(path).map_err(failed(TransportOp::Open(path.clone())))?,
                None,
            )),
            MigrationUri::Exec(cmd) => Incoming::Ready(exec(cmd, Direction::FromCommand)?),
            MigrationUri::Fd(n) => Incoming::Ready(Connection::from_fd(take_fd(*n)?)?),
        })
    }

    /// An incoming migration over a connection the caller already has
    /// (accepted, inherited, or built with [`Connection::from_split`]): nothing
    /// to accept.
    pub fn from_connection(conn: Connection) -> Incoming {
        Incoming::Ready(conn)
    }

    /// The local address of a tcp listener (to learn an ephemeral port).
    pub fn local_tcp_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Incoming::Tcp(l) => l.local_addr().ok(),
            _ => None,
        }
    }

    /// Waits for the source (tcp/unix) and returns the connection.
    pub fn accept(self) -> Result<Connection> {
        self.accept_within(None, None)
    }

    /// [`accept`](Self::accept) that gives up after `timeout`
    /// ([`TimeoutError::Accept`](crate::error::TimeoutError::Accept)) or when
    /// `cancel` is set ([`ErrorKind::Cancelled`]). With either, the listener is
    /// non-blocking and polled every [`POLL_INTERVAL`](super::POLL_INTERVAL);
    /// nothing needs to connect to unblock it. File and exec sources are ready
    /// at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vmstate_runtime::error::TimeoutError;
    /// use vmstate_runtime::migration::{Incoming, MigrationUri};
    /// use vmstate_runtime::ErrorKind;
    ///
    /// let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
    /// let err = incoming.accept_within(Some(Duration::from_millis(50)), None).unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::TimedOut(TimeoutError::Accept { .. })));
    /// ```
    pub fn accept_within(
        self,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<Connection> {
        let polled = timeout.is_some() || cancel.is_some();
        Ok(match self {
            Incoming::Tcp(l) => {
                let s = accept_one(&l, polled, timeout, cancel)?;
                s.set_nodelay(true)?;
                let r = s.try_clone()?;
                Connection::bidirectional(s, r)
            }
            Incoming::Unix(l, path) => {
                let s = accept_one(&l, polled, timeout, cancel)?;
                let _ = std::fs::remove_file(&path);
                let r = s.try_clone()?;
                Connection::bidirectional(s, r)
            }
            Incoming::Ready(c) => c,
        })
    }
}

impl From<Connection> for Incoming {
    fn from(conn: Connection) -> Incoming {
        Incoming::Ready(conn)
    }
}

/// The two socket listeners `Incoming` accepts on, seen alike so that one
/// accept routine serves both.
trait Listener {
    type Stream;
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
    fn accept_stream(&self) -> io::Result<Self::Stream>;
    fn set_stream_blocking(s: &Self::Stream) -> io::Result<()>;
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        TcpListener::set_nonblocking(self, on)
    }
    fn accept_stream(&self) -> io::Result<TcpStream> {
        self.accept().map(|(s, _)| s)
    }
    fn set_stream_blocking(s: &TcpStream) -> io::Result<()> {
        s.set_nonblocking(false)
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        UnixListener::set_nonblocking(self, on)
    }
    fn accept_stream(&self) -> io::Result<UnixStream> {
        self.accept().map(|(s, _)| s)
    }
    fn set_stream_blocking(s: &UnixStream) -> io::Result<()> {
        s.set_nonblocking(false)
    }
}

/// Accepts one connection: a plain blocking accept, or (`polled`, with a timeout or a
/// cancel token) a non-blocking listener polled until either ends the wait. The
/// accepted stream is blocking either way.
fn accept_one<L: Listener>(
    l: &L,
    polled: bool,
    timeout: Option<Duration>,
    cancel: Option<&CancelToken>,
) -> Result<L::Stream> {
    if !polled {
        return Ok(l.accept_stream()?);
    }
    l.set_nonblocking(true)?;
    let s = poll_accept(|| l.accept_stream(), timeout, cancel)?;
    L::set_stream_blocking(&s)?;
    Ok(s)
}

/// An in-memory bidirectional pipe, for tests: two connected [`Connection`]s.
pub fn mem_pair() -> (Connection, Connection) {
    let (a_tx, a_rx) = mpsc::channel();
    let (b_tx, b_rx) = mpsc::channel();
    let a = MemEnd::new(a_tx.clone(), b_rx);
    let b = MemEnd::new(b_tx, a_rx);
    let a2 = a.clone_end();
    let b2 = b.clone_end();
    (
        Connection {
            stream: Box::new(a),
            reverse: Some(Box::new(a2)),
            child: None,
        },
        Connection {
            stream: Box::new(b),
            reverse: Some(Box::new(b2)),
            child: None,
        },
    )
}

/// One end of [`mem_pair`]: writes go to the peer, reads come from the peer.
struct MemEnd {
    tx: mpsc::Sender<Vec<u8>>,
    rx: std::sync::Arc<std::sync::Mutex<mpsc::Receiver<Vec<u8>>>>,
    pending: Vec<u8>,
    at: usize,
}

impl MemEnd {
    fn new(tx: mpsc::Sender<Vec<u8>>, rx: mpsc::Receiver<Vec<u8>>) -> Self {
        MemEnd {
            tx,
            rx: std::sync::Arc::new(std::sync::Mutex::new(rx)),
            pending: Vec::new(),
            at: 0,
        }
    }

    fn clone_end(&self) -> Self {
        MemEnd {
            tx: self.tx.clone(),
            rx: self.rx.clone(),
            pending: Vec::new(),
            at: 0,
        }
    }
}

impl Read for MemEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.pending.len() {
            let rx = self
                .rx
                .lock()
                .map_err(|_| io::Error::other("mem pipe poisoned"))?;
            match rx.recv() {
                Ok(chunk) => {
                    self.pending = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for MemEnd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .send(buf.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "mem pipe closed"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ReadWrite for MemEnd {}

/// Reads from a transport into a `BytesMut` for a [`Reader`](crate::wire::Reader)
/// (the loader's refill source).
///
/// Each call grows the buffer by at most one chunk and returns what arrived, so
/// the buffer is only ever as large as the bytes received plus a chunk, whatever
/// length the peer claims. The destination driver's refill also
/// ends a wait for the idle timeout or a cancel.
pub struct TransportRefill {
    source: Box<dyn ReadWrite>,
    chunk: usize,
    watch: Option<ReadWatch>,
    /// Bytes received so far (what a stall error reports).
    received: u64,
    last_byte: Instant,
}

impl TransportRefill {
    /// Refills in reads of up to `chunk` bytes (at least one byte per call).
    pub fn new(source: Box<dyn ReadWrite>, chunk: usize) -> Self {
        TransportRefill {
            source,
            chunk: chunk.max(1),
            watch: None,
            received: 0,
            last_byte: Instant::now(),
        }
    }

    /// A refill whose waits end on the watch's idle timeout or cancel: puts the
    /// watch's read timeout on the socket. A transport without read timeouts
    /// (pipes) keeps blocking reads; the watch then only acts between them.
    pub(crate) fn watched(
        source: Box<dyn ReadWrite>,
        chunk: usize,
        watch: ReadWatch,
    ) -> io::Result<Self> {
        let mut r = Self::new(source, chunk);
        if watch.is_active() {
            r.source.set_read_timeout(watch.socket_timeout())?;
            r.watch = Some(watch);
        }
        Ok(r)
    }
}

impl crate::wire::Refill<bytes::BytesMut> for TransportRefill {
    fn refill(&mut self, buf: &mut bytes::BytesMut, min: usize) -> io::Result<usize> {
        // Never more than a chunk at a time: `min` is what the reader needs, which
        // may be a length the peer claims (a package, a vmdesc) and not yet sent.
        let room = self.chunk;
        let need = min.clamp(1, room);
        let start = buf.len();
        buf.resize(start + room, 0);
        let mut got = 0;
        let result = loop {
            if got >= need {
                break Ok(got);
            }
            match self.source.read(&mut buf[start + got..]) {
                Ok(0) => break Ok(got),
                Ok(n) => {
                    got += n;
                    self.last_byte = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) && self.watch.is_some() => {
                    if got > 0 {
                        break Ok(got);
                    }
                    let watch = self.watch.as_ref().expect("checked above");
                    if let Some(stop) = watch.check(self.last_byte, self.received) {
                        break Err(stop);
                    }
                }
                Err(e) => break Err(e),
            }
        };
        buf.truncate(start + got);
        self.received += got as u64;
        // Bytes read before an error stay buffered; the reader counts only what
        // it is told, so report them and leave the error to the next call.
        match result {
            Err(_) if got > 0 => Ok(got),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unix_sockets_are_spliced_and_get_the_large_send_buffer() {
        use nix::sys::socket::{getsockopt, sockopt::SndBuf};
        let (a, _b) = UnixStream::pair().unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let t = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let tcp_buffer = getsockopt(&t, SndBuf).unwrap();
        let unix: Box<dyn ReadWrite> = Box::new(a.try_clone().unwrap());
        let tcp: Box<dyn ReadWrite> = Box::new(t.try_clone().unwrap());
        let file: Box<dyn ReadWrite> = Box::new(std::fs::File::open("/dev/null").unwrap());
        assert!(unix.unix_socket_fd().is_some());
        assert!(tcp.unix_socket_fd().is_none());
        assert!(file.unix_socket_fd().is_none());
        let out = Outgoing::new(unix, None).unwrap();
        assert!(out.splicer().is_some());
        // The kernel reports the doubled size (capped by wmem_max).
        assert!(getsockopt(&a, SndBuf).unwrap() > 256 << 10);
        assert!(Outgoing::new(tcp, None).unwrap().splicer().is_none());
        assert_eq!(
            getsockopt(&t, SndBuf).unwrap(),
            tcp_buffer,
            "TCP keeps its own"
        );
        assert!(Outgoing::new(file, None).unwrap().splicer().is_none());
    }

    #[test]
    fn uris_parse() {
        assert_eq!(
            "unix:/tmp/x.sock".parse::<MigrationUri>().unwrap(),
            MigrationUri::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            "exec:cat > f".parse::<MigrationUri>().unwrap(),
            MigrationUri::Exec("cat > f".into())
        );
        assert!("tcp:nohost".parse::<MigrationUri>().is_err());
        assert!("unix:".parse::<MigrationUri>().is_err());
        assert!("nothing".parse::<MigrationUri>().is_err());
    }

    #[test]
    fn peer_hang_up_is_seen_without_reading() {
        // Unix: unread data does not hide the hang-up; a live peer is no hang-up.
        let (a, mut b) = UnixStream::pair().unwrap();
        assert!(!ReadWrite::peer_hung_up(&a).unwrap());
        b.write_all(b"unread").unwrap();
        assert!(!ReadWrite::peer_hung_up(&a).unwrap());
        // The peer ends only its sending side: already gone for a source.
        b.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(ReadWrite::peer_hung_up(&a).unwrap());
        drop(b);
        assert!(ReadWrite::peer_hung_up(&a).unwrap());
        // TCP: the peer closes.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        assert!(!ReadWrite::peer_hung_up(&c).unwrap());
        drop(s);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ReadWrite::peer_hung_up(&c).unwrap() {
            assert!(Instant::now() < deadline, "tcp FIN not seen");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Through a boxed clone, as the source driver holds it.
        let boxed = c.try_clone_rw().unwrap();
        assert!(boxed.peer_hung_up().unwrap());
        // Transports that cannot tell say no.
        let (m, _peer) = mem_pair();
        assert!(!m.stream.peer_hung_up().unwrap());
    }

    #[test]
    fn mem_pair_carries_both_directions() {
        let (mut a, mut b) = mem_pair();
        a.stream.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        b.stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        b.reverse.as_mut().unwrap().write_all(b"ok").unwrap();
        let mut buf = [0u8; 2];
        a.reverse.as_mut().unwrap().read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
    }

    #[test]
    fn unix_and_tcp_and_exec_and_file_carry_bytes() {
        let dir = std::env::temp_dir().join(format!("vmstate-transport-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("m.sock");
        for uri in [
            MigrationUri::Unix(sock.clone()),
            MigrationUri::Tcp("127.0.0.1:0".into()),
        ] {
            let incoming = Incoming::listen(&uri).unwrap();
            let connect_uri = match incoming.local_tcp_addr() {
                Some(a) => MigrationUri::Tcp(a.to_string()),
                None => uri.clone(),
            };
            let t = std::thread::spawn(move || {
                let mut c = incoming.accept().unwrap();
                let mut buf = [0u8; 4];
                c.stream.read_exact(&mut buf).unwrap();
                c.reverse.as_mut().unwrap().write_all(&buf).unwrap();
            });
            let mut c = connect(&connect_uri).unwrap();
            c.stream.write_all(b"QEVM").unwrap();
            let mut echo = [0u8; 4];
            c.reverse.as_mut().unwrap().read_exact(&mut echo).unwrap();
            assert_eq!(&echo, b"QEVM");
            t.join().unwrap();
        }
        let file = dir.join("out.mig");
        let out = MigrationUri::Exec(format!("cat > {}", file.display()));
        let mut c = connect(&out).unwrap();
        c.stream.write_all(b"abc").unwrap();
        c.finish().unwrap();
        for uri in [
            MigrationUri::File(file.clone()),
            MigrationUri::Exec(format!("cat {}", file.display())),
        ] {
            let mut c = Incoming::listen(&uri).unwrap().accept().unwrap();
            let mut s = String::new();
            c.stream.read_to_string(&mut s).unwrap();
            assert_eq!(s, "abc", "{uri:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
