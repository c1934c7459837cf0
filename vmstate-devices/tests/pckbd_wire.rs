//! Wire identity with real QEMU 7.2 streams (tests/fixtures/qemu-7.2): the
//! keyboard controller's three sections load and save back byte for byte, the
//! defaults are QEMU's reset state, and replaying the fixture's port I/O on
//! fresh models reproduces QEMU's bytes exactly.

mod common;

use common::fixtures::{fixture, STREAMS};
use common::i8042::{i8042_bodies, save_sections};
use vmstate_devices::pckbd::{Ps2Keyboard, Ps2Mouse, I8042};
use vmstate_runtime::{from_bytes, to_bytes};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[track_caller]
fn assert_bytes_eq(what: &str, ours: &[u8], qemu: &[u8]) {
    assert!(
        ours == qemu,
        "{what}:\n ours {}\n qemu {}",
        hex(ours),
        hex(qemu)
    );
}

#[test]
fn qemu_bodies_load_and_save_back_identically() {
    for name in STREAMS {
        let stream = fixture(name);
        let [kbd, mouse, ctl] = i8042_bodies(&stream);
        let k: Ps2Keyboard = from_bytes(&kbd, 3).unwrap_or_else(|e| panic!("{name} ps2kbd: {e}"));
        assert_bytes_eq(&format!("{name} ps2kbd"), &to_bytes(&k).unwrap(), &kbd);
        let m: Ps2Mouse = from_bytes(&mouse, 2).unwrap_or_else(|e| panic!("{name} ps2mouse: {e}"));
        assert_bytes_eq(&format!("{name} ps2mouse"), &to_bytes(&m).unwrap(), &mouse);
        let c: I8042 = from_bytes(&ctl, 3).unwrap_or_else(|e| panic!("{name} pckbd: {e}"));
        assert_bytes_eq(&format!("{name} pckbd"), &to_bytes(&c).unwrap(), &ctl);
    }
}

#[test]
fn defaults_are_a_fresh_pc_machine() {
    let [kbd, mouse, ctl] = i8042_bodies(&fixture("pc-default.mig"));
    assert_bytes_eq("ps2kbd", &to_bytes(&Ps2Keyboard::default()).unwrap(), &kbd);
    assert_bytes_eq("ps2mouse", &to_bytes(&Ps2Mouse::default()).unwrap(), &mouse);
    assert_bytes_eq("pckbd", &to_bytes(&I8042::default()).unwrap(), &ctl);
    let mut expected = vec![0x00, 0x18, 0x03, 0x00, 0x05, 0x14];
    expected.extend_from_slice(b"pckbd/extended_state");
    expected.extend_from_slice(&[0; 14]);
    assert_eq!(to_bytes(&I8042::default()).unwrap(), expected);
    assert_eq!(save_sections(&I8042::default()), [kbd, mouse, ctl]);
}

/// One port access from the fixture's recorded stimulus.
enum Access {
    Out(u16, u8),
    In(u16, u8),
}

/// The stimulus QEMU was driven with (pc-i8042.stats.json), with the values the
/// reads returned there.
fn recorded_stimulus() -> Vec<Access> {
    let stats: serde_json::Value =
        serde_json::from_slice(&fixture("pc-i8042.stats.json")).expect("stats json");
    stats["stimulus"]
        .as_array()
        .expect("stimulus list")
        .iter()
        .map(|s| {
            let port = s["port"].as_u64().expect("port") as u16;
            match s["op"].as_str() {
                Some("o") => Access::Out(port, s["val"].as_u64().expect("val") as u8),
                Some("i") => {
                    // HMP prints "portb[0x0060] = 0xfa".
                    let hmp = s["hmp"].as_str().expect("hmp output");
                    let v = hmp.rsplit("0x").next().expect("value");
                    Access::In(port, u8::from_str_radix(v.trim(), 16).expect("hex"))
                }
                op => panic!("unknown op {op:?}"),
            }
        })
        .collect()
}

#[test]
fn replaying_the_fixture_port_io_reproduces_qemus_bytes() {
    let stimulus = recorded_stimulus();
    assert_eq!(stimulus.len(), 29);
    let mut dev = I8042::default();
    for (i, a) in stimulus.iter().enumerate() {
        match *a {
            Access::Out(port, val) => dev.write_port(port, val),
            Access::In(port, qemu_val) => {
                assert_eq!(dev.read_port(port), qemu_val, "read #{i} of port {port:#x}")
            }
        }
    }
    let [kbd, mouse, ctl] = i8042_bodies(&fixture("pc-i8042.mig"));
    let [our_kbd, our_mouse, our_ctl] = save_sections(&dev);
    assert_bytes_eq("ps2kbd", &our_kbd, &kbd);
    assert_bytes_eq("ps2mouse", &our_mouse, &mouse);
    assert_bytes_eq("pckbd", &our_ctl, &ctl);
    // The README's summary of that state.
    let c = dev.controller();
    assert_eq!(
        (c.write_cmd(), c.status(), c.mode(), c.pending()),
        (0, 0x39, 0x47, 0x38)
    );
    assert_eq!(
        (c.outport(), c.obsrc(), c.obdata(), c.cbdata()),
        (0xfd, 2, 0xfa, 0xa5)
    );
    assert!(!dev.a20_enabled());
    assert!(dev.irq_mouse().level && !dev.irq_kbd().level);
    let k = dev.keyboard();
    assert_eq!(k.common().write_cmd(), 0xf3);
    assert_eq!(
        (k.common().rptr(), k.common().wptr(), k.common().len()),
        (0xff, 0, 1)
    );
    assert_eq!(
        (k.ledstate(), k.translate(), k.scancode_set()),
        (5, true, 2)
    );
    let m = dev.mouse();
    assert_eq!(m.common().queued(), [0xfa; 6]);
    assert_eq!((m.status(), m.sample_rate(), m.resolution()), (0x30, 40, 2));
}

/// The same state, checked field by field against QEMU's own decoding
/// (analyze-migration.py output for both streams).
#[test]
fn decoded_fields_match_qemus_analysis() {
    let analysis: serde_json::Value =
        serde_json::from_slice(&fixture("i8042-sections.state.json")).expect("json");
    let num = |v: &serde_json::Value| -> i64 {
        let s = v.as_str().expect("string");
        let h = s
            .split_whitespace()
            .next()
            .unwrap()
            .trim_start_matches("0x");
        i64::from_str_radix(h, 16).expect("hex") as i32 as i64
    };
    for name in ["pc-default", "pc-i8042"] {
        let a = &analysis[name];
        let [kbd, mouse, ctl] = i8042_bodies(&fixture(&format!("{name}.mig")));
        let c: I8042 = from_bytes(&ctl, 3).unwrap();
        let kbd_a = &a["pckbd"]["kbd"];
        let c = c.controller();
        assert_eq!(i64::from(c.status()), num(&kbd_a["status"]));
        assert_eq!(i64::from(c.mode()), num(&kbd_a["mode"]));
        assert_eq!(i64::from(c.pending()), num(&kbd_a["pending_tmp"]));
        let ext = &kbd_a["pckbd/extended_state"];
        assert_eq!(i64::from(c.obsrc()), num(&ext["obsrc"]));
        assert_eq!(i64::from(c.obdata()), num(&ext["obdata"]));
        assert_eq!(i64::from(c.cbdata()), num(&ext["cbdata"]));
        if let Some(out) = kbd_a.get("pckbd_outport") {
            assert_eq!(i64::from(c.outport()), num(&out["outport"]));
        }

        let k: Ps2Keyboard = from_bytes(&kbd, 3).unwrap();
        let ka = &a["ps2kbd"];
        assert_eq!(
            i64::from(k.common().write_cmd()),
            num(&ka["parent_obj"]["write_cmd"])
        );
        assert_eq!(
            i64::from(k.common().rptr()),
            num(&ka["parent_obj"]["queue.rptr"])
        );
        assert_eq!(
            i64::from(k.common().len()),
            num(&ka["parent_obj"]["queue.count"])
        );
        assert_eq!(i64::from(k.translate()), num(&ka["translate"]));
        assert_eq!(i64::from(k.scancode_set()), num(&ka["scancode_set"]));
        if let Some(cq) = ka.get("ps2kbd/command_reply_queue") {
            assert_eq!(
                i64::from(k.common().cwptr()),
                num(&cq["parent_obj.queue.cwptr"])
            );
        }

        let m: Ps2Mouse = from_bytes(&mouse, 2).unwrap();
        let ma = &a["ps2mouse"];
        assert_eq!(i64::from(m.status()), num(&ma["mouse_status"]));
        assert_eq!(i64::from(m.sample_rate()), num(&ma["mouse_sample_rate"]));
        assert_eq!(
            i64::from(m.common().wptr()),
            num(&ma["parent_obj"]["queue.wptr"])
        );
    }
}

/// The descriptions carry QEMU's names, versions and field order (compare
/// vmstate-entries.json, QEMU's -dump-vmstate). Where QEMU names a field with a
/// dot ("queue.rptr"), the Rust field is the last component.
#[test]
fn descriptions_match_qemus_vmstate_entries() {
    use vmstate_runtime::VmState;
    let d = I8042::DESCRIPTION;
    assert_eq!(
        (d.name, d.version_id, d.minimum_version_id),
        ("pckbd", 3, 3)
    );
    let kbd = d.fields[0].ty.nested.expect("nested pckbd");
    assert_eq!(d.fields[0].name, "kbd");
    let names: Vec<_> = kbd
        .fields
        .iter()
        .filter(|f| f.is_on_wire())
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["write_cmd", "status", "mode", "pending_tmp"]);
    let subs: Vec<_> = kbd
        .subsections
        .iter()
        .map(|s| (s.description.name, s.description.version_id))
        .collect();
    assert_eq!(subs, [("pckbd_outport", 1), ("pckbd/extended_state", 0)]);

    let d = Ps2Keyboard::DESCRIPTION;
    assert_eq!(
        (d.name, d.version_id, d.minimum_version_id),
        ("ps2kbd", 3, 2)
    );
    let common = d.fields[0].ty.nested.expect("common state");
    assert_eq!(
        (common.name, common.version_id, common.minimum_version_id),
        ("PS2 Common State", 3, 2)
    );
    assert_eq!(common.fixed_body_size(), Some(272));
    let scancode_set = d.field("scancode_set").unwrap();
    assert_eq!(scancode_set.version_id, 3);
    let subs: Vec<_> = d
        .subsections
        .iter()
        .map(|s| {
            (
                s.description.name,
                s.description.version_id,
                s.description.minimum_version_id,
            )
        })
        .collect();
    assert_eq!(
        subs,
        [
            ("ps2kbd/ledstate", 3, 2),
            ("ps2kbd/need_high_bit", 1, 1),
            ("ps2kbd/command_reply_queue", 0, 0)
        ]
    );

    let d = Ps2Mouse::DESCRIPTION;
    assert_eq!(
        (d.name, d.version_id, d.minimum_version_id),
        ("ps2mouse", 2, 2)
    );
    assert_eq!(d.fixed_body_size(), Some(291));
}
