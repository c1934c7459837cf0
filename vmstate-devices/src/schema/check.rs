//! The static compatibility check of two `-dump-vmstate` dumps, by the rules of
//! QEMU's `scripts/vmstate-static-checker.py` (qemu-wire.md §8.3), plus the
//! migration direction each problem breaks.
//!
//! [`check`] is one pass, source → destination, and finds exactly the problems
//! QEMU's script prints for the same pair (its exit status is their count): the
//! same sections, descriptions and fields, with the same text. [`compare`] runs
//! the pass both ways (the script's `--reverse`) and classifies every finding as
//! breaking forward migration (old → new), backward migration (new → old), both,
//! or neither (a field renamed without a change of its wire bytes).
//!
//! Dumps are untrusted input: a dump that is not a JSON object of QEMU's shape
//! is a [`SchemaError`] saying where, never a panic.

use std::fmt;

use serde_json::{Map, Value};

/// A dump that does not have the `-dump-vmstate` shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a -dump-vmstate dump: {path}: {what}")]
pub struct SchemaError {
    /// Where in the document, as a JSON-pointer-like path (`/i8042/Description/Fields/0`).
    pub path: String,
    /// What is wrong there.
    pub what: String,
}

/// What kind of problem a finding is (one per message of QEMU's checker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// A section (QOM type) of the source is not in the destination.
    SectionMissing,
    /// A top-level entry of a section (e.g. "Description") is missing in the destination.
    EntryMissing,
    /// Source version greater than the destination's.
    VersionTooNew,
    /// Source version below the destination's minimum version.
    VersionTooOld,
    /// A description has another vmsd name in the destination.
    DescriptionRenamed,
    /// Fields differ in name at the same position (the rest is not compared).
    FieldMismatch,
    /// The source has a field where the destination has no more fields.
    FieldRemoved,
    /// `unused` padding does not add up to the fields it stands for.
    UnusedSizeMismatch,
    /// A field's element size differs.
    SizeMismatch,
    /// A field with a nested description in the source has none in the destination.
    DescriptionMissing,
    /// A subsection of the source is unknown to the destination.
    SubsectionMissing,
}

impl FindingKind {
    /// A stable name (the `--json` output's `kind`).
    pub const fn name(self) -> &'static str {
        match self {
            FindingKind::SectionMissing => "section-missing",
            FindingKind::EntryMissing => "entry-missing",
            FindingKind::VersionTooNew => "version-too-new",
            FindingKind::VersionTooOld => "version-too-old",
            FindingKind::DescriptionRenamed => "description-renamed",
            FindingKind::FieldMismatch => "field-mismatch",
            FindingKind::FieldRemoved => "field-removed",
            FindingKind::UnusedSizeMismatch => "unused-size-mismatch",
            FindingKind::SizeMismatch => "size-mismatch",
            FindingKind::DescriptionMissing => "description-missing",
            FindingKind::SubsectionMissing => "subsection-missing",
        }
    }
}

/// Which migration directions a finding breaks, `old → new` being forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Breaks {
    /// Old → new fails, new → old works.
    Forward,
    /// New → old fails, old → new works.
    Backward,
    /// Both fail.
    Both,
    /// Neither: the checker flags it, but the bytes on the wire are the same.
    Neither,
}

impl Breaks {
    /// A stable name (the `--json` output's `breaks`).
    pub const fn name(self) -> &'static str {
        match self {
            Breaks::Forward => "forward",
            Breaks::Backward => "backward",
            Breaks::Both => "both",
            Breaks::Neither => "neither",
        }
    }

    /// Whether old → new migration fails.
    pub const fn forward(self) -> bool {
        matches!(self, Breaks::Forward | Breaks::Both)
    }

    /// Whether new → old migration fails.
    pub const fn backward(self) -> bool {
        matches!(self, Breaks::Backward | Breaks::Both)
    }

    /// The same finding seen from the other pass.
    const fn mirrored(self) -> Self {
        match self {
            Breaks::Forward => Breaks::Backward,
            Breaks::Backward => Breaks::Forward,
            other => other,
        }
    }
}

/// One problem found by a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The top-level section (QOM type name) it is in.
    pub section: String,
    /// The vmsd name of the description, when inside one.
    pub description: Option<String>,
    /// The field, when about one.
    pub field: Option<String>,
    /// What kind of problem.
    pub kind: FindingKind,
    /// The line QEMU's checker prints for it.
    pub message: String,
    /// The directions it breaks, with the pass's source as the old side.
    pub breaks: Breaks,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// The problems, in QEMU's order.
    pub findings: Vec<Finding>,
    /// Warnings that are no problems (the machine types differ).
    pub warnings: Vec<String>,
}

impl Pass {
    /// QEMU's exit status for this pass: the number of problems, capped at 255.
    pub fn qemu_exit_status(&self) -> u8 {
        self.findings.len().min(255) as u8
    }
}

/// Both passes of [`compare`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Source (old) → destination (new): what QEMU's checker prints for `-s OLD -d NEW`.
    pub forward: Vec<Finding>,
    /// Destination → source, as `--reverse` prints it, minus the problems already
    /// in `forward`; `breaks` is relative to old → new here too.
    pub backward: Vec<Finding>,
    /// Warnings of the forward pass.
    pub warnings: Vec<String>,
}

impl Report {
    /// QEMU's verdict: its checker (`-s OLD -d NEW`) finds no problem.
    pub fn qemu_compatible(&self) -> bool {
        self.forward.is_empty()
    }

    /// Whether old → new migration works: no finding of either pass breaks it
    /// (a finding that breaks neither direction, such as a renamed field of the
    /// same size, does not count).
    pub fn is_forward_compatible(&self) -> bool {
        self.all().all(|f| !f.breaks.forward())
    }

    /// Whether new → old migration works too.
    pub fn is_compatible_both_ways(&self) -> bool {
        self.all()
            .all(|f| !f.breaks.forward() && !f.breaks.backward())
    }

    /// Every finding, forward pass first.
    pub fn all(&self) -> impl Iterator<Item = &Finding> {
        self.forward.iter().chain(&self.backward)
    }
}

/// One pass of QEMU's checker: the problems migrating from `src` to `dest`.
///
/// ```
/// use serde_json::json;
/// use vmstate_devices::schema::check::{check, FindingKind};
///
/// let src = json!({"dev": {"Name": "dev", "version_id": 2, "minimum_version_id": 1,
///     "Description": {"name": "dev", "version_id": 2, "minimum_version_id": 1, "Fields": []}}});
/// let dest = json!({"vmschkmachine": {"Name": "pc"}});
/// let pass = check(&src, &dest)?;
/// assert_eq!(pass.findings[0].kind, FindingKind::SectionMissing);
/// assert_eq!(pass.findings[0].message, "Section \"dev\" does not exist in dest");
/// # Ok::<(), vmstate_devices::schema::check::SchemaError>(())
/// ```
pub fn check(src: &Value, dest: &Value) -> Result<Pass, SchemaError> {
    let src = Dump::parse(src)?;
    let dest = Dump::parse(dest)?;
    let mut cx = Pass::default();
    for (name, s) in &src.sections {
        let Some(d) = dest.section(name) else {
            cx.findings.push(Finding {
                section: name.clone(),
                description: None,
                field: None,
                kind: FindingKind::SectionMissing,
                message: format!("Section \"{name}\" does not exist in dest"),
                breaks: Breaks::Forward,
            });
            continue;
        };
        match (s, d) {
            (Section::Machine(a), Section::Machine(b)) => {
                if a != b {
                    cx.warnings.push(format!(
                        "Warning: checking incompatible machine types: \"{a}\", \"{b}\""
                    ));
                }
            }
            (Section::Device(s), Section::Device(d)) => check_section(&mut cx, name, s, d),
            _ => {
                return Err(SchemaError {
                    path: format!("/{name}"),
                    what: "a machine entry in one dump is a device in the other".into(),
                })
            }
        }
    }
    Ok(cx)
}

/// Both passes, `old` → `new` and `new` → `old`, with every finding classified.
///
/// ```
/// use serde_json::json;
/// use vmstate_devices::schema::check::{compare, Breaks};
///
/// let dump = |v: u32, min: u32| json!({"dev": {"Name": "dev", "version_id": v, "minimum_version_id": min,
///     "Description": {"name": "dev", "version_id": v, "minimum_version_id": min, "Fields": []}}});
/// // A version bump that keeps loading the old version: old -> new works.
/// let r = compare(&dump(1, 1), &dump(2, 1))?;
/// assert!(r.forward.is_empty());
/// assert!(r.is_forward_compatible());
/// assert!(r.backward.iter().all(|f| f.breaks == Breaks::Backward));
/// assert!(!r.is_compatible_both_ways());
/// # Ok::<(), vmstate_devices::schema::check::SchemaError>(())
/// ```
pub fn compare(old: &Value, new: &Value) -> Result<Report, SchemaError> {
    let forward = check(old, new)?;
    let reverse = check(new, old)?;
    let backward = reverse
        .findings
        .into_iter()
        .map(|f| Finding {
            breaks: f.breaks.mirrored(),
            ..f
        })
        .filter(|b| {
            !forward.findings.iter().any(|f| {
                f.kind == b.kind
                    && f.section == b.section
                    && f.description == b.description
                    && f.field == b.field
            })
        })
        .collect();
    Ok(Report {
        forward: forward.findings,
        backward,
        warnings: forward.warnings,
    })
}

// ---- the dump, parsed ----

/// A parsed dump: top-level entries in document order.
struct Dump {
    sections: Vec<(String, Section)>,
}

enum Section {
    Machine(String),
    Device(DeviceEntry),
}

/// A top-level device entry.
struct DeviceEntry {
    version_id: u64,
    minimum_version_id: Option<u64>,
    /// Its keys, in order (QEMU reports each one missing in the destination).
    keys: Vec<String>,
    description: Option<Desc>,
}

/// A vmsd ("Description" or an element of "Subsections").
struct Desc {
    name: String,
    version_id: u64,
    minimum_version_id: Option<u64>,
    keys: Vec<String>,
    fields: Option<Vec<FieldEntry>>,
    subsections: Option<Vec<Desc>>,
}

struct FieldEntry {
    field: String,
    version_id: u64,
    size: u64,
    description: Option<Desc>,
}

impl Dump {
    fn parse(v: &Value) -> Result<Dump, SchemaError> {
        let top = object(v, "")?;
        let mut sections = Vec::with_capacity(top.len());
        for (name, entry) in top {
            let path = format!("/{name}");
            let o = object(entry, &path)?;
            let section = if name == "vmschkmachine" {
                Section::Machine(string(o, "Name", &path)?)
            } else {
                Section::Device(DeviceEntry {
                    version_id: number(o, "version_id", &path)?,
                    minimum_version_id: optional_number(o, "minimum_version_id", &path)?,
                    keys: o.keys().cloned().collect(),
                    description: o
                        .get("Description")
                        .map(|d| Desc::parse(d, &format!("{path}/Description")))
                        .transpose()?,
                })
            };
            sections.push((name.clone(), section));
        }
        Ok(Dump { sections })
    }

    /// The section QEMU compares `name` with: the same name, or its other name
    /// in the script's table of renamed sections.
    fn section(&self, name: &str) -> Option<&Section> {
        let find = |n: &str| self.sections.iter().find(|(k, _)| k == n).map(|(_, s)| s);
        find(name).or_else(|| renamed_section(name).and_then(find))
    }
}

impl Desc {
    fn parse(v: &Value, path: &str) -> Result<Desc, SchemaError> {
        let o = object(v, path)?;
        let fields = match o.get("Fields") {
            None => None,
            Some(f) => {
                let p = format!("{path}/Fields");
                let items = array(f, &p)?;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(FieldEntry::parse(item, &format!("{p}/{i}"))?);
                }
                Some(out)
            }
        };
        let subsections = match o.get("Subsections") {
            None => None,
            Some(s) => {
                let p = format!("{path}/Subsections");
                let items = array(s, &p)?;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(Desc::parse(item, &format!("{p}/{i}"))?);
                }
                Some(out)
            }
        };
        Ok(Desc {
            name: string(o, "name", path)?,
            version_id: number(o, "version_id", path)?,
            minimum_version_id: optional_number(o, "minimum_version_id", path)?,
            keys: o.keys().cloned().collect(),
            fields,
            subsections,
        })
    }
}

impl FieldEntry {
    fn parse(v: &Value, path: &str) -> Result<FieldEntry, SchemaError> {
        let o = object(v, path)?;
        Ok(FieldEntry {
            field: string(o, "field", path)?,
            version_id: number(o, "version_id", path)?,
            size: number(o, "size", path)?,
            description: o
                .get("Description")
                .map(|d| Desc::parse(d, &format!("{path}/Description")))
                .transpose()?,
        })
    }
}

fn bad(path: &str, what: impl Into<String>) -> SchemaError {
    SchemaError {
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
        what: what.into(),
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, SchemaError> {
    v.as_object().ok_or_else(|| bad(path, "expected an object"))
}

fn array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, SchemaError> {
    v.as_array().ok_or_else(|| bad(path, "expected an array"))
}

fn string(o: &Map<String, Value>, key: &str, path: &str) -> Result<String, SchemaError> {
    match o.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(path, format!("\"{key}\" is not a string"))),
        None => Err(bad(path, format!("\"{key}\" is missing"))),
    }
}

fn number(o: &Map<String, Value>, key: &str, path: &str) -> Result<u64, SchemaError> {
    optional_number(o, key, path)?.ok_or_else(|| bad(path, format!("\"{key}\" is missing")))
}

fn optional_number(
    o: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<u64>, SchemaError> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(path, format!("\"{key}\" is not a non-negative integer"))),
    }
}

// ---- the rules ----

/// Sections QEMU renamed; the checker pairs either name with the other.
const RENAMED_SECTIONS: &[(&str, &str)] = &[("ICH9 LPC", "ICH9-LPC"), ("e1000-82540em", "e1000")];

fn renamed_section(name: &str) -> Option<&'static str> {
    RENAMED_SECTIONS.iter().find_map(|&(a, b)| {
        if a == name {
            Some(b)
        } else if b == name {
            Some(a)
        } else {
            None
        }
    })
}

/// Field (and description) names QEMU changed without changing the wire bytes,
/// per description (or, for description names, per section): any two names of
/// one group match.
const RENAMED_FIELDS: &[(&str, &[&str])] = &[
    ("apic", &["timer", "timer_expiry"]),
    ("e1000", &["dev", "parent_obj"]),
    ("ehci", &["dev", "pcidev"]),
    ("I440FX", &["dev", "parent_obj"]),
    ("ich9_ahci", &["card", "parent_obj"]),
    ("ich9-ahci", &["ahci", "ich9_ahci"]),
    ("ioh3420", &["PCIDevice", "PCIEDevice"]),
    (
        "ioh-3240-express-root-port",
        &[
            "port.br.dev",
            "parent_obj.parent_obj.parent_obj",
            "port.br.dev.exp.aer_log",
            "parent_obj.parent_obj.parent_obj.exp.aer_log",
        ],
    ),
    (
        "cirrus_vga",
        &[
            "hw_cursor_x",
            "vga.hw_cursor_x",
            "hw_cursor_y",
            "vga.hw_cursor_y",
        ],
    ),
    ("lsiscsi", &["dev", "parent_obj"]),
    ("mch", &["d", "parent_obj"]),
    (
        "pci_bridge",
        &["bridge.dev", "parent_obj", "bridge.dev.shpc", "shpc"],
    ),
    ("pcnet", &["pci_dev", "parent_obj"]),
    ("PIIX3", &["pci_irq_levels", "pci_irq_levels_vmstate"]),
    (
        "piix4_pm",
        &[
            "dev",
            "parent_obj",
            "pci0_status",
            "acpi_pci_hotplug.acpi_pcihp_pci_status[0x0]",
            "pm1a.sts",
            "ar.pm1.evt.sts",
            "pm1a.en",
            "ar.pm1.evt.en",
            "pm1_cnt.cnt",
            "ar.pm1.cnt.cnt",
            "tmr.timer",
            "ar.tmr.timer",
            "tmr.overflow_time",
            "ar.tmr.overflow_time",
            "gpe",
            "ar.gpe",
        ],
    ),
    ("rtl8139", &["dev", "parent_obj"]),
    ("qxl", &["num_surfaces", "ssd.num_surfaces"]),
    (
        "usb-ccid",
        &["abProtocolDataStructure", "abProtocolDataStructure.data"],
    ),
    ("usb-host", &["dev", "parent_obj"]),
    ("usb-mouse", &["usb-ptr-queue", "HIDPointerEventQueue"]),
    ("usb-tablet", &["usb-ptr-queue", "HIDPointerEventQueue"]),
    ("vmware_vga", &["card", "parent_obj"]),
    ("vmware_vga_internal", &["depth", "new_depth"]),
    ("xhci", &["pci_dev", "parent_obj"]),
    ("x3130-upstream", &["PCIDevice", "PCIEDevice"]),
    (
        "xio3130-express-downstream-port",
        &[
            "port.br.dev",
            "parent_obj.parent_obj.parent_obj",
            "port.br.dev.exp.aer_log",
            "parent_obj.parent_obj.parent_obj.exp.aer_log",
        ],
    ),
    ("xio3130-downstream", &["PCIDevice", "PCIEDevice"]),
    (
        "xio3130-express-upstream-port",
        &[
            "br.dev",
            "parent_obj.parent_obj",
            "br.dev.exp.aer_log",
            "parent_obj.parent_obj.exp.aer_log",
        ],
    ),
];

/// Whether `a` and `b` name the same thing in `scope`.
fn names_match(scope: &str, a: &str, b: &str) -> bool {
    a == b
        || RENAMED_FIELDS
            .iter()
            .find(|(s, _)| *s == scope)
            .is_some_and(|(_, names)| names.contains(&a) && names.contains(&b))
}

/// Whether `item` is a struct field whose nested description starts with a
/// field named like `name` (fields moved into or out of a sub-struct).
fn opens_substruct<'a>(item: &'a FieldEntry, name: &str) -> Option<&'a [FieldEntry]> {
    let d = item.description.as_ref()?;
    let fields = d.fields.as_deref()?;
    let first = fields.first()?;
    names_match(&d.name, &first.field, name).then_some(fields)
}

struct At<'a> {
    sec: &'a str,
    desc: Option<&'a str>,
}

impl At<'_> {
    fn push(
        &self,
        cx: &mut Pass,
        field: Option<&str>,
        kind: FindingKind,
        message: String,
        breaks: Breaks,
    ) {
        cx.findings.push(Finding {
            section: self.sec.to_string(),
            description: self.desc.map(str::to_string),
            field: field.map(str::to_string),
            kind,
            message,
            breaks,
        });
    }
}

fn check_section(cx: &mut Pass, sec: &str, s: &DeviceEntry, d: &DeviceEntry) {
    // QEMU's top-level minimum-version check prints nothing countable (its
    // message is only completed for descriptions), so only the version rule
    // applies here; the section's Description carries the same versions and
    // is checked in full.
    check_version(
        cx,
        &At { sec, desc: None },
        None,
        s.version_id,
        d.version_id,
        None,
    );
    let _ = (s.minimum_version_id, d.minimum_version_id);
    for key in &s.keys {
        if !d.keys.contains(key) {
            At { sec, desc: None }.push(
                cx,
                None,
                FindingKind::EntryMissing,
                format!("Section \"{sec}\": Entry \"{key}\" missing"),
                Breaks::Both,
            );
            continue;
        }
        if key == "Description" {
            if let (Some(sd), Some(dd)) = (&s.description, &d.description) {
                check_description(cx, sec, sd, dd);
            }
        }
    }
}

/// Version rules of a section, description or field: the source version must
/// not exceed the destination's, nor be below its minimum (the minimum is only
/// checked where QEMU's checker counts it: for descriptions).
fn check_version(
    cx: &mut Pass,
    at: &At,
    field: Option<&str>,
    s_version: u64,
    d_version: u64,
    d_minimum: Option<u64>,
) {
    let prefix = match at.desc {
        Some(desc) => format!("Section \"{}\" Description \"{desc}\":", at.sec),
        None => format!("Section \"{}\"", at.sec),
    };
    if s_version > d_version {
        at.push(
            cx,
            field,
            FindingKind::VersionTooNew,
            format!("{prefix} version error: {s_version} > {d_version}"),
            Breaks::Forward,
        );
    }
    if let (Some(min), Some(_)) = (d_minimum, at.desc) {
        if s_version < min {
            at.push(
                cx,
                field,
                FindingKind::VersionTooOld,
                format!("{prefix} minimum version error: {s_version} < {min}"),
                Breaks::Forward,
            );
        }
    }
}

fn check_description(cx: &mut Pass, sec: &str, s: &Desc, d: &Desc) {
    let at = At {
        sec,
        desc: Some(&s.name),
    };
    check_version(
        cx,
        &at,
        None,
        s.version_id,
        d.version_id,
        d.minimum_version_id,
    );
    if !names_match(sec, &s.name, &d.name) {
        at.push(
            cx,
            None,
            FindingKind::DescriptionRenamed,
            format!(
                "Section \"{sec}\": Description \"{}\" missing, got \"{}\" instead; skipping",
                s.name, d.name
            ),
            Breaks::Both,
        );
        return;
    }
    for key in &s.keys {
        if !d.keys.contains(key) {
            at.push(
                cx,
                None,
                FindingKind::EntryMissing,
                format!(
                    "Section \"{sec}\" Description \"{}\": Entry \"{key}\" missing",
                    s.name
                ),
                // A missing "Subsections" breaks only what the source sends.
                if key == "Subsections" {
                    Breaks::Forward
                } else {
                    Breaks::Both
                },
            );
            continue;
        }
        match key.as_str() {
            "Fields" => {
                if let (Some(sf), Some(df)) = (&s.fields, &d.fields) {
                    check_fields(cx, &at, sf, df, d.version_id);
                }
            }
            "Subsections" => {
                if let (Some(ss), Some(ds)) = (&s.subsections, &d.subsections) {
                    check_subsections(cx, &at, ss, ds);
                }
            }
            _ => {}
        }
    }
}

fn check_subsections(cx: &mut Pass, at: &At, src: &[Desc], dest: &[Desc]) {
    let desc = at.desc.unwrap_or_default();
    for s in src {
        let mut found = false;
        for d in dest.iter().filter(|d| d.name == s.name) {
            found = true;
            check_description(cx, at.sec, s, d);
        }
        if !found {
            at.push(
                cx,
                None,
                FindingKind::SubsectionMissing,
                format!(
                    "Section \"{}\", Description \"{desc}\": Subsection \"{}\" not found",
                    at.sec, s.name
                ),
                Breaks::Forward,
            );
        }
    }
}

/// Walks the two field lists in step, as QEMU's checker does: descending into a
/// sub-struct on either side when its first field carries the other side's
/// name, letting `unused` padding stand for fields of the same total size, and
/// stopping at the first mismatch.
fn check_fields(
    cx: &mut Pass,
    at: &At,
    src: &[FieldEntry],
    dest: &[FieldEntry],
    dest_version: u64,
) {
    let desc = at.desc.unwrap_or_default();
    let sec = at.sec;
    // Each side: a stack of (list, next index); the top is the list being walked.
    let mut s_stack: Vec<(&[FieldEntry], usize)> = vec![(src, 0)];
    let mut d_stack: Vec<(&[FieldEntry], usize)> = vec![(dest, 0)];
    let mut s_item: Option<&FieldEntry> = None;
    let mut d_item: Option<&FieldEntry> = None;
    let (mut advance_src, mut advance_dest) = (true, true);
    let mut unused_left: i128 = 0;
    loop {
        if advance_src {
            let top = s_stack.last_mut().expect("the source stack is never empty");
            match top.0.get(top.1) {
                Some(item) => {
                    top.1 += 1;
                    s_item = Some(item);
                }
                None => {
                    if s_stack.len() == 1 {
                        break;
                    }
                    s_stack.pop();
                    continue;
                }
            }
        } else if unused_left == 0 {
            // Entering or leaving a destination sub-struct keeps the source item once.
            advance_src = true;
        }
        let Some(s) = s_item else { break };
        if advance_dest {
            let top = d_stack
                .last_mut()
                .expect("the destination stack is never empty");
            match top.0.get(top.1) {
                Some(item) => {
                    top.1 += 1;
                    d_item = Some(item);
                }
                None => {
                    if d_stack.len() == 1 {
                        // Removed in the destination. A field the destination's
                        // version would not expect anyway is the source's newer field.
                        at.push(
                            cx,
                            Some(&s.field),
                            FindingKind::FieldRemoved,
                            format!(
                                "Section \"{sec}\", Description \"{desc}\": expected field \"{}\", \
                                 while dest has no further fields",
                                s.field
                            ),
                            if s.version_id > dest_version {
                                Breaks::Forward
                            } else {
                                Breaks::Both
                            },
                        );
                        break;
                    }
                    d_stack.pop();
                    advance_src = false;
                    continue;
                }
            }
        } else if unused_left == 0 {
            advance_dest = true;
        }
        let Some(d) = d_item else { break };

        if unused_left > 0 {
            // Padding on one side is being matched against fields of the other.
            let (item, done) = if !advance_dest {
                (s, &mut advance_dest)
            } else if !advance_src {
                (d, &mut advance_src)
            } else {
                unused_left = 0;
                continue;
            };
            unused_left -= i128::from(item.size);
            if unused_left == 0 {
                *done = true;
                continue;
            }
            if unused_left < 0 {
                at.push(
                    cx,
                    Some(&item.field),
                    FindingKind::UnusedSizeMismatch,
                    format!(
                        "Section \"{sec}\", Description \"{desc}\": unused size mismatch near \" {}\"",
                        item.field
                    ),
                    Breaks::Both,
                );
                break;
            }
            continue;
        }

        if !names_match(desc, &s.field, &d.field) {
            if let Some(fields) = opens_substruct(d, &s.field) {
                d_stack.push((fields, 0));
                advance_src = false;
                continue;
            }
            if let Some(fields) = opens_substruct(s, &d.field) {
                s_stack.push((fields, 0));
                advance_dest = false;
                continue;
            }
            if s.field == "unused" || d.field == "unused" {
                if s.size == d.size {
                    continue;
                }
                if d.field == "unused" {
                    advance_dest = false;
                    unused_left = i128::from(d.size) - i128::from(s.size);
                    continue;
                }
                advance_src = false;
                unused_left = i128::from(s.size) - i128::from(d.size);
                continue;
            }
            // Only the names differ when the sizes match and neither is a struct:
            // the wire does not carry names.
            let breaks = if s.size == d.size && s.description.is_none() && d.description.is_none() {
                Breaks::Neither
            } else {
                Breaks::Both
            };
            at.push(
                cx,
                Some(&s.field),
                FindingKind::FieldMismatch,
                format!(
                    "Section \"{sec}\", Description \"{desc}\": expected field \"{}\", got \"{}\"; \
                     skipping rest",
                    s.field, d.field
                ),
                breaks,
            );
            break;
        }

        check_version(cx, at, Some(&s.field), s.version_id, d.version_id, None);
        if s.description.is_none() && s.size != d.size {
            at.push(
                cx,
                Some(&s.field),
                FindingKind::SizeMismatch,
                format!(
                    "Section \"{sec}\" Description \"{desc}\" Field \"{}\" size mismatch: {} , {}",
                    s.field, s.size, d.size
                ),
                Breaks::Both,
            );
        }
        if let Some(sd) = &s.description {
            match &d.description {
                None => at.push(
                    cx,
                    Some(&s.field),
                    FindingKind::DescriptionMissing,
                    format!(
                        "Section \"{sec}\", Description \"{desc}\", Field \"{}\": missing description",
                        s.field
                    ),
                    Breaks::Both,
                ),
                Some(dd) => check_description(cx, sec, sd, dd),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &str, size: u64) -> Value {
        json!({"field": name, "version_id": 0, "field_exists": false, "size": size})
    }

    fn dump(fields: Vec<Value>) -> Value {
        json!({"dev": {"Name": "dev", "version_id": 1, "minimum_version_id": 1,
            "Description": {"name": "dev", "version_id": 1, "minimum_version_id": 1, "Fields": fields}}})
    }

    #[test]
    fn unused_padding_stands_for_fields_of_its_size() {
        let src = dump(vec![field("a", 1), field("unused", 6), field("z", 1)]);
        let dest = dump(vec![
            field("a", 1),
            field("b", 2),
            field("c", 4),
            field("z", 1),
        ]);
        assert_eq!(check(&src, &dest).unwrap().findings, []);
        assert_eq!(check(&dest, &src).unwrap().findings, []);
        let dest = dump(vec![
            field("a", 1),
            field("b", 2),
            field("c", 8),
            field("z", 1),
        ]);
        let f = check(&src, &dest).unwrap().findings;
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, FindingKind::UnusedSizeMismatch);
        assert_eq!(f[0].field.as_deref(), Some("c"));
    }

    #[test]
    fn fields_moved_into_a_substruct_match() {
        let inner = json!({"field": "parent_obj", "version_id": 0, "field_exists": false, "size": 8,
            "Description": {"name": "e1000", "version_id": 1, "minimum_version_id": 1,
                "Fields": [field("dev", 4), field("x", 4)]}});
        let src = dump(vec![field("dev", 4), field("x", 4), field("y", 1)]);
        let dest = dump(vec![inner, field("y", 1)]);
        assert_eq!(check(&src, &dest).unwrap().findings, []);
    }

    #[test]
    fn renamed_fields_of_equal_size_break_nothing() {
        let f = check(&dump(vec![field("a", 4)]), &dump(vec![field("b", 4)]))
            .unwrap()
            .findings;
        assert_eq!(f[0].kind, FindingKind::FieldMismatch);
        assert_eq!(f[0].breaks, Breaks::Neither);
    }

    #[test]
    fn malformed_dumps_are_errors_with_a_path() {
        for (v, path) in [
            (json!([1]), "/"),
            (json!({"dev": 3}), "/dev"),
            (json!({"dev": {"Name": "dev"}}), "/dev"),
            (
                json!({"dev": {"Name": "dev", "version_id": 1, "Description": {"name": "dev", "version_id": 1, "Fields": [{"field": "a"}]}}}),
                "/dev/Description/Fields/0",
            ),
            (json!({"dev": {"Name": "dev", "version_id": -1}}), "/dev"),
        ] {
            let e = check(&v, &v)
                .err()
                .unwrap_or_else(|| panic!("{v} accepted"));
            assert_eq!(e.path, path, "{e}");
        }
    }
}
