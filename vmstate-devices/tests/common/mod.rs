//! Test-only helpers: locating QEMU fixture streams and cutting section bodies
//! out of them, and a migration helper for the keyboard controller.
#![allow(dead_code)]

use std::path::PathBuf;

use vmstate_devices::pckbd::I8042;
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, VmState};

/// QEMU_VM_SECTION_FULL.
const SECTION_FULL: u8 = 0x04;
/// QEMU_VM_SECTION_FOOTER.
const SECTION_FOOTER: u8 = 0x7e;

/// The directory of the QEMU 7.2 fixture streams shipped with this crate.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qemu-7.2")
}

/// The bytes of a fixture file.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The four QEMU streams.
pub const STREAMS: [&str; 4] = [
    "pc-default.mig",
    "pc-i8042.mig",
    "pc-virtio-blk.mig",
    "pc-virtio-net.mig",
];

/// A FULL section header found in a stream.
#[derive(Debug, Clone, Copy)]
pub struct SectionHeader {
    pub section_id: u32,
    pub instance_id: u32,
    pub version_id: u32,
    /// Offset of the first body byte.
    pub body_start: usize,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Finds the FULL section header `04 | be32 id | len idstr | be32 instance |
/// be32 version` of `idstr`. Exactly one must exist.
pub fn find_full_section(stream: &[u8], idstr: &str) -> SectionHeader {
    let mut needle = vec![idstr.len() as u8];
    needle.extend_from_slice(idstr.as_bytes());
    let mut found = Vec::new();
    let mut from = 5;
    while let Some(pos) = stream[from..]
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
    {
        let at = from + pos;
        from = at + 1;
        if stream[at - 5] != SECTION_FULL {
            continue;
        }
        let after = at + needle.len();
        let (Some(section_id), Some(instance_id), Some(version_id)) = (
            be32(stream, at - 4),
            be32(stream, after),
            be32(stream, after + 4),
        ) else {
            continue;
        };
        found.push(SectionHeader {
            section_id,
            instance_id,
            version_id,
            body_start: after + 8,
        });
    }
    assert_eq!(
        found.len(),
        1,
        "FULL section headers for {idstr:?}: {found:?}"
    );
    found[0]
}

fn footer(id: u32) -> [u8; 5] {
    let mut f = [SECTION_FOOTER, 0, 0, 0, 0];
    f[1..].copy_from_slice(&id.to_be_bytes());
    f
}

/// The body of a section whose length is known; the footer must follow it.
pub fn body_with_len<'a>(stream: &'a [u8], h: &SectionHeader, len: usize) -> &'a [u8] {
    let end = h.body_start + len;
    assert_eq!(
        stream.get(end..end + 5),
        Some(&footer(h.section_id)[..]),
        "footer after a {len}-byte body"
    );
    &stream[h.body_start..end]
}

/// The body of a section up to the first footer `7e | be32 id` after its header.
pub fn body_to_footer<'a>(stream: &'a [u8], h: &SectionHeader) -> &'a [u8] {
    let f = footer(h.section_id);
    let len = stream[h.body_start..]
        .windows(5)
        .position(|w| w == f)
        .expect("section footer");
    &stream[h.body_start..h.body_start + len]
}

/// Length of a body made of `fixed` bytes of fields followed by subsections
/// (`05 | len name | be32 version | body`) whose body sizes are known by name.
/// This parses independently of the models under test.
pub fn parse_body_len(
    stream: &[u8],
    h: &SectionHeader,
    fixed: usize,
    subsections: &[(&str, usize)],
) -> usize {
    let mut at = h.body_start + fixed;
    while stream[at] == 0x05 {
        let n = stream[at + 1] as usize;
        let name = std::str::from_utf8(&stream[at + 2..at + 2 + n]).expect("subsection name");
        let size = subsections
            .iter()
            .find(|(s, _)| *s == name)
            .unwrap_or_else(|| panic!("unexpected subsection {name:?}"))
            .1;
        at += 2 + n + 4 + size;
    }
    at - h.body_start
}

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
