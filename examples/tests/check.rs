//! `vmstate check` and `vmstate_examples::schema::check`: crafted pairs of dumps
//! for every change class, on QEMU 7.2's own `-dump-vmstate` extract, each
//! compared with QEMU's `scripts/vmstate-static-checker.py` when it is present,
//! and the binary's exit codes and output forms.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use vmstate_examples::schema::check::{check, compare, Breaks, FindingKind};

mod common;
use common::fixtures::oracle;

/// QEMU 7.2's dump extract (i8042, ps2-kbd, ps2-mouse, virtio devices, ...).
fn qemu_dump() -> Value {
    serde_json::from_str(&oracle("vmstate-entries.json")).unwrap()
}

/// The mouse's "Fields" of `v`.
fn mouse_fields(v: &mut Value) -> &mut Vec<Value> {
    v["ps2-mouse"]["Description"]["Fields"]
        .as_array_mut()
        .unwrap()
}

/// Sets the mouse's section and description versions.
fn mouse_versions(v: &mut Value, version: u64, minimum: u64) {
    let o = &mut v["ps2-mouse"];
    o["version_id"] = json!(version);
    o["minimum_version_id"] = json!(minimum);
    o["Description"]["version_id"] = json!(version);
    o["Description"]["minimum_version_id"] = json!(minimum);
}

fn new_field(name: &str, version: u64, size: u64) -> Value {
    json!({"field": name, "version_id": version, "field_exists": false, "size": size})
}

/// The i8042's nested "pckbd" description (which has subsections).
fn pckbd(v: &mut Value) -> &mut Value {
    &mut v["i8042"]["Description"]["Fields"][0]["Description"]
}

/// One crafted change: applied to a copy of QEMU's dump, which is then the new side.
struct Case {
    name: &'static str,
    change: fn(&mut Value),
    /// (kind, field) flagged by the forward pass (old -> new), i.e. by QEMU's checker.
    forward: &'static [(FindingKind, Option<&'static str>)],
    /// (kind, field) the reverse pass adds.
    backward: &'static [(FindingKind, Option<&'static str>)],
    /// Whether old -> new migration works.
    forward_ok: bool,
    /// Whether new -> old works too.
    both_ok: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "unchanged",
        change: |_| {},
        forward: &[],
        backward: &[],
        forward_ok: true,
        both_ok: true,
    },
    Case {
        name: "field removed",
        change: |v| {
            mouse_fields(v).pop();
        },
        forward: &[(FindingKind::FieldRemoved, Some("mouse_buttons"))],
        backward: &[],
        forward_ok: false,
        both_ok: false,
    },
    Case {
        name: "size changed",
        change: |v| mouse_fields(v)[7]["size"] = json!(8),
        forward: &[(FindingKind::SizeMismatch, Some("mouse_dx"))],
        backward: &[],
        forward_ok: false,
        both_ok: false,
    },
    Case {
        name: "field added without since, test or subsection",
        change: |v| mouse_fields(v).push(new_field("mouse_dw", 0, 4)),
        // QEMU's checker stops when the source has no more fields: it misses this.
        forward: &[],
        backward: &[(FindingKind::FieldRemoved, Some("mouse_dw"))],
        forward_ok: false,
        both_ok: false,
    },
    Case {
        name: "field added with since and a version bump",
        change: |v| {
            mouse_fields(v).push(new_field("mouse_dw", 3, 4));
            mouse_versions(v, 3, 2);
        },
        forward: &[],
        backward: &[
            (FindingKind::VersionTooNew, None),
            (FindingKind::VersionTooNew, None),
            (FindingKind::FieldRemoved, Some("mouse_dw")),
        ],
        forward_ok: true,
        both_ok: false,
    },
    Case {
        name: "version bumped alone",
        change: |v| mouse_versions(v, 3, 2),
        forward: &[],
        backward: &[
            (FindingKind::VersionTooNew, None),
            (FindingKind::VersionTooNew, None),
        ],
        forward_ok: true,
        both_ok: false,
    },
    Case {
        name: "minimum version raised",
        change: |v| mouse_versions(v, 3, 3),
        // Counted for the description only (QEMU's section-level message is never completed).
        forward: &[(FindingKind::VersionTooOld, None)],
        backward: &[
            (FindingKind::VersionTooNew, None),
            (FindingKind::VersionTooNew, None),
        ],
        forward_ok: false,
        both_ok: false,
    },
    Case {
        name: "subsection added",
        change: |v| {
            let subs = pckbd(v)["Subsections"].as_array_mut().unwrap();
            subs.push(
                json!({"name": "pckbd/new_state", "version_id": 1, "minimum_version_id": 1,
                "Fields": [new_field("extra", 0, 1)]}),
            );
        },
        forward: &[],
        backward: &[(FindingKind::SubsectionMissing, None)],
        forward_ok: true,
        both_ok: false,
    },
    Case {
        name: "first subsection added",
        change: |v| {
            v["ps2-mouse"]["Description"]["Subsections"] = json!([{"name": "ps2mouse/wheel",
                "version_id": 1, "minimum_version_id": 1, "Fields": [new_field("dw", 0, 4)]}]);
        },
        forward: &[],
        backward: &[(FindingKind::EntryMissing, None)],
        forward_ok: true,
        both_ok: false,
    },
    Case {
        name: "subsection removed",
        change: |v| {
            pckbd(v)["Subsections"].as_array_mut().unwrap().remove(1);
        },
        forward: &[(FindingKind::SubsectionMissing, None)],
        backward: &[],
        forward_ok: false,
        both_ok: false,
    },
    Case {
        name: "section removed",
        change: |v| {
            v.as_object_mut().unwrap().remove("vmmouse");
        },
        forward: &[(FindingKind::SectionMissing, None)],
        backward: &[],
        forward_ok: false,
        both_ok: false,
    },
    Case {
        name: "field renamed, same size",
        change: |v| mouse_fields(v)[1]["field"] = json!("status"),
        forward: &[(FindingKind::FieldMismatch, Some("mouse_status"))],
        backward: &[(FindingKind::FieldMismatch, Some("status"))],
        forward_ok: true,
        both_ok: true,
    },
    Case {
        name: "field replaced by unused padding of its size",
        change: |v| mouse_fields(v)[8]["field"] = json!("unused"),
        forward: &[],
        backward: &[],
        forward_ok: true,
        both_ok: true,
    },
    Case {
        name: "nested description renamed",
        change: |v| {
            v["ps2-mouse"]["Description"]["Fields"][0]["Description"]["name"] = json!("PS2 State")
        },
        forward: &[(FindingKind::DescriptionRenamed, None)],
        // The reverse pass names the new description: a finding of its own.
        backward: &[(FindingKind::DescriptionRenamed, None)],
        forward_ok: false,
        both_ok: false,
    },
];

fn kinds(
    findings: &[vmstate_examples::schema::check::Finding],
) -> Vec<(FindingKind, Option<String>)> {
    findings.iter().map(|f| (f.kind, f.field.clone())).collect()
}

fn expected(list: &[(FindingKind, Option<&str>)]) -> Vec<(FindingKind, Option<String>)> {
    list.iter()
        .map(|(k, f)| (*k, f.map(str::to_string)))
        .collect()
}

fn pair(case: &Case) -> (Value, Value) {
    let old = qemu_dump();
    let mut new = old.clone();
    (case.change)(&mut new);
    (old, new)
}

#[test]
fn every_change_class_is_flagged_and_classified() {
    for case in CASES {
        let (old, new) = pair(case);
        let r = compare(&old, &new).unwrap();
        assert_eq!(
            kinds(&r.forward),
            expected(case.forward),
            "{}: forward",
            case.name
        );
        assert_eq!(
            kinds(&r.backward),
            expected(case.backward),
            "{}: backward",
            case.name
        );
        assert_eq!(
            r.is_forward_compatible(),
            case.forward_ok,
            "{}: {r:#?}",
            case.name
        );
        assert_eq!(
            r.is_compatible_both_ways(),
            case.both_ok,
            "{}: {r:#?}",
            case.name
        );
        // Every flagged problem names the mutated section.
        for f in r.all() {
            assert!(
                ["ps2-mouse", "i8042", "vmmouse"].contains(&f.section.as_str()),
                "{f:?}"
            );
        }
    }
}

#[test]
fn qemus_dump_against_itself_and_a_mutated_copy() {
    let qemu = qemu_dump();
    let pass = check(&qemu, &qemu).unwrap();
    assert!(
        pass.findings.is_empty() && pass.warnings.is_empty(),
        "{pass:?}"
    );
    // Every device's fields, sizes and subsections shifted at once.
    let mut mutated = qemu.clone();
    mutated["virtio-net-device"]["Description"]["version_id"] = json!(99);
    mouse_fields(&mut mutated)[2]["size"] = json!(2);
    mutated["vmschkmachine"] = json!({"Name": "pc-q35-7.2"});
    let mut old = qemu.clone();
    old["vmschkmachine"] = json!({"Name": "pc-i440fx-7.2"});
    let r = compare(&old, &mutated).unwrap();
    assert_eq!(
        r.warnings,
        ["Warning: checking incompatible machine types: \"pc-i440fx-7.2\", \"pc-q35-7.2\""]
    );
    let messages: Vec<_> = r.forward.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        messages,
        ["Section \"ps2-mouse\" Description \"ps2mouse\" Field \"mouse_resolution\" size mismatch: 1 , 2"]
    );
    assert_eq!(r.forward[0].breaks, Breaks::Both);
    let back: Vec<_> = r.backward.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        back,
        ["Section \"virtio-net-device\" Description \"virtio-net\": version error: 99 > 11"]
    );
}

#[test]
fn our_catalog_dump_passes_against_qemus() {
    // Our devices as QEMU 7.2 dumps them: compatible both ways (struct sizes differ,
    // which the rules ignore).
    let ours = vmstate_examples::dump::dump_vmstate(
        "pc-i440fx-7.2",
        &vmstate_devices::schema::catalog::device_types(),
    );
    let mut qemu = qemu_dump();
    let keep = [
        "i8042",
        "ps2-kbd",
        "ps2-mouse",
        "virtio-net-device",
        "virtio-blk-device",
        "virtio-rng-device",
        "virtio-balloon-device",
    ];
    qemu.as_object_mut()
        .unwrap()
        .retain(|k, _| keep.contains(&k.as_str()));
    qemu["vmschkmachine"] = json!({"Name": "pc-i440fx-7.2"});
    let r = compare(&qemu, &ours).unwrap();
    assert!(r.forward.is_empty() && r.backward.is_empty(), "{r:#?}");
}

// ---- the binary ----

fn vmstate(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmstate"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

#[test]
fn the_binary_exits_0_compatible_1_not_2_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let old = qemu_dump();
    let src = write(dir.path(), "old.json", &old);
    let mut new = old.clone();
    mouse_fields(&mut new).pop();
    let bad_new = write(dir.path(), "new.json", &new);
    let (s, d) = (src.to_str().unwrap(), bad_new.to_str().unwrap());

    let (code, out, _) = vmstate(&["check", s, s]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0 problem(s)"), "{out}");

    let (code, out, _) = vmstate(&["check", "-s", s, "-d", d]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("expected field \"mouse_buttons\", while dest has no further fields  [breaks both directions]"),
        "{out}"
    );
    let (code, out, _) = vmstate(&["check", s, d, "--json"]);
    assert_eq!(code, Some(1));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["compatible"], false);
    assert_eq!(v["qemu_problems"], 1);
    assert_eq!(v["findings"][0]["kind"], "field-removed");
    assert_eq!(v["findings"][0]["breaks"], "both");
    assert_eq!(v["findings"][0]["field"], "mouse_buttons");

    // A version bump with a since field: old -> new works, unless both ways are required.
    let mut bumped = old.clone();
    mouse_fields(&mut bumped).push(new_field("mouse_dw", 3, 4));
    mouse_versions(&mut bumped, 3, 2);
    let b = write(dir.path(), "bumped.json", &bumped);
    let b = b.to_str().unwrap();
    assert_eq!(vmstate(&["check", s, b]).0, Some(0));
    assert_eq!(vmstate(&["check", s, b, "--both-ways"]).0, Some(1));
    assert_eq!(vmstate(&["check", s, b, "--reverse"]).0, Some(1));

    // Bad input: unreadable, not JSON, not the shape.
    let not_json = dir.path().join("x.json");
    std::fs::write(&not_json, "{ nope").unwrap();
    let wrong = write(dir.path(), "wrong.json", &json!({"dev": {"Name": "dev"}}));
    for (args, needle) in [
        (
            vec!["check", s, "/nonexistent/dump.json"],
            "/nonexistent/dump.json",
        ),
        (vec!["check", s, not_json.to_str().unwrap()], "not JSON"),
        (
            vec!["check", wrong.to_str().unwrap(), s],
            "/dev: \"version_id\" is missing",
        ),
    ] {
        let (code, _, err) = vmstate(&args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Usage errors are exit 2 too (clap).
    assert_eq!(vmstate(&["check", s]).0, Some(2));
    assert_eq!(vmstate(&["check", s, d, "-s", s]).0, Some(2));
}

// ---- beside QEMU's own script ----

/// QEMU 7.2's `scripts/vmstate-static-checker.py` (GPL-2.0, so not in this
/// repository): `VMSTATE_QEMU_STATIC_CHECKER`, or where a QEMU source tree or
/// package would put it.
fn qemu_checker() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("VMSTATE_QEMU_STATIC_CHECKER") {
        return Ok(PathBuf::from(p));
    }
    let candidates = [
        "/usr/share/qemu/scripts/vmstate-static-checker.py",
        "/usr/lib/qemu/scripts/vmstate-static-checker.py",
        "/usr/src/qemu/scripts/vmstate-static-checker.py",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            "QEMU's scripts/vmstate-static-checker.py is not installed (no Debian binary \
             package ships it; extract it from the qemu source package and set \
             VMSTATE_QEMU_STATIC_CHECKER=/path/to/vmstate-static-checker.py)"
                .to_string()
        })
}

/// QEMU's lines for one pass, with its one known glitch undone: the section-level
/// "minimum version" message is never finished, so its `Section "X" ` prefix
/// runs into the next line.
fn run_qemu_checker(script: &Path, src: &Path, dest: &Path) -> (i32, Vec<String>) {
    let out = Command::new("python3")
        .arg(script)
        .arg("-s")
        .arg(src)
        .arg("-d")
        .arg(dest)
        .output()
        .expect("python3 runs");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut l = l.to_string();
            while let Some(rest) = l.strip_prefix("Section \"") {
                let Some(end) = rest.find("\" Section \"") else {
                    break;
                };
                l = rest[end + 2..].to_string();
            }
            l
        })
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

/// Whether a test that needs QEMU or its scripts must fail instead of skipping
/// (`VMSTATE_REQUIRE_QEMU=1`, as `.ci/run` sets it).
fn qemu_required() -> bool {
    std::env::var("VMSTATE_REQUIRE_QEMU").is_ok_and(|v| v == "1")
        || std::env::var_os("VMSTATE_REQUIRE_QEMU_CHECKER").is_some()
}

/// QEMU's script, or `None` after printing why the comparison is skipped
/// (a panic when QEMU is required).
fn qemu_checker_or_skip() -> Option<PathBuf> {
    match qemu_checker() {
        Ok(p) if p.exists() => Some(p),
        Ok(p) => skip_or_fail(&format!(
            "VMSTATE_QEMU_STATIC_CHECKER={} does not exist",
            p.display()
        )),
        Err(why) => skip_or_fail(&why),
    }
}

fn skip_or_fail<T>(why: &str) -> Option<T> {
    if qemu_required() {
        panic!("{why} (and VMSTATE_REQUIRE_QEMU=1)");
    }
    eprintln!("skipping the comparison with QEMU's checker: {why}");
    None
}

/// Our verdict and lines for `-s src -d dest` equal those of QEMU's script.
fn same_as_qemus_script(script: &Path, dir: &Path, src: &Value, dest: &Value, what: &str) {
    let s_path = write(dir, "src.json", src);
    let d_path = write(dir, "dest.json", dest);
    let ours = check(src, dest).unwrap();
    let (status, lines) = run_qemu_checker(script, &s_path, &d_path);
    let mut expected: Vec<String> = ours.warnings.clone();
    expected.extend(ours.findings.iter().map(|f| f.message.clone()));
    assert_eq!(lines, expected, "{what}");
    assert_eq!(status, i32::from(ours.qemu_exit_status()), "{what}");
}

#[test]
fn same_findings_as_qemus_script_on_every_pair() {
    let Some(script) = qemu_checker_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for case in CASES {
        let (old, new) = pair(case);
        same_as_qemus_script(&script, dir.path(), &old, &new, case.name);
        let back = format!("{} (reversed)", case.name);
        same_as_qemus_script(&script, dir.path(), &new, &old, &back);
    }
}

/// `qemu-system-x86_64 -M MACHINE -dump-vmstate FILE`, parsed; `None` (after
/// saying why) when QEMU is absent.
fn qemu_live_dump(dir: &Path, machine: &str) -> Option<Value> {
    let file = dir.join(format!("{machine}.json"));
    let out = match Command::new("qemu-system-x86_64")
        .args([
            "-M",
            machine,
            "-nodefaults",
            "-display",
            "none",
            "-dump-vmstate",
        ])
        .arg(&file)
        .output()
    {
        Ok(o) => o,
        Err(e) => return skip_or_fail(&format!("qemu-system-x86_64 does not run: {e}")),
    };
    assert!(
        out.status.success(),
        "qemu -dump-vmstate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap())
}

#[test]
fn same_findings_as_qemus_script_on_qemus_own_dumps() {
    let Some(script) = qemu_checker_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(i440fx) = qemu_live_dump(dir.path(), "pc-i440fx-7.2") else {
        return;
    };
    let Some(q35) = qemu_live_dump(dir.path(), "pc-q35-7.2") else {
        return;
    };
    let Some(old_pc) = qemu_live_dump(dir.path(), "pc-i440fx-2.12") else {
        return;
    };
    assert!(i440fx.as_object().unwrap().len() > 100, "a full dump");
    // Every crafted change, now on QEMU's full dump of the machine.
    for case in CASES {
        let mut new = i440fx.clone();
        (case.change)(&mut new);
        // (Both directions of every case run on the extract above; here one,
        // alternating, keeps the test short.)
        if case.name.len() % 2 == 0 {
            same_as_qemus_script(&script, dir.path(), &i440fx, &new, case.name);
        } else {
            let back = format!("{} (reversed, full dump)", case.name);
            same_as_qemus_script(&script, dir.path(), &new, &i440fx, &back);
        }
    }
    // Whole machines against each other (different machine types, device sets,
    // versions): whatever QEMU's script says, we say.
    let pairs = [
        (&i440fx, &i440fx, "i440fx against itself"),
        (&i440fx, &q35, "i440fx -> q35"),
        (&q35, &i440fx, "q35 -> i440fx"),
        (&old_pc, &i440fx, "pc-i440fx-2.12 -> 7.2"),
        (&i440fx, &old_pc, "7.2 -> pc-i440fx-2.12"),
    ];
    for (src, dest, what) in pairs {
        same_as_qemus_script(&script, dir.path(), src, dest, what);
    }
    // Our catalog's dump against QEMU's, both ways.
    let ours = vmstate_examples::dump::dump_vmstate(
        "pc-i440fx-7.2",
        &vmstate_devices::schema::catalog::device_types(),
    );
    same_as_qemus_script(&script, dir.path(), &i440fx, &ours, "QEMU -> ours");
    same_as_qemus_script(&script, dir.path(), &ours, &i440fx, "ours -> QEMU");
}

// ---- hostile dumps ----

/// JSON-pointer paths of every node of `v`.
fn paths(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                paths(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                paths(c, p, out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_node_replaced_or_removed_is_a_verdict_or_an_error_never_a_panic() {
    let qemu = qemu_dump();
    let mut all = Vec::new();
    paths(&qemu, String::new(), &mut all);
    let replacements = [
        json!(null),
        json!("x"),
        json!(-1),
        json!(1.5),
        json!([]),
        json!({}),
    ];
    let mut errors = 0;
    for p in &all {
        for r in &replacements {
            let mut bad = qemu.clone();
            *bad.pointer_mut(p).unwrap() = r.clone();
            for (s, d) in [(&qemu, &bad), (&bad, &qemu)] {
                match compare(s, d) {
                    Ok(_) => {}
                    Err(e) => {
                        errors += 1;
                        assert!(!e.path.is_empty() && !e.what.is_empty(), "{p}: {e}");
                    }
                }
            }
        }
        // Removing a node (the key of an object, an element of an array).
        let (parent, last) = p.rsplit_once('/').unwrap();
        let mut bad = qemu.clone();
        match bad
            .pointer_mut(if parent.is_empty() { "" } else { parent })
            .unwrap()
        {
            Value::Object(m) => {
                m.shift_remove(&last.replace("~1", "/").replace("~0", "~"));
            }
            Value::Array(a) => {
                a.remove(last.parse::<usize>().unwrap());
            }
            _ => unreachable!("a parent is a container"),
        }
        let _ = compare(&qemu, &bad);
        let _ = compare(&bad, &qemu);
    }
    assert!(all.len() > 400, "{} nodes", all.len());
    assert!(
        errors > all.len(),
        "malformed values are reported ({errors})"
    );
}
