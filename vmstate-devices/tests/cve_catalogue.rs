//! The rows of the malicious-stream catalogue (qemu-wire.md §9) for the devices
//! modelled here, one named test each, every hostile body going through the
//! whole loader inside a stream (`common::streams`), as a peer would send it.
//! The generic rows are in vmstate-runtime/tests/cve_catalogue.rs; virtio rows
//! belong to the virtio issue.
//!
//! | §9 row | test(s) | also covered by |
//! |---|---|---|
//! | CVE-2017-16845 PS/2 queue rptr/count (keyboard) | `cve_2017_16845_ps2kbd_rptr_count` | pckbd_hostile `keyboard_queue_sanitisation_cases` (body level) |
//! | CVE-2017-16845, later wptr/cwptr (keyboard reply queue) | `cve_2017_16845_ps2kbd_cwptr` | pckbd_hostile |
//! | CVE-2017-16845 PS/2 queue rptr/count (mouse) | `cve_2017_16845_ps2mouse_rptr_count` | pckbd_hostile `mouse_queue_sanitisation_cases` |
//! | RAM: MEM_SIZE total ≠ per-block sum (blocks exceed the total) | `ram_mem_size_blocks_exceed_total` | ram_protocol |
//! | RAM: MEM_SIZE total ≠ per-block sum (total exceeds the blocks) | not here: its own error is being added with the RAM section work | — |
//! | RAM: unknown block | `ram_unknown_block_in_mem_size`, `ram_unknown_block_in_page` | ram_protocol |
//! | RAM: block longer than max_length | `ram_block_longer_than_max_length` (+ `ram_length_mismatch_fixed_block`) | ram_protocol |
//! | RAM: CONTINUE as the first page | `ram_continue_as_first_page` | ram_protocol |
//! | RAM: page offset ≥ used_length | `ram_page_offset_beyond_used_length` | ram_protocol, ram_migration |
//! | RAM: ZERO fill ≠ 0 (7.2 accepts, master rejects: so do we) | `ram_zero_fill_nonzero` | ram_protocol |
//! | RAM: XBZRLE header/enc_len/run checks | `ram_xbzrle_checks` | ram_xbzrle, ram_protocol |
//! | RAM: COMPRESS_PAGE (compress is never on here) | `ram_unsupported_records` | ram_protocol |
//! | RAM: HOOK without RDMA | `ram_unsupported_records` | ram_protocol |
//! | RAM: unknown flag bits | `ram_unknown_flag_bits` | ram_protocol |
//! | (RAM: x-ignore-shared GPA mismatch, issue 8's list) | `ram_gpa_mismatch` | ram_protocol |
//! | (RAM: stream ends inside a page) | `ram_truncated_page` | ram_protocol |

mod common;

use std::sync::{Arc, Mutex};

use common::streams::{load, stream, Section};
use vmstate_devices::pckbd::{self, I8042};
use vmstate_devices::ram::protocol::{MemSizeOptions, RamFlag, X86_TARGET_PAGE_SIZE as PS};
use vmstate_devices::ram::{
    RamBlockList, RamBlockSpec, RamError, RamErrorKind, RamSection, RamSectionConfig,
    VmMemoryDirtyLog,
};
use vmstate_runtime::savevm::Registry;
use vmstate_runtime::{to_bytes, ErrorKind};

// ---- CVE-2017-16845: the PS/2 queues ----

/// Offsets in a "PS2 Common State" body (the first part of both PS/2
/// sections): be32 write_cmd, rptr, wptr, count, then the 256-byte ring.
const RPTR: usize = 4;
const WPTR: usize = 8;
const COUNT: usize = 12;

fn put_i32(body: &mut [u8], at: usize, v: i32) {
    body[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// The three pckbd sections of a fresh controller, as it saves them, with
/// `patch` applied to the ps2kbd and ps2mouse bodies; loaded through a
/// stream into a registered controller.
fn load_i8042(patch_kbd: impl Fn(&mut Vec<u8>), patch_mouse: impl Fn(&mut Vec<u8>)) -> I8042 {
    let src = I8042::default();
    let mut kbd = to_bytes(src.keyboard()).unwrap();
    let mut mouse = to_bytes(src.mouse()).unwrap();
    patch_kbd(&mut kbd);
    patch_mouse(&mut mouse);
    let (bytes, _) = stream(&[
        Section::full(0, "ps2kbd", 0, 3, kbd),
        Section::full(1, "ps2mouse", 0, 2, mouse),
        Section::full(2, "pckbd", 0, 3, to_bytes(&src).unwrap()),
    ]);
    let dev = Arc::new(Mutex::new(I8042::default()));
    let mut reg = Registry::new();
    pckbd::register(&mut reg, dev.clone()).unwrap();
    load(&bytes, &mut reg).expect("hostile queue pointers load, sanitised");
    drop(reg);
    Arc::try_unwrap(dev).unwrap().into_inner().unwrap()
}

/// What a guest does next with the loaded state: sends each device a command
/// (its reply goes in at the sanitised write pointer and raises the line the
/// controller reads on) and reads the data port until the queues are
/// drained, the pointers inside the ring all along.
fn drain(dev: &mut I8042) {
    dev.write_port(0x60, 0xee); // keyboard: ECHO
    dev.write_port(0x64, 0xd4); // next byte to the mouse
    dev.write_port(0x60, 0xf2); // mouse: GET ID
    for _ in 0..64 {
        let _ = dev.read_port(0x64);
        let _ = dev.read_port(0x60);
        for q in [dev.keyboard().common(), dev.mouse().common()] {
            assert!((0..=24).contains(&q.len()), "queue length {}", q.len());
            assert!((0..256).contains(&q.rptr()) && (0..256).contains(&q.wptr()));
        }
    }
    assert_eq!(dev.keyboard().common().len(), 0);
}

/// (rptr, wptr, count) as sent → (rptr, wptr, count) loaded.
type QueueCase = ((i32, i32, i32), (i32, i32, i32));

/// The cases of the row (rptr 0x7fffffff, count -1 / 1000) and relatives:
/// rptr taken mod 256, count clamped to 0..=16, wptr recomputed.
const QUEUE_CASES: &[QueueCase] = &[
    ((0x7fff_ffff, 0, -1), (255, 255, 0)),
    ((0x7fff_ffff, 0, 1000), (255, 15, 16)),
    ((-1, 77, i32::MAX), (255, 15, 16)),
    ((i32::MIN, i32::MIN, i32::MIN), (0, 0, 0)),
];

#[test]
fn cve_2017_16845_ps2kbd_rptr_count() {
    for &((r, w, c), expected) in QUEUE_CASES {
        let mut dev = load_i8042(
            |kbd| {
                put_i32(kbd, RPTR, r);
                put_i32(kbd, WPTR, w);
                put_i32(kbd, COUNT, c);
            },
            |_| {},
        );
        let q = dev.keyboard().common();
        assert_eq!(
            (q.rptr(), q.wptr(), q.len(), q.cwptr()),
            (expected.0, expected.1, expected.2, -1),
            "sent rptr {r:#x} wptr {w:#x} count {c}"
        );
        drain(&mut dev);
    }
}

#[test]
fn cve_2017_16845_ps2mouse_rptr_count() {
    for &((r, w, c), expected) in QUEUE_CASES {
        let mut dev = load_i8042(
            |_| {},
            |mouse| {
                put_i32(mouse, RPTR, r);
                put_i32(mouse, WPTR, w);
                put_i32(mouse, COUNT, c);
            },
        );
        let q = dev.mouse().common();
        assert_eq!(
            (q.rptr(), q.wptr(), q.len()),
            expected,
            "sent rptr {r:#x} wptr {w:#x} count {c}"
        );
        drain(&mut dev);
        // A full mouse queue takes no reply, so nothing raises the interrupt
        // the guest reads on: as in QEMU it stays full (and harmless).
        let left = if expected.2 == 16 { 16 } else { 0 };
        assert_eq!(dev.mouse().common().len(), left);
    }
}

/// The keyboard's command-reply pointer (subsection
/// "ps2kbd/command_reply_queue", the later part of the fix): at most 8
/// replies count, cwptr is recomputed from rptr.
#[test]
fn cve_2017_16845_ps2kbd_cwptr() {
    // (rptr, count, cwptr) sent → (rptr, wptr, count, cwptr) loaded.
    let cases = [
        ((0x7fff_ffff, -1, -2i32), (255, 7, 8, 7)),
        ((0, 0, 0x7fff_ffff), (0, 8, 8, 8)),
        ((10, 1000, 0x1234_5678), (10, 34, 24, 18)),
    ];
    for ((r, c, cw), expected) in cases {
        let mut dev = load_i8042(
            |kbd| {
                put_i32(kbd, RPTR, r);
                put_i32(kbd, COUNT, c);
                let name = b"ps2kbd/command_reply_queue";
                assert!(!kbd.windows(name.len()).any(|w| w == name));
                kbd.push(0x05);
                kbd.push(name.len() as u8);
                kbd.extend_from_slice(name);
                kbd.extend_from_slice(&0u32.to_be_bytes());
                kbd.extend_from_slice(&cw.to_be_bytes());
            },
            |_| {},
        );
        let q = dev.keyboard().common();
        assert_eq!(
            (q.rptr(), q.wptr(), q.len(), q.cwptr()),
            expected,
            "sent rptr {r:#x} count {c} cwptr {cw:#x}"
        );
        drain(&mut dev);
    }
}

// ---- RAM ----

const MEM: u64 = RamFlag::MemSize as u64;
const ZERO: u64 = RamFlag::Zero as u64;
const PAGE: u64 = RamFlag::Page as u64;
const CONT: u64 = RamFlag::Continue as u64;
const EOS: u64 = RamFlag::Eos as u64;

const TABLES: &str = "/rom@etc/acpi/tables";

/// The destination's blocks: pc.ram (16 pages, fixed) and the ACPI tables
/// blob (2 pages, resizeable up to 4).
fn specs() -> Vec<RamBlockSpec> {
    vec![
        RamBlockSpec::ram("pc.ram", 16 * PS),
        RamBlockSpec::resizeable_rom(TABLES, 2 * PS, 4 * PS),
    ]
}

fn word(w: u64) -> Vec<u8> {
    w.to_be_bytes().to_vec()
}

fn named(name: &str) -> Vec<u8> {
    let mut v = vec![name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v
}

/// A MEM_SIZE record listing `blocks` (announcing their sum, unless `total`).
fn mem_size(blocks: &[(&str, u64)], total: Option<u64>) -> Vec<u8> {
    let sum = blocks.iter().map(|b| b.1).sum();
    let mut v = word(total.unwrap_or(sum) | MEM);
    for (name, len) in blocks {
        v.extend(named(name));
        v.extend(word(*len));
    }
    v
}

/// The good MEM_SIZE list of [`specs`].
fn good_mem_size() -> Vec<u8> {
    mem_size(&[("pc.ram", 16 * PS), (TABLES, 2 * PS)], None)
}

/// "ram" as QEMU sends it: START (setup: `setup`, EOS), END (`pages`, EOS).
/// Gives the stream and the offsets of the two bodies.
fn ram_stream(setup: &[u8], pages: &[u8]) -> (Vec<u8>, [usize; 2]) {
    let (bytes, at) = stream(&[
        Section::start(0, "ram", 0, 4, [setup, &word(EOS)].concat()),
        Section::end(0, [pages, &word(EOS)].concat()),
    ]);
    (bytes, [at[0], at[1]])
}

/// Loads a "ram" stream into [`specs`] blocks, with `mem_size` options.
fn load_ram(bytes: &[u8], mem_size: MemSizeOptions) -> vmstate_runtime::Result<RamBlockList> {
    let dst = Arc::new(Mutex::new(RamBlockList::new(specs()).unwrap()));
    let config = RamSectionConfig {
        mem_size,
        ..RamSectionConfig::default()
    };
    let mut reg = Registry::new();
    RamSection::with_config(dst.clone(), config, Box::new(VmMemoryDirtyLog))
        .register(&mut reg)
        .unwrap();
    load(bytes, &mut reg)?;
    drop(reg);
    Ok(Arc::try_unwrap(dst).unwrap().into_inner().unwrap())
}

/// Loads and expects the RAM error `check` for the record at stream offset
/// `at`, its message naming `names` (block, reason); gives the kind's text.
#[track_caller]
fn ram_refused(
    (bytes, _): (Vec<u8>, [usize; 2]),
    at: usize,
    check: fn(&RamErrorKind) -> bool,
    names: &[&str],
) {
    ram_refused_with(&bytes, MemSizeOptions::default(), at, check, names)
}

#[track_caller]
fn ram_refused_with(
    bytes: &[u8],
    opts: MemSizeOptions,
    at: usize,
    check: fn(&RamErrorKind) -> bool,
    names: &[&str],
) {
    let e = load_ram(bytes, opts).expect_err("the load must fail");
    let ErrorKind::Device {
        device: "ram",
        source,
    } = e.kind()
    else {
        panic!("not a RAM error: {e}")
    };
    let ram = source.downcast_ref::<RamError>().expect("a RamError");
    assert!(check(ram.kind()), "unexpected: {e}");
    assert_eq!(e.offset(), Some(at as u64), "{e}");
    let text = e.to_string();
    for n in names {
        assert!(text.contains(n), "{n:?} not in: {text}");
    }
    assert!(
        e.section().is_some_and(|s| s.contains("'ram'")),
        "{:?}",
        e.section()
    );
}

/// A good stream loads, and the pages land: the baseline every row breaks.
#[test]
fn ram_reference_stream_loads() {
    let pages = [
        word((3 * PS) | PAGE),
        named("pc.ram"),
        vec![0xab; PS as usize],
        word(PS | ZERO | CONT),
        vec![0],
        word(ZERO),
        named(TABLES),
        vec![0],
    ]
    .concat();
    let (bytes, _) = ram_stream(&good_mem_size(), &pages);
    let ram = load_ram(&bytes, MemSizeOptions::default()).unwrap();
    let mut b = [0u8; 2];
    ram.get("pc.ram").unwrap().read(3 * PS, &mut b).unwrap();
    assert_eq!(b, [0xab, 0xab]);
}

#[test]
fn ram_mem_size_blocks_exceed_total() {
    let s = ram_stream(
        &mem_size(&[("pc.ram", 16 * PS), (TABLES, 2 * PS)], Some(17 * PS)),
        &[],
    );
    let at = s.1[0] + 8 + 7 + 8;
    ram_refused(
        s,
        at,
        |k| matches!(k, RamErrorKind::TotalMismatch { .. }),
        &[TABLES],
    );
}

#[test]
fn ram_mem_size_total_beyond_blocks() {
    // The total announces more than the listed blocks: the list ends (the EOS
    // word reads as an empty name) and the error says so, instead of naming
    // an "unknown RAMBlock ''".
    let s = ram_stream(
        &mem_size(&[("pc.ram", 16 * PS), (TABLES, 2 * PS)], Some(20 * PS)),
        &[],
    );
    let at = s.1[0] + 8 + named("pc.ram").len() + 8 + named(TABLES).len() + 8;
    let e = load_ram(&s.0, MemSizeOptions::default()).expect_err("the load must fail");
    assert!(!e.to_string().contains("RAMBlock ''"), "{e}");
    ram_refused(
        s,
        at,
        |k| {
            matches!(k, RamErrorKind::MemSizeListShort { total, listed, entries: 2 }
                if *total == 20 * PS && *listed == 18 * PS)
        },
        &["announces a total of 0x14000 bytes, but its 2 RAMBlocks add up to 0x12000"],
    );
}

#[test]
fn ram_unknown_block_in_mem_size() {
    let s = ram_stream(
        &mem_size(&[("pc.ram", 16 * PS), ("vga.vram", 2 * PS)], None),
        &[],
    );
    let at = s.1[0] + 8 + 7 + 8;
    ram_refused(
        s,
        at,
        |k| matches!(k, RamErrorKind::UnknownBlock { block } if block == "vga.vram"),
        &["unknown RAMBlock \"vga.vram\""],
    );
}

#[test]
fn ram_unknown_block_in_page() {
    let pages = [word(ZERO), named("vga.vram"), vec![0]].concat();
    let s = ram_stream(&good_mem_size(), &pages);
    let at = s.1[1];
    ram_refused(
        s,
        at,
        |k| matches!(k, RamErrorKind::UnknownBlock { block } if block == "vga.vram"),
        &["vga.vram"],
    );
}

#[test]
fn ram_length_mismatch_fixed_block() {
    let s = ram_stream(
        &mem_size(&[("pc.ram", 8 * PS), (TABLES, 2 * PS)], None),
        &[],
    );
    let at = s.1[0] + 8;
    ram_refused(
        s,
        at,
        |k| matches!(k, RamErrorKind::LengthMismatch { block, local, stream } if block == "pc.ram" && *local == 16 * PS && *stream == 8 * PS),
        &["pc.ram", "not resizeable"],
    );
}

#[test]
fn ram_block_longer_than_max_length() {
    let s = ram_stream(
        &mem_size(&[("pc.ram", 16 * PS), (TABLES, 5 * PS)], None),
        &[],
    );
    let at = s.1[0] + 8 + 7 + 8;
    ram_refused(
        s,
        at,
        |k| matches!(k, RamErrorKind::ResizeBeyondMax { block, max, stream } if block == TABLES && *max == 4 * PS && *stream == 5 * PS),
        &[TABLES, "max_length"],
    );
}

#[test]
fn ram_continue_as_first_page() {
    let s = ram_stream(
        &good_mem_size(),
        &[word(PS | ZERO | CONT), vec![0]].concat(),
    );
    let at = s.1[1];
    ram_refused(
        s,
        at,
        |k| matches!(k, RamErrorKind::ContinueWithoutBlock { offset } if *offset == PS),
        &["CONTINUE"],
    );
}

#[test]
fn ram_page_offset_beyond_used_length() {
    // One page past pc.ram's end.
    let pages = [word((16 * PS) | ZERO), named("pc.ram"), vec![0]].concat();
    let s = ram_stream(&good_mem_size(), &pages);
    let at = s.1[1];
    ram_refused(
        s,
        at,
        |k| matches!(k, RamErrorKind::OffsetBeyondUsed { block, offset, used } if block == "pc.ram" && *offset == 16 * PS && *used == 16 * PS),
        &["pc.ram", "used_length"],
    );
    // The blob shrunk to one page by MEM_SIZE, then its page 1 (within the
    // local max_length, beyond the new used_length).
    let pages = [word(PS | PAGE), named(TABLES), vec![1; PS as usize]].concat();
    let s = ram_stream(
        &mem_size(&[("pc.ram", 16 * PS), (TABLES, PS)], None),
        &pages,
    );
    let at = s.1[1];
    ram_refused(
        s,
        at,
        |k| matches!(k, RamErrorKind::OffsetBeyondUsed { block, used, .. } if block == TABLES && *used == PS),
        &[TABLES],
    );
}

#[test]
fn ram_zero_fill_nonzero() {
    let pages = [word(ZERO), named("pc.ram"), vec![0x5a]].concat();
    let s = ram_stream(&good_mem_size(), &pages);
    let at = s.1[1];
    ram_refused(
        s,
        at,
        |k| matches!(k, RamErrorKind::BadFill { block, offset: 0, fill: 0x5a } if block == "pc.ram"),
        &["fill byte 0x5a"],
    );
}

/// XBZRLE records through the whole loader: a header byte other than 1, an
/// enc_len beyond the page, and data whose runs overrun the page.
#[test]
fn ram_xbzrle_checks() {
    for (payload, says) in [
        (vec![2, 0, 3, 0, 1, 9], "encoding flag 0x02"),
        (vec![1, 0x10, 0x01], "encoded length 0x1001"),
        (vec![1, 0, 4, 0x81, 0x20, 1, 9], "beyond the page size"),
    ] {
        let pages = [word(RamFlag::Xbzrle as u64), named("pc.ram"), payload].concat();
        let s = ram_stream(&good_mem_size(), &pages);
        let at = s.1[1];
        ram_refused(
            s,
            at,
            |k| matches!(k, RamErrorKind::BadXbzrle { block, offset: 0, .. } if block == "pc.ram"),
            &[says],
        );
    }
}

/// Records of features this side never negotiates: COMPRESS_PAGE (compress
/// is off), HOOK (no RDMA).
#[test]
fn ram_unsupported_records() {
    for (flag, what) in [
        (RamFlag::CompressPage, "COMPRESS_PAGE"),
        (RamFlag::Hook, "HOOK"),
    ] {
        let pages = [word(flag as u64), named("pc.ram"), vec![0; 16]].concat();
        let s = ram_stream(&good_mem_size(), &pages);
        let at = s.1[1];
        ram_refused(
            s,
            at,
            |k| matches!(k, RamErrorKind::Unsupported { .. }),
            &[what],
        );
    }
}

#[test]
fn ram_unknown_flag_bits() {
    for flags in [0x400, 0x800 | PAGE, ZERO | PAGE, MEM | CONT, 0] {
        let pages = [word(flags), named("pc.ram"), vec![0; PS as usize]].concat();
        let s = ram_stream(&good_mem_size(), &pages);
        let at = s.1[1];
        ram_refused(
            s,
            at,
            |k| matches!(k, RamErrorKind::UnknownFlags { .. }),
            &["unknown combination of migration flags"],
        );
    }
}

/// With x-ignore-shared every MEM_SIZE entry carries its GPA; another
/// address than the local block's is refused.
#[test]
fn ram_gpa_mismatch() {
    let opts = MemSizeOptions {
        postcopy_host_page_size: None,
        ignore_shared: true,
    };
    let setup = [
        word((18 * PS) | MEM),
        named("pc.ram"),
        word(16 * PS),
        word(0x10_0000),
        named(TABLES),
        word(2 * PS),
        word(0),
    ]
    .concat();
    let (bytes, at) = ram_stream(&setup, &[]);
    ram_refused_with(
        &bytes,
        opts,
        at[0] + 8,
        |k| matches!(k, RamErrorKind::GpaMismatch { block, local: 0, stream: 0x10_0000 } if block == "pc.ram"),
        &["pc.ram", "guest address"],
    );
}

/// The stream ends inside a page's payload: truncated, where the payload is.
#[test]
fn ram_truncated_page() {
    let (mut bytes, at) = ram_stream(&good_mem_size(), &[]);
    bytes.truncate(at[1]);
    bytes.extend([word(PAGE), named("pc.ram"), vec![1; 100]].concat());
    let e = load_ram(&bytes, MemSizeOptions::default()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Truncated { .. }), "{e}");
    assert!(e.offset().is_some(), "{e}");
}
