//! Reading a QEMU stream's vmdesc trailer: which FULL sections the machine has,
//! in stream order, and how many body bytes each one takes (its fields plus
//! the subsections it sent), which is what frames a section carried opaque.

use serde_json::Value;

use super::QemuPcError;

/// One FULL section as the vmdesc lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmDescDevice {
    /// The section idstr ("pckbd", "0000:00:01.1/ide", ...).
    pub name: String,
    /// The section's instance id.
    pub instance: u32,
    /// The section version (`None` for an old-style entry without one).
    pub version: Option<u32>,
    /// Body bytes: the fields' sizes plus each subsection's header and body.
    pub body_len: usize,
    /// The body's shape: what frames it when the subsections sent differ
    /// from those this vmdesc saw.
    pub layout: BodyLayout,
}

/// The shape of a vmsd body as a vmdesc shows it: fixed bytes of fields, then
/// any of the known subsections (`05 | len name | be32 version | body`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyLayout {
    /// Bytes of the fields before the subsections.
    pub fields_len: usize,
    /// The subsections seen, by vmsd name.
    pub subsections: Vec<(String, BodyLayout)>,
}

impl BodyLayout {
    /// Adds the subsections `other` knows and `self` does not (recursively):
    /// two saves of one machine may have sent different subsections.
    ///
    /// ```
    /// use vmstate_devices::qemu_pc::BodyLayout;
    ///
    /// let sub = |n: &str| (n.to_string(), BodyLayout { fields_len: 8, subsections: vec![] });
    /// let mut a = BodyLayout { fields_len: 4, subsections: vec![sub("cpu/a")] };
    /// let b = BodyLayout { fields_len: 4, subsections: vec![sub("cpu/b"), sub("cpu/a")] };
    /// a.merge(&b);
    /// let names: Vec<&str> = a.subsections.iter().map(|s| s.0.as_str()).collect();
    /// assert_eq!(names, ["cpu/a", "cpu/b"]);
    /// ```
    pub fn merge(&mut self, other: &BodyLayout) {
        for (name, theirs) in &other.subsections {
            match self.subsections.iter_mut().find(|(n, _)| n == name) {
                Some((_, ours)) => ours.merge(theirs),
                None => self.subsections.push((name.clone(), theirs.clone())),
            }
        }
    }
}

/// The devices of `first`, each with the subsections that the same device
/// (by name and instance) shows in `more` added to its layout: the
/// sections of one machine framed from several of its saves.
pub fn merge_vmdescs(
    mut first: Vec<VmDescDevice>,
    more: &[Vec<VmDescDevice>],
) -> Vec<VmDescDevice> {
    for list in more {
        for other in list {
            if let Some(d) = first
                .iter_mut()
                .find(|d| d.name == other.name && d.instance == other.instance)
            {
                d.layout.merge(&other.layout);
            }
        }
    }
    first
}

/// QEMU_VM_VMDESCRIPTION, the record type of the trailer.
const VMDESC_RECORD: u8 = 0x06;
/// How every QEMU 7.2 vmdesc begins.
const VMDESC_START: &[u8] = b"{\"page_size\": ";

/// The vmdesc JSON at the end of a stream file: the last
/// `06 | be32 len | {"page_size": ...` record whose length reaches exactly
/// to the end of the stream. `None` when the stream has none.
///
/// ```
/// use vmstate_devices::qemu_pc::stream_vmdesc;
///
/// let json = br#"{"page_size": 4096, "devices": []}"#;
/// let mut stream = b"QEVM\0\0\0\x03\x00".to_vec();
/// stream.push(0x06);
/// stream.extend_from_slice(&(json.len() as u32).to_be_bytes());
/// stream.extend_from_slice(json);
/// assert_eq!(stream_vmdesc(&stream).unwrap().as_bytes(), json);
/// assert!(stream_vmdesc(b"QEVM\0\0\0\x03\x00").is_none());
/// ```
pub fn stream_vmdesc(stream: &[u8]) -> Option<&str> {
    let mut end = stream.len();
    while let Some(at) = stream[..end]
        .windows(VMDESC_START.len())
        .rposition(|w| w == VMDESC_START)
    {
        end = at;
        if at < 5 || stream[at - 5] != VMDESC_RECORD {
            continue;
        }
        let len = u32::from_be_bytes([
            stream[at - 4],
            stream[at - 3],
            stream[at - 2],
            stream[at - 1],
        ]) as usize;
        if len == stream.len() - at {
            return std::str::from_utf8(&stream[at..]).ok();
        }
    }
    None
}

/// The devices of a vmdesc, in stream order.
///
/// ```
/// use vmstate_devices::qemu_pc::parse_vmdesc;
///
/// let json = r#"{"page_size": 4096, "devices": [{"name": "pckbd", "instance_id": 0,
///   "vmsd_name": "pckbd", "version": 3, "fields": [{"name": "write_cmd", "type": "uint8",
///   "size": 1}, {"name": "q", "type": "buffer", "size": 4, "array_len": 2}],
///   "subsections": [{"vmsd_name": "pckbd_outport", "version": 1,
///   "fields": [{"name": "outport", "type": "uint8", "size": 1}]}]}]}"#;
/// let devs = parse_vmdesc(json).unwrap();
/// assert_eq!(devs[0].name, "pckbd");
/// assert_eq!(devs[0].version, Some(3));
/// // 1 + 4*2 field bytes; subsection: 0x05, name length, 13 name bytes,
/// // be32 version, 1 field byte.
/// assert_eq!(devs[0].body_len, 9 + 1 + 1 + 13 + 4 + 1);
/// assert!(parse_vmdesc("[]").is_err());
/// ```
pub fn parse_vmdesc(json: &str) -> Result<Vec<VmDescDevice>, QemuPcError> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| QemuPcError::VmDescJson(e.to_string()))?;
    let devices = v
        .get("devices")
        .and_then(Value::as_array)
        .ok_or(QemuPcError::VmDescShape {
            device: None,
            what: "no \"devices\" array",
        })?;
    devices
        .iter()
        .enumerate()
        .map(|(i, dev)| {
            let bad = |what| QemuPcError::VmDescShape {
                device: Some(i),
                what,
            };
            let name = dev
                .get("name")
                .and_then(Value::as_str)
                .ok_or(bad("no \"name\""))?;
            let instance = dev
                .get("instance_id")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(bad("no 32-bit \"instance_id\""))?;
            let version = match dev.get("version") {
                None => None,
                Some(n) => Some(
                    n.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or(bad("\"version\" is not a 32-bit number"))?,
                ),
            };
            let body = body_len(dev, 0).ok_or(bad("fields or subsections malformed"))?;
            let layout = layout(dev, 0).ok_or(bad("fields or subsections malformed"))?;
            Ok(VmDescDevice {
                name: name.to_string(),
                instance,
                version,
                body_len: usize::try_from(body).map_err(|_| bad("body too large"))?,
                layout,
            })
        })
        .collect()
}

/// Deepest subsection nesting accepted (QEMU's are two levels at most).
const MAX_DEPTH: usize = 8;

/// The shape of a vmsd body: its fields' bytes and its subsections'.
fn layout(vmsd: &Value, depth: usize) -> Option<BodyLayout> {
    if depth > MAX_DEPTH {
        return None;
    }
    let fields_len = match vmsd.get("fields") {
        Some(f) => usize::try_from(fields_len(f)?).ok()?,
        None => 0,
    };
    let mut subsections = Vec::new();
    if let Some(subs) = vmsd.get("subsections") {
        for s in subs.as_array()? {
            let name = s.get("vmsd_name")?.as_str()?;
            subsections.push((name.to_string(), layout(s, depth + 1)?));
        }
    }
    Some(BodyLayout {
        fields_len,
        subsections,
    })
}

/// Bytes of a field list (`size` times `array_len`, when there is one).
fn fields_len(fields: &Value) -> Option<u64> {
    let mut total = 0u64;
    for f in fields.as_array()? {
        let size = f.get("size")?.as_u64()?;
        let n = match f.get("array_len") {
            Some(n) => n.as_u64()?,
            None => 1,
        };
        total = total.checked_add(size.checked_mul(n)?)?;
    }
    Some(total)
}

/// Bytes of a vmsd body: its fields, then each subsection's header (0x05,
/// name length, name, be32 version) and body.
fn body_len(vmsd: &Value, depth: usize) -> Option<u64> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut total = match vmsd.get("fields") {
        Some(f) => fields_len(f)?,
        None => 0,
    };
    if let Some(subs) = vmsd.get("subsections") {
        for s in subs.as_array()? {
            let name = s.get("vmsd_name")?.as_str()?;
            let header = 1 + 1 + name.len() as u64 + 4;
            total = total
                .checked_add(header)?
                .checked_add(body_len(s, depth + 1)?)?;
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer(json: &[u8], claimed: usize) -> Vec<u8> {
        let mut s = b"QEVM\0\0\0\x03\x00\x06".to_vec();
        s.extend_from_slice(&(claimed as u32).to_be_bytes());
        s.extend_from_slice(json);
        s
    }

    #[test]
    fn a_trailer_whose_length_does_not_reach_the_end_is_not_the_vmdesc() {
        let json = br#"{"page_size": 4096, "devices": []}"#;
        assert!(stream_vmdesc(&trailer(json, json.len())).is_some());
        assert!(stream_vmdesc(&trailer(json, json.len() - 1)).is_none());
        assert!(stream_vmdesc(&trailer(json, usize::from(u16::MAX))).is_none());
        assert!(stream_vmdesc(br#"{"page_size": "#).is_none());
    }

    #[test]
    fn malformed_vmdescs_are_typed_errors_naming_the_device() {
        let dev = |body: &str| format!(r#"{{"page_size": 4096, "devices": [{body}]}}"#);
        for (json, want) in [
            ("not json".to_string(), "not valid JSON"),
            (r#"{"page_size": 4096}"#.to_string(), "no \"devices\" array"),
            (dev(r#"{"instance_id": 0}"#), "device #0: no \"name\""),
            (dev(r#"{"name": "a", "instance_id": -1}"#), "instance_id"),
            (
                dev(r#"{"name": "a", "instance_id": 0, "version": 1e3}"#),
                "\"version\"",
            ),
            (
                dev(
                    r#"{"name": "a", "instance_id": 0, "fields": [{"size": 8, "array_len": 18446744073709551615}, {"size": 8}]}"#,
                ),
                "malformed",
            ),
            (
                dev(r#"{"name": "a", "instance_id": 0, "subsections": [{"fields": []}]}"#),
                "malformed",
            ),
        ] {
            let e = parse_vmdesc(&json).unwrap_err().to_string();
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn nesting_deeper_than_qemu_ever_does_is_refused() {
        let mut sub = r#"{"vmsd_name": "s", "fields": []}"#.to_string();
        for _ in 0..MAX_DEPTH + 2 {
            sub = format!(r#"{{"vmsd_name": "s", "fields": [], "subsections": [{sub}]}}"#);
        }
        let json = format!(
            r#"{{"devices": [{{"name": "a", "instance_id": 0, "subsections": [{sub}]}}]}}"#
        );
        assert!(parse_vmdesc(&json).is_err());
    }

    #[test]
    fn layout_and_size_agree() {
        let json = r#"{"devices": [{"name": "a", "instance_id": 3, "fields": [{"size": 2, "array_len": 3}],
            "subsections": [{"vmsd_name": "a/x", "fields": [{"size": 4}],
              "subsections": [{"vmsd_name": "a/x/y", "fields": [{"size": 1}]}]}]}]}"#;
        let d = &parse_vmdesc(json).unwrap()[0];
        assert_eq!(d.instance, 3);
        assert_eq!(d.version, None);
        assert_eq!(d.layout.fields_len, 6);
        let (name, x) = &d.layout.subsections[0];
        assert_eq!((name.as_str(), x.fields_len), ("a/x", 4));
        assert_eq!(x.subsections[0].1.fields_len, 1);
        // 6 + (1 + 1 + 3 + 4 + 4) + (1 + 1 + 5 + 4 + 1)
        assert_eq!(d.body_len, 6 + 13 + 12);
    }
}
