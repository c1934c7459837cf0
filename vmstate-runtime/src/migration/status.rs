//! Migration status (QEMU's `MigrationStatus`, qapi/migration.json) and the
//! transitions the source and destination state machines allow.

use std::fmt;

/// The state of a migration, with QEMU's QAPI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MigrationStatus {
    /// Nothing started.
    #[default]
    None,
    /// Setting up (handlers' setup, START sections).
    Setup,
    /// Cancel requested; tearing down.
    Cancelling,
    /// Cancelled; the source VM keeps running.
    Cancelled,
    /// Iterating (precopy).
    Active,
    /// Postcopy: the destination runs, pages still arrive.
    PostcopyActive,
    /// Postcopy: the connection broke; waiting for recovery.
    PostcopyPaused,
    /// Postcopy: recovering over a new connection.
    PostcopyRecover,
    /// Done.
    Completed,
    /// Failed; the source VM resumes.
    Failed,
    /// COLO (not supported here; refused at start).
    Colo,
    /// Paused before switchover (capability pause-before-switchover).
    PreSwitchover,
    /// Saving device state with the VM stopped.
    Device,
    /// Waiting for failover devices to unplug.
    WaitUnplug,
}

impl MigrationStatus {
    /// The QAPI string (`"postcopy-active"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationStatus::None => "none",
            MigrationStatus::Setup => "setup",
            MigrationStatus::Cancelling => "cancelling",
            MigrationStatus::Cancelled => "cancelled",
            MigrationStatus::Active => "active",
            MigrationStatus::PostcopyActive => "postcopy-active",
            MigrationStatus::PostcopyPaused => "postcopy-paused",
            MigrationStatus::PostcopyRecover => "postcopy-recover",
            MigrationStatus::Completed => "completed",
            MigrationStatus::Failed => "failed",
            MigrationStatus::Colo => "colo",
            MigrationStatus::PreSwitchover => "pre-switchover",
            MigrationStatus::Device => "device",
            MigrationStatus::WaitUnplug => "wait-unplug",
        }
    }

    /// Whether the migration is over (successfully or not).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            MigrationStatus::Completed | MigrationStatus::Failed | MigrationStatus::Cancelled
        )
    }

    /// Whether a migration is in progress (a new one may not start).
    pub fn is_running(self) -> bool {
        !matches!(self, MigrationStatus::None) && !self.is_terminal()
    }

    /// Whether the source may move from `self` to `to`.
    ///
    /// ```
    /// use vmstate_runtime::migration::MigrationStatus::*;
    /// assert!(Setup.can_become(Active));
    /// assert!(Active.can_become(Cancelling));
    /// assert!(!Completed.can_become(Active));
    /// ```
    pub fn can_become(self, to: MigrationStatus) -> bool {
        use MigrationStatus::*;
        match (self, to) {
            // Any running state can be cancelled or fail.
            (from, Cancelling) => from.is_running() && from != Cancelling,
            (Cancelling, Cancelled) => true,
            (from, Failed) => from.is_running(),
            (None | Completed | Failed | Cancelled, Setup) => true,
            (Setup, Active | WaitUnplug) => true,
            (WaitUnplug, Active) => true,
            (Active, PreSwitchover | Device | Completed | PostcopyActive) => true,
            (PreSwitchover, Device) => true,
            (Device, Completed | PostcopyActive) => true,
            (PostcopyActive, Completed | PostcopyPaused) => true,
            (PostcopyPaused, PostcopyRecover) => true,
            (PostcopyRecover, PostcopyActive | PostcopyPaused) => true,
            _ => false,
        }
    }
}

impl fmt::Display for MigrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::MigrationStatus::*;
    use super::*;

    const ALL: [MigrationStatus; 14] = [
        None,
        Setup,
        Cancelling,
        Cancelled,
        Active,
        PostcopyActive,
        PostcopyPaused,
        PostcopyRecover,
        Completed,
        Failed,
        Colo,
        PreSwitchover,
        Device,
        WaitUnplug,
    ];

    #[test]
    fn precopy_and_postcopy_paths() {
        for path in [
            &[None, Setup, Active, Completed][..],
            &[None, Setup, Active, PreSwitchover, Device, Completed],
            &[None, Setup, Active, Device, Completed],
            &[
                None,
                Setup,
                Active,
                PostcopyActive,
                PostcopyPaused,
                PostcopyRecover,
                PostcopyActive,
                Completed,
            ],
            &[None, Setup, Active, Cancelling, Cancelled],
            &[None, Setup, Failed],
        ] {
            for w in path.windows(2) {
                assert!(w[0].can_become(w[1]), "{} -> {}", w[0], w[1]);
            }
        }
    }

    #[test]
    fn terminal_states_only_restart() {
        for from in [Completed, Failed, Cancelled] {
            for to in ALL {
                assert_eq!(from.can_become(to), to == Setup, "{from} -> {to}");
            }
        }
        for s in ALL {
            assert!(!s.as_str().is_empty());
        }
    }
}
