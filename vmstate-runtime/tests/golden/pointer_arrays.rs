//! Arrays of pointers (VMS_ARRAY_OF_POINTER) with the 0x30 null marker

use super::arrays::Triv;
use super::*;

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "test/arr_ptr", version = 1)]
pub(super) struct ArrPtr {
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
