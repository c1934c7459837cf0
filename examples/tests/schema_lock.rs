//! The schema lock: `vmstate-devices/schema/vmstate-schema.json` holds the
//! `-dump-vmstate` dump of every catalog device as last released. A layout
//! change fails here: with the problems and how to fix them when it breaks
//! migration from the locked layout (a field added without a version bump, a
//! `since` field or a subsection: Firecracker 1.3.0's mistake), or with the
//! command that renews the lock when the change is compatible.

use std::path::PathBuf;

use serde_json::{json, Value};
use vmstate_examples::dump::catalog_dump_text;
use vmstate_examples::schema::check::{compare, Finding, FindingKind};

const RELOCK: &str = "cargo run -p vmstate-examples --bin vmstate -- docs --format json \
                      --output vmstate-devices/schema/vmstate-schema.json";

fn lock_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vmstate-devices/schema/vmstate-schema.json")
}

/// How to fix one finding, `added` when the new layout has what the locked lacks.
fn hint(f: &Finding, added: bool) -> String {
    let field = f.field.as_deref().unwrap_or("?");
    let desc = f.description.as_deref().unwrap_or(&f.section);
    match (f.kind, added) {
        (FindingKind::FieldRemoved, true) => format!(
            "field `{field}` of \"{desc}\" was added without a version bump: give it \
             #[vmstate(since = N)] with N the vmsd's version plus one and set `version = N`, \
             or send it in a subsection with a `needed` test"
        ),
        (FindingKind::FieldRemoved, false) => format!(
            "field `{field}` of \"{desc}\" was removed: keep its bytes as \
             #[vmstate(unused = SIZE)], or raise minimum_version (old streams then fail to load)"
        ),
        (FindingKind::SizeMismatch, _) => format!(
            "field `{field}` of \"{desc}\" changed its wire size: keep the old type, or add \
             the new one as a `since` field with a version bump"
        ),
        (FindingKind::VersionTooOld, _) => format!(
            "\"{desc}\": minimum_version was raised above the locked version, so streams of \
             the locked layout no longer load"
        ),
        (FindingKind::VersionTooNew, _) => format!("\"{desc}\": the version went down"),
        (FindingKind::SubsectionMissing, _) | (FindingKind::EntryMissing, _) => format!(
            "\"{desc}\": a subsection the locked layout sends is gone, so its streams no \
             longer load"
        ),
        (FindingKind::SectionMissing, _) => {
            format!("device \"{}\" left the catalog", f.section)
        }
        _ => format!("\"{desc}\": fields were reordered, renamed or restructured"),
    }
}

/// `Ok` when `current` is the locked layout; otherwise what changed and what to do.
fn verdict(locked: &Value, current: &Value) -> Result<(), String> {
    if locked == current {
        return Ok(());
    }
    let report = compare(locked, current).map_err(|e| format!("the lock is unreadable: {e}"))?;
    let forward = report.forward.iter().map(|f| (f, false));
    let backward = report.backward.iter().map(|f| (f, true));
    let all: Vec<_> = forward.chain(backward).collect();
    let breaking: Vec<String> = all
        .iter()
        .filter(|(f, _)| f.breaks.forward())
        .map(|(f, added)| format!("  {f}\n    fix: {}", hint(f, *added)))
        .collect();
    if !breaking.is_empty() {
        return Err(format!(
            "a device layout changed so that streams of the locked layout (the last release) \
             no longer load:\n{}\nFix the layout; renew the lock only for an intended break, with\n\t{RELOCK}",
            breaking.join("\n")
        ));
    }
    let changes: Vec<String> = all.iter().map(|(f, _)| format!("  {f}")).collect();
    Err(format!(
        "a device layout changed compatibly (old streams still load){}\nRenew the lock with\n\t{RELOCK}",
        if changes.is_empty() {
            String::new()
        } else {
            format!(":\n{}", changes.join("\n"))
        }
    ))
}

#[test]
fn the_catalog_matches_the_schema_lock() {
    let path = lock_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with\n\t{RELOCK}", path.display()));
    let locked: Value = serde_json::from_str(&text).unwrap();
    let current: Value = serde_json::from_str(&catalog_dump_text()).unwrap();
    if let Err(why) = verdict(&locked, &current) {
        panic!("{}: {why}", path.display());
    }
    assert_eq!(
        text,
        catalog_dump_text(),
        "same JSON, other formatting: renew with\n\t{RELOCK}"
    );
}

fn mouse_fields(v: &mut Value) -> &mut Vec<Value> {
    v["ps2-mouse"]["Description"]["Fields"]
        .as_array_mut()
        .unwrap()
}

fn bump_mouse(v: &mut Value, version: u64) {
    v["ps2-mouse"]["version_id"] = json!(version);
    v["ps2-mouse"]["Description"]["version_id"] = json!(version);
}

/// A change to the current layout, and what the lock's message must say (`None`: passes).
type LockCase = (&'static str, fn(&mut Value), Option<&'static str>);

#[test]
fn the_lock_catches_each_change_with_its_fix() {
    let locked: Value = serde_json::from_str(&catalog_dump_text()).unwrap();
    let cases: &[LockCase] = &[
        ("unchanged", |_| {}, None),
        (
            "field added without a version bump",
            |v| {
                mouse_fields(v).push(
                    json!({"field": "mouse_dw", "version_id": 0, "field_exists": false, "size": 4}),
                )
            },
            Some("was added without a version bump"),
        ),
        (
            "field added with since and a bump",
            |v| {
                mouse_fields(v).push(
                    json!({"field": "mouse_dw", "version_id": 3, "field_exists": false, "size": 4}),
                );
                bump_mouse(v, 3);
            },
            Some("changed compatibly"),
        ),
        (
            "field removed",
            |v| {
                mouse_fields(v).pop();
            },
            Some("field `mouse_buttons` of \"ps2mouse\" was removed"),
        ),
        (
            "size changed",
            |v| mouse_fields(v)[7]["size"] = json!(8),
            Some("changed its wire size"),
        ),
        (
            "minimum version raised",
            |v| {
                bump_mouse(v, 3);
                v["ps2-mouse"]["Description"]["minimum_version_id"] = json!(3);
            },
            Some("minimum_version was raised"),
        ),
        (
            "subsection removed",
            |v| {
                v["i8042"]["Description"]["Fields"][0]["Description"]["Subsections"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            },
            Some("a subsection the locked layout sends is gone"),
        ),
        (
            "device removed",
            |v| {
                v.as_object_mut().unwrap().remove("ps2-kbd");
            },
            Some("device \"ps2-kbd\" left the catalog"),
        ),
    ];
    for (name, change, want) in cases {
        let mut current = locked.clone();
        change(&mut current);
        match (verdict(&locked, &current), want) {
            (Ok(()), None) => {}
            (Err(msg), Some(want)) => {
                assert!(msg.contains(want), "{name}: {msg}");
                assert!(msg.contains(RELOCK), "{name}: {msg}");
            }
            (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
        }
    }
}
