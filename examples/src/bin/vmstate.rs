//! `vmstate`: tools for QEMU migration streams and the built-in device types.
//!
//! * `vmstate analyze FILE [--dump state|desc] [--memory] [--max-output BYTES]`: decode a migration
//!   stream file like QEMU's `scripts/analyze-migration.py` (same JSON);
//! * `vmstate describe [TYPE...]`: the wire layout of the built-in device types;
//! * `vmstate dump-vmstate [--machine NAME]`: their QEMU `-dump-vmstate` JSON;
//! * `vmstate rewrite IN OUT [--report] [--strict]`: a QEMU `pc` stream through the models
//!   and written again;
//! * `vmstate receive URI OUT [--like FILE]`: the destination of a live migration
//!   from a QEMU `pc` machine, the final state written as a stream file;
//! * `vmstate send IN URI [--postcopy]`: a stream file migrated live into a QEMU
//!   started with `-incoming URI`;
//! * `vmstate docs [--format markdown|json] [--output FILE]`: the device catalog's
//!   wire-format page (checked in as `vmstate-devices/WIRE-FORMAT.md`) or its
//!   `-dump-vmstate` JSON (checked in as `vmstate-devices/schema/vmstate-schema.json`);
//! * `vmstate check SRC.json DEST.json` (or `-s SRC -d DEST`): QEMU's static
//!   compatibility check of two `-dump-vmstate` dumps, both ways; exit 0 when
//!   compatible, 1 when not, 2 on bad input.
//!
//! Run: `cargo run --release -p vmstate-examples --bin vmstate -- --help`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use vmstate_examples::analyze::{self, AnalyzeOptions};
use vmstate_examples::dump;
use vmstate_examples::interop;
use vmstate_examples::schema::check::{self as schema_check, Finding, Report};

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
        /// repeat it to add the subsections other saves sent. With it the
        /// stream loads as it arrives and the return path is answered
        /// (postcopy); without it the whole stream is kept and loaded at its
        /// end, framed by its own vmdesc (precopy without a return path).
        #[arg(long, value_name = "FILE")]
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
    /// Render the device catalog: its wire-format page (Markdown), or its
    /// `-dump-vmstate` JSON.
    ///
    /// Regenerate the checked-in files with
    ///   vmstate docs --output vmstate-devices/WIRE-FORMAT.md
    ///   vmstate docs --format json --output vmstate-devices/schema/vmstate-schema.json
    #[command(verbatim_doc_comment)]
    Docs {
        /// What to render.
        #[arg(long, value_enum, default_value_t = DocsFormat::Markdown)]
        format: DocsFormat,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Compare two `-dump-vmstate` dumps by the rules of QEMU's
    /// scripts/vmstate-static-checker.py, in both directions.
    ///
    /// SRC is the side that sends (the old version), DEST the one that loads
    /// (the new one). Every problem QEMU's checker prints for `-s SRC -d DEST` is
    /// listed, then those its `--reverse` pass adds; each says which migration
    /// direction it breaks. Exit status: 0 compatible, 1 not, 2 bad input.
    ///
    /// Examples:
    ///   vmstate check old.json new.json
    ///   vmstate check -s old.json -d new.json --json
    #[command(verbatim_doc_comment)]
    Check {
        /// Source dump (positional form).
        #[arg(conflicts_with = "src_flag", required_unless_present = "src_flag")]
        src: Option<PathBuf>,
        /// Destination dump (positional form).
        #[arg(conflicts_with = "dest_flag", required_unless_present = "dest_flag")]
        dest: Option<PathBuf>,
        /// Source dump (as QEMU's script takes it).
        #[arg(short = 's', long = "src", value_name = "SRC")]
        src_flag: Option<PathBuf>,
        /// Destination dump (as QEMU's script takes it).
        #[arg(short = 'd', long = "dest", value_name = "DEST")]
        dest_flag: Option<PathBuf>,
        /// Swap source and destination (QEMU's --reverse).
        #[arg(long)]
        reverse: bool,
        /// Also fail (exit 1) when only backward migration (DEST -> SRC) breaks.
        #[arg(long)]
        both_ways: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum DocsFormat {
    /// The wire-format page.
    Markdown,
    /// QEMU `-dump-vmstate` JSON of the catalog's devices.
    Json,
}

/// Exit status of `check` on bad input (unreadable or malformed dumps).
const EXIT_BAD_INPUT: u8 = 2;

#[derive(ValueEnum, Clone, Copy, Debug)]
enum DumpKind {
    State,
    Desc,
}

fn run(cli: Cli) -> Result<ExitCode, String> {
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
            let all = dump::device_types();
            let chosen: Vec<_> = if types.is_empty() {
                all.clone()
            } else {
                types
                    .iter()
                    .map(|t| {
                        dump::find_type(t).ok_or_else(|| {
                            let known: Vec<_> = all.iter().map(|d| d.qom).collect();
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
            print!(
                "{}",
                dump::dump_vmstate_text(&machine, &dump::device_types())
            )
        }
        Cmd::Docs { format, output } => {
            let text = match format {
                DocsFormat::Markdown => dump::catalog_markdown().map_err(|e| e.to_string())?,
                DocsFormat::Json => dump::catalog_dump_text(),
            };
            match output {
                Some(path) => {
                    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?
                }
                None => print!("{text}"),
            }
        }
        Cmd::Check {
            src,
            dest,
            src_flag,
            dest_flag,
            reverse,
            both_ways,
            json,
        } => {
            // clap requires one form of each (positional or flag).
            let (Some(src), Some(dest)) = (src.or(src_flag), dest.or(dest_flag)) else {
                return Err("check needs a source and a destination dump".into());
            };
            return Ok(check(src, dest, reverse, both_ways, json));
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
    Ok(ExitCode::SUCCESS)
}

/// Reads and parses one dump; the error is a bad-input message.
fn read_dump(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// `vmstate check`: the exit status is the verdict.
fn check(
    cli_src: PathBuf,
    cli_dest: PathBuf,
    reverse: bool,
    both_ways: bool,
    json: bool,
) -> ExitCode {
    let (src_path, dest_path) = if reverse {
        (cli_dest, cli_src)
    } else {
        (cli_src, cli_dest)
    };
    let report = read_dump(&src_path).and_then(|src| {
        let dest = read_dump(&dest_path)?;
        schema_check::compare(&src, &dest).map_err(|e| e.to_string())
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vmstate: error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let compatible = report.qemu_compatible()
        && report.is_forward_compatible()
        && (!both_ways || report.is_compatible_both_ways());
    let text = if json {
        let mut t = report_json(&report, &src_path, &dest_path, compatible).to_string();
        t.push('\n');
        t
    } else {
        report_text(&report, &src_path, &dest_path)
    };
    // A closed pipe ends the output quietly; the verdict stands.
    let _ = std::io::stdout().write_all(text.as_bytes());
    if compatible {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn finding_json(f: &Finding, pass: &str) -> serde_json::Value {
    serde_json::json!({
        "pass": pass,
        "section": f.section,
        "description": f.description,
        "field": f.field,
        "kind": f.kind.name(),
        "breaks": f.breaks.name(),
        "message": f.message,
    })
}

fn report_json(r: &Report, src: &Path, dest: &Path, compatible: bool) -> serde_json::Value {
    let findings: Vec<_> = r
        .forward
        .iter()
        .map(|f| finding_json(f, "forward"))
        .chain(r.backward.iter().map(|f| finding_json(f, "reverse")))
        .collect();
    serde_json::json!({
        "src": src.display().to_string(),
        "dest": dest.display().to_string(),
        "compatible": compatible,
        "qemu_problems": r.forward.len(),
        "forward_compatible": r.is_forward_compatible(),
        "backward_compatible": r.all().all(|f| !f.breaks.backward()),
        "warnings": r.warnings,
        "findings": findings,
    })
}

fn report_text(r: &Report, src: &Path, dest: &Path) -> String {
    use std::fmt::Write as _;
    let (s, d) = (src.display(), dest.display());
    let mut out = String::new();
    for w in &r.warnings {
        let _ = writeln!(out, "{w}");
    }
    let tag = |f: &Finding| match f.breaks.name() {
        "neither" => "breaks neither direction (same bytes)".to_string(),
        "both" => "breaks both directions".to_string(),
        dir => format!("breaks {dir} migration"),
    };
    let _ = writeln!(
        out,
        "{s} -> {d}: {} problem(s) by QEMU's vmstate-static-checker rules",
        r.forward.len()
    );
    for f in &r.forward {
        let _ = writeln!(out, "  {f}  [{}]", tag(f));
    }
    if !r.backward.is_empty() {
        let _ = writeln!(out, "{d} -> {s} (reverse pass), further problem(s):");
        for f in &r.backward {
            let _ = writeln!(out, "  {f}  [{}]", tag(f));
        }
    }
    let verdict = |ok: bool| if ok { "works" } else { "breaks" };
    let _ = writeln!(
        out,
        "forward migration ({s} -> {d}) {}; backward migration ({d} -> {s}) {}",
        verdict(r.is_forward_compatible() && r.qemu_compatible()),
        verdict(r.all().all(|f| !f.breaks.backward())),
    );
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vmstate: error: {e}");
            ExitCode::FAILURE
        }
    }
}
