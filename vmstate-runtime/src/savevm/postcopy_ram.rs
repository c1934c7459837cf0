//! `PostcopyRam`: the hooks only a postcopy-capable RAM handler has (discards,
//! page requests, received bitmaps), kept out of the generic
//! [`SaveVmHandlers`](super::SaveVmHandlers). In QEMU these are not
//! `SaveVMHandlers` members but direct calls between the migration core and
//! `ram.c`; here a handler opts in through
//! [`SaveVmHandlers::as_postcopy_ram`](super::SaveVmHandlers::as_postcopy_ram).
//!
//! Offsets and lengths are bytes within the named RAMBlock; bitmaps have one bit
//! per target page of that block (the page size the migration was configured
//! with, [`TargetPage`](super::TargetPage)).

use std::sync::{Arc, Mutex};

use super::handlers::RpSend;
use super::return_path::RpMessage;
use crate::error::{Error, ErrorKind, RecoveryError, Result};

/// Byte ranges (start, length) of one RAMBlock, by name: what a postcopy discard
/// covers.
pub type BlockRanges = (String, Vec<(u64, u64)>);

/// What a RAM handler that can keep sending after the postcopy switch adds to
/// [`SaveVmHandlers`](super::SaveVmHandlers). Every method has a default for a
/// handler that owns no block, so an implementor overrides what it supports.
///
/// ```
/// use vmstate_runtime::savevm::{PostcopyRam, SaveVmHandlers, SectionReader};
/// use vmstate_runtime::Result;
///
/// /// One block, "pc.ram", whose pages all arrived.
/// struct Ram { pages: usize }
///
/// impl PostcopyRam for Ram {
///     fn ram_block_names(&self) -> Vec<String> {
///         vec!["pc.ram".into()]
///     }
///     fn postcopy_received_bitmap(&mut self, block: &str) -> Result<Option<Vec<u8>>> {
///         Ok((block == "pc.ram").then(|| vec![0xff; self.pages.div_ceil(64) * 8]))
///     }
/// }
///
/// impl SaveVmHandlers for Ram {
///     fn is_iterative(&self) -> bool { true }
///     fn has_postcopy(&self) -> bool { true }
///     fn load_state(&mut self, _r: &mut SectionReader, _v: u32) -> Result<()> { Ok(()) }
///     fn as_postcopy_ram(&mut self) -> Option<&mut dyn PostcopyRam> { Some(self) }
/// }
///
/// let mut ram = Ram { pages: 100 };
/// let pc = ram.as_postcopy_ram().unwrap();
/// assert_eq!(pc.postcopy_received_bitmap("pc.ram").unwrap().unwrap().len(), 16);
/// assert_eq!(pc.postcopy_received_bitmap("pc.bios").unwrap(), None);
/// ```
pub trait PostcopyRam: Send {
    /// Source: the RAM blocks this handler migrates (for postcopy recovery, in
    /// the order their received bitmaps are fetched).
    fn ram_block_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// Source, at the postcopy switch: per block, the byte ranges already sent
    /// that were dirtied again and must be dropped by the destination
    /// (MIG_CMD_POSTCOPY_RAM_DISCARD; the driver splits them into commands of
    /// at most [`MAX_DISCARDS_PER_COMMAND`](super::MAX_DISCARDS_PER_COMMAND)).
    fn postcopy_discard_ranges(&mut self) -> Result<Vec<BlockRanges>> {
        Ok(Vec::new())
    }

    /// Source, in postcopy: the destination faulted on `len` bytes at `start` of
    /// `block`; send them ahead of everything else. Returns false when the block
    /// is not this handler's.
    fn queue_page_request(&mut self, _block: &str, _start: u64, _len: u64) -> Result<bool> {
        Ok(false)
    }

    /// Source, postcopy recovery: `received` is the destination's bitmap of
    /// `block` (bit i = target page i arrived, little-endian 64-bit words); mark
    /// every page it lacks as dirty so it is sent again.
    fn postcopy_resume_bitmap(&mut self, block: &str, _received: &[u8]) -> Result<()> {
        Err(Error::new(ErrorKind::PostcopyRecovery(
            RecoveryError::NotSupported {
                block: block.to_string(),
            },
        )))
    }

    /// Destination, postcopy recovery: the received bitmap of `block` (bit i =
    /// target page i arrived, little-endian 64-bit words, length a multiple of
    /// 8), or `None` when the block is not this handler's.
    fn postcopy_received_bitmap(&mut self, _block: &str) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Destination: drop these ranges of `block` (they will be sent again).
    /// Returns false when the block is not this handler's.
    fn postcopy_discard(&mut self, _block: &str, _ranges: &[(u64, u64)]) -> Result<bool> {
        Ok(false)
    }

    /// Destination: POSTCOPY_LISTEN arrived; `requester` asks the source for
    /// pages the running guest needs before they arrive.
    fn postcopy_listen(&mut self, _requester: PageRequester) -> Result<()> {
        Ok(())
    }
}

/// Sends postcopy page requests on the return path (REQ_PAGES_ID naming the
/// block when it changes, REQ_PAGES otherwise). Cheap to clone; shared with the
/// destination's fault handling.
#[derive(Clone)]
pub struct PageRequester {
    inner: Arc<Mutex<RequesterState>>,
}

struct RequesterState {
    send: RpSend,
    last_block: Option<String>,
    sent: u64,
}

impl std::fmt::Debug for PageRequester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageRequester").finish_non_exhaustive()
    }
}

impl PageRequester {
    /// A requester writing messages with `send` (the return path's writer).
    pub fn new(send: RpSend) -> Self {
        PageRequester {
            inner: Arc::new(Mutex::new(RequesterState {
                send,
                last_block: None,
                sent: 0,
            })),
        }
    }

    /// Requests `len` bytes at `start` of `block`.
    pub fn request(&self, block: &str, start: u64, len: u32) -> Result<()> {
        let mut s = self
            .inner
            .lock()
            .map_err(|_| Error::poisoned("page requester poisoned"))?;
        let msg = RpMessage::ReqPages {
            block: (s.last_block.as_deref() != Some(block)).then(|| block.to_string()),
            start,
            len,
        };
        (s.send)(&msg)?;
        s.last_block = Some(block.to_string());
        s.sent += 1;
        Ok(())
    }

    /// Requests sent so far.
    pub fn requests_sent(&self) -> u64 {
        self.inner.lock().map(|s| s.sent).unwrap_or(0)
    }
}
