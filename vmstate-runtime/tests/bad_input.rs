//! Hostile and broken input: every error class of the runtime, with the kind, the
//! field path (`Error::path_string()`) and the byte offset (`Error::offset()`), plus
//! the malicious-stream cases of qemu-wire.md §9 that apply at the VMState level.

use std::fmt;

use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{from_bytes, to_bytes, Error, ErrorKind, VmState, VmStateTmp, WithTmp};

fn sub_header(name: &str, version: u32) -> Vec<u8> {
    let mut v = vec![0x05, name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(&version.to_be_bytes());
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Loads and expects an error; checks the path and offset, returns the error.
#[track_caller]
fn load_err<T: VmState + Default + fmt::Debug>(
    bytes: &[u8],
    version: u32,
    path: &str,
    offset: u64,
) -> Error {
    let e = from_bytes::<T>(bytes, version).expect_err("load should fail");
    assert_eq!(e.path_string(), path, "path of: {e}");
    assert_eq!(e.offset(), Some(offset), "offset of: {e}");
    // Every error renders with its path and offset.
    let text = e.to_string();
    assert!(
        text.contains(&format!("(at byte offset {offset})")),
        "{text}"
    );
    if !path.is_empty() {
        assert!(text.starts_with(&format!("{path}: ")), "{text}");
    }
    e
}

// ---------------------------------------------------------------------------------
// Truncation at every offset
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "inner_vmsd", version = 1)]
struct TInner {
    x: u16,
    flag: bool,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "elem", version = 1)]
struct TElem {
    v: u32,
}

#[derive(VmState, Default, Debug, PartialEq, Clone, Copy)]
#[repr(u16)]
enum TMode {
    #[default]
    Idle = 0,
    Busy = 0x0102,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev/tmp")]
struct TTmp {
    w: u32,
}

impl VmStateTmp<TDev> for TTmp {
    fn from_parent(p: &TDev) -> Result<Self, Error> {
        Ok(TTmp { w: p.wide as u32 })
    }
    fn into_parent(self, p: &mut TDev) -> Result<(), Error> {
        p.wide = u64::from(self.w);
        Ok(())
    }
}

const MAGIC: u32 = 0xfeed_face;

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 2, minimum_version = 1, pre_load = TDev::pre_load)]
struct TDev {
    a: u8,
    b: i32,
    inner: TInner,
    arr: [u16; 3],
    flags: [bool; 2],
    sa: [TElem; 2],
    n: u8,
    #[vmstate(varray(len = n), max = 4)]
    v: Vec<u16>,
    #[vmstate(list, max = 3)]
    l: Vec<TElem>,
    #[vmstate(timer)]
    t: Option<u64>,
    nbits: i32,
    #[vmstate(bitmap(len = nbits), max = 128)]
    bm: Vec<u64>,
    ptrs: [Option<Box<u32>>; 2],
    e: TMode,
    #[vmstate(skip)]
    wide: u64,
    #[vmstate(with_tmp)]
    tmp: WithTmp<TTmp>,
    #[vmstate(equal)]
    eq: u32,
    #[vmstate(positive_le)]
    le: i32,
    #[vmstate(unused = 2)]
    pad: (),
    #[vmstate(since = 2)]
    late: u8,
}

impl TDev {
    fn pre_load(&mut self) -> Result<(), Error> {
        self.eq = MAGIC;
        self.le = 1000;
        self.ptrs = [None, Some(Box::new(0))];
        Ok(())
    }
}

fn tdev() -> TDev {
    TDev {
        a: 1,
        b: -2,
        inner: TInner { x: 3, flag: true },
        arr: [4, 5, 6],
        flags: [true, false],
        sa: [TElem { v: 7 }, TElem { v: 8 }],
        n: 2,
        v: vec![9, 10],
        l: vec![TElem { v: 11 }],
        t: Some(12),
        nbits: 70,
        bm: vec![13, 14],
        ptrs: [None, Some(Box::new(15))],
        e: TMode::Busy,
        wide: 16,
        tmp: WithTmp::new(),
        eq: MAGIC,
        le: 17,
        pad: (),
        late: 18,
    }
}

/// Each read of the v2 encoding of `tdev()`: (start, end, path, reported offset).
/// Bulk reads (integer arrays, varray vectors of fixed-size elements, bitmaps) check
/// the whole run up front, so they report the start of the run.
const TDEV_READS: &[(usize, usize, &str)] = &[
    (0, 1, "dev.a"),
    (1, 5, "dev.b"),
    (5, 7, "dev.inner.x"),
    (7, 8, "dev.inner.flag"),
    (8, 14, "dev.arr"),
    (14, 15, "dev.flags[0]"),
    (15, 16, "dev.flags[1]"),
    (16, 20, "dev.sa[0].v"),
    (20, 24, "dev.sa[1].v"),
    (24, 25, "dev.n"),
    (25, 29, "dev.v"),
    (29, 30, "dev.l"),
    (30, 34, "dev.l[0].v"),
    (34, 35, "dev.l"),
    (35, 43, "dev.t"),
    (43, 47, "dev.nbits"),
    (47, 63, "dev.bm"),
    (63, 64, "dev.ptrs[0]"),
    (64, 68, "dev.ptrs[1]"),
    (68, 70, "dev.e"),
    (70, 74, "dev.tmp.w"),
    (74, 78, "dev.eq"),
    (78, 82, "dev.le"),
    (82, 84, "dev.pad"),
    (84, 85, "dev.late"),
];

#[test]
fn tdev_encoding_is_as_tabulated() {
    let bytes = to_bytes(&tdev()).unwrap();
    assert_eq!(bytes.len(), 85);
    assert_eq!(&bytes[63..68], &[0x30, 0, 0, 0, 15]);
    let back: TDev = from_bytes(&bytes, 2).unwrap();
    assert_eq!(back, tdev());
    // Version 1 has no `late`.
    let back: TDev = from_bytes(&bytes[..84], 1).unwrap();
    assert_eq!(back, TDev { late: 0, ..tdev() });
}

#[test]
fn truncated_at_every_offset_reports_the_field_being_read() {
    let bytes = to_bytes(&tdev()).unwrap();
    for (version, full) in [(2u32, 85usize), (1, 84)] {
        for len in 0..full {
            let e = from_bytes::<TDev>(&bytes[..len], version)
                .expect_err("a proper prefix must not load");
            let &(start, end, path) = TDEV_READS
                .iter()
                .find(|(_, end, _)| *end > len)
                .expect("a read straddles the cut");
            assert!(
                matches!(e.kind(), ErrorKind::Truncated { needed, available }
                    if *needed == end - start && *available == len - start),
                "prefix {len}: {e}"
            );
            assert_eq!(e.path_string(), path, "prefix {len}");
            assert_eq!(e.offset(), Some(start as u64), "prefix {len}");
        }
    }
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "kbd/ext", version = 1)]
struct KbdExt {
    obsrc: u32,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "kbd_mode", version = 1)]
struct KbdMode {
    mode: u8,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "kbd", version = 1)]
struct Kbd {
    status: u8,
    #[vmstate(subsection(needed = Kbd::ext_needed))]
    ext: KbdExt,
    #[vmstate(subsection(needed = Kbd::mode_needed))]
    mode: KbdMode,
}

impl Kbd {
    fn ext_needed(&self) -> bool {
        self.ext.obsrc != 0
    }
    fn mode_needed(&self) -> bool {
        self.mode.mode != 0
    }
}

#[test]
fn truncated_subsections_at_every_offset() {
    let v = Kbd {
        status: 1,
        ext: KbdExt { obsrc: 0x0203_0405 },
        mode: KbdMode { mode: 6 },
    };
    let h1 = sub_header("kbd/ext", 1);
    let h2 = sub_header("kbd_mode", 1);
    let bytes = cat(&[&[1], &h1, &[2, 3, 4, 5], &h2, &[6]]);
    assert_eq!(to_bytes(&v).unwrap(), bytes);
    let s1 = 1; // start of the first header
    let b1 = s1 + h1.len(); // first body
    let s2 = b1 + 4;
    let b2 = s2 + h2.len();
    assert_eq!(bytes.len(), b2 + 1);
    for len in 0..bytes.len() {
        let r = from_bytes::<Kbd>(&bytes[..len], 1);
        // (subsection start, name length) of the header this prefix cuts into.
        let (start, name_len, body) = if len < b1 + 4 {
            (s1, 7, b1)
        } else {
            (s2, 8, b2)
        };
        match len {
            0 => {
                let e = r.unwrap_err();
                assert!(matches!(e.kind(), ErrorKind::Truncated { .. }));
                assert_eq!(
                    (e.path_string().as_str(), e.offset()),
                    ("kbd.status", Some(0))
                );
            }
            // Between subsections the body is complete.
            l if l == s1 || l == s2 => {
                let back = r.unwrap();
                assert_eq!(back.status, 1);
                assert_eq!(back.mode, KbdMode::default());
                assert_eq!(back.ext.obsrc != 0, l == s2);
            }
            // Marker, length and part of the name: not a header (QEMU's peek fails),
            // so the body ends and the partial header is left over.
            l if l < start + 2 + name_len => {
                let e = r.unwrap_err();
                assert!(
                    matches!(e.kind(), ErrorKind::TrailingBytes(n) if *n == l - start),
                    "prefix {l}: {e}"
                );
                assert_eq!(
                    (e.path_string().as_str(), e.offset()),
                    ("kbd", Some(start as u64))
                );
            }
            // Whole name, partial version.
            l if l < body => {
                let e = r.unwrap_err();
                assert!(
                    matches!(e.kind(), ErrorKind::Truncated { needed: 4, .. }),
                    "prefix {l}: {e}"
                );
                assert_eq!(e.path_string(), "kbd", "prefix {l}");
                assert_eq!(e.offset(), Some((start + 2 + name_len) as u64));
            }
            // Inside a subsection body.
            l => {
                let e = r.unwrap_err();
                assert!(
                    matches!(e.kind(), ErrorKind::Truncated { .. }),
                    "prefix {l}: {e}"
                );
                let path = if start == s1 {
                    "kbd/ext.obsrc"
                } else {
                    "kbd_mode.mode"
                };
                assert_eq!(e.path_string(), path);
                assert_eq!(e.offset(), Some(body as u64));
            }
        }
    }
}

#[test]
fn output_full_at_every_size() {
    let v = tdev();
    let full = to_bytes(&v).unwrap();
    for size in 0..full.len() {
        let mut out = vec![0u8; size];
        let mut w = Writer::new(&mut out[..]);
        let e = v.save(&mut w).expect_err("output too small");
        let ErrorKind::OutputFull { needed, available } = e.kind() else {
            panic!("size {size}: {e}");
        };
        let at = e.offset().unwrap() as usize;
        assert_eq!(*available, size - at, "size {size}: {e}");
        assert!(at + needed > size, "size {size}: {e}");
        assert!(e.path_string().starts_with("dev."), "size {size}: {e}");
        // Whatever was written is the start of the real encoding.
        assert_eq!(&out[..at], &full[..at], "size {size}");
    }
    let mut out = vec![0u8; full.len()];
    let mut w = Writer::new(&mut out[..]);
    v.save(&mut w).unwrap();
    assert_eq!(out, full);
}

#[test]
fn output_full_names_field_and_offset() {
    let mut out = [0u8; 6];
    let mut w = Writer::new(&mut out[..]);
    let e = tdev().save(&mut w).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::OutputFull {
            needed: 2,
            available: 1
        }
    ));
    assert_eq!(e.path_string(), "dev.inner.x");
    assert_eq!(e.offset(), Some(5));
    assert!(e.to_string().contains("output full"), "{e}");
    // A base offset shows in the error.
    let mut out = [0u8; 0];
    let mut w = Writer::with_base_offset(&mut out[..], 1000);
    let e = tdev().save(&mut w).unwrap_err();
    assert_eq!(e.offset(), Some(1000));
    assert_eq!(e.path_string(), "dev.a");
}

#[test]
fn reader_base_offset_shows_in_errors() {
    let bytes = to_bytes(&tdev()).unwrap();
    let mut r = Reader::with_base_offset(&bytes[..10], 500);
    let e = TDev::default().load(&mut r, 2).unwrap_err();
    assert_eq!(e.offset(), Some(508));
    assert_eq!(e.path_string(), "dev.arr");
}

// ---------------------------------------------------------------------------------
// Counts
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct Counts {
    n8: u8,
    #[vmstate(varray(len = n8))]
    fixed8: [u16; 4],
    n16: u16,
    #[vmstate(varray(len = n16), max = 2)]
    fixed16: [u8; 4],
    n32: u32,
    #[vmstate(varray(len = n32), max = 100)]
    vec32: Vec<u32>,
    ni: i32,
    #[vmstate(varray(len = ni), max = 8)]
    veci: Vec<TElem>,
}

fn counts_bytes(n8: u8, n16: u16, n32: u32, ni: i32) -> Vec<u8> {
    let mut b = vec![n8];
    b.extend(std::iter::repeat_n(0, 2 * n8.min(4) as usize));
    b.extend_from_slice(&n16.to_be_bytes());
    b.extend(std::iter::repeat_n(0, n16.min(2) as usize));
    b.extend_from_slice(&n32.to_be_bytes());
    b.extend(std::iter::repeat_n(0, 4 * n32.min(100) as usize));
    b.extend_from_slice(&ni.to_be_bytes());
    b.extend(std::iter::repeat_n(0, 4 * ni.clamp(0, 8) as usize));
    b
}

#[test]
fn counts_at_the_bound_load() {
    let v: Counts = from_bytes(&counts_bytes(4, 2, 100, 8), 1).unwrap();
    assert_eq!((v.vec32.len(), v.veci.len()), (100, 8));
}

#[test]
fn count_above_fixed_array_length() {
    let e = load_err::<Counts>(&counts_bytes(5, 0, 0, 0), 1, "dev.fixed8", 1);
    assert!(
        matches!(e.kind(), ErrorKind::CountOutOfRange { count: 5, max: 4 }),
        "{e}"
    );
    let e = load_err::<Counts>(&counts_bytes(255, 0, 0, 0), 1, "dev.fixed8", 1);
    assert!(
        matches!(e.kind(), ErrorKind::CountOutOfRange { count: 255, max: 4 }),
        "{e}"
    );
}

#[test]
fn count_above_max_on_fixed_array() {
    // `max = 2` bounds the count below the array length 4.
    let e = load_err::<Counts>(&counts_bytes(0, 3, 0, 0), 1, "dev.fixed16", 3);
    assert!(
        matches!(e.kind(), ErrorKind::CountOutOfRange { count: 3, max: 2 }),
        "{e}"
    );
    let e = load_err::<Counts>(&counts_bytes(0, 0xffff, 0, 0), 1, "dev.fixed16", 3);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountOutOfRange {
                count: 65535,
                max: 2
            }
        ),
        "{e}"
    );
}

#[test]
fn count_above_max_on_vec() {
    let e = load_err::<Counts>(&counts_bytes(0, 0, 101, 0), 1, "dev.vec32", 7);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountOutOfRange {
                count: 101,
                max: 100
            }
        ),
        "{e}"
    );
    // CVE-2013-4151 style: count 0xffffffff must fail before anything is allocated.
    let e = load_err::<Counts>(&counts_bytes(0, 0, u32::MAX, 0), 1, "dev.vec32", 7);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountOutOfRange {
                count: 4294967295,
                max: 100
            }
        ),
        "{e}"
    );
    let e = load_err::<Counts>(&counts_bytes(0, 0, 0, 9), 1, "dev.veci", 11);
    assert!(
        matches!(e.kind(), ErrorKind::CountOutOfRange { count: 9, max: 8 }),
        "{e}"
    );
}

#[test]
fn negative_i32_counts() {
    for ni in [-1, -8, i32::MIN, -0x7f00_0000] {
        let e = load_err::<Counts>(&counts_bytes(0, 0, 0, ni), 1, "dev.veci", 11);
        assert!(
            matches!(e.kind(), ErrorKind::CountOutOfRange { count, max: 8 } if *count == i64::from(ni)),
            "{e}"
        );
    }
}

#[test]
fn count_in_range_but_data_missing() {
    // A plausible count whose data is not in the stream: truncation, not a huge read.
    let mut b = counts_bytes(0, 0, 0, 0);
    b[3..7].copy_from_slice(&50u32.to_be_bytes());
    let e = load_err::<Counts>(&b, 1, "dev.vec32", 7);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Truncated {
                needed: 200,
                available: 4
            }
        ),
        "{e}"
    );
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "buf", version = 1)]
struct VBuf {
    len: i32,
    #[vmstate(vbuffer(len = len), max = 16)]
    data: Vec<u8>,
    size: u8,
    #[vmstate(vbuffer(len = size))]
    fixed: [u8; 4],
}

#[test]
fn vbuffer_sizes_are_bounded() {
    let e = load_err::<VBuf>(&[0, 0, 0, 17], 1, "buf.data", 4);
    assert!(
        matches!(e.kind(), ErrorKind::CountOutOfRange { count: 17, max: 16 }),
        "{e}"
    );
    // CVE-2014-0182 style: a config length of 0x7fffffff or negative.
    let e = load_err::<VBuf>(&[0x7f, 0xff, 0xff, 0xff], 1, "buf.data", 4);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountOutOfRange {
                count: 0x7fff_ffff,
                max: 16
            }
        ),
        "{e}"
    );
    let e = load_err::<VBuf>(&[0xff, 0xff, 0xff, 0xf0], 1, "buf.data", 4);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountOutOfRange {
                count: -16,
                max: 16
            }
        ),
        "{e}"
    );
    let e = load_err::<VBuf>(&[0, 0, 0, 0, 5], 1, "buf.fixed", 5);
    assert!(
        matches!(e.kind(), ErrorKind::CountOutOfRange { count: 5, max: 4 }),
        "{e}"
    );
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "bm", version = 1)]
struct Bits {
    nbits: i32,
    #[vmstate(bitmap(len = nbits), max = 128)]
    map: Vec<u64>,
}

#[test]
fn bitmap_bit_counts_are_bounded() {
    let e = load_err::<Bits>(&129i32.to_be_bytes(), 1, "bm.map", 4);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountOutOfRange {
                count: 129,
                max: 128
            }
        ),
        "{e}"
    );
    let e = load_err::<Bits>(&(-1i32).to_be_bytes(), 1, "bm.map", 4);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountOutOfRange {
                count: -1,
                max: 128
            }
        ),
        "{e}"
    );
    let e = load_err::<Bits>(&i32::MAX.to_be_bytes(), 1, "bm.map", 4);
    assert!(matches!(e.kind(), ErrorKind::CountOutOfRange { .. }), "{e}");
    // 65 bits need two words.
    let e = load_err::<Bits>(&cat(&[&65i32.to_be_bytes(), &[0; 8]]), 1, "bm.map", 4);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Truncated {
                needed: 16,
                available: 8
            }
        ),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------
// Values: bool, enum, equal, positive_le, null marker, lists
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct Values {
    flag: bool,
    arr: [bool; 5],
    inner: TInner,
    structs: [TInner; 4],
}

#[test]
fn bad_bool_bytes() {
    let mut good = vec![1u8, 0, 1, 0, 1, 0];
    good.extend_from_slice(&[0, 1, 1]);
    good.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(from_bytes::<Values>(&good, 1).is_ok());
    for bad in [0x02u8, 0x30, 0x80, 0xff] {
        let mut b = good.clone();
        b[0] = bad;
        let e = load_err::<Values>(&b, 1, "dev.flag", 0);
        assert!(
            matches!(e.kind(), ErrorKind::InvalidBool(x) if *x == bad),
            "{e}"
        );
    }
    let mut b = good.clone();
    b[4] = 2;
    let e = load_err::<Values>(&b, 1, "dev.arr[3]", 4);
    assert!(matches!(e.kind(), ErrorKind::InvalidBool(2)), "{e}");
    assert!(e.to_string().contains("invalid bool byte 0x02"), "{e}");
    let mut b = good.clone();
    b[8] = 2;
    let e = load_err::<Values>(&b, 1, "dev.inner.flag", 8);
    assert!(matches!(e.kind(), ErrorKind::InvalidBool(2)), "{e}");
    // structs[3].flag is at 9 + 3 * 3 + 2.
    let mut b = good.clone();
    b[20] = 7;
    let e = load_err::<Values>(&b, 1, "dev.structs[3].flag", 20);
    assert!(matches!(e.kind(), ErrorKind::InvalidBool(7)), "{e}");
}

#[derive(VmState, Default, Debug, PartialEq, Clone, Copy)]
#[repr(u8)]
enum Mode8 {
    #[default]
    A = 0,
    B = 1,
    C = 5,
}

#[derive(VmState, Default, Debug, PartialEq, Clone, Copy)]
#[repr(i32)]
enum ModeI32 {
    Neg = -1,
    #[default]
    Zero = 0,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct Enums {
    m: Mode8,
    mi: ModeI32,
    ma: [Mode8; 3],
}

#[test]
fn bad_enum_discriminants() {
    assert!(from_bytes::<Enums>(&[5, 0xff, 0xff, 0xff, 0xff, 0, 1, 5], 1).is_ok());
    let e = load_err::<Enums>(&[2, 0, 0, 0, 0, 0, 0, 0], 1, "dev.m", 0);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::InvalidEnum {
                enum_name: "Mode8",
                value: 2
            }
        ),
        "{e}"
    );
    let e = load_err::<Enums>(&[0, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0], 1, "dev.mi", 1);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::InvalidEnum {
                enum_name: "ModeI32",
                value: -2
            }
        ),
        "{e}"
    );
    let e = load_err::<Enums>(&[0, 0, 0, 0, 0, 1, 0, 0xff], 1, "dev.ma[2]", 7);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::InvalidEnum {
                enum_name: "Mode8",
                value: 255
            }
        ),
        "{e}"
    );
}

#[derive(VmState, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct Checks {
    #[vmstate(equal)]
    ports: i32,
    #[vmstate(equal)]
    id: u64,
    #[vmstate(positive_le)]
    len: i32,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            ports: 32,
            id: 0xdead_beef_0000_0001,
            len: 100,
        }
    }
}

fn checks_bytes(ports: i32, id: u64, len: i32) -> Vec<u8> {
    cat(&[&ports.to_be_bytes(), &id.to_be_bytes(), &len.to_be_bytes()])
}

#[test]
fn equal_mismatch() {
    assert_eq!(
        from_bytes::<Checks>(&checks_bytes(32, 0xdead_beef_0000_0001, 7), 1)
            .unwrap()
            .len,
        7
    );
    // CVE-2013-4526 (AHCI): ports is INT32_EQUAL; 33 ports must not load.
    let e = load_err::<Checks>(
        &checks_bytes(33, 0xdead_beef_0000_0001, 7),
        1,
        "dev.ports",
        0,
    );
    assert!(
        matches!(
            e.kind(),
            ErrorKind::NotEqual {
                expected: 32,
                found: 33
            }
        ),
        "{e}"
    );
    let e = load_err::<Checks>(
        &checks_bytes(-1, 0xdead_beef_0000_0001, 7),
        1,
        "dev.ports",
        0,
    );
    assert!(
        matches!(
            e.kind(),
            ErrorKind::NotEqual {
                expected: 32,
                found: -1
            }
        ),
        "{e}"
    );
    let e = load_err::<Checks>(&checks_bytes(32, u64::MAX, 7), 1, "dev.id", 4);
    assert!(
        matches!(e.kind(), ErrorKind::NotEqual { expected, found }
            if *expected == 0xdead_beef_0000_0001 && *found == i128::from(u64::MAX)),
        "{e}"
    );
}

#[test]
fn positive_le_out_of_range() {
    // CVE-2013-4531 (ARM cpreg_vmstate_array_len): INT32_POSITIVE_LE.
    for found in [-1, i32::MIN, 101, i32::MAX] {
        let e = load_err::<Checks>(
            &checks_bytes(32, 0xdead_beef_0000_0001, found),
            1,
            "dev.len",
            12,
        );
        assert!(
            matches!(e.kind(), ErrorKind::NotPositiveLe { found: f, limit: 100 } if *f == found),
            "{e}"
        );
    }
    for ok in [0, 1, 100] {
        let v = from_bytes::<Checks>(&checks_bytes(32, 0xdead_beef_0000_0001, ok), 1).unwrap();
        assert_eq!(v.len, ok);
    }
}

#[derive(VmState, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct Ptrs {
    a: u8,
    ptrs: [Option<Box<u16>>; 3],
}

impl Default for Ptrs {
    fn default() -> Self {
        Ptrs {
            a: 0,
            ptrs: [Some(Box::new(0)), None, None],
        }
    }
}

#[test]
fn bad_null_marker() {
    assert!(from_bytes::<Ptrs>(&[0, 0, 1, 0x30, 0x30], 1).is_ok());
    let e = load_err::<Ptrs>(&[0, 0, 1, 0x31, 0x30], 1, "dev.ptrs[1]", 3);
    assert!(matches!(e.kind(), ErrorKind::BadNullMarker(0x31)), "{e}");
    let e = load_err::<Ptrs>(&[0, 0, 1, 0x30, 0x00], 1, "dev.ptrs[2]", 4);
    assert!(matches!(e.kind(), ErrorKind::BadNullMarker(0x00)), "{e}");
    let e = load_err::<Ptrs>(&[0, 0, 1, 0x30], 1, "dev.ptrs[2]", 4);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Truncated {
                needed: 1,
                available: 0
            }
        ),
        "{e}"
    );
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct Lists {
    a: u8,
    #[vmstate(list, max = 2)]
    l: Vec<TElem>,
    b: u8,
}

#[test]
fn bad_list_marker() {
    assert!(from_bytes::<Lists>(&[9, 1, 0, 0, 0, 1, 0, 9], 1).is_ok());
    let e = load_err::<Lists>(&[9, 2, 0, 0, 0, 1, 0, 9], 1, "dev.l", 1);
    assert!(matches!(e.kind(), ErrorKind::BadListMarker(2)), "{e}");
    let e = load_err::<Lists>(&[9, 1, 0, 0, 0, 1, 0xff, 9], 1, "dev.l", 6);
    assert!(matches!(e.kind(), ErrorKind::BadListMarker(0xff)), "{e}");
}

#[test]
fn list_too_long() {
    let e = load_err::<Lists>(
        &[9, 1, 0, 0, 0, 1, 1, 0, 0, 0, 2, 1, 0, 0, 0, 3, 0, 9],
        1,
        "dev.l",
        11,
    );
    assert!(matches!(e.kind(), ErrorKind::ListTooLong { max: 2 }), "{e}");
}

#[test]
fn list_without_terminator() {
    // QTAILQ with no terminating 0: runs to the end of the stream.
    let e = load_err::<Lists>(&[9, 1, 0, 0, 0, 1], 1, "dev.l", 6);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Truncated {
                needed: 1,
                available: 0
            }
        ),
        "{e}"
    );
    let e = load_err::<Lists>(&[9, 1, 0, 0], 1, "dev.l[0].v", 2);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Truncated {
                needed: 4,
                available: 2
            }
        ),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------
// Versions and subsections
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pckbd/extended_state", version = 2, minimum_version = 2)]
struct Extended {
    obcount: u8,
    obsrc: u32,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pckbd_outport", version = 1)]
struct Outport {
    outport: u8,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pckbd", version = 3, minimum_version = 2)]
struct Pckbd {
    status: u8,
    #[vmstate(subsection())]
    extended: Extended,
    #[vmstate(subsection(needed = Pckbd::never))]
    outport: Outport,
}

impl Pckbd {
    fn never(&self) -> bool {
        false
    }
}

#[test]
fn version_too_new_and_too_old() {
    let e = load_err::<Pckbd>(&[0], 4, "pckbd", 0);
    assert!(
        matches!(e.kind(), ErrorKind::VersionTooNew { version: 4, max: 3 }),
        "{e}"
    );
    let e = load_err::<Pckbd>(&[0], u32::MAX, "pckbd", 0);
    assert!(matches!(e.kind(), ErrorKind::VersionTooNew { .. }), "{e}");
    let e = load_err::<Pckbd>(&[0], 1, "pckbd", 0);
    assert!(
        matches!(e.kind(), ErrorKind::VersionTooOld { version: 1, min: 2 }),
        "{e}"
    );
    let e = load_err::<Pckbd>(&[0], 0, "pckbd", 0);
    assert!(
        matches!(e.kind(), ErrorKind::VersionTooOld { version: 0, min: 2 }),
        "{e}"
    );
    // With a base offset, the version error points where the body starts.
    let mut r = Reader::with_base_offset(&[0u8][..], 77);
    let e = Pckbd::default().load(&mut r, 9).unwrap_err();
    assert_eq!(e.offset(), Some(77));
}

#[test]
fn subsection_version_checks() {
    let body = [1, 0, 0, 0, 2];
    // Too new (3 > 2) and too old (1 < 2); 0x0102 truncates to 2 and loads.
    let ok = cat(&[&[0], &sub_header("pckbd/extended_state", 0x0102), &body]);
    assert_eq!(from_bytes::<Pckbd>(&ok, 3).unwrap().extended.obsrc, 2);
    let hdr = sub_header("pckbd/extended_state", 3);
    let b = cat(&[&[0], &hdr, &body]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd/extended_state", 1 + hdr.len() as u64);
    assert!(
        matches!(e.kind(), ErrorKind::VersionTooNew { version: 3, max: 2 }),
        "{e}"
    );
    let b = cat(&[&[0], &sub_header("pckbd/extended_state", 0x0101), &body]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd/extended_state", 1 + hdr.len() as u64);
    assert!(
        matches!(e.kind(), ErrorKind::VersionTooOld { version: 1, min: 2 }),
        "{e}"
    );
}

#[test]
fn field_in_subsection_path() {
    let hdr = sub_header("pckbd/extended_state", 2);
    let b = cat(&[&[0], &hdr, &[1, 0, 0]]);
    let e = load_err::<Pckbd>(
        &b,
        3,
        "pckbd/extended_state.obsrc",
        1 + hdr.len() as u64 + 1,
    );
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Truncated {
                needed: 4,
                available: 2
            }
        ),
        "{e}"
    );
    // A legacy name that only shares the prefix.
    let hdr = sub_header("pckbd_outport", 1);
    let b = cat(&[&[0], &hdr]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd_outport.outport", 1 + hdr.len() as u64);
    assert!(matches!(e.kind(), ErrorKind::Truncated { .. }), "{e}");
}

#[test]
fn unknown_subsection_with_our_prefix() {
    let b = cat(&[&[0], &sub_header("pckbd/bogus", 1), &[1]]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd", 1);
    assert!(
        matches!(e.kind(), ErrorKind::UnknownSubsection { name } if name == "pckbd/bogus"),
        "{e}"
    );
    // After a known one.
    let known = cat(&[&sub_header("pckbd/extended_state", 2), &[1, 0, 0, 0, 2]]);
    let b = cat(&[&[0], &known, &sub_header("pckbdX", 1)]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd", 1 + known.len() as u64);
    assert!(
        matches!(e.kind(), ErrorKind::UnknownSubsection { name } if name == "pckbdX"),
        "{e}"
    );
    // Non-UTF-8 names are reported lossily.
    let mut hdr = vec![0x05, 7];
    hdr.extend_from_slice(b"pckbd\xff\xfe");
    hdr.extend_from_slice(&[0, 0, 0, 1]);
    let e = load_err::<Pckbd>(&cat(&[&[0], &hdr]), 3, "pckbd", 1);
    assert!(
        matches!(e.kind(), ErrorKind::UnknownSubsection { name } if name.starts_with("pckbd")),
        "{e}"
    );
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct HasNestedSub {
    a: u8,
    kbd: Kbd,
    b: u8,
}

#[test]
fn unknown_and_truncated_subsection_of_a_nested_struct() {
    let b = cat(&[&[0, 1], &sub_header("kbd/zzz", 1), &[0]]);
    let e = load_err::<HasNestedSub>(&b, 1, "dev.kbd", 2);
    assert!(
        matches!(e.kind(), ErrorKind::UnknownSubsection { name } if name == "kbd/zzz"),
        "{e}"
    );
    // Inside a nested struct the subsection name is shown in full after the field.
    let hdr = sub_header("kbd/ext", 1);
    let b = cat(&[&[0, 1], &hdr, &[0, 0]]);
    let e = load_err::<HasNestedSub>(&b, 1, "dev.kbd/kbd/ext.obsrc", 2 + hdr.len() as u64);
    assert!(matches!(e.kind(), ErrorKind::Truncated { .. }), "{e}");
    // A foreign subsection after the nested fields ends the nested body; the parent
    // then reads the 0x05 as its own next field, and the rest is trailing.
    let foreign = sub_header("zzz/kbd", 1);
    let b = cat(&[&[0, 1], &foreign]);
    let e = load_err::<HasNestedSub>(&b, 1, "dev", 3);
    assert!(
        matches!(e.kind(), ErrorKind::TrailingBytes(n) if *n == foreign.len() - 1),
        "{e}"
    );
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct NestedThenRaw {
    kbd: Kbd,
    raw: [u8; 4],
}

#[test]
fn truncated_nested_subsection_header_is_read_as_the_next_fields() {
    // As in QEMU: when the nested struct's subsection header is cut inside its name,
    // the peek fails, the nested body ends there, and the header's bytes are taken as
    // the parent's next fields. The format cannot tell; the stream loads as a
    // different value. (A cut after the name is a clean truncation error instead.)
    let hdr = sub_header("kbd/ext", 1);
    let b = cat(&[&[1], &hdr[..4]]);
    let v: NestedThenRaw = from_bytes(&b, 1).unwrap();
    assert_eq!(v.kbd.ext, KbdExt::default());
    assert_eq!(v.raw, [0x05, 7, b'k', b'b']);
    let b = cat(&[&[1], &hdr[..10]]);
    let e = load_err::<NestedThenRaw>(&b, 1, "dev.kbd", 10);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Truncated {
                needed: 4,
                available: 1
            }
        ),
        "{e}"
    );
}

#[test]
fn trailing_bytes() {
    let e = load_err::<Pckbd>(&[0, 0], 3, "pckbd", 1);
    assert!(matches!(e.kind(), ErrorKind::TrailingBytes(1)), "{e}");
    let e = load_err::<Pckbd>(&[0, 0x7e, 0, 0, 0, 1], 3, "pckbd", 1);
    assert!(matches!(e.kind(), ErrorKind::TrailingBytes(5)), "{e}");
    assert!(e.to_string().contains("5 trailing byte(s)"), "{e}");
    // A subsection that is ours but not needed on save still loads if present...
    let b = cat(&[&[0], &sub_header("pckbd_outport", 1), &[7]]);
    assert_eq!(from_bytes::<Pckbd>(&b, 3).unwrap().outport.outport, 7);
    // ...but extra bytes after it are trailing.
    let b = cat(&[&[0], &sub_header("pckbd_outport", 1), &[7, 8]]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd", b.len() as u64 - 1);
    assert!(matches!(e.kind(), ErrorKind::TrailingBytes(1)), "{e}");
}

// ---------------------------------------------------------------------------------
// validate (and the CVE cases it guards)
// ---------------------------------------------------------------------------------

/// CVE-2013-4527 (HPET): `num_timers` (u8) is the VARRAY count over a 32-entry array;
/// QEMU guards it with VMSTATE_VALIDATE("num_timers in range").
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "hpet", version = 2)]
struct Hpet {
    config: u64,
    #[vmstate(validate = Hpet::num_timers_in_range)]
    num_timers: u8,
    #[vmstate(varray(len = num_timers))]
    timers: [HpetTimer; 32],
}

#[derive(VmState, Default, Debug, PartialEq, Clone, Copy)]
#[vmstate(name = "hpet_timer", version = 1)]
struct HpetTimer {
    cmp: u64,
}

impl Hpet {
    fn num_timers_in_range(&self, _version_id: u32) -> bool {
        (3..=32).contains(&self.num_timers)
    }
}

fn hpet_bytes(num_timers: u8, present: usize) -> Vec<u8> {
    let mut b = vec![0u8; 8];
    b.push(num_timers);
    b.extend(std::iter::repeat_n(0, 8 * present));
    b
}

#[test]
fn cve_2013_4527_hpet_num_timers() {
    assert!(from_bytes::<Hpet>(&hpet_bytes(3, 3), 2).is_ok());
    assert!(from_bytes::<Hpet>(&hpet_bytes(32, 32), 2).is_ok());
    for bad in [0u8, 2, 33, 255] {
        let e = load_err::<Hpet>(&hpet_bytes(bad, 32), 2, "hpet.num_timers", 9);
        assert!(
            matches!(
                e.kind(),
                ErrorKind::ValidationFailed {
                    check: "Hpet::num_timers_in_range"
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("validation 'Hpet::num_timers_in_range' failed"),
            "{e}"
        );
    }
}

/// The same array without the VALIDATE: the fixed array's length still bounds it.
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "hpet", version = 2)]
struct HpetNoValidate {
    config: u64,
    num_timers: u8,
    #[vmstate(varray(len = num_timers))]
    timers: [HpetTimer; 32],
}

#[test]
fn varray_over_fixed_array_is_bounded_without_validate() {
    let e = load_err::<HpetNoValidate>(&hpet_bytes(255, 40), 2, "hpet.timers", 9);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountOutOfRange {
                count: 255,
                max: 32
            }
        ),
        "{e}"
    );
}

/// Validate with a unit field placed after several fields, checking a relation
/// (CVE-2013-4529, PCIe AER: "log_num <= log_max").
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "aer_log", version = 1)]
struct AerLog {
    log_num: u16,
    log_max: u16,
    #[vmstate(validate = AerLog::log_num_fits)]
    check: (),
    #[vmstate(varray(len = log_num), max = 128)]
    log: Vec<u32>,
}

impl AerLog {
    fn log_num_fits(&self, _version_id: u32) -> bool {
        self.log_num <= self.log_max
    }
}

#[test]
fn cve_2013_4529_aer_log_num() {
    let ok = cat(&[&[0, 1, 0, 8], &[0, 0, 0, 1]]);
    assert_eq!(from_bytes::<AerLog>(&ok, 1).unwrap().log, [1]);
    let e = load_err::<AerLog>(&[0, 9, 0, 8], 1, "aer_log.check", 4);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::ValidationFailed {
                check: "AerLog::log_num_fits"
            }
        ),
        "{e}"
    );
}

/// CVE-2013-4533 (PXA2xx SSP: rx_start < 16) and CVE-2013-4540 (Zaurus SCOOP:
/// prev_level is 16 bit) — both VMSTATE_VALIDATE in QEMU.
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pxa2xx-ssp", version = 1)]
struct Pxa2xxSsp {
    rx_level: u32,
    #[vmstate(validate = Pxa2xxSsp::fifo_is_16_bytes)]
    rx_start: u32,
    rx_fifo: [u8; 16],
    #[vmstate(validate = Pxa2xxSsp::irq_levels_are_16_bit)]
    prev_level: u32,
}

impl Pxa2xxSsp {
    fn fifo_is_16_bytes(&self, _: u32) -> bool {
        self.rx_start < 16 && self.rx_level <= 16
    }
    fn irq_levels_are_16_bit(&self, _: u32) -> bool {
        self.prev_level < 0x10000
    }
}

#[test]
fn cve_2013_4533_and_4540_validate() {
    let good = cat(&[&[0, 0, 0, 4], &[0, 0, 0, 15], &[0; 16], &[0, 0, 0xff, 0xff]]);
    assert!(from_bytes::<Pxa2xxSsp>(&good, 1).is_ok());
    let mut b = good.clone();
    b[7] = 16;
    let e = load_err::<Pxa2xxSsp>(&b, 1, "pxa2xx-ssp.rx_start", 8);
    assert!(
        matches!(e.kind(), ErrorKind::ValidationFailed { .. }),
        "{e}"
    );
    let mut b = good.clone();
    b[24..28].copy_from_slice(&0x10000u32.to_be_bytes());
    let e = load_err::<Pxa2xxSsp>(&b, 1, "pxa2xx-ssp.prev_level", 28);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::ValidationFailed {
                check: "Pxa2xxSsp::irq_levels_are_16_bit"
            }
        ),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------
// More CVE-style cases from qemu-wire.md §9
// ---------------------------------------------------------------------------------

/// CVE-2013-4148 / CVE-2013-4149 (virtio-net MAC table): `in_use` counts 6-byte
/// entries of a 64-entry table. Here the count is bounded (`max = 64`); a signed
/// count (the original bug) must not turn a huge value into an accepted one.
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "virtio-net", version = 11)]
struct MacTable {
    in_use: u32,
    #[vmstate(vbuffer(len = in_use), max = 64)]
    macs: Vec<u8>,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "virtio-net", version = 11)]
struct MacTableSigned {
    in_use: i32,
    #[vmstate(varray(len = in_use), max = 64)]
    macs: Vec<[u8; 6]>,
}

#[test]
fn cve_2013_4148_4149_mac_table_in_use() {
    for in_use in [65u32, 1000, 0x8100_0000, 0xffff_ffff] {
        let mut b = in_use.to_be_bytes().to_vec();
        b.extend(std::iter::repeat_n(0, 6 * 65)); // more than enough "payload"
        let e = load_err::<MacTable>(&b, 11, "virtio-net.macs", 4);
        assert!(
            matches!(e.kind(), ErrorKind::CountOutOfRange { count, max: 64 } if *count == i64::from(in_use)),
            "{e}"
        );
        let e = load_err::<MacTableSigned>(&b, 11, "virtio-net.macs", 4);
        assert!(
            matches!(e.kind(), ErrorKind::CountOutOfRange { count, max: 64 } if *count == i64::from(in_use as i32)),
            "{e}"
        );
    }
    // 64 entries of 6 bytes load.
    let mut b = 64i32.to_be_bytes().to_vec();
    b.extend(std::iter::repeat_n(0xab, 6 * 64));
    assert_eq!(from_bytes::<MacTableSigned>(&b, 11).unwrap().macs.len(), 64);
}

/// CVE-2013-4150 / CVE-2013-4151 / CVE-2013-6399 (virtio): queue counts and
/// indices from the stream, checked in post_load (QEMU: -EINVAL).
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "virtio", version = 1, post_load = Virtio::post_load)]
struct Virtio {
    #[vmstate(equal)]
    max_queue_pairs: u16,
    curr_queue_pairs: u16,
    queue_sel: u16,
    num: u32,
    #[vmstate(varray(len = num), max = 1024)]
    vring_num: Vec<u16>,
}

#[derive(Debug)]
struct VirtioError(&'static str);

impl fmt::Display for VirtioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "virtio: {}", self.0)
    }
}

impl std::error::Error for VirtioError {}

impl Virtio {
    fn post_load(&mut self, _version_id: u32) -> Result<(), VirtioError> {
        if self.curr_queue_pairs > self.max_queue_pairs {
            return Err(VirtioError("curr_queue_pairs above max_queue_pairs"));
        }
        if self.queue_sel >= 1024 {
            return Err(VirtioError("queue_sel out of range"));
        }
        Ok(())
    }
}

fn virtio_bytes(max: u16, curr: u16, sel: u16, num: u32) -> Vec<u8> {
    let mut b = cat(&[
        &max.to_be_bytes(),
        &curr.to_be_bytes(),
        &sel.to_be_bytes(),
        &num.to_be_bytes(),
    ]);
    b.extend(std::iter::repeat_n(0, 2 * num.min(1025) as usize));
    b
}

#[test]
fn cve_2013_4150_4151_6399_virtio_counts() {
    assert!(from_bytes::<Virtio>(&virtio_bytes(0, 0, 0, 1024), 1).is_ok());
    // max_queue_pairs is "uint16 equal" against the destination (0 here).
    let e = load_err::<Virtio>(&virtio_bytes(4, 0, 0, 0), 1, "virtio.max_queue_pairs", 0);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::NotEqual {
                expected: 0,
                found: 4
            }
        ),
        "{e}"
    );
    // curr_queue_pairs = max + 1.
    let b = virtio_bytes(0, 1, 0, 0);
    let e = load_err::<Virtio>(&b, 1, "virtio", b.len() as u64);
    let ErrorKind::Hook { hook, source } = e.kind() else {
        panic!("{e}")
    };
    assert_eq!(*hook, "post_load");
    assert_eq!(
        source.downcast_ref::<VirtioError>().unwrap().0,
        "curr_queue_pairs above max_queue_pairs"
    );
    // queue_sel = 0x400 and 0xffff.
    for sel in [0x400, 0xffff] {
        let b = virtio_bytes(0, 0, sel, 0);
        let e = load_err::<Virtio>(&b, 1, "virtio", b.len() as u64);
        assert!(e.to_string().contains("queue_sel out of range"), "{e}");
    }
    // num = 1025 and 0xffffffff.
    for num in [1025u32, u32::MAX] {
        let e = load_err::<Virtio>(&virtio_bytes(0, 0, 0, num), 1, "virtio.vring_num", 10);
        assert!(
            matches!(e.kind(), ErrorKind::CountOutOfRange { max: 1024, .. }),
            "{e}"
        );
    }
}

/// CVE-2013-4534 (OpenPIC): nb_cpus is UINT32_EQUAL; max_irq, a plain count in 7.2,
/// must be bounded by a Rust port.
#[derive(VmState, Debug, PartialEq)]
#[vmstate(name = "openpic", version = 3)]
struct OpenPic {
    #[vmstate(equal)]
    nb_cpus: u32,
    max_irq: u32,
    #[vmstate(varray(len = max_irq), max = 256)]
    src: Vec<u32>,
}

impl Default for OpenPic {
    fn default() -> Self {
        OpenPic {
            nb_cpus: 2,
            max_irq: 0,
            src: Vec::new(),
        }
    }
}

#[test]
fn cve_2013_4534_openpic() {
    let e = load_err::<OpenPic>(&[0, 0, 0, 3, 0, 0, 0, 0], 3, "openpic.nb_cpus", 0);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::NotEqual {
                expected: 2,
                found: 3
            }
        ),
        "{e}"
    );
    let e = load_err::<OpenPic>(&[0, 0, 0, 2, 0, 0, 1, 1], 3, "openpic.src", 8);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountOutOfRange {
                count: 257,
                max: 256
            }
        ),
        "{e}"
    );
}

/// CVE-2013-4530 (PL022): FIFO heads index 8-entry FIFOs; checked in post_load.
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pl022_ssp", version = 1, post_load = Pl022::post_load)]
struct Pl022 {
    tx_fifo_head: i32,
    rx_fifo_head: i32,
    tx_fifo: [u16; 8],
}

impl Pl022 {
    fn post_load(&mut self, _: u32) -> Result<(), &'static str> {
        if !(0..8).contains(&self.tx_fifo_head) || !(0..8).contains(&self.rx_fifo_head) {
            return Err("fifo head out of range");
        }
        Ok(())
    }
}

#[test]
fn cve_2013_4530_pl022_heads() {
    for (tx, rx) in [(8, 0), (-1, 0), (0, 8), (0, i32::MIN)] {
        let b = cat(&[&i32::to_be_bytes(tx), &i32::to_be_bytes(rx), &[0; 16]]);
        let e = load_err::<Pl022>(&b, 1, "pl022_ssp", 24);
        assert!(
            matches!(
                e.kind(),
                ErrorKind::Hook {
                    hook: "post_load",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("fifo head out of range"), "{e}");
    }
}

/// CVE-2017-16845 (PS/2 queue): rptr/count are sanitised in post_load, so hostile
/// values load but can never index outside the ring.
#[derive(VmState, Debug, PartialEq)]
#[vmstate(name = "PS2 Common State", version = 3, minimum_version = 2, post_load = Ps2Queue::post_load)]
struct Ps2Queue {
    write_cmd: i32,
    rptr: i32,
    wptr: i32,
    count: i32,
    data: [u8; 256],
}

impl Default for Ps2Queue {
    fn default() -> Self {
        Ps2Queue {
            write_cmd: 0,
            rptr: 0,
            wptr: 0,
            count: 0,
            data: [0; 256],
        }
    }
}

impl Ps2Queue {
    fn post_load(&mut self, _: u32) -> Result<(), Error> {
        self.count = self.count.clamp(0, 16 + 8);
        self.rptr &= 0xff;
        self.wptr = (self.rptr + self.count) & 0xff;
        Ok(())
    }
}

#[test]
fn cve_2017_16845_ps2_queue_is_sanitised() {
    for (rptr, count) in [(0x7fff_ffff, -1), (-1, 1000), (i32::MIN, i32::MAX)] {
        let b = cat(&[
            &[0; 4],
            &i32::to_be_bytes(rptr),
            &[0; 4],
            &i32::to_be_bytes(count),
            &[0; 256],
        ]);
        let q: Ps2Queue = from_bytes(&b, 3).unwrap();
        assert!((0..256).contains(&q.rptr) && (0..256).contains(&q.wptr));
        assert!((0..=24).contains(&q.count));
        let _ = q.data[q.rptr as usize];
    }
}

// ---------------------------------------------------------------------------------
// Save-side errors
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct SaveCounts {
    a: u8,
    n: u8,
    #[vmstate(varray(len = n), max = 8)]
    v: Vec<u16>,
    ni: i32,
    #[vmstate(varray(len = ni), max = 8)]
    w: Vec<u8>,
    nf: u16,
    #[vmstate(varray(len = nf))]
    f: [u32; 3],
    nbits: u32,
    #[vmstate(bitmap(len = nbits), max = 256)]
    bm: Vec<u64>,
}

#[test]
fn save_count_mismatch() {
    let good = SaveCounts {
        a: 1,
        n: 2,
        v: vec![1, 2],
        ni: 1,
        w: vec![3],
        nf: 3,
        f: [4, 5, 6],
        nbits: 65,
        bm: vec![7, 8],
    };
    let bytes = to_bytes(&good).unwrap();
    assert_eq!(from_bytes::<SaveCounts>(&bytes, 1).unwrap(), good);

    let e = to_bytes(&SaveCounts {
        v: vec![1, 2, 3],
        ..good_clone(&good)
    })
    .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountMismatch {
                count: 2,
                actual: 3
            }
        ),
        "{e}"
    );
    assert_eq!((e.path_string().as_str(), e.offset()), ("dev.v", Some(2)));

    let e = to_bytes(&SaveCounts {
        n: 3,
        ..good_clone(&good)
    })
    .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountMismatch {
                count: 3,
                actual: 2
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("count field says 3 but the data holds 2"),
        "{e}"
    );

    // A negative count is refused as out of range (what the loader would say).
    let e = to_bytes(&SaveCounts {
        ni: -1,
        ..good_clone(&good)
    })
    .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::CountOutOfRange { count: -1, max: 8 }),
        "{e}"
    );
    assert_eq!((e.path_string().as_str(), e.offset()), ("dev.w", Some(10)));

    // A fixed array cannot hold more than its length.
    let e = to_bytes(&SaveCounts {
        nf: 4,
        ..good_clone(&good)
    })
    .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::CountOutOfRange { count: 4, max: 3 }),
        "{e}"
    );
    assert_eq!((e.path_string().as_str(), e.offset()), ("dev.f", Some(13)));

    // A bitmap needs ceil(bits / 64) words.
    let e = to_bytes(&SaveCounts {
        nbits: 129,
        ..good_clone(&good)
    })
    .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountMismatch {
                count: 129,
                actual: 128
            }
        ),
        "{e}"
    );
    assert_eq!((e.path_string().as_str(), e.offset()), ("dev.bm", Some(29)));
}

fn good_clone(g: &SaveCounts) -> SaveCounts {
    SaveCounts {
        a: g.a,
        n: g.n,
        v: g.v.clone(),
        ni: g.ni,
        w: g.w.clone(),
        nf: g.nf,
        f: g.f,
        nbits: g.nbits,
        bm: g.bm.clone(),
    }
}

// ---------------------------------------------------------------------------------
// Hook errors
// ---------------------------------------------------------------------------------

#[derive(Debug)]
struct DeviceError {
    code: u32,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device error {}", self.code)
    }
}

impl std::error::Error for DeviceError {}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1, pre_load = StrHook::pre_load, pre_save = StrHook::pre_save)]
struct StrHook {
    a: u8,
}

impl StrHook {
    fn pre_load(&mut self) -> Result<(), &'static str> {
        Err("pre_load says no")
    }
    fn pre_save(&self) -> Result<(), String> {
        Err(format!("pre_save says no to {}", self.a))
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1, post_load = CustomHook::post_load, post_save = CustomHook::post_save)]
struct CustomHook {
    a: u8,
    b: u16,
}

impl CustomHook {
    fn post_load(&mut self, version_id: u32) -> Result<(), DeviceError> {
        Err(DeviceError {
            code: version_id * 100 + u32::from(self.a),
        })
    }
    fn post_save(&self) -> Result<(), DeviceError> {
        Err(DeviceError { code: 7 })
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1, post_load = OursHook::post_load)]
struct OursHook {
    a: u8,
}

impl OursHook {
    fn post_load(&mut self, _: u32) -> Result<(), Error> {
        match self.a {
            0 => Err(Error::invalid("a must not be zero")),
            1 => Err(Error::at(ErrorKind::InvalidBool(9), 0)),
            _ => Err(Error::from(ErrorKind::NotPositiveLe {
                found: self.a as i32,
                limit: 1,
            })),
        }
    }
}

#[test]
fn hook_error_from_str_and_string() {
    let e = load_err::<StrHook>(&[5], 1, "dev", 0);
    let ErrorKind::Hook { hook, source } = e.kind() else {
        panic!("{e}")
    };
    assert_eq!(*hook, "pre_load");
    assert_eq!(source.to_string(), "pre_load says no");
    assert_eq!(
        e.to_string(),
        "dev: pre_load hook failed: pre_load says no (at byte offset 0)"
    );

    let e = to_bytes(&StrHook { a: 4 }).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Hook {
                hook: "pre_save",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.path_string(), "dev");
    assert_eq!(e.offset(), Some(0));
    assert!(e.to_string().contains("pre_save says no to 4"), "{e}");
}

#[test]
fn hook_error_custom_type_is_the_source() {
    let e = load_err::<CustomHook>(&[3, 0, 0], 1, "dev", 3);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Hook {
                hook: "post_load",
                ..
            }
        ),
        "{e}"
    );
    let source = std::error::Error::source(&e).expect("hook error has a source");
    assert_eq!(source.downcast_ref::<DeviceError>().unwrap().code, 103);
    assert_eq!(source.to_string(), "device error 103");

    // post_save errors are reported (after a successful body).
    let e = to_bytes(&CustomHook { a: 1, b: 2 }).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Hook {
                hook: "post_save",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.path_string(), "dev");
    assert_eq!(e.offset(), Some(3));
    // A body error wins over the post_save error.
    let mut out = [0u8; 2];
    let mut w = Writer::new(&mut out[..]);
    let e = CustomHook { a: 1, b: 2 }.save(&mut w).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::OutputFull { .. }), "{e}");
    assert_eq!((e.path_string().as_str(), e.offset()), ("dev.b", Some(1)));
}

#[test]
fn hook_error_of_our_own_type_keeps_its_kind() {
    let e = load_err::<OursHook>(&[0], 1, "dev.post_load", 1);
    assert!(
        matches!(e.kind(), ErrorKind::Invalid(m) if m == "a must not be zero"),
        "{e}"
    );
    // An offset set by the hook is kept.
    let e = load_err::<OursHook>(&[1], 1, "dev.post_load", 0);
    assert!(matches!(e.kind(), ErrorKind::InvalidBool(9)), "{e}");
    let e = load_err::<OursHook>(&[2], 1, "dev.post_load", 1);
    assert!(
        matches!(e.kind(), ErrorKind::NotPositiveLe { found: 2, limit: 1 }),
        "{e}"
    );
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pckbd/extended_state", version = 1, post_load = FailingSub::post_load)]
struct FailingSub {
    x: u8,
}

impl FailingSub {
    fn post_load(&mut self, _: u32) -> Result<(), String> {
        Err(format!("bad x {}", self.x))
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pckbd", version = 1)]
struct WithFailingSub {
    a: u8,
    #[vmstate(subsection())]
    sub: FailingSub,
}

#[test]
fn hook_error_in_a_subsection() {
    let hdr = sub_header("pckbd/extended_state", 1);
    let b = cat(&[&[0], &hdr, &[9]]);
    let e = load_err::<WithFailingSub>(&b, 1, "pckbd/extended_state", b.len() as u64);
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Hook {
                hook: "post_load",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("bad x 9"), "{e}");
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev/tmp")]
struct FailingTmp {
    t: u8,
}

impl VmStateTmp<TmpHost> for FailingTmp {
    fn from_parent(p: &TmpHost) -> Result<Self, Error> {
        if p.a == 0xff {
            return Err(Error::invalid("cannot build the view"));
        }
        Ok(FailingTmp { t: p.a })
    }
    fn into_parent(self, _: &mut TmpHost) -> Result<(), Error> {
        if self.t == 0 {
            return Err(Error::invalid("t must not be zero"));
        }
        Ok(())
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct TmpHost {
    a: u8,
    #[vmstate(with_tmp)]
    tmp: WithTmp<FailingTmp>,
}

#[test]
fn with_tmp_conversion_errors() {
    let e = load_err::<TmpHost>(&[1, 0], 1, "dev.tmp.into_parent", 2);
    assert!(
        matches!(e.kind(), ErrorKind::Invalid(m) if m == "t must not be zero"),
        "{e}"
    );
    let e = load_err::<TmpHost>(&[1], 1, "dev.tmp.t", 1);
    assert!(matches!(e.kind(), ErrorKind::Truncated { .. }), "{e}");
    let e = load_err::<TmpHost>(&[0xff, 1], 1, "dev.tmp.from_parent", 1);
    assert!(matches!(e.kind(), ErrorKind::Invalid(_)), "{e}");
    let e = to_bytes(&TmpHost {
        a: 0xff,
        tmp: WithTmp::new(),
    })
    .unwrap_err();
    assert_eq!(
        (e.path_string().as_str(), e.offset()),
        ("dev.tmp.from_parent", Some(1))
    );
}

#[test]
fn save_refuses_counts_the_loader_would_refuse() {
    // A count above `max` (but within the array) must not be written.
    let dev = Counts {
        n16: 3,
        ..Default::default()
    };
    let e = vmstate_runtime::to_bytes(&dev).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::CountOutOfRange { count: 3, max: 2 }),
        "{e}"
    );
    assert_eq!(e.path_string(), "dev.fixed16");
    let dev = Counts {
        n32: 101,
        vec32: vec![0; 101],
        ..Default::default()
    };
    let e = vmstate_runtime::to_bytes(&dev).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::CountOutOfRange {
                count: 101,
                max: 100
            }
        ),
        "{e}"
    );
    assert_eq!(e.path_string(), "dev.vec32");
}
