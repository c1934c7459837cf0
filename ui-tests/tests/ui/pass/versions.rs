//! `version`, `minimum_version`, `since` and `test`: which fields are on the wire
//! for which stream version.
use vmstate_runtime::{from_bytes, to_bytes, ErrorKind, VmState};

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "serial", version = 3, minimum_version = 2)]
struct Serial {
    divider: u16,
    lcr: u8,
    #[vmstate(since = 3)]
    fcr: u8,
    #[vmstate(test = has_poll)]
    poll_msl: i32,
}

/// Present on the wire from version 3, and only when the poll is armed.
fn has_poll(s: &Serial, version_id: u32) -> bool {
    version_id >= 3 && s.poll_msl >= 0
}

fn main() {
    let s = Serial {
        divider: 0x0c,
        lcr: 3,
        fcr: 0xc1,
        poll_msl: 7,
    };
    let bytes = to_bytes(&s).unwrap();
    assert_eq!(bytes, [0, 0x0c, 3, 0xc1, 0, 0, 0, 7]);
    assert_eq!(from_bytes::<Serial>(&bytes, 3).unwrap(), s);

    // A version-2 stream has neither `fcr` nor `poll_msl`.
    let old = from_bytes::<Serial>(&[0, 0x0c, 3], 2).unwrap();
    assert_eq!(
        old,
        Serial {
            divider: 0x0c,
            lcr: 3,
            ..Default::default()
        }
    );

    // Outside minimum_version..=version.
    let e = from_bytes::<Serial>(&[0, 0x0c, 3], 1).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::VersionTooOld { version: 1, min: 2 }
    ));
    let e = from_bytes::<Serial>(&bytes, 4).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::VersionTooNew { version: 4, max: 3 }
    ));

    let d = Serial::DESCRIPTION;
    assert_eq!(
        (d.name, d.version_id, d.minimum_version_id),
        ("serial", 3, 2)
    );
    assert_eq!(d.field("fcr").unwrap().version_id, 3);
    assert!(d.field("poll_msl").unwrap().has_test);
}
