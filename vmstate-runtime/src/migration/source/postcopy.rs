//! Postcopy on the source (QEMU `postcopy_start` and the postcopy part of the
//! migration thread): the switch with the VM stopped, then serving the
//! destination's page requests ahead of the background pages until done; a
//! broken connection pauses until [`MigrationHandle::resume`](super::MigrationHandle::resume)
//! gives a new one, over which the received bitmaps are fetched so no page is lost.

use std::time::Duration;

use super::driver::Driver;
use super::return_path::ReturnPath;
use super::window::Window;
use crate::error::{Error, ErrorKind, PostcopyError, RecoveryError, Result};
use crate::migration::status::MigrationStatus;
use crate::migration::transport::{connect, Connection, MigrationUri, Outgoing};
use crate::savevm::format::{
    MAX_DISCARDS_PER_COMMAND, PING_AFTER_PACKAGE, PING_BEFORE_PACKAGE, PING_PACKAGED_LOADED,
    PING_PACKAGE_DEVICES,
};
use crate::savevm::{Command, QemuVersion, Registry, StreamWriter};

impl Driver {
    /// Postcopy after the switch: serve faults first, send the rest, complete.
    /// A broken connection pauses (postcopy-paused) until [`MigrationHandle::resume`]
    /// gives a new URI; then the received bitmaps are fetched, the handlers mark
    /// what the destination lacks as dirty, and sending continues (no page lost).
    /// Returns the bytes sent over all connections.
    pub(super) fn postcopy_until_done(
        &mut self,
        mut w: StreamWriter<Outgoing>,
        mut rp: ReturnPath,
        reg: &mut Registry,
    ) -> Result<u64> {
        let mut before = 0u64;
        let mut broken = self.switch_failed.take();
        loop {
            let pos = std::cell::Cell::new(0u64);
            let served = match broken.take() {
                Some(e) => {
                    pos.set(w.position());
                    drop((w, rp));
                    Err(e)
                }
                None => self.postcopy_serve(w, rp, reg, &pos),
            };
            match served {
                Ok(sent) => return Ok(before + sent),
                Err(e) => {
                    before += pos.get();
                    let mut err = e;
                    // Paused until a recovery attempt succeeds (or a cancel).
                    let (w2, rp2) = loop {
                        let msg = err.to_string();
                        tracing::warn!(error = %msg, "postcopy paused");
                        if let Ok(mut p) = self.shared.paused_error.lock() {
                            *p = Some(std::sync::Arc::new(err));
                        }
                        // The reason first: whoever sees "postcopy-paused" sees why.
                        self.shared.stats.update(|s| s.error = Some(msg));
                        self.set_status(MigrationStatus::PostcopyPaused);
                        let uri = self.wait_for_resume_uri()?;
                        self.set_status(MigrationStatus::PostcopyRecover);
                        match self.reconnect_postcopy(&uri, reg) {
                            Ok(c) => break c,
                            Err(e) => err = e,
                        }
                    };
                    self.shared.stats.update(|s| s.error = None);
                    self.set_status(MigrationStatus::PostcopyActive);
                    w = w2;
                    rp = rp2;
                }
            }
        }
    }

    /// One connection's worth of postcopy; `pos` tracks the bytes sent on it.
    fn postcopy_serve(
        &mut self,
        mut w: StreamWriter<Outgoing>,
        rp: ReturnPath,
        reg: &mut Registry,
        pos: &std::cell::Cell<u64>,
    ) -> Result<u64> {
        let mut window = Window::new(w.position());
        loop {
            pos.set(w.position());
            rp.check()?;
            window.roll(w.position(), &self.shared.stats);
            for (block, start, len) in rp.take_page_requests() {
                tracing::debug!(%block, start, len, "postcopy page request");
                let mut served = false;
                for e in reg.entries_mut() {
                    if !e.handlers.has_postcopy() {
                        continue;
                    }
                    if let Some(ram) = e.handlers.as_postcopy_ram() {
                        if ram.queue_page_request(&block, start, len)? {
                            served = true;
                            break;
                        }
                    }
                }
                if !served {
                    return Err(Error::new(ErrorKind::Postcopy(
                        PostcopyError::RequestForUnknownBlock {
                            block: block.to_string(),
                        },
                    )));
                }
            }
            let pending = StreamWriter::<Outgoing>::pending(reg, true);
            let transferred = w.position();
            self.shared.stats.update(|s| {
                s.remaining = pending.total();
                s.transferred = transferred;
                s.total = transferred + pending.total();
                s.total_time = self.started.elapsed();
            });
            self.publish_ram_stats(reg);
            if pending.total() == 0 && !rp.has_page_requests() {
                w.complete_postcopy(reg)?;
                let sent = w.position();
                pos.set(sent);
                drop(w);
                rp.wait_shut()?;
                return Ok(sent);
            }
            let mut limited = window.limiter(self.params().max_postcopy_bandwidth);
            if limited(w.position()) {
                w.flush()?;
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            w.iterate(reg, true, &mut limited)?;
            w.flush()?;
        }
    }

    /// Waits in postcopy-paused for a new URI (or a cancel, which fails).
    fn wait_for_resume_uri(&mut self) -> Result<MigrationUri> {
        loop {
            if self.cancelled() {
                return Err(Error::new(ErrorKind::Cancelled {
                    in_postcopy_pause: true,
                }));
            }
            if let Some(uri) = self
                .shared
                .resume_uri
                .lock()
                .ok()
                .and_then(|mut u| u.take())
            {
                return Ok(uri);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Postcopy recovery on a new connection (QEMU `postcopy_do_resume`): for
    /// every RAM block ask for the destination's received bitmap
    /// (RECV_BITMAP → RP RECV_BITMAP + blob), let the handler re-dirty what did
    /// not arrive, resume_prepare, POSTCOPY_RESUME, wait for RESUME_ACK.
    fn reconnect_postcopy(
        &mut self,
        uri: &MigrationUri,
        reg: &mut Registry,
    ) -> Result<(StreamWriter<Outgoing>, ReturnPath)> {
        let Connection {
            stream, reverse, ..
        } = connect(uri)?;
        let reverse = reverse.ok_or_else(|| {
            Error::new(ErrorKind::PostcopyRecovery(RecoveryError::NotBidirectional))
        })?;
        // migrate-pause (MigrationHandle::pause_postcopy) breaks this one now.
        if let Ok(mut k) = self.shared.kill.lock() {
            *k = stream.try_clone_rw();
        }
        let mut w = self.stream_writer(stream)?;
        w.suppress_vmdesc();
        let rp = ReturnPath::spawn(reverse, self.config.version, true, self.opts.reply_timeout)?;
        for e in reg.entries_mut() {
            if !e.handlers.has_postcopy() {
                continue;
            }
            let Some(ram) = e.handlers.as_postcopy_ram() else {
                continue;
            };
            for block in ram.ram_block_names() {
                // Announced before asking: a bitmap nobody asked for is refused
                // before its blob is read.
                rp.want_bitmap(&block, ram.recv_bitmap_size(&block))?;
                w.write_command(&Command::RecvBitmap(block.clone()))?;
                w.flush()?;
                let bitmap = rp.wait_bitmap(&block)?;
                ram.postcopy_resume_bitmap(&block, &bitmap)?;
            }
        }
        for e in reg.entries_mut() {
            if e.handlers.is_active() {
                e.handlers.resume_prepare()?;
            }
        }
        w.write_command(&Command::PostcopyResume)?;
        w.flush()?;
        rp.wait_resume_ack()?;
        Ok((w, rp))
    }

    /// The postcopy switch (QEMU `postcopy_start`, with the VM stopped): END
    /// sections of handlers that cannot continue, discard ranges, PING(2), the
    /// package (LISTEN, device state, PING(3), RUN), PING(4).
    ///
    /// Before the package goes out the link is checked
    /// ([`ReadWrite::peer_hung_up`](crate::migration::ReadWrite::peer_hung_up)): a destination already gone fails the
    /// switch with [`PostcopyError::DestinationGone`]. `in_postcopy` is set only
    /// once the whole package has been handed to the transport (written and
    /// flushed): a failure before that is a precopy failure (the destination
    /// cannot have loaded the package, so it cannot run the guest, and the
    /// source VM resumes); one after it is a broken postcopy link
    /// (postcopy-paused, as QEMU 7.2 does after `postcopy_start`).
    pub(super) fn switch_to_postcopy(
        &mut self,
        w: &mut StreamWriter<Outgoing>,
        reg: &mut Registry,
    ) -> Result<()> {
        w.complete_iterables(reg, true)?;
        for e in reg.entries_mut() {
            if !e.handlers.has_postcopy() {
                continue;
            }
            let Some(ram) = e.handlers.as_postcopy_ram() else {
                continue;
            };
            for (block, ranges) in ram.postcopy_discard_ranges()? {
                for chunk in ranges.chunks(MAX_DISCARDS_PER_COMMAND) {
                    w.write_command(&Command::PostcopyRamDiscard {
                        block: block.clone(),
                        ranges: chunk.to_vec(),
                    })?;
                }
            }
        }
        w.write_command(&Command::Ping(PING_BEFORE_PACKAGE))?;
        let mut pkg = StreamWriter::new(Vec::new(), self.config.version);
        pkg.suppress_vmdesc();
        pkg.write_command(&Command::PostcopyListen)?;
        pkg.full_sections(reg)?;
        pkg.write_command(&Command::Ping(PING_PACKAGE_DEVICES))?;
        if self.config.version == QemuVersion::V10 {
            pkg.write_command(&Command::Ping(PING_PACKAGED_LOADED))?;
        }
        pkg.write_command(&Command::PostcopyRun)?;
        let pkg = pkg.into_inner()?;
        // Everything before the package out first, then the link checked: a
        // destination that hung up (a cut, a crash) is seen here instead of
        // after the package was buffered into a dead socket.
        w.flush()?;
        if self.destination_gone()? {
            return Err(Error::new(ErrorKind::Postcopy(
                PostcopyError::DestinationGone,
            )));
        }
        w.write_packaged(&pkg)?;
        w.flush()?;
        // The whole package is in the transport: the destination may load it
        // and start the guest, so from here the source is in postcopy.
        self.in_postcopy = true;
        w.write_command(&Command::Ping(PING_AFTER_PACKAGE))?;
        w.flush()
    }

    /// The migration connection's peer is known to be gone (see
    /// [`ReadWrite::peer_hung_up`](crate::migration::ReadWrite::peer_hung_up); a transport that cannot tell says no).
    fn destination_gone(&self) -> Result<bool> {
        let kill = self
            .shared
            .kill
            .lock()
            .map_err(|_| Error::poisoned("migration connection handle poisoned"))?;
        Ok(match kill.as_ref() {
            Some(conn) => conn.peer_hung_up()?,
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};

    use super::super::{MigrationConfig, Shared, SourceOptions, VmControl};
    use super::*;
    use crate::migration::params::{MigrationCapabilities, MigrationParameters};
    use crate::migration::stats::StatsHandle;
    use crate::migration::transport::ReadWrite;
    use crate::savevm::TargetPage;

    struct NoVm;
    impl VmControl for NoVm {
        fn pause(&mut self) -> Result<()> {
            Ok(())
        }
        fn resume(&mut self) -> Result<()> {
            Ok(())
        }
    }

    /// A driver whose migration connection handle (what the link check
    /// polls) is `link`.
    fn driver(link: Box<dyn ReadWrite>) -> Driver {
        let shared = Arc::new(Shared {
            params: Mutex::new(MigrationParameters::default()),
            cancel: AtomicBool::new(false),
            resume_from_pre_switchover: AtomicBool::new(false),
            postcopy_requested: AtomicBool::new(true),
            resume_uri: Mutex::new(None),
            kill: Mutex::new(Some(link)),
            paused_error: Mutex::new(None),
            stats: StatsHandle::default(),
        });
        let config = MigrationConfig {
            uri: MigrationUri::Unix("/nonexistent".into()),
            machine: "pc-i440fx-7.2".into(),
            version: QemuVersion::V7_2,
            params: MigrationParameters::default(),
            caps: MigrationCapabilities::default(),
            target_page: TargetPage::default(),
        };
        Driver::new(
            config,
            None,
            SourceOptions::default(),
            shared,
            Box::new(NoVm),
        )
    }

    /// Bytes the switch writes before the package (PING(2), with an empty
    /// registry), and the whole switch.
    fn switch_sizes() -> (usize, usize) {
        let mut before = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
        before
            .write_command(&Command::Ping(PING_BEFORE_PACKAGE))
            .unwrap();
        let before = before.into_inner().unwrap().len();
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut d = driver(Box::new(a.try_clone().unwrap()));
        let mut w = StreamWriter::new(Outgoing::new(Box::new(a), None).unwrap(), QemuVersion::V7_2);
        d.switch_to_postcopy(&mut w, &mut Registry::new()).unwrap();
        assert!(d.in_postcopy, "a switch that went out is postcopy");
        drop(w);
        let mut all = Vec::new();
        b.read_to_end(&mut all).unwrap();
        (before, all.len())
    }

    #[test]
    fn a_destination_gone_before_the_package_is_a_precopy_failure() {
        let (before, _) = switch_sizes();
        // The destination stopped talking (its sending side ended, as a cut
        // proxy or a crash leaves it) but would still accept bytes.
        let (a, mut b) = UnixStream::pair().unwrap();
        b.shutdown(std::net::Shutdown::Write).unwrap();
        let mut d = driver(Box::new(a.try_clone().unwrap()));
        let mut w = StreamWriter::new(Outgoing::new(Box::new(a), None).unwrap(), QemuVersion::V7_2);
        let e = d
            .switch_to_postcopy(&mut w, &mut Registry::new())
            .unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::Postcopy(PostcopyError::DestinationGone)
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "destination hung up before the postcopy package was sent"
        );
        assert!(!d.in_postcopy, "nothing of the package went out");
        drop(w);
        let mut sent = Vec::new();
        b.read_to_end(&mut sent).unwrap();
        assert_eq!(sent.len(), before, "only what precedes the package");
    }

    /// A link that takes `left` more bytes, then fails every write (and looks
    /// alive to the link check: the failure shows only when writing).
    struct FailAfter {
        left: Arc<Mutex<usize>>,
    }
    impl Read for FailAfter {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Ok(0)
        }
    }
    impl Write for FailAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut left = self.left.lock().unwrap();
            if *left == 0 {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            let n = buf.len().min(*left);
            *left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl ReadWrite for FailAfter {}

    /// The switch over a link that breaks after `ok` bytes: (failed,
    /// in_postcopy).
    fn switch_broken_after(ok: usize) -> (bool, bool) {
        let left = Arc::new(Mutex::new(ok));
        let link = || Box::new(FailAfter { left: left.clone() });
        let mut d = driver(link());
        let mut w = StreamWriter::new(Outgoing::new(link(), None).unwrap(), QemuVersion::V7_2);
        let r = d.switch_to_postcopy(&mut w, &mut Registry::new());
        (r.is_err(), d.in_postcopy)
    }

    #[test]
    fn postcopy_starts_only_once_the_whole_package_was_handed_over() {
        let (before, all) = switch_sizes();
        // PING(4) after the package: the same size as PING(2).
        let package_end = all - before;
        // Broken before or inside the package: a precopy failure (the
        // destination cannot have loaded RUN).
        for ok in [0, before - 1, before, before + 1, package_end - 1] {
            assert_eq!(switch_broken_after(ok), (true, false), "broken after {ok}");
        }
        // Broken after the whole package: postcopy (paused by the caller).
        for ok in [package_end, all - 1] {
            assert_eq!(switch_broken_after(ok), (true, true), "broken after {ok}");
        }
        assert_eq!(switch_broken_after(all), (false, true));
    }
}
