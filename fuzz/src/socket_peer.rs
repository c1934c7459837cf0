//! The socket and the source thread that target `stream_socket` reuses for
//! every input: one listening unix socket in the abstract namespace (no file
//! to create or remove) and one long-lived thread playing the source. Per
//! input only a connection is made: the fuzzer's thread connects (the
//! listener's backlog holds it, so the driver's accept returns at once), hands
//! the connected end and the input to the source thread, and runs the real
//! destination driver on a duplicate of the listener. Setting up a listener, a
//! path and two threads per input cost most of the time before (a few hundred
//! executions per second); this way it is the driver's own work.

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
    /// One message from the writer (input sent) and one from the reader
    /// (destination hung up) per input.
    done: Mutex<Receiver<()>>,
}

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
        // The writer: the whole input, then EOF. A write fails (EPIPE) when the
        // destination gave up early; SIGPIPE is ignored (`ignore_sigpipe`).
        std::thread::Builder::new()
            .name("fuzz-source".into())
            .spawn(move || {
                for (mut stream, input) in queue {
                    match stream.try_clone() {
                        Ok(rp) => {
                            if drains.send(rp).is_err() {
                                return;
                            }
                        }
                        // No reader this time: count its part as done.
                        Err(_) => {
                            let _ = finished.send(());
                        }
                    }
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
        // socket buffer while the writer is blocked too.
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
            done: Mutex::new(done),
        })
    }

    /// Connects a source for `input` and returns the destination's side of
    /// it: an [`Incoming`] whose accept finds the connection already queued.
    /// Call [`finish`](Self::finish) once the driver has returned.
    pub fn start(&self, input: &[u8]) -> Incoming {
        let stream = UnixStream::connect_addr(&self.addr).expect("connect to the fuzz socket");
        let listener = self.listener.try_clone().expect("dup the fuzz listener");
        self.jobs
            .send((stream, input.to_vec()))
            .expect("fuzz source thread alive");
        // The driver removes the path after accept: an abstract socket has
        // none, and remove_file refuses a name with a NUL without touching
        // the disk.
        Incoming::Unix(listener, PathBuf::from("\0vmstate-fuzz"))
    }

    /// Waits until the source has sent the input and seen the destination
    /// hang up (the driver dropped the connection when it returned).
    pub fn finish(&self) {
        let done = self.done.lock().expect("fuzz peer lock");
        for _ in 0..2 {
            done.recv().expect("fuzz source threads alive");
        }
    }
}
