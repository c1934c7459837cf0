//! `vmstate`: tools for QEMU migration streams and the built-in device types.
//!
//! * `vmstate analyze FILE [--dump state|desc] [--memory] [--max-output BYTES]`: decode a migration
//!   stream file like QEMU's `scripts/analyze-migration.py` (same JSON);
//! * `vmstate describe [TYPE...]`: the wire layout of the built-in device types;
//! * `vmstate dump-vmstate [--machine NAME]`: their QEMU `-dump-vmstate` JSON;
//! * `vmstate rewrite IN OUT [--report] [--strict]`: a QEMU `pc` stream through the models
//!   and written again;
//! * `vmstate receive URI OUT --like FILE`: the destination of a live migration
//!   from a QEMU `pc` machine, the final state written as a stream file;
//! * `vmstate send IN URI [--postcopy]`: a stream file migrated live into a QEMU
//!   started with `-incoming URI`.
//!
//! Run: `cargo run --release -p vmstate-examples --bin vmstate -- --help`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use vmstate_examples::analyze::{self, AnalyzeOptions};
use vmstate_examples::dump::{self, DEVICE_TYPES};
use vmstate_examples::interop;

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
    /// Parse a QEMU 7.2 `pc` stream into the models (RAM, keyboard controller;
    /// other sections carried opaque) and write it again with our writer.
    Rewrite {
        /// The stream file QEMU wrote.
        input: PathBuf,
        /// Where to write ours.
        output: PathBuf,
        /// Print one line per section: through a model or carried opaque.
        #[arg(long)]
        report: bool,
        /// Fail if a section of a kind that must go through a model (RAM,
        /// keyboard controller, virtio devices) was carried opaque.
        #[arg(long)]
        strict: bool,
    },
    /// Act as the destination of a live migration from a QEMU `pc` machine
    /// (QMP `migrate uri=URI`) and write the final state as a stream file.
    Receive {
        /// Where to listen: `unix:PATH` or `tcp:HOST:PORT`.
        uri: String,
        /// Where to write the received state.
        output: PathBuf,
        /// A stream file QEMU saved from the same command line (it gives the
        /// RAM size and, in its vmdesc, the sections and their layouts);
        /// repeat it to add the subsections other saves sent.
        #[arg(long, value_name = "FILE", required = true)]
        like: Vec<PathBuf>,
        /// Seconds to wait for QEMU to connect and for each read.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Migrate a stream file live into a QEMU started with `-incoming URI`.
    Send {
        /// The stream file (QEMU's, or written by `rewrite`/`receive`).
        input: PathBuf,
        /// QEMU's incoming address: `unix:PATH` or `tcp:HOST:PORT`.
        uri: String,
        /// Allow postcopy (the destination must enable `postcopy-ram` too).
        #[arg(long)]
        postcopy: bool,
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
        Cmd::Rewrite {
            input,
            output,
            report,
            strict,
        } => print!("{}", interop::rewrite(&input, &output, report, strict)?),
        Cmd::Receive {
            uri,
            output,
            like,
            timeout,
        } => print!("{}", interop::receive(&uri, &output, &like, timeout)?),
        Cmd::Send {
            input,
            uri,
            postcopy,
        } => print!("{}", interop::send(&input, &uri, postcopy)?),
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
