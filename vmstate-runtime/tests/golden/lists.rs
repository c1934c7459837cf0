//! Lists (QTAILQ_V / QLIST_V) — test-vmstate.c: test_save_q / test_load_q

use super::*;

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "test/queue-elem", version = 1)]
pub(super) struct QElem {
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
