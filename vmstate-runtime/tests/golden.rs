//! Golden wire tests: for every encoding the derive supports, the exact bytes,
//! worked out by hand from QEMU's rules (`migration/vmstate.c`,
//! `migration/vmstate-types.c`; see qemu-wire.md §2) and, where QEMU has one, the
//! same object and byte string as its unit test `tests/unit/test-vmstate.c`.
//!
//! Each test saves a value and compares with the literal bytes, then loads the
//! literal bytes back (into a default value or into a preset destination, as QEMU's
//! tests do) and compares the result.

use std::cell::RefCell;

use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{
    from_bytes, to_bytes, Error, ErrorKind, FieldLayout, MigrationPriority, VmState, VmStateTmp,
    WithTmp,
};

/// A subsection header: 0x05, u8 name length, name, be32 version.
fn sub_header(name: &str, version: u32) -> Vec<u8> {
    let mut v = vec![0x05, name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(&version.to_be_bytes());
    v
}

/// Loads `bytes` at `version` into an existing destination (QEMU loads into the live
/// device, so fields absent from the stream keep the destination's values) and
/// checks that everything was consumed.
fn load_into<T: VmState>(dest: &mut T, bytes: &[u8], version: u32) -> Result<(), Error> {
    let mut r = Reader::new(bytes);
    dest.load(&mut r, version)?;
    assert_eq!(r.remaining(), 0, "load left bytes unconsumed");
    Ok(())
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------------------------
// Primitives (test-vmstate.c: obj_simple_primitive / wire_simple_primitive)
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "simple/primitive", version = 1)]
struct SimplePrimitive {
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

const WIRE_SIMPLE_PRIMITIVE: &[u8] = &[
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
    assert_eq!(to_bytes(&v).unwrap(), expected);
    assert_eq!(from_bytes::<Extremes>(&expected, 1).unwrap(), v);
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
    assert_eq!(to_bytes(&v).unwrap(), [1, 0, 0, 1, 1]);
    assert_eq!(from_bytes::<Bools>(&[1, 0, 0, 1, 1], 1).unwrap(), v);
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "empty")]
struct Empty {}

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

// ---------------------------------------------------------------------------------
// Arrays (test-vmstate.c: test_simple_array; VMS_ARRAY)
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "simple/array", version = 1)]
struct SimpleArray {
    u16_1: [u16; 3],
}

#[test]
fn simple_array_matches_qemu() {
    let v = SimpleArray { u16_1: [1, 2, 3] };
    let wire = [0x00, 0x01, 0x00, 0x02, 0x00, 0x03];
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<SimpleArray>(&wire, 1).unwrap(), v);
}

#[derive(VmState, Debug, PartialEq)]
#[vmstate(name = "arrays", version = 1)]
struct Arrays {
    bytes: [u8; 4],
    neg16: [i16; 2],
    words: [u32; 200],
    wide: [i64; 2],
    grid: [[u8; 2]; 3],
    grid32: [[u32; 2]; 2],
}

impl Default for Arrays {
    fn default() -> Self {
        Arrays {
            bytes: [0; 4],
            neg16: [0; 2],
            words: [0; 200],
            wide: [0; 2],
            grid: [[0; 2]; 3],
            grid32: [[0; 2]; 2],
        }
    }
}

#[test]
fn int_arrays_are_elements_back_to_back_big_endian() {
    let v = Arrays {
        bytes: [1, 2, 3, 0xff],
        neg16: [-1, -256],
        // Longer than the 512-byte bulk-conversion chunk of the runtime.
        words: std::array::from_fn(|i| 0x0100_0000 * (i as u32 % 256) + i as u32),
        wide: [-2, i64::MAX],
        grid: [[1, 2], [3, 4], [5, 6]],
        grid32: [[1, 2], [3, 0xdead_beef]],
    };
    let mut expected = vec![1, 2, 3, 0xff, 0xff, 0xff, 0xff, 0x00];
    for i in 0..200u32 {
        expected.extend_from_slice(&[(i % 256) as u8, 0, 0, i as u8]);
    }
    expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
    expected.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expected.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(expected.len(), 4 + 4 + 800 + 16 + 6 + 16);
    assert_eq!(to_bytes(&v).unwrap(), expected);
    assert_eq!(from_bytes::<Arrays>(&expected, 1).unwrap(), v);
}

/// test-vmstate.c: TestStructTriv { int32_t i; } and vmsd_tst ("test/tst").
#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "test/tst", version = 1)]
struct Triv {
    i: i32,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "test/struct_arr", version = 1)]
struct StructArray {
    ar: [Triv; 4],
}

#[test]
fn array_of_structs_is_bodies_back_to_back() {
    // VMSTATE_STRUCT_ARRAY: like test_arr_ptr_str_no0_save's wire, without pointers.
    let v = StructArray {
        ar: [Triv { i: 0 }, Triv { i: 1 }, Triv { i: 2 }, Triv { i: 3 }],
    };
    let wire = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<StructArray>(&wire, 1).unwrap(), v);
}

// ---------------------------------------------------------------------------------
// Versions (`since`, QEMU _V) — test-vmstate.c: vmstate_versioned
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "test/versioned", version = 2, minimum_version = 1)]
struct Versioned {
    a: u32,
    /// Versioned field in the middle, so bugs are caught more easily.
    #[vmstate(since = 2)]
    b: u32,
    c: u32,
    d: u64,
    #[vmstate(since = 2)]
    e: u32,
    #[vmstate(since = 2)]
    f: u64,
}

#[test]
fn versioned_load_v1_keeps_destination_values_of_newer_fields() {
    // test_load_v1
    let wire = [
        /* a */ 0x00, 0x00, 0x00, 0x0a, //
        /* c */ 0x00, 0x00, 0x00, 0x1e, //
        /* d */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28,
    ];
    let mut obj = Versioned {
        b: 200,
        e: 500,
        f: 600,
        ..Default::default()
    };
    load_into(&mut obj, &wire, 1).unwrap();
    assert_eq!(
        obj,
        Versioned {
            a: 10,
            b: 200,
            c: 30,
            d: 40,
            e: 500,
            f: 600
        }
    );
    // Into a fresh value, the fields absent from a v1 stream are the defaults.
    assert_eq!(
        from_bytes::<Versioned>(&wire, 1).unwrap(),
        Versioned {
            a: 10,
            c: 30,
            d: 40,
            ..Default::default()
        }
    );
    // The same bytes are too short for a v2 stream.
    assert!(matches!(
        from_bytes::<Versioned>(&wire, 2).unwrap_err().kind(),
        ErrorKind::Truncated { .. }
    ));
}

#[test]
fn versioned_load_and_save_v2() {
    // test_load_v2
    let wire = [
        /* a */ 0x00, 0x00, 0x00, 0x0a, //
        /* b */ 0x00, 0x00, 0x00, 0x14, //
        /* c */ 0x00, 0x00, 0x00, 0x1e, //
        /* d */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28, //
        /* e */ 0x00, 0x00, 0x00, 0x32, //
        /* f */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3c,
    ];
    let v = Versioned {
        a: 10,
        b: 20,
        c: 30,
        d: 40,
        e: 50,
        f: 60,
    };
    let mut obj = Versioned::default();
    load_into(&mut obj, &wire, 2).unwrap();
    assert_eq!(obj, v);
    // Save always writes the current version: every `since` field is present.
    assert_eq!(to_bytes(&v).unwrap(), wire);
}

// ---------------------------------------------------------------------------------
// Tests (`test`, QEMU _TEST) — test-vmstate.c: vmstate_skipping
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "test/skip", version = 2, minimum_version = 1)]
struct Skipping {
    #[vmstate(skip)]
    skip_c_e: bool,
    a: u32,
    b: u32,
    #[vmstate(test = Skipping::test_skip)]
    c: u32,
    d: u64,
    #[vmstate(test = Skipping::test_skip)]
    e: u32,
    #[vmstate(since = 2)]
    f: u64,
}

impl Skipping {
    fn test_skip(&self, _version_id: u32) -> bool {
        !self.skip_c_e
    }
}

fn skipping_obj(skip_c_e: bool) -> Skipping {
    Skipping {
        skip_c_e,
        a: 1,
        b: 2,
        c: 3,
        d: 4,
        e: 5,
        f: 6,
    }
}

#[test]
fn test_field_present_when_test_true() {
    // test_save_noskip / test_load_noskip
    let wire = [
        /* a */ 0x00, 0x00, 0x00, 0x01, //
        /* b */ 0x00, 0x00, 0x00, 0x02, //
        /* c */ 0x00, 0x00, 0x00, 0x03, //
        /* d */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, //
        /* e */ 0x00, 0x00, 0x00, 0x05, //
        /* f */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
    ];
    assert_eq!(to_bytes(&skipping_obj(false)).unwrap(), wire);
    let mut obj = Skipping::default();
    load_into(&mut obj, &wire, 2).unwrap();
    assert_eq!(obj, skipping_obj(false));
}

#[test]
fn test_field_absent_when_test_false() {
    // test_save_skip / test_load_skip
    let wire = [
        /* a */ 0x00, 0x00, 0x00, 0x01, //
        /* b */ 0x00, 0x00, 0x00, 0x02, //
        /* d */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, //
        /* f */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
    ];
    assert_eq!(to_bytes(&skipping_obj(true)).unwrap(), wire);
    // The destination decides the test too (QEMU: "must give the same answer on
    // both ends"); c and e keep the destination's values.
    let mut obj = Skipping {
        skip_c_e: true,
        c: 300,
        e: 500,
        ..Default::default()
    };
    load_into(&mut obj, &wire, 2).unwrap();
    assert_eq!(
        obj,
        Skipping {
            skip_c_e: true,
            a: 1,
            b: 2,
            c: 300,
            d: 4,
            e: 500,
            f: 6
        }
    );
    // A v1 stream without c, e and f.
    let mut obj = Skipping {
        skip_c_e: true,
        f: 600,
        ..Default::default()
    };
    load_into(&mut obj, &wire[..16], 1).unwrap();
    assert_eq!((obj.a, obj.b, obj.d, obj.f), (1, 2, 4, 600));
}

/// A test sees the version being loaded (and the current version on save) and
/// overrides `since`: QEMU ignores field->version_id when field_exists is set.
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "test/version_test", version = 3, minimum_version = 1)]
struct VersionTest {
    a: u8,
    #[vmstate(test = VersionTest::odd_version)]
    odd: u8,
}

impl VersionTest {
    fn odd_version(&self, version_id: u32) -> bool {
        version_id % 2 == 1
    }
}

#[test]
fn test_receives_the_stream_version() {
    // Save at version 3: odd → present.
    assert_eq!(to_bytes(&VersionTest { a: 1, odd: 2 }).unwrap(), [1, 2]);
    assert_eq!(
        from_bytes::<VersionTest>(&[1, 2], 1).unwrap(),
        VersionTest { a: 1, odd: 2 }
    );
    assert_eq!(
        from_bytes::<VersionTest>(&[1], 2).unwrap(),
        VersionTest { a: 1, odd: 0 }
    );
}

// ---------------------------------------------------------------------------------
// Nested structs (VMS_STRUCT)
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "inner/extra", version = 1)]
struct InnerExtra {
    e: u16,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "inner", version = 3, minimum_version = 3)]
struct Inner {
    x: u8,
    /// Newer than any outer stream version used below: still loaded, because a
    /// nested struct is loaded at its own current version.
    #[vmstate(since = 3)]
    y: u16,
    #[vmstate(subsection(needed = Inner::extra_needed))]
    extra: InnerExtra,
}

impl Inner {
    fn extra_needed(&self) -> bool {
        self.extra.e != 0
    }
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "outer", version = 2, minimum_version = 1)]
struct Outer {
    before: u8,
    inner: Inner,
    after: u32,
    #[vmstate(since = 2)]
    late: u8,
}

#[test]
fn nested_struct_body_inline_without_subsection() {
    let v = Outer {
        before: 0xaa,
        inner: Inner {
            x: 1,
            y: 0x0203,
            extra: InnerExtra::default(),
        },
        after: 0x0405_0607,
        late: 9,
    };
    let wire = [0xaa, 1, 2, 3, 4, 5, 6, 7, 9];
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<Outer>(&wire, 2).unwrap(), v);
}

#[test]
fn nested_subsection_sits_right_after_nested_fields() {
    let v = Outer {
        before: 0xaa,
        inner: Inner {
            x: 1,
            y: 0x0203,
            extra: InnerExtra { e: 0xbeef },
        },
        after: 0x0405_0607,
        late: 9,
    };
    let wire = cat(&[
        &[0xaa, 1, 2, 3],
        &sub_header("inner/extra", 1),
        &[0xbe, 0xef],
        &[4, 5, 6, 7, 9],
    ]);
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<Outer>(&wire, 2).unwrap(), v);
}

#[test]
fn nested_struct_loads_at_its_own_version() {
    // An outer v1 stream: `late` is absent, but the inner body is still loaded at
    // inner's version 3 (its `since = 3` field `y` is present, and inner's
    // minimum version 3 does not reject the outer version 1).
    let wire = [0xaa, 1, 2, 3, 4, 5, 6, 7];
    let v: Outer = from_bytes(&wire, 1).unwrap();
    assert_eq!(
        v,
        Outer {
            before: 0xaa,
            inner: Inner {
                x: 1,
                y: 0x0203,
                extra: InnerExtra::default()
            },
            after: 0x0405_0607,
            late: 0,
        }
    );
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "boxed", version = 1)]
struct Boxed {
    n: Box<u32>,
    s: Box<Triv>,
    arr: Box<[u16; 2]>,
}

#[test]
fn box_is_transparent() {
    // VMS_POINTER / STRUCT_POINTER: nothing for the pointer itself.
    let v = Boxed {
        n: Box::new(0x0102_0304),
        s: Box::new(Triv { i: -1 }),
        arr: Box::new([5, 6]),
    };
    let wire = [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0, 5, 0, 6];
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<Boxed>(&wire, 1).unwrap(), v);
}

// ---------------------------------------------------------------------------------
// Arrays of pointers (VMS_ARRAY_OF_POINTER) with the 0x30 null marker
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "test/arr_ptr", version = 1)]
struct ArrPtr {
    ar: [Option<Box<i32>>; 4],
    st: [Option<Box<Triv>>; 3],
}

#[test]
fn array_of_pointers_with_null_marker() {
    // test_arr_ptr_prim_0_save / _load: NULL slots are the single byte '0' (0x30).
    let v = ArrPtr {
        ar: [Some(Box::new(0)), None, Some(Box::new(2)), None],
        st: [None, Some(Box::new(Triv { i: 7 })), None],
    };
    let wire = [
        0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x02, 0x30, //
        0x30, 0x00, 0x00, 0x00, 0x07, 0x30,
    ];
    assert_eq!(to_bytes(&v).unwrap(), wire);
    // The destination's own pointers decide what is expected (as in QEMU, where the
    // destination device has already allocated the non-NULL elements).
    let mut dest = ArrPtr {
        ar: [Some(Box::new(-9)), None, Some(Box::new(-9)), None],
        st: [None, Some(Box::new(Triv { i: -9 })), None],
    };
    load_into(&mut dest, &wire, 1).unwrap();
    assert_eq!(dest, v);
    // All-NULL arrays are only markers.
    let nulls = ArrPtr::default();
    assert_eq!(to_bytes(&nulls).unwrap(), [0x30; 7]);
    assert_eq!(from_bytes::<ArrPtr>(&[0x30; 7], 1).unwrap(), nulls);
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "ptr_varray", version = 1)]
struct PtrVarray {
    n: u8,
    #[vmstate(varray(len = n), max = 4)]
    v: Vec<Option<Box<u32>>>,
}

#[test]
fn varray_of_null_pointers_loads() {
    // A Vec of pointers is allocated with NULL slots on load, so each needs a marker.
    // (Regression: the loader used to require 4 bytes per element up front.)
    let v = PtrVarray {
        n: 3,
        v: vec![None, None, None],
    };
    assert_eq!(to_bytes(&v).unwrap(), [3, 0x30, 0x30, 0x30]);
    assert_eq!(
        from_bytes::<PtrVarray>(&[3, 0x30, 0x30, 0x30], 1).unwrap(),
        v
    );
}

// ---------------------------------------------------------------------------------
// Subsections
// ---------------------------------------------------------------------------------

#[derive(VmState, Debug, PartialEq, Clone)]
#[vmstate(name = "pckbd_outport", version = 1)]
struct Outport {
    outport: u8,
}

impl Default for Outport {
    fn default() -> Self {
        Outport { outport: 0xcf }
    }
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "pckbd/extended_state", version = 1)]
struct Extended {
    mask: u8,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "pckbd/extended_state/deep", version = 2, minimum_version = 1)]
struct Deep {
    d: u8,
    #[vmstate(since = 2)]
    d2: u8,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "pckbd/extended_state", version = 1)]
struct ExtendedWithDeep {
    mask: u8,
    #[vmstate(subsection())]
    deep: Deep,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(
    name = "pckbd",
    version = 3,
    minimum_version = 3,
    pre_load = Pckbd::pre_load,
    post_load = Pckbd::post_load
)]
struct Pckbd {
    write_cmd: u8,
    status: u8,
    mode: u8,
    pending: u8,
    #[vmstate(subsection(needed = Pckbd::outport_needed))]
    outport: Outport,
    #[vmstate(subsection(needed = Pckbd::extended_needed))]
    extended: Extended,
    /// Set by `post_load` when the outport subsection did not arrive (i8042 pattern).
    #[vmstate(skip)]
    outport_present: bool,
}

impl Pckbd {
    fn outport_needed(&self) -> bool {
        self.outport.outport != 0xcf
    }
    fn extended_needed(&self) -> bool {
        self.extended.mask != 0
    }
    fn pre_load(&mut self) -> Result<(), Error> {
        // QEMU's i8042: defaults for state that only travels in optional subsections.
        self.outport = Outport { outport: 0xcf };
        self.extended = Extended { mask: 0 };
        self.outport_present = false;
        Ok(())
    }
    fn post_load(&mut self, _version_id: u32) -> Result<(), Error> {
        self.outport_present = self.outport.outport != 0xcf;
        Ok(())
    }
}

fn pckbd_base() -> Pckbd {
    Pckbd {
        write_cmd: 0x60,
        status: 0x1c,
        mode: 0x47,
        pending: 0,
        ..Pckbd::default()
    }
    .with_pre_load_defaults()
}

impl Pckbd {
    fn with_pre_load_defaults(mut self) -> Self {
        self.outport = Outport { outport: 0xcf };
        self.extended = Extended { mask: 0 };
        self
    }
}

const PCKBD_FIELDS: &[u8] = &[0x60, 0x1c, 0x47, 0x00];

#[test]
fn subsection_not_needed_is_not_written() {
    let v = pckbd_base();
    assert_eq!(to_bytes(&v).unwrap(), PCKBD_FIELDS);
    // Absent subsections keep the pre_load defaults, whatever the destination held.
    let mut dest = Pckbd {
        outport: Outport { outport: 0x11 },
        extended: Extended { mask: 0x22 },
        outport_present: true,
        ..Pckbd::default()
    };
    load_into(&mut dest, PCKBD_FIELDS, 3).unwrap();
    assert_eq!(dest, v);
    assert!(!dest.outport_present);
}

#[test]
fn one_subsection_header_and_body() {
    let mut v = pckbd_base();
    v.outport.outport = 0xcd;
    let wire = cat(&[PCKBD_FIELDS, &sub_header("pckbd_outport", 1), &[0xcd]]);
    assert_eq!(
        wire[4..],
        [
            0x05, 13, b'p', b'c', b'k', b'b', b'd', b'_', b'o', b'u', b't', b'p', b'o', b'r', b't',
            0, 0, 0, 1, 0xcd
        ]
    );
    assert_eq!(to_bytes(&v).unwrap(), wire);
    let back: Pckbd = from_bytes(&wire, 3).unwrap();
    assert!(
        back.outport_present,
        "subsection loaded before post_load ran"
    );
    assert_eq!(back.outport, v.outport);
    assert_eq!(back.extended, Extended { mask: 0 });
}

#[test]
fn multiple_subsections_in_declaration_order_and_any_order_on_load() {
    let mut v = pckbd_base();
    v.outport.outport = 0xcd;
    v.extended.mask = 0x55;
    let out = cat(&[&sub_header("pckbd_outport", 1), &[0xcd]]);
    let ext = cat(&[&sub_header("pckbd/extended_state", 1), &[0x55]]);
    let wire = cat(&[PCKBD_FIELDS, &out, &ext]);
    assert_eq!(to_bytes(&v).unwrap(), wire);
    let mut expected = v.clone();
    expected.outport_present = true;
    assert_eq!(from_bytes::<Pckbd>(&wire, 3).unwrap(), expected);
    // Reversed order loads the same.
    let reversed = cat(&[PCKBD_FIELDS, &ext, &out]);
    assert_eq!(from_bytes::<Pckbd>(&reversed, 3).unwrap(), expected);
    // Only the second one.
    let only_ext = cat(&[PCKBD_FIELDS, &ext]);
    let back: Pckbd = from_bytes(&only_ext, 3).unwrap();
    assert_eq!(back.outport, Outport { outport: 0xcf });
    assert_eq!(back.extended.mask, 0x55);
    assert!(!back.outport_present);
    // The same subsection twice is loaded twice (the last one wins).
    let twice = cat(&[
        PCKBD_FIELDS,
        &ext,
        &sub_header("pckbd/extended_state", 1),
        &[0x66],
    ]);
    assert_eq!(from_bytes::<Pckbd>(&twice, 3).unwrap().extended.mask, 0x66);
}

#[test]
fn subsection_version_is_truncated_to_eight_bits() {
    // QEMU reads the be32 version into a uint8_t: 0x00000101 is version 1.
    let wire = cat(&[
        PCKBD_FIELDS,
        &[0x05, 13],
        b"pckbd_outport",
        &[0x00, 0x00, 0x01, 0x01],
        &[0xcd],
    ]);
    assert_eq!(from_bytes::<Pckbd>(&wire, 3).unwrap().outport.outport, 0xcd);
    let wire = cat(&[
        PCKBD_FIELDS,
        &[0x05, 13],
        b"pckbd_outport",
        &[0xff, 0xff, 0xff, 0x01],
        &[0xcd],
    ]);
    assert_eq!(from_bytes::<Pckbd>(&wire, 3).unwrap().outport.outport, 0xcd);
    // 0x00000100 truncates to 0, below the subsection's minimum version 1.
    let wire = cat(&[
        PCKBD_FIELDS,
        &[0x05, 13],
        b"pckbd_outport",
        &[0x00, 0x00, 0x01, 0x00],
        &[0xcd],
    ]);
    let e = from_bytes::<Pckbd>(&wire, 3).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::VersionTooOld { version: 0, min: 1 }),
        "{e}"
    );
}

#[test]
fn foreign_prefix_stops_subsection_parsing() {
    // A header whose name does not start with "pckbd" is not ours: nothing is
    // consumed, the body ends there, and from_bytes reports the leftover bytes.
    let foreign = cat(&[&sub_header("ps2kbd/x", 1), &[0x01]]);
    let wire = cat(&[PCKBD_FIELDS, &foreign]);
    let e = from_bytes::<Pckbd>(&wire, 3).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::TrailingBytes(n) if *n == foreign.len()),
        "{e}"
    );
    assert_eq!(e.offset(), Some(4));
    assert_eq!(e.path_string(), "pckbd");
    // Through a Reader, the body ends before the foreign header.
    let mut r = Reader::new(&wire[..]);
    let mut dest = Pckbd::default();
    dest.load(&mut r, 3).unwrap();
    assert_eq!(r.position(), 4);
    // Also after a subsection of ours.
    let wire = cat(&[
        PCKBD_FIELDS,
        &sub_header("pckbd_outport", 1),
        &[0xcd],
        &foreign,
    ]);
    let mut r = Reader::new(&wire[..]);
    let mut dest = Pckbd::default();
    dest.load(&mut r, 3).unwrap();
    assert_eq!(r.remaining(), foreign.len());
    assert_eq!(dest.outport.outport, 0xcd);
    // Names shorter than parent + 1 byte are not ours either (QEMU: len < strlen+1).
    let wire = cat(&[PCKBD_FIELDS, &sub_header("pckbd", 1)]);
    let e = from_bytes::<Pckbd>(&wire, 3).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::TrailingBytes(11)), "{e}");
    // Any other byte after the body also ends it (e.g. a section footer 0x7e).
    let mut r = Reader::new(&[0x60, 0x1c, 0x47, 0x00, 0x7e][..]);
    Pckbd::default().load(&mut r, 3).unwrap();
    assert_eq!(r.remaining(), 1);
}

#[test]
fn subsection_within_subsection() {
    #[derive(VmState, Default, Debug, PartialEq)]
    #[vmstate(name = "pckbd", version = 1)]
    struct Parent {
        a: u8,
        #[vmstate(subsection())]
        ext: ExtendedWithDeep,
    }
    let v = Parent {
        a: 7,
        ext: ExtendedWithDeep {
            mask: 8,
            deep: Deep { d: 9, d2: 10 },
        },
    };
    let wire = cat(&[
        &[7],
        &sub_header("pckbd/extended_state", 1),
        &[8],
        &sub_header("pckbd/extended_state/deep", 2),
        &[9, 10],
    ]);
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<Parent>(&wire, 1).unwrap(), v);
    // The deep subsection at its version 1 (from its header) lacks d2.
    let wire_v1 = cat(&[
        &[7],
        &sub_header("pckbd/extended_state", 1),
        &[8],
        &sub_header("pckbd/extended_state/deep", 1),
        &[9],
    ]);
    let back: Parent = from_bytes(&wire_v1, 1).unwrap();
    assert_eq!(back.ext.deep, Deep { d: 9, d2: 0 });
}

// ---------------------------------------------------------------------------------
// Variable arrays (VMS_VARRAY_UINT8/UINT16/UINT32/INT32) and buffers
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "varrays", version = 1)]
struct VarVecs {
    n8: u8,
    #[vmstate(varray(len = n8), max = 10)]
    v8: Vec<u16>,
    n16: u16,
    #[vmstate(varray(len = n16), max = 10)]
    v16: Vec<u8>,
    n32: u32,
    #[vmstate(varray(len = n32), max = 10)]
    v32: Vec<i32>,
    ni: i32,
    #[vmstate(varray(len = ni), max = 10)]
    vi: Vec<Triv>,
}

#[test]
fn varray_on_vec_with_each_count_type() {
    let v = VarVecs {
        n8: 2,
        v8: vec![0x0102, 0x0304],
        n16: 3,
        v16: vec![5, 6, 7],
        n32: 1,
        v32: vec![-2],
        ni: 2,
        vi: vec![Triv { i: 8 }, Triv { i: -8 }],
    };
    let wire = cat(&[
        &[2, 1, 2, 3, 4],
        &[0, 3, 5, 6, 7],
        &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe],
        &[0, 0, 0, 2, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xf8],
    ]);
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<VarVecs>(&wire, 1).unwrap(), v);
    // Empty arrays: only the counts.
    let empty = VarVecs::default();
    let wire = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(to_bytes(&empty).unwrap(), wire);
    // Loading replaces the destination's vectors (resized to the count).
    let mut dest = VarVecs {
        v8: vec![9; 5],
        vi: vec![Triv { i: 1 }],
        ..Default::default()
    };
    load_into(&mut dest, &wire, 1).unwrap();
    assert_eq!(dest, empty);
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "varray_fixed", version = 1)]
struct VarFixed {
    n8: u8,
    #[vmstate(varray(len = n8))]
    a8: [u16; 4],
    n16: u16,
    #[vmstate(varray(len = n16))]
    a16: [u8; 4],
    n32: u32,
    #[vmstate(varray(len = n32), max = 2)]
    a32: [u32; 4],
    ni: i32,
    #[vmstate(varray(len = ni))]
    ai: [Triv; 3],
}

#[test]
fn varray_on_fixed_array_writes_the_first_count_elements() {
    let v = VarFixed {
        n8: 2,
        a8: [0x0102, 0x0304, 0xdead, 0xbeef],
        n16: 4,
        a16: [1, 2, 3, 4],
        n32: 0,
        a32: [7; 4],
        ni: 1,
        ai: [Triv { i: 3 }, Triv { i: 4 }, Triv { i: 5 }],
    };
    let wire = cat(&[
        &[2, 1, 2, 3, 4],
        &[0, 4, 1, 2, 3, 4],
        &[0, 0, 0, 0],
        &[0, 0, 0, 1, 0, 0, 0, 3],
    ]);
    assert_eq!(to_bytes(&v).unwrap(), wire);
    // Elements past the count keep the destination's values.
    let mut dest = VarFixed {
        a8: [0, 0, 0x1111, 0x2222],
        a32: [9; 4],
        ai: [Triv { i: 0 }, Triv { i: 6 }, Triv { i: 7 }],
        ..Default::default()
    };
    load_into(&mut dest, &wire, 1).unwrap();
    assert_eq!(dest.a8, [0x0102, 0x0304, 0x1111, 0x2222]);
    assert_eq!(dest.a16, [1, 2, 3, 4]);
    assert_eq!(dest.a32, [9; 4]);
    assert_eq!(dest.ai, [Triv { i: 3 }, Triv { i: 6 }, Triv { i: 7 }]);
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "vbuffers", version = 1)]
struct VBuffers {
    len: u32,
    #[vmstate(vbuffer(len = len), max = 64)]
    data: Vec<u8>,
    size: i32,
    #[vmstate(vbuffer(len = size))]
    fixed: [u8; 8],
}

#[test]
fn vbuffer_is_raw_bytes_sized_by_an_earlier_field() {
    let v = VBuffers {
        len: 5,
        data: b"hello".to_vec(),
        size: 3,
        fixed: *b"abcdefgh",
    };
    let wire = cat(&[&[0, 0, 0, 5], b"hello", &[0, 0, 0, 3], b"abc"]);
    assert_eq!(to_bytes(&v).unwrap(), wire);
    let back: VBuffers = from_bytes(&wire, 1).unwrap();
    assert_eq!(back.data, b"hello");
    assert_eq!(&back.fixed, b"abc\0\0\0\0\0");
}

// ---------------------------------------------------------------------------------
// Bitmap (VMSTATE_BITMAP): ceil(bits/64) be64 words
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "bitmap", version = 1)]
struct Bitmap {
    nbits: i32,
    #[vmstate(bitmap(len = nbits), max = 256)]
    map: Vec<u64>,
}

#[test]
fn bitmap_word_counts_and_bit_order() {
    for (bits, words) in [
        (0, 0),
        (1, 1),
        (63, 1),
        (64, 1),
        (65, 2),
        (128, 2),
        (129, 3),
    ] {
        let v = Bitmap {
            nbits: bits,
            map: vec![u64::MAX; words],
        };
        let bytes = to_bytes(&v).unwrap();
        assert_eq!(bytes.len(), 4 + 8 * words, "{bits} bits");
        assert_eq!(from_bytes::<Bitmap>(&bytes, 1).unwrap(), v);
    }
    // Bit i of the bitmap is bit (i % 64) of word i / 64; words are be64.
    let mut map = vec![0u64; 2];
    for bit in [0usize, 9, 64, 127] {
        map[bit / 64] |= 1 << (bit % 64);
    }
    let v = Bitmap { nbits: 100, map };
    let wire = cat(&[
        &[0, 0, 0, 100],
        &[0, 0, 0, 0, 0, 0, 0x02, 0x01],
        &[0x80, 0, 0, 0, 0, 0, 0, 0x01],
    ]);
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<Bitmap>(&wire, 1).unwrap(), v);
}

// ---------------------------------------------------------------------------------
// Lists (QTAILQ_V / QLIST_V) — test-vmstate.c: test_save_q / test_load_q
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "test/queue-elem", version = 1)]
struct QElem {
    b: bool,
    u8_: u8,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "test/queue", version = 1)]
struct Qtailq {
    i16_: i16,
    #[vmstate(list, max = 16)]
    q: Vec<QElem>,
    i32_: i32,
}

#[test]
fn list_matches_qemu_qtailq() {
    let v = Qtailq {
        i16_: -512,
        q: vec![QElem { b: true, u8_: 130 }, QElem { b: false, u8_: 65 }],
        i32_: 70000,
    };
    let wire = [
        /* i16 */ 0xfe, 0x00, //
        /* start of element 0 of q */ 0x01, //
        /* .b */ 0x01, //
        /* .u8 */ 0x82, //
        /* start of element 1 of q */ 0x01, //
        /* .b */ 0x00, //
        /* .u8 */ 0x41, //
        /* end of q */ 0x00, //
        /* i32 */ 0x00, 0x01, 0x11, 0x70,
    ];
    assert_eq!(to_bytes(&v).unwrap(), wire);
    // Loading replaces whatever the list held, keeping the stream's order.
    let mut dest = Qtailq {
        q: vec![QElem::default(); 3],
        ..Default::default()
    };
    load_into(&mut dest, &wire, 1).unwrap();
    assert_eq!(dest, v);
    // An empty list is just the terminator.
    let empty = Qtailq::default();
    assert_eq!(to_bytes(&empty).unwrap(), [0, 0, 0, 0, 0, 0, 0]);
}

// ---------------------------------------------------------------------------------
// Unused padding, equal, positive_le, timer, buffer, skip
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "misc", version = 1)]
struct Misc {
    a: u8,
    #[vmstate(unused = 3)]
    pad: (),
    #[vmstate(equal)]
    magic: u16,
    #[vmstate(equal)]
    neg: i32,
    #[vmstate(positive_le)]
    len: i32,
    #[vmstate(timer)]
    t1: Option<u64>,
    #[vmstate(timer)]
    t2: Option<u64>,
    #[vmstate(buffer)]
    raw: [u8; 3],
    #[vmstate(skip)]
    host_only: u64,
    z: u8,
}

fn misc_dest() -> Misc {
    Misc {
        magic: 0xabcd,
        neg: -5,
        len: 100,
        t1: Some(1),
        t2: None,
        host_only: 77,
        ..Default::default()
    }
}

#[test]
fn unused_equal_positive_le_timer_buffer_skip() {
    let v = Misc {
        a: 1,
        pad: (),
        magic: 0xabcd,
        neg: -5,
        len: 42,
        t1: None,
        t2: Some(0x0102_0304_0506_0708),
        raw: [7, 8, 9],
        host_only: 0xdead,
        z: 0xee,
    };
    let wire = cat(&[
        &[1],
        &[0, 0, 0],
        &[0xab, 0xcd],
        &[0xff, 0xff, 0xff, 0xfb],
        &[0, 0, 0, 42],
        &[0xff; 8],
        &[1, 2, 3, 4, 5, 6, 7, 8],
        &[7, 8, 9],
        &[0xee],
    ]);
    assert_eq!(to_bytes(&v).unwrap(), wire);

    // Load into a destination that has the `equal` values and the positive_le limit.
    let mut dest = misc_dest();
    // Unused bytes are skipped whatever they contain.
    let mut garbage = wire.clone();
    garbage[1..4].copy_from_slice(&[0xde, 0xad, 0x01]);
    load_into(&mut dest, &garbage, 1).unwrap();
    assert_eq!(
        dest,
        Misc {
            host_only: 77, // not migrated: the destination's value stays
            ..v
        }
    );
    // positive_le: the limit itself loads (0 <= 100 <= 100), and 0 loads.
    let mut at_limit = wire.clone();
    at_limit[10..14].copy_from_slice(&100i32.to_be_bytes());
    let mut dest = misc_dest();
    load_into(&mut dest, &at_limit, 1).unwrap();
    assert_eq!(dest.len, 100);
    at_limit[10..14].copy_from_slice(&0i32.to_be_bytes());
    let mut dest = misc_dest();
    load_into(&mut dest, &at_limit, 1).unwrap();
    assert_eq!(dest.len, 0);
}

#[test]
fn timer_all_ones_is_disarmed_and_zero_is_armed() {
    #[derive(VmState, Default, Debug, PartialEq)]
    #[vmstate(name = "timer", version = 1)]
    struct T {
        #[vmstate(timer)]
        t: Option<u64>,
    }
    assert_eq!(to_bytes(&T { t: Some(0) }).unwrap(), [0; 8]);
    assert_eq!(to_bytes(&T { t: None }).unwrap(), [0xff; 8]);
    assert_eq!(from_bytes::<T>(&[0; 8], 1).unwrap(), T { t: Some(0) });
    assert_eq!(from_bytes::<T>(&[0xff; 8], 1).unwrap(), T { t: None });
    let almost = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe];
    assert_eq!(
        from_bytes::<T>(&almost, 1).unwrap(),
        T {
            t: Some(u64::MAX - 1)
        }
    );
}

// ---------------------------------------------------------------------------------
// Enums with an integer repr
// ---------------------------------------------------------------------------------

#[derive(VmState, Debug, PartialEq, Clone, Copy, Default)]
#[repr(u8)]
enum Mode8 {
    #[default]
    Off = 0,
    On = 1,
    High = 0x80,
}

#[derive(VmState, Debug, PartialEq, Clone, Copy, Default)]
#[repr(u16)]
enum Mode16 {
    #[default]
    A = 0x0102,
    B = 0xfffe,
}

#[derive(VmState, Debug, PartialEq, Clone, Copy, Default)]
#[repr(i32)]
enum ModeI32 {
    Neg = -2,
    #[default]
    Zero = 0,
    Big = 0x0102_0304,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "enums", version = 1)]
struct Enums {
    m8: Mode8,
    m16: Mode16,
    mi: ModeI32,
    arr: [Mode8; 3],
}

#[test]
fn enums_travel_as_their_discriminant() {
    let v = Enums {
        m8: Mode8::High,
        m16: Mode16::B,
        mi: ModeI32::Neg,
        arr: [Mode8::On, Mode8::Off, Mode8::High],
    };
    let wire = [0x80, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xfe, 1, 0, 0x80];
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<Enums>(&wire, 1).unwrap(), v);
    let v = Enums {
        m8: Mode8::Off,
        m16: Mode16::A,
        mi: ModeI32::Big,
        arr: [Mode8::On; 3],
    };
    let wire = [0x00, 0x01, 0x02, 0x01, 0x02, 0x03, 0x04, 1, 1, 1];
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<Enums>(&wire, 1).unwrap(), v);
}

// ---------------------------------------------------------------------------------
// with_tmp (VMSTATE_WITH_TMP) — test-vmstate.c: test_tmp_struct
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "test/tmp_child")]
struct TmpChild {
    diff: i64,
    /// VMSTATE_STRUCT_POINTER(parent, ..., vmstate_tmp_back_to_parent): the parent's `f`.
    f: u64,
}

impl VmStateTmp<WithTmpTest> for TmpChild {
    fn from_parent(p: &WithTmpTest) -> Result<Self, Error> {
        Ok(TmpChild {
            diff: p.b as i64 - p.a as i64,
            f: p.f,
        })
    }
    fn into_parent(self, p: &mut WithTmpTest) -> Result<(), Error> {
        p.b = (p.a as i64 + self.diff) as u32;
        p.f = self.f;
        Ok(())
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "test/with_tmp", version = 1)]
struct WithTmpTest {
    a: u32,
    #[vmstate(skip)]
    b: u32,
    d: u64,
    #[vmstate(skip)]
    f: u64,
    #[vmstate(with_tmp)]
    tmp: WithTmp<TmpChild>,
}

#[test]
fn with_tmp_matches_qemu() {
    let v = WithTmpTest {
        a: 21,
        b: 42,
        d: 7,
        f: 8,
        tmp: WithTmp::new(),
    };
    let wire = [
        /* a */ 0x00, 0x00, 0x00, 0x15, //
        /* d */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, //
        /* tmp->diff */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x15, //
        /* tmp->f */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08,
    ];
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<WithTmpTest>(&wire, 1).unwrap(), v);
}

// ---------------------------------------------------------------------------------
// validate (VMSTATE_VALIDATE)
// ---------------------------------------------------------------------------------

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "hpet", version = 1)]
struct HpetLike {
    config: u64,
    #[vmstate(validate = HpetLike::num_timers_in_range)]
    num_timers: u8,
    #[vmstate(varray(len = num_timers))]
    timers: [u32; 32],
    #[vmstate(validate = HpetLike::always)]
    check: (),
}

impl HpetLike {
    fn num_timers_in_range(&self, _version_id: u32) -> bool {
        (3..=32).contains(&self.num_timers)
    }
    fn always(&self, _version_id: u32) -> bool {
        true
    }
}

#[test]
fn validate_writes_nothing_and_runs_after_its_field() {
    let mut v = HpetLike {
        config: 1,
        num_timers: 3,
        ..Default::default()
    };
    v.timers[..3].copy_from_slice(&[10, 11, 12]);
    let wire = cat(&[
        &[0, 0, 0, 0, 0, 0, 0, 1],
        &[3],
        &[0, 0, 0, 10, 0, 0, 0, 11, 0, 0, 0, 12],
    ]);
    assert_eq!(to_bytes(&v).unwrap(), wire);
    assert_eq!(from_bytes::<HpetLike>(&wire, 1).unwrap(), v);
}

// ---------------------------------------------------------------------------------
// Hook order
// ---------------------------------------------------------------------------------

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(s: impl Into<String>) {
    LOG.with(|l| l.borrow_mut().push(s.into()));
}

fn take_log() -> Vec<String> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(
    name = "hooked/sub",
    version = 1,
    pre_save = HookSub::pre_save,
    post_save = HookSub::post_save,
    pre_load = HookSub::pre_load,
    post_load = HookSub::post_load
)]
struct HookSub {
    v: u8,
}

impl HookSub {
    fn pre_save(&self) -> Result<(), Error> {
        log("sub.pre_save");
        Ok(())
    }
    fn post_save(&self) -> Result<(), Error> {
        log("sub.post_save");
        Ok(())
    }
    fn pre_load(&mut self) -> Result<(), Error> {
        log("sub.pre_load");
        Ok(())
    }
    fn post_load(&mut self, version_id: u32) -> Result<(), Error> {
        log(format!("sub.post_load v{version_id}"));
        Ok(())
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "hooked/tmp")]
struct HookTmp {
    t: u8,
}

impl VmStateTmp<Hooked> for HookTmp {
    fn from_parent(p: &Hooked) -> Result<Self, Error> {
        log("tmp.from_parent");
        Ok(HookTmp { t: p.b })
    }
    fn into_parent(self, _p: &mut Hooked) -> Result<(), Error> {
        log("tmp.into_parent");
        Ok(())
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(
    name = "hooked",
    version = 2,
    minimum_version = 1,
    pre_save = Hooked::pre_save,
    post_save = Hooked::post_save,
    pre_load = Hooked::pre_load,
    post_load = Hooked::post_load
)]
struct Hooked {
    #[vmstate(test = Hooked::test_a)]
    a: u8,
    #[vmstate(validate = Hooked::validate_b)]
    b: u8,
    #[vmstate(with_tmp)]
    tmp: WithTmp<HookTmp>,
    #[vmstate(subsection(needed = Hooked::sub_needed))]
    sub: HookSub,
}

impl Hooked {
    fn pre_save(&self) -> Result<(), Error> {
        log("pre_save");
        Ok(())
    }
    fn post_save(&self) -> Result<(), Error> {
        log("post_save");
        Ok(())
    }
    fn pre_load(&mut self) -> Result<(), Error> {
        log("pre_load");
        Ok(())
    }
    fn post_load(&mut self, version_id: u32) -> Result<(), Error> {
        log(format!("post_load v{version_id} sub={}", self.sub.v));
        Ok(())
    }
    fn test_a(&self, version_id: u32) -> bool {
        log(format!("test a v{version_id}"));
        true
    }
    fn validate_b(&self, _version_id: u32) -> bool {
        log(format!("validate b={}", self.b));
        true
    }
    fn sub_needed(&self) -> bool {
        log("needed");
        self.sub.v != 0
    }
}

#[test]
fn save_hook_order() {
    let v = Hooked {
        a: 1,
        b: 2,
        tmp: WithTmp::new(),
        sub: HookSub { v: 3 },
    };
    take_log();
    let bytes = to_bytes(&v).unwrap();
    assert_eq!(
        take_log(),
        [
            "pre_save",
            "test a v2",
            "tmp.from_parent",
            "needed",
            "sub.pre_save",
            "sub.post_save",
            "post_save"
        ]
    );
    assert_eq!(
        bytes,
        cat(&[&[1, 2, 2], &sub_header("hooked/sub", 1), &[3]])
    );
}

#[test]
fn load_hook_order() {
    let wire = cat(&[&[1, 2, 2], &sub_header("hooked/sub", 1), &[3]]);
    take_log();
    let back: Hooked = from_bytes(&wire, 1).unwrap();
    assert_eq!(back.sub.v, 3);
    // `needed` is never called on load; the subsection's hooks run inside it, before
    // the parent's post_load, which sees the subsection's data.
    assert_eq!(
        take_log(),
        [
            "pre_load",
            "test a v1",
            "validate b=2",
            "tmp.from_parent",
            "tmp.into_parent",
            "sub.pre_load",
            "sub.post_load v1",
            "post_load v1 sub=3"
        ]
    );
    // Without the subsection, its hooks do not run at all.
    let _: Hooked = from_bytes(&[1, 2, 2], 2).unwrap();
    assert_eq!(
        take_log(),
        [
            "pre_load",
            "test a v2",
            "validate b=2",
            "tmp.from_parent",
            "tmp.into_parent",
            "post_load v2 sub=0"
        ]
    );
    // Version checks come before pre_load.
    assert!(from_bytes::<Hooked>(&[1, 2, 2], 3).is_err());
    assert!(take_log().is_empty());
}

#[test]
fn post_save_runs_even_when_save_fails() {
    let v = Hooked {
        a: 1,
        b: 2,
        tmp: WithTmp::new(),
        sub: HookSub { v: 3 },
    };
    take_log();
    let mut out = [0u8; 1];
    let mut w = Writer::new(&mut out[..]);
    let e = v.save(&mut w).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::OutputFull { .. }), "{e}");
    assert_eq!(e.path_string(), "hooked.b");
    assert_eq!(take_log(), ["pre_save", "test a v2", "post_save"]);
    // A failure inside the subsection runs both post_saves.
    let mut out = [0u8; 5];
    let mut w = Writer::new(&mut out[..]);
    let e = v.save(&mut w).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::OutputFull { .. }), "{e}");
    assert_eq!(
        take_log(),
        [
            "pre_save",
            "test a v2",
            "tmp.from_parent",
            "needed",
            "post_save"
        ]
    );
    let need = 3 + sub_header("hooked/sub", 1).len();
    let mut out = vec![0u8; need];
    let mut w = Writer::new(&mut out[..]);
    let e = v.save(&mut w).unwrap_err();
    assert_eq!(e.path_string(), "hooked/sub.v");
    assert_eq!(e.offset(), Some(need as u64));
    assert_eq!(
        take_log(),
        [
            "pre_save",
            "test a v2",
            "tmp.from_parent",
            "needed",
            "sub.pre_save",
            "sub.post_save",
            "post_save"
        ]
    );
}

// ---------------------------------------------------------------------------------
// The static description
// ---------------------------------------------------------------------------------

#[derive(VmState, Default)]
#[vmstate(name = "desc/sub", version = 4, minimum_version = 2)]
struct DescSub {
    s: u32,
}

/// Only its description is inspected.
#[allow(dead_code)]
#[derive(VmState, Default)]
#[vmstate(
    name = "desc",
    version = 3,
    minimum_version = 2,
    priority = Iommu,
    pre_save = Desc::hook,
    post_load = Desc::post_load
)]
struct Desc {
    a: u8,
    #[vmstate(since = 2)]
    b: i32,
    #[vmstate(equal)]
    eq8: u8,
    #[vmstate(equal)]
    eq16: u16,
    #[vmstate(equal)]
    eq32: u32,
    #[vmstate(equal)]
    eqi32: i32,
    #[vmstate(equal)]
    eq64: u64,
    #[vmstate(positive_le)]
    le: i32,
    #[vmstate(timer)]
    t: Option<u64>,
    #[vmstate(buffer)]
    buf: [u8; 6],
    arr: [u16; 4],
    grid: [[u8; 3]; 2],
    n: u32,
    #[vmstate(varray(len = n), max = 16)]
    v: Vec<u32>,
    #[vmstate(vbuffer(len = n), max = 64)]
    vb: Vec<u8>,
    nbits: i32,
    #[vmstate(bitmap(len = nbits), max = 128)]
    bm: Vec<u64>,
    #[vmstate(list, max = 4)]
    l: Vec<QElem>,
    #[vmstate(unused = 5)]
    pad: (),
    inner: Triv,
    nested: Outer,
    #[vmstate(with_tmp)]
    tmp: WithTmp<DescTmp>,
    #[vmstate(skip)]
    host: u64,
    #[vmstate(test = Desc::test)]
    tf: u8,
    #[vmstate(validate = Desc::check)]
    vf: bool,
    e: Mode16,
    ptrs: [Option<Box<u32>>; 2],
    boxed: Box<u64>,
    #[vmstate(subsection(needed = Desc::needed))]
    sub: DescSub,
}

#[derive(VmState, Default)]
#[vmstate(name = "desc/tmp")]
struct DescTmp {
    x: u16,
    y: u8,
}

impl VmStateTmp<Desc> for DescTmp {
    fn from_parent(_: &Desc) -> Result<Self, Error> {
        Ok(DescTmp::default())
    }
    fn into_parent(self, _: &mut Desc) -> Result<(), Error> {
        Ok(())
    }
}

impl Desc {
    fn hook(&self) -> Result<(), Error> {
        Ok(())
    }
    fn post_load(&mut self, _: u32) -> Result<(), Error> {
        Ok(())
    }
    fn test(&self, _: u32) -> bool {
        true
    }
    fn check(&self, _: u32) -> bool {
        true
    }
    fn needed(&self) -> bool {
        false
    }
}

#[test]
fn description_header() {
    let d = Desc::DESCRIPTION;
    assert_eq!(d.name, "desc");
    assert_eq!(d.version_id, 3);
    assert_eq!(d.minimum_version_id, 2);
    assert_eq!(d.priority, MigrationPriority::Iommu);
    assert!(d.hooks.pre_save && d.hooks.post_load);
    assert!(!d.hooks.post_save && !d.hooks.pre_load);
    assert_eq!(d.subsections.len(), 1);
    assert_eq!(d.subsections[0].field, "sub");
    assert_eq!(d.subsections[0].description.name, "desc/sub");
    assert_eq!(d.subsections[0].description.version_id, 4);
    assert_eq!(d.subsections[0].description.minimum_version_id, 2);
    // A subsection field is not a body field.
    assert!(d.field("sub").is_none());
    // Defaults: version 0, minimum = version, priority Default, no hooks.
    assert_eq!(Triv::DESCRIPTION.priority, MigrationPriority::Default);
    assert_eq!(Versioned::DESCRIPTION.minimum_version_id, 1);
    assert_eq!(Pckbd::DESCRIPTION.minimum_version_id, 3);
    assert_eq!(
        Pckbd::DESCRIPTION
            .subsections
            .iter()
            .map(|s| (s.field, s.description.name))
            .collect::<Vec<_>>(),
        [
            ("outport", "pckbd_outport"),
            ("extended", "pckbd/extended_state")
        ]
    );
}

#[test]
fn description_fields() {
    let d = Desc::DESCRIPTION;
    let names: Vec<_> = d.fields.iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "a", "b", "eq8", "eq16", "eq32", "eqi32", "eq64", "le", "t", "buf", "arr", "grid", "n",
            "v", "vb", "nbits", "bm", "l", "pad", "inner", "nested", "tmp", "host", "tf", "vf",
            "e", "ptrs", "boxed"
        ]
    );
    // (name, info, layout, fixed wire size, since)
    let expect: &[(&str, &str, FieldLayout, Option<usize>, u32)] = &[
        ("a", "uint8", FieldLayout::Single, Some(1), 0),
        ("b", "int32", FieldLayout::Single, Some(4), 2),
        ("eq8", "uint8 equal", FieldLayout::Single, Some(1), 0),
        ("eq16", "uint16 equal", FieldLayout::Single, Some(2), 0),
        ("eq32", "uint32 equal", FieldLayout::Single, Some(4), 0),
        ("eqi32", "int32 equal", FieldLayout::Single, Some(4), 0),
        ("eq64", "int64 equal", FieldLayout::Single, Some(8), 0),
        ("le", "int32 le", FieldLayout::Single, Some(4), 0),
        ("t", "timer", FieldLayout::Single, Some(8), 0),
        ("buf", "buffer", FieldLayout::Single, Some(6), 0),
        ("arr", "uint16", FieldLayout::Array { len: 4 }, Some(8), 0),
        ("grid", "uint8", FieldLayout::Array { len: 6 }, Some(6), 0),
        ("n", "uint32", FieldLayout::Single, Some(4), 0),
        (
            "v",
            "uint32",
            FieldLayout::VarArray {
                count_field: "n",
                max: 16,
            },
            None,
            0,
        ),
        (
            "vb",
            "buffer",
            FieldLayout::VarArray {
                count_field: "n",
                max: 64,
            },
            None,
            0,
        ),
        ("nbits", "int32", FieldLayout::Single, Some(4), 0),
        (
            "bm",
            "bitmap",
            FieldLayout::Bitmap {
                bits_field: "nbits",
                max_bits: 128,
            },
            None,
            0,
        ),
        ("l", "qtailq", FieldLayout::List { max: 4 }, None, 0),
        (
            "pad",
            "unused_buffer",
            FieldLayout::Unused { size: 5 },
            Some(5),
            0,
        ),
        ("inner", "struct", FieldLayout::Single, Some(4), 0),
        // Outer has a nested subsection (through Inner): not fixed-size.
        ("nested", "struct", FieldLayout::Single, None, 0),
        ("tmp", "tmp", FieldLayout::Tmp, Some(3), 0),
        ("host", "skipped", FieldLayout::Skipped, Some(0), 0),
        ("tf", "uint8", FieldLayout::Single, Some(1), 0),
        ("vf", "bool", FieldLayout::Single, Some(1), 0),
        ("e", "uint16", FieldLayout::Single, Some(2), 0),
        // NULL pointers are one marker byte, others the element: not fixed-size.
        ("ptrs", "uint32", FieldLayout::Array { len: 2 }, None, 0),
        ("boxed", "uint64", FieldLayout::Single, Some(8), 0),
    ];
    assert_eq!(d.fields.len(), expect.len());
    for (f, (name, info, layout, size, since)) in d.fields.iter().zip(expect) {
        assert_eq!(f.name, *name);
        assert_eq!(f.ty.info, *info, "info of {name}");
        assert_eq!(f.layout, *layout, "layout of {name}");
        assert_eq!(f.fixed_wire_size(), *size, "size of {name}");
        assert_eq!(f.version_id, *since, "since of {name}");
        assert_eq!(f.is_on_wire(), *name != "host", "on wire: {name}");
        assert_eq!(f.has_test, *name == "tf", "test: {name}");
        assert_eq!(f.has_validate, *name == "vf", "validate: {name}");
    }
    // Nested descriptions are reachable.
    assert_eq!(
        d.field("inner").unwrap().ty.nested.unwrap().name,
        "test/tst"
    );
    assert_eq!(d.field("nested").unwrap().ty.nested.unwrap().name, "outer");
    assert_eq!(
        d.field("l").unwrap().ty.nested.unwrap().name,
        "test/queue-elem"
    );
    assert_eq!(d.field("tmp").unwrap().ty.nested.unwrap().name, "desc/tmp");
    assert!(d.field("a").unwrap().ty.nested.is_none());
    // Variable parts make the body variable.
    assert_eq!(d.fixed_body_size(), None);
    assert!(d.layout_table().contains("since 2"));
}

#[test]
fn description_of_varrays_and_hooks() {
    let d = VarFixed::DESCRIPTION;
    let layout = |name: &str| d.field(name).unwrap().layout;
    // Without `max`, a varray over a fixed array is bounded by the array length.
    assert_eq!(
        layout("a8"),
        FieldLayout::VarArray {
            count_field: "n8",
            max: 4
        }
    );
    assert_eq!(
        layout("a32"),
        FieldLayout::VarArray {
            count_field: "n32",
            max: 2
        }
    );
    assert_eq!(d.field("ai").unwrap().ty.info, "struct");
    assert_eq!(d.field("ai").unwrap().ty.nested.unwrap().name, "test/tst");
    assert_eq!(d.field("a8").unwrap().fixed_wire_size(), None);
    assert_eq!(
        VBuffers::DESCRIPTION.field("fixed").unwrap().layout,
        FieldLayout::VarArray {
            count_field: "size",
            max: 8
        }
    );
    let h = HookSub::DESCRIPTION.hooks;
    assert!(h.pre_save && h.post_save && h.pre_load && h.post_load);
    assert_eq!(Triv::DESCRIPTION.hooks, vmstate_runtime::Hooks::default());
}

#[test]
fn description_fixed_body_sizes() {
    assert_eq!(
        SimplePrimitive::DESCRIPTION.fixed_body_size(),
        Some(WIRE_SIMPLE_PRIMITIVE.len())
    );
    assert_eq!(Triv::DESCRIPTION.fixed_body_size(), Some(4));
    assert_eq!(StructArray::DESCRIPTION.fixed_body_size(), Some(16));
    assert_eq!(Empty::DESCRIPTION.fixed_body_size(), Some(0));
    assert_eq!(Misc::DESCRIPTION.fixed_body_size(), Some(34));
    assert_eq!(to_bytes(&Misc::default()).unwrap().len(), 34);
    // with_tmp: the temporary's fields are on the wire.
    assert_eq!(WithTmpTest::DESCRIPTION.fixed_body_size(), Some(28));
    // Tests, subsections and pointer arrays make a body variable.
    assert_eq!(Skipping::DESCRIPTION.fixed_body_size(), None);
    assert_eq!(Pckbd::DESCRIPTION.fixed_body_size(), None);
    assert_eq!(ArrPtr::DESCRIPTION.fixed_body_size(), None);
    assert_eq!(Boxed::DESCRIPTION.fixed_body_size(), Some(12));
    assert_eq!(Enums::DESCRIPTION.fixed_body_size(), Some(10));
}
