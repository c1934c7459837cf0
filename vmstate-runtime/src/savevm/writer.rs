//! The source side of the stream: header, configuration, commands, and the
//! section passes over the registry (QEMU's `qemu_savevm_state_*`).
//!
//! Bytes accumulate in one buffer and go to the sink in large writes at section
//! boundaries (no syscall per field); [`StreamWriter::flush`] pushes them out.

use std::io::Write;

use super::command::Command;
use super::config::Configuration;
use super::format::{QemuVersion, RecordType, FILE_MAGIC, FILE_VERSION};
use super::handlers::{IterateStatus, Pending, SaveVmHandlers, SectionWriter};
use super::page::TargetPage;
use super::registry::{Registry, SaveStateEntry};
use super::section_buf::SectionBuf;
use super::vmdesc::VmDescBuilder;
use crate::error::{Error, ErrorKind, Result};
use crate::vmstate::{DescribeRecorder, VmState};
use crate::wire::Writer;

/// Buffered bytes above which a section boundary triggers a write to the sink.
const FLUSH_THRESHOLD: usize = 256 * 1024;

/// Writes a savevm stream to `W`.
pub struct StreamWriter<W: Write> {
    sink: W,
    out: SectionWriter,
    /// Bytes already handed to the sink.
    flushed: u64,
    version: QemuVersion,
    vmdesc: Option<VmDescBuilder>,
    /// Where guest memory segments are copied out for a plain `Write` sink
    /// (allocated once, reused by every flush).
    bounce: Vec<u8>,
    /// The zero-copy sender of a socket transport (a migration's outgoing
    /// stream): flushes holding guest memory go through it.
    #[cfg(target_os = "linux")]
    splicer: Option<crate::migration::Splicer>,
}

impl<W: Write> std::fmt::Debug for StreamWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("position", &self.position())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[cfg(target_os = "linux")]
impl StreamWriter<std::os::unix::net::UnixStream> {
    /// A writer onto a connected unix socket, set up as a migration over
    /// `unix:` sets up its stream: a 4 MiB send buffer, and with `zero_copy`
    /// the guest memory segments ([`SectionBuf::put_memory`]) handed to the
    /// kernel by reference (`vmsplice(2)`, `splice(2)`) instead of copied.
    /// For a VMM that writes a stream over a socket of its own, and for the
    /// benchmarks that compare the two paths.
    ///
    /// With `zero_copy`, the bytes of a guest page are read when the reader
    /// reads them: do not let the guest (or anything) write the memory a
    /// stream is meant to capture until the reader has it all.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::os::unix::net::UnixStream;
    /// use vmstate_runtime::savevm::{QemuVersion, StreamWriter};
    ///
    /// let (a, mut b) = UnixStream::pair().unwrap();
    /// let mut w = StreamWriter::to_unix_socket(a, QemuVersion::V7_2, true).unwrap();
    /// w.write_header().unwrap();
    /// drop(w.into_inner().unwrap());
    /// let mut got = Vec::new();
    /// b.read_to_end(&mut got).unwrap();
    /// assert_eq!(&got[..4], b"QEVM");
    /// ```
    pub fn to_unix_socket(
        socket: std::os::unix::net::UnixStream,
        version: QemuVersion,
        zero_copy: bool,
    ) -> Result<Self> {
        use std::os::fd::AsFd;
        crate::migration::enlarge_send_buffer(socket.as_fd());
        let splicer = if zero_copy {
            Some(crate::migration::Splicer::new(socket.as_fd(), None)?)
        } else {
            None
        };
        let mut w = StreamWriter::new(socket, version);
        w.set_splicer(splicer);
        Ok(w)
    }
}

impl<W: Write> StreamWriter<W> {
    /// A writer for the given QEMU version's stream dialect, producing the vmdesc
    /// trailer (QEMU's default `suppress-vmdesc=off`).
    pub fn new(sink: W, version: QemuVersion) -> Self {
        StreamWriter {
            sink,
            out: Writer::new(SectionBuf::with_capacity(64 * 1024)),
            flushed: 0,
            version,
            vmdesc: Some(VmDescBuilder::new(version)),
            bounce: Vec::new(),
            #[cfg(target_os = "linux")]
            splicer: None,
        }
    }

    /// Sends guest memory segments through `splicer` (which writes to the
    /// same connection as the sink) instead of copying them into the sink.
    #[cfg(target_os = "linux")]
    pub(crate) fn set_splicer(&mut self, splicer: Option<crate::migration::Splicer>) {
        self.splicer = splicer;
    }

    /// After a [`flush`](Self::flush): waits until the destination has taken
    /// every byte, where guest memory went out by `splice(2)` (those pages
    /// are read from guest memory when the destination reads them, so the
    /// source must not report completion before). Returns at once for any
    /// other sink. `Ok(false)`: `cancelled()` became true first.
    pub(crate) fn wait_delivered(&mut self, cancelled: &dyn Fn() -> bool) -> Result<bool> {
        #[cfg(target_os = "linux")]
        if let Some(s) = &self.splicer {
            return Ok(s.wait_delivered(cancelled)?);
        }
        let _ = cancelled;
        Ok(true)
    }

    fn write_buf(&mut self, buf: &SectionBuf) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(s) = self.splicer.as_mut().filter(|_| buf.has_memory()) {
            return s.write_buf(buf);
        }
        buf.write_to_with(&mut self.sink, &mut self.bounce)
    }

    /// The target page the vmdesc trailer reports (x86's 4 KiB unless set here
    /// or by [`write_configuration`](Self::write_configuration)).
    pub fn set_target_page(&mut self, page: TargetPage) {
        if let Some(v) = &mut self.vmdesc {
            v.set_target_page(page);
        }
    }

    /// Leaves out the vmdesc trailer (QEMU `suppress-vmdesc=on`, and postcopy).
    pub fn suppress_vmdesc(&mut self) {
        self.vmdesc = None;
    }

    /// The QEMU dialect being written.
    pub fn version(&self) -> QemuVersion {
        self.version
    }

    /// Stream offset of the next byte.
    pub fn position(&self) -> u64 {
        self.out.position()
    }

    /// Bytes written so far that are still buffered.
    pub fn buffered(&self) -> usize {
        self.out.get_ref().len()
    }

    /// Hands buffered bytes (copied runs and shared segments, in one vectored
    /// write sequence) to the sink.
    pub fn flush(&mut self) -> Result<()> {
        if !self.out.get_ref().is_empty() {
            // Re-base the buffer's writer so positions keep counting from the
            // start of the stream after the buffer is emptied (its capacity stays).
            let base = self.out.position();
            let mut buf = std::mem::take(&mut self.out).into_inner();
            let written = self.write_buf(&buf);
            self.flushed += buf.len() as u64;
            buf.clear();
            self.out = Writer::with_base_offset(buf, base);
            written?;
        }
        self.sink.flush()?;
        Ok(())
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.buffered() >= FLUSH_THRESHOLD {
            self.flush()?;
        }
        Ok(())
    }

    /// The sink (after flushing).
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        Ok(self.sink)
    }

    /// Direct access to the buffer (for the RAM handler's page streams).
    pub fn buffer(&mut self) -> &mut SectionWriter {
        &mut self.out
    }

    /// `QEVM`, version 3.
    pub fn write_header(&mut self) -> Result<()> {
        self.out.write_u32(FILE_MAGIC)?;
        self.out.write_u32(FILE_VERSION)
    }

    /// The configuration record (0x07 + body, no section header).
    pub fn write_configuration(&mut self, config: &Configuration) -> Result<()> {
        self.out.write_u8(RecordType::Configuration as u8)?;
        config
            .save(&mut self.out)
            .map_err(|e| e.in_section("configuration"))?;
        if let Some(v) = &mut self.vmdesc {
            v.set_configuration(config)?;
        }
        Ok(())
    }

    /// A command record.
    pub fn write_command(&mut self, cmd: &Command) -> Result<()> {
        if !self.version.has_command(cmd.cmd()) {
            return Err(Error::new(ErrorKind::CommandNotInVersion {
                cmd: cmd.cmd(),
                version: self.version,
            }));
        }
        cmd.write(&mut self.out)
    }

    /// A nested package (MIG_CMD_PACKAGED + its bytes).
    pub fn write_packaged(&mut self, package: &[u8]) -> Result<()> {
        let len = u32::try_from(package.len())
            .map_err(|_| Error::new(ErrorKind::RecordTooLarge { what: "package" }))?;
        self.write_command(&Command::Packaged(len))?;
        self.out.write_bytes(package)
    }

    fn full_header(&mut self, ty: RecordType, e: &SaveStateEntry) -> Result<()> {
        self.out.write_u8(ty as u8)?;
        self.out.write_u32(e.section_id)?;
        self.out.write_counted_bytes(e.idstr.as_bytes())?;
        self.out.write_u32(e.instance_id)?;
        self.out.write_u32(e.version_id)
    }

    fn short_header(&mut self, ty: RecordType, e: &SaveStateEntry) -> Result<()> {
        self.out.write_u8(ty as u8)?;
        self.out.write_u32(e.section_id)
    }

    fn footer(&mut self, e: &SaveStateEntry) -> Result<()> {
        self.out.write_u8(RecordType::SectionFooter as u8)?;
        self.out.write_u32(e.section_id)
    }

    /// One section of `e`: its header for `ty`, the body `body` writes, the footer.
    /// A handler's error names the section.
    fn section<T>(
        &mut self,
        ty: RecordType,
        e: &mut SaveStateEntry,
        body: impl FnOnce(&mut dyn SaveVmHandlers, &mut SectionWriter) -> Result<T>,
    ) -> Result<T> {
        let _span =
            tracing::trace_span!("section", idstr = %e.idstr, instance = e.instance_id, ty = ?ty)
                .entered();
        if ty.has_full_header() {
            self.full_header(ty, e)?;
        } else {
            self.short_header(ty, e)?;
        }
        let out = body(e.handlers.as_mut(), &mut self.out).map_err(|err| section_err(err, e))?;
        self.footer(e)?;
        Ok(out)
    }

    /// Setup pass: a START section for every active iterative entry.
    pub fn setup(&mut self, reg: &mut Registry) -> Result<()> {
        for e in reg.entries_mut() {
            if !e.handlers.is_iterative() || !e.handlers.is_active() {
                continue;
            }
            e.handlers
                .save_prepare()
                .map_err(|err| section_err(err, e))?;
        }
        for e in reg.entries_mut() {
            if !e.handlers.is_iterative() || !e.handlers.is_active() {
                continue;
            }
            self.section(RecordType::SectionStart, e, |h, w| h.save_setup(w))?;
            self.maybe_flush()?;
        }
        Ok(())
    }

    /// One iteration round: PART sections. `postcopy` restricts it to entries
    /// that can continue in postcopy. Returns `Done` when every handler is done.
    ///
    /// QEMU 7.2 stops the round at the first handler that is not done (handlers
    /// take turns); 10.x calls every handler each round. `rate_limited` is checked
    /// before each handler; when it says stop, the round ends early.
    pub fn iterate(
        &mut self,
        reg: &mut Registry,
        postcopy: bool,
        rate_limited: &mut dyn FnMut(u64) -> bool,
    ) -> Result<IterateStatus> {
        self.iterate_within(reg, postcopy, None, rate_limited)
    }

    /// [`iterate`](Self::iterate) with a byte budget for the round (`None`:
    /// unlimited): the handlers see what is left of it
    /// ([`SectionWriter::remaining_budget`]), so one that splits its work stops
    /// its PART when the budget is spent, and a rate limit holds inside a
    /// section (QEMU's RAM checks the rate limit after every page). The budget
    /// ends with the round.
    pub fn iterate_within(
        &mut self,
        reg: &mut Registry,
        postcopy: bool,
        budget: Option<u64>,
        rate_limited: &mut dyn FnMut(u64) -> bool,
    ) -> Result<IterateStatus> {
        self.out.set_budget(budget);
        let status = self.iterate_round(reg, postcopy, rate_limited);
        self.out.set_budget(None);
        status
    }

    fn iterate_round(
        &mut self,
        reg: &mut Registry,
        postcopy: bool,
        rate_limited: &mut dyn FnMut(u64) -> bool,
    ) -> Result<IterateStatus> {
        let mut all_done = true;
        for e in reg.entries_mut() {
            let h = &e.handlers;
            if !h.is_iterative() || !h.is_active() || !h.is_active_iterate() {
                continue;
            }
            if postcopy && !h.has_postcopy() {
                continue;
            }
            if rate_limited(self.position()) {
                return Ok(IterateStatus::Continue);
            }
            let status = self.section(RecordType::SectionPart, e, |h, w| h.save_live_iterate(w))?;
            self.maybe_flush()?;
            if status == IterateStatus::Continue {
                all_done = false;
                if self.version == QemuVersion::V7_2 {
                    break;
                }
            }
        }
        Ok(if all_done {
            IterateStatus::Done
        } else {
            IterateStatus::Continue
        })
    }

    /// Sum of what active iterative handlers still have to send.
    pub fn pending(reg: &mut Registry, exact: bool) -> Pending {
        let mut p = Pending::default();
        for e in reg.entries_mut() {
            if !e.handlers.is_iterative() || !e.handlers.is_active() {
                continue;
            }
            p += if exact {
                e.handlers.state_pending_exact()
            } else {
                e.handlers.state_pending_estimate()
            };
        }
        p
    }

    /// A PART written right before the postcopy switchover (QEMU 10.x
    /// `save_postcopy_prepare`).
    pub fn postcopy_prepare(&mut self, reg: &mut Registry) -> Result<()> {
        for e in reg.entries_mut() {
            if !e.handlers.is_iterative() || !e.handlers.is_active() {
                continue;
            }
            let start = self.out.get_ref().len();
            self.short_header(RecordType::SectionPart, e)?;
            let wrote = e
                .handlers
                .save_postcopy_prepare(&mut self.out)
                .map_err(|err| section_err(err, e))?;
            if wrote {
                self.footer(e)?;
            } else {
                self.out.get_mut().truncate(start);
            }
        }
        Ok(())
    }

    /// The END pass at stop-and-copy: END sections of active iterative entries
    /// (in postcopy, only those that cannot continue in postcopy).
    pub fn complete_iterables(&mut self, reg: &mut Registry, in_postcopy: bool) -> Result<()> {
        for e in reg.entries_mut() {
            let h = &e.handlers;
            if !h.is_iterative() || !h.is_active() || (in_postcopy && h.has_postcopy()) {
                continue;
            }
            self.end_in_pieces(e)?;
            self.maybe_flush()?;
        }
        Ok(())
    }

    /// One END section whose body the handler writes in pieces, each handed
    /// to the sink before the next is asked for (bounded memory for a body
    /// as long as guest RAM; the bytes are the same as in one piece).
    fn end_in_pieces(&mut self, e: &mut SaveStateEntry) -> Result<()> {
        self.short_header(RecordType::SectionEnd, e)?;
        let mut first = true;
        while e
            .handlers
            .save_live_complete_precopy_piece(&mut self.out, first)
            .map_err(|err| section_err(err, e))?
        {
            first = false;
            self.flush()?;
        }
        self.footer(e)
    }

    /// The non-iterable pass: a FULL section for every entry that has one and
    /// whose section-level `needed` holds. Records them for the vmdesc trailer.
    pub fn full_sections(&mut self, reg: &mut Registry) -> Result<()> {
        for e in reg.entries_mut() {
            if !e.handlers.has_full_section() || !e.handlers.full_section_needed() {
                continue;
            }
            self.full_header(RecordType::SectionFull, e)?;
            let body_start = self.position();
            match &mut self.vmdesc {
                Some(vmdesc) => {
                    let mut rec = DescribeRecorder::new();
                    e.handlers
                        .save_state_described(&mut self.out, &mut rec)
                        .map_err(|err| section_err(err, e))?;
                    let described = e.handlers.description().and(rec.finish());
                    vmdesc.add_device(
                        &e.idstr,
                        e.instance_id,
                        described.as_ref(),
                        self.out.position() - body_start,
                    );
                }
                None => e
                    .handlers
                    .save_state(&mut self.out)
                    .map_err(|err| section_err(err, e))?,
            }
            self.footer(e)?;
            self.maybe_flush()?;
        }
        Ok(())
    }

    /// Stop-and-copy for precopy: END pass, FULL pass, EOF, vmdesc.
    pub fn complete_precopy(&mut self, reg: &mut Registry) -> Result<()> {
        self.complete_iterables(reg, false)?;
        self.full_sections(reg)?;
        self.write_eof()
    }

    /// Postcopy completion: END sections of entries that ran in postcopy, then EOF.
    pub fn complete_postcopy(&mut self, reg: &mut Registry) -> Result<()> {
        for e in reg.entries_mut() {
            let h = &e.handlers;
            if !h.is_iterative() || !h.is_active() || !h.has_postcopy() {
                continue;
            }
            self.section(RecordType::SectionEnd, e, |h, w| {
                h.save_live_complete_postcopy(w)
            })?;
        }
        self.out.write_u8(RecordType::Eof as u8)?;
        self.flush()
    }

    /// EOF, then the vmdesc trailer unless suppressed.
    pub fn write_eof(&mut self) -> Result<()> {
        self.out.write_u8(RecordType::Eof as u8)?;
        if let Some(v) = self.vmdesc.take() {
            let json = v.finish();
            let len = u32::try_from(json.len()).map_err(|_| {
                Error::new(ErrorKind::RecordTooLarge {
                    what: "vmdesc JSON",
                })
            })?;
            self.out.write_u8(RecordType::VmDescription as u8)?;
            self.out.write_u32(len)?;
            self.out.write_bytes(json.as_bytes())?;
        }
        self.flush()
    }

    /// Cleanup: `save_cleanup` on every entry (always, success or not).
    pub fn cleanup(reg: &mut Registry) {
        for e in reg.entries_mut() {
            e.handlers.save_cleanup();
        }
    }
}

fn section_err(err: Error, e: &SaveStateEntry) -> Error {
    err.in_section(format!(
        "section '{}' instance {} (id {})",
        e.idstr, e.instance_id, e.section_id
    ))
}
