//! The socket and the source threads that target `stream_socket` reuses for
//! every input: one listening unix socket in the abstract namespace (no file
//! to create or remove), one long-lived thread draining the return path and
//! one writing inputs too large for the socket buffer. Per input only a
//! connection is made: the fuzzer's thread connects (the listener's backlog
//! holds it, so the driver's accept returns at once), writes the input into
//! the socket and ends its sending side (or hands a large input to the
//! writer), hands a second handle to the return-path reader, and runs the real
//! destination driver on a duplicate of the listener. A listener, a path and
//! two new threads per input cost most of the time before (a few hundred
//! executions per second); this way it is mostly the driver's own work.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};

use vmstate_runtime::migration::Incoming;

/// One input for the source thread: the connected source end and the bytes to
/// send on it.
type Job = (UnixStream, Vec<u8>);

/// The listener, its address and the source threads' queues.
pub struct SocketPeer {
    listener: UnixListener,
    addr: SocketAddr,
    jobs: SyncSender<Job>,
    drains: SyncSender<UnixStream>,
    /// Per input, one message from the writer (input sent) and one from the
    /// reader (destination hung up), from each that got the input.
    done: Mutex<Receiver<()>>,
    /// The current input: its source end when it was written at once (`None`:
    /// the writer thread has it), and whether the return-path reader got a
    /// handle on it.
    direct: Mutex<Option<Current>>,
}

/// See [`SocketPeer::direct`].
type Current = (Option<UnixStream>, bool);

/// Whatever the destination can send back for `input` fits in the socket
/// unread: every reply (PONG, RECV_BITMAP, RESUME_ACK) answers a command, a
/// command starts with byte 0x08, a reply costs at most a few writes, and a
/// unix socket takes a few hundred small writes before a writer blocks (each
/// write is one buffer whatever its size). Then no reader is needed.
fn replies_fit(input: &[u8]) -> bool {
    const UNREAD_WRITES: usize = 200;
    let commands = input.iter().filter(|&&b| b == 0x08).count();
    commands * 4 + 4 <= UNREAD_WRITES
}

/// Inputs up to this size are written by the fuzzer's thread straight into
/// the socket (a unix socket buffers about 200 KiB).
const DIRECT_MAX: usize = 64 * 1024;

impl SocketPeer {
    /// The process's peer, made at first use (one fuzzer process runs one
    /// input at a time, so one peer serves them all).
    pub fn get() -> &'static SocketPeer {
        static PEER: OnceLock<SocketPeer> = OnceLock::new();
        PEER.get_or_init(|| SocketPeer::new().expect("fuzz socket peer"))
    }

    fn new() -> std::io::Result<SocketPeer> {
        let name = format!("vmstate-fuzz-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let listener = UnixListener::bind_addr(&addr)?;
        let (jobs, queue) = sync_channel::<Job>(1);
        let (drains, drain_queue) = sync_channel::<UnixStream>(1);
        let (finished, done) = sync_channel::<()>(2);
        let drained = finished.clone();
        // The writer (inputs larger than the socket buffers): the rest of the
        // input, then EOF. A write fails (EPIPE) when the destination gave up
        // early; SIGPIPE is ignored (`ignore_sigpipe`).
        std::thread::Builder::new()
            .name("fuzz-source".into())
            .spawn(move || {
                for (mut stream, input) in queue {
                    let _ = stream.write_all(&input);
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                    drop(stream);
                    if finished.send(()).is_err() {
                        return;
                    }
                }
            })?;
        // The reader: drains the return path until the destination closes it,
        // so a return-path write of the destination never blocks on a full
        // socket buffer (a unix socket counts each small message at its full
        // buffer cost: a few hundred PONGs fill it).
        std::thread::Builder::new()
            .name("fuzz-source-rp".into())
            .spawn(move || {
                let mut sink = [0u8; 4096];
                for mut rp in drain_queue {
                    while matches!(rp.read(&mut sink), Ok(n) if n > 0) {}
                    drop(rp);
                    if drained.send(()).is_err() {
                        return;
                    }
                }
            })?;
        Ok(SocketPeer {
            listener,
            addr,
            jobs,
            drains,
            done: Mutex::new(done),
            direct: Mutex::new(None),
        })
    }

    /// Connects a source for `input` and returns the destination's side of
    /// it: an [`Incoming`] whose accept finds the connection already queued.
    /// An input that fits in the socket's buffer is written here at once and
    /// its sending side ended (no thread involved; what the destination sends
    /// back waits in the buffer, far below its size for such an input); a
    /// larger one goes to the source threads. Call [`finish`](Self::finish)
    /// once the driver has returned.
    pub fn start(&self, input: &[u8]) -> Incoming {
        let mut stream = UnixStream::connect_addr(&self.addr).expect("connect to the fuzz socket");
        let listener = self.listener.try_clone().expect("dup the fuzz listener");
        let mut at = 0;
        if input.len() <= DIRECT_MAX {
            stream
                .set_nonblocking(true)
                .expect("non-blocking fuzz socket");
            while at < input.len() {
                match stream.write(&input[at..]) {
                    Ok(n) if n > 0 => at += n,
                    _ => break,
                }
            }
            stream.set_nonblocking(false).expect("blocking fuzz socket");
        }
        // Only now (the socket is blocking again: the flag is shared by every
        // handle) the return-path reader gets its handle, when it is needed.
        let drain = !replies_fit(input);
        if drain {
            let rp = stream.try_clone().expect("dup the fuzz source socket");
            self.drains.send(rp).expect("fuzz return-path thread alive");
        }
        let direct = if at == input.len() {
            let _ = stream.shutdown(std::net::Shutdown::Write);
            Some(stream)
        } else {
            self.jobs
                .send((stream, input[at..].to_vec()))
                .expect("fuzz source thread alive");
            None
        };
        *self.direct.lock().expect("fuzz peer lock") = Some((direct, drain));
        // The driver removes the path after accept: an abstract socket has
        // none, and remove_file refuses a name with a NUL without touching
        // the disk.
        Incoming::Unix(listener, PathBuf::from("\0vmstate-fuzz"))
    }

    /// Waits until the source has sent the input and seen the destination
    /// hang up (the driver dropped the connection when it returned).
    pub fn finish(&self) {
        let direct = self.direct.lock().expect("fuzz peer lock").take();
        let Some((written, drained)) = direct else {
            return;
        };
        let mut waits = usize::from(drained);
        match written {
            // Written at once: closing drops what the destination sent back.
            Some(stream) => drop(stream),
            // The writer thread has it.
            None => waits += 1,
        }
        let done = self.done.lock().expect("fuzz peer lock");
        for _ in 0..waits {
            done.recv().expect("fuzz source threads alive");
        }
    }
}
