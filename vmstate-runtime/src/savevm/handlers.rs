//! `SaveVmHandlers`: what a migratable component implements (QEMU's
//! `SaveVMHandlers`, include/migration/register.h), with an adapter for
//! `VmState` devices.

use std::sync::{Arc, Mutex};

use bytes::BytesMut;

use super::postcopy_ram::PostcopyRam;
use super::ram_stats::RamStats;
use super::return_path::RpMessage;
use super::section_buf::SectionBuf;
use crate::error::{Error, ErrorKind, Result};
use crate::vmstate::{DescribeSink, VmState, VmStateDescription};
use crate::wire::{Reader, Writer};

/// What the stream writer hands a handler to write a section body into: a
/// growable buffer the writer hands to the transport in large vectored writes;
/// guest pages held as `Bytes` can go in without a copy
/// ([`put_shared`](Writer::put_shared)).
pub type SectionWriter = Writer<SectionBuf>;
/// What the loader hands a handler to read a section body from (refilled from the
/// transport as needed).
pub type SectionReader = Reader<BytesMut>;

/// How a [`PageRequester`](super::PageRequester) or a [`SwitchoverApprover`]
/// puts a message on the return path.
pub type RpSend = Box<dyn FnMut(&RpMessage) -> Result<()> + Send>;

/// Outcome of one `save_live_iterate` round (QEMU: >0 done, 0 not done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IterateStatus {
    /// More data remains; call again.
    Continue,
    /// This stage is finished (a full pass found nothing left).
    Done,
}

/// Data a handler still has to send (QEMU `state_pending_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pending {
    /// Bytes that must be sent before switchover.
    pub must_precopy: u64,
    /// Bytes that may be sent after switchover, in postcopy.
    pub can_postcopy: u64,
}

impl Pending {
    /// Total bytes.
    pub fn total(&self) -> u64 {
        self.must_precopy + self.can_postcopy
    }
}

impl std::ops::AddAssign for Pending {
    fn add_assign(&mut self, o: Pending) {
        self.must_precopy += o.must_precopy;
        self.can_postcopy += o.can_postcopy;
    }
}

/// The handlers of one registered component: every handler QEMU has (7.2 and
/// 10.x), each with a default body. Which *kind* of section the component writes
/// is declared by [`is_iterative`](Self::is_iterative) (START/PART/END sections,
/// like RAM) and [`has_full_section`](Self::has_full_section) (one FULL section at
/// switchover, like every device), because in QEMU that is decided by which
/// function pointers are set.
///
/// All errors are `Result`s carrying context; there are no sentinel integers.
pub trait SaveVmHandlers: Send {
    /// Writes START/PART/END sections (QEMU: `save_setup` is set).
    fn is_iterative(&self) -> bool {
        false
    }

    /// Writes a FULL section in the non-iterable pass (QEMU: a vmsd or `save_state`).
    fn has_full_section(&self) -> bool {
        false
    }

    /// The VMState description of the FULL section body, for the vmdesc trailer.
    /// `None` for old-style `save_state` bodies (described as one opaque buffer).
    fn description(&self) -> Option<&'static VmStateDescription> {
        None
    }

    /// Section-level `needed`: when false the FULL section is left out entirely.
    fn full_section_needed(&self) -> bool {
        true
    }

    /// Gate for setup, iterate, pending, complete, load_setup and resume.
    fn is_active(&self) -> bool {
        true
    }

    /// Extra gate for the iterate phase only.
    fn is_active_iterate(&self) -> bool {
        true
    }

    /// Can keep sending after postcopy starts.
    fn has_postcopy(&self) -> bool {
        false
    }

    /// Before setup: capability checks (QEMU 10.x `save_prepare`).
    fn save_prepare(&mut self) -> Result<()> {
        Ok(())
    }

    /// The START section body.
    fn save_setup(&mut self, _w: &mut SectionWriter) -> Result<()> {
        Ok(())
    }

    /// One PART section body.
    fn save_live_iterate(&mut self, _w: &mut SectionWriter) -> Result<IterateStatus> {
        Ok(IterateStatus::Done)
    }

    /// Cheap estimate of what is left.
    fn state_pending_estimate(&mut self) -> Pending {
        Pending::default()
    }

    /// Exact figure of what is left (may synchronise dirty logs).
    fn state_pending_exact(&mut self) -> Pending {
        self.state_pending_estimate()
    }

    /// The END section body at stop-and-copy.
    fn save_live_complete_precopy(&mut self, _w: &mut SectionWriter) -> Result<()> {
        Ok(())
    }

    /// The END section body at stop-and-copy, written in pieces: the stream
    /// writer calls this (`first` on the first call) until it returns false,
    /// and hands each piece to the transport before asking for the next, so a
    /// long body (all of guest RAM, when the downtime limit lets it go in one
    /// stop-and-copy pass) never sits in memory whole. The bytes are those of
    /// one body: only where the writer flushes changes. The default writes
    /// [`save_live_complete_precopy`](Self::save_live_complete_precopy) in one
    /// piece.
    fn save_live_complete_precopy_piece(
        &mut self,
        w: &mut SectionWriter,
        first: bool,
    ) -> Result<bool> {
        let _ = first;
        self.save_live_complete_precopy(w)?;
        Ok(false)
    }

    /// The END section body when postcopy completes.
    fn save_live_complete_postcopy(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.save_live_complete_precopy(w)
    }

    /// A PART body written right before the postcopy switchover (QEMU 10.x);
    /// return false to write nothing.
    fn save_postcopy_prepare(&mut self, _w: &mut SectionWriter) -> Result<bool> {
        Ok(false)
    }

    /// Source, multifd device state (QEMU 10.x `save_complete_precopy_thread`,
    /// used by vfio to stream state on side channels at switchover). This runtime
    /// migrates over one channel, so it is never called; provided for handler
    /// parity with QEMU.
    fn save_complete_precopy_thread(&mut self) -> Result<()> {
        Ok(())
    }

    /// Destination, multifd device state (QEMU 10.x `load_state_buffer`): a
    /// buffer that arrived on a side channel. Refused by default: this runtime
    /// has no side channels.
    fn load_state_buffer(&mut self, buf: &[u8]) -> Result<()> {
        Err(Error::new(ErrorKind::MultifdUnsupported { len: buf.len() }))
    }

    /// End of an outgoing migration, successful or not (always called).
    fn save_cleanup(&mut self) {}

    /// The FULL section body.
    fn save_state(&mut self, _w: &mut SectionWriter) -> Result<()> {
        Ok(())
    }

    /// The FULL section body, reporting its layout to `sink` (for the vmdesc
    /// trailer). The default reports nothing.
    fn save_state_described(
        &mut self,
        w: &mut SectionWriter,
        _sink: &mut dyn DescribeSink,
    ) -> Result<()> {
        self.save_state(w)
    }

    /// Destination, before any section is read.
    fn load_setup(&mut self) -> Result<()> {
        Ok(())
    }

    /// Reads one START/PART/END/FULL body written at `version_id`.
    fn load_state(&mut self, r: &mut SectionReader, version_id: u32) -> Result<()>;

    /// Destination, after the load finished or failed (always called).
    fn load_cleanup(&mut self) -> Result<()> {
        Ok(())
    }

    /// Postcopy recovery: prepare to resume.
    fn resume_prepare(&mut self) -> Result<()> {
        Ok(())
    }

    /// Destination: whether this handler must approve the switchover first.
    fn switchover_ack_needed(&self) -> bool {
        false
    }

    /// Destination, with switchover-ack: the handle to call once this handler
    /// (which said [`switchover_ack_needed`](Self::switchover_ack_needed)) is
    /// ready for the source to switch over.
    fn set_switchover_approver(&mut self, _approver: SwitchoverApprover) {}

    /// Destination: MIG_CMD_SWITCHOVER_START arrived.
    fn switchover_start(&mut self) -> Result<()> {
        Ok(())
    }

    /// The postcopy-capable RAM interface of this handler, when it migrates
    /// guest RAM with postcopy (discards, page requests, received bitmaps);
    /// `None` (the default) for every other handler. The drivers reach the
    /// RAM-only hooks through this, so `SaveVmHandlers` keeps to what QEMU's
    /// `SaveVMHandlers` has. The source calls them only on handlers whose
    /// [`has_postcopy`](Self::has_postcopy) is true; the destination on every
    /// handler that offers the interface (it finds a block's owner by name).
    fn as_postcopy_ram(&mut self) -> Option<&mut dyn PostcopyRam> {
        None
    }

    /// The RAM counters of this handler (QMP `query-migrate`'s "ram"), when it
    /// migrates guest RAM; `None` (the default) for every other handler. The
    /// source driver reads them at each statistics update, so a handler keeps
    /// them current as it saves.
    fn ram_stats(&self) -> Option<RamStats> {
        None
    }
}

/// Registers a `VmState` device as a non-iterative FULL section (QEMU's
/// `vmstate_register`). The device stays shared with the VMM through the mutex.
pub struct VmStateHandler<T> {
    device: Arc<Mutex<T>>,
}

impl<T> VmStateHandler<T> {
    /// Wraps a shared device.
    pub fn new(device: Arc<Mutex<T>>) -> Self {
        VmStateHandler { device }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, T>> {
        self.device
            .lock()
            .map_err(|_| Error::poisoned("device mutex poisoned by a panicking thread"))
    }
}

impl<T: VmState + Send> SaveVmHandlers for VmStateHandler<T> {
    fn has_full_section(&self) -> bool {
        true
    }

    fn description(&self) -> Option<&'static VmStateDescription> {
        Some(T::DESCRIPTION)
    }

    fn save_state(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.lock()?.save(w)
    }

    fn save_state_described(
        &mut self,
        w: &mut SectionWriter,
        sink: &mut dyn DescribeSink,
    ) -> Result<()> {
        self.lock()?.save_described(w, sink)
    }

    fn load_state(&mut self, r: &mut SectionReader, version_id: u32) -> Result<()> {
        self.lock()?.load(r, version_id)
    }
}

/// Lets destination handlers approve the switchover (QEMU
/// `qemu_loadvm_approve_switchover`): when the last one approves, the return path
/// carries SWITCHOVER_ACK.
#[derive(Clone)]
pub struct SwitchoverApprover {
    inner: Arc<Mutex<ApproverState>>,
}

struct ApproverState {
    outstanding: usize,
    send: RpSend,
}

impl std::fmt::Debug for SwitchoverApprover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchoverApprover").finish_non_exhaustive()
    }
}

impl SwitchoverApprover {
    /// An approver waiting for `outstanding` approvals; sends the ACK with `send`
    /// (immediately when `outstanding` is 0).
    pub fn new(outstanding: usize, mut send: RpSend) -> Result<Self> {
        if outstanding == 0 {
            send(&RpMessage::SwitchoverAck)?;
        }
        Ok(SwitchoverApprover {
            inner: Arc::new(Mutex::new(ApproverState { outstanding, send })),
        })
    }

    /// One handler is ready. The last approval sends SWITCHOVER_ACK; extra
    /// approvals are an error.
    pub fn approve(&self) -> Result<()> {
        let mut s = self
            .inner
            .lock()
            .map_err(|_| Error::poisoned("switchover approver poisoned"))?;
        if s.outstanding == 0 {
            return Err(Error::new(ErrorKind::ExtraSwitchoverApproval));
        }
        s.outstanding -= 1;
        if s.outstanding == 0 {
            (s.send)(&RpMessage::SwitchoverAck)?;
        }
        Ok(())
    }

    /// Approvals still missing.
    pub fn outstanding(&self) -> usize {
        self.inner.lock().map(|s| s.outstanding).unwrap_or(0)
    }
}
