//! A map of a captured migration stream: where each top-level record (and each
//! record of a PACKAGED blob) starts and ends, so fault tests can cut inside
//! the parts that matter. Knows the synthetic RAM's page records (see `ram`)
//! and finds the end of any other section by its footer.

use vmstate_runtime::savevm::format::MigCmd;
use vmstate_runtime::savevm::{Configuration, QemuVersion, StreamWriter};

/// One record of the stream: `what` spans `at..at + len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset of its first byte in the whole stream.
    pub at: usize,
    /// Its length in bytes.
    pub len: usize,
    /// `header`, `configuration`, `command PING`, `START ram`, `PART ram`,
    /// `FULL cpu`, `EOF`, `vmdesc`, or `package` (whose records follow it).
    pub what: String,
}

impl Record {
    /// One past its last byte.
    pub fn end(&self) -> usize {
        self.at + self.len
    }
}

/// Lengths of the header and of the configuration record our writer produces.
fn header_and_configuration(config: &Configuration) -> (usize, usize) {
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    let header = w.position() as usize;
    w.write_configuration(config).unwrap();
    (header, w.position() as usize - header)
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

fn be16(b: &[u8], at: usize) -> usize {
    u16::from_be_bytes(b[at..at + 2].try_into().unwrap()) as usize
}

/// Maps `stream` (configuration `config`; the synthetic RAM's pages are
/// `page` bytes).
pub fn map_stream(stream: &[u8], config: &Configuration, page: usize) -> Vec<Record> {
    let (header, conf) = header_and_configuration(config);
    let mut out = vec![
        Record {
            at: 0,
            len: header,
            what: "header".into(),
        },
        Record {
            at: header,
            len: conf,
            what: "configuration".into(),
        },
    ];
    let mut names = std::collections::HashMap::new();
    map_records(
        stream,
        header + conf,
        stream.len(),
        page,
        &mut names,
        &mut out,
    );
    out
}

/// Maps the records in `b[from..to]`; section ids to names in `names`.
fn map_records(
    b: &[u8],
    from: usize,
    to: usize,
    page: usize,
    names: &mut std::collections::HashMap<usize, String>,
    out: &mut Vec<Record>,
) {
    let mut at = from;
    while at < to {
        let start = at;
        let ty = b[at];
        at += 1;
        let what = match ty {
            0x00 => "EOF".to_string(),
            0x06 => {
                at += 4 + be32(b, at);
                "vmdesc".to_string()
            }
            0x08 => {
                let cmd = be16(b, at);
                let len = be16(b, at + 2);
                at += 4 + len;
                let name = MigCmd::from_u16(cmd as u16).map_or("?", |c| c.name());
                if cmd == MigCmd::Packaged as usize {
                    let size = be32(b, at - 4);
                    out.push(Record {
                        at: start,
                        len: at - start + size,
                        what: "package".into(),
                    });
                    map_records(b, at, at + size, page, names, out);
                    at += size;
                    continue;
                }
                format!("command {name}")
            }
            0x01..=0x04 => {
                let id = be32(b, at);
                at += 4;
                if ty == 0x01 || ty == 0x04 {
                    let n = b[at] as usize;
                    let name = String::from_utf8_lossy(&b[at + 1..at + 1 + n]).into_owned();
                    names.insert(id, name);
                    at += 1 + n + 8;
                }
                let name = names.get(&id).cloned().unwrap_or_default();
                if name == "ram" && ty == 0x01 {
                    at += 4;
                } else if name == "ram" {
                    loop {
                        let i = be32(b, at);
                        at += 4;
                        if i == u32::MAX as usize {
                            break;
                        }
                        at += page;
                    }
                } else {
                    // Another device: its body ends at its footer.
                    let mut footer = vec![0x7e];
                    footer.extend_from_slice(&(id as u32).to_be_bytes());
                    at += b[at..to]
                        .windows(5)
                        .position(|w| w == footer.as_slice())
                        .expect("section footer");
                }
                at += 5;
                let kind = ["START", "PART", "END", "FULL"][ty as usize - 1];
                format!("{kind} {name}")
            }
            other => panic!("unexpected record type {other:#x} at {start}"),
        };
        out.push(Record {
            at: start,
            len: at - start,
            what,
        });
    }
}

/// Offsets that probe a record: its first byte, the one after it, its middle
/// and its last byte.
pub fn probes(r: &Record) -> [usize; 4] {
    [r.at, r.at + 1, r.at + r.len / 2, r.end() - 1]
}

/// The section whose body (past its header, before its footer) holds byte
/// `offset`, if one does: `("PART", "ram")`.
pub fn section_body_at(map: &[Record], offset: usize) -> Option<(&str, &str)> {
    let r = map
        .iter()
        .rev()
        .find(|r| r.at <= offset && offset < r.end() && r.what != "package")?;
    let (kind, name) = r.what.split_once(' ')?;
    let header = match kind {
        "START" | "FULL" => 1 + 4 + 1 + name.len() + 8,
        "PART" | "END" => 1 + 4,
        _ => return None,
    };
    (r.at + header < offset && offset < r.end() - 5).then_some((kind, name))
}
