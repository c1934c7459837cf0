//! Migration parameters and capabilities, with QEMU's defaults
//! (migration/options.c), settable before and during a migration.

/// QEMU's default `max-bandwidth` (MAX_THROTTLE): 128 MiB/s.
pub const DEFAULT_MAX_BANDWIDTH: u64 = 128 * 1024 * 1024;
/// QEMU's default `downtime-limit` in ms.
pub const DEFAULT_DOWNTIME_LIMIT_MS: u64 = 300;
/// Largest `downtime-limit` QEMU accepts (ms).
pub const MAX_DOWNTIME_LIMIT_MS: u64 = 2_000_000;
/// The accounting window for bandwidth and rate limiting (QEMU BUFFER_DELAY).
pub const BUFFER_DELAY_MS: u64 = 100;

/// Tunable parameters (QMP `migrate-set-parameters`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationParameters {
    /// Longest acceptable pause of the VM at switchover, in ms.
    pub downtime_limit_ms: u64,
    /// Bandwidth cap in bytes/s during precopy; 0 = unlimited.
    pub max_bandwidth: u64,
    /// Bandwidth cap in bytes/s during postcopy; 0 = unlimited.
    pub max_postcopy_bandwidth: u64,
}

impl Default for MigrationParameters {
    fn default() -> Self {
        MigrationParameters {
            downtime_limit_ms: DEFAULT_DOWNTIME_LIMIT_MS,
            max_bandwidth: DEFAULT_MAX_BANDWIDTH,
            max_postcopy_bandwidth: 0,
        }
    }
}

impl MigrationParameters {
    /// Checks ranges as QEMU does.
    pub fn validate(&self) -> crate::Result<()> {
        if self.downtime_limit_ms > MAX_DOWNTIME_LIMIT_MS {
            return Err(crate::Error::invalid(format!(
                "downtime-limit {} ms exceeds {MAX_DOWNTIME_LIMIT_MS} ms",
                self.downtime_limit_ms
            )));
        }
        Ok(())
    }
}

/// Capabilities (QMP `migrate-set-capabilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MigrationCapabilities {
    /// Allow switching to postcopy.
    pub postcopy_ram: bool,
    /// Open a return path even without postcopy.
    pub return_path: bool,
    /// The destination must acknowledge before switchover (QEMU 10.x).
    pub switchover_ack: bool,
    /// Pause in pre-switchover until `migrate-continue`.
    pub pause_before_switchover: bool,
    /// Emit status events.
    pub events: bool,
}

impl MigrationCapabilities {
    /// Whether a return path is needed.
    pub fn wants_return_path(&self) -> bool {
        self.return_path || self.postcopy_ram || self.switchover_ack
    }
}
