//! Migration status (QEMU's `MigrationStatus`, qapi/migration.json) and the
//! transitions the source and destination state machines allow.

use std::fmt;

/// Declares the status enum once, each state with its QAPI name; generates
/// `ALL` and `as_str` from that one list.
macro_rules! qapi_status {
    ($( $(#[$vmeta:meta])* $variant:ident => $qapi:literal, )+) => {
        /// The state of a migration, with QEMU's QAPI names.
        ///
        /// ```
        /// use vmstate_runtime::migration::MigrationStatus;
        /// assert_eq!(MigrationStatus::PostcopyActive.as_str(), "postcopy-active");
        /// assert_eq!(MigrationStatus::ALL.len(), 14);
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum MigrationStatus {
            $( $(#[$vmeta])* $variant, )+
        }

        impl MigrationStatus {
            /// Every state, in QAPI order.
            pub const ALL: &'static [MigrationStatus] = &[$(MigrationStatus::$variant),+];

            /// The QAPI string (`"postcopy-active"`, ...).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( MigrationStatus::$variant => $qapi, )+
                }
            }
        }
    };
}

qapi_status! {
    /// Nothing started.
    #[default]
    None => "none",
    /// Setting up (handlers' setup, START sections).
    Setup => "setup",
    /// Cancel requested; tearing down.
    Cancelling => "cancelling",
    /// Cancelled; the source VM keeps running.
    Cancelled => "cancelled",
    /// Iterating (precopy).
    Active => "active",
    /// Postcopy: the destination runs, pages still arrive.
    PostcopyActive => "postcopy-active",
    /// Postcopy: the connection broke; waiting for recovery.
    PostcopyPaused => "postcopy-paused",
    /// Postcopy: recovering over a new connection.
    PostcopyRecover => "postcopy-recover",
    /// Done.
    Completed => "completed",
    /// Failed; the source VM resumes.
    Failed => "failed",
    /// COLO (not supported here; refused at start).
    Colo => "colo",
    /// Paused before switchover (capability pause-before-switchover).
    PreSwitchover => "pre-switchover",
    /// Saving device state with the VM stopped.
    Device => "device",
    /// Waiting for failover devices to unplug.
    WaitUnplug => "wait-unplug",
}

impl MigrationStatus {
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

    const ALL: &[MigrationStatus] = MigrationStatus::ALL;

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
            for &to in ALL {
                assert_eq!(from.can_become(to), to == Setup, "{from} -> {to}");
            }
        }
        for s in ALL {
            assert!(!s.as_str().is_empty());
        }
    }
}
