//! Nested structs (VMSTATE_STRUCT), `Box<T>` (a pointer to a value) and
//! `[Option<Box<T>>; N]` (an array of pointers, None written as 0x30), and a
//! struct without migrated fields.
use vmstate_runtime::{from_bytes, to_bytes, VmState};

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "ide_drive", version = 3)]
struct IdeDrive {
    status: u8,
    #[vmstate(since = 3)]
    nsector: u32,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "stub")]
struct Stub {}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "ide_bus", version = 1)]
struct IdeBus {
    cmd: u8,
    drives: [IdeDrive; 2],
    active: Box<IdeDrive>,
    slots: [Option<Box<u16>>; 3],
    nothing: Stub,
}

fn main() {
    let bus = IdeBus {
        cmd: 0x20,
        drives: [
            IdeDrive {
                status: 0x50,
                nsector: 1,
            },
            IdeDrive::default(),
        ],
        active: Box::new(IdeDrive {
            status: 0x58,
            nsector: 8,
        }),
        slots: [Some(Box::new(0x1234)), None, Some(Box::new(5))],
        nothing: Stub {},
    };
    let bytes = to_bytes(&bus).unwrap();
    #[rustfmt::skip]
    assert_eq!(bytes, [
        0x20,
        0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0,
        0x58, 0, 0, 0, 8,
        0x12, 0x34, 0x30, 0, 5,
    ]);

    // The destination's own slots decide what to expect, as in QEMU.
    let mut back = IdeBus {
        slots: [Some(Box::new(0)), None, Some(Box::new(0))],
        ..Default::default()
    };
    let mut r = vmstate_runtime::wire::Reader::new(&bytes[..]);
    back.load(&mut r, 1).unwrap();
    assert_eq!(back, bus);
    assert_eq!(r.remaining(), 0);

    assert!(from_bytes::<Stub>(&[], 0).is_ok());
    let nested = IdeBus::DESCRIPTION
        .field("drives")
        .unwrap()
        .ty
        .nested
        .unwrap();
    assert_eq!(nested.name, "ide_drive");
}
