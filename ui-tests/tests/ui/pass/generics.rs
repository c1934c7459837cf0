//! A generic struct: the bounds it needs are written by the user, and the derive
//! keeps them (and its where clause) on the impls. Also a subsection whose type
//! depends on the struct's type parameter.
use vmstate_runtime::{from_bytes, to_bytes, VmState, VmStateField};

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "regbank", version = 1)]
struct RegBank<T: VmStateField + Default, const N: usize>
where
    [T; N]: Default,
{
    ctrl: u8,
    regs: [T; N],
    count: u8,
    #[vmstate(varray(len = count), max = 8)]
    fifo: Vec<T>,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "soc", version = 1)]
struct Soc {
    bank16: RegBank<u16, 2>,
    bank64: RegBank<u64, 1>,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "timer/extra")]
struct Extra<T: VmStateField + Default> {
    reload: T,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "timer", version = 1)]
struct Timer<T: VmStateField + Default> {
    count: T,
    #[vmstate(subsection)]
    extra: Extra<T>,
}

fn main() {
    let soc = Soc {
        bank16: RegBank {
            ctrl: 1,
            regs: [2, 3],
            count: 1,
            fifo: vec![4],
        },
        bank64: RegBank {
            ctrl: 5,
            regs: [6],
            count: 0,
            fifo: vec![],
        },
    };
    let bytes = to_bytes(&soc).unwrap();
    #[rustfmt::skip]
    assert_eq!(bytes, [
        1, 0, 2, 0, 3, 1, 0, 4,
        5, 0, 0, 0, 0, 0, 0, 0, 6, 0,
    ]);
    assert_eq!(from_bytes::<Soc>(&bytes, 1).unwrap(), soc);
    let timer = Timer {
        count: 7u32,
        extra: Extra { reload: 9 },
    };
    let bytes = to_bytes(&timer).unwrap();
    assert_eq!(&bytes[..4], [0, 0, 0, 7]);
    assert_eq!(from_bytes::<Timer<u32>>(&bytes, 1).unwrap(), timer);
    assert_eq!(
        RegBank::<u32, 4>::DESCRIPTION
            .field("regs")
            .unwrap()
            .ty
            .array_len,
        Some(4)
    );
}
