//! Subsections

use super::*;

#[derive(VmState, Debug, PartialEq, Clone)]
#[vmstate(name = "pckbd_outport", version = 1)]
struct Outport {
    outport: u8,
}

impl Default for Outport {
    fn default() -> Self {
        Outport { outport: 0xcf }
    }
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "pckbd/extended_state", version = 1)]
struct Extended {
    mask: u8,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "pckbd/extended_state/deep", version = 2, minimum_version = 1)]
struct Deep {
    d: u8,
    #[vmstate(since = 2)]
    d2: u8,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "pckbd/extended_state", version = 1)]
struct ExtendedWithDeep {
    mask: u8,
    #[vmstate(subsection())]
    deep: Deep,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(
    name = "pckbd",
    version = 3,
    minimum_version = 3,
    pre_load = Pckbd::pre_load,
    post_load = Pckbd::post_load
)]
pub(super) struct Pckbd {
    write_cmd: u8,
    status: u8,
    mode: u8,
    pending: u8,
    #[vmstate(subsection(needed = Pckbd::outport_needed))]
    outport: Outport,
    #[vmstate(subsection(needed = Pckbd::extended_needed))]
    extended: Extended,
    /// Set by `post_load` when the outport subsection did not arrive (i8042 pattern).
    #[vmstate(skip)]
    outport_present: bool,
}

impl Pckbd {
    fn outport_needed(&self) -> bool {
        self.outport.outport != 0xcf
    }
    fn extended_needed(&self) -> bool {
        self.extended.mask != 0
    }
    fn pre_load(&mut self) -> Result<(), Error> {
        // QEMU's i8042: defaults for state that only travels in optional subsections.
        self.outport = Outport { outport: 0xcf };
        self.extended = Extended { mask: 0 };
        self.outport_present = false;
        Ok(())
    }
    fn post_load(&mut self, _version_id: u32) -> Result<(), Error> {
        self.outport_present = self.outport.outport != 0xcf;
        Ok(())
    }
}

fn pckbd_base() -> Pckbd {
    Pckbd {
        write_cmd: 0x60,
        status: 0x1c,
        mode: 0x47,
        pending: 0,
        ..Pckbd::default()
    }
    .with_pre_load_defaults()
}

impl Pckbd {
    fn with_pre_load_defaults(mut self) -> Self {
        self.outport = Outport { outport: 0xcf };
        self.extended = Extended { mask: 0 };
        self
    }
}

const PCKBD_FIELDS: &[u8] = &[0x60, 0x1c, 0x47, 0x00];

#[test]
fn subsection_not_needed_is_not_written() {
    let v = pckbd_base();
    assert_eq!(to_bytes(&v).unwrap(), PCKBD_FIELDS);
    // Absent subsections keep the pre_load defaults, whatever the destination held.
    let mut dest = Pckbd {
        outport: Outport { outport: 0x11 },
        extended: Extended { mask: 0x22 },
        outport_present: true,
        ..Pckbd::default()
    };
    load_into(&mut dest, PCKBD_FIELDS, 3).unwrap();
    assert_eq!(dest, v);
    assert!(!dest.outport_present);
}

#[test]
fn one_subsection_header_and_body() {
    let mut v = pckbd_base();
    v.outport.outport = 0xcd;
    let wire = cat(&[PCKBD_FIELDS, &sub_header("pckbd_outport", 1), &[0xcd]]);
    assert_eq!(
        wire[4..],
        [
            0x05, 13, b'p', b'c', b'k', b'b', b'd', b'_', b'o', b'u', b't', b'p', b'o', b'r', b't',
            0, 0, 0, 1, 0xcd
        ]
    );
    assert_eq!(to_bytes(&v).unwrap(), wire);
    let back: Pckbd = from_bytes(&wire, 3).unwrap();
    assert!(
        back.outport_present,
        "subsection loaded before post_load ran"
    );
    assert_eq!(back.outport, v.outport);
    assert_eq!(back.extended, Extended { mask: 0 });
}

#[test]
fn multiple_subsections_in_declaration_order_and_any_order_on_load() {
    let mut v = pckbd_base();
    v.outport.outport = 0xcd;
    v.extended.mask = 0x55;
    let out = cat(&[&sub_header("pckbd_outport", 1), &[0xcd]]);
    let ext = cat(&[&sub_header("pckbd/extended_state", 1), &[0x55]]);
    let wire = cat(&[PCKBD_FIELDS, &out, &ext]);
    assert_eq!(to_bytes(&v).unwrap(), wire);
    let mut expected = v.clone();
    expected.outport_present = true;
    assert_eq!(from_bytes::<Pckbd>(&wire, 3).unwrap(), expected);
    // Reversed order loads the same.
    let reversed = cat(&[PCKBD_FIELDS, &ext, &out]);
    assert_eq!(from_bytes::<Pckbd>(&reversed, 3).unwrap(), expected);
    // Only the second one.
    let only_ext = cat(&[PCKBD_FIELDS, &ext]);
    let back: Pckbd = from_bytes(&only_ext, 3).unwrap();
    assert_eq!(back.outport, Outport { outport: 0xcf });
    assert_eq!(back.extended.mask, 0x55);
    assert!(!back.outport_present);
    // The same subsection twice is loaded twice (the last one wins).
    let twice = cat(&[
        PCKBD_FIELDS,
        &ext,
        &sub_header("pckbd/extended_state", 1),
        &[0x66],
    ]);
    assert_eq!(from_bytes::<Pckbd>(&twice, 3).unwrap().extended.mask, 0x66);
}

#[test]
fn subsection_version_is_truncated_to_eight_bits() {
    // QEMU reads the be32 version into a uint8_t: 0x00000101 is version 1.
    let with_version = |version: [u8; 4]| {
        cat(&[
            PCKBD_FIELDS,
            &[0x05, 13],
            b"pckbd_outport",
            &version,
            &[0xcd],
        ])
    };
    for version in [[0x00, 0x00, 0x01, 0x01], [0xff, 0xff, 0xff, 0x01]] {
        let wire = with_version(version);
        assert_eq!(from_bytes::<Pckbd>(&wire, 3).unwrap().outport.outport, 0xcd);
    }
    // 0x00000100 truncates to 0, below the subsection's minimum version 1.
    let wire = with_version([0x00, 0x00, 0x01, 0x00]);
    let e = from_bytes::<Pckbd>(&wire, 3).unwrap_err();
    assert_kind!(e, ErrorKind::VersionTooOld { version: 0, min: 1 });
}

#[test]
fn foreign_prefix_stops_subsection_parsing() {
    // A header whose name does not start with "pckbd" is not ours: nothing is
    // consumed, the body ends there, and from_bytes reports the leftover bytes.
    let foreign = cat(&[&sub_header("ps2kbd/x", 1), &[0x01]]);
    let wire = cat(&[PCKBD_FIELDS, &foreign]);
    let e = from_bytes::<Pckbd>(&wire, 3).unwrap_err();
    assert_kind!(e, ErrorKind::TrailingBytes(n) if *n == foreign.len());
    assert_eq!(e.offset(), Some(4));
    assert_eq!(e.path_string(), "pckbd");
    // Through a Reader, the body ends before the foreign header.
    let mut r = Reader::new(&wire[..]);
    let mut dest = Pckbd::default();
    dest.load(&mut r, 3).unwrap();
    assert_eq!(r.position(), 4);
    // Also after a subsection of ours.
    let wire = cat(&[
        PCKBD_FIELDS,
        &sub_header("pckbd_outport", 1),
        &[0xcd],
        &foreign,
    ]);
    let mut r = Reader::new(&wire[..]);
    let mut dest = Pckbd::default();
    dest.load(&mut r, 3).unwrap();
    assert_eq!(r.remaining(), foreign.len());
    assert_eq!(dest.outport.outport, 0xcd);
    // Names shorter than parent + 1 byte are not ours either (QEMU: len < strlen+1).
    let wire = cat(&[PCKBD_FIELDS, &sub_header("pckbd", 1)]);
    let e = from_bytes::<Pckbd>(&wire, 3).unwrap_err();
    assert_kind!(e, ErrorKind::TrailingBytes(11));
    // Any other byte after the body also ends it (e.g. a section footer 0x7e).
    let mut r = Reader::new(&[0x60, 0x1c, 0x47, 0x00, 0x7e][..]);
    Pckbd::default().load(&mut r, 3).unwrap();
    assert_eq!(r.remaining(), 1);
}

#[test]
fn subsection_within_subsection() {
    #[derive(VmState, Default, Debug, PartialEq)]
    #[vmstate(name = "pckbd", version = 1)]
    struct Parent {
        a: u8,
        #[vmstate(subsection())]
        ext: ExtendedWithDeep,
    }
    let v = Parent {
        a: 7,
        ext: ExtendedWithDeep {
            mask: 8,
            deep: Deep { d: 9, d2: 10 },
        },
    };
    let wire = cat(&[
        &[7],
        &sub_header("pckbd/extended_state", 1),
        &[8],
        &sub_header("pckbd/extended_state/deep", 2),
        &[9, 10],
    ]);
    assert_wire(&v, &wire, 1);
    // The deep subsection at its version 1 (from its header) lacks d2.
    let wire_v1 = cat(&[
        &[7],
        &sub_header("pckbd/extended_state", 1),
        &[8],
        &sub_header("pckbd/extended_state/deep", 1),
        &[9],
    ]);
    let back: Parent = from_bytes(&wire_v1, 1).unwrap();
    assert_eq!(back.ext.deep, Deep { d: 9, d2: 0 });
}
