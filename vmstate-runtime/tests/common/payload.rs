//! The synthetic iterative "payload" handler of the stream properties: a
//! byte string sent in chunks of a chosen size.
//!
//! Its sections: START = be32 total length; PART and END = be32 n, then n
//! bytes.

use std::sync::{Arc, Mutex};

use vmstate_runtime::savevm::{
    IterateStatus, Pending, SaveVmHandlers, SectionReader, SectionWriter,
};
use vmstate_runtime::{Error, ErrorKind, Result};

/// Largest payload the destination accepts (bounds what a corrupted length
/// can make it do).
pub const MAX_PAYLOAD: u32 = 4096;

/// The source: sends `payload`, `chunk` bytes a PART.
pub struct PayloadSource {
    payload: Vec<u8>,
    chunk: usize,
    sent: usize,
}

impl PayloadSource {
    /// A source of `payload`, at most `chunk` bytes a PART.
    pub fn new(payload: Vec<u8>, chunk: usize) -> Self {
        PayloadSource {
            payload,
            chunk,
            sent: 0,
        }
    }

    fn send(&mut self, w: &mut SectionWriter, n: usize) -> Result<()> {
        let n = n.min(self.payload.len() - self.sent);
        w.write_u32(n as u32)?;
        w.write_bytes(&self.payload[self.sent..self.sent + n])?;
        self.sent += n;
        Ok(())
    }
}

impl SaveVmHandlers for PayloadSource {
    fn is_iterative(&self) -> bool {
        true
    }
    fn save_setup(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.sent = 0;
        w.write_u32(self.payload.len() as u32)
    }
    fn save_live_iterate(&mut self, w: &mut SectionWriter) -> Result<IterateStatus> {
        self.send(w, self.chunk)?;
        Ok(if self.sent == self.payload.len() {
            IterateStatus::Done
        } else {
            IterateStatus::Continue
        })
    }
    fn state_pending_estimate(&mut self) -> Pending {
        Pending {
            must_precopy: (self.payload.len() - self.sent) as u64,
            can_postcopy: 0,
        }
    }
    fn save_live_complete_precopy(&mut self, w: &mut SectionWriter) -> Result<()> {
        self.send(w, usize::MAX)
    }
    fn load_state(&mut self, _: &mut SectionReader, _: u32) -> Result<()> {
        Err(Error::invalid("source only"))
    }
}

/// A well-behaved destination: every error it raises carries the reader's
/// offset. What arrived lands in `received`.
pub struct PayloadSink {
    received: Arc<Mutex<Vec<u8>>>,
    total: Option<u32>,
    expect_start: bool,
}

impl PayloadSink {
    /// A destination collecting the payload in `received`.
    pub fn new(received: Arc<Mutex<Vec<u8>>>) -> Self {
        PayloadSink {
            received,
            total: None,
            expect_start: false,
        }
    }
}

impl SaveVmHandlers for PayloadSink {
    fn is_iterative(&self) -> bool {
        true
    }
    fn load_setup(&mut self) -> Result<()> {
        self.expect_start = true;
        Ok(())
    }
    fn load_state(&mut self, r: &mut SectionReader, _version_id: u32) -> Result<()> {
        let at = r.position();
        let v = r.read_u32()?;
        if std::mem::take(&mut self.expect_start) {
            if v > MAX_PAYLOAD {
                return Err(Error::at(
                    ErrorKind::Invalid(format!("payload of {v} bytes is too large").into()),
                    at,
                ));
            }
            self.total = Some(v);
            return Ok(());
        }
        let Some(total) = self.total else {
            return Err(Error::at(
                ErrorKind::Invalid("chunk before START".into()),
                at,
            ));
        };
        let mut got = self.received.lock().unwrap();
        if u64::from(v) > u64::from(total) - got.len() as u64 {
            return Err(Error::at(
                ErrorKind::Invalid(format!("chunk of {v} bytes overruns the payload").into()),
                at,
            ));
        }
        let start = got.len();
        got.resize(start + v as usize, 0);
        r.read_bytes(&mut got[start..])
    }
}
