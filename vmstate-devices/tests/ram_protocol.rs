//! The RAM record codec: encode then decode is the identity for arbitrary record
//! sequences (CONTINUE kept across EOS boundaries), and every malformed case of
//! qemu-wire.md §4/§9 gives its typed error naming block, offset and reason.

use bytes::BytesMut;
use proptest::prelude::*;
use vmstate_devices::ram::protocol::{
    BlockEntry, BlockSpecs, MemSizeOptions, PageAt, RamDecoder, RamEncoder, RamFlag, Record,
    X86_TARGET_PAGE_SIZE as PS,
};
use vmstate_devices::ram::{RamBlockSpec, RamError, RamErrorKind};
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

fn err_of(bytes: &[u8], opts: MemSizeOptions) -> RamError {
    decode_all(bytes, &table(), opts).expect_err("must be rejected")
}

fn plain() -> MemSizeOptions {
    MemSizeOptions::default()
}

const ZERO: u64 = RamFlag::Zero as u64;
const PAGE: u64 = RamFlag::Page as u64;
const CONT: u64 = RamFlag::Continue as u64;
const MEM: u64 = RamFlag::MemSize as u64;

#[test]
fn unknown_block() {
    let bytes = [word(0x3000 | ZERO), named("vga.vram"), vec![0]].concat();
    let e = err_of(&bytes, plain());
    assert!(matches!(e.kind(), RamErrorKind::UnknownBlock { block } if block == "vga.vram"));
    assert_eq!(e.at(), 0);
    assert!(
        e.to_string().contains("unknown RAMBlock \"vga.vram\""),
        "{e}"
    );
}

#[test]
fn length_mismatch_on_a_fixed_block() {
    let bytes = [word(PS | MEM), named("pc.ram"), word(PS)].concat();
    let e = err_of(&bytes, plain());
    assert!(matches!(
        e.kind(),
        RamErrorKind::LengthMismatch { block, local, stream: PS } if block == "pc.ram" && *local == 64 * PS
    ));
    assert_eq!(e.at(), 8, "the entry's offset");
    assert!(e.to_string().contains("not resizeable"), "{e}");
}

#[test]
fn resize_beyond_max_length() {
    let len = 17 * PS;
    let bytes = [word(len | MEM), named("/rom@etc/acpi/tables"), word(len)].concat();
    let e = err_of(&bytes, plain());
    assert!(matches!(
        e.kind(),
        RamErrorKind::ResizeBeyondMax { block, max, stream } if block == "/rom@etc/acpi/tables" && *max == 16 * PS && *stream == len
    ));
    // Within max_length the entry is accepted (the caller resizes).
    let ok = [
        word((8 * PS) | MEM),
        named("/rom@etc/acpi/tables"),
        word(8 * PS),
    ]
    .concat();
    assert!(decode_all(&ok, &table(), plain()).is_ok());
}

#[test]
fn lengths_that_do_not_add_up_to_the_total() {
    let bytes = [word(PS | MEM), named("pc.bios"), word(8 * PS)].concat();
    let e = err_of(&bytes, plain());
    assert!(matches!(e.kind(), RamErrorKind::TotalMismatch { remaining, .. } if *remaining == PS));
}

#[test]
fn a_huge_total_allocates_nothing_and_fails_on_the_missing_entries() {
    // 2^60 bytes announced, then one valid entry and the end of the data.
    let bytes = [word((1 << 60) | MEM), named("pc.bios"), word(8 * PS)].concat();
    let e = err_of(&bytes, plain());
    assert!(matches!(e.kind(), RamErrorKind::Wire(_)), "{e}");
}

#[test]
fn offset_beyond_used_length() {
    let bytes = [word((64 * PS) | ZERO), named("pc.ram"), vec![0]].concat();
    let e = err_of(&bytes, plain());
    assert!(matches!(
        e.kind(),
        RamErrorKind::OffsetBeyondUsed { block, offset, used } if block == "pc.ram" && *offset == 64 * PS && *used == 64 * PS
    ));
    // The last page is fine.
    let ok = [word((63 * PS) | ZERO), named("pc.ram"), vec![0]].concat();
    assert!(decode_all(&ok, &table(), plain()).is_ok());
    // An offset so large that offset + page overflows.
    let wrap = [word(!(PS - 1) | PAGE), named("pc.ram")].concat();
    assert!(matches!(
        err_of(&wrap, plain()).kind(),
        RamErrorKind::OffsetBeyondUsed { .. }
    ));
}

#[test]
fn continue_with_no_previous_block() {
    let bytes = [word(0x1000 | ZERO | CONT), vec![0]].concat();
    let e = err_of(&bytes, plain());
    assert!(matches!(
        e.kind(),
        RamErrorKind::ContinueWithoutBlock { offset: 0x1000 }
    ));
}

#[test]
fn continue_is_kept_across_eos() {
    let bytes = [
        word(ZERO),
        named("pc.bios"),
        vec![0],
        word(RamFlag::Eos as u64),
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

#[test]
fn bad_fill_byte() {
    let bytes = [word(PS | ZERO), named("pc.bios"), vec![0x5a]].concat();
    let e = err_of(&bytes, plain());
    assert!(matches!(
        e.kind(),
        RamErrorKind::BadFill { block, offset: PS, fill: 0x5a } if block == "pc.bios"
    ));
}

#[test]
fn unknown_flag_combinations() {
    for flags in [
        ZERO | PAGE,
        0x400,
        0x800 | PAGE,
        MEM | CONT,
        RamFlag::Full as u64,
        0,
    ] {
        let bytes = [word(flags), named("pc.ram"), vec![0; 4096]].concat();
        let e = err_of(&bytes, plain());
        assert!(
            matches!(e.kind(), RamErrorKind::UnknownFlags { flags: f } if *f == flags),
            "{flags:#x}: {e}"
        );
    }
    // EOS with offset bits set is not an EOS.
    let e = err_of(&word(PS | RamFlag::Eos as u64), plain());
    assert!(matches!(e.kind(), RamErrorKind::UnknownFlags { .. }));
    // Records of features this side does not take.
    for (flags, what) in [
        (RamFlag::Xbzrle as u64, "XBZRLE"),
        (RamFlag::CompressPage as u64, "COMPRESS_PAGE"),
        (RamFlag::Hook as u64, "HOOK"),
    ] {
        let e = err_of(&[word(flags), named("pc.ram")].concat(), plain());
        assert!(e.to_string().contains(what), "{e}");
    }
}

#[test]
fn page_size_mismatch() {
    let opts = MemSizeOptions {
        postcopy_host_page_size: Some(PS),
        ignore_shared: false,
    };
    let len = 2 * HUGE;
    let bytes = [word(len | MEM), named("huge"), word(len), word(PS)].concat();
    let e = err_of(&bytes, opts);
    assert!(matches!(
        e.kind(),
        RamErrorKind::PageSizeMismatch { block, local: HUGE, stream: PS } if block == "huge"
    ));
    // Without postcopy the word is not on the wire: the same entry reads fine
    // when the word is left out.
    let plain_bytes = [word(len | MEM), named("huge"), word(len)].concat();
    assert!(decode_all(&plain_bytes, &table(), plain()).is_ok());
}

#[test]
fn gpa_mismatch() {
    let opts = MemSizeOptions {
        postcopy_host_page_size: None,
        ignore_shared: true,
    };
    let bytes = [
        word((8 * PS) | MEM),
        named("pc.bios"),
        word(8 * PS),
        word(0xc0000),
    ]
    .concat();
    let e = err_of(&bytes, opts);
    assert!(matches!(
        e.kind(),
        RamErrorKind::GpaMismatch {
            local: 0xfffc_0000,
            stream: 0xc0000,
            ..
        }
    ));
}

#[test]
fn truncated_page_payload() {
    let bytes = [word(PAGE), named("pc.ram"), vec![1; 100]].concat();
    let e = err_of(&bytes, plain());
    assert!(matches!(e.kind(), RamErrorKind::Wire(_)), "{e}");
}
