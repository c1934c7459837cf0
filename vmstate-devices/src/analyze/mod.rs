//! Reading a QEMU migration stream the way QEMU's
//! `scripts/analyze-migration.py` does (qemu-wire.md §8.1), with the same JSON
//! output (and its `-x` extraction), but treating the input as untrusted:
//! every read is bounded, every malformed input is an [`AnalyzeError`] saying
//! what was wrong and where. This is the library behind `vmstate analyze`
//! (feature `analyze`).
//!
//! It lives in `vmstate-devices`, not in the runtime: it decodes the "ram"
//! section with this crate's RAM record codec
//! ([`ram::protocol::RamDecoder`](crate::ram::protocol::RamDecoder)), and the
//! runtime knows no device. What it takes from the runtime is the stream
//! format ([`savevm::format`](vmstate_runtime::savevm::format): magic,
//! version, record types, markers) and the bounded big-endian
//! [`wire::Reader`](vmstate_runtime::wire::Reader) every read goes through;
//! there is no second parser of either.
//!
//! How it works:
//!
//! 1. check the header (`QEVM`, version 3) from the first bytes read, so a
//!    file that is no stream (`/dev/zero`, a pipe of anything) fails at once;
//! 2. find the vmdesc trailer from the end of the file (`0x06`, be32 length,
//!    JSON that runs exactly to the end of the file), searching backwards in
//!    [`CHUNK`]-byte reads ([`find_vmdesc_in`]), and parse it;
//! 3. walk the stream from the start through a [`wire::Reader`](vmstate_runtime::wire::Reader)
//!    refilled in [`CHUNK`]-byte reads: configuration, commands (skipped),
//!    START/PART/END/FULL sections, footers, EOF. FULL bodies are decoded from
//!    the vmdesc field lists alone (integers, bool, nested structs, arrays,
//!    subsections; any other type as opaque bytes of the described size); the
//!    "ram" section's records go through the RAM codec (MEM_SIZE list, ZERO,
//!    PAGE, CONTINUE, EOS), pages skipped unless dumped or extracted.
//!
//! Memory is bounded by the decoded state, the trailer and one item (a page,
//! or a field of at most [`MAX_FIELD_BYTES`]), never by the input: a 256 MiB
//! stream is analyzed in about 7 MiB of resident memory (10 MiB extracting it). [`analyze_file`]
//! reads a seekable file; [`analyze_reader_with`] a pipe, given the vmdesc
//! from elsewhere; the slice functions ([`analyze_state`], ...) the same way
//! over bytes in memory. A file cut short has no trailer: it is walked as far
//! as it goes without one and the error says in which section and at which
//! byte offset it stops. Text from the stream (section and block names) is
//! shown with bytes that are not UTF-8 as `\xNN`, and messages escape control
//! characters, so a hostile name cannot drive the terminal.
//!
//! Bounds against a hostile file: the vmdesc's counts and nesting are claims,
//! so the walk's work (records, fields, subsections, array elements visited)
//! is capped at [`AnalyzeOptions::work_per_byte`] per stream byte plus
//! [`WORK_BASE`] ([`analyze_state_counted`] reports it), which also bounds the
//! values it builds; struct nesting stops at [`MAX_STRUCT_DEPTH`]; every number
//! from the vmdesc is checked before arithmetic; sections and devices are found
//! by hash, not by scanning; at most [`MAX_RAM_BLOCKS`] RAMBlock names are
//! learned; and [`to_python_json_bounded`] caps the printed text
//! ([`DEFAULT_MAX_OUTPUT`] for `vmstate analyze`).
//!
//! ```
//! // A tiny stream: header, one FULL section described by the trailer, EOF.
//! let mut s = b"QEVM\0\0\0\x03".to_vec();
//! s.extend_from_slice(b"\x04\0\0\0\x00\x03dev\0\0\0\0\0\0\0\x01\x12\x34\x7e\0\0\0\x00\x00");
//! let json = br#"{"page_size": 4096, "devices": [{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": [{"name": "x", "type": "uint16", "size": 2}]}]}"#;
//! s.push(0x06);
//! s.extend_from_slice(&(json.len() as u32).to_be_bytes());
//! s.extend_from_slice(json);
//! let state = vmstate_devices::analyze::analyze_state(&s, &Default::default()).unwrap();
//! assert_eq!(state["dev (0)"]["x"], "0x1234");
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use bytes::BytesMut;

use serde_json::{Map, Value};
use vmstate_runtime::savevm::format::{
    self, MigCmd, RecordType, FILE_MAGIC, FILE_VERSION, NULLPTR_MARKER, SUBSECTION_MARKER,
};
use vmstate_runtime::wire::{Reader, Refill};

use crate::ram::protocol::{BlockTable, MemSizeOptions, RamDecoder, RecordHeader};
use crate::ram::RamBlockSpec;
use crate::ram::{RamError, RamErrorKind};

use crate::ram::protocol::{RamFlag, SECTION_NAME as RAM_SECTION, SECTION_VERSION as RAM_VERSION};

/// Where and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzeError {
    /// Byte offset in the file where the problem was found, when it is a stream
    /// problem.
    pub offset: Option<u64>,
    /// What was being decoded, outermost first (`section 'pckbd' (id 25)`,
    /// `field 'kbd'`, ...).
    pub context: Vec<String>,
    /// What was wrong.
    pub message: String,
}

impl AnalyzeError {
    fn new(offset: Option<u64>, message: impl Into<String>) -> Self {
        AnalyzeError {
            offset,
            context: Vec::new(),
            message: message.into(),
        }
    }

    fn within(mut self, what: impl Into<String>) -> Self {
        self.context.insert(0, what.into());
        self
    }
}

impl fmt::Display for AnalyzeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.context.is_empty() {
            write!(f, "{}: ", escape_for_message(&self.context.join(", ")))?;
        }
        f.write_str(&escape_for_message(&self.message))?;
        if let Some(o) = self.offset {
            write!(f, " (at byte offset {o} = {o:#x})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AnalyzeError {}

type Result<T> = std::result::Result<T, AnalyzeError>;

/// Options of [`analyze_state`].
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Include RAM page contents (`analyze-migration.py -m`).
    pub dump_memory: bool,
    /// Most values (fields, array elements, pages) one analysis may produce: a
    /// bound on what a hostile vmdesc can make the tool allocate.
    pub max_values: u64,
    /// Work allowed per byte of the stream: every record, field, subsection and
    /// array element the walk visits costs one unit, and one analysis may spend
    /// at most `work_per_byte * stream length + WORK_BASE` units. The vmdesc's
    /// counts (`array_len`, nesting) are claims; this ties the walk's time and
    /// memory to the bytes that back them (see [`AnalyzeWork`]).
    pub work_per_byte: u64,
    /// `analyze-migration.py -x`: write each RAMBlock's final contents to a
    /// file under this directory, named by the block's idstr (`pc.ram`,
    /// `0000:00:02.0/vga.vram`, `rom@etc/acpi/tables`, sparse where the
    /// stream sent zero pages). A name that is not a safe relative path
    /// (`..`, empty parts) is an error.
    pub extract: Option<PathBuf>,
    /// With `dump_memory`: bytes of page text kept at most (pages past it
    /// are left out: the printed output is cut before them anyway when it is
    /// bounded by as many bytes, see [`to_python_json_bounded`]).
    pub memory_budget: u64,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            dump_memory: false,
            max_values: MAX_VALUES,
            work_per_byte: WORK_PER_BYTE,
            extract: None,
            memory_budget: u64::MAX,
        }
    }
}

/// Largest vmdesc trailer looked for (the loader's limit).
pub const MAX_VMDESC_LEN: usize = format::MAX_VMDESC_LEN as usize;
/// Default bound of [`AnalyzeOptions::max_values`]: 4 Mi values (a 16 GiB guest's
/// pages with `dump_memory`, far more than any device state needs).
pub const MAX_VALUES: u64 = 1 << 22;

/// Default of [`AnalyzeOptions::work_per_byte`]. A real stream costs about one
/// unit per field of at least one byte (two or three with nested structs); 16
/// leaves room for every layout QEMU writes.
pub const WORK_PER_BYTE: u64 = 16;
/// Work any stream may take whatever its length (so a tiny stream with a real
/// vmdesc still decodes).
pub const WORK_BASE: u64 = 1 << 16;
/// Deepest nesting of `struct` fields and subsections the walk follows (QEMU's
/// devices nest a few levels; serde_json's own recursion limit keeps a parsed
/// trailer shallower still).
pub const MAX_STRUCT_DEPTH: usize = 32;
/// Default byte cap of [`to_python_json_bounded`] (the `vmstate analyze`
/// `--max-output` default): 256 MiB.
pub const DEFAULT_MAX_OUTPUT: usize = 256 << 20;

/// What one analysis cost, in the units [`AnalyzeOptions::work_per_byte`]
/// counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnalyzeWork {
    /// Records, fields, subsections and array elements visited.
    pub visits: u64,
    /// Visits allowed for this stream.
    pub limit: u64,
    /// Length of the stream walked (header to the vmdesc trailer).
    pub stream_bytes: u64,
}

/// The vmdesc trailer: where its record starts and the parsed JSON.
#[derive(Debug, Clone)]
pub struct VmDesc {
    /// Offset of the `0x06` byte.
    pub offset: usize,
    /// The JSON, with its key order.
    pub json: Value,
}

/// Checks the 8-byte stream header: `QEVM`, version 3. Only the bytes given
/// are looked at, so a bad magic is reported after reading 4 bytes.
///
/// ```
/// use vmstate_devices::analyze::check_header;
/// assert!(check_header(b"QEVM\0\0\0\x03").is_ok());
/// let e = check_header(b"\x7fELF\x02\x01\x01\0").unwrap_err();
/// assert_eq!(e.to_string(), "not a migration stream: magic 0x7f454c46, expected 0x5145564d (\"QEVM\") (at byte offset 0 = 0x0)");
/// ```
pub fn check_header(data: &[u8]) -> Result<()> {
    if data.len() >= 4 {
        let magic = u32::from_be_bytes(data[0..4].try_into().expect("4 bytes"));
        if magic != FILE_MAGIC {
            return Err(AnalyzeError::new(
                Some(0),
                format!(
                    "not a migration stream: magic {magic:#010x}, expected {FILE_MAGIC:#010x} (\"QEVM\")"
                ),
            ));
        }
    }
    if data.len() < 8 {
        return Err(AnalyzeError::new(
            Some(data.len() as u64),
            format!(
                "file too short for a migration stream header ({} bytes, need 8)",
                data.len()
            ),
        ));
    }
    let version = u32::from_be_bytes(data[4..8].try_into().expect("4 bytes"));
    if version != FILE_VERSION {
        return Err(AnalyzeError::new(
            Some(4),
            format!("unsupported stream version {version} (only {FILE_VERSION} is supported)"),
        ));
    }
    Ok(())
}

/// Reads the 8-byte header from `r` (no more) and checks it: how a pipe or
/// `/dev/zero` is refused after a few bytes.
pub fn read_header(r: &mut impl Read) -> Result<[u8; 8]> {
    let mut h = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match r.read(&mut h[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(AnalyzeError::new(
                    Some(got as u64),
                    format!("read error: {e}"),
                ))
            }
        }
        // A bad magic needs no more bytes.
        if got >= 4 && u32::from_be_bytes(h[0..4].try_into().expect("4 bytes")) != FILE_MAGIC {
            break;
        }
    }
    check_header(&h[..got])?;
    Ok(h)
}

/// Finds and parses the vmdesc trailer: a `0x06` byte, a be32 length, and a
/// JSON object of exactly that length ending the file. (JSON text cannot
/// contain a raw 0x06, so the record is found from the end.)
pub fn find_vmdesc(data: &[u8]) -> Result<VmDesc> {
    let mut f = std::io::Cursor::new(data);
    find_vmdesc_in(&mut f)?.ok_or_else(no_trailer)
}

fn no_trailer() -> AnalyzeError {
    AnalyzeError::new(
        None,
        "no vmdesc trailer at the end of the file: the stream is incomplete, or was written \
         without one (suppress-vmdesc, postcopy); its FULL sections cannot be decoded without it",
    )
}

/// [`find_vmdesc`] on a seekable file: the last [`MAX_VMDESC_LEN`] + 5 bytes
/// are searched backwards in [`CHUNK`]-byte reads for the last `0x06` byte,
/// and the trailer read only when its length runs exactly to the end of the
/// file. `Ok(None)`: there is no trailer. The file position is left anywhere.
pub fn find_vmdesc_in<F: Read + Seek>(f: &mut F) -> Result<Option<VmDesc>> {
    let io = |e: std::io::Error| AnalyzeError::new(None, format!("read error: {e}"));
    let len = f.seek(SeekFrom::End(0)).map_err(io)?;
    let floor = len.saturating_sub(MAX_VMDESC_LEN as u64 + 5).max(8);
    // The record is at least 6 bytes: 0x06, be32 length, '{'.
    let mut hi = len.saturating_sub(5);
    let mut buf = vec![0u8; CHUNK];
    let mut candidate = None;
    while hi > floor && candidate.is_none() {
        let lo = hi.saturating_sub(CHUNK as u64).max(floor);
        let n = (hi - lo) as usize;
        f.seek(SeekFrom::Start(lo)).map_err(io)?;
        f.read_exact(&mut buf[..n]).map_err(io)?;
        candidate = buf[..n]
            .iter()
            .rposition(|&b| b == RecordType::VmDescription as u8)
            .map(|i| lo + i as u64);
        hi = lo;
    }
    let Some(p) = candidate else {
        return Ok(None);
    };
    let mut head = [0u8; 6];
    f.seek(SeekFrom::Start(p)).map_err(io)?;
    f.read_exact(&mut head).map_err(io)?;
    let json_len = u64::from(u32::from_be_bytes(head[1..5].try_into().expect("4 bytes")));
    if head[5] != b'{' || p + 5 + json_len != len {
        return Ok(None);
    }
    let mut json = vec![0u8; json_len as usize];
    f.seek(SeekFrom::Start(p + 5)).map_err(io)?;
    f.read_exact(&mut json).map_err(io)?;
    let json: Value = serde_json::from_slice(&json).map_err(|e| {
        AnalyzeError::new(
            Some(p + 5),
            format!("the vmdesc trailer is not valid JSON: {e}"),
        )
    })?;
    check_vmdesc(&json).map_err(|mut e| {
        e.offset = Some(p + 5);
        e
    })?;
    Ok(Some(VmDesc {
        offset: p as usize,
        json,
    }))
}

/// Checks the shape the walk relies on: an object with a power-of-two
/// `page_size` and a `devices` list whose entries have a `name` and an
/// `instance_id`.
pub fn check_vmdesc(json: &Value) -> Result<()> {
    let bad = |msg: &str| AnalyzeError::new(None, format!("vmdesc trailer: {msg}"));
    let obj = json.as_object().ok_or_else(|| bad("not a JSON object"))?;
    obj.get("page_size")
        .and_then(Value::as_u64)
        .filter(|p| p.is_power_of_two() && (1024..=65536).contains(p))
        .ok_or_else(|| bad("\"page_size\" missing or not a power of two in 1024..=65536"))?;
    let devices = obj
        .get("devices")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("\"devices\" missing or not a list"))?;
    for (i, d) in devices.iter().enumerate() {
        if d.get("name").and_then(Value::as_str).is_none()
            || d.get("instance_id").and_then(Value::as_u64).is_none()
        {
            return Err(bad(&format!(
                "device {i} lacks a string \"name\" or an integer \"instance_id\""
            )));
        }
    }
    Ok(())
}

/// `analyze-migration.py -d desc`: the vmdesc trailer as parsed.
pub fn analyze_desc(data: &[u8]) -> Result<Value> {
    check_header(data)?;
    Ok(find_vmdesc(data)?.json)
}

/// [`analyze_desc`] on a seekable file: the header, then the trailer from the
/// end (nothing between is read).
pub fn analyze_desc_file<F: Read + Seek>(f: &mut F) -> Result<Value> {
    f.seek(SeekFrom::Start(0))
        .map_err(|e| AnalyzeError::new(None, format!("read error: {e}")))?;
    read_header(f)?;
    Ok(find_vmdesc_in(f)?.ok_or_else(no_trailer)?.json)
}

/// `analyze-migration.py -d state`: every section decoded, keyed
/// `"<idstr> (<section id>)"` in stream order.
pub fn analyze_state(data: &[u8], opts: &AnalyzeOptions) -> Result<Value> {
    analyze_state_counted(data, opts).0
}

/// [`analyze_state`], also returning the work it did (also when it failed):
/// how the tests check that the walk's cost is linear in the input.
pub fn analyze_state_counted(data: &[u8], opts: &AnalyzeOptions) -> (Result<Value>, AnalyzeWork) {
    let vmdesc = match check_header(data).and_then(|()| find_vmdesc(data)) {
        Ok(v) => v,
        Err(e) => return (Err(e), AnalyzeWork::default()),
    };
    let stream = data[..vmdesc.offset].to_vec();
    let (r, work) = walk(
        Box::new(std::io::Cursor::new(stream)),
        Some(vmdesc.offset as u64),
        false,
        &vmdesc.json,
        opts,
    );
    (r.map(|a| a.state), work)
}

/// Like [`analyze_state`], for a stream (header to EOF, no trailer needed)
/// described by `vmdesc`, e.g. the trailer of another stream of the same
/// machine when this one was saved without (`suppress-vmdesc`).
pub fn analyze_state_with(stream: &[u8], vmdesc: &Value, opts: &AnalyzeOptions) -> Result<Value> {
    let len = stream.len() as u64;
    walk(
        Box::new(std::io::Cursor::new(stream.to_vec())),
        Some(len),
        false,
        vmdesc,
        opts,
    )
    .0
    .map(|a| a.state)
}

/// What [`analyze_file`] and [`analyze_reader_with`] found.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The decoded state (`analyze-migration.py -d state`).
    pub state: Value,
    /// What the walk cost.
    pub work: AnalyzeWork,
    /// With [`AnalyzeOptions::extract`]: the idstrs of the RAMBlocks written
    /// (each to its idstr as a path below the directory, a leading `/`
    /// dropped), in the order the stream named them.
    pub extracted: Vec<String>,
}

/// [`analyze_state`] on a seekable file, read incrementally: the trailer is
/// found from the end, then the stream is walked from the start in
/// [`CHUNK`]-byte reads, so memory is bounded by the decoded state (and the
/// trailer), not by the file. Without a trailer (a cut file) the stream is
/// walked as far as it can be without one, and the error says where it
/// stops: in which section, at which byte offset.
pub fn analyze_file<F: Read + Seek + Send + 'static>(
    mut f: F,
    opts: &AnalyzeOptions,
) -> Result<Analysis> {
    let io = |e: std::io::Error| AnalyzeError::new(None, format!("read error: {e}"));
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    read_header(&mut f)?;
    let vmdesc = find_vmdesc_in(&mut f)?;
    let file_len = f.seek(SeekFrom::End(0)).map_err(io)?;
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    match vmdesc {
        Some(v) => {
            let end = v.offset as u64;
            walk(Box::new(f.take(end)), Some(end), false, &v.json, opts).0
        }
        None => {
            // Walk without descriptions: how far does the stream go?
            let bare = serde_json::json!({"page_size": format::TARGET_PAGE_SIZE, "devices": []});
            let mut probe = opts.clone();
            probe.dump_memory = false;
            probe.extract = None;
            let cut = format!(
                "the file has no vmdesc trailer (it ends at byte offset {file_len}): the stream \
                 was cut, or saved without one (suppress-vmdesc, postcopy)"
            );
            match walk(Box::new(f), Some(file_len), true, &bare, &probe).0 {
                Ok(_) => Err(no_trailer()),
                Err(mut e) => {
                    let inside = if e.context.is_empty() {
                        String::new()
                    } else {
                        format!(" in {}", e.context.join(", "))
                    };
                    e.message = format!("{cut}; read without it, it stops{inside}: {}", e.message);
                    e.context.clear();
                    Err(e)
                }
            }
        }
    }
}

/// [`analyze_state_with`] on any reader (a pipe, standard input), read
/// incrementally in [`CHUNK`]-byte reads up to the EOF record: `vmdesc`
/// describes the FULL sections (from another stream of the same machine, or
/// this one's trailer read elsewhere). A cut stream is an error saying where.
pub fn analyze_reader_with<R: Read + Send + 'static>(
    r: R,
    vmdesc: &Value,
    opts: &AnalyzeOptions,
) -> Result<Analysis> {
    walk(Box::new(r), None, false, vmdesc, opts).0
}

/// Walks the stream `src` (ending at `end` when known; `bare`: the end of a
/// file without a trailer).
fn walk(
    src: Box<dyn Read + Send>,
    end: Option<u64>,
    bare: bool,
    vmdesc: &Value,
    opts: &AnalyzeOptions,
) -> (Result<Analysis>, AnalyzeWork) {
    let mut c = Cursor::new(src, 0, end, opts);
    c.bare = bare;
    let mut work = AnalyzeWork {
        visits: 0,
        limit: c.max_visits(),
        stream_bytes: end.unwrap_or(0),
    };
    let header = c.array::<8>("the stream header").map_err(|mut e| {
        e.message = format!(
            "file too short for a migration stream header: {}",
            e.message
        );
        e
    });
    if let Err(e) = header
        .and_then(|h| check_header(&h))
        .and_then(|()| check_vmdesc(vmdesc))
    {
        return (Err(e), work);
    }
    let devices = vmdesc["devices"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    // (name, instance) -> first device so described, as a linear search would
    // find it (a hashed lookup: sections times devices must not multiply).
    let mut device_index = HashMap::with_capacity(devices.len());
    for (i, d) in devices.iter().enumerate() {
        if let (Some(name), Some(instance)) = (
            d.get("name").and_then(Value::as_str),
            d.get("instance_id").and_then(Value::as_u64),
        ) {
            device_index.entry((name, instance)).or_insert(i);
        }
    }
    let page_size = vmdesc["page_size"]
        .as_u64()
        .unwrap_or(format::TARGET_PAGE_SIZE);
    let mut walker = Walker {
        c,
        devices,
        device_index,
        section_index: HashMap::new(),
        ram: RamDecoder::new(page_size, MemSizeOptions::default()),
        blocks: LearnedBlocks::new(page_size),
        dump_memory: opts.dump_memory,
        memory_budget: opts.memory_budget,
        memory_kept: 0,
        extract: opts.extract.clone().map(|dir| Extract {
            dir,
            files: HashMap::new(),
            data_pages: Default::default(),
            written: Vec::new(),
        }),
        ignore_shared: false,
        sections: Vec::new(),
        last_section_id: None,
    };
    let walked = walker.walk();
    work.visits = walker.c.visits;
    work.limit = walker.c.max_visits();
    work.stream_bytes = end.unwrap_or_else(|| walker.c.pos());
    if let Err(e) = walked {
        return (Err(e), work);
    }
    let mut out = Map::new();
    for (id, name, state) in walker.sections {
        out.insert(format!("{name} ({id})"), state.into_value());
    }
    let extracted = walker.extract.map(|x| x.written).unwrap_or_default();
    (
        Ok(Analysis {
            state: Value::Object(out),
            work,
            extracted,
        }),
        work,
    )
}

/// Prints JSON as Python's `json.dumps(v, indent=4, separators=(',', ': '))`
/// does (what analyze-migration.py prints): 4-space indentation, non-ASCII
/// escaped as `\uXXXX`. No trailing newline.
pub fn to_python_json(v: &Value) -> String {
    let mut out = Output::new(usize::MAX, None);
    write_python(&mut out, v, 0);
    out.text
}

/// [`to_python_json`] with the text cut at `max_bytes` bytes: what is left out
/// is replaced by a line `... output truncated at <max_bytes> bytes`. Writing
/// stops at the cap, so the cost is bounded by it too.
///
/// ```
/// use vmstate_devices::analyze::to_python_json_bounded;
/// let v = serde_json::json!({"a": "x".repeat(100)});
/// let out = to_python_json_bounded(&v, 16);
/// assert_eq!(out, "{\n    \"a\": \"xxxx\n... output truncated at 16 bytes");
/// assert_eq!(to_python_json_bounded(&v, 1000), vmstate_devices::analyze::to_python_json(&v));
/// ```
pub fn to_python_json_bounded(v: &Value, max_bytes: usize) -> String {
    let mut out = Output::new(max_bytes, None);
    write_python(&mut out, v, 0);
    if out.text.len() > max_bytes {
        // Only ASCII is written (non-ASCII is escaped), so any byte is a char
        // boundary.
        out.text.truncate(max_bytes);
        out.text
            .push_str(&format!("\n... output truncated at {max_bytes} bytes"));
    }
    out.text
}

/// [`to_python_json_bounded`] written to `w` as it is made, [`CHUNK`] bytes
/// at a time (no copy of the whole text is held); the first write error (a
/// closed pipe) stops it and is returned.
///
/// ```
/// use vmstate_devices::analyze::{to_python_json_bounded, write_python_json_bounded};
/// let v = serde_json::json!({"a": ["x".repeat(70_000), "y".repeat(10)]});
/// for cap in [16, 70_010, 1 << 20] {
///     let mut out = Vec::new();
///     write_python_json_bounded(&v, cap, &mut out).unwrap();
///     assert_eq!(String::from_utf8(out).unwrap(), to_python_json_bounded(&v, cap));
/// }
/// ```
pub fn write_python_json_bounded(
    v: &Value,
    max_bytes: usize,
    w: &mut dyn Write,
) -> std::io::Result<()> {
    let mut out = Output::new(max_bytes, Some(w));
    write_python(&mut out, v, 0);
    let total = out.before + out.text.len();
    out.flush();
    if let Some(e) = out.error.take() {
        return Err(e);
    }
    if total > max_bytes {
        if let Some(w) = out.sink.as_mut() {
            write!(w, "\n... output truncated at {max_bytes} bytes")?;
        }
    }
    Ok(())
}

/// Text being written, and the length past which writing stops (at most one
/// escape sequence or indentation more is written, then cut). With a sink,
/// the text goes out in [`CHUNK`]-byte pieces, the bytes past the cap never.
struct Output<'w> {
    text: String,
    /// Bytes already handed to the sink (and cleared from `text`).
    before: usize,
    cap: usize,
    sink: Option<&'w mut dyn Write>,
    error: Option<std::io::Error>,
}

impl<'w> Output<'w> {
    fn new(cap: usize, sink: Option<&'w mut dyn Write>) -> Self {
        Output {
            text: String::new(),
            before: 0,
            cap,
            sink,
            error: None,
        }
    }
    fn full(&self) -> bool {
        self.before + self.text.len() > self.cap || self.error.is_some()
    }
    fn push(&mut self, c: char) {
        if !self.full() {
            self.text.push(c);
            self.maybe_flush();
        }
    }
    fn push_str(&mut self, s: &str) {
        if !self.full() {
            let room = (self.cap - self.before - self.text.len()).saturating_add(1);
            self.text.push_str(&s[..s.len().min(room)]);
            self.maybe_flush();
        }
    }
    fn maybe_flush(&mut self) {
        if self.sink.is_some() && self.text.len() >= CHUNK {
            self.flush();
        }
    }
    /// Hands `text` (up to the cap) to the sink.
    fn flush(&mut self) {
        let Some(w) = self.sink.as_mut() else {
            return;
        };
        let keep = self.cap.saturating_sub(self.before).min(self.text.len());
        if let Err(e) = w.write_all(&self.text.as_bytes()[..keep]) {
            self.error = Some(e);
        }
        self.before += self.text.len();
        self.text.clear();
    }
}

fn write_python(out: &mut Output, v: &Value, depth: usize) {
    let newline = |out: &mut Output, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    match v {
        Value::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if out.full() {
                    return;
                }
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_python(out, item, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(m) if !m.is_empty() => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if out.full() {
                    return;
                }
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_python_str(out, k);
                out.push_str(": ");
                write_python(out, item, depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
        Value::String(s) => write_python_str(out, s),
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON string with Python's `ensure_ascii` escapes.
fn write_python_str(out: &mut Output, s: &str) {
    out.push('"');
    for c in s.chars() {
        if out.full() {
            return;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The stream being walked: the runtime's [`Reader`] over a buffer refilled in
/// [`CHUNK`]-byte reads from the input, so memory stays bounded by the largest
/// single item read (a page, or a field of at most [`MAX_FIELD_BYTES`]).
struct Cursor {
    r: Reader<BytesMut>,
    /// Where the stream ends (the vmdesc trailer's offset), when known.
    end: Option<u64>,
    /// The stream has no trailer: `end` is the end of the file.
    bare: bool,
    values: u64,
    max_values: u64,
    /// Work done so far ([`AnalyzeWork`]) and the allowance per byte.
    visits: u64,
    work_per_byte: u64,
    /// Nesting of the struct being read.
    depth: usize,
}

/// Input read per refill of the analyzer's buffer: 64 KiB.
pub const CHUNK: usize = 64 << 10;
/// Largest single field the walk reads into memory (a vmdesc `size` is a claim).
pub const MAX_FIELD_BYTES: u64 = 64 << 20;

/// [`Refill`] from any reader, [`CHUNK`] bytes at a time.
struct ChunkRefill {
    src: Box<dyn Read + Send>,
}

impl Refill<BytesMut> for ChunkRefill {
    fn refill(&mut self, buf: &mut BytesMut, _min: usize) -> std::io::Result<usize> {
        let start = buf.len();
        buf.resize(start + CHUNK, 0);
        let n = loop {
            match self.src.read(&mut buf[start..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        buf.truncate(start + *n.as_ref().unwrap_or(&0));
        n
    }
}

impl Cursor {
    /// A cursor at stream offset `base` reading `src` (which ends at `end`, if known).
    fn new(src: Box<dyn Read + Send>, base: u64, end: Option<u64>, opts: &AnalyzeOptions) -> Self {
        Cursor {
            r: Reader::with_refill(BytesMut::new(), base, Box::new(ChunkRefill { src })),
            end,
            bare: false,
            values: 0,
            max_values: opts.max_values,
            visits: 0,
            work_per_byte: opts.work_per_byte,
            depth: 0,
        }
    }

    fn pos(&self) -> u64 {
        self.r.position()
    }

    fn err(&self, msg: impl Into<String>) -> AnalyzeError {
        AnalyzeError::new(Some(self.pos()), msg)
    }

    /// Fails unless `n` more bytes can be read, saying where the stream ends.
    fn need(&mut self, n: u64, what: &str) -> Result<()> {
        if let Some(end) = self.end {
            let left = end.saturating_sub(self.pos());
            if n > left {
                return Err(self.err(format!(
                    "stream ends while reading {what}: need {n} bytes, {left} left {}",
                    if self.bare {
                        "before the end of the file"
                    } else {
                        "before the vmdesc trailer"
                    }
                )));
            }
        }
        Ok(())
    }

    /// The runtime's read error as ours: a truncation says where the input ended.
    fn read_err(&self, e: &vmstate_runtime::Error, n: u64, what: &str) -> AnalyzeError {
        let at = self.pos();
        match e.kind() {
            vmstate_runtime::ErrorKind::Truncated { available, .. } => AnalyzeError::new(
                Some(at),
                format!(
                    "stream ends while reading {what}: need {n} bytes, the input ends {available} \
                     bytes later (cut at byte offset {})",
                    at + *available as u64
                ),
            ),
            _ => AnalyzeError::new(Some(at), format!("reading {what}: {e}")),
        }
    }

    fn take(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        self.need(n, what)?;
        if n > MAX_FIELD_BYTES {
            return Err(self.err(format!(
                "{what}: {n} bytes is more than the {MAX_FIELD_BYTES} one item may have"
            )));
        }
        self.r
            .read_vec(n as usize)
            .map_err(|e| self.read_err(&e, n, what))
    }

    /// Skips `n` bytes, a chunk at a time (nothing of it is kept).
    fn skip(&mut self, n: u64, what: &str) -> Result<()> {
        self.need(n, what)?;
        let mut left = n;
        while left > 0 {
            let k = left.min(CHUNK as u64);
            self.r
                .skip(k as usize)
                .map_err(|e| self.read_err(&e, left, what))?;
            left -= k;
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        self.need(N as u64, what)?;
        let mut a = [0u8; N];
        self.r
            .read_bytes(&mut a)
            .map_err(|e| self.read_err(&e, N as u64, what))?;
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    fn be32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn be16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// The next byte, not consumed (`None` at the end of the stream).
    fn peek(&mut self) -> Option<u8> {
        if self.end.is_some_and(|end| self.pos() >= end) {
            return None;
        }
        self.r.peek_u8()
    }

    /// One length byte, then that many bytes (as text; bytes that are not
    /// UTF-8 shown as `\xNN`).
    fn counted(&mut self, what: &str) -> Result<String> {
        let n = self.u8(what)?;
        Ok(text(&self.take(n as u64, what)?))
    }

    /// Work allowed so far: per byte of the stream (all of it when its length
    /// is known, else what was read), plus [`WORK_BASE`].
    fn max_visits(&self) -> u64 {
        self.work_per_byte
            .saturating_mul(self.end.unwrap_or_else(|| self.pos()))
            .saturating_add(WORK_BASE)
    }

    /// One unit of work; fails once the stream's budget is spent.
    fn visit(&mut self) -> Result<()> {
        self.visits += 1;
        let max = self.max_visits();
        if self.visits > max {
            return Err(self.err(format!(
                "the vmdesc trailer asks for more work than the stream backs: over {max} \
                 records, fields and elements for {} stream bytes; refusing to go on \
                 (a hostile vmdesc trailer?)",
                self.end.unwrap_or_else(|| self.pos())
            )));
        }
        Ok(())
    }

    fn count_value(&mut self) -> Result<()> {
        self.values += 1;
        if self.values > self.max_values {
            return Err(self.err(format!(
                "more than {} values to decode; refusing to go on (a hostile vmdesc trailer?)",
                self.max_values
            )));
        }
        Ok(())
    }
}

/// Bytes from the stream as text: UTF-8 as is, any other byte as `\xNN`.
fn text(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        s.push_str(chunk.valid());
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

/// `s` with control characters (and other invisible ones) escaped, for a
/// message printed to a terminal.
fn escape_for_message(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
        {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The decoded state of one section.
enum SectionState {
    Ram {
        sizes: Map<String, Value>,
        memory: Option<Map<String, Value>>,
    },
    Vmsd {
        /// Index into the vmdesc's devices.
        device: usize,
        data: Map<String, Value>,
    },
}

impl SectionState {
    fn into_value(self) -> Value {
        match self {
            SectionState::Ram { sizes, memory } => {
                let mut m = Map::new();
                m.insert("section sizes".into(), Value::Object(sizes));
                if let Some(mem) = memory {
                    m.insert("memory".into(), Value::Object(mem));
                }
                Value::Object(m)
            }
            SectionState::Vmsd { data, .. } => Value::Object(data),
        }
    }
}

struct Walker<'a> {
    c: Cursor,
    devices: &'a [Value],
    /// (name, instance id) -> index into `devices`.
    device_index: HashMap<(&'a str, u64), usize>,
    /// Section id -> index into `sections`.
    section_index: HashMap<u32, usize>,
    /// The RAM record codec (it keeps the last block, for CONTINUE across
    /// sections) and the blocks it has seen named.
    ram: RamDecoder,
    blocks: LearnedBlocks,
    dump_memory: bool,
    /// Bytes of page text kept for `dump_memory`, and the most to keep.
    memory_kept: u64,
    memory_budget: u64,
    /// `-x`: where RAMBlock contents go.
    extract: Option<Extract>,
    /// x-ignore-shared was announced in the configuration: MEM_SIZE entries
    /// carry the block's guest address too.
    ignore_shared: bool,
    /// (section id, idstr, state) in first-seen order.
    sections: Vec<(u32, String, SectionState)>,
    last_section_id: Option<u32>,
}

impl<'a> Walker<'a> {
    fn walk(&mut self) -> Result<()> {
        loop {
            let at = self.c.pos();
            self.c.visit()?;
            let ty = self.c.u8("a record type")?;
            match RecordType::from_u8(ty) {
                Some(RecordType::Eof) => return Ok(()),
                Some(RecordType::Configuration) => self
                    .configuration()
                    .map_err(|e| e.within("configuration record"))?,
                Some(t @ (RecordType::SectionStart | RecordType::SectionFull)) => {
                    self.full_header_section(t)?
                }
                Some(t @ (RecordType::SectionPart | RecordType::SectionEnd)) => {
                    let id = self.c.be32("a section id")?;
                    self.last_section_id = Some(id);
                    let Some(&i) = self.section_index.get(&id) else {
                        return Err(AnalyzeError::new(
                            Some(at),
                            format!(
                                "{} section for section id {id}, which no START section opened",
                                if t == RecordType::SectionPart {
                                    "PART"
                                } else {
                                    "END"
                                }
                            ),
                        ));
                    };
                    let what = format!("section '{}' (id {id})", self.sections[i].1);
                    let mut state = std::mem::replace(
                        &mut self.sections[i].2,
                        SectionState::Vmsd {
                            device: usize::MAX,
                            data: Map::new(),
                        },
                    );
                    let r = self.read_section(&mut state);
                    self.sections[i].2 = state;
                    r.map_err(|e| e.within(what))?;
                }
                Some(RecordType::SectionFooter) => {
                    let id = self.c.be32("a section footer")?;
                    match self.last_section_id {
                        Some(last) if last == id => {}
                        Some(last) => {
                            return Err(AnalyzeError::new(
                                Some(at),
                                format!(
                                    "mismatched section footer: id {id}, the section was {last}"
                                ),
                            ))
                        }
                        None => {
                            return Err(AnalyzeError::new(
                                Some(at),
                                "section footer before any section",
                            ))
                        }
                    }
                }
                Some(RecordType::Command) => self.command(at)?,
                Some(RecordType::Subsection | RecordType::VmDescription) | None => {
                    return Err(AnalyzeError::new(
                        Some(at),
                        format!("unknown section type {ty:#04x}"),
                    ))
                }
            }
        }
    }

    fn command(&mut self, at: u64) -> Result<()> {
        let cmd = self.c.be16("a command number")?;
        let len = self.c.be16("a command length")?;
        match MigCmd::from_u16(cmd) {
            Some(MigCmd::Packaged) => {
                return Err(AnalyzeError::new(
                    Some(at),
                    "PACKAGED command (postcopy): packaged streams are not supported",
                ))
            }
            Some(_) => {}
            None => {
                return Err(AnalyzeError::new(
                    Some(at),
                    format!("unknown command {cmd}"),
                ))
            }
        }
        self.c.skip(len as u64, "a command payload")?;
        Ok(())
    }

    /// be32 len, name, then the configuration's subsections (7.2 and 10.x).
    fn configuration(&mut self) -> Result<()> {
        let len = self.c.be32("the machine type length")?;
        self.c.skip(len as u64, "the machine type")?;
        while self.c.peek() == Some(SUBSECTION_MARKER) {
            let at = self.c.pos();
            self.c.u8("a subsection marker")?;
            let name = self.c.counted("a subsection name")?;
            self.c.be32("a subsection version")?;
            match name.as_str() {
                "configuration/target-page-bits" => {
                    self.c.be32("target_page_bits")?;
                }
                "configuration/capabilities" => {
                    let n = self.c.be32("caps_count")?;
                    for _ in 0..n {
                        self.c.visit()?;
                        let cap = self.c.counted("a capability name")?;
                        if cap == "x-ignore-shared" {
                            self.ignore_shared = true;
                        }
                    }
                }
                "configuration/uuid" => {
                    self.c.skip(16, "the uuid")?;
                }
                other => {
                    return Err(AnalyzeError::new(
                        Some(at),
                        format!("unknown configuration subsection '{other}'"),
                    ))
                }
            }
        }
        Ok(())
    }

    fn full_header_section(&mut self, ty: RecordType) -> Result<()> {
        let at = self.c.pos() - 1;
        let id = self.c.be32("a section id")?;
        let name = self.c.counted("a section name")?;
        let instance = self.c.be32("an instance id")?;
        let version = self.c.be32("a section version")?;
        self.last_section_id = Some(id);
        let what = format!("section '{name}' instance {instance} (id {id})");
        let device = self
            .device_index
            .get(&(name.as_str(), u64::from(instance)))
            .copied();
        let mut state = match device {
            Some(device) => SectionState::Vmsd {
                device,
                data: Map::new(),
            },
            None if name == RAM_SECTION && instance == 0 => {
                if version != RAM_VERSION {
                    return Err(AnalyzeError::new(
                        Some(at),
                        format!("unknown RAM version {version} (only {RAM_VERSION} is supported)"),
                    )
                    .within(what));
                }
                SectionState::Ram {
                    sizes: Map::new(),
                    memory: self.dump_memory.then(Map::new),
                }
            }
            None => {
                let kind = if ty == RecordType::SectionFull {
                    "FULL"
                } else {
                    "START"
                };
                return Err(AnalyzeError::new(
                    Some(at),
                    format!(
                        "{kind} section not described by the vmdesc trailer and not a live section \
                         this tool can parse (only \"ram\"); cannot decode it"
                    ),
                )
                .within(what));
            }
        };
        self.read_section(&mut state).map_err(|e| e.within(what))?;
        match self.section_index.get(&id) {
            Some(&i) => self.sections[i] = (id, name, state),
            None => {
                self.section_index.insert(id, self.sections.len());
                self.sections.push((id, name, state));
            }
        }
        Ok(())
    }

    fn read_section(&mut self, state: &mut SectionState) -> Result<()> {
        match state {
            SectionState::Vmsd { device, data } => {
                let desc = self.devices.get(*device).unwrap_or(&Value::Null);
                *data = read_struct(&mut self.c, desc)?;
                Ok(())
            }
            SectionState::Ram { sizes, memory } => self.read_ram(sizes, memory.as_mut()),
        }
    }

    fn read_ram(
        &mut self,
        sizes: &mut Map<String, Value>,
        mut memory: Option<&mut Map<String, Value>>,
    ) -> Result<()> {
        if self.ignore_shared {
            return Err(self.c.err(
                "x-ignore-shared streams (a guest address in each MEM_SIZE entry) are not supported",
            ));
        }
        let page = self.ram.page_size();
        loop {
            let at = self.c.pos();
            self.c.visit()?;
            let header = self
                .ram
                .next_header(&mut self.c.r, &self.blocks)
                .map_err(|e| ram_error(&self.c, e, at))?;
            match header {
                RecordHeader::MemSize(entries) => {
                    for (index, entry) in entries {
                        self.c.visit()?;
                        sizes.insert(
                            entry.idstr.clone(),
                            Value::String(format!("0x{:016x}", entry.used_length)),
                        );
                        self.c.count_value()?;
                        if let Some(x) = self.extract.as_mut() {
                            x.create(index, &entry.idstr, entry.used_length)
                                .map_err(|m| AnalyzeError::new(Some(at), m))?;
                        }
                    }
                }
                RecordHeader::Zero {
                    block,
                    offset,
                    fill,
                } => {
                    if let Some(m) = memory.as_deref_mut() {
                        let idstr = &self.blocks.limits(block).idstr;
                        m.insert(
                            format!("{idstr} (0x{offset:016x})"),
                            Value::String(format!("Filled with 0x{fill:02x}")),
                        );
                        self.c.count_value()?;
                    }
                    if let Some(x) = self.extract.as_mut() {
                        let idstr = &self.blocks.limits(block).idstr;
                        x.zero(block, offset, page).map_err(|m| {
                            AnalyzeError::new(Some(at), format!("RAMBlock '{idstr}': {m}"))
                        })?;
                    }
                }
                RecordHeader::Page { block, offset } => {
                    let keep = memory.is_some() || self.extract.is_some();
                    if !keep {
                        self.c.skip(page, "a page")?;
                        continue;
                    }
                    let bytes = self.c.take(page, "a page")?;
                    if let Some(x) = self.extract.as_mut() {
                        let idstr = &self.blocks.limits(block).idstr;
                        x.page(block, offset, &bytes).map_err(|m| {
                            AnalyzeError::new(Some(at), format!("RAMBlock '{idstr}': {m}"))
                        })?;
                    }
                    if let Some(m) = memory.as_deref_mut() {
                        let key = format!("{} (0x{offset:016x})", self.blocks.limits(block).idstr);
                        // Past the output cap nothing more is printed: new
                        // pages are not kept (one already kept is replaced).
                        if self.memory_kept < self.memory_budget || m.contains_key(&key) {
                            let hexed = hex(&bytes);
                            self.memory_kept += hexed.len() as u64;
                            m.insert(key, Value::String(hexed));
                            self.c.count_value()?;
                        }
                    }
                }
                RecordHeader::Xbzrle { .. } => {
                    return Err(AnalyzeError::new(
                        Some(at),
                        "XBZRLE RAM compression is not supported",
                    ))
                }
                RecordHeader::Eos => return Ok(()),
            }
        }
    }
}

/// A RAM codec error as ours, in the words analyze-migration.py uses where it
/// has some.
fn ram_error(c: &Cursor, e: RamError, at: u64) -> AnalyzeError {
    let msg = match e.kind() {
        RamErrorKind::Wire(w) => return c.read_err(w, 8, "a RAM record"),
        RamErrorKind::ContinueWithoutBlock { .. } => {
            "CONTINUE page record with no previous RAMBlock".to_string()
        }
        RamErrorKind::BadXbzrle { .. } => "XBZRLE RAM compression is not supported".to_string(),
        RamErrorKind::UnknownFlags { flags } => {
            // The bits that are no RAM flag, as analyze-migration.py names
            // them (all of them when every bit is known but the mix is not).
            let known = [
                RamFlag::Zero,
                RamFlag::MemSize,
                RamFlag::Page,
                RamFlag::Eos,
                RamFlag::Continue,
                RamFlag::Xbzrle,
                RamFlag::Hook,
                RamFlag::CompressPage,
                RamFlag::MultifdFlush,
            ]
            .iter()
            .fold(0, |m, f| m | f.bit());
            let unknown = if flags & !known != 0 {
                flags & !known
            } else {
                *flags
            };
            format!("unknown RAM flags: {unknown:#x}")
        }
        RamErrorKind::Unsupported { what, .. } if what.starts_with("COMPRESS") => {
            "compressed RAM pages are not supported".to_string()
        }
        RamErrorKind::Unsupported { .. } => "RAM hooks (RDMA) make no sense in a file".to_string(),
        other => other.to_string(),
    };
    AnalyzeError::new(Some(e.at().max(at)), msg)
}

/// The RAMBlocks of a stream, learned as the stream names them (the analyzer
/// has no local blocks to check against): the RAM codec's [`BlockTable`].
/// Every name is accepted, up to [`MAX_RAM_BLOCKS`] of them, as a resizeable
/// block of any length; the MEM_SIZE list gives the lengths.
struct LearnedBlocks {
    page_size: u64,
    index: RefCell<HashMap<Vec<u8>, usize>>,
    slots: Vec<OnceLock<RamBlockSpec>>,
}

/// Most distinct RAMBlock names one stream may use.
pub const MAX_RAM_BLOCKS: usize = 1024;

impl LearnedBlocks {
    fn new(page_size: u64) -> Self {
        LearnedBlocks {
            page_size,
            index: RefCell::new(HashMap::new()),
            slots: (0..MAX_RAM_BLOCKS).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl BlockTable for LearnedBlocks {
    fn find(&self, idstr: &[u8]) -> Option<usize> {
        let mut index = self.index.borrow_mut();
        if let Some(&i) = index.get(idstr) {
            return Some(i);
        }
        let i = index.len();
        let slot = self.slots.get(i)?;
        let mut spec = RamBlockSpec::ram(&text(idstr), u64::MAX);
        spec.resizeable = true;
        spec.page_size = self.page_size;
        slot.set(spec).ok()?;
        index.insert(idstr.to_vec(), i);
        Some(i)
    }

    fn limits(&self, index: usize) -> &RamBlockSpec {
        self.slots[index]
            .get()
            .expect("only indexes find() handed out are asked for")
    }
}

/// `-x`: each RAMBlock's contents written to a file named by its idstr under
/// a directory, as analyze-migration.py writes them into the current one.
struct Extract {
    dir: PathBuf,
    /// Block index -> (file, length).
    files: HashMap<usize, (File, u64)>,
    /// (block, offset) of the data pages written, so a zero page that
    /// replaces one is written too (others stay sparse holes).
    data_pages: std::collections::HashSet<(usize, u64)>,
    /// The RAMBlocks written, in order (what the tool prints).
    written: Vec<String>,
}

impl Extract {
    /// Opens (truncates) the file of block `index`, `len` bytes long (sparse).
    fn create(&mut self, index: usize, idstr: &str, len: u64) -> std::result::Result<(), String> {
        let rel = safe_relative_path(idstr)?;
        let path = self.dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("extracting RAMBlock '{idstr}': {}: {e}", parent.display()))?;
        }
        let file = File::create(&path)
            .and_then(|f| f.set_len(len).map(|()| f))
            .map_err(|e| format!("extracting RAMBlock '{idstr}': {}: {e}", path.display()))?;
        self.files.insert(index, (file, len));
        self.written.push(idstr.to_string());
        Ok(())
    }

    fn at(&mut self, block: usize, offset: u64, n: u64) -> std::result::Result<&mut File, String> {
        let (file, len) = self
            .files
            .get_mut(&block)
            .ok_or_else(|| "page before the MEM_SIZE list named its block".to_string())?;
        if offset.checked_add(n).is_none_or(|end| end > *len) {
            return Err(format!(
                "page at {offset:#x} lies beyond the block's length {len:#x}"
            ));
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| format!("extracting: {e}"))?;
        Ok(file)
    }

    fn page(&mut self, block: usize, offset: u64, data: &[u8]) -> std::result::Result<(), String> {
        self.data_pages.insert((block, offset));
        self.at(block, offset, data.len() as u64)?
            .write_all(data)
            .map_err(|e| format!("extracting: {e}"))
    }

    fn zero(&mut self, block: usize, offset: u64, page: u64) -> std::result::Result<(), String> {
        // The file is sparse (zeros); only a data page sent before needs
        // overwriting.
        if !self.data_pages.remove(&(block, offset)) {
            return self.at(block, offset, page).map(|_| ());
        }
        let zeros = vec![0u8; page as usize];
        self.at(block, offset, page)?
            .write_all(&zeros)
            .map_err(|e| format!("extracting: {e}"))
    }
}

/// A RAMBlock idstr as a path below the extraction directory: relative, no
/// `..`, no empty or `.` components (QEMU's idstrs look like `pc.ram` or
/// `0000:00:02.0/vga.vram`; a leading `/` as in `/rom@etc/acpi/tables` is
/// dropped).
fn safe_relative_path(idstr: &str) -> std::result::Result<PathBuf, String> {
    let mut p = PathBuf::new();
    for part in idstr.trim_start_matches('/').split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            return Err(format!(
                "RAMBlock name '{idstr}' is not a safe file name to extract to"
            ));
        }
        p.push(part);
    }
    if p.as_os_str().is_empty() {
        return Err(format!("RAMBlock name '{idstr}' is empty"));
    }
    Ok(p)
}

/// Space-separated hex bytes, as analyze-migration.py prints buffers.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, &b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn desc_str<'v>(v: &'v Value, key: &str, what: &str) -> Result<&'v str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| AnalyzeError::new(None, format!("vmdesc: {what} has no string \"{key}\"")))
}

fn desc_uint(v: &Value, key: &str, what: &str) -> Result<u64> {
    v.get(key).and_then(Value::as_u64).ok_or_else(|| {
        AnalyzeError::new(
            None,
            format!("vmdesc: {what} has no non-negative integer \"{key}\""),
        )
    })
}

/// A body described by `desc` (its "fields", then its "subsections").
fn read_struct(c: &mut Cursor, desc: &Value) -> Result<Map<String, Value>> {
    if c.depth >= MAX_STRUCT_DEPTH {
        return Err(c.err(format!(
            "vmdesc: structs nested deeper than {MAX_STRUCT_DEPTH} levels"
        )));
    }
    c.depth += 1;
    let r = read_struct_fields(c, desc);
    c.depth -= 1;
    r
}

fn read_struct_fields(c: &mut Cursor, desc: &Value) -> Result<Map<String, Value>> {
    let mut data = Map::new();
    let fields = desc
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| c.err("vmdesc: a description has no \"fields\" list"))?;
    for field in fields {
        c.visit()?;
        let name = desc_str(field, "name", "a field")?;
        let ty = desc_str(field, "type", &format!("field '{name}'"))?;
        let within = |e: AnalyzeError| e.within(format!("field '{name}'"));
        // A compressed array (`array_len`) is one element per index.
        let (first, count) = match field.get("array_len") {
            Some(n) => {
                let n = n.as_u64().ok_or_else(|| {
                    c.err(format!("vmdesc: field '{name}' has a bad \"array_len\""))
                })?;
                (0, Some(n))
            }
            None => match field.get("index") {
                Some(i) => (
                    i.as_u64().ok_or_else(|| {
                        c.err(format!("vmdesc: field '{name}' has a bad \"index\""))
                    })?,
                    Some(1),
                ),
                None => (0, None),
            },
        };
        match count {
            None => {
                let v = read_field(c, field, ty).map_err(within)?;
                data.insert(name.to_string(), v);
            }
            Some(n) => {
                let end = first.checked_add(n).ok_or_else(|| {
                    c.err(format!(
                        "vmdesc: field '{name}' index {first} plus count {n} overflows"
                    ))
                })?;
                for i in first..end {
                    let v = read_field(c, field, ty)
                        .map_err(|e| e.within(format!("index {i}")))
                        .map_err(within)?;
                    let list = data
                        .entry(name.to_string())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    match list {
                        Value::Array(a) if a.len() as u64 == i => a.push(v),
                        _ => {
                            return Err(c.err(format!(
                                "vmdesc: element {i} of field '{name}' does not follow the elements before it"
                            )))
                        }
                    }
                }
            }
        }
    }
    if let Some(subs) = desc.get("subsections") {
        let subs = subs
            .as_array()
            .ok_or_else(|| c.err("vmdesc: \"subsections\" is not a list"))?;
        for sub in subs {
            c.visit()?;
            let expected = desc_str(sub, "vmsd_name", "a subsection")?;
            let at = c.pos();
            let marker = c.u8("a subsection marker")?;
            if marker != SUBSECTION_MARKER {
                return Err(AnalyzeError::new(
                    Some(at),
                    format!(
                        "subsection '{expected}' not found: byte {marker:#04x} instead of \
                         {SUBSECTION_MARKER:#04x}"
                    ),
                ));
            }
            let name = c.counted("a subsection name")?;
            if name != expected {
                return Err(AnalyzeError::new(
                    Some(at),
                    format!("expected subsection '{expected}', found '{name}'"),
                ));
            }
            c.be32("a subsection version")?;
            let v = read_struct(c, sub).map_err(|e| e.within(format!("subsection '{name}'")))?;
            data.insert(name, Value::Object(v));
        }
    }
    Ok(data)
}

const SIGNED: &[&str] = &[
    "int8",
    "int16",
    "int32",
    "int32 equal",
    "int32 le",
    "int64",
    "int64 equal",
    "uint8 equal",
    "uint16 equal",
];
const UNSIGNED: &[&str] = &["uint8", "uint16", "uint32", "uint32 equal", "uint64"];

/// One element of a field, by its vmdesc type (analyze-migration.py's readers).
fn read_field(c: &mut Cursor, field: &Value, ty: &str) -> Result<Value> {
    c.visit()?;
    c.count_value()?;
    if ty == "struct" {
        let desc = field
            .get("struct")
            .ok_or_else(|| c.err("vmdesc: a \"struct\" field has no \"struct\" description"))?;
        return Ok(Value::Object(read_struct(c, desc)?));
    }
    if ty == "capability" {
        return Ok(Value::String(c.counted("a capability")?));
    }
    let size = desc_uint(field, "size", "a field")?;
    let at = c.pos();
    let bytes = c.take(size, &format!("a {size}-byte {ty}"))?;
    let signed = SIGNED.contains(&ty);
    if signed || UNSIGNED.contains(&ty) {
        if bytes.is_empty() || bytes.len() > 16 {
            return Err(AnalyzeError::new(
                Some(at),
                format!("vmdesc: integer of {size} bytes"),
            ));
        }
        let mut u: u128 = 0;
        for &b in &bytes {
            u = (u << 8) | b as u128;
        }
        let mut s = format!("0x{u:0width$x}", width = bytes.len() * 2);
        if signed && bytes[0] & 0x80 != 0 {
            let bits = bytes.len() as u32 * 8;
            let v = if bits == 128 {
                u as i128
            } else {
                u as i128 - (1i128 << bits)
            };
            s.push_str(&format!(" ({v})"));
        }
        return Ok(Value::String(s));
    }
    match ty {
        "bool" => match bytes.first() {
            Some(&b) => Ok(Value::Bool(b != 0)),
            None => Err(AnalyzeError::new(Some(at), "vmdesc: bool of 0 bytes")),
        },
        "nullptr" => {
            if bytes[..] != [NULLPTR_MARKER] {
                return Err(AnalyzeError::new(
                    Some(at),
                    format!("NULL pointer marker is not the byte {NULLPTR_MARKER:#04x}"),
                ));
            }
            Ok(Value::String("nullptr".into()))
        }
        _ => Ok(Value::String(hex(&bytes))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(body: &[u8], json: &str) -> Vec<u8> {
        let mut s = b"QEVM\0\0\0\x03".to_vec();
        s.extend_from_slice(body);
        s.push(0x06);
        s.extend_from_slice(&(json.len() as u32).to_be_bytes());
        s.extend_from_slice(json.as_bytes());
        s
    }

    const DEV: &str = r#"{"page_size": 4096, "devices": [{"name": "d", "instance_id": 0, "vmsd_name": "d", "version": 1, "fields": [{"name": "a", "type": "int16", "size": 2}, {"name": "b", "array_len": 2, "type": "uint8", "size": 1}, {"name": "c", "type": "bool", "size": 1}, {"name": "t", "type": "timer", "size": 2}], "subsections": [{"vmsd_name": "d/s", "version": 1, "fields": [{"name": "x", "type": "uint32", "size": 4}]}]}]}"#;

    fn body() -> Vec<u8> {
        let mut b = b"\x04\0\0\0\x05\x01d\0\0\0\0\0\0\0\x01".to_vec();
        b.extend_from_slice(&[0xff, 0xfe, 1, 2, 1, 0xab, 0xcd]);
        b.extend_from_slice(b"\x05\x03d/s\0\0\0\x01\0\0\0\x09");
        b.extend_from_slice(b"\x7e\0\0\0\x05\x00");
        b
    }

    #[test]
    fn decodes_like_analyze_migration() {
        let v = analyze_state(&stream(&body(), DEV), &AnalyzeOptions::default()).unwrap();
        assert_eq!(
            to_python_json(&v),
            r#"{
    "d (5)": {
        "a": "0xfffe (-2)",
        "b": [
            "0x01",
            "0x02"
        ],
        "c": true,
        "t": "ab cd",
        "d/s": {
            "x": "0x00000009"
        }
    }
}"#
        );
    }

    #[test]
    fn truncations_are_errors_with_offsets() {
        let full = stream(&body(), DEV);
        let body_len = body().len();
        for cut in 0..body_len - 1 {
            let mut b = body();
            b.truncate(cut);
            let e = analyze_state(&stream(&b, DEV), &AnalyzeOptions::default()).unwrap_err();
            assert!(e.offset.is_some(), "cut {cut}: {e}");
        }
        for cut in 0..full.len() {
            assert!(analyze_state(&full[..cut], &AnalyzeOptions::default()).is_err());
        }
    }

    #[test]
    fn bad_vmdesc_and_records() {
        let e = analyze_state(
            &stream(&body(), "{\"page_size\": 4096}"),
            &Default::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"devices\""), "{e}");
        let e = analyze_state(
            &stream(&body(), "{\"page_size\": 4096, \"devices\": 7"),
            &Default::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        let mut b = body();
        b[22] = 0x09; // the subsection marker
        let e = analyze_state(&stream(&b, DEV), &Default::default()).unwrap_err();
        assert!(e.to_string().contains("subsection 'd/s' not found"), "{e}");
        let e = analyze_state(&stream(b"\x09", DEV), &Default::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown section type 0x09 (at byte offset 8 = 0x8)"
        );
        let e = analyze_state(
            &stream(b"\x04\0\0\0\x01\x01z\0\0\0\0\0\0\0\x01", DEV),
            &Default::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("section 'z' instance 0 (id 1): FULL section not described"),
            "{e}"
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let e = analyze_state(
            &stream(b"\x00", &format!("{{\"x\": {deep}}}")),
            &Default::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        let huge = DEV.replace(
            "\"array_len\": 2, \"type\": \"uint8\", \"size\": 1",
            "\"array_len\": 100000000000, \"type\": \"buffer\", \"size\": 0",
        );
        let opts = AnalyzeOptions {
            max_values: 1000,
            ..Default::default()
        };
        let e = analyze_state(&stream(&body(), &huge), &opts).unwrap_err();
        assert!(e.to_string().contains("more than 1000 values"), "{e}");
    }

    #[test]
    fn non_ascii_is_escaped_like_python() {
        let v = serde_json::json!({"é": "\u{1F600}"});
        assert_eq!(
            to_python_json(&v),
            "{\n    \"\\u00e9\": \"\\ud83d\\ude00\"\n}"
        );
    }

    #[test]
    fn the_trailer_is_found_across_chunk_boundaries() {
        // The trailer's 0x06 at every position relative to a CHUNK boundary.
        let json = DEV;
        for pad in [
            0usize,
            1,
            5,
            6,
            CHUNK - 7,
            CHUNK - 6,
            CHUNK - 1,
            CHUNK,
            CHUNK + 3,
        ] {
            let mut b = body();
            // Padding as a command-free filler the walk never reaches: put it
            // before the trailer as part of a long opaque stream tail.
            b.extend(std::iter::repeat_n(0u8, pad));
            let s = stream(&b, json);
            let v = find_vmdesc_in(&mut std::io::Cursor::new(&s))
                .unwrap()
                .unwrap();
            assert_eq!(v.offset, 8 + b.len(), "pad {pad}");
            // No trailer: the length does not run to the end.
            let mut cut = s.clone();
            cut.pop();
            assert!(find_vmdesc_in(&mut std::io::Cursor::new(&cut))
                .unwrap()
                .is_none());
        }
    }

    #[test]
    fn names_become_safe_paths_or_errors() {
        assert_eq!(
            safe_relative_path("pc.ram").unwrap(),
            PathBuf::from("pc.ram")
        );
        assert_eq!(
            safe_relative_path("/rom@etc/acpi/tables").unwrap(),
            PathBuf::from("rom@etc/acpi/tables")
        );
        for bad in ["", "/", "../x", "a/../b", "a//b", "./a", "a/.", "x\0y"] {
            assert!(safe_relative_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stream_text_is_escaped_in_messages() {
        assert_eq!(text(b"pc.ram"), "pc.ram");
        assert_eq!(text(b"a\xffb"), "a\\xffb");
        assert_eq!(
            escape_for_message("x\u{1b}[31m\u{7}\u{202e}y"),
            "x\\x1b[31m\\x07\\u{202e}y"
        );
        let e = AnalyzeError::new(Some(1), "bad \u{1b}]0;title\u{7}").within("section '\u{9b}'");
        assert_eq!(
            e.to_string(),
            "section '\\x9b': bad \\x1b]0;title\\x07 (at byte offset 1 = 0x1)"
        );
    }

    #[test]
    fn at_most_max_ram_blocks_names_are_learned() {
        let t = LearnedBlocks::new(4096);
        for i in 0..MAX_RAM_BLOCKS {
            assert_eq!(t.find(format!("b{i}").as_bytes()), Some(i));
        }
        assert_eq!(t.find(b"b7"), Some(7));
        assert_eq!(t.limits(7).idstr, "b7");
        assert_eq!(t.find(b"one too many"), None);
    }
}
