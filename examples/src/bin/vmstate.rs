//! `vmstate`: tools for QEMU migration streams and the catalog's device models.
//! One binary, one subcommand per job; each is a thin front end over library
//! code (`vmstate_devices::analyze`, `vmstate_devices::schema`,
//! `vmstate_examples::interop`).
//!
//! * `vmstate analyze [FILE | -f FILE | -] [--dump state|desc] [--memory] [-x]`: decode a
//!   migration stream like QEMU's `scripts/analyze-migration.py` (same JSON),
//!   read incrementally with bounded memory;
//! * `vmstate describe [TYPE...]`: the wire layout of the catalog's device types;
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
//!   compatible, 1 when not, 2 on bad input;
//! * `vmstate rewrite IN OUT`, `receive URI OUT --like FILE`, `send IN URI`: QEMU
//!   `pc` streams through the models, and live migration with QEMU;
//! * `vmstate completions SHELL`: a completion script for bash, zsh, fish,
//!   elvish or PowerShell.
//!
//! Exit status: 0 success, 1 failure (bad stream, incompatible dumps), 2 usage
//! error (and bad input for `check`). Output into a closed pipe
//! (`vmstate analyze f.mig | head`) ends quietly with status 0.
//!
//! Install: `cargo install --path examples --bin vmstate`; or run
//! `cargo run --release -p vmstate-examples --bin vmstate -- --help`.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use vmstate_examples::analyze::{self, AnalyzeError, AnalyzeOptions};
use vmstate_examples::dump;
use vmstate_examples::interop;
use vmstate_examples::schema::check::{self as schema_check, Finding, Report};

#[derive(Parser, Debug)]
#[command(
    name = "vmstate",
    version,
    about = "Tools for QEMU migration streams and vmstate-rs device types",
    after_help = "Examples:
  vmstate analyze vm.mig                 decoded state, as QEMU's analyze-migration.py prints it
  vmstate analyze -f vm.mig -d desc      the stream's vmdesc trailer
  cat vm.mig | vmstate analyze -         from standard input
  vmstate analyze -x --extract-dir out vm.mig   RAMBlock contents into files
  vmstate check old.json new.json        static compatibility of two -dump-vmstate dumps
  vmstate docs --output vmstate-devices/WIRE-FORMAT.md
  vmstate completions bash > /etc/bash_completion.d/vmstate

Exit status: 0 success, 1 failure (bad stream, incompatible dumps), 2 usage error
(and bad input for check). Writing into a closed pipe ends quietly with 0.
Install: cargo install --path examples --bin vmstate"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// More log output on stderr, repeatable: -v info, -vv debug, -vvv trace
    /// (RUST_LOG, when set, takes precedence).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Decode a migration stream (like QEMU's scripts/analyze-migration.py).
    ///
    /// The stream is read incrementally, in 64 KiB reads: a seekable file's
    /// vmdesc trailer is read from its end, then the stream from the start; a
    /// pipe or standard input is checked by its first bytes (a bad magic fails
    /// at once), then spooled to a temporary file (or, with --vmdesc, walked
    /// directly). A cut stream is reported with the byte offset and section
    /// where it stops.
    ///
    /// Examples:
    ///   vmstate analyze vm.mig
    ///   vmstate analyze -f vm.mig --dump desc
    ///   ssh host cat vm.mig | vmstate analyze - --vmdesc other.mig
    ///   vmstate analyze -x --extract-dir out vm.mig
    #[command(verbatim_doc_comment)]
    Analyze {
        /// The stream file (QEMU's `migrate "exec:cat > FILE"`, or `demo
        /// --keep-stream FILE`); `-` reads standard input.
        #[arg(conflicts_with = "file_flag", required_unless_present = "file_flag")]
        file: Option<PathBuf>,
        /// The stream file, as QEMU's script takes it.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file_flag: Option<PathBuf>,
        /// What to print: the decoded device state, or the stream's vmdesc trailer.
        #[arg(short, long, value_enum, default_value_t = DumpKind::State)]
        dump: DumpKind,
        /// Include RAM page contents in the state dump.
        #[arg(short, long)]
        memory: bool,
        /// Extract: write desc.json, each RAMBlock's final contents (a file
        /// named by its idstr) and state.json, printing each name, as QEMU's
        /// script does.
        #[arg(short = 'x', long)]
        extract: bool,
        /// Directory for --extract.
        #[arg(long, value_name = "DIR", default_value = ".", requires = "extract")]
        extract_dir: PathBuf,
        /// Take the vmdesc from this file instead of the stream's own trailer:
        /// another stream of the same machine, or the JSON itself.
        #[arg(long, value_name = "FILE")]
        vmdesc: Option<PathBuf>,
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
    /// Print a shell completion script.
    ///
    /// Examples:
    ///   vmstate completions bash > ~/.local/share/bash-completion/completions/vmstate
    ///   vmstate completions zsh > ~/.zfunc/_vmstate
    #[command(verbatim_doc_comment)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum DumpKind {
    /// The decoded device state.
    State,
    /// The vmdesc trailer.
    Desc,
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Cmd::Analyze {
            file,
            file_flag,
            dump,
            memory,
            extract,
            extract_dir,
            vmdesc,
            max_output,
        } => {
            // clap requires one form (positional or flag).
            let Some(file) = file.or(file_flag) else {
                return Err("analyze needs a stream file (or - for standard input)".into());
            };
            let job = AnalyzeJob {
                dump,
                memory,
                extract: extract.then_some(extract_dir),
                vmdesc,
                max_output,
            };
            return run_analyze(&file, &job);
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
            let mut text = String::new();
            for (i, t) in chosen.iter().enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                text.push_str(&dump::describe(t));
            }
            return Ok(emit(text.as_bytes()));
        }
        Cmd::DumpVmstate { machine } => {
            let text = dump::dump_vmstate_text(&machine, &dump::device_types());
            return Ok(emit(text.as_bytes()));
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
                None => return Ok(emit(text.as_bytes())),
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
        Cmd::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "vmstate", &mut out);
            return Ok(emit(&out));
        }
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

/// What `vmstate analyze` was asked for.
struct AnalyzeJob {
    dump: DumpKind,
    memory: bool,
    extract: Option<PathBuf>,
    vmdesc: Option<PathBuf>,
    max_output: usize,
}

/// Writes to standard output; a closed pipe ends quietly (status 0), another
/// write error is a failure.
fn emit(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmstate: error: writing the output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes JSON as analyze-migration.py prints it, at most `max_output`
/// bytes, as it is made (no copy of the whole text); a closed pipe ends
/// quietly.
fn emit_json(v: &serde_json::Value, max_output: usize) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let written = analyze::write_python_json_bounded(v, max_output, &mut out)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmstate: error: writing the output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The stream as a seekable file: the file itself when it is a regular file,
/// else (a pipe, standard input, a device) its first 8 bytes checked, then
/// all of it spooled to an anonymous temporary file (disk, not memory).
fn seekable_input(path: &Path) -> Result<File, String> {
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    if path != Path::new("-") {
        let f = File::open(path).map_err(|e| named(&e))?;
        if f.metadata().map_err(|e| named(&e))?.is_file() {
            return Ok(f);
        }
        return spool(Box::new(f), path);
    }
    spool(Box::new(std::io::stdin()), path)
}

fn spool(mut src: Box<dyn Read>, path: &Path) -> Result<File, String> {
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let header = analyze::read_header(&mut src).map_err(|e| named(&e))?;
    let mut tmp =
        tempfile::tempfile().map_err(|e| format!("a temporary file to spool into: {e}"))?;
    tmp.write_all(&header).map_err(|e| named(&e))?;
    let mut buf = vec![0u8; analyze::CHUNK];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(named(&e)),
        };
        tmp.write_all(&buf[..n]).map_err(|e| named(&e))?;
    }
    tmp.rewind().map_err(|e| named(&e))?;
    Ok(tmp)
}

/// The vmdesc of `--vmdesc FILE`: the JSON itself, or another stream's trailer.
fn vmdesc_from(path: &Path) -> Result<serde_json::Value, String> {
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut f = File::open(path).map_err(|e| named(&e))?;
    let mut first = [0u8; 1];
    f.read_exact(&mut first).map_err(|e| named(&e))?;
    if first[0] == b'{' {
        let v: serde_json::Value =
            serde_json::from_reader(File::open(path).map_err(|e| named(&e))?)
                .map_err(|e| named(&format!("not JSON: {e}")))?;
        analyze::check_vmdesc(&v).map_err(|e| named(&e))?;
        return Ok(v);
    }
    analyze::analyze_desc_file(&mut f).map_err(|e| named(&e))
}

fn run_analyze(path: &Path, job: &AnalyzeJob) -> Result<ExitCode, String> {
    let named = |e: &AnalyzeError| format!("{}: {e}", path.display());
    let mut opts = AnalyzeOptions {
        dump_memory: job.memory && job.extract.is_none(),
        memory_budget: job.max_output as u64,
        ..AnalyzeOptions::default()
    };
    let pretty = |v: &serde_json::Value| {
        let mut t = analyze::to_python_json_bounded(v, job.max_output);
        t.push('\n');
        t
    };
    if let Some(dir) = &job.extract {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        opts.extract = Some(dir.clone());
    }
    // A stream read straight through, described by --vmdesc.
    let analysis = if let (Some(desc_path), DumpKind::State) = (&job.vmdesc, job.dump) {
        let desc = vmdesc_from(desc_path)?;
        if let Some(dir) = &job.extract {
            write_named(dir, "desc.json", pretty(&desc).as_bytes())?;
        }
        let r: Box<dyn Read + Send> = if path == Path::new("-") {
            Box::new(std::io::stdin())
        } else {
            Box::new(File::open(path).map_err(|e| format!("{}: {e}", path.display()))?)
        };
        analyze::analyze_reader_with(r, &desc, &opts).map_err(|e| named(&e))?
    } else {
        let mut f = seekable_input(path)?;
        if job.dump == DumpKind::Desc {
            let desc = match &job.vmdesc {
                Some(p) => vmdesc_from(p)?,
                None => analyze::analyze_desc_file(&mut f).map_err(|e| named(&e))?,
            };
            return Ok(emit_json(&desc, job.max_output));
        }
        if let Some(dir) = &job.extract {
            let desc = analyze::analyze_desc_file(&mut f).map_err(|e| named(&e))?;
            write_named(dir, "desc.json", pretty(&desc).as_bytes())?;
        }
        analyze::analyze_file(f, &opts).map_err(|e| named(&e))?
    };
    let Some(dir) = &job.extract else {
        return Ok(emit_json(&analysis.state, job.max_output));
    };
    let mut names = String::new();
    for idstr in &analysis.extracted {
        names.push_str(&format!("{idstr}\n"));
    }
    write_named(dir, "state.json", pretty(&analysis.state).as_bytes())?;
    names.push_str("state.json\n");
    Ok(emit(format!("desc.json\n{names}").as_bytes()))
}

/// Writes `dir/name` (without the final newline, as QEMU's script writes it).
fn write_named(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let p = dir.join(name);
    std::fs::write(&p, bytes.strip_suffix(b"\n").unwrap_or(bytes))
        .map_err(|e| format!("{}: {e}", p.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    vmstate_examples::logging::init(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vmstate: error: {e}");
            ExitCode::FAILURE
        }
    }
}
