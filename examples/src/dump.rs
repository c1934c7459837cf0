//! Static descriptions of the built-in device types, printed two ways: as wire
//! layout tables ([`VmStateDescription::layout_table`]) and as QEMU's
//! `-dump-vmstate` JSON (qemu-wire.md §8.2), which QEMU's
//! `scripts/vmstate-static-checker.py` compares between two builds.

use serde_json::{json, Map, Value};
use vmstate_devices::pckbd::{Ps2Keyboard, Ps2Mouse, I8042};
use vmstate_runtime::{FieldLayout, VmState, VmStateDescription};

/// A built-in device type: its QOM type name (what `-dump-vmstate` keys it by)
/// and its description.
#[derive(Debug, Clone, Copy)]
pub struct DeviceType {
    /// QOM type name ("i8042").
    pub qom: &'static str,
    /// The Rust type.
    pub rust: &'static str,
    /// Its static description (the section's vmsd).
    pub description: &'static VmStateDescription,
}

/// The device types of this workspace, in QEMU's section order.
pub const DEVICE_TYPES: &[DeviceType] = &[
    DeviceType {
        qom: "ps2-kbd",
        rust: "vmstate_devices::pckbd::Ps2Keyboard",
        description: Ps2Keyboard::DESCRIPTION,
    },
    DeviceType {
        qom: "ps2-mouse",
        rust: "vmstate_devices::pckbd::Ps2Mouse",
        description: Ps2Mouse::DESCRIPTION,
    },
    DeviceType {
        qom: "i8042",
        rust: "vmstate_devices::pckbd::I8042",
        description: I8042::DESCRIPTION,
    },
];

/// Looks a type up by QOM name, Rust type name (full or last segment) or
/// section name, case-insensitively.
pub fn find_type(name: &str) -> Option<&'static DeviceType> {
    DEVICE_TYPES.iter().find(|t| {
        let short = t.rust.rsplit("::").next().unwrap_or(t.rust);
        [t.qom, t.rust, short, t.description.name]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    })
}

/// The wire layout of a type, with a heading.
pub fn describe(t: &DeviceType) -> String {
    let d = t.description;
    let size = match d.fixed_body_size() {
        Some(s) => format!("{s} bytes"),
        None => "variable size (subsections or variable fields)".to_string(),
    };
    format!(
        "== {} (QEMU device \"{}\", section \"{}\" version {}, {size})\n{}",
        t.rust,
        t.qom,
        d.name,
        d.version_id,
        d.layout_table()
    )
}

/// Wire size QEMU would not know: for nested structs QEMU prints the host C
/// struct size; this prints the wire size of the struct's fields (subsections
/// excluded), which is what a Rust implementation has.
fn field_size(f: &vmstate_runtime::FieldDescription) -> u64 {
    if let Some(nested) = f.ty.nested {
        return nested
            .fields
            .iter()
            .filter_map(|g| g.fixed_wire_size())
            .sum::<usize>() as u64;
    }
    match f.layout {
        FieldLayout::Unused { size } => size as u64,
        _ => f.ty.size.unwrap_or(0) as u64,
    }
}

/// One vmsd as `-dump-vmstate` prints it: name, versions, "Fields" (only the
/// fields on the wire), "Subsections" when there are any.
pub fn vmsd_json(d: &VmStateDescription) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(d.name));
    m.insert("version_id".into(), json!(d.version_id));
    m.insert("minimum_version_id".into(), json!(d.minimum_version_id));
    let fields: Vec<Value> = d
        .fields
        .iter()
        .filter(|f| f.is_on_wire())
        .map(|f| {
            let mut fm = Map::new();
            fm.insert("field".into(), json!(f.name));
            fm.insert("version_id".into(), json!(f.version_id));
            fm.insert("field_exists".into(), json!(f.has_test));
            fm.insert("size".into(), json!(field_size(f)));
            if let Some(nested) = f.ty.nested {
                fm.insert("Description".into(), vmsd_json(nested));
            }
            Value::Object(fm)
        })
        .collect();
    m.insert("Fields".into(), Value::Array(fields));
    if !d.subsections.is_empty() {
        let subs = d
            .subsections
            .iter()
            .map(|s| vmsd_json(s.description))
            .collect();
        m.insert("Subsections".into(), Value::Array(subs));
    }
    Value::Object(m)
}

/// The whole `-dump-vmstate` document for `types`, entries sorted by QOM type
/// name as QEMU sorts them.
///
/// ```
/// let v = vmstate_examples::dump::dump_vmstate("pc-i440fx-7.2", vmstate_examples::dump::DEVICE_TYPES);
/// assert_eq!(v["i8042"]["Description"]["Fields"][0]["field"], "kbd");
/// assert_eq!(v["ps2-mouse"]["version_id"], 2);
/// ```
pub fn dump_vmstate(machine: &str, types: &[DeviceType]) -> Value {
    let mut m = Map::new();
    m.insert("vmschkmachine".into(), json!({ "Name": machine }));
    let mut sorted: Vec<_> = types.iter().collect();
    sorted.sort_by_key(|t| t.qom);
    for t in sorted {
        let d = t.description;
        let mut e = Map::new();
        e.insert("Name".into(), json!(t.qom));
        e.insert("version_id".into(), json!(d.version_id));
        e.insert("minimum_version_id".into(), json!(d.minimum_version_id));
        e.insert("Description".into(), vmsd_json(d));
        m.insert(t.qom.into(), Value::Object(e));
    }
    Value::Object(m)
}

/// `-dump-vmstate` text: pretty-printed with 2-space indentation.
pub fn dump_vmstate_text(machine: &str, types: &[DeviceType]) -> String {
    serde_json::to_string_pretty(&dump_vmstate(machine, types))
        .expect("serialising a Value cannot fail")
}
