//! Enums with an integer `#[repr]` travel as their discriminant.
use vmstate_runtime::{from_bytes, to_bytes, ErrorKind, VmState};

#[derive(VmState, Default, Debug, Clone, Copy, PartialEq)]
#[repr(u8)]
enum LinkState {
    #[default]
    Down = 0,
    Up = 1,
    Testing = 7,
}

#[derive(VmState, Default, Debug, Clone, Copy, PartialEq)]
#[repr(i16)]
enum Mode {
    Reverse = -1,
    #[default]
    Stop = 0,
    Forward = 1,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "phy", version = 1)]
struct Phy {
    link: LinkState,
    modes: [Mode; 2],
}

fn main() {
    let phy = Phy {
        link: LinkState::Testing,
        modes: [Mode::Reverse, Mode::Forward],
    };
    let bytes = to_bytes(&phy).unwrap();
    assert_eq!(bytes, [7, 0xff, 0xff, 0, 1]);
    assert_eq!(from_bytes::<Phy>(&bytes, 1).unwrap(), phy);

    let e = from_bytes::<Phy>(&[2, 0, 0, 0, 0], 1).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::InvalidEnum {
            enum_name: "LinkState",
            value: 2
        }
    ));
    assert_eq!(Phy::DESCRIPTION.field("link").unwrap().ty.info, "uint8");
    assert_eq!(Phy::DESCRIPTION.field("modes").unwrap().ty.info, "int16");
}
