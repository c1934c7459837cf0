//! `vmstate docs`: the catalog's wire-format page and `-dump-vmstate` JSON, as
//! checked in under `vmstate-devices/`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn devices_file(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vmstate-devices")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn vmstate(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vmstate"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The first line where `ours` and the checked-in `file` differ.
fn first_difference(ours: &str, file: &str) -> String {
    for (i, (a, b)) in ours.lines().zip(file.lines()).enumerate() {
        if a != b {
            return format!(
                "first difference at line {}:\n  now:        {a}\n  checked in: {b}",
                i + 1
            );
        }
    }
    format!(
        "{} lines now, {} checked in",
        ours.lines().count(),
        file.lines().count()
    )
}

#[test]
fn docs_prints_the_checked_in_page_and_schema() {
    let page = vmstate(&["docs"]);
    assert!(
        page == devices_file("WIRE-FORMAT.md"),
        "vmstate-devices/WIRE-FORMAT.md is stale (a device model's layout or the \
         catalog changed); regenerate it with\n  cargo run -p vmstate-examples --bin \
         vmstate -- docs --output vmstate-devices/WIRE-FORMAT.md\n{}",
        first_difference(&page, &devices_file("WIRE-FORMAT.md"))
    );
    let json = vmstate(&["docs", "--format", "json"]);
    assert!(
        json == devices_file("schema/vmstate-schema.json"),
        "vmstate-devices/schema/vmstate-schema.json is stale; after checking the schema \
         lock (tests/schema_lock.rs) regenerate it with\n  cargo run -p vmstate-examples \
         --bin vmstate -- docs --format json --output vmstate-devices/schema/vmstate-schema.json\n{}",
        first_difference(&json, &devices_file("schema/vmstate-schema.json"))
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "vmschkmachine",
            "i8042",
            "ps2-kbd",
            "ps2-mouse",
            "virtio-balloon-device",
            "virtio-blk-device",
            "virtio-net-device",
            "virtio-rng-device"
        ]
    );
    // The same document as dump-vmstate prints.
    assert_eq!(vmstate(&["dump-vmstate"]), json);
}

#[test]
fn docs_writes_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("page.md");
    assert_eq!(vmstate(&["docs", "--output", out.to_str().unwrap()]), "");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        devices_file("WIRE-FORMAT.md")
    );
    let failed = Command::new(env!("CARGO_BIN_EXE_vmstate"))
        .args(["docs", "--output", "/nonexistent/dir/page.md"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("/nonexistent/dir/page.md"));
}
