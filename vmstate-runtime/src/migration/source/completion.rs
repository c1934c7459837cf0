//! The precopy switchover (QEMU `migration_completion`): stop the VM, optionally
//! wait in pre-switchover for `migrate-continue`, write the END and FULL sections
//! and EOF, then wait for the destination's verdict on the return path.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::driver::{Driver, Stop};
use super::return_path::ReturnPath;
use crate::migration::status::MigrationStatus;
use crate::migration::transport::Outgoing;
use crate::savevm::{Command, QemuVersion, Registry, StreamWriter};

impl Driver {
    /// Switches over and completes a precopy migration.
    pub(super) fn complete_precopy(
        &mut self,
        mut w: StreamWriter<Outgoing>,
        rp: Option<ReturnPath>,
        reg: &mut Registry,
        vm_paused: &mut bool,
    ) -> Result<(), Stop> {
        let caps = self.config.caps;
        // The VM stops first (also before a pre-switchover pause, as QEMU does).
        let stop_at = Instant::now();
        self.vm.pause()?;
        *vm_paused = true;
        tracing::info!("switchover: VM stopped");
        if caps.pause_before_switchover {
            self.set_status(MigrationStatus::PreSwitchover);
            while !self
                .shared
                .resume_from_pre_switchover
                .load(Ordering::SeqCst)
            {
                if self.cancelled() {
                    return Err(Stop::Cancelled);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // QEMU 7.2 only enters "device" after a pre-switchover pause; 10.x always.
        if caps.pause_before_switchover || self.config.version == QemuVersion::V10 {
            self.set_status(MigrationStatus::Device);
        }
        if self.cancelled() {
            return Err(Stop::Cancelled);
        }
        if self.config.version == QemuVersion::V10 {
            w.write_command(&Command::SwitchoverStart)?;
        }
        // A cancel from here on shuts the connection down, so the stream never
        // reaches EOF and the destination cannot start the guest.
        w.complete_precopy(reg)?;
        w.flush()?;
        // Spliced pages leave guest memory only as the destination reads
        // them: the migration is not over before it has. (With a return
        // path, the destination's SHUT below says so, and its wait notices a
        // broken connection; without one, the socket's queue is watched.)
        if rp.is_none() && !w.wait_delivered(&|| self.cancelled())? {
            return Err(Stop::Cancelled);
        }
        let downtime = stop_at.elapsed();
        self.shared.stats.update(|s| s.downtime = Some(downtime));
        let transferred = w.position();
        tracing::info!(
            downtime_ms = downtime.as_millis() as u64,
            transferred,
            "switchover: stream sent"
        );
        drop(w);
        if let Some(rp) = rp {
            // The destination reports whether it loaded the stream.
            rp.wait_shut()?;
        }
        self.record_final(transferred);
        Ok(())
    }
}
