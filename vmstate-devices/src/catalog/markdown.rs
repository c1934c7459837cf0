//! The catalog as one Markdown page: per device its registration, the stream
//! records around its body (section header, footer, subsections), the body's
//! fields in wire order with nested structs expanded, and a worked byte example
//! of a freshly reset device, annotated field by field.

use std::fmt::Write;

use vmstate_runtime::vmstate::{DescribeSink, FieldStart, NoDescribe};
use vmstate_runtime::{FieldLayout, Result, VmStateDescription};

use super::DeviceModel;

/// The page for `devices` (a VMM may pass its own list, e.g. the catalog plus
/// its own models).
///
/// ```
/// let page = vmstate_devices::catalog::markdown::render(vmstate_devices::catalog::DEVICES)?;
/// assert!(page.contains("## `ps2mouse`"));
/// assert!(page.contains("| `parent_obj.queue.rptr` |"));
/// # Ok::<(), vmstate_runtime::Error>(())
/// ```
pub fn render(devices: &[DeviceModel]) -> Result<String> {
    let mut out = String::new();
    out.push_str(
        "# Wire format of the device models\n\n\
         Generated from the device catalog (`vmstate_devices::catalog::DEVICES`) by \
         `vmstate docs`; do not edit. Regenerate with\n\
         `cargo run -p vmstate-examples --bin vmstate -- docs --output vmstate-devices/WIRE-FORMAT.md`.\n\n\
         All integers are big-endian. A stream is the magic `QEVM`, be32 version 3, \
         the configuration record, then one record per section in the order below \
         (interleaved for iterative sections), `0x00` EOF and the JSON vmdesc.\n\n\
         | section | QEMU device | version | instance | Rust type |\n|---|---|---|---|---|\n",
    );
    for d in devices {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | `{}` |",
            d.section,
            d.qom_type.map_or("—".to_string(), |q| format!("`{q}`")),
            d.section_version,
            match d.instance {
                super::InstanceRule::Fixed(n) => n.to_string(),
                super::InstanceRule::NextFree => "next free".to_string(),
            },
            d.rust_type
        );
    }
    for d in devices {
        device(&mut out, d)?;
    }
    Ok(out)
}

fn device(out: &mut String, d: &DeviceModel) -> Result<()> {
    let _ = write!(
        out,
        "\n## `{}`\n\n{}\n\n\
         * Rust type: `{}`\n* QEMU device: {}\n* Section version: {}\n\
         * Instance id: {}\n* Register: {}\n",
        d.section,
        d.summary,
        d.rust_type,
        d.qom_type
            .map_or("none (not a qdev device)".to_string(), |q| format!("`{q}`")),
        d.section_version,
        d.instance.describe(),
        d.register,
    );
    if let Some(v) = d.vmsd {
        let _ = writeln!(
            out,
            "* vmsd: \"{}\", version {}, loads versions {} to {}",
            v.name, v.version_id, v.minimum_version_id, v.version_id
        );
    }
    let name_len = d.section.len();
    out.push_str("\n### Stream records\n\n```text\n");
    if d.iterative {
        let _ = write!(
            out,
            "0x01 SECTION_START  be32 section_id, u8 {name_len} \"{}\", be32 instance_id, be32 {}, body, 0x7e be32 section_id\n\
             0x02 SECTION_PART   be32 section_id, body, 0x7e be32 section_id   (any number, while the guest runs)\n\
             0x03 SECTION_END    be32 section_id, body, 0x7e be32 section_id\n",
            d.section, d.section_version
        );
    } else {
        let _ = write!(
            out,
            "0x04 SECTION_FULL   be32 section_id, u8 {name_len} \"{}\", be32 instance_id, be32 {}\n\
             \x20                   body (fields, then each subsection sent: 0x05, u8 len + name, be32 version, its body)\n\
             0x7e SECTION_FOOTER be32 section_id\n",
            d.section, d.section_version
        );
    }
    out.push_str("```\n");
    if let Some(text) = d.body_format {
        let _ = writeln!(out, "\n### Body\n\n{text}");
    }
    if let Some(v) = d.vmsd {
        out.push_str(
            "\n### Body\n\n| field | wire type | size | count | since / test |\n|---|---|---|---|---|\n",
        );
        fields(out, v, "");
        subsections(out, v, "");
    }
    if let Some(example) = d.example {
        let bytes = example(&mut NoDescribe)?;
        worked_example(out, d, &bytes)?;
    }
    Ok(())
}

/// Rows for the fields of `v`, nested structs expanded with `prefix.`.
fn fields(out: &mut String, v: &VmStateDescription, prefix: &str) {
    for f in v.fields.iter().filter(|f| f.is_on_wire()) {
        let name = format!("{prefix}{}", f.name);
        let size = f
            .fixed_wire_size()
            .map_or("variable".to_string(), |s| format!("{s} B"));
        let count = match f.layout {
            FieldLayout::Single | FieldLayout::Unused { .. } | FieldLayout::Tmp => String::new(),
            FieldLayout::Array { len } => len.to_string(),
            FieldLayout::VarArray { count_field, max } => format!("`{count_field}` (max {max})"),
            FieldLayout::Bitmap {
                bits_field,
                max_bits,
            } => format!("`{bits_field}` bits (max {max_bits})"),
            FieldLayout::List { max } => format!("list, max {max}"),
            FieldLayout::Skipped => String::new(),
        };
        let mut cond = Vec::new();
        if f.version_id > 0 {
            cond.push(format!("since {}", f.version_id));
        }
        if f.has_test {
            cond.push("if its test".to_string());
        }
        let cond = if cond.is_empty() {
            "—".to_string()
        } else {
            cond.join(", ")
        };
        let info = match f.ty.nested {
            Some(n) => format!("struct \"{}\" v{}", n.name, n.version_id),
            None => f.ty.info.to_string(),
        };
        let _ = writeln!(out, "| `{name}` | {info} | {size} | {count} | {cond} |");
        if let Some(nested) = f.ty.nested {
            fields(out, nested, &format!("{name}."));
        }
    }
}

/// The subsections of `v` and of the structs nested in its fields (which are
/// written inside that field, after the struct's own fields).
fn subsections(out: &mut String, v: &VmStateDescription, owner: &str) {
    for f in v.fields.iter().filter(|f| f.is_on_wire()) {
        if let Some(nested) = f.ty.nested {
            subsections(out, nested, &format!("{owner}{}.", f.name));
        }
    }
    if v.subsections.is_empty() {
        return;
    }
    let whose = match owner.strip_suffix('.') {
        Some(field) => format!("of the struct in field `{field}`, written at its end"),
        None => "after the fields".to_string(),
    };
    let _ = writeln!(
        out,
        "\nSubsections {whose}, in this order, each sent only when its `needed` test says so:"
    );
    for s in v.subsections {
        let d = s.description;
        let _ = write!(
            out,
            "\n#### Subsection \"{}\" (field `{owner}{}`), version {} (minimum {})\n\n\
             | field | wire type | size | count | since / test |\n|---|---|---|---|---|\n",
            d.name, s.field, d.version_id, d.minimum_version_id
        );
        fields(out, d, "");
        subsections(out, d, &format!("{owner}{}.", s.field));
    }
}

/// Records every leaf field's path and size, and each subsection header, in
/// wire order, while a body is saved.
#[derive(Default)]
struct Annotator {
    /// Open bodies (`None`) and fields (`Some((path, whether a body opened inside))`).
    stack: Vec<Option<(String, bool)>>,
    /// (what, size) in wire order.
    rows: Vec<(String, u64)>,
}

impl DescribeSink for Annotator {
    fn begin_vmsd(&mut self, desc: &'static VmStateDescription) {
        match self.stack.last_mut() {
            // A nested struct (or a list or array element) inside a field.
            Some(Some((_, nested))) => *nested = true,
            // A body directly inside a body: a subsection, whose header is on the wire.
            Some(None) => self.rows.push((
                format!("subsection header \"{}\" v{}", desc.name, desc.version_id),
                (1 + 1 + desc.name.len() + 4) as u64,
            )),
            None => {}
        }
        self.stack.push(None);
    }

    fn end_vmsd(&mut self) {
        self.stack.pop();
    }

    fn begin_field(&mut self, start: FieldStart) {
        let parent = self
            .stack
            .iter()
            .rev()
            .find_map(|f| f.as_ref().map(|(p, _)| format!("{p}.")))
            .unwrap_or_default();
        self.stack
            .push(Some((format!("{parent}{}", start.field.name), false)));
    }

    fn end_field(&mut self, size: u64) {
        if let Some(Some((path, false))) = self.stack.pop() {
            self.rows.push((format!("`{path}`"), size));
        }
    }
}

fn worked_example(out: &mut String, d: &DeviceModel, bytes: &[u8]) -> Result<()> {
    let _ = write!(
        out,
        "\n### Worked example\n\nThe body a freshly reset `{}` sends ({} bytes):\n\n```text\n{}```\n",
        d.rust_type,
        bytes.len(),
        hexdump(bytes)
    );
    let Some(example) = d.example else {
        return Ok(());
    };
    // Save again, recording the layout; annotate only when it adds up to the bytes.
    let mut sink = Annotator::default();
    let again = example(&mut sink)?;
    let total: u64 = sink.rows.iter().map(|(_, s)| s).sum();
    if total != bytes.len() as u64 || again != bytes {
        return Ok(());
    }
    out.push_str("\n| offset | field | bytes |\n|---|---|---|\n");
    let mut at = 0usize;
    for (what, size) in &sink.rows {
        let end = at + *size as usize;
        let shown: Vec<String> = bytes[at..end.min(at + 16)]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let more = if end - at > 16 { " …" } else { "" };
        let _ = writeln!(out, "| {at} | {what} | `{}`{more} |", shown.join(" "));
        at = end;
    }
    Ok(())
}

fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, line) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:04x} ", i * 16);
        for b in line {
            let _ = write!(out, " {b:02x}");
        }
        out.push('\n');
    }
    out
}
