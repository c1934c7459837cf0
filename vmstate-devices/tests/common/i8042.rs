//! The keyboard controller's three sections (ps2kbd, ps2mouse, pckbd): cut out
//! of a QEMU stream, saved from a model, loaded into one.

use vmstate_devices::pckbd::I8042;
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, VmState};

use super::sections::{body_to_footer, body_with_len, find_full_section, parse_body_len};

/// Subsections of "ps2kbd" and their body sizes.
pub const PS2KBD_SUBSECTIONS: &[(&str, usize)] = &[
    ("ps2kbd/ledstate", 4),
    ("ps2kbd/need_high_bit", 1),
    ("ps2kbd/command_reply_queue", 4),
];
/// Subsections of "pckbd" and their body sizes.
pub const PCKBD_SUBSECTIONS: &[(&str, usize)] =
    &[("pckbd_outport", 1), ("pckbd/extended_state", 10)];

/// The three bodies (ps2kbd, ps2mouse, pckbd) of a fixture stream, checking
/// instance 0 and the section versions QEMU 7.2 writes. Each body is delimited
/// by parsing its layout and must be followed by its footer; for "pckbd" the
/// footer search must agree with the parse.
pub fn i8042_bodies(stream: &[u8]) -> [Vec<u8>; 3] {
    let kbd = find_full_section(stream, "ps2kbd");
    let mouse = find_full_section(stream, "ps2mouse");
    let ctl = find_full_section(stream, "pckbd");
    for (h, v) in [(kbd, 3), (mouse, 2), (ctl, 3)] {
        assert_eq!((h.instance_id, h.version_id), (0, v));
    }
    let kbd_body = body_with_len(
        stream,
        &kbd,
        parse_body_len(stream, &kbd, 284, PS2KBD_SUBSECTIONS),
    );
    let mouse_body = body_with_len(stream, &mouse, parse_body_len(stream, &mouse, 291, &[]));
    let ctl_body = body_with_len(
        stream,
        &ctl,
        parse_body_len(stream, &ctl, 4, PCKBD_SUBSECTIONS),
    );
    assert_eq!(ctl_body, body_to_footer(stream, &ctl));
    [kbd_body.to_vec(), mouse_body.to_vec(), ctl_body.to_vec()]
}

/// Saves the three sections of a controller.
pub fn save_sections(dev: &I8042) -> [Vec<u8>; 3] {
    [
        to_bytes(dev.keyboard()).unwrap(),
        to_bytes(dev.mouse()).unwrap(),
        to_bytes(dev).unwrap(),
    ]
}

/// Loads three sections (in QEMU's order) into `dev`.
pub fn load_sections(dev: &mut I8042, bodies: &[Vec<u8>; 3]) -> vmstate_runtime::Result<()> {
    fn load_all<T: VmState>(v: &mut T, body: &[u8], version: u32) -> vmstate_runtime::Result<()> {
        let mut r = Reader::new(body);
        v.load(&mut r, version)?;
        assert_eq!(r.remaining(), 0, "trailing bytes");
        Ok(())
    }
    load_all(dev.keyboard_mut(), &bodies[0], 3)?;
    load_all(dev.mouse_mut(), &bodies[1], 2)?;
    load_all(dev, &bodies[2], 3)
}
