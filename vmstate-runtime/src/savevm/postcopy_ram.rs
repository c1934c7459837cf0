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

    /// Source, postcopy recovery: the size in bytes of the received bitmap of
    /// `block` the destination must send (one bit per target page of the
    /// block's used length, rounded up to whole 64-bit words), or `None` when
    /// the block is not this handler's. The return path refuses a RECV_BITMAP
    /// claiming any other size before reading its blob
    /// ([`ReturnPathError::BitmapSizeMismatch`](crate::error::ReturnPathError::BitmapSizeMismatch)),
    /// so a destination's claim never costs more memory than the block's own
    /// bitmap. Without it (`None`) only the general cap of 64 MiB applies.
    fn recv_bitmap_size(&self, _block: &str) -> Option<u64> {
        None
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
    /// Which link requests go to; changes at every sender replacement.
    link: u64,
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
                link: 0,
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
        tracing::debug!(block, start, len, "postcopy page request");
        (s.send)(&msg)?;
        s.last_block = Some(block.to_string());
        s.sent += 1;
        Ok(())
    }

    /// Points every clone of this requester at a new return path: postcopy
    /// recovery replaced the connection the requests went on (and while paused,
    /// a sender that refuses, so a waiting accessor asks again later). The first
    /// request after the switch names its block again: the source reads the new
    /// return path knowing no earlier block.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use vmstate_runtime::savevm::{PageRequester, RpMessage};
    ///
    /// let req = PageRequester::new(Box::new(|_: &RpMessage| Ok(())));
    /// let device_side = req.clone();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// req.replace_sender(Box::new(move |m: &RpMessage| {
    ///     s.lock().unwrap().push(m.clone());
    ///     Ok(())
    /// }));
    /// device_side.request("pc.ram", 0, 4096).unwrap();
    /// assert_eq!(seen.lock().unwrap().len(), 1, "the clone uses the new link");
    /// ```
    pub fn replace_sender(&self, send: RpSend) {
        // A poisoned lock only means a sender panicked mid-request; the state
        // is replaced wholesale here, so it is safe to take over.
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        s.send = send;
        s.last_block = None;
        s.link += 1;
    }

    /// Which link requests go to now: it changes at every
    /// [`replace_sender`](Self::replace_sender). A request sent before a change
    /// may have been lost with the old link (written, never read by the
    /// source), so whoever still waits for its page asks again.
    pub fn link(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).link
    }

    /// Requests sent so far.
    pub fn requests_sent(&self) -> u64 {
        self.inner.lock().map(|s| s.sent).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Log = Arc<Mutex<Vec<RpMessage>>>;

    fn logging(log: &Log) -> RpSend {
        let log = log.clone();
        Box::new(move |m: &RpMessage| {
            log.lock().unwrap().push(m.clone());
            Ok(())
        })
    }

    fn req(block: Option<&str>, start: u64) -> RpMessage {
        RpMessage::ReqPages {
            block: block.map(str::to_string),
            start,
            len: 4096,
        }
    }

    #[test]
    fn a_replaced_sender_takes_every_clones_requests_and_names_the_block_again() {
        let (old, new) = (Log::default(), Log::default());
        let req_a = PageRequester::new(logging(&old));
        let device = req_a.clone();
        device.request("pc.ram", 0, 4096).unwrap();
        device.request("pc.ram", 4096, 4096).unwrap();
        req_a.replace_sender(logging(&new));
        device.request("pc.ram", 8192, 4096).unwrap();
        device.request("pc.ram", 12288, 4096).unwrap();
        assert_eq!(
            *old.lock().unwrap(),
            [req(Some("pc.ram"), 0), req(None, 4096)]
        );
        assert_eq!(
            *new.lock().unwrap(),
            [req(Some("pc.ram"), 8192), req(None, 12288)],
            "the new link's reader knows no earlier block"
        );
        assert_eq!(device.requests_sent(), 4);
        assert_eq!(device.link(), 1, "one replacement, seen by the clone");
    }

    #[test]
    fn a_refused_request_is_not_counted_and_the_next_link_gets_the_block_name() {
        let new = Log::default();
        let r = PageRequester::new(Box::new(|_: &RpMessage| {
            Err(Error::poisoned("link down in this test"))
        }));
        assert!(r.request("pc.ram", 0, 4096).is_err());
        assert_eq!(r.requests_sent(), 0);
        r.replace_sender(logging(&new));
        r.request("pc.ram", 0, 4096).unwrap();
        assert_eq!(*new.lock().unwrap(), [req(Some("pc.ram"), 0)]);
    }
}
