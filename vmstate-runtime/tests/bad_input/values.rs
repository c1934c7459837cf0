//! Values: bool, enum, equal, positive_le, null marker, lists

use super::truncation::{TElem, TInner};
use super::*;

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
        assert_kind!(e, ErrorKind::InvalidBool(x) if *x == bad);
    }
    let mut b = good.clone();
    b[4] = 2;
    let e = load_err::<Values>(&b, 1, "dev.arr[3]", 4);
    assert_kind!(e, ErrorKind::InvalidBool(2));
    assert!(e.to_string().contains("invalid bool byte 0x02"), "{e}");
    let mut b = good.clone();
    b[8] = 2;
    let e = load_err::<Values>(&b, 1, "dev.inner.flag", 8);
    assert_kind!(e, ErrorKind::InvalidBool(2));
    // structs[3].flag is at 9 + 3 * 3 + 2.
    let mut b = good.clone();
    b[20] = 7;
    let e = load_err::<Values>(&b, 1, "dev.structs[3].flag", 20);
    assert_kind!(e, ErrorKind::InvalidBool(7));
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
    load_errs::<Enums>(
        1,
        &[
            (
                &[2, 0, 0, 0, 0, 0, 0, 0],
                "dev.m",
                0,
                kind! { ErrorKind::InvalidEnum { enum_name: "Mode8", value: 2 } },
            ),
            (
                &[0, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0],
                "dev.mi",
                1,
                kind! { ErrorKind::InvalidEnum { enum_name: "ModeI32", value: -2 } },
            ),
            (
                &[0, 0, 0, 0, 0, 1, 0, 0xff],
                "dev.ma[2]",
                7,
                kind! { ErrorKind::InvalidEnum { enum_name: "Mode8", value: 255 } },
            ),
        ],
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
    assert_kind!(
        e,
        ErrorKind::NotEqual {
            expected: 32,
            found: 33
        }
    );
    let e = load_err::<Checks>(
        &checks_bytes(-1, 0xdead_beef_0000_0001, 7),
        1,
        "dev.ports",
        0,
    );
    assert_kind!(
        e,
        ErrorKind::NotEqual {
            expected: 32,
            found: -1
        }
    );
    let e = load_err::<Checks>(&checks_bytes(32, u64::MAX, 7), 1, "dev.id", 4);
    assert_kind!(e, ErrorKind::NotEqual { expected, found } if *expected == 0xdead_beef_0000_0001 && *found == i128::from(u64::MAX));
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
        assert_kind!(e, ErrorKind::NotPositiveLe { found: f, limit: 100 } if *f == found);
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
    load_errs::<Ptrs>(
        1,
        &[
            (
                &[0, 0, 1, 0x31, 0x30],
                "dev.ptrs[1]",
                3,
                kind! { ErrorKind::BadNullMarker(0x31) },
            ),
            (
                &[0, 0, 1, 0x30, 0x00],
                "dev.ptrs[2]",
                4,
                kind! { ErrorKind::BadNullMarker(0x00) },
            ),
            (
                &[0, 0, 1, 0x30],
                "dev.ptrs[2]",
                4,
                kind! { ErrorKind::Truncated { needed: 1, available: 0 } },
            ),
        ],
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
    load_errs::<Lists>(
        1,
        &[
            (
                &[9, 2, 0, 0, 0, 1, 0, 9],
                "dev.l",
                1,
                kind! { ErrorKind::BadListMarker(2) },
            ),
            (
                &[9, 1, 0, 0, 0, 1, 0xff, 9],
                "dev.l",
                6,
                kind! { ErrorKind::BadListMarker(0xff) },
            ),
        ],
    );
}

#[test]
fn list_too_long() {
    let e = load_err::<Lists>(
        &[9, 1, 0, 0, 0, 1, 1, 0, 0, 0, 2, 1, 0, 0, 0, 3, 0, 9],
        1,
        "dev.l",
        11,
    );
    assert_kind!(e, ErrorKind::ListTooLong { max: 2 });
}

#[test]
fn list_without_terminator() {
    load_errs::<Lists>(
        1,
        &[
            // QTAILQ with no terminating 0: runs to the end of the stream.
            (
                &[9, 1, 0, 0, 0, 1],
                "dev.l",
                6,
                kind! { ErrorKind::Truncated { needed: 1, available: 0 } },
            ),
            (
                &[9, 1, 0, 0],
                "dev.l[0].v",
                2,
                kind! { ErrorKind::Truncated { needed: 4, available: 2 } },
            ),
        ],
    );
}
