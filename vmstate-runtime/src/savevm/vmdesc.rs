//! The vmdesc trailer: QEMU's JSON description of every FULL section, in QEMU's
//! exact shape (json-writer compact mode: `", "` and `": "` separators, fixed key
//! order), which is what `scripts/analyze-migration.py` reads.

use std::fmt::Write as _;

use super::config::Configuration;
use super::format::QemuVersion;
use super::page::TargetPage;
use crate::error::Result;
use crate::vmstate::{DescribeRecorder, DescribedField, DescribedVmsd, VmState};
use crate::wire::Writer;

/// Builds the vmdesc JSON while the FULL sections are written.
#[derive(Debug)]
pub struct VmDescBuilder {
    version: QemuVersion,
    page: TargetPage,
    configuration: Option<String>,
    devices: Vec<String>,
}

impl VmDescBuilder {
    /// An empty description for the given dialect, of an x86 guest (4 KiB
    /// target pages) until [`set_target_page`](Self::set_target_page) or
    /// [`set_configuration`](Self::set_configuration) says otherwise.
    pub fn new(version: QemuVersion) -> Self {
        VmDescBuilder {
            version,
            page: TargetPage::default(),
            configuration: None,
            devices: Vec::new(),
        }
    }

    /// The target page whose size the trailer reports as `page_size`.
    pub fn set_target_page(&mut self, page: TargetPage) {
        self.page = page;
    }

    /// Records the configuration (QEMU 10.x lists it first; 7.2 does not) and
    /// takes its target page.
    pub fn set_configuration(&mut self, config: &Configuration) -> Result<()> {
        self.page = config.target_page;
        if self.version == QemuVersion::V7_2 {
            return Ok(());
        }
        let mut rec = DescribeRecorder::new();
        config.save_described(&mut Writer::new(Vec::new()), &mut rec)?;
        if let Some(d) = rec.finish() {
            let mut s = String::new();
            write_vmsd(&mut s, &d);
            self.configuration = Some(s);
        }
        Ok(())
    }

    /// Records one FULL section: `described` is its recorded layout, or `None` for
    /// an old-style body (described as one opaque buffer of `body_len` bytes).
    pub fn add_device(
        &mut self,
        idstr: &str,
        instance_id: u32,
        described: Option<&DescribedVmsd>,
        body_len: u64,
    ) {
        self.devices
            .push(device_json(idstr, instance_id, described, body_len));
    }

    /// The JSON text.
    pub fn finish(self) -> String {
        let mut s = String::from("{");
        if let Some(c) = &self.configuration {
            s.push_str("\"configuration\": ");
            s.push_str(c);
            s.push_str(", ");
        }
        let _ = write!(s, "\"page_size\": {}, \"devices\": [", self.page.size());
        s.push_str(&self.devices.join(", "));
        s.push_str("]}");
        s
    }
}

/// One device object of the vmdesc `devices` list, exactly as QEMU writes it:
/// `described` is the layout recorded by `save_described`, or `None` for an
/// old-style body (one opaque buffer of `body_len` bytes).
///
/// ```
/// use vmstate_runtime::savevm::device_json;
/// use vmstate_runtime::vmstate::DescribeRecorder;
/// use vmstate_runtime::wire::Writer;
/// use vmstate_runtime::VmState;
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "timer", version = 2)]
/// struct Timer { cpu_ticks_offset: i64, #[vmstate(unused = 8)] unused: (), cpu_clock_offset: i64 }
///
/// let mut rec = DescribeRecorder::new();
/// Timer::default().save_described(&mut Writer::new(Vec::new()), &mut rec).unwrap();
/// assert_eq!(
///     device_json("timer", 0, rec.finish().as_ref(), 24),
///     r#"{"name": "timer", "instance_id": 0, "vmsd_name": "timer", "version": 2, "fields": [{"name": "cpu_ticks_offset", "type": "int64", "size": 8}, {"name": "unused", "type": "unused_buffer", "size": 8}, {"name": "cpu_clock_offset", "type": "int64", "size": 8}]}"#
/// );
/// ```
pub fn device_json(
    idstr: &str,
    instance_id: u32,
    described: Option<&DescribedVmsd>,
    body_len: u64,
) -> String {
    let mut s = String::new();
    s.push_str("{\"name\": ");
    json_str(&mut s, idstr);
    let _ = write!(s, ", \"instance_id\": {instance_id}");
    match described {
        Some(d) => {
            s.push_str(", \"vmsd_name\": ");
            json_str(&mut s, d.vmsd_name);
            let _ = write!(s, ", \"version\": {}", d.version);
            write_fields_and_subsections(&mut s, d);
        }
        None => {
            let _ = write!(
                    s,
                    ", \"size\": {body_len}, \"fields\": [{{\"name\": \"data\", \"size\": {body_len}, \"type\": \"buffer\"}}]"
                );
        }
    }
    s.push('}');
    s
}

fn write_vmsd(s: &mut String, d: &DescribedVmsd) {
    s.push_str("{\"vmsd_name\": ");
    json_str(s, d.vmsd_name);
    let _ = write!(s, ", \"version\": {}", d.version);
    write_fields_and_subsections(s, d);
    s.push('}');
}

fn write_fields_and_subsections(s: &mut String, d: &DescribedVmsd) {
    s.push_str(", \"fields\": [");
    let mut first = true;
    for f in &d.fields {
        write_field(s, f, &mut first);
    }
    s.push(']');
    if !d.subsections.is_empty() {
        s.push_str(", \"subsections\": [");
        for (i, sub) in d.subsections.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            write_vmsd(s, sub);
        }
        s.push(']');
    }
}

/// One field as QEMU's `vmsd_desc_field_start/end` describe it: nothing for an
/// empty array; an array of more than one element as one entry with
/// `array_len` and the first element's size when its elements always look the
/// same, else one entry per element with `index`.
fn write_field(s: &mut String, f: &DescribedField, first: &mut bool) {
    let n = f.array_len.unwrap_or(1);
    if n == 0 {
        return;
    }
    let mut entry =
        |s: &mut String, key: Option<(&str, usize)>, nested: Option<&DescribedVmsd>, size: u64| {
            if !*first {
                s.push_str(", ");
            }
            *first = false;
            s.push_str("{\"name\": ");
            match f.duplicate_index {
                Some(k) => json_str(s, &format!("{}[{k}]", f.name)),
                None => json_str(s, f.name),
            }
            if let Some((k, v)) = key {
                let _ = write!(s, ", \"{k}\": {v}");
            }
            s.push_str(", \"type\": ");
            json_str(s, f.info);
            if let Some(nested) = nested {
                s.push_str(", \"struct\": ");
                write_vmsd(s, nested);
            }
            let _ = write!(s, ", \"size\": {size}}}");
        };
    if f.elements.is_empty() {
        // Plain values (or an array of them): one entry, element size.
        let key = (n > 1).then_some(("array_len", n));
        entry(s, key, f.nested.as_deref(), f.size / n as u64);
    } else if n == 1 || f.compressible {
        let e = &f.elements[0];
        let key = (n > 1).then_some(("array_len", n));
        entry(s, key, e.nested.as_deref(), e.size);
    } else {
        for (i, e) in f.elements.iter().enumerate() {
            entry(s, Some(("index", i)), e.nested.as_deref(), e.size);
        }
    }
}

/// Appends `v` as a JSON string (QEMU's json-writer escapes).
fn json_str(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\u{8}' => s.push_str("\\b"),
            '\u{c}' => s.push_str("\\f"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(s, "\\u{:04X}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\n\u{1}");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
