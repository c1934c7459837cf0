//! QEMU's `-dump-vmstate` JSON (qemu-wire.md §8.2) from static descriptions.

use serde_json::{json, Map, Value};

use vmstate_runtime::vmstate::{FieldDescription, FieldLayout, VmStateDescription};

/// One top-level entry of a dump: a device type and its vmsd.
#[derive(Debug, Clone, Copy)]
pub struct DumpEntry {
    /// The key QEMU uses: the QOM type name (`"i8042"`).
    pub qom_type: &'static str,
    /// The device's vmsd.
    pub description: &'static VmStateDescription,
}

impl DumpEntry {
    /// An entry for `qom_type` with `description`.
    pub const fn new(qom_type: &'static str, description: &'static VmStateDescription) -> Self {
        DumpEntry {
            qom_type,
            description,
        }
    }
}

/// The `size` QEMU prints for a field: the element size. For nested structs QEMU
/// prints the host C struct size, which a Rust implementation does not have; this
/// prints the wire size of the struct's fixed fields instead (the checker ignores
/// the size of fields with a nested description).
fn field_size(f: &FieldDescription) -> u64 {
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

/// One vmsd as `-dump-vmstate` prints it: name, versions, "Fields" (the fields
/// on the wire), "Subsections" when there are any.
///
/// ```
/// use vmstate_devices::schema::dump::vmsd_json;
/// use vmstate_runtime::VmState;
///
/// #[derive(VmState)]
/// #[vmstate(name = "uart", version = 2)]
/// struct Uart { lcr: u8, #[vmstate(since = 2)] div: u16 }
///
/// let v = vmsd_json(Uart::DESCRIPTION);
/// assert_eq!(v["name"], "uart");
/// assert_eq!(v["Fields"][1]["field"], "div");
/// assert_eq!(v["Fields"][1]["version_id"], 2);
/// assert_eq!(v["Fields"][1]["size"], 2);
/// ```
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

/// The whole `-dump-vmstate` document: `"vmschkmachine"` first, then the
/// entries sorted by QOM type name, as QEMU writes them.
///
/// ```
/// use vmstate_devices::schema::dump::{dump_vmstate, DumpEntry};
/// use vmstate_runtime::VmState;
///
/// #[derive(VmState)]
/// #[vmstate(name = "uart", version = 1)]
/// struct Uart { lcr: u8 }
///
/// let v = dump_vmstate("pc-i440fx-7.2", &[DumpEntry::new("isa-serial", Uart::DESCRIPTION)]);
/// assert_eq!(v["vmschkmachine"]["Name"], "pc-i440fx-7.2");
/// assert_eq!(v["isa-serial"]["Description"]["name"], "uart");
/// ```
pub fn dump_vmstate(machine: &str, entries: &[DumpEntry]) -> Value {
    let mut m = Map::new();
    m.insert("vmschkmachine".into(), json!({ "Name": machine }));
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by_key(|e| e.qom_type);
    for e in sorted {
        let d = e.description;
        let mut o = Map::new();
        o.insert("Name".into(), json!(e.qom_type));
        o.insert("version_id".into(), json!(d.version_id));
        o.insert("minimum_version_id".into(), json!(d.minimum_version_id));
        o.insert("Description".into(), vmsd_json(d));
        m.insert(e.qom_type.into(), Value::Object(o));
    }
    Value::Object(m)
}

/// `-dump-vmstate` text: pretty-printed with 2-space indentation, newline-terminated.
pub fn dump_vmstate_text(machine: &str, entries: &[DumpEntry]) -> String {
    let mut s = serde_json::to_string_pretty(&dump_vmstate(machine, entries))
        .expect("serialising a Value cannot fail");
    s.push('\n');
    s
}
