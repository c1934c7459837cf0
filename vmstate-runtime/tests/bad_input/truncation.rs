//! Truncation at every offset

use super::*;

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "inner_vmsd", version = 1)]
pub(super) struct TInner {
    x: u16,
    flag: bool,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "elem", version = 1)]
pub(super) struct TElem {
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
pub(super) struct KbdExt {
    obsrc: u32,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "kbd_mode", version = 1)]
struct KbdMode {
    mode: u8,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "kbd", version = 1)]
pub(super) struct Kbd {
    status: u8,
    #[vmstate(subsection(needed = Kbd::ext_needed))]
    pub(super) ext: KbdExt,
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
