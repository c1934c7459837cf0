//! Tests (`test`, QEMU _TEST) — test-vmstate.c: vmstate_skipping

use super::*;

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "test/skip", version = 2, minimum_version = 1)]
pub(super) struct Skipping {
    #[vmstate(skip)]
    skip_c_e: bool,
    a: u32,
    b: u32,
    #[vmstate(test = Skipping::test_skip)]
    c: u32,
    d: u64,
    #[vmstate(test = Skipping::test_skip)]
    e: u32,
    #[vmstate(since = 2)]
    f: u64,
}

impl Skipping {
    fn test_skip(&self, _version_id: u32) -> bool {
        !self.skip_c_e
    }
}

fn skipping_obj(skip_c_e: bool) -> Skipping {
    Skipping {
        skip_c_e,
        a: 1,
        b: 2,
        c: 3,
        d: 4,
        e: 5,
        f: 6,
    }
}

#[test]
fn test_field_present_when_test_true() {
    // test_save_noskip / test_load_noskip
    let wire = [
        /* a */ 0x00, 0x00, 0x00, 0x01, //
        /* b */ 0x00, 0x00, 0x00, 0x02, //
        /* c */ 0x00, 0x00, 0x00, 0x03, //
        /* d */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, //
        /* e */ 0x00, 0x00, 0x00, 0x05, //
        /* f */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
    ];
    assert_eq!(to_bytes(&skipping_obj(false)).unwrap(), wire);
    let mut obj = Skipping::default();
    load_into(&mut obj, &wire, 2).unwrap();
    assert_eq!(obj, skipping_obj(false));
}

#[test]
fn test_field_absent_when_test_false() {
    // test_save_skip / test_load_skip
    let wire = [
        /* a */ 0x00, 0x00, 0x00, 0x01, //
        /* b */ 0x00, 0x00, 0x00, 0x02, //
        /* d */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, //
        /* f */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
    ];
    assert_eq!(to_bytes(&skipping_obj(true)).unwrap(), wire);
    // The destination decides the test too (QEMU: "must give the same answer on
    // both ends"); c and e keep the destination's values.
    let mut obj = Skipping {
        skip_c_e: true,
        c: 300,
        e: 500,
        ..Default::default()
    };
    load_into(&mut obj, &wire, 2).unwrap();
    assert_eq!(
        obj,
        Skipping {
            skip_c_e: true,
            a: 1,
            b: 2,
            c: 300,
            d: 4,
            e: 500,
            f: 6
        }
    );
    // A v1 stream without c, e and f.
    let mut obj = Skipping {
        skip_c_e: true,
        f: 600,
        ..Default::default()
    };
    load_into(&mut obj, &wire[..16], 1).unwrap();
    assert_eq!((obj.a, obj.b, obj.d, obj.f), (1, 2, 4, 600));
}

/// A test sees the version being loaded (and the current version on save) and
/// overrides `since`: QEMU ignores field->version_id when field_exists is set.
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "test/version_test", version = 3, minimum_version = 1)]
struct VersionTest {
    a: u8,
    #[vmstate(test = VersionTest::odd_version)]
    odd: u8,
}

impl VersionTest {
    fn odd_version(&self, version_id: u32) -> bool {
        version_id % 2 == 1
    }
}

#[test]
fn test_receives_the_stream_version() {
    // Save at version 3: odd → present.
    assert_eq!(to_bytes(&VersionTest { a: 1, odd: 2 }).unwrap(), [1, 2]);
    assert_eq!(
        from_bytes::<VersionTest>(&[1, 2], 1).unwrap(),
        VersionTest { a: 1, odd: 2 }
    );
    assert_eq!(
        from_bytes::<VersionTest>(&[1], 2).unwrap(),
        VersionTest { a: 1, odd: 0 }
    );
}
