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
///
/// With the `serde` feature it is QMP's `query-migrate-parameters` reply
/// (`{"downtime-limit": 300, "max-bandwidth": 134217728,
/// "max-postcopy-bandwidth": 0}`); deserializing takes
/// `migrate-set-parameters` arguments (a missing member keeps its default,
/// an unknown one is an error).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct MigrationParameters {
    /// Longest acceptable pause of the VM at switchover, in ms
    /// (QMP `downtime-limit`).
    #[cfg_attr(feature = "serde", serde(rename = "downtime-limit"))]
    pub downtime_limit_ms: u64,
    /// Bandwidth cap in bytes/s during precopy; 0 = unlimited
    /// (QMP `max-bandwidth`).
    #[cfg_attr(feature = "serde", serde(rename = "max-bandwidth"))]
    pub max_bandwidth: u64,
    /// Bandwidth cap in bytes/s during postcopy; 0 = unlimited
    /// (QMP `max-postcopy-bandwidth`).
    #[cfg_attr(feature = "serde", serde(rename = "max-postcopy-bandwidth"))]
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
/// QEMU; turned on with the `with_*` setters, or by QMP name with
/// [`set`](Self::set). With the `serde` feature it is QMP's
/// `query-migrate-capabilities` list (`[{"capability": "events", "state":
/// false}, ...]`).
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

    /// The QMP names of the capabilities this runtime has, in QAPI order.
    pub const QMP_NAMES: &'static [&'static str] = &[
        "events",
        "postcopy-ram",
        "return-path",
        "pause-before-switchover",
        "switchover-ack",
    ];

    /// Each capability by its QMP name with its state, in QAPI order (the
    /// `query-migrate-capabilities` reply).
    ///
    /// ```
    /// use vmstate_runtime::migration::MigrationCapabilities;
    ///
    /// let c = MigrationCapabilities::new().with_postcopy_ram(true);
    /// assert_eq!(c.qmp_states()[1], ("postcopy-ram", true));
    /// ```
    pub fn qmp_states(&self) -> [(&'static str, bool); 5] {
        [
            ("events", self.events),
            ("postcopy-ram", self.postcopy_ram),
            ("return-path", self.return_path),
            ("pause-before-switchover", self.pause_before_switchover),
            ("switchover-ack", self.switchover_ack),
        ]
    }

    /// Sets the capability QMP calls `name` (one entry of
    /// `migrate-set-capabilities`); a name this runtime does not have is an
    /// error naming the ones it has.
    ///
    /// ```
    /// use vmstate_runtime::migration::MigrationCapabilities;
    ///
    /// let mut c = MigrationCapabilities::new();
    /// c.set("return-path", true)?;
    /// assert!(c.return_path);
    /// assert!(c.set("xbzrle", true).unwrap_err().to_string().contains("'xbzrle'"));
    /// # Ok::<(), vmstate_runtime::Error>(())
    /// ```
    pub fn set(&mut self, name: &str, state: bool) -> crate::Result<()> {
        let slot = match name {
            "events" => &mut self.events,
            "postcopy-ram" => &mut self.postcopy_ram,
            "return-path" => &mut self.return_path,
            "pause-before-switchover" => &mut self.pause_before_switchover,
            "switchover-ack" => &mut self.switchover_ack,
            _ => {
                return Err(crate::Error::invalid(format!(
                    "unknown migration capability '{name}' (this runtime has: {})",
                    Self::QMP_NAMES.join(", ")
                )))
            }
        };
        *slot = state;
        Ok(())
    }

    /// Whether a return path is needed.
    pub fn wants_return_path(&self) -> bool {
        self.return_path || self.postcopy_ram || self.switchover_ack
    }
}
