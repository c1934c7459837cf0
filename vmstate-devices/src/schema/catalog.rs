//! Static descriptions of the catalog's device models
//! ([`crate::catalog::DEVICES`]), printed three ways: as wire layout
//! tables ([`VmStateDescription::layout_table`]), as QEMU's `-dump-vmstate`
//! JSON ([`crate::schema::dump`], qemu-wire.md §8.2), and as the
//! catalog's Markdown page ([`crate::catalog::markdown`]).
//!
//! This module only selects and formats; the device list is the catalog's and
//! the JSON shape is the runtime's.

use crate::catalog::{self, DeviceModel};
use crate::schema::dump::{self as schema_dump, DumpEntry};
use serde_json::Value;
use vmstate_runtime::VmStateDescription;

/// The machine type the dumps name when none is given.
pub const DEFAULT_MACHINE: &str = "pc-i440fx-7.2";

/// A catalog device that QEMU dumps: a qdev device whose section is one vmsd.
#[derive(Debug, Clone, Copy)]
pub struct DeviceType {
    /// QOM type name ("i8042"), what `-dump-vmstate` keys it by.
    pub qom: &'static str,
    /// The Rust type.
    pub rust: &'static str,
    /// Its static description (the section's vmsd).
    pub description: &'static VmStateDescription,
    /// Its catalog entry.
    pub model: &'static DeviceModel,
}

impl AsRef<DeviceType> for DeviceType {
    fn as_ref(&self) -> &DeviceType {
        self
    }
}

/// The dumpable device types of `models`, in catalog order.
fn dumpable(models: &'static [DeviceModel]) -> Vec<DeviceType> {
    models
        .iter()
        .filter_map(|m| {
            Some(DeviceType {
                qom: m.qom_type?,
                rust: m.rust_type,
                description: m.vmsd?,
                model: m,
            })
        })
        .collect()
}

/// The catalog's dumpable device types.
///
/// ```
/// let qom: Vec<_> = vmstate_devices::schema::catalog::device_types().iter().map(|t| t.qom).collect();
/// assert_eq!(qom[..3], ["ps2-kbd", "ps2-mouse", "i8042"]);
/// assert_eq!(qom[3..], ["virtio-net-device", "virtio-blk-device", "virtio-rng-device", "virtio-balloon-device"]);
/// ```
pub fn device_types() -> Vec<DeviceType> {
    dumpable(catalog::DEVICES)
}

/// Looks a type up by QOM name, Rust type name (full or last segment) or
/// section name, case-insensitively.
pub fn find_type(name: &str) -> Option<DeviceType> {
    device_types().into_iter().find(|t| {
        let short = t.rust.rsplit("::").next().unwrap_or(t.rust);
        [t.qom, t.rust, short, t.description.name]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    })
}

/// The wire layout of a type, with a heading.
pub fn describe(t: impl AsRef<DeviceType>) -> String {
    let t = t.as_ref();
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

/// The `-dump-vmstate` entries of `types`.
pub fn dump_entries(types: &[DeviceType]) -> Vec<DumpEntry> {
    types
        .iter()
        .map(|t| DumpEntry::new(t.qom, t.description))
        .collect()
}

/// The whole `-dump-vmstate` document for `types`.
///
/// ```
/// use vmstate_devices::schema::catalog::{device_types, dump_vmstate};
/// let v = dump_vmstate("pc-i440fx-7.2", &device_types());
/// assert_eq!(v["i8042"]["Description"]["Fields"][0]["field"], "kbd");
/// assert_eq!(v["ps2-mouse"]["version_id"], 2);
/// ```
pub fn dump_vmstate(machine: &str, types: &[DeviceType]) -> Value {
    schema_dump::dump_vmstate(machine, &dump_entries(types))
}

/// `-dump-vmstate` text of `types`: pretty-printed with 2-space indentation.
pub fn dump_vmstate_text(machine: &str, types: &[DeviceType]) -> String {
    schema_dump::dump_vmstate_text(machine, &dump_entries(types))
}

/// The catalog's `-dump-vmstate` text: what `vmstate-devices/schema/vmstate-schema.json` holds.
pub fn catalog_dump_text() -> String {
    dump_vmstate_text(DEFAULT_MACHINE, &device_types())
}

/// The catalog's Markdown page: what `vmstate-devices/WIRE-FORMAT.md` holds.
pub fn catalog_markdown() -> vmstate_runtime::Result<String> {
    catalog::markdown::render(catalog::DEVICES)
}
