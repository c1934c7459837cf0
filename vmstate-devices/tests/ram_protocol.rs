//! The RAM record codec: encode then decode is the identity for arbitrary record
//! sequences (CONTINUE kept across EOS boundaries), and every malformed case of
//! qemu-wire.md §4/§9 gives its typed error naming block, offset and reason,
//! without an allocation sized by a number the stream claims.

#[path = "../../vmstate-runtime/tests/common/alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

use bytes::BytesMut;
use proptest::prelude::*;
use vmstate_devices::ram::protocol::{
    BlockEntry, BlockSpecs, MemSizeOptions, PageAt, RamDecoder, RamEncoder, RamFlag, Record,
    X86_TARGET_PAGE_SIZE as PS,
};
use vmstate_devices::ram::{RamBlockSpec, RamError, RamErrorKind, XbzrleError};
use vmstate_runtime::wire::{Reader, Writer};

const HUGE: u64 = 0x20_0000;

fn table() -> BlockSpecs {
    let b = |idstr: &str, used: u64, max: u64, resizeable: bool, page_size: u64, gpa: u64| {
        RamBlockSpec {
            idstr: idstr.into(),
            used_length: used,
            max_length: max,
            resizeable,
            read_only: false,
            page_size,
            gpa,
        }
    };
    BlockSpecs(vec![
        b("pc.ram", 64 * PS, 64 * PS, false, PS, 0),
        b("/rom@etc/acpi/tables", 4 * PS, 16 * PS, true, PS, 0),
        b("pc.bios", 8 * PS, 8 * PS, false, PS, 0xfffc_0000),
        b("huge", 2 * HUGE, 2 * HUGE, false, HUGE, 0x1_0000_0000),
    ])
}

/// The MEM_SIZE entries of `table` as a writer following `opts` sends them.
fn entries(t: &BlockSpecs, opts: MemSizeOptions) -> Vec<BlockEntry> {
    t.0.iter()
        .map(|b| BlockEntry {
            idstr: b.idstr.clone(),
            used_length: b.used_length,
            page_size: opts
                .postcopy_host_page_size
                .filter(|h| *h != b.page_size)
                .map(|_| b.page_size),
            gpa: opts.ignore_shared.then_some(b.gpa),
        })
        .collect()
}

fn at(t: &BlockSpecs, block: usize, offset: u64) -> PageAt<'_> {
    PageAt {
        block,
        idstr: &t.0[block].idstr,
        offset,
    }
}

fn encode(records: &[Record], t: &BlockSpecs, opts: MemSizeOptions) -> Vec<u8> {
    let mut enc = RamEncoder::new(PS);
    let mut w = Writer::new(Vec::new());
    for r in records {
        match r {
            Record::MemSize(e) => enc.write_mem_size(&mut w, e, opts).unwrap(),
            Record::Zero { block, offset } => {
                enc.write_zero(&mut w, at(t, *block, *offset)).unwrap()
            }
            Record::Page {
                block,
                offset,
                data,
            } => enc
                .write_page(&mut w, at(t, *block, *offset), data)
                .unwrap(),
            Record::Xbzrle {
                block,
                offset,
                data,
            } => enc
                .write_xbzrle(&mut w, at(t, *block, *offset), data)
                .unwrap(),
            Record::Eos => enc.write_eos(&mut w).unwrap(),
        }
    }
    w.into_inner()
}

fn decode_all(bytes: &[u8], t: &BlockSpecs, opts: MemSizeOptions) -> Result<Vec<Record>, RamError> {
    let mut dec = RamDecoder::new(PS, opts);
    let mut r = Reader::new(BytesMut::from(bytes));
    let mut out = Vec::new();
    while r.remaining() > 0 {
        out.push(dec.next_record(&mut r, t)?);
    }
    Ok(out)
}

fn record(t: &BlockSpecs, opts: MemSizeOptions) -> impl Strategy<Value = Record> {
    let pages: Vec<u64> = t.0.iter().map(|b| b.used_length / PS).collect();
    let n = pages.len();
    let mem = entries(t, opts);
    prop_oneof![
        Just(Record::Eos),
        Just(Record::MemSize(mem)),
        (0..n, any::<prop::sample::Index>()).prop_map({
            let pages = pages.clone();
            move |(block, i)| Record::Zero {
                block,
                offset: i.index(pages[block] as usize) as u64 * PS,
            }
        }),
        (
            0..n,
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map({
                let pages = pages.clone();
                move |(block, i, data)| Record::Xbzrle {
                    block,
                    offset: i.index(pages[block] as usize) as u64 * PS,
                    data,
                }
            }),
        (0..n, any::<prop::sample::Index>(), any::<u8>()).prop_map(move |(block, i, fill)| {
            let mut data = vec![fill; PS as usize];
            data[i.index(PS as usize)] = fill.wrapping_add(1);
            Record::Page {
                block,
                offset: i.index(pages[block] as usize) as u64 * PS,
                data,
            }
        }),
    ]
}

fn opts() -> impl Strategy<Value = MemSizeOptions> {
    (any::<bool>(), any::<bool>()).prop_map(|(postcopy, ignore_shared)| MemSizeOptions {
        postcopy_host_page_size: postcopy.then_some(PS),
        ignore_shared,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn encode_then_decode_is_identity(
        (opts, records) in opts().prop_flat_map(|o| {
            (Just(o), prop::collection::vec(record(&table(), o), 0..40))
        })
    ) {
        let t = table();
        let bytes = encode(&records, &t, opts);
        let back = decode_all(&bytes, &t, opts).unwrap();
        prop_assert_eq!(&back, &records);
        // And the bytes are what the encoder writes for them again.
        prop_assert_eq!(encode(&back, &t, opts), bytes);
    }
}

/// Raw record bytes: a be64 word, then the rest.
fn word(w: u64) -> Vec<u8> {
    w.to_be_bytes().to_vec()
}

fn named(name: &str) -> Vec<u8> {
    let mut v = vec![name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v
}

fn plain() -> MemSizeOptions {
    MemSizeOptions::default()
}

const ZERO: u64 = RamFlag::Zero as u64;
const PAGE: u64 = RamFlag::Page as u64;
const CONT: u64 = RamFlag::Continue as u64;
const MEM: u64 = RamFlag::MemSize as u64;

const XBZ: u64 = RamFlag::Xbzrle as u64;
const EOS: u64 = RamFlag::Eos as u64;

/// An XBZRLE record for page `offset` of pc.ram: flag byte, be16 length, data.
fn xbzrle_record(offset: u64, flag: u8, len: u16, data: &[u8]) -> Vec<u8> {
    [
        word(offset | XBZ),
        named("pc.ram"),
        vec![flag],
        len.to_be_bytes().to_vec(),
        data.to_vec(),
    ]
    .concat()
}

/// One malformed input: what it is, the bytes, the MEM_SIZE options, the
/// stream offset the error must point at, what the error must say and a check
/// of its typed kind.
struct Case {
    what: &'static str,
    bytes: Vec<u8>,
    opts: MemSizeOptions,
    at: u64,
    says: &'static str,
    kind: fn(&RamErrorKind) -> bool,
}

fn cases() -> Vec<Case> {
    let postcopy = MemSizeOptions {
        postcopy_host_page_size: Some(PS),
        ignore_shared: false,
    };
    let shared = MemSizeOptions {
        postcopy_host_page_size: None,
        ignore_shared: true,
    };
    let acpi = "/rom@etc/acpi/tables";
    let case = |what, bytes, opts, at, says, kind| Case {
        what,
        bytes,
        opts,
        at,
        says,
        kind,
    };
    use RamErrorKind as K;
    vec![
        case(
            "unknown block",
            [word(0x3000 | ZERO), named("vga.vram"), vec![0]].concat(),
            plain(),
            0,
            "unknown RAMBlock \"vga.vram\"",
            |k| matches!(k, K::UnknownBlock { block } if block == "vga.vram"),
        ),
        case(
            "unknown block in the MEM_SIZE list",
            [word(PS | MEM), named("vga.vram"), word(PS)].concat(),
            plain(),
            8,
            "unknown RAMBlock \"vga.vram\"",
            |k| matches!(k, K::UnknownBlock { .. }),
        ),
        case(
            "length mismatch on a non-resizeable block",
            [word(PS | MEM), named("pc.ram"), word(PS)].concat(),
            plain(),
            8,
            "RAMBlock \"pc.ram\": length 0x1000 in the stream, 0x40000 here, and the block is not resizeable",
            |k| matches!(k, K::LengthMismatch { block, local, stream: PS } if block == "pc.ram" && *local == 64 * PS),
        ),
        case(
            "resize beyond max_length",
            [word((17 * PS) | MEM), named(acpi), word(17 * PS)].concat(),
            plain(),
            8,
            "beyond its max_length 0x10000",
            |k| matches!(k, K::ResizeBeyondMax { max, stream, .. } if *max == 16 * PS && *stream == 17 * PS),
        ),
        case(
            "resize to a length that is not whole pages",
            [word((8 * PS) | MEM), named(acpi), word(4 * PS + 1)].concat(),
            plain(),
            8,
            "not a multiple of the page size",
            |k| matches!(k, K::UnalignedLength { .. }),
        ),
        case(
            "an entry longer than what is left of the total",
            [word(PS | MEM), named("pc.bios"), word(8 * PS)].concat(),
            plain(),
            8,
            "exceeds the 0x1000 bytes left of the announced total",
            |k| matches!(k, K::TotalMismatch { remaining, .. } if *remaining == PS),
        ),
        case(
            "a total the block list does not add up to",
            [
                word((16 * PS) | MEM),
                named("pc.bios"),
                word(8 * PS),
                word(EOS),
            ]
            .concat(),
            plain(),
            8 + 8 + 8,
            "announces a total of 0x10000 bytes, but its 1 RAMBlocks add up to 0x8000",
            |k| matches!(k, K::MemSizeListShort { total, listed, entries: 1 } if *total == 16 * PS && *listed == 8 * PS),
        ),
        case(
            "offset beyond used_length",
            [word((64 * PS) | ZERO), named("pc.ram"), vec![0]].concat(),
            plain(),
            0,
            "page at offset 0x40000 is beyond its used_length 0x40000",
            |k| matches!(k, K::OffsetBeyondUsed { block, offset, .. } if block == "pc.ram" && *offset == 64 * PS),
        ),
        case(
            "offset whose page end overflows",
            [word(!(PS - 1) | PAGE), named("pc.ram")].concat(),
            plain(),
            0,
            "beyond its used_length",
            |k| matches!(k, K::OffsetBeyondUsed { .. }),
        ),
        case(
            "CONTINUE with no previous block",
            [word(0x1000 | ZERO | CONT), vec![0]].concat(),
            plain(),
            0,
            "page at offset 0x1000 has CONTINUE but no RAMBlock was named before",
            |k| matches!(k, K::ContinueWithoutBlock { offset: 0x1000 }),
        ),
        case(
            "bad fill byte",
            [word(PS | ZERO), named("pc.bios"), vec![0x5a]].concat(),
            plain(),
            0,
            "RAMBlock \"pc.bios\": zero page at offset 0x1000 has fill byte 0x5a",
            |k| matches!(k, K::BadFill { block, offset: PS, fill: 0x5a } if block == "pc.bios"),
        ),
        case(
            "unknown flag combination ZERO|PAGE",
            [word(ZERO | PAGE), named("pc.ram"), vec![0; 4096]].concat(),
            plain(),
            0,
            "unknown combination of migration flags 0xa",
            |k| matches!(k, K::UnknownFlags { flags: 0xa }),
        ),
        case(
            "unknown flag bit 0x400",
            word(0x400).to_vec(),
            plain(),
            0,
            "unknown combination of migration flags 0x400",
            |k| matches!(k, K::UnknownFlags { .. }),
        ),
        case(
            "MEM_SIZE with CONTINUE",
            [word(MEM | CONT), named("pc.ram")].concat(),
            plain(),
            0,
            "unknown combination",
            |k| matches!(k, K::UnknownFlags { .. }),
        ),
        case(
            "the obsolete FULL flag",
            word(RamFlag::Full as u64),
            plain(),
            0,
            "unknown combination",
            |k| matches!(k, K::UnknownFlags { flags: 1 }),
        ),
        case(
            "no flag at all",
            word(0),
            plain(),
            0,
            "unknown combination",
            |k| matches!(k, K::UnknownFlags { flags: 0 }),
        ),
        case(
            "EOS with offset bits",
            word(PS | EOS),
            plain(),
            0,
            "unknown combination",
            |k| matches!(k, K::UnknownFlags { .. }),
        ),
        case(
            "COMPRESS_PAGE (compress capability off)",
            [word(RamFlag::CompressPage as u64), named("pc.ram")].concat(),
            plain(),
            0,
            "COMPRESS_PAGE",
            |k| matches!(k, K::Unsupported { .. }),
        ),
        case(
            "RDMA HOOK",
            [word(RamFlag::Hook as u64), named("pc.ram")].concat(),
            plain(),
            0,
            "RDMA HOOK",
            |k| matches!(k, K::Unsupported { .. }),
        ),
        case(
            "page-size mismatch",
            [word((2 * HUGE) | MEM), named("huge"), word(2 * HUGE), word(PS)].concat(),
            postcopy,
            8,
            "RAMBlock \"huge\": page size 0x1000 in the stream, 0x200000 here",
            |k| matches!(k, K::PageSizeMismatch { block, local: HUGE, stream: PS } if block == "huge"),
        ),
        case(
            "GPA mismatch",
            [
                word((8 * PS) | MEM),
                named("pc.bios"),
                word(8 * PS),
                word(0xc0000),
            ]
            .concat(),
            shared,
            8,
            "guest address 0xc0000 in the stream, 0xfffc0000 here",
            |k| matches!(k, K::GpaMismatch { local: 0xfffc_0000, stream: 0xc0000, .. }),
        ),
        case(
            "XBZRLE encoding flag other than 1",
            xbzrle_record(PS, 2, 3, &[0, 1, 9]),
            plain(),
            0,
            "RAMBlock \"pc.ram\": XBZRLE page at offset 0x1000: encoding flag 0x02",
            |k| matches!(k, K::BadXbzrle { reason: XbzrleError::BadEncodingFlag(2), offset: PS, .. }),
        ),
        case(
            "XBZRLE length beyond the page (nothing allocated for it)",
            xbzrle_record(PS, 1, 0xffff, &[]),
            plain(),
            0,
            "encoded length 0xffff is more than the page size 0x1000",
            |k| matches!(k, K::BadXbzrle { reason: XbzrleError::LengthBeyondPage { len: 0xffff, .. }, .. }),
        ),
        case(
            "truncated page payload",
            [word(PAGE), named("pc.ram"), vec![1; 100]].concat(),
            plain(),
            0,
            "",
            |k| matches!(k, K::Wire(_)),
        ),
        case(
            "a huge total, one entry, then the end of the data",
            [word((1 << 60) | MEM), named("pc.bios"), word(8 * PS)].concat(),
            plain(),
            8 + 8 + 8,
            "",
            |k| matches!(k, K::Wire(_)),
        ),
    ]
}

#[test]
fn every_malformed_case_says_what_where_and_why_without_allocating_by_it() {
    for c in cases() {
        let (result, seen) = alloc::measure(|| decode_all(&c.bytes, &table(), c.opts));
        let e = result.expect_err(c.what);
        assert!((c.kind)(e.kind()), "{}: {e:?}", c.what);
        assert!(e.to_string().contains(c.says), "{}: {e}", c.what);
        if !matches!(e.kind(), RamErrorKind::Wire(_)) {
            assert_eq!(e.at(), c.at, "{}: offset of {e}", c.what);
        }
        // Nothing sized by a claimed number: the largest allocation is the
        // input copy and small bookkeeping, never a claimed length.
        let bound = c.bytes.len().max(256) + 4096;
        assert!(
            seen.largest <= bound && seen.peak <= 2 * bound,
            "{}: allocated {seen:?}",
            c.what,
        );
    }
}

#[test]
fn the_same_records_just_inside_the_limits_are_accepted() {
    for ok in [
        [
            word((8 * PS) | MEM),
            named("/rom@etc/acpi/tables"),
            word(8 * PS),
        ]
        .concat(),
        [word((63 * PS) | ZERO), named("pc.ram"), vec![0]].concat(),
        [word((2 * HUGE) | MEM), named("huge"), word(2 * HUGE)].concat(),
        xbzrle_record(PS, 1, 3, &[0, 1, 9]),
    ] {
        decode_all(&ok, &table(), plain()).unwrap();
    }
}

#[test]
fn continue_is_kept_across_eos() {
    let bytes = [
        word(ZERO),
        named("pc.bios"),
        vec![0],
        word(EOS),
        word(PS | ZERO | CONT),
        vec![0],
    ]
    .concat();
    let back = decode_all(&bytes, &table(), plain()).unwrap();
    assert_eq!(
        back[2],
        Record::Zero {
            block: 2,
            offset: PS
        }
    );
}
