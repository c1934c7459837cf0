//! Primitives (test-vmstate.c: obj_simple_primitive / wire_simple_primitive)

use super::*;

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "simple/primitive", version = 1)]
pub(super) struct SimplePrimitive {
    b_1: bool,
    b_2: bool,
    u8_1: u8,
    u16_1: u16,
    u32_1: u32,
    u64_1: u64,
    i8_1: i8,
    i8_2: i8,
    i16_1: i16,
    i16_2: i16,
    i32_1: i32,
    i32_2: i32,
    i64_1: i64,
    i64_2: i64,
}

fn obj_simple_primitive() -> SimplePrimitive {
    SimplePrimitive {
        b_1: true,
        b_2: false,
        u8_1: 130,
        u16_1: 512,
        u32_1: 70000,
        u64_1: 12121212,
        i8_1: 65,
        i8_2: -65,
        i16_1: 512,
        i16_2: -512,
        i32_1: 70000,
        i32_2: -70000,
        i64_1: 12121212,
        i64_2: -12121212,
    }
}

pub(super) const WIRE_SIMPLE_PRIMITIVE: &[u8] = &[
    /* b_1 */ 0x01, //
    /* b_2 */ 0x00, //
    /* u8_1 */ 0x82, //
    /* u16_1 */ 0x02, 0x00, //
    /* u32_1 */ 0x00, 0x01, 0x11, 0x70, //
    /* u64_1 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0xb8, 0xf4, 0x7c, //
    /* i8_1 */ 0x41, //
    /* i8_2 */ 0xbf, //
    /* i16_1 */ 0x02, 0x00, //
    /* i16_2 */ 0xfe, 0x00, //
    /* i32_1 */ 0x00, 0x01, 0x11, 0x70, //
    /* i32_2 */ 0xff, 0xfe, 0xee, 0x90, //
    /* i64_1 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0xb8, 0xf4, 0x7c, //
    /* i64_2 */ 0xff, 0xff, 0xff, 0xff, 0xff, 0x47, 0x0b, 0x84,
];

#[test]
fn simple_primitive_save_matches_qemu() {
    assert_eq!(
        to_bytes(&obj_simple_primitive()).unwrap(),
        WIRE_SIMPLE_PRIMITIVE
    );
}

#[test]
fn simple_primitive_load_matches_qemu() {
    let obj: SimplePrimitive = from_bytes(WIRE_SIMPLE_PRIMITIVE, 1).unwrap();
    assert_eq!(obj, obj_simple_primitive());
    // QEMU's test appends QEMU_VM_EOF (0x00) to check the loader does not read past
    // the body: loading through a Reader must leave it untouched.
    let mut with_eof = WIRE_SIMPLE_PRIMITIVE.to_vec();
    with_eof.push(0x00);
    let mut r = Reader::new(&with_eof[..]);
    let mut obj = SimplePrimitive::default();
    obj.load(&mut r, 1).unwrap();
    assert_eq!(r.remaining(), 1);
    assert_eq!(r.position(), WIRE_SIMPLE_PRIMITIVE.len() as u64);
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "extremes", version = 1)]
struct Extremes {
    u8_min: u8,
    u8_max: u8,
    i8_min: i8,
    i8_max: i8,
    i8_m1: i8,
    u16_max: u16,
    i16_min: i16,
    i16_m1: i16,
    u32_max: u32,
    i32_min: i32,
    i32_max: i32,
    i32_m1: i32,
    u64_max: u64,
    i64_min: i64,
    i64_max: i64,
    i64_m1: i64,
}

#[test]
fn extremes_of_every_width() {
    let v = Extremes {
        u8_min: 0,
        u8_max: u8::MAX,
        i8_min: i8::MIN,
        i8_max: i8::MAX,
        i8_m1: -1,
        u16_max: u16::MAX,
        i16_min: i16::MIN,
        i16_m1: -1,
        u32_max: u32::MAX,
        i32_min: i32::MIN,
        i32_max: i32::MAX,
        i32_m1: -1,
        u64_max: u64::MAX,
        i64_min: i64::MIN,
        i64_max: i64::MAX,
        i64_m1: -1,
    };
    let expected: Vec<u8> = cat(&[
        &[0x00, 0xff, 0x80, 0x7f, 0xff],
        &[0xff, 0xff],
        &[0x80, 0x00],
        &[0xff, 0xff],
        &[0xff; 4],
        &[0x80, 0, 0, 0],
        &[0x7f, 0xff, 0xff, 0xff],
        &[0xff; 4],
        &[0xff; 8],
        &[0x80, 0, 0, 0, 0, 0, 0, 0],
        &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0xff; 8],
    ]);
    assert_wire(&v, &expected, 1);
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "bools", version = 1)]
struct Bools {
    a: bool,
    b: bool,
    arr: [bool; 3],
}

#[test]
fn bools_are_one_byte_zero_or_one() {
    let v = Bools {
        a: true,
        b: false,
        arr: [false, true, true],
    };
    assert_wire(&v, &[1, 0, 0, 1, 1], 1);
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "empty")]
pub(super) struct Empty {}

#[test]
fn empty_struct_is_zero_bytes_at_version_zero() {
    assert_eq!(to_bytes(&Empty {}).unwrap(), Vec::<u8>::new());
    assert_eq!(from_bytes::<Empty>(&[], 0).unwrap(), Empty {});
    assert_eq!(Empty::DESCRIPTION.version_id, 0);
    assert_eq!(Empty::DESCRIPTION.minimum_version_id, 0);
    assert!(matches!(
        from_bytes::<Empty>(&[], 1).unwrap_err().kind(),
        ErrorKind::VersionTooNew { version: 1, max: 0 }
    ));
}
