//! Arrays (test-vmstate.c: test_simple_array; VMS_ARRAY)

use super::*;

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "simple/array", version = 1)]
struct SimpleArray {
    u16_1: [u16; 3],
}

#[test]
fn simple_array_matches_qemu() {
    let v = SimpleArray { u16_1: [1, 2, 3] };
    let wire = [0x00, 0x01, 0x00, 0x02, 0x00, 0x03];
    assert_wire(&v, &wire, 1);
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
    assert_wire(&v, &expected, 1);
}

/// test-vmstate.c: TestStructTriv { int32_t i; } and vmsd_tst ("test/tst").
#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "test/tst", version = 1)]
pub(super) struct Triv {
    pub(super) i: i32,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "test/struct_arr", version = 1)]
pub(super) struct StructArray {
    ar: [Triv; 4],
}

#[test]
fn array_of_structs_is_bodies_back_to_back() {
    // VMSTATE_STRUCT_ARRAY: like test_arr_ptr_str_no0_save's wire, without pointers.
    let v = StructArray {
        ar: [Triv { i: 0 }, Triv { i: 1 }, Triv { i: 2 }, Triv { i: 3 }],
    };
    let wire = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    assert_wire(&v, &wire, 1);
}
