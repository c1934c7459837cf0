//! Unused padding, equal, positive_le, timer, buffer, skip

use super::*;

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "misc", version = 1)]
pub(super) struct Misc {
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
