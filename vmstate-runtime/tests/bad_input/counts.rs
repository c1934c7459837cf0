//! Counts

use super::truncation::TElem;
use super::*;

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
pub(super) struct Counts {
    pub(super) n8: u8,
    #[vmstate(varray(len = n8))]
    pub(super) fixed8: [u16; 4],
    pub(super) n16: u16,
    #[vmstate(varray(len = n16), max = 2)]
    pub(super) fixed16: [u8; 4],
    pub(super) n32: u32,
    #[vmstate(varray(len = n32), max = 100)]
    pub(super) vec32: Vec<u32>,
    pub(super) ni: i32,
    #[vmstate(varray(len = ni), max = 8)]
    pub(super) veci: Vec<TElem>,
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
    load_errs::<Counts>(
        1,
        &[
            (
                &counts_bytes(5, 0, 0, 0),
                "dev.fixed8",
                1,
                kind! { ErrorKind::CountOutOfRange { count: 5, max: 4 } },
            ),
            (
                &counts_bytes(255, 0, 0, 0),
                "dev.fixed8",
                1,
                kind! { ErrorKind::CountOutOfRange { count: 255, max: 4 } },
            ),
        ],
    );
}

#[test]
fn count_above_max_on_fixed_array() {
    load_errs::<Counts>(
        1,
        &[
            // `max = 2` bounds the count below the array length 4.
            (
                &counts_bytes(0, 3, 0, 0),
                "dev.fixed16",
                3,
                kind! { ErrorKind::CountOutOfRange { count: 3, max: 2 } },
            ),
            (
                &counts_bytes(0, 0xffff, 0, 0),
                "dev.fixed16",
                3,
                kind! { ErrorKind::CountOutOfRange { count: 65535, max: 2 } },
            ),
        ],
    );
}

#[test]
fn count_above_max_on_vec() {
    load_errs::<Counts>(
        1,
        &[
            (
                &counts_bytes(0, 0, 101, 0),
                "dev.vec32",
                7,
                kind! { ErrorKind::CountOutOfRange { count: 101, max: 100 } },
            ),
            // CVE-2013-4151 style: count 0xffffffff must fail before anything is allocated.
            (
                &counts_bytes(0, 0, u32::MAX, 0),
                "dev.vec32",
                7,
                kind! { ErrorKind::CountOutOfRange { count: 4294967295, max: 100 } },
            ),
            (
                &counts_bytes(0, 0, 0, 9),
                "dev.veci",
                11,
                kind! { ErrorKind::CountOutOfRange { count: 9, max: 8 } },
            ),
        ],
    );
}

#[test]
fn negative_i32_counts() {
    for ni in [-1, -8, i32::MIN, -0x7f00_0000] {
        let e = load_err::<Counts>(&counts_bytes(0, 0, 0, ni), 1, "dev.veci", 11);
        assert_kind!(e, ErrorKind::CountOutOfRange { count, max: 8 } if *count == i64::from(ni));
    }
}

#[test]
fn count_in_range_but_data_missing() {
    // A plausible count whose data is not in the stream: truncation, not a huge read.
    let mut b = counts_bytes(0, 0, 0, 0);
    b[3..7].copy_from_slice(&50u32.to_be_bytes());
    let e = load_err::<Counts>(&b, 1, "dev.vec32", 7);
    assert_kind!(
        e,
        ErrorKind::Truncated {
            needed: 200,
            available: 4
        }
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
    load_errs::<VBuf>(
        1,
        &[
            (
                &[0, 0, 0, 17],
                "buf.data",
                4,
                kind! { ErrorKind::CountOutOfRange { count: 17, max: 16 } },
            ),
            // CVE-2014-0182 style: a config length of 0x7fffffff or negative.
            (
                &[0x7f, 0xff, 0xff, 0xff],
                "buf.data",
                4,
                kind! { ErrorKind::CountOutOfRange { count: 0x7fff_ffff, max: 16 } },
            ),
            (
                &[0xff, 0xff, 0xff, 0xf0],
                "buf.data",
                4,
                kind! { ErrorKind::CountOutOfRange { count: -16, max: 16 } },
            ),
            (
                &[0, 0, 0, 0, 5],
                "buf.fixed",
                5,
                kind! { ErrorKind::CountOutOfRange { count: 5, max: 4 } },
            ),
        ],
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
    load_errs::<Bits>(
        1,
        &[
            (
                &129i32.to_be_bytes(),
                "bm.map",
                4,
                kind! { ErrorKind::CountOutOfRange { count: 129, max: 128 } },
            ),
            (
                &(-1i32).to_be_bytes(),
                "bm.map",
                4,
                kind! { ErrorKind::CountOutOfRange { count: -1, max: 128 } },
            ),
            (
                &i32::MAX.to_be_bytes(),
                "bm.map",
                4,
                kind! { ErrorKind::CountOutOfRange { .. } },
            ),
            // 65 bits need two words.
            (
                &cat(&[&65i32.to_be_bytes(), &[0; 8]]),
                "bm.map",
                4,
                kind! { ErrorKind::Truncated { needed: 16, available: 8 } },
            ),
        ],
    );
}
