//! The main job, on built-in defaults: a live migration of a small VM (128 MiB of
//! guest RAM in QEMU's pc RAM blocks and a PC keyboard controller) while its
//! guest keeps writing memory and typing, to a destination in another thread
//! over a unix socket, with a bandwidth and a downtime limit; then a
//! `query-migrate`-style summary and a byte-for-byte check that the
//! destination holds the source's state at switchover. `--role source` and
//! `--role destination` run one side each, as two QEMU processes are run.
//!
//! Run: `cargo run --release -p vmstate-examples --bin demo [-- --help]`

use std::process::ExitCode;

use clap::Parser;
use vmstate_examples::demo::{self, Args, DemoError};
use vmstate_runtime::migration::CancelToken;

/// Exit status of a run cancelled by Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let args = Args::parse();
    vmstate_examples::logging::init(args.verbose);
    let mut opts = args.into_options();
    // The first Ctrl-C cancels the migration cleanly (the source resumes, the
    // summary is printed, temporary files go); a second one exits at once.
    let interrupt = CancelToken::new();
    let token = interrupt.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        if token.is_cancelled() {
            std::process::exit(i32::from(INTERRUPTED));
        }
        eprintln!("\ndemo: Ctrl-C: cancelling the migration (again to quit at once)");
        token.cancel();
    }) {
        eprintln!("demo: warning: no Ctrl-C handler ({e}); Ctrl-C quits without cleanup");
    }
    opts.interrupt = Some(interrupt);
    let mut out = std::io::stdout();
    match demo::run(&opts, &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e @ DemoError::Interrupted(_)) => {
            eprintln!("demo: {e}");
            ExitCode::from(INTERRUPTED)
        }
        Err(e) => {
            eprintln!("demo: error: {e}");
            ExitCode::FAILURE
        }
    }
}
