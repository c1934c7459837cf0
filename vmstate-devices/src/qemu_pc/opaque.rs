//! A FULL section carried as its body bytes.

use std::sync::{Arc, Mutex};

use vmstate_runtime::savevm::{SaveVmHandlers, SectionReader, SectionWriter};
use vmstate_runtime::{Error, Result};

/// The handlers of a section this crate does not model: loading takes the
/// body size it was built with (from the vmdesc) and keeps the bytes, saving
/// writes them back unchanged. Clones share the body.
///
/// ```
/// use vmstate_devices::qemu_pc::OpaqueSection;
/// use vmstate_runtime::savevm::SaveVmHandlers;
/// use vmstate_runtime::wire::Reader;
///
/// let mut o = OpaqueSection::new("timer", 0, 3);
/// let mut r = Reader::new(bytes::BytesMut::from(&[1u8, 2, 3, 4][..]));
/// o.load_state(&mut r, 2).unwrap();
/// assert_eq!(o.body().unwrap(), [1, 2, 3]);
/// assert_eq!(r.remaining(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct OpaqueSection {
    idstr: String,
    instance: u32,
    size: usize,
    body: Arc<Mutex<Vec<u8>>>,
}

impl OpaqueSection {
    /// The carrier of section `idstr`/`instance`, whose body is `size` bytes.
    pub fn new(idstr: &str, instance: u32, size: usize) -> Self {
        OpaqueSection {
            idstr: idstr.to_string(),
            instance,
            size,
            body: Arc::default(),
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

    fn load_state(&mut self, r: &mut SectionReader, _version_id: u32) -> Result<()> {
        // read_vec checks the bytes are there before it allocates.
        let body = r.read_vec(self.size)?;
        *self.lock()? = body;
        Ok(())
    }

    fn save_state(&mut self, w: &mut SectionWriter) -> Result<()> {
        w.write_bytes(&self.lock()?)
    }
}
