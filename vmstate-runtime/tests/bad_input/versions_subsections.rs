//! Versions and subsections

use super::truncation::{Kbd, KbdExt};
use super::*;

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pckbd/extended_state", version = 2, minimum_version = 2)]
struct Extended {
    obcount: u8,
    obsrc: u32,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pckbd_outport", version = 1)]
struct Outport {
    outport: u8,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pckbd", version = 3, minimum_version = 2)]
struct Pckbd {
    status: u8,
    #[vmstate(subsection())]
    extended: Extended,
    #[vmstate(subsection(needed = Pckbd::never))]
    outport: Outport,
}

impl Pckbd {
    fn never(&self) -> bool {
        false
    }
}

#[test]
fn version_too_new_and_too_old() {
    let e = load_err::<Pckbd>(&[0], 4, "pckbd", 0);
    assert_kind!(e, ErrorKind::VersionTooNew { version: 4, max: 3 });
    let e = load_err::<Pckbd>(&[0], u32::MAX, "pckbd", 0);
    assert_kind!(e, ErrorKind::VersionTooNew { .. });
    let e = load_err::<Pckbd>(&[0], 1, "pckbd", 0);
    assert_kind!(e, ErrorKind::VersionTooOld { version: 1, min: 2 });
    let e = load_err::<Pckbd>(&[0], 0, "pckbd", 0);
    assert_kind!(e, ErrorKind::VersionTooOld { version: 0, min: 2 });
    // With a base offset, the version error points where the body starts.
    let mut r = Reader::with_base_offset(&[0u8][..], 77);
    let e = Pckbd::default().load(&mut r, 9).unwrap_err();
    assert_eq!(e.offset(), Some(77));
}

#[test]
fn subsection_version_checks() {
    let body = [1, 0, 0, 0, 2];
    // Too new (3 > 2) and too old (1 < 2); 0x0102 truncates to 2 and loads.
    let ok = cat(&[&[0], &sub_header("pckbd/extended_state", 0x0102), &body]);
    assert_eq!(from_bytes::<Pckbd>(&ok, 3).unwrap().extended.obsrc, 2);
    let hdr = sub_header("pckbd/extended_state", 3);
    let b = cat(&[&[0], &hdr, &body]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd/extended_state", 1 + hdr.len() as u64);
    assert_kind!(e, ErrorKind::VersionTooNew { version: 3, max: 2 });
    let b = cat(&[&[0], &sub_header("pckbd/extended_state", 0x0101), &body]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd/extended_state", 1 + hdr.len() as u64);
    assert_kind!(e, ErrorKind::VersionTooOld { version: 1, min: 2 });
}

#[test]
fn field_in_subsection_path() {
    let hdr = sub_header("pckbd/extended_state", 2);
    let b = cat(&[&[0], &hdr, &[1, 0, 0]]);
    let e = load_err::<Pckbd>(
        &b,
        3,
        "pckbd/extended_state.obsrc",
        1 + hdr.len() as u64 + 1,
    );
    assert_kind!(
        e,
        ErrorKind::Truncated {
            needed: 4,
            available: 2
        }
    );
    // A legacy name that only shares the prefix.
    let hdr = sub_header("pckbd_outport", 1);
    let b = cat(&[&[0], &hdr]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd_outport.outport", 1 + hdr.len() as u64);
    assert_kind!(e, ErrorKind::Truncated { .. });
}

#[test]
fn unknown_subsection_with_our_prefix() {
    let b = cat(&[&[0], &sub_header("pckbd/bogus", 1), &[1]]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd", 1);
    assert_kind!(e, ErrorKind::UnknownSubsection { name } if name == "pckbd/bogus");
    // After a known one.
    let known = cat(&[&sub_header("pckbd/extended_state", 2), &[1, 0, 0, 0, 2]]);
    let b = cat(&[&[0], &known, &sub_header("pckbdX", 1)]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd", 1 + known.len() as u64);
    assert_kind!(e, ErrorKind::UnknownSubsection { name } if name == "pckbdX");
    // Non-UTF-8 names are reported lossily.
    let mut hdr = vec![0x05, 7];
    hdr.extend_from_slice(b"pckbd\xff\xfe");
    hdr.extend_from_slice(&[0, 0, 0, 1]);
    let e = load_err::<Pckbd>(&cat(&[&[0], &hdr]), 3, "pckbd", 1);
    assert_kind!(e, ErrorKind::UnknownSubsection { name } if name.starts_with("pckbd"));
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct HasNestedSub {
    a: u8,
    kbd: Kbd,
    b: u8,
}

#[test]
fn unknown_and_truncated_subsection_of_a_nested_struct() {
    let b = cat(&[&[0, 1], &sub_header("kbd/zzz", 1), &[0]]);
    let e = load_err::<HasNestedSub>(&b, 1, "dev.kbd", 2);
    assert_kind!(e, ErrorKind::UnknownSubsection { name } if name == "kbd/zzz");
    // Inside a nested struct the subsection name is shown in full after the field.
    let hdr = sub_header("kbd/ext", 1);
    let b = cat(&[&[0, 1], &hdr, &[0, 0]]);
    let e = load_err::<HasNestedSub>(&b, 1, "dev.kbd/kbd/ext.obsrc", 2 + hdr.len() as u64);
    assert_kind!(e, ErrorKind::Truncated { .. });
    // A foreign subsection after the nested fields ends the nested body; the parent
    // then reads the 0x05 as its own next field, and the rest is trailing.
    let foreign = sub_header("zzz/kbd", 1);
    let b = cat(&[&[0, 1], &foreign]);
    let e = load_err::<HasNestedSub>(&b, 1, "dev", 3);
    assert_kind!(e, ErrorKind::TrailingBytes(n) if *n == foreign.len() - 1);
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct NestedThenRaw {
    kbd: Kbd,
    raw: [u8; 4],
}

#[test]
fn truncated_nested_subsection_header_is_read_as_the_next_fields() {
    // As in QEMU: when the nested struct's subsection header is cut inside its name,
    // the peek fails, the nested body ends there, and the header's bytes are taken as
    // the parent's next fields. The format cannot tell; the stream loads as a
    // different value. (A cut after the name is a clean truncation error instead.)
    let hdr = sub_header("kbd/ext", 1);
    let b = cat(&[&[1], &hdr[..4]]);
    let v: NestedThenRaw = from_bytes(&b, 1).unwrap();
    assert_eq!(v.kbd.ext, KbdExt::default());
    assert_eq!(v.raw, [0x05, 7, b'k', b'b']);
    let b = cat(&[&[1], &hdr[..10]]);
    let e = load_err::<NestedThenRaw>(&b, 1, "dev.kbd", 10);
    assert_kind!(
        e,
        ErrorKind::Truncated {
            needed: 4,
            available: 1
        }
    );
}

#[test]
fn trailing_bytes() {
    let e = load_err::<Pckbd>(&[0, 0], 3, "pckbd", 1);
    assert_kind!(e, ErrorKind::TrailingBytes(1));
    let e = load_err::<Pckbd>(&[0, 0x7e, 0, 0, 0, 1], 3, "pckbd", 1);
    assert_kind!(e, ErrorKind::TrailingBytes(5));
    assert!(e.to_string().contains("5 trailing byte(s)"), "{e}");
    // A subsection that is ours but not needed on save still loads if present...
    let b = cat(&[&[0], &sub_header("pckbd_outport", 1), &[7]]);
    assert_eq!(from_bytes::<Pckbd>(&b, 3).unwrap().outport.outport, 7);
    // ...but extra bytes after it are trailing.
    let b = cat(&[&[0], &sub_header("pckbd_outport", 1), &[7, 8]]);
    let e = load_err::<Pckbd>(&b, 3, "pckbd", b.len() as u64 - 1);
    assert_kind!(e, ErrorKind::TrailingBytes(1));
}
