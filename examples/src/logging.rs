//! The binaries' `tracing` output: `RUST_LOG` (tracing-subscriber's
//! env-filter syntax, e.g. `RUST_LOG=vmstate_runtime=debug`) when set, else
//! the `-v` count: none is quiet, `-v` info (statuses, convergence decision,
//! switchover), `-vv` debug (dirty syncs, convergence checks, iterations,
//! postcopy page requests), `-vvv` trace (every section). Written to stderr,
//! so stdout (reports, JSON) stays as it is.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter for `verbose` `-v` flags when `RUST_LOG` is unset.
///
/// ```
/// assert_eq!(vmstate_examples::logging::level_for(0), "off");
/// assert_eq!(vmstate_examples::logging::level_for(2), "debug");
/// assert_eq!(vmstate_examples::logging::level_for(9), "trace");
/// ```
pub fn level_for(verbose: u8) -> &'static str {
    match verbose {
        0 => "off",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// Installs the subscriber for a binary (once; a second call does nothing).
/// An invalid `RUST_LOG` is reported on stderr and the `-v` level used.
pub fn init(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("warning: RUST_LOG={spec:?} ignored: {e}");
            EnvFilter::new(level_for(verbose))
        }),
        _ => EnvFilter::new(level_for(verbose)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
