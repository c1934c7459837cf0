//! The destination driver (QEMU's incoming migration): accept, load the stream
//! while answering on the return path, and for postcopy run the guest as soon as
//! the device state is in (POSTCOPY_RUN) while the rest of the memory streams in
//! and faults are requested from the source. The outcome goes back with SHUT.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;

use super::stall::{is_timeout, IncomingPhase, PhaseCell, ReadWatch};
use super::stats::StatsHandle;
use super::status::MigrationStatus;
use super::transport::{Incoming, ReadWrite, TransportRefill};
use crate::error::{Error, ErrorKind, PostcopyError, Result, ReturnPathMissing, TimeoutError};
use crate::savevm::format::{MigCmd, RECV_BITMAP_ENDING, RESUME_ACK_VALUE};
use crate::savevm::{
    Command, CommandHandler, LoadEnd, LoadFlow, LoadOptions, PageRequester, Registry, RpMessage,
    RpSend, StreamLoader, SwitchoverApprover, TargetPage,
};
use crate::wire::{Reader, Writer};

/// Most bytes one read of the incoming stream takes from the transport (the
/// reader's buffer grows by at most this much per refill, whatever length the
/// peer claims).
///
/// Why 256 KiB and not 64: a destination loading RAM over a unix socket is
/// bound by its one loading thread, and each read costs a fixed overhead in
/// the kernel (the socket lock, the walk to the first unread skb) on top of
/// the copy. Four times fewer reads moved 1 GiB end to end about 15% faster
/// on the 2-core CI machine (interleaved demo pairs, 2026-12-04), and the
/// buffer still fits in L2, where the page copy into guest memory reads it.
///
/// ```
/// assert_eq!(vmstate_runtime::migration::INCOMING_READ_SIZE, 256 * 1024);
/// ```
pub const INCOMING_READ_SIZE: usize = 256 * 1024;

/// The destination's postcopy state (QEMU `PostcopyState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PostcopyState {
    /// No postcopy.
    #[default]
    None,
    /// POSTCOPY_ADVISE seen.
    Advise,
    /// Discards being applied.
    Discard,
    /// POSTCOPY_LISTEN seen: pages may be requested.
    Listening,
    /// POSTCOPY_RUN seen: the guest runs here.
    Running,
}

/// Gives the destination a new channel to recover a paused postcopy on.
pub type PausedHook = Box<dyn FnMut(&Error) -> Result<Incoming> + Send>;

/// What the destination VMM is told during an incoming migration (built with
/// [`IncomingHooks::new`] and its `with_*` setters).
#[derive(Default)]
#[non_exhaustive]
pub struct IncomingHooks {
    /// Called at POSTCOPY_RUN: start the guest's vCPUs (pages still arriving).
    pub on_postcopy_run: Option<Box<dyn FnMut() -> Result<()> + Send>>,
    /// The switchover-ack capability (QEMU 10.x): handlers that need to approve
    /// get a [`SwitchoverApprover`]; SWITCHOVER_ACK goes out when all did (at
    /// once when none needs to).
    pub switchover_ack: bool,
    /// Postcopy recovery: called when the connection breaks while the guest runs
    /// here (postcopy-paused) with the error; returns where the source will
    /// reconnect. Without it, a broken postcopy stream fails the migration.
    pub on_postcopy_paused: Option<PausedHook>,
}

impl std::fmt::Debug for IncomingHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingHooks")
            .field("on_postcopy_run", &self.on_postcopy_run.is_some())
            .field("switchover_ack", &self.switchover_ack)
            .field("on_postcopy_paused", &self.on_postcopy_paused.is_some())
            .finish()
    }
}

/// The destination's end of the return path, shared by the command handler and
/// the hooks that send on it (page requests, switchover approval).
struct ReturnPathOut {
    conn: Mutex<Box<dyn ReadWrite>>,
    /// What the socket's write timeout was set to, for the error.
    write_timeout: Option<Duration>,
}

type SharedRp = Arc<ReturnPathOut>;

/// The return path of a new connection, with the write timeout on its socket.
fn return_path(
    reverse: Option<Box<dyn ReadWrite>>,
    timeout: Option<Duration>,
) -> Result<Option<SharedRp>> {
    let Some(conn) = reverse else {
        return Ok(None);
    };
    let write_timeout = if conn.set_write_timeout(timeout)? {
        timeout
    } else {
        None
    };
    Ok(Some(Arc::new(ReturnPathOut {
        conn: Mutex::new(conn),
        write_timeout,
    })))
}

fn shutdown_rp(rp: Option<SharedRp>) {
    if let Some(rp) = rp {
        if let Ok(conn) = rp.conn.lock() {
            let _ = conn.shutdown();
        }
    }
}

fn send_rp(rp: &SharedRp, msg: &RpMessage) -> Result<()> {
    let mut w = Writer::new(Vec::with_capacity(32));
    msg.write(&mut w)?;
    send_rp_bytes(rp, &w.into_inner())
}

/// Writes one framed message (and whatever follows it) to the return path; a
/// write that makes no progress within the write timeout is
/// [`TimeoutError::ReturnPathWrite`].
fn send_rp_bytes(rp: &SharedRp, bytes: &[u8]) -> Result<()> {
    let mut conn = rp
        .conn
        .lock()
        .map_err(|_| Error::poisoned("return path lock poisoned"))?;
    conn.write_all(bytes)
        .and_then(|()| conn.flush())
        .map_err(|e| match rp.write_timeout {
            Some(timeout) if is_timeout(&e) => {
                Error::new(ErrorKind::TimedOut(TimeoutError::ReturnPathWrite {
                    timeout,
                }))
            }
            _ => Error::from(e),
        })
}

/// A page requester's sender writing on `rp`.
fn rp_sender(rp: SharedRp) -> RpSend {
    Box::new(move |msg: &RpMessage| send_rp(&rp, msg))
}

/// A page requester's sender while postcopy is paused: every request fails at
/// once (the accessor asks again until the recovered link takes it).
fn paused_sender() -> RpSend {
    Box::new(|_: &RpMessage| Err(no_return_path(ReturnPathMissing::NotOpen)))
}

impl IncomingCommands {
    /// Postcopy paused: the return path is gone; requests fail until
    /// [`reconnected`](Self::reconnected).
    fn paused(&mut self) {
        shutdown_rp(self.reverse.take());
        self.rp_open = false;
        if let Some(req) = &self.requester {
            req.replace_sender(paused_sender());
        }
    }

    /// Postcopy recovery: `reverse` is the new connection's return path; page
    /// requests go there from now on.
    fn reconnected(&mut self, reverse: Option<SharedRp>) {
        self.rp_open = reverse.is_some();
        if let (Some(req), Some(rp)) = (&self.requester, &reverse) {
            req.replace_sender(rp_sender(rp.clone()));
        }
        self.reverse = reverse;
    }
}

fn postcopy_err(e: PostcopyError) -> Error {
    Error::new(ErrorKind::Postcopy(e))
}

fn no_return_path(e: ReturnPathMissing) -> Error {
    Error::new(ErrorKind::NoReturnPath(e))
}

/// Answers commands on the return path and follows the postcopy sequence.
struct IncomingCommands {
    reverse: Option<SharedRp>,
    rp_open: bool,
    postcopy: PostcopyState,
    switchover_ack: bool,
    /// Our target page: what POSTCOPY_ADVISE must announce.
    target_page: TargetPage,
    stats: StatsHandle,
    /// The page requester handed to the RAM handlers at POSTCOPY_LISTEN: its
    /// link is switched when postcopy pauses and when it is recovered.
    requester: Option<PageRequester>,
}

impl IncomingCommands {
    fn rp(&self) -> Result<&SharedRp> {
        self.reverse
            .as_ref()
            .filter(|_| self.rp_open)
            .ok_or_else(|| no_return_path(ReturnPathMissing::NotOpen))
    }

    fn expect_postcopy(&self, cmd: MigCmd, allowed: &'static [PostcopyState]) -> Result<()> {
        if !allowed.contains(&self.postcopy) {
            return Err(postcopy_err(PostcopyError::BadState {
                cmd,
                state: self.postcopy,
                allowed,
            }));
        }
        Ok(())
    }
}

impl CommandHandler for IncomingCommands {
    fn command(&mut self, cmd: Command, reg: &mut Registry) -> Result<LoadFlow> {
        use PostcopyState as P;
        match cmd {
            Command::OpenReturnPath => {
                if self.reverse.is_none() {
                    return Err(no_return_path(ReturnPathMissing::OpenOnOneWay));
                }
                // A duplicate is only a warning in QEMU.
                let first = !self.rp_open;
                self.rp_open = true;
                if first && self.switchover_ack {
                    let needing: Vec<usize> = reg
                        .entries()
                        .enumerate()
                        .filter(|(_, e)| e.handlers.switchover_ack_needed())
                        .map(|(i, _)| i)
                        .collect();
                    let rp = self.rp()?.clone();
                    let approver = SwitchoverApprover::new(
                        needing.len(),
                        Box::new(move |msg: &RpMessage| send_rp(&rp, msg)),
                    )?;
                    for i in needing {
                        if let Some(e) = reg.get_mut(i) {
                            e.handlers.set_switchover_approver(approver.clone());
                        }
                    }
                }
            }
            Command::Ping(v) => {
                let rp = self
                    .rp()
                    .map_err(|_| no_return_path(ReturnPathMissing::Ping { value: v }))?;
                let sent = send_rp(rp, &RpMessage::Pong(v));
                // Once postcopy is advised, the source may already have stopped
                // its VM and be sending the package: failing the load on a
                // broken return path would leave the guest nowhere to run. The
                // load goes on; the main stream breaks too (the load fails, or
                // after RUN postcopy pauses and recovery fixes it) or it does
                // not (and the pages keep coming).
                if self.postcopy == P::None {
                    sent?;
                }
            }
            Command::SwitchoverStart => {
                for e in reg.entries_mut() {
                    e.handlers.switchover_start()?;
                }
            }
            Command::PostcopyAdvise(advise) => {
                self.expect_postcopy(MigCmd::PostcopyAdvise, &[P::None])?;
                let Some(a) = advise else {
                    return Err(postcopy_err(PostcopyError::BitmapOnly));
                };
                let ours = self.target_page.size();
                if a.target_page_size != ours || a.host_page_summary != ours {
                    return Err(postcopy_err(PostcopyError::PageSizeMismatch {
                        host: a.host_page_summary,
                        target: a.target_page_size,
                        destination: ours,
                    }));
                }
                self.postcopy = P::Advise;
            }
            Command::PostcopyRamDiscard { block, ranges } => {
                self.expect_postcopy(MigCmd::PostcopyRamDiscard, &[P::Advise, P::Discard])?;
                self.postcopy = P::Discard;
                let mut owned = false;
                for ram in reg.postcopy_rams() {
                    if ram.postcopy_discard(&block, &ranges)? {
                        owned = true;
                        break;
                    }
                }
                if !owned {
                    return Err(postcopy_err(PostcopyError::UnknownBlock {
                        cmd: MigCmd::PostcopyRamDiscard,
                        block,
                    }));
                }
            }
            Command::PostcopyListen => {
                self.expect_postcopy(MigCmd::PostcopyListen, &[P::Advise, P::Discard])?;
                let requester = PageRequester::new(rp_sender(self.rp()?.clone()));
                for ram in reg.postcopy_rams() {
                    ram.postcopy_listen(requester.clone())?;
                }
                self.requester = Some(requester);
                self.postcopy = P::Listening;
            }
            Command::PostcopyRun => {
                self.expect_postcopy(MigCmd::PostcopyRun, &[P::Listening])?;
                self.postcopy = P::Running;
                return Ok(LoadFlow::Quit);
            }
            Command::RecvBitmap(block) => {
                self.expect_postcopy(MigCmd::RecvBitmap, &[P::Running])?;
                let mut bitmap = None;
                for ram in reg.postcopy_rams() {
                    if let Some(b) = ram.postcopy_received_bitmap(&block)? {
                        bitmap = Some(b);
                        break;
                    }
                }
                let Some(mut bitmap) = bitmap else {
                    return Err(postcopy_err(PostcopyError::UnknownBlock {
                        cmd: MigCmd::RecvBitmap,
                        block,
                    }));
                };
                // The blob is a whole number of 64-bit words.
                bitmap.resize(bitmap.len().div_ceil(8) * 8, 0);
                let mut w = Writer::new(Vec::with_capacity(bitmap.len() + 300));
                RpMessage::RecvBitmap(block).write(&mut w)?;
                w.write_u64(bitmap.len() as u64)?;
                w.write_bytes(&bitmap)?;
                w.write_u64(RECV_BITMAP_ENDING)?;
                send_rp_bytes(self.rp()?, &w.into_inner())?;
            }
            Command::PostcopyResume => {
                self.expect_postcopy(MigCmd::PostcopyResume, &[P::Running])?;
                send_rp(self.rp()?, &RpMessage::ResumeAck(RESUME_ACK_VALUE))?;
                self.stats
                    .update(|s| s.status = MigrationStatus::PostcopyActive);
            }
            other => {
                return Err(Error::new(ErrorKind::UnsupportedCommand {
                    cmd: other.cmd(),
                }));
            }
        }
        Ok(LoadFlow::Continue)
    }
}

/// Runs an incoming migration to the end: waits for the source, loads every
/// section into `reg`, and tells the source the outcome (SHUT) when a return path
/// is open. Statistics (status setup → active → completed/failed, or cancelled
/// by the cancel token) go to `stats`.
///
/// `opts` bounds every wait on the peer: [`LoadOptions::accept_timeout`],
/// [`idle_timeout`](LoadOptions::idle_timeout) and
/// [`write_timeout`](LoadOptions::write_timeout) end in
/// [`ErrorKind::TimedOut`], and [`LoadOptions::cancel`] ends any wait (accept,
/// a read, postcopy-paused) in [`ErrorKind::Cancelled`] within about
/// [`POLL_INTERVAL`](super::POLL_INTERVAL). After EOF the vmdesc trailer is read
/// as [`LoadOptions::vmdesc`] says. The timeouts act on tcp and unix sockets;
/// `exec:` pipes have no read timeout (a cancel or idle check there waits for
/// the next read to return) and files never block.
pub fn run_incoming(
    incoming: Incoming,
    reg: &mut Registry,
    opts: LoadOptions,
    stats: &StatsHandle,
) -> Result<()> {
    run_incoming_with(incoming, reg, opts, stats, IncomingHooks::default())
}

/// [`run_incoming`] with hooks for the VMM (postcopy: start the guest at RUN).
pub fn run_incoming_with(
    incoming: Incoming,
    reg: &mut Registry,
    opts: LoadOptions,
    stats: &StatsHandle,
    mut hooks: IncomingHooks,
) -> Result<()> {
    let _span = tracing::info_span!("migration", side = "destination").entered();
    let result = run_incoming_inner(incoming, reg, opts, stats, &mut hooks);
    if let Err(e) = &result {
        tracing::warn!(error = %e, "incoming migration failed");
    }
    result
}

fn run_incoming_inner(
    incoming: Incoming,
    reg: &mut Registry,
    opts: LoadOptions,
    stats: &StatsHandle,
    hooks: &mut IncomingHooks,
) -> Result<()> {
    stats.update(|s| s.status = MigrationStatus::Setup);
    let accepted = tracing::info_span!("accept", incoming = ?incoming)
        .in_scope(|| incoming.accept_within(opts.accept_timeout, opts.cancel.as_ref()));
    let conn = match accepted {
        Ok(conn) => conn,
        Err(e) => {
            let failed = Err(e);
            record_outcome(stats, &failed, 0);
            return failed;
        }
    };
    let phase: PhaseCell = Arc::new(Mutex::new(IncomingPhase::Header));
    let watch = ReadWatch {
        idle: opts.idle_timeout,
        cancel: opts.cancel.clone(),
        phase: phase.clone(),
    };
    let set_phase = |p| {
        if let Ok(mut cell) = phase.lock() {
            *cell = p;
        }
    };
    let write_timeout = opts.write_timeout;
    let cancel = opts.cancel.clone();
    let mut cmds = IncomingCommands {
        reverse: return_path(conn.reverse, write_timeout)?,
        rp_open: false,
        postcopy: PostcopyState::None,
        switchover_ack: hooks.switchover_ack,
        target_page: opts.target_page(),
        stats: stats.clone(),
        requester: None,
    };
    let mut r = Reader::with_refill(
        BytesMut::with_capacity(INCOMING_READ_SIZE),
        0,
        Box::new(TransportRefill::watched(
            conn.stream,
            INCOMING_READ_SIZE,
            watch.clone(),
        )?),
    );
    stats.update(|s| s.status = MigrationStatus::Active);
    let mut loader = StreamLoader::new(opts);
    let result = (|| -> Result<()> {
        tracing::info_span!("header").in_scope(|| {
            let header = loader.load_header(&mut r);
            header.inspect_err(|e| tracing::warn!(error = %e, "load failed in the header"))
        })?;
        set_phase(IncomingPhase::Main);
        StreamLoader::load_setup_all(reg)?;
        let main = tracing::info_span!("main").entered();
        let outcome = (|| -> Result<()> {
            if loader.load_main(&mut r, reg, &mut cmds)? == LoadEnd::Quit {
                // POSTCOPY_RUN: the guest starts here; the rest of the stream (RAM
                // pages, the END sections, EOF) keeps coming on this thread.
                set_phase(IncomingPhase::PostcopyActive);
                drop(main);
                let _postcopy = tracing::info_span!("postcopy").entered();
                stats.update(|s| s.status = MigrationStatus::PostcopyActive);
                if let Some(run) = hooks.on_postcopy_run.as_mut() {
                    run()?;
                }
                loop {
                    match loader.load_main(&mut r, reg, &mut cmds) {
                        Ok(LoadEnd::Eof) => break,
                        Ok(LoadEnd::Quit) => return Err(postcopy_err(PostcopyError::RunTwice)),
                        // A cancel ends the migration; it does not pause it.
                        Err(e) if matches!(e.kind(), ErrorKind::Cancelled { .. }) => return Err(e),
                        Err(e) => {
                            // The guest runs here already: pause and wait for the
                            // source to reconnect (postcopy recovery), if the VMM
                            // can provide a new channel. A silent source (idle
                            // timeout) is a broken connection too.
                            let Some(paused) = hooks.on_postcopy_paused.as_mut() else {
                                return Err(e);
                            };
                            let msg = e.to_string();
                            tracing::warn!(error = %msg, "postcopy paused: waiting for the source");
                            stats.update(|s| {
                                s.status = MigrationStatus::PostcopyPaused;
                                s.error = Some(msg);
                            });
                            cmds.paused();
                            // Waiting in postcopy-paused has no timeout: giving up
                            // would lose the guest. Only a cancel ends it.
                            let conn =
                                paused(&e)?
                                    .accept_within(None, cancel.as_ref())
                                    .map_err(|e| match e.kind() {
                                        ErrorKind::Cancelled { .. } => {
                                            Error::new(ErrorKind::Cancelled {
                                                in_postcopy_pause: true,
                                            })
                                        }
                                        _ => e,
                                    })?;
                            stats.update(|s| s.status = MigrationStatus::PostcopyRecover);
                            let base = r.position();
                            r = Reader::with_refill(
                                BytesMut::with_capacity(INCOMING_READ_SIZE),
                                base,
                                Box::new(TransportRefill::watched(
                                    conn.stream,
                                    INCOMING_READ_SIZE,
                                    watch.clone(),
                                )?),
                            );
                            // The recovery channel always carries a return path.
                            cmds.reconnected(return_path(conn.reverse, write_timeout)?);
                        }
                    }
                }
            } else {
                drop(main);
                set_phase(IncomingPhase::VmDesc);
                tracing::info_span!("vmdesc").in_scope(|| loader.load_trailer(&mut r))?;
            }
            Ok(())
        })();
        let cleanup = StreamLoader::load_cleanup_all(reg);
        outcome.and(cleanup)
    })();
    let transferred = r.position();
    if let (true, Some(rp)) = (cmds.rp_open, cmds.reverse.as_ref()) {
        let _ = send_rp(
            rp,
            &RpMessage::Shut {
                error: result.is_err(),
            },
        );
    }
    shutdown_rp(cmds.reverse.take());
    record_outcome(stats, &result, transferred);
    result
}

/// The end of an incoming migration in the statistics: completed, cancelled
/// (by the [`CancelToken`](super::CancelToken)), or failed with the error.
fn record_outcome(stats: &StatsHandle, result: &Result<()>, transferred: u64) {
    let (status, error) = match result {
        Ok(()) => (MigrationStatus::Completed, None),
        Err(e) if matches!(e.kind(), ErrorKind::Cancelled { .. }) => {
            (MigrationStatus::Cancelled, Some(e.to_string()))
        }
        Err(e) => (MigrationStatus::Failed, Some(e.to_string())),
    };
    stats.update(|s| {
        s.status = status;
        s.transferred = transferred;
        if error.is_some() {
            s.error = error;
        }
    });
}
