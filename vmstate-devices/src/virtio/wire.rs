//! Subsection framing inside the hand-written "virtio" body:
//! `05 | u8 len | name | be32 version | body`, with no terminator (a body's
//! subsections end at the first byte that is not 0x05, or at a subsection
//! whose name does not belong to the body being loaded).

use bytes::{Buf, BufMut};
use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::Result;

use super::error::VirtioError;

/// QEMU_VM_SUBSECTION.
pub const SUBSECTION: u8 = 0x05;

/// Writes a subsection header.
pub fn write_subsection_header<B: BufMut>(
    w: &mut Writer<B>,
    name: &str,
    version: u32,
) -> Result<()> {
    w.write_u8(SUBSECTION)?;
    w.write_counted_bytes(name.as_bytes())?;
    w.write_u32(version)
}

/// The name of the next subsection when it starts with `prefix` (QEMU's
/// rule: a subsection not named after the body is left to the parent);
/// nothing is consumed.
pub fn peek_subsection<B: Buf>(r: &mut Reader<B>, prefix: &str) -> Result<Option<String>> {
    if r.peek_u8() != Some(SUBSECTION) {
        return Ok(None);
    }
    // A subsection marker promises a header: a short one is a truncation.
    r.require(2)?;
    let mut head = [0u8; 2 + 255];
    r.peek_into(&mut head[..2]);
    let len = usize::from(head[1]);
    r.require(2 + len)?;
    r.peek_into(&mut head[..2 + len]);
    let name = String::from_utf8_lossy(&head[2..2 + len]).into_owned();
    if name.starts_with(prefix) {
        Ok(Some(name))
    } else {
        Ok(None)
    }
}

/// Consumes a subsection header peeked with [`peek_subsection`] and checks
/// its version.
pub fn read_subsection_header<B: Buf>(r: &mut Reader<B>, version: u32) -> Result<()> {
    r.read_u8()?;
    let len = usize::from(r.read_u8()?);
    let mut name = [0u8; 255];
    r.read_bytes(&mut name[..len])?;
    let v = r.read_u32()?;
    if v != version {
        return Err(VirtioError::SubsectionVersion {
            name: String::from_utf8_lossy(&name[..len]).into_owned(),
            version: v,
        }
        .into());
    }
    Ok(())
}

/// Reads a QEMU bool byte.
pub fn read_bool<B: Buf>(r: &mut Reader<B>, what: &'static str) -> Result<bool> {
    match r.read_u8()? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(VirtioError::BadBool(what, b).into()),
    }
}
