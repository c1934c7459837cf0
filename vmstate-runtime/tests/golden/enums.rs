//! Enums with an integer repr

use super::*;

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
pub(super) enum Mode16 {
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
pub(super) struct Enums {
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
    assert_wire(&v, &wire, 1);
    let v = Enums {
        m8: Mode8::Off,
        m16: Mode16::A,
        mi: ModeI32::Big,
        arr: [Mode8::On; 3],
    };
    let wire = [0x00, 0x01, 0x02, 0x01, 0x02, 0x03, 0x04, 1, 1, 1];
    assert_wire(&v, &wire, 1);
}
