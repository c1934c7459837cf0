//! Building a savevm stream (QEMU 7.2 framing, no vmdesc) from section bodies
//! given byte for byte, and loading one into a registry: for tests that hand
//! a device a hostile body through the whole loader, as a peer would.

use bytes::BytesMut;
use vmstate_runtime::savevm::{
    Configuration, LoadOptions, NoCommands, Registry, StreamLoader, VmDescPolicy,
};
use vmstate_runtime::wire::Reader;

/// The machine type of both sides.
pub const MACHINE: &str = "pc-i440fx-7.2";

/// A section record: START (0x01), PART (0x02), END (0x03) or FULL (0x04).
#[derive(Debug, Clone)]
pub struct Section<'a> {
    /// Record type byte.
    pub ty: u8,
    /// Section id.
    pub id: u32,
    /// For START/FULL: idstr, instance id, version id.
    pub header: Option<(&'a str, u32, u32)>,
    /// The body.
    pub body: Vec<u8>,
}

impl<'a> Section<'a> {
    /// A FULL section.
    pub fn full(id: u32, idstr: &'a str, instance: u32, version: u32, body: Vec<u8>) -> Self {
        Section {
            ty: 0x04,
            id,
            header: Some((idstr, instance, version)),
            body,
        }
    }

    /// A START section.
    pub fn start(id: u32, idstr: &'a str, instance: u32, version: u32, body: Vec<u8>) -> Self {
        Section {
            ty: 0x01,
            header: Some((idstr, instance, version)),
            ..Self::full(id, idstr, instance, version, body)
        }
    }

    /// An END section of the section started with `id`.
    pub fn end(id: u32, body: Vec<u8>) -> Self {
        Section {
            ty: 0x03,
            id,
            header: None,
            body,
        }
    }
}

/// A stream: header, our configuration, the sections (each with its footer),
/// EOF. Also gives the stream offset of each section's body.
pub fn stream(sections: &[Section]) -> (Vec<u8>, Vec<usize>) {
    let mut b = b"QEVM\0\0\0\x03".to_vec();
    b.push(0x07);
    b.extend_from_slice(&vmstate_runtime::to_bytes(&Configuration::new(MACHINE)).unwrap());
    let mut bodies = Vec::new();
    for s in sections {
        b.push(s.ty);
        b.extend_from_slice(&s.id.to_be_bytes());
        if let Some((idstr, instance, version)) = s.header {
            b.push(idstr.len() as u8);
            b.extend_from_slice(idstr.as_bytes());
            b.extend_from_slice(&instance.to_be_bytes());
            b.extend_from_slice(&version.to_be_bytes());
        }
        bodies.push(b.len());
        b.extend_from_slice(&s.body);
        b.push(0x7e);
        b.extend_from_slice(&s.id.to_be_bytes());
    }
    b.push(0x00);
    (b, bodies)
}

/// Loads `bytes` into `reg` as a 7.2 destination with our configuration.
pub fn load(bytes: &[u8], reg: &mut Registry) -> vmstate_runtime::Result<()> {
    let opts = LoadOptions::default()
        .with_configuration(Configuration::new(MACHINE))
        .with_vmdesc(VmDescPolicy::Suppressed);
    let mut r = Reader::new(BytesMut::from(bytes));
    StreamLoader::new(opts).load(&mut r, reg, &mut NoCommands)?;
    assert_eq!(r.remaining(), 0, "bytes after the stream");
    Ok(())
}
