//! A FULL section carried as its body bytes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use vmstate_runtime::savevm::{SaveVmHandlers, SectionReader, SectionWriter};
use vmstate_runtime::{Error, ErrorKind, Result};

use super::BodyLayout;

/// QEMU_VM_SUBSECTION: a subsection follows.
const SUBSECTION: u8 = 0x05;

/// The handlers of a section this crate does not model: loading frames the
/// body by its [`BodyLayout`] (from a vmdesc: the fields' bytes, then any of
/// the known subsections, as many as the stream sends) and keeps the bytes,
/// saving writes them back unchanged. Clones share the body.
///
/// ```
/// use vmstate_devices::qemu_pc::{BodyLayout, OpaqueSection};
/// use vmstate_runtime::savevm::SaveVmHandlers;
/// use vmstate_runtime::wire::Reader;
///
/// let sub = BodyLayout { fields_len: 1, subsections: vec![] };
/// let layout = BodyLayout { fields_len: 3, subsections: vec![("t/x".into(), sub)] };
/// let mut o = OpaqueSection::new("timer", 0, layout);
/// // Fields, then subsection "t/x" v1 with its one byte, then the footer.
/// let body = [1u8, 2, 3, 5, 3, b't', b'/', b'x', 0, 0, 0, 1, 9];
/// let mut r = Reader::new(bytes::BytesMut::from(&[&body[..], &[0x7e]].concat()[..]));
/// o.load_state(&mut r, 2).unwrap();
/// assert_eq!(o.body().unwrap(), body);
/// assert_eq!(r.remaining(), 1);
/// assert_eq!(o.loaded_version(), Some(2));
/// // A subsection the layout does not know cannot be framed.
/// let mut r = Reader::new(bytes::BytesMut::from(&[1u8, 2, 3, 5, 1, b'y', 0, 0, 0, 1][..]));
/// assert!(o.load_state(&mut r, 2).unwrap_err().to_string().contains("'y'"));
/// ```
#[derive(Debug, Clone)]
pub struct OpaqueSection {
    idstr: String,
    instance: u32,
    layout: Arc<BodyLayout>,
    body: Arc<Mutex<Vec<u8>>>,
    /// The version of the last body loaded (`u32::MAX`: none yet).
    loaded_version: Arc<AtomicU32>,
}

impl OpaqueSection {
    /// The carrier of section `idstr`/`instance`, whose body has `layout`.
    pub fn new(idstr: &str, instance: u32, layout: BodyLayout) -> Self {
        OpaqueSection {
            idstr: idstr.to_string(),
            instance,
            layout: Arc::new(layout),
            body: Arc::default(),
            loaded_version: Arc::new(AtomicU32::new(u32::MAX)),
        }
    }

    /// The section idstr.
    pub fn idstr(&self) -> &str {
        &self.idstr
    }

    /// The section instance id.
    pub fn instance(&self) -> u32 {
        self.instance
    }

    /// The version of the section header the body was loaded with, `None`
    /// before a load: what the section must say when it is written again.
    pub fn loaded_version(&self) -> Option<u32> {
        match self.loaded_version.load(Ordering::Relaxed) {
            u32::MAX => None,
            v => Some(v),
        }
    }

    /// The body as loaded (empty before a load).
    pub fn body(&self) -> Result<Vec<u8>> {
        Ok(self.lock()?.clone())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Vec<u8>>> {
        self.body
            .lock()
            .map_err(|_| Error::poisoned("opaque section body poisoned by a panicking thread"))
    }
}

impl SaveVmHandlers for OpaqueSection {
    fn has_full_section(&self) -> bool {
        true
    }

    fn load_state(&mut self, r: &mut SectionReader, version_id: u32) -> Result<()> {
        let mut body = Vec::new();
        read_body(r, &self.layout, &mut body, 0)?;
        *self.lock()? = body;
        self.loaded_version.store(version_id, Ordering::Relaxed);
        Ok(())
    }

    fn save_state(&mut self, w: &mut SectionWriter) -> Result<()> {
        w.write_bytes(&self.lock()?)
    }
}

/// Deepest subsection nesting followed (the layout's own depth bounds it too).
const MAX_DEPTH: usize = 8;

/// Appends one body of `layout` to `out`: the fields' bytes, then each
/// subsection the stream sends (a 0x05 byte next) that this level knows. A
/// subsection's own subsections follow its fields, before its parent's next
/// one, so a name this level does not know ends this level; at the top it is
/// an error. Bytes are only taken once the reader holds them, so a hostile
/// stream ends in an error, never in a large allocation.
fn read_body(
    r: &mut SectionReader,
    layout: &BodyLayout,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<()> {
    out.extend_from_slice(&r.read_vec(layout.fields_len)?);
    while depth < MAX_DEPTH && r.peek_u8() == Some(SUBSECTION) {
        // 05 | len | name, looked at before anything is consumed.
        let mut head = [0u8; 2 + 255];
        let have = if r.ensure(2) {
            r.peek_into(&mut head[..2])
        } else {
            0
        };
        let len = usize::from(head[1]);
        if have < 2 || !r.ensure(2 + len) {
            // Too short to be a subsection: the read says where and why.
            r.read_vec(2 + len)?;
        }
        r.peek_into(&mut head[..2 + len]);
        let name = &head[2..2 + len];
        let Some((_, sub)) = layout
            .subsections
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
        else {
            if depth > 0 {
                return Ok(());
            }
            return Err(Error::new(ErrorKind::UnknownSubsection {
                name: String::from_utf8_lossy(name).into_owned(),
            }));
        };
        out.extend_from_slice(&r.read_vec(2 + len + 4)?);
        read_body(r, sub, out, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use vmstate_runtime::wire::Reader;

    fn leaf(n: usize) -> BodyLayout {
        BodyLayout {
            fields_len: n,
            subsections: vec![],
        }
    }

    fn sub(name: &str, body: &[u8]) -> Vec<u8> {
        let mut b = vec![SUBSECTION, name.len() as u8];
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    /// fw_cfg's shape: two sibling subsections; "a" has a nested one.
    fn layout() -> BodyLayout {
        BodyLayout {
            fields_len: 2,
            subsections: vec![
                (
                    "a".into(),
                    BodyLayout {
                        fields_len: 1,
                        subsections: vec![("a/n".into(), leaf(1))],
                    },
                ),
                ("b".into(), leaf(3)),
            ],
        }
    }

    fn load(body: &[u8]) -> (Result<()>, Vec<u8>, usize) {
        let mut o = OpaqueSection::new("x", 0, layout());
        let mut r = Reader::new(BytesMut::from(body));
        let res = o.load_state(&mut r, 1);
        (res, o.body().unwrap(), r.remaining())
    }

    #[test]
    fn siblings_nested_and_absent_subsections_are_framed() {
        let nested = [&[1u8][..], &sub("a/n", &[7])].concat();
        for body in [
            vec![1, 2],
            [&[1u8, 2][..], &sub("b", &[1, 2, 3])].concat(),
            [&[1u8, 2][..], &sub("a", &[9]), &sub("b", &[1, 2, 3])].concat(),
            [&[1u8, 2][..], &sub("a", &nested), &sub("b", &[1, 2, 3])].concat(),
        ] {
            let stream = [&body[..], &[0x7e]].concat();
            let (res, got, left) = load(&stream);
            res.unwrap();
            assert_eq!(got, body);
            assert_eq!(left, 1, "the footer stays");
        }
    }

    #[test]
    fn truncated_bodies_fail_without_panicking() {
        let full = [&[1u8, 2][..], &sub("a", &[9]), &sub("b", &[1, 2, 3])].concat();
        for cut in 0..full.len() {
            let (res, _, _) = load(&full[..cut]);
            // Cuts at a subsection boundary are complete bodies (a footer
            // check after them fails instead).
            if cut != 2 && cut != 2 + 7 + 1 {
                assert!(res.is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn an_unknown_top_level_subsection_is_named() {
        let body = [&[1u8, 2][..], &sub("zz", &[0])].concat();
        let (res, _, _) = load(&body);
        let e = res.unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::UnknownSubsection { name } if name == "zz"),
            "{e}"
        );
    }
}
