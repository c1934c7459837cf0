//! The live-migration demo, as a library function so tests can run it
//! in-process with tiny parameters: a source machine (QEMU's pc RAM blocks +
//! keyboard controller) keeps running a guest workload while live migration
//! streams it to a destination; at the end the destination must hold exactly
//! the source's state at switchover.
//!
//! [`run`] runs one of three flows ([`Role`]): both sides in this process
//! (`both`: the destination in a thread, a byte compare at the end), or one
//! side, the way QEMU is run (`source`, `destination`: both print checksums
//! so two hosts' results compare). The phases, one module each: `cli` and
//! `options` (the knobs), `guest` (the source machine and its workload),
//! `migrate` (starting the source's migration and judging its end), `link`
//! (the destination thread, the tee), `progress` (watching, the timeout,
//! Ctrl-C), `converge` (auto-converge, the verdict on a timeout),
//! `checksum` and `report` (comparison and summary).

use std::io::{self, Write};

mod both;
mod checksum;
mod cli;
mod converge;
mod destination;
mod guest;
mod link;
mod migrate;
mod options;
mod progress;
mod qmp;
mod report;
mod source;

pub use checksum::{machine_checksums, Checksum, Xxh64};
pub use cli::{Args, RoleArg};
pub use converge::{verdict, Verdict};
pub use guest::pending_bytes;
pub use options::{parse_size, DemoOptions, ProgressMode, Role, MAX_RAM_SIZE};
pub use report::{human_bytes, human_rate, peak_rss, Check, DemoReport};

const MIB: u64 = 1024 * 1024;

/// A demo failure, with what went wrong.
#[derive(Debug)]
pub enum DemoError {
    /// The migration (or the demo's setup or its verification) failed.
    Failed(String),
    /// Cancelled from outside (Ctrl-C): the source resumed its guest, the
    /// summary was printed.
    Interrupted(String),
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::Failed(m) | DemoError::Interrupted(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DemoError {}

impl From<vmstate_runtime::Error> for DemoError {
    fn from(e: vmstate_runtime::Error) -> Self {
        DemoError::Failed(e.to_string())
    }
}

impl From<io::Error> for DemoError {
    fn from(e: io::Error) -> Self {
        DemoError::Failed(e.to_string())
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, DemoError> {
    Err(DemoError::Failed(msg.into()))
}

/// Runs the demo as `opts.role` says, writing its story to `out`. Fails (with
/// what went wrong) if the migration fails, does not converge within the
/// timeout, is interrupted, or (both sides here) the destination's state
/// differs from the source's at switchover.
pub fn run(opts: &DemoOptions, out: &mut dyn Write) -> Result<DemoReport, DemoError> {
    opts.check()?;
    let report = match opts.role {
        _ if opts.qmp.is_some() => qmp::run(opts, out),
        Role::Both => both::run(opts, out),
        Role::Source => source::run(opts, out),
        Role::Destination => destination::run(opts, out),
    };
    let _ = out.flush();
    report
}
