//! Structs written by a `macro_rules!` macro: the derive's generated code must
//! resolve `self` and its locals even though the field types come from the caller.
use vmstate_runtime::{from_bytes, to_bytes, VmState};

fn always(_: &Bank32, _: u32) -> bool {
    true
}

fn valid(b: &Bank32, _: u32) -> bool {
    b.count <= 4
}

macro_rules! reg_bank {
    ($name:ident, $vmsd:literal, $reg:ident, $valid:ident, $always:ident) => {
        #[derive(VmState, Default, Debug, PartialEq)]
        #[vmstate(name = $vmsd, version = 1)]
        struct $name {
            count: u8,
            #[vmstate(varray(len = count), max = 4, validate = $valid)]
            regs: Vec<$reg>,
            #[vmstate(test = $always)]
            ctrl: $reg,
        }
    };
}

reg_bank!(Bank32, "bank32", u32, valid, always);

fn main() {
    let b = Bank32 {
        count: 2,
        regs: vec![7, 8],
        ctrl: 9,
    };
    let bytes = to_bytes(&b).unwrap();
    assert_eq!(bytes, [2, 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0, 9]);
    assert_eq!(from_bytes::<Bank32>(&bytes, 1).unwrap(), b);
}
