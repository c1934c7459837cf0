//! `vmstate analyze` against QEMU's own analyze-migration.py output for four
//! streams written by QEMU 7.2: byte-identical JSON, through the library and
//! through the binary.

use std::process::Command;

mod common;
use common::fixtures::{oracle, stream, stream_path, STREAMS};

use vmstate_examples::analyze::{analyze_desc, analyze_state, to_python_json, AnalyzeOptions};

/// First differing line, for a readable failure.
fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: ours {x:?}, QEMU's {y:?}", i + 1);
        }
    }
    format!(
        "lengths differ: {} vs {} lines",
        a.lines().count(),
        b.lines().count()
    )
}

#[test]
fn state_dump_is_byte_identical_to_qemus_analyze_migration() {
    for name in STREAMS {
        let v = analyze_state(&stream(name), &AnalyzeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = to_python_json(&v) + "\n";
        let theirs = oracle(&format!("{name}.state.json"));
        assert!(
            ours == theirs,
            "{name}: {}",
            first_difference(&ours, &theirs)
        );
    }
}

#[test]
fn device_entries_carry_the_i8042_state_qemu_saved() {
    let v = analyze_state(&stream("pc-i8042"), &AnalyzeOptions::default()).unwrap();
    let kbd = &v["pckbd (25)"]["kbd"];
    assert_eq!(kbd["status"], "0x39");
    assert_eq!(kbd["mode"], "0x47");
    assert_eq!(kbd["pckbd_outport"]["outport"], "0xfd");
    assert_eq!(kbd["pckbd/extended_state"]["obsrc"], "0x00000002");
    assert_eq!(
        v["ps2kbd (23)"]["ps2kbd/ledstate"]["ledstate"],
        "0x00000005"
    );
    assert_eq!(
        v["ps2mouse (24)"]["parent_obj"]["write_cmd"],
        "0xffffffff (-1)"
    );
    assert_eq!(v["ps2mouse (24)"]["mouse_sample_rate"], "0x28");
    assert_eq!(
        v["ram (2)"]["section sizes"]["pc.ram"],
        "0x0000000002000000"
    );
}

#[test]
fn desc_dump_is_byte_identical() {
    let v = analyze_desc(&stream("pc-i8042")).unwrap();
    let ours = to_python_json(&v) + "\n";
    let theirs = oracle("pc-i8042.desc.json");
    assert!(ours == theirs, "{}", first_difference(&ours, &theirs));
}

#[test]
fn memory_dump_lists_every_page_record() {
    let v = analyze_state(
        &stream("pc-default"),
        &AnalyzeOptions {
            dump_memory: true,
            ..AnalyzeOptions::default()
        },
    )
    .unwrap();
    let mem = v["ram (2)"]["memory"].as_object().unwrap();
    // 32 MiB pc.ram + the ROM blocks: every page once, in the first PART.
    let pages: u64 = v["ram (2)"]["section sizes"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| u64::from_str_radix(&s.as_str().unwrap()[2..], 16).unwrap() / 4096)
        .sum();
    assert_eq!(pages, 8322);
    assert_eq!(mem.len() as u64, pages);
    assert_eq!(mem["pc.ram (0x0000000000000000)"], "Filled with 0x00");
    let bios = mem["pc.bios (0x000000000003f000)"].as_str().unwrap();
    assert_eq!(bios.len(), 4096 * 3 - 1, "a raw page as hex bytes");
}

#[test]
fn the_binary_prints_the_same_and_fails_cleanly() {
    let exe = env!("CARGO_BIN_EXE_vmstate");
    let out = Command::new(exe)
        .arg("analyze")
        .arg(stream_path("pc-i8042"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8(out.stdout).unwrap() == oracle("pc-i8042.state.json"));

    let out = Command::new(exe)
        .args(["analyze", "--dump", "desc"])
        .arg(stream_path("pc-i8042"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap() == oracle("pc-i8042.desc.json"));

    let out = Command::new(exe)
        .args(["analyze", "/nonexistent.mig"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("vmstate: error: /nonexistent.mig: "),
        "{err}"
    );
}
