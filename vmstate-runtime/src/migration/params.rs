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

/// Tunable parameters (QMP `migrate-set-parameters`), at QEMU's defaults from
/// [`Default`] (or [`new`](Self::new)), changed with the `with_*` setters.
///
/// ```
/// use vmstate_runtime::migration::{MigrationParameters, DEFAULT_MAX_BANDWIDTH};
///
/// let p = MigrationParameters::new().with_downtime_limit_ms(50);
/// assert_eq!((p.downtime_limit_ms, p.max_bandwidth), (50, DEFAULT_MAX_BANDWIDTH));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

with_setters!(MigrationParameters {
    with_downtime_limit_ms => downtime_limit_ms: [u64],
    with_max_bandwidth => max_bandwidth: [u64],
    with_max_postcopy_bandwidth => max_postcopy_bandwidth: [u64],
});

impl MigrationParameters {
    /// QEMU's defaults (the same as [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

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

/// Capabilities (QMP `migrate-set-capabilities`): all off by default, as in
/// QEMU; turned on with the `with_*` setters.
///
/// ```
/// use vmstate_runtime::migration::MigrationCapabilities;
///
/// let c = MigrationCapabilities::new().with_return_path(true);
/// assert!(c.wants_return_path() && !c.postcopy_ram);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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

with_setters!(MigrationCapabilities {
    with_postcopy_ram => postcopy_ram: [bool],
    with_return_path => return_path: [bool],
    with_switchover_ack => switchover_ack: [bool],
    with_pause_before_switchover => pause_before_switchover: [bool],
    with_events => events: [bool],
});

impl MigrationCapabilities {
    /// All capabilities off (the same as [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a return path is needed.
    pub fn wants_return_path(&self) -> bool {
        self.return_path || self.postcopy_ram || self.switchover_ack
    }
}
