//! Building the bytes of a VMState stream by hand, as the golden and hostile
//! tests spell them out.

/// A subsection header: 0x05, u8 name length, name, be32 version.
pub fn sub_header(name: &str, version: u32) -> Vec<u8> {
    let mut v = vec![0x05, name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(&version.to_be_bytes());
    v
}

/// The parts, one after the other.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
