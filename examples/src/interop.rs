//! `vmstate rewrite`, `vmstate receive` and `vmstate send`: the command-line
//! ends of [`vmstate_devices::qemu_pc`] (file handling and what is printed;
//! the migration work is the library's). Each returns the text to print, or
//! the error message.

use std::path::Path;
use std::time::Duration;

use vmstate_devices::qemu_pc;
use vmstate_runtime::migration::{Incoming, MigrationUri};

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_uri(uri: &str) -> Result<MigrationUri, String> {
    uri.parse().map_err(|e| format!("{uri}: {e}"))
}

/// `vmstate rewrite IN OUT [--report] [--strict]`: loads `input` into a
/// [`QemuPc`](qemu_pc::QemuPc) and writes it again to `output` in the input's
/// shape ([`qemu_pc::rewrite`]); says whether the two are byte-identical (and
/// where they first differ) and, with `report`, how each section went
/// through. With `strict` it fails, naming them, when sections of a kind that
/// must go through a model ([`KINDS_TO_MODEL`](qemu_pc::KINDS_TO_MODEL)) were
/// carried opaque, or when the output is not byte-identical.
pub fn rewrite(input: &Path, output: &Path, report: bool, strict: bool) -> Result<String, String> {
    let stream = read(input)?;
    let r = qemu_pc::rewrite(&stream).map_err(|e| format!("{}: {e}", input.display()))?;
    write(output, &r.output)?;
    let mut out = String::new();
    if report {
        for line in r.lines() {
            out += &line;
            out.push('\n');
        }
    }
    out += &match r.first_difference {
        None => "byte-identical\n".to_string(),
        Some(at) => format!(
            "not byte-identical: first difference at offset {at} ({} and {} bytes)\n",
            stream.len(),
            r.output.len()
        ),
    };
    if strict {
        let opaque = r.opaque_of_modelled_kinds();
        if !opaque.is_empty() {
            return Err(format!(
                "{}: --strict: carried opaque but must go through a model: {}",
                input.display(),
                opaque.join(", ")
            ));
        }
        if let Some(at) = r.first_difference {
            return Err(format!(
                "{}: --strict: the rewrite is not byte-identical (first difference at offset {at})",
                input.display()
            ));
        }
    }
    Ok(out)
}

/// Longest stream `vmstate receive` without `--like` keeps in memory.
const MAX_WHOLE_STREAM: u64 = 64 << 30;

/// `vmstate receive URI OUT [--like FILE...]`: the destination of a live
/// migration from QEMU; the state is written to `output`. With `like` (saves
/// of the same machine) the stream loads as it arrives and the return path
/// is answered (postcopy too: the pages come as QEMU sends them); without,
/// the whole stream is kept and loaded at its end.
pub fn receive(
    uri: &str,
    output: &Path,
    like: &[std::path::PathBuf],
    timeout: u64,
) -> Result<String, String> {
    let uri = parse_uri(uri)?;
    let on_listen = |incoming: &Incoming| match incoming.local_tcp_addr() {
        Some(addr) => eprintln!("listening on tcp:{addr}"),
        None => eprintln!("listening"),
    };
    let patience = Duration::from_secs(timeout);
    let (mut reg, stats) = if like.is_empty() {
        let (_, reg, stats, _) =
            qemu_pc::receive_whole(&uri, patience, MAX_WHOLE_STREAM, on_listen)
                .map_err(|e| format!("receiving: {e}"))?;
        (reg, stats)
    } else {
        let like = like
            .iter()
            .map(|p| read(p))
            .collect::<Result<Vec<_>, _>>()?;
        let (_, reg, stats) = qemu_pc::receive(&uri, &like, patience, on_listen)
            .map_err(|e| format!("receiving: {e}"))?;
        (reg, stats)
    };
    let stream = qemu_pc::write_stream(&mut reg).map_err(|e| format!("writing: {e}"))?;
    write(output, &stream)?;
    Ok(qemu_pc::summary(&stats))
}

/// `vmstate send IN URI [--postcopy]`: migrates the stream file into a QEMU
/// listening at `uri`.
pub fn send(input: &Path, uri: &str, postcopy: bool) -> Result<String, String> {
    let uri = parse_uri(uri)?;
    let stream = read(input)?;
    let stats = qemu_pc::send(&stream, uri, postcopy).map_err(|e| {
        format!(
            "sending: {e} (if the destination QEMU refused the load, its stderr says \
             why: its command line must have the stream's machine and devices)"
        )
    })?;
    Ok(qemu_pc::summary(&stats))
}
