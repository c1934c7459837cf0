//! Cutting section bodies out of a savevm stream by its framing, independently
//! of the models under test.

/// QEMU_VM_SECTION_FULL.
const SECTION_FULL: u8 = 0x04;
/// QEMU_VM_SECTION_FOOTER.
const SECTION_FOOTER: u8 = 0x7e;
/// QEMU_VM_SUBSECTION.
const SUBSECTION: u8 = 0x05;

/// A FULL section header found in a stream.
#[derive(Debug, Clone, Copy)]
pub struct SectionHeader {
    pub section_id: u32,
    pub instance_id: u32,
    pub version_id: u32,
    /// Offset of the first body byte.
    pub body_start: usize,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Finds the FULL section header `04 | be32 id | len idstr | be32 instance |
/// be32 version` of `idstr`. Exactly one must exist.
pub fn find_full_section(stream: &[u8], idstr: &str) -> SectionHeader {
    let mut needle = vec![idstr.len() as u8];
    needle.extend_from_slice(idstr.as_bytes());
    let mut found = Vec::new();
    let mut from = 5;
    while let Some(pos) = stream[from..]
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
    {
        let at = from + pos;
        from = at + 1;
        if stream[at - 5] != SECTION_FULL {
            continue;
        }
        let after = at + needle.len();
        let (Some(section_id), Some(instance_id), Some(version_id)) = (
            be32(stream, at - 4),
            be32(stream, after),
            be32(stream, after + 4),
        ) else {
            continue;
        };
        found.push(SectionHeader {
            section_id,
            instance_id,
            version_id,
            body_start: after + 8,
        });
    }
    assert_eq!(
        found.len(),
        1,
        "FULL section headers for {idstr:?}: {found:?}"
    );
    found[0]
}

fn footer(id: u32) -> [u8; 5] {
    let mut f = [SECTION_FOOTER, 0, 0, 0, 0];
    f[1..].copy_from_slice(&id.to_be_bytes());
    f
}

/// The body of a section whose length is known; the footer must follow it.
pub fn body_with_len<'a>(stream: &'a [u8], h: &SectionHeader, len: usize) -> &'a [u8] {
    let end = h.body_start + len;
    assert_eq!(
        stream.get(end..end + 5),
        Some(&footer(h.section_id)[..]),
        "footer after a {len}-byte body"
    );
    &stream[h.body_start..end]
}

/// The body of a section up to the first footer `7e | be32 id` after its header.
pub fn body_to_footer<'a>(stream: &'a [u8], h: &SectionHeader) -> &'a [u8] {
    let f = footer(h.section_id);
    let len = stream[h.body_start..]
        .windows(5)
        .position(|w| w == f)
        .expect("section footer");
    &stream[h.body_start..h.body_start + len]
}

/// Length of a body made of `fixed` bytes of fields followed by subsections
/// (`05 | len name | be32 version | body`) whose body sizes are known by name.
/// This parses independently of the models under test.
pub fn parse_body_len(
    stream: &[u8],
    h: &SectionHeader,
    fixed: usize,
    subsections: &[(&str, usize)],
) -> usize {
    let mut at = h.body_start + fixed;
    while stream[at] == SUBSECTION {
        let n = stream[at + 1] as usize;
        let name = std::str::from_utf8(&stream[at + 2..at + 2 + n]).expect("subsection name");
        let size = subsections
            .iter()
            .find(|(s, _)| *s == name)
            .unwrap_or_else(|| panic!("unexpected subsection {name:?}"))
            .1;
        at += 2 + n + 4 + size;
    }
    at - h.body_start
}
