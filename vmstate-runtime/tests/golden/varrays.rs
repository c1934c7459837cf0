//! Variable arrays (VMS_VARRAY_UINT8/UINT16/UINT32/INT32) and buffers

use super::arrays::Triv;
use super::*;

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
    assert_wire(&v, &wire, 1);
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
pub(super) struct VarFixed {
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
pub(super) struct VBuffers {
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
