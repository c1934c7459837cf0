//! `vmstate describe` and `vmstate dump-vmstate` for the built-in device types,
//! against QEMU 7.2's own `-dump-vmstate` output.

use std::process::Command;

use serde_json::Value;

mod common;
use common::fixtures::oracle;
use common::output::assert_contains_all;
use vmstate_examples::dump::{describe, device_types, dump_vmstate, find_type};

/// QEMU prints the host C struct size for nested structs; that is not a wire
/// property (the static checker ignores it too), so compare without it.
fn without_struct_sizes(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !(k.as_str() == "size" && m.contains_key("Description")))
                .map(|(k, v)| (k.clone(), without_struct_sizes(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_struct_sizes).collect()),
        other => other.clone(),
    }
}

#[test]
fn dump_vmstate_matches_qemus_for_the_keyboard_controller() {
    let qemu: Value = serde_json::from_str(&oracle("vmstate-entries.json")).unwrap();
    let ours = dump_vmstate("pc-i440fx-7.2", &device_types());
    assert_eq!(ours["vmschkmachine"]["Name"], "pc-i440fx-7.2");
    for qom in [
        "i8042",
        "ps2-kbd",
        "ps2-mouse",
        "virtio-net-device",
        "virtio-blk-device",
        "virtio-rng-device",
        "virtio-balloon-device",
    ] {
        assert_eq!(
            without_struct_sizes(&ours[qom]),
            without_struct_sizes(&qemu[qom]),
            "{qom}"
        );
    }
    // Sorted by QOM name, as QEMU writes them.
    let keys: Vec<_> = ours.as_object().unwrap().keys().cloned().collect();
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
    // Wire sizes where QEMU has host sizes.
    assert_eq!(ours["ps2-kbd"]["Description"]["Fields"][0]["size"], 272);
}

#[test]
fn describe_prints_the_layouts() {
    let t = find_type("ps2-mouse").unwrap();
    assert_eq!(find_type("Ps2Mouse").unwrap().qom, "ps2-mouse");
    assert_eq!(find_type("pckbd").unwrap().qom, "i8042");
    assert!(find_type("floppy").is_none());
    let text = describe(t);
    assert!(text.starts_with(
        "== vmstate_devices::pckbd::Ps2Mouse (QEMU device \"ps2-mouse\", section \"ps2mouse\" version 2, 291 bytes)"
    ), "{text}");
    assert!(text.contains("mouse_sample_rate"));
    assert!(text.contains("\"PS2 Common State\" version 3"));
}

#[test]
fn the_binary_describes_and_dumps() {
    let exe = env!("CARGO_BIN_EXE_vmstate");
    let out = Command::new(exe).arg("describe").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_contains_all(
        &text,
        &[
            "\"ps2kbd\" version 3",
            "\"ps2mouse\" version 2",
            "\"pckbd\" version 3",
            "pckbd/extended_state",
        ],
    );
    let out = Command::new(exe)
        .args(["describe", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "unknown device type 'nosuch' (known: ps2-kbd, ps2-mouse, i8042, virtio-net-device, \
             virtio-blk-device, virtio-rng-device, virtio-balloon-device)"
    ));

    let out = Command::new(exe)
        .args(["dump-vmstate", "--machine", "pc-q35-7.2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["vmschkmachine"]["Name"], "pc-q35-7.2");
    assert_eq!(
        v["i8042"]["Description"]["Fields"][0]["Description"]["Subsections"][1]["name"],
        "pckbd/extended_state"
    );
}
