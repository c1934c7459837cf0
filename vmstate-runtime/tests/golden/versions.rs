//! Versions (`since`, QEMU _V) — test-vmstate.c: vmstate_versioned

use super::*;

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "test/versioned", version = 2, minimum_version = 1)]
pub(super) struct Versioned {
    a: u32,
    /// Versioned field in the middle, so bugs are caught more easily.
    #[vmstate(since = 2)]
    b: u32,
    c: u32,
    d: u64,
    #[vmstate(since = 2)]
    e: u32,
    #[vmstate(since = 2)]
    f: u64,
}

#[test]
fn versioned_load_v1_keeps_destination_values_of_newer_fields() {
    // test_load_v1
    let wire = [
        /* a */ 0x00, 0x00, 0x00, 0x0a, //
        /* c */ 0x00, 0x00, 0x00, 0x1e, //
        /* d */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28,
    ];
    let mut obj = Versioned {
        b: 200,
        e: 500,
        f: 600,
        ..Default::default()
    };
    load_into(&mut obj, &wire, 1).unwrap();
    assert_eq!(
        obj,
        Versioned {
            a: 10,
            b: 200,
            c: 30,
            d: 40,
            e: 500,
            f: 600
        }
    );
    // Into a fresh value, the fields absent from a v1 stream are the defaults.
    assert_eq!(
        from_bytes::<Versioned>(&wire, 1).unwrap(),
        Versioned {
            a: 10,
            c: 30,
            d: 40,
            ..Default::default()
        }
    );
    // The same bytes are too short for a v2 stream.
    assert!(matches!(
        from_bytes::<Versioned>(&wire, 2).unwrap_err().kind(),
        ErrorKind::Truncated { .. }
    ));
}

#[test]
fn versioned_load_and_save_v2() {
    // test_load_v2
    let wire = [
        /* a */ 0x00, 0x00, 0x00, 0x0a, //
        /* b */ 0x00, 0x00, 0x00, 0x14, //
        /* c */ 0x00, 0x00, 0x00, 0x1e, //
        /* d */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28, //
        /* e */ 0x00, 0x00, 0x00, 0x32, //
        /* f */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3c,
    ];
    let v = Versioned {
        a: 10,
        b: 20,
        c: 30,
        d: 40,
        e: 50,
        f: 60,
    };
    let mut obj = Versioned::default();
    load_into(&mut obj, &wire, 2).unwrap();
    assert_eq!(obj, v);
    // Save always writes the current version: every `since` field is present.
    assert_eq!(to_bytes(&v).unwrap(), wire);
}
