//! Record and replay of the RAM section's chunking: which records each
//! START/PART/END body held, in which order, so that a stream loaded into the
//! RAM model can be written again with the source's own record order and
//! section boundaries (`vmstate rewrite`: byte-identical output).
//!
//! While loading, every record of every RAM body is noted (block, page
//! offset, kind). A page sent more than once (a running guest's dirty page)
//! would be written again with its final contents only, so when a page is
//! loaded again, the contents the earlier record carried are kept with that
//! record. On save, with [`RamChunking::start_replay`] called, the RAM
//! section writes the recorded bodies one per START/PART/END call instead of
//! walking its dirty bitmaps.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use vmstate_devices::ram::{RamBlockList, RamBlockSpec, RamChunking, RamSection};
//!
//! let ram = Arc::new(Mutex::new(
//!     RamBlockList::new(vec![RamBlockSpec::ram("pc.ram", 1 << 20)]).unwrap(),
//! ));
//! let chunking = Arc::new(RamChunking::default());
//! let _section = RamSection::new(ram).with_chunking(chunking.clone());
//! assert_eq!(chunking.chunks(), 0);
//! assert!(chunking.start_replay().is_err(), "nothing was recorded");
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use vmstate_runtime::savevm::SectionWriter;
use vmstate_runtime::{Error, Result};

use super::block::RamBlockList;
use super::protocol::{BlockEntry, MemSizeOptions, PageAt, RamEncoder};

/// One record of a RAM body, as loaded.
#[derive(Debug, Clone)]
enum Rec {
    MemSize(Vec<BlockEntry>, MemSizeOptions),
    Zero {
        block: usize,
        offset: u64,
    },
    Page {
        block: usize,
        offset: u64,
        /// The contents this record carried, when the page was loaded again
        /// later (otherwise the page's contents now are this record's).
        stash: Option<Box<[u8]>>,
    },
}

#[derive(Debug)]
struct Inner {
    recording: bool,
    chunks: Vec<Vec<Rec>>,
    /// (block, offset) -> (chunk, record) of the page's latest record.
    latest: HashMap<(usize, u64), (usize, usize)>,
    /// Why the recording cannot be replayed (an XBZRLE record: its encoding
    /// is not kept).
    unreplayable: Option<String>,
    /// The next chunk to write, once replaying.
    replay: Option<(usize, RamEncoder)>,
    /// The target page size of the recorded records.
    page_size: u64,
    /// Per recorded body, its stream offsets (first byte, past the EOS).
    spans: Vec<(u64, u64)>,
}

/// The RAM section's chunking record (shared between a [`RamSection`] made
/// [`with_chunking`] and whoever replays it).
///
/// [`RamSection`]: super::RamSection
/// [`with_chunking`]: super::RamSection::with_chunking
#[derive(Debug)]
pub struct RamChunking {
    inner: Mutex<Inner>,
}

impl Default for RamChunking {
    /// Recording, nothing recorded yet.
    fn default() -> Self {
        RamChunking {
            inner: Mutex::new(Inner {
                recording: true,
                chunks: Vec::new(),
                latest: HashMap::new(),
                unreplayable: None,
                replay: None,
                page_size: super::protocol::X86_TARGET_PAGE_SIZE,
                spans: Vec::new(),
            }),
        }
    }
}

impl RamChunking {
    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::poisoned("RAM chunking record poisoned"))
    }

    /// Stops (or restarts) recording: a live destination of a large guest
    /// need not keep a record of every page.
    pub fn set_recording(&self, on: bool) {
        if let Ok(mut i) = self.inner.lock() {
            i.recording = on;
        }
    }

    /// RAM bodies recorded so far.
    pub fn chunks(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.chunks.len())
    }

    /// Records in each recorded body (for reports).
    pub fn records_per_chunk(&self) -> Vec<usize> {
        self.inner
            .lock()
            .map_or_else(|_| Vec::new(), |i| i.chunks.iter().map(Vec::len).collect())
    }

    /// From now on the RAM section writes the recorded bodies, one per
    /// START, PART and END it is asked for. Fails, saying why, when nothing
    /// was recorded or the record cannot be replayed.
    pub fn start_replay(&self) -> std::result::Result<(), String> {
        let mut i = self.inner.lock().map_err(|_| "poisoned".to_string())?;
        if let Some(why) = &i.unreplayable {
            return Err(why.clone());
        }
        if i.chunks.is_empty() {
            return Err("no RAM section was recorded".into());
        }
        i.replay = Some((0, RamEncoder::new(i.page_size)));
        i.recording = false;
        Ok(())
    }

    /// Whether the section is replaying.
    pub(super) fn replaying(&self) -> bool {
        self.inner.lock().is_ok_and(|i| i.replay.is_some())
    }

    /// Whether the next chunk to replay is the last one recorded.
    pub(super) fn replay_at_last(&self) -> bool {
        self.inner.lock().is_ok_and(|i| match &i.replay {
            Some((next, _)) => *next + 1 >= i.chunks.len(),
            None => true,
        })
    }

    // ---- recording (the load side) ----

    /// A RAM body of `page_size` pages starts at stream offset `at`.
    pub(super) fn begin_chunk(&self, page_size: u64, at: u64) {
        if let Ok(mut i) = self.inner.lock() {
            if i.recording {
                i.page_size = page_size;
                i.chunks.push(Vec::new());
                i.spans.push((at, at));
            }
        }
    }

    /// The RAM body ended (its EOS read) at stream offset `at`.
    pub(super) fn end_chunk(&self, at: u64) {
        if let Ok(mut i) = self.inner.lock() {
            if i.recording {
                if let Some(s) = i.spans.last_mut() {
                    s.1 = at;
                }
            }
        }
    }

    /// Per recorded body, its stream offsets: first byte, and past its EOS.
    pub fn spans(&self) -> Vec<(u64, u64)> {
        self.inner
            .lock()
            .map_or_else(|_| Vec::new(), |i| i.spans.clone())
    }

    fn push(&self, ram: &RamBlockList, page_size: usize, rec: Rec) {
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let i = &mut *guard;
        if !i.recording {
            return;
        }
        let key = match &rec {
            Rec::Zero { block, offset } | Rec::Page { block, offset, .. } => {
                Some((*block, *offset))
            }
            Rec::MemSize(..) => None,
        };
        let Some(chunk) = i.chunks.len().checked_sub(1) else {
            return;
        };
        if let Some(key) = key {
            // The page's earlier record keeps the contents it carried.
            if let Some(&(c, r)) = i.latest.get(&key) {
                if let Some(Rec::Page { stash, .. }) = i.chunks[c].get_mut(r) {
                    if stash.is_none() {
                        let mut buf = vec![0u8; page_size].into_boxed_slice();
                        if ram.blocks()[key.0].read(key.1, &mut buf).is_ok() {
                            *stash = Some(buf);
                        }
                    }
                }
            }
            let at = i.chunks[chunk].len();
            i.latest.insert(key, (chunk, at));
        }
        i.chunks[chunk].push(rec);
    }

    /// A MEM_SIZE list was loaded.
    pub(super) fn mem_size(
        &self,
        ram: &RamBlockList,
        entries: Vec<BlockEntry>,
        opts: MemSizeOptions,
    ) {
        self.push(ram, 0, Rec::MemSize(entries, opts));
    }

    /// A ZERO record for `block` at `offset` is about to be loaded.
    pub(super) fn zero(&self, ram: &RamBlockList, page_size: usize, block: usize, offset: u64) {
        self.push(ram, page_size, Rec::Zero { block, offset });
    }

    /// A PAGE record for `block` at `offset` is about to be loaded.
    pub(super) fn page(&self, ram: &RamBlockList, page_size: usize, block: usize, offset: u64) {
        self.push(
            ram,
            page_size,
            Rec::Page {
                block,
                offset,
                stash: None,
            },
        );
    }

    /// An XBZRLE record was loaded: its encoding is not kept, so the record
    /// cannot be replayed.
    pub(super) fn xbzrle(&self, block: usize, offset: u64) {
        if let Ok(mut i) = self.inner.lock() {
            if i.recording && i.unreplayable.is_none() {
                i.unreplayable = Some(format!(
                    "an XBZRLE record (block #{block}, offset {offset:#x}) cannot be replayed"
                ));
            }
        }
    }

    // ---- replay (the save side) ----

    /// Writes the next recorded body (records, then EOS) into `w`, page
    /// contents from `ram` (or the kept contents of a page sent again later).
    pub(super) fn replay_next(&self, w: &mut SectionWriter, ram: &RamBlockList) -> Result<()> {
        let mut guard = self.lock()?;
        let i = &mut *guard;
        let Some((next, enc)) = i.replay.as_mut() else {
            return Err(Error::invalid("ram: chunk replay not started"));
        };
        let chunk = i.chunks.get(*next).ok_or_else(|| {
            Error::invalid("ram: asked for more RAM sections than the stream had")
        })?;
        *next += 1;
        let page_size = enc.page_size() as usize;
        let mut page = vec![0u8; page_size];
        for rec in chunk {
            match rec {
                Rec::MemSize(entries, opts) => enc.write_mem_size(w, entries, *opts)?,
                Rec::Zero { block, offset } => {
                    let b = ram.blocks().get(*block).ok_or_else(|| {
                        Error::invalid("ram: replayed record names a missing block")
                    })?;
                    let at = PageAt {
                        block: *block,
                        idstr: b.idstr(),
                        offset: *offset,
                    };
                    enc.write_zero(w, at)?;
                }
                Rec::Page {
                    block,
                    offset,
                    stash,
                } => {
                    let b = ram.blocks().get(*block).ok_or_else(|| {
                        Error::invalid("ram: replayed record names a missing block")
                    })?;
                    let at = PageAt {
                        block: *block,
                        idstr: b.idstr(),
                        offset: *offset,
                    };
                    let data: &[u8] = match stash {
                        Some(s) => s,
                        None => {
                            b.read(*offset, &mut page).map_err(Error::from)?;
                            &page
                        }
                    };
                    enc.write_page(w, at, data)?;
                }
            }
        }
        enc.write_eos(w)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::BytesMut;
    use vmstate_runtime::savevm::{SaveVmHandlers, SectionBuf};
    use vmstate_runtime::wire::{Reader, Writer};

    use super::*;
    use crate::ram::protocol::SECTION_VERSION;
    use crate::ram::{RamBlockSpec, RamSection};

    const PS: u64 = 4096;

    fn blocks() -> Arc<Mutex<RamBlockList>> {
        Arc::new(Mutex::new(
            RamBlockList::new(vec![
                RamBlockSpec::ram("pc.ram", 16 * PS),
                RamBlockSpec::rom("pc.bios", 4 * PS),
            ])
            .unwrap(),
        ))
    }

    /// The bodies a source sent: START (MEM_SIZE), a PART with page 3 = A,
    /// a zero page and a BIOS page, a PART with page 3 = B (written again),
    /// an END with page 5.
    fn bodies() -> Vec<Vec<u8>> {
        let mut enc = RamEncoder::new(PS);
        let ram = |o| PageAt {
            block: 0,
            idstr: "pc.ram",
            offset: o * PS,
        };
        let mut out = Vec::new();
        let mut w = Writer::new(Vec::new());
        let entries = [("pc.ram", 16), ("pc.bios", 4)].map(|(n, p)| BlockEntry {
            idstr: n.into(),
            used_length: p * PS,
            page_size: None,
            gpa: None,
        });
        enc.write_mem_size(&mut w, &entries, MemSizeOptions::default())
            .unwrap();
        enc.write_eos(&mut w).unwrap();
        out.push(w.into_inner());
        let mut w = Writer::new(Vec::new());
        enc.write_page(&mut w, ram(3), &[0xaa; PS as usize])
            .unwrap();
        enc.write_zero(&mut w, ram(4)).unwrap();
        let bios = PageAt {
            block: 1,
            idstr: "pc.bios",
            offset: PS,
        };
        enc.write_page(&mut w, bios, &[0x11; PS as usize]).unwrap();
        enc.write_eos(&mut w).unwrap();
        out.push(w.into_inner());
        let mut w = Writer::new(Vec::new());
        enc.write_page(&mut w, ram(3), &[0xbb; PS as usize])
            .unwrap();
        enc.write_eos(&mut w).unwrap();
        out.push(w.into_inner());
        let mut w = Writer::new(Vec::new());
        enc.write_page(&mut w, ram(5), &[0xcc; PS as usize])
            .unwrap();
        enc.write_eos(&mut w).unwrap();
        out.push(w.into_inner());
        out
    }

    #[test]
    fn replay_writes_each_body_as_loaded_with_a_resent_pages_first_contents() {
        let ram = blocks();
        let chunking = Arc::new(RamChunking::default());
        let mut s = RamSection::new(ram.clone()).with_chunking(chunking.clone());
        s.load_setup().unwrap();
        let sent = bodies();
        let mut at = 0u64;
        for body in &sent {
            let mut r = Reader::with_base_offset(BytesMut::from(&body[..]), at);
            s.load_state(&mut r, SECTION_VERSION).unwrap();
            at += body.len() as u64;
        }
        assert_eq!(chunking.records_per_chunk(), [1, 3, 1, 1]);
        let spans = chunking.spans();
        assert_eq!(
            spans[1],
            (sent[0].len() as u64, (sent[0].len() + sent[1].len()) as u64)
        );
        // The model holds the last contents of page 3.
        let mut page = vec![0u8; PS as usize];
        ram.lock().unwrap().blocks()[0]
            .read(3 * PS, &mut page)
            .unwrap();
        assert_eq!(page, [0xbb; PS as usize]);

        chunking.start_replay().unwrap();
        let mut again = Vec::new();
        let mut w = Writer::new(SectionBuf::with_capacity(1 << 16));
        s.save_setup(&mut w).unwrap();
        again.push(std::mem::take(&mut w));
        assert_eq!(
            s.save_live_iterate(&mut w).unwrap(),
            vmstate_runtime::savevm::IterateStatus::Continue
        );
        again.push(std::mem::take(&mut w));
        s.save_live_iterate(&mut w).unwrap();
        again.push(std::mem::take(&mut w));
        s.save_live_complete_precopy(&mut w).unwrap();
        again.push(w);
        let again: Vec<Vec<u8>> = again
            .into_iter()
            .map(|w| {
                let mut v = Vec::new();
                w.into_inner().write_to(&mut v).unwrap();
                v
            })
            .collect();
        assert_eq!(again, sent);
        // A fifth body was never recorded.
        let mut w = Writer::new(SectionBuf::with_capacity(64));
        assert!(s.save_live_iterate(&mut w).is_err());
    }

    #[test]
    fn an_xbzrle_record_makes_the_record_unreplayable() {
        let c = RamChunking::default();
        c.begin_chunk(PS, 0);
        c.xbzrle(0, 0x1000);
        let e = c.start_replay().unwrap_err();
        assert!(e.contains("XBZRLE"), "{e}");
    }
}
