//! `vmstate`: tools for QEMU migration streams and the built-in device types.
//!
//! * `vmstate analyze FILE [--dump state|desc] [--memory] [--max-output BYTES]`: decode a migration
//!   stream file like QEMU's `scripts/analyze-migration.py` (same JSON);
//! * `vmstate describe [TYPE...]`: the wire layout of the built-in device types;
//! * `vmstate dump-vmstate [--machine NAME]`: their QEMU `-dump-vmstate` JSON.
//!
//! Run: `cargo run --release -p vmstate-examples --bin vmstate -- --help`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use vmstate_examples::analyze::{self, AnalyzeOptions};
use vmstate_examples::dump::{self, DEVICE_TYPES};

#[derive(Parser, Debug)]
#[command(
    name = "vmstate",
    version,
    about = "Tools for QEMU migration streams and vmstate-rs device types"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Decode a migration stream file (like QEMU's scripts/analyze-migration.py).
    Analyze {
        /// The stream file (e.g. written by QEMU's `migrate "exec:cat > FILE"`, or by
        /// `demo --keep-stream FILE`).
        file: PathBuf,
        /// What to print: the decoded device state, or the stream's vmdesc trailer.
        #[arg(short, long, value_enum, default_value_t = DumpKind::State)]
        dump: DumpKind,
        /// Include RAM page contents in the state dump.
        #[arg(short, long)]
        memory: bool,
        /// Print at most this many bytes of JSON; longer output is cut with a
        /// final line "... output truncated at N bytes".
        #[arg(long, value_name = "BYTES", default_value_t = analyze::DEFAULT_MAX_OUTPUT)]
        max_output: usize,
    },
    /// Print the wire layout of the built-in device types (all, or those named:
    /// i8042, ps2-kbd, ps2-mouse, or their Rust or section names).
    Describe {
        /// Types to describe.
        types: Vec<String>,
    },
    /// Print QEMU `-dump-vmstate`-style JSON for the built-in device types (input
    /// for QEMU's scripts/vmstate-static-checker.py).
    DumpVmstate {
        /// Machine type recorded under "vmschkmachine".
        #[arg(long, default_value = "pc-i440fx-7.2")]
        machine: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum DumpKind {
    State,
    Desc,
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Cmd::Analyze {
            file,
            dump,
            memory,
            max_output,
        } => {
            let data = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let json = match dump {
                DumpKind::State => analyze::analyze_state(
                    &data,
                    &AnalyzeOptions {
                        dump_memory: memory,
                        ..AnalyzeOptions::default()
                    },
                ),
                DumpKind::Desc => analyze::analyze_desc(&data),
            }
            .map_err(|e| format!("{}: {e}", file.display()))?;
            println!("{}", analyze::to_python_json_bounded(&json, max_output));
        }
        Cmd::Describe { types } => {
            let chosen: Vec<_> = if types.is_empty() {
                DEVICE_TYPES.iter().collect()
            } else {
                types
                    .iter()
                    .map(|t| {
                        dump::find_type(t).ok_or_else(|| {
                            let known: Vec<_> = DEVICE_TYPES.iter().map(|d| d.qom).collect();
                            format!("unknown device type '{t}' (known: {})", known.join(", "))
                        })
                    })
                    .collect::<Result<_, _>>()?
            };
            for (i, t) in chosen.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", dump::describe(t));
            }
        }
        Cmd::DumpVmstate { machine } => {
            println!("{}", dump::dump_vmstate_text(&machine, DEVICE_TYPES))
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmstate: error: {e}");
            ExitCode::FAILURE
        }
    }
}
