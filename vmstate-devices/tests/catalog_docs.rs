//! The device catalog and its checked-in wire-format page.

use std::collections::HashSet;
use std::path::PathBuf;

use vmstate_devices::catalog::{self, markdown, DEVICES};
use vmstate_runtime::vmstate::NoDescribe;

const REGENERATE: &str =
    "cargo run -p vmstate-examples --bin vmstate -- docs --output vmstate-devices/WIRE-FORMAT.md";

#[test]
fn the_checked_in_wire_format_page_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("WIRE-FORMAT.md");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    let current = markdown::render(DEVICES).unwrap();
    if checked_in != current {
        let line = checked_in
            .lines()
            .zip(current.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| checked_in.lines().count().min(current.lines().count()));
        panic!(
            "{} is stale (first difference at line {}): the catalog or a device layout \
             changed. Regenerate it with\n\t{REGENERATE}\nand review the diff.",
            path.display(),
            line + 1
        );
    }
}

#[test]
fn every_model_is_listed_once_and_agrees_with_its_vmsd() {
    let mut sections = HashSet::new();
    for d in DEVICES {
        assert!(sections.insert(d.section), "{} listed twice", d.section);
        assert_eq!(catalog::find(d.section).unwrap().section, d.section);
        if let Some(v) = d.vmsd {
            assert_eq!(
                v.name, d.section,
                "{}: section name is the vmsd's",
                d.section
            );
            assert_eq!(v.version_id, d.section_version, "{}", d.section);
            assert!(
                d.qom_type.is_some(),
                "{}: a vmsd device QEMU dumps",
                d.section
            );
            assert!(d.body_format.is_none(), "{}", d.section);
        } else {
            assert!(
                d.body_format.is_some(),
                "{}: a custom body is described",
                d.section
            );
        }
        if let Some(example) = d.example {
            let bytes = example(&mut NoDescribe).unwrap();
            assert!(!bytes.is_empty(), "{}", d.section);
        }
    }
    for s in ["ram", "ps2kbd", "ps2mouse", "pckbd"] {
        assert!(sections.contains(s), "{s} missing from the catalog");
    }
}

#[test]
fn the_page_shows_the_stream_around_each_body_and_annotated_bytes() {
    let page = markdown::render(DEVICES).unwrap();
    for needle in [
        "## `pckbd`",
        "0x04 SECTION_FULL   be32 section_id, u8 5 \"pckbd\", be32 instance_id, be32 3",
        "0x7e SECTION_FOOTER be32 section_id",
        "0x01 SECTION_START  be32 section_id, u8 3 \"ram\"",
        "#### Subsection \"pckbd/extended_state\"",
        "| 4 | subsection header \"pckbd/extended_state\" v0 |",
        "| 272 | `scan_enabled` | `00 00 00 01` |",
        "| `parent_obj.queue.data` | buffer | 256 B |",
    ] {
        assert!(page.contains(needle), "missing {needle:?}");
    }
    // Code blocks are text, so rustdoc (which includes the page) runs none of them.
    assert!(!page.contains("```\n0"), "untagged code block");
    // A list of one device renders that device only.
    let one = markdown::render(&DEVICES[1..2]).unwrap();
    assert!(one.contains("## `ps2kbd`") && !one.contains("## `pckbd`"));
}
