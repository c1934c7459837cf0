//! The migration thread's run: connect and set up, converge, switch over (precopy)
//! or go postcopy, and turn the outcome into the final status. Whatever happens,
//! the handlers' `save_cleanup` runs and a source VM that was paused before the
//! destination took over is resumed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::return_path::ReturnPath;
use super::{MigrationConfig, Shared, SourceOptions, VmControl};
use crate::error::{Error, ErrorKind, Result, ReturnPathMissing};
use crate::migration::params::MigrationParameters;
use crate::migration::status::MigrationStatus;
use crate::migration::transport::{connect, Connection, MigrationUri, Outgoing};
use crate::savevm::format::PING_RETURN_PATH_OPENED;
use crate::savevm::{Command, Configuration, PostcopyAdvise, Registry, StreamWriter};

/// The state of one outgoing migration, owned by its thread.
pub(super) struct Driver {
    pub(super) config: MigrationConfig,
    /// The caller's connection (start_migration_on), used instead of
    /// connecting to the URI; taken at setup.
    conn: Option<Connection>,
    /// Whether the stream went over the caller's connection (no partial file
    /// to remove then).
    callers_conn: bool,
    pub(super) opts: SourceOptions,
    pub(super) shared: Arc<Shared>,
    pub(super) vm: Box<dyn VmControl>,
    pub(super) started: Instant,
    status: MigrationStatus,
    /// The destination runs the guest; the source must not resume.
    pub(super) in_postcopy: bool,
    /// Writing the postcopy switch failed: postcopy starts paused.
    pub(super) switch_failed: Option<Error>,
}

/// Why the run stopped early.
pub(super) enum Stop {
    Cancelled,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// The outgoing stream and, when a capability needs one, the return path.
pub(super) type Channel = (StreamWriter<Outgoing>, Option<ReturnPath>);

impl Driver {
    pub(super) fn new(
        config: MigrationConfig,
        conn: Option<Connection>,
        opts: SourceOptions,
        shared: Arc<Shared>,
        vm: Box<dyn VmControl>,
    ) -> Self {
        Driver {
            config,
            callers_conn: conn.is_some(),
            conn,
            opts,
            shared,
            vm,
            started: Instant::now(),
            status: MigrationStatus::None,
            in_postcopy: false,
            switch_failed: None,
        }
    }

    pub(super) fn set_status(&mut self, to: MigrationStatus) {
        debug_assert!(
            self.status.can_become(to),
            "{} -> {to} is not a valid transition",
            self.status
        );
        self.status = to;
        let total = self.started.elapsed();
        let cancelling = self.cancelled() && !self.in_postcopy;
        self.shared.stats.update(|s| {
            // After cancel() published "cancelling", only the end of the
            // cancellation (or a failure) may replace it.
            let keep = cancelling
                && s.status == MigrationStatus::Cancelling
                && !matches!(
                    to,
                    MigrationStatus::Cancelled
                        | MigrationStatus::Failed
                        | MigrationStatus::Completed
                );
            if !keep {
                s.status = to;
            }
            s.total_time = total;
        });
    }

    /// The stream writer over a new connection's stream: its write timeout,
    /// and zero-copy send where the transport and the options allow it.
    pub(super) fn stream_writer(
        &self,
        stream: Box<dyn crate::migration::ReadWrite>,
    ) -> Result<StreamWriter<Outgoing>> {
        let out = Outgoing::new(stream, self.opts.write_timeout)?;
        #[cfg(target_os = "linux")]
        let splicer = out.splicer().filter(|_| self.opts.zero_copy_send);
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut w = StreamWriter::new(out, self.config.version);
        #[cfg(target_os = "linux")]
        w.set_splicer(splicer);
        Ok(w)
    }

    pub(super) fn cancelled(&self) -> bool {
        self.shared.cancel.load(Ordering::SeqCst)
    }

    pub(super) fn params(&self) -> MigrationParameters {
        self.shared
            .params
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// Runs the migration to its end and publishes the final status.
    pub(super) fn run(&mut self, reg: &mut Registry) -> Result<()> {
        self.set_status(MigrationStatus::Setup);
        let mut vm_paused = false;
        let outcome = self.run_inner(reg, &mut vm_paused);
        // The final counters, whatever the outcome (a failed or cancelled
        // migration shows how far it got, as QEMU's query-migrate does).
        self.publish_ram_stats(reg);
        StreamWriter::<Vec<u8>>::cleanup(reg);
        if outcome.is_err() {
            self.remove_partial_file();
        }
        match outcome {
            Ok(()) => {
                self.set_status(MigrationStatus::Completed);
                Ok(())
            }
            Err(Stop::Cancelled) => self.finish_cancel(vm_paused),
            // A failure caused by cancel() shutting the connection down is the
            // cancellation finishing.
            Err(Stop::Failed(_)) if self.cancelled() && !self.in_postcopy => {
                self.finish_cancel(vm_paused)
            }
            Err(Stop::Failed(e)) if self.in_postcopy => {
                tracing::error!(error = %e, "migration failed in postcopy");
                // The destination already runs the guest: resuming here would
                // split it in two, so the source VM stays stopped.
                self.shared.stats.update(|s| s.error = Some(e.to_string()));
                self.set_status(MigrationStatus::Failed);
                Err(e)
            }
            Err(Stop::Failed(e)) => {
                tracing::warn!(error = %e, "migration failed; the VM runs on here");
                // The source must keep running whatever happened.
                let resumed = if vm_paused { self.vm.resume() } else { Ok(()) };
                self.shared.stats.update(|s| s.error = Some(e.to_string()));
                self.set_status(MigrationStatus::Failed);
                resumed.and(Err(e))
            }
        }
    }

    /// A `file:` target that did not get the whole stream is removed: a
    /// truncated stream is no snapshot (loading it fails), and after a full
    /// disk it holds the space that ran out. Only a regular file (the one
    /// `connect` created or truncated): `/dev/full` or a FIFO stays.
    fn remove_partial_file(&self) {
        if self.callers_conn {
            return;
        }
        if let MigrationUri::File(path) = &self.config.uri {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file()) {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// cancelling → cancelled, with the VM running again.
    fn finish_cancel(&mut self, vm_paused: bool) -> Result<()> {
        self.set_status(MigrationStatus::Cancelling);
        let r = if vm_paused { self.vm.resume() } else { Ok(()) };
        self.set_status(MigrationStatus::Cancelled);
        r.and(Err(Error::new(ErrorKind::Cancelled {
            in_postcopy_pause: false,
        })))
    }

    fn run_inner(
        &mut self,
        reg: &mut Registry,
        vm_paused: &mut bool,
    ) -> std::result::Result<(), Stop> {
        let setup_start = Instant::now();
        let (mut w, rp) = tracing::info_span!("setup").in_scope(|| self.setup(reg))?;
        self.shared
            .stats
            .update(|s| s.setup_time = setup_start.elapsed());
        self.set_status(MigrationStatus::Active);

        tracing::info_span!("iterate")
            .in_scope(|| self.converge(&mut w, reg, rp.as_ref(), vm_paused))?;

        if self.in_postcopy {
            let rp = rp.ok_or_else(|| {
                Error::new(ErrorKind::NoReturnPath(ReturnPathMissing::ForPostcopy))
            })?;
            let transferred = tracing::info_span!("postcopy")
                .in_scope(|| self.postcopy_until_done(w, rp, reg))?;
            self.record_final(transferred);
            return Ok(());
        }
        tracing::info_span!("complete").in_scope(|| self.complete_precopy(w, rp, reg, vm_paused))
    }

    /// Connects, writes the header, the configuration and the commands the
    /// capabilities ask for (return path, postcopy advise), then the START
    /// sections.
    fn setup(&mut self, reg: &mut Registry) -> std::result::Result<Channel, Stop> {
        let Connection {
            stream, reverse, ..
        } = match self.conn.take() {
            Some(conn) => conn,
            None => connect(&self.config.uri)?,
        };
        if let Ok(mut k) = self.shared.kill.lock() {
            *k = stream.try_clone_rw();
        }
        if self.cancelled() {
            return Err(Stop::Cancelled);
        }
        let caps = self.config.caps;
        let mut w = self.stream_writer(stream)?;
        w.write_header()?;
        w.write_configuration(&Configuration::for_target(
            &self.config.machine,
            self.config.target_page,
        ))?;

        let rp = if caps.wants_return_path() {
            let reverse = reverse.ok_or_else(|| {
                Error::new(ErrorKind::NoReturnPath(ReturnPathMissing::NotBidirectional))
            })?;
            w.write_command(&Command::OpenReturnPath)?;
            w.write_command(&Command::Ping(PING_RETURN_PATH_OPENED))?;
            Some(ReturnPath::spawn(
                reverse,
                self.config.version,
                caps.postcopy_ram,
                self.opts.reply_timeout,
            )?)
        } else {
            None
        };
        if caps.postcopy_ram {
            w.write_command(&Command::PostcopyAdvise(Some(PostcopyAdvise {
                host_page_summary: self.config.target_page.size(),
                target_page_size: self.config.target_page.size(),
            })))?;
        }
        if self.cancelled() {
            return Err(Stop::Cancelled);
        }
        w.setup(reg)?;
        w.flush()?;
        Ok((w, rp))
    }

    /// Copies the RAM handlers' counters into the live statistics.
    pub(super) fn publish_ram_stats(&self, reg: &Registry) {
        let ram = reg.ram_stats();
        self.shared.stats.update(|s| s.ram = ram);
    }

    /// The last figures: everything sent, nothing left.
    pub(super) fn record_final(&self, transferred: u64) {
        self.shared.stats.update(|s| {
            s.transferred = transferred;
            s.remaining = 0;
            s.total = transferred;
        });
    }
}
