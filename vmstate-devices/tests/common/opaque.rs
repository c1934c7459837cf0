//! The devices of a QEMU stream that this crate does not model: each FULL
//! section is registered by its vmdesc entry and consumed by the size QEMU
//! recorded there, its body kept and written back as is.

use std::sync::{Arc, Mutex};

use vmstate_runtime::savevm::{InstanceId, Registry, SaveVmHandlers, SectionReader, SectionWriter};
use vmstate_runtime::Result;

/// A FULL section body held as bytes.
#[derive(Clone)]
pub struct Opaque {
    size: usize,
    body: Arc<Mutex<Vec<u8>>>,
}

impl SaveVmHandlers for Opaque {
    fn has_full_section(&self) -> bool {
        true
    }
    fn load_state(&mut self, r: &mut SectionReader, _: u32) -> Result<()> {
        *self.body.lock().unwrap() = r.read_vec(self.size)?;
        Ok(())
    }
    fn save_state(&mut self, w: &mut SectionWriter) -> Result<()> {
        w.write_bytes(&self.body.lock().unwrap())
    }
}

/// A device entry of a stream's vmdesc.
pub struct VmDescDevice {
    pub name: String,
    pub instance: u32,
    /// `u32::MAX` for old-style entries (no version in the vmdesc: accept any).
    pub version: u32,
    /// Body size, from the fields and subsections.
    pub size: usize,
}

/// The vmdesc trailer's devices, located the way analyze-migration.py does.
pub fn vmdesc_devices(stream: &[u8]) -> Vec<VmDescDevice> {
    let start = stream
        .windows(14)
        .rposition(|w| w == b"{\"page_size\": ")
        .unwrap();
    let vmdesc: serde_json::Value = serde_json::from_slice(&stream[start..]).unwrap();
    vmdesc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|dev| VmDescDevice {
            name: dev["name"].as_str().unwrap().to_string(),
            instance: dev["instance_id"].as_u64().unwrap() as u32,
            version: dev["version"].as_u64().unwrap_or(u64::from(u32::MAX)) as u32,
            size: (fields_size(&dev["fields"])
                + dev.get("subsections").map(subsections_size).unwrap_or(0))
                as usize,
        })
        .collect()
}

/// Registers every vmdesc device for which `model` returns no handler as an
/// [`Opaque`] section.
pub fn register_devices(
    reg: &mut Registry,
    stream: &[u8],
    mut model: impl FnMut(&str) -> Option<Box<dyn SaveVmHandlers>>,
) -> Result<()> {
    for dev in vmdesc_devices(stream) {
        let handler = model(&dev.name).unwrap_or_else(|| {
            Box::new(Opaque {
                size: dev.size,
                body: Arc::new(Mutex::new(Vec::new())),
            })
        });
        reg.register_savevm_live(
            &dev.name,
            InstanceId::Fixed(dev.instance),
            dev.version,
            handler,
        )?;
    }
    Ok(())
}

fn fields_size(fields: &serde_json::Value) -> u64 {
    fields
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["size"].as_u64().unwrap() * f.get("array_len").and_then(|v| v.as_u64()).unwrap_or(1)
        })
        .sum()
}

/// Bytes of a vmdesc subsection list: per subsection its header (0x05, name
/// length, name, be32 version) plus its fields and nested subsections.
fn subsections_size(subs: &serde_json::Value) -> u64 {
    subs.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let name = s["vmsd_name"].as_str().unwrap();
            1 + 1
                + name.len() as u64
                + 4
                + fields_size(&s["fields"])
                + s.get("subsections").map(subsections_size).unwrap_or(0)
        })
        .sum()
}
