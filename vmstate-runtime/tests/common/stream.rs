//! A reference savevm stream (QEMU 7.2 dialect, no vmdesc) to break one thing
//! in: header, configuration, an iterative "pages" section (START, PARTs,
//! END) and two FULL device sections, "uart" (version 2, minimum 1) and
//! "rtc"; its records located by walking the framing; the matching
//! destination registry; and loading into it.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use vmstate_runtime::savevm::{
    CommandHandler, Configuration, InstanceId, IterateStatus, LoadOptions, NoCommands, QemuVersion,
    Registry, StreamLoader, StreamWriter,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{Error, Result, VmState};

use super::ram::{SharedMemory, SyntheticRam};

/// The machine type of both sides.
pub const MACHINE: &str = "pc-i440fx-7.2";
/// Bytes of the header (magic, version) before the configuration record.
pub const HEADER_LEN: usize = 8;

/// Pages of the "pages" section and their size.
const PAGES: usize = 6;
const PAGE_SIZE: usize = 4;

/// A device written in a FULL section.
#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "uart", version = 2, minimum_version = 1)]
pub struct Uart {
    pub lcr: u8,
    pub divisor: u16,
    #[vmstate(since = 2)]
    pub scratch: u8,
}

/// Another one, after it.
#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "rtc", version = 1)]
pub struct Rtc {
    pub regs: [u8; 4],
}

/// One section record of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset of its type byte.
    pub at: usize,
    /// The type byte (START 0x01, PART 0x02, END 0x03, FULL 0x04).
    pub ty: u8,
    /// Its section id.
    pub section_id: u32,
    /// The idstr (START/FULL only).
    pub idstr: Option<String>,
    /// Offset of the idstr's length byte (START/FULL only).
    pub idstr_at: Option<usize>,
    /// The body.
    pub body: Range<usize>,
    /// Offset of its footer (0x7e, be32 section id).
    pub footer: usize,
}

impl Record {
    /// Offset of the be32 instance id (START/FULL only).
    pub fn instance_at(&self) -> usize {
        let at = self.idstr_at.expect("START/FULL");
        at + 1 + self.idstr.as_ref().map_or(0, String::len)
    }

    /// Offset of the be32 version (START/FULL only).
    pub fn version_at(&self) -> usize {
        self.instance_at() + 4
    }
}

/// The good stream and where its parts are.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Its section records, in stream order.
    pub records: Vec<Record>,
    /// Offset of the EOF byte (the last one).
    pub eof: usize,
}

impl Reference {
    /// The first record of type `ty` (with `idstr`, for START/FULL).
    pub fn record(&self, ty: u8, idstr: Option<&str>) -> &Record {
        self.records
            .iter()
            .find(|r| r.ty == ty && (idstr.is_none() || r.idstr.as_deref() == idstr))
            .unwrap_or_else(|| panic!("no record {ty:#04x} {idstr:?}"))
    }

    /// The uart's FULL record.
    pub fn uart(&self) -> &Record {
        self.record(0x04, Some("uart"))
    }

    /// A copy with byte `at` set to `value`.
    pub fn with_byte(&self, at: usize, value: u8) -> Vec<u8> {
        let mut b = self.bytes.clone();
        b[at] = value;
        b
    }

    /// A copy with `bytes[range]` replaced by `with`.
    pub fn splice(&self, range: Range<usize>, with: &[u8]) -> Vec<u8> {
        let mut b = self.bytes.clone();
        b.splice(range, with.iter().copied());
        b
    }

    /// A copy with `extra` inserted at `at`.
    pub fn insert(&self, at: usize, extra: &[u8]) -> Vec<u8> {
        self.splice(at..at, extra)
    }
}

/// The source registry: "pages", "uart", "rtc".
fn source_registry() -> Registry {
    let mut reg = Registry::new();
    let mem = SharedMemory::new(PAGES, PAGE_SIZE, |i| vec![i as u8 + 1, 0x11, 0x22, 0x33]);
    reg.register_savevm_live("pages", 0, 1, Box::new(SyntheticRam::new(mem).burst(2)))
        .unwrap();
    let uart = Uart {
        lcr: 3,
        divisor: 12,
        scratch: 0x5a,
    };
    reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(uart)))
        .unwrap();
    let rtc = Rtc { regs: [9, 8, 7, 6] };
    reg.vmstate_register(0, Arc::new(Mutex::new(rtc))).unwrap();
    reg
}

/// Writes the reference stream with configuration `config`.
pub fn reference_with(config: &Configuration) -> Reference {
    let mut reg = source_registry();
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.suppress_vmdesc();
    w.write_header().unwrap();
    w.write_configuration(config).unwrap();
    w.setup(&mut reg).unwrap();
    let mut rounds = 0;
    while w.iterate(&mut reg, false, &mut |_| false).unwrap() == IterateStatus::Continue {
        rounds += 1;
        assert!(rounds < 100);
    }
    w.complete_precopy(&mut reg).unwrap();
    StreamWriter::<Vec<u8>>::cleanup(&mut reg);
    let bytes = w.into_inner().unwrap();
    let (records, eof) = walk(&bytes, HEADER_LEN + 1 + config_len(config));
    Reference {
        bytes,
        records,
        eof,
    }
}

/// The reference stream with our configuration.
pub fn reference() -> Reference {
    reference_with(&Configuration::new(MACHINE))
}

fn config_len(config: &Configuration) -> usize {
    vmstate_runtime::to_bytes(config).unwrap().len()
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// The section records from `at` to the EOF byte: each header, then the body
/// up to the first footer of the same section id.
fn walk(b: &[u8], mut at: usize) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    loop {
        let ty = b[at];
        if ty == 0x00 {
            assert_eq!(at + 1, b.len(), "EOF is the last byte");
            return (records, at);
        }
        assert!((0x01..=0x04).contains(&ty), "record type {ty:#04x} at {at}");
        let section_id = be32(b, at + 1);
        let (idstr, idstr_at, body_start) = if ty == 0x01 || ty == 0x04 {
            let len = usize::from(b[at + 5]);
            let name = String::from_utf8(b[at + 6..at + 6 + len].to_vec()).unwrap();
            (Some(name), Some(at + 5), at + 6 + len + 8)
        } else {
            (None, None, at + 5)
        };
        let mut footer = [0x7e, 0, 0, 0, 0];
        footer[1..].copy_from_slice(&section_id.to_be_bytes());
        let end = body_start
            + b[body_start..]
                .windows(5)
                .position(|w| w == footer)
                .expect("footer");
        records.push(Record {
            at,
            ty,
            section_id,
            idstr,
            idstr_at,
            body: body_start..end,
            footer: end,
        });
        at = end + 5;
    }
}

/// The destination: the same sections, fresh.
pub struct Destination {
    /// Its registry.
    pub reg: Registry,
    /// Its uart.
    pub uart: Arc<Mutex<Uart>>,
    /// Its pages.
    pub pages: SharedMemory,
}

/// A destination for the reference stream.
pub fn destination() -> Destination {
    let mut reg = Registry::new();
    let pages = SharedMemory::zeroed(PAGES, PAGE_SIZE);
    reg.register_savevm_live("pages", 0, 1, Box::new(SyntheticRam::new(pages.clone())))
        .unwrap();
    let uart = Arc::new(Mutex::new(Uart::default()));
    reg.vmstate_register(InstanceId::Any, uart.clone()).unwrap();
    reg.vmstate_register(0, Arc::new(Mutex::new(Rtc::default())))
        .unwrap();
    Destination { reg, uart, pages }
}

/// The destination's load options (7.2, our configuration expected).
pub fn load_options() -> LoadOptions {
    LoadOptions::default().with_configuration(Configuration::new(MACHINE))
}

/// Loads `bytes` into a fresh destination with commands going to `cmds`;
/// bytes left after the stream are an error too.
pub fn load_with(bytes: &[u8], opts: LoadOptions, cmds: &mut dyn CommandHandler) -> Result<()> {
    let mut dst = destination();
    let mut r = Reader::new(BytesMut::from(bytes));
    StreamLoader::new(opts).load(&mut r, &mut dst.reg, cmds)?;
    if r.remaining() != 0 {
        return Err(Error::invalid(format!(
            "{} bytes after the stream",
            r.remaining()
        )));
    }
    Ok(())
}

/// Loads `bytes` into a fresh destination (no commands expected).
pub fn load(bytes: &[u8]) -> Result<()> {
    load_with(bytes, load_options(), &mut NoCommands)
}
