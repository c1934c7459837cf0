//! A QEMU `pc` stream file through the models and written again with our
//! writer in the input's own shape: the same section sequence (START, each
//! PART, END, the FULL sections) with the same section ids, the RAM records in
//! their original order and chunking ([`RamChunking`](crate::ram::RamChunking)
//! replays them from the RAM model), each FULL body as its model or opaque
//! carrier saves it, then EOF and the input's vmdesc trailer (its JSON is
//! QEMU's description of QEMU's devices, carried unchanged).
//!
//! What `vmstate rewrite` runs. For a stream QEMU 7.2 wrote, the output is
//! byte-identical; where it is not, [`RewriteReport::first_difference`] says
//! where.

use std::collections::HashMap;

use vmstate_runtime::savevm::{Configuration, QemuVersion, StreamWriter};

use super::{parse_vmdesc, stream_vmdesc, QemuPc, QemuPcError, SectionCarrier, MACHINE_TYPE};

/// The section record kinds of a stream file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// QEMU_VM_SECTION_START (iterative setup).
    Start,
    /// QEMU_VM_SECTION_PART.
    Part,
    /// QEMU_VM_SECTION_END.
    End,
    /// QEMU_VM_SECTION_FULL.
    Full,
}

/// One section record of the input, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionEvent {
    /// Its record kind.
    pub kind: SectionKind,
    /// Its section id.
    pub section_id: u32,
    /// The section's idstr (from its START or FULL header).
    pub idstr: String,
    /// Its instance id.
    pub instance: u32,
    /// The version its START or FULL header states.
    pub version: u32,
}

/// Why a stream could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// Loading into the models or writing failed.
    #[error(transparent)]
    QemuPc(#[from] QemuPcError),
    /// Writing failed.
    #[error("writing: {0}")]
    Runtime(#[from] vmstate_runtime::Error),
    /// The stream's section records could not be walked.
    #[error("stream offset {offset}: {what}")]
    Shape {
        /// Where.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// The RAM record cannot be written again as it was read.
    #[error("RAM chunking cannot be replayed: {0}")]
    Replay(String),
}

/// What [`rewrite`] did.
#[derive(Debug, Clone)]
pub struct RewriteReport {
    /// The stream we wrote.
    pub output: Vec<u8>,
    /// Every section record of the input, in order.
    pub events: Vec<SectionEvent>,
    /// Every FULL section (idstr, instance, carrier), in stream order.
    pub sections: Vec<(String, u32, SectionCarrier)>,
    /// Records in each RAM body (START, PARTs, END).
    pub ram_records: Vec<usize>,
    /// The first offset where input and output differ (`None`: identical).
    pub first_difference: Option<usize>,
}

impl RewriteReport {
    /// One line per section: RAM, then each FULL section, through a model
    /// or carried opaque (an opaque one of a modelled kind is marked).
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "ram 0: model (RAM blocks; {} sections, {} records)",
            self.ram_records.len(),
            self.ram_records.iter().sum::<usize>()
        )];
        for (idstr, instance, carrier) in &self.sections {
            let how = match carrier {
                SectionCarrier::Model => "model",
                SectionCarrier::Opaque if super::is_kind_to_model(idstr) => {
                    "opaque (a modelled kind!)"
                }
                SectionCarrier::Opaque => "opaque",
            };
            out.push(format!("{idstr} {instance}: {how}"));
        }
        out
    }

    /// Sections of a modelled kind that were carried opaque (`--strict`
    /// fails on any).
    pub fn opaque_of_modelled_kinds(&self) -> Vec<String> {
        self.sections
            .iter()
            .filter(|(idstr, _, c)| *c == SectionCarrier::Opaque && super::is_kind_to_model(idstr))
            .map(|(idstr, instance, _)| format!("{idstr} {instance}"))
            .collect()
    }
}

fn shape(offset: usize, what: impl Into<String>) -> RewriteError {
    RewriteError::Shape {
        offset,
        what: what.into(),
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RewriteError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.s.len())
            .ok_or_else(|| shape(self.at, format!("{n} bytes wanted, the stream ends")))?;
        let b = &self.s[self.at..end];
        self.at = end;
        Ok(b)
    }
    fn u8(&mut self) -> Result<u8, RewriteError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, RewriteError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The section records of `stream`, framed by the RAM bodies' recorded
/// offsets (`ram_spans`, in order) and the FULL bodies' vmdesc sizes; each
/// footer is checked.
fn walk(stream: &[u8], ram_spans: &[(u64, u64)]) -> Result<Vec<SectionEvent>, RewriteError> {
    let vmdesc = stream_vmdesc(stream).ok_or(QemuPcError::NoVmDesc)?;
    let sizes: HashMap<(String, u32), usize> = parse_vmdesc(vmdesc)?
        .into_iter()
        .map(|d| ((d.name, d.instance), d.body_len))
        .collect();
    let mut c = Cursor { s: stream, at: 8 };
    if c.u8()? != 0x07 {
        return Err(shape(8, "no configuration record after the header"));
    }
    let len = c.u32()? as usize;
    c.take(len)?;
    let mut spans = ram_spans.iter();
    let mut open: HashMap<u32, (String, u32, u32)> = HashMap::new();
    let mut events = Vec::new();
    loop {
        let at = c.at;
        let ty = c.u8()?;
        let kind = match ty {
            0x00 => break,
            0x01 => SectionKind::Start,
            0x02 => SectionKind::Part,
            0x03 => SectionKind::End,
            0x04 => SectionKind::Full,
            t => return Err(shape(at, format!("record type {t:#04x} in a stream file"))),
        };
        let section_id = c.u32()?;
        let (idstr, instance, version) = match kind {
            SectionKind::Start | SectionKind::Full => {
                let n = c.u8()? as usize;
                let idstr = String::from_utf8_lossy(c.take(n)?).into_owned();
                let instance = c.u32()?;
                let version = c.u32()?;
                open.insert(section_id, (idstr.clone(), instance, version));
                (idstr, instance, version)
            }
            _ => open
                .get(&section_id)
                .cloned()
                .ok_or_else(|| shape(at, format!("section id {section_id} was never started")))?,
        };
        let body_start = c.at;
        let body_len = if kind == SectionKind::Full {
            *sizes
                .get(&(idstr.clone(), instance))
                .ok_or_else(|| shape(at, format!("{idstr} {instance} is not in the vmdesc")))?
        } else {
            let &(from, to) = spans
                .next()
                .ok_or_else(|| shape(at, format!("{idstr}: more bodies than the RAM loaded")))?;
            if from as usize != body_start {
                return Err(shape(
                    at,
                    format!("{idstr}: body starts at {body_start}, the RAM loaded one at {from}"),
                ));
            }
            (to - from) as usize
        };
        c.take(body_len)?;
        let foot = c.at;
        if c.u8()? != 0x7e || c.u32()? != section_id {
            return Err(shape(
                foot,
                format!("{idstr}: no footer where its body ends"),
            ));
        }
        events.push(SectionEvent {
            kind,
            section_id,
            idstr,
            instance,
            version,
        });
    }
    Ok(events)
}

/// Loads `stream` (a QEMU 7.2 `pc` stream file) into a [`QemuPc`] and writes
/// it again with our writer in the input's shape (see the module docs).
pub fn rewrite(stream: &[u8]) -> Result<RewriteReport, RewriteError> {
    let (pc, mut reg, vmdesc) = QemuPc::load_stream(stream)?;
    let events = walk(stream, &pc.ram_chunking.spans())?;
    pc.ram_chunking
        .start_replay()
        .map_err(RewriteError::Replay)?;
    // Our registry takes the input's section ids.
    for ev in &events {
        if let Some(e) = reg
            .entries_mut()
            .find(|e| e.idstr == ev.idstr && e.instance_id == ev.instance)
        {
            e.section_id = ev.section_id;
        }
    }
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.suppress_vmdesc();
    w.write_header()?;
    w.write_configuration(&Configuration::new(MACHINE_TYPE))?;
    for ev in &events {
        let e = reg
            .entries_mut()
            .find(|e| e.idstr == ev.idstr && e.instance_id == ev.instance)
            .ok_or_else(|| {
                shape(
                    0,
                    format!("{} {} has no registry entry", ev.idstr, ev.instance),
                )
            })?;
        let out = w.buffer();
        let ty = match ev.kind {
            SectionKind::Start => 0x01,
            SectionKind::Part => 0x02,
            SectionKind::End => 0x03,
            SectionKind::Full => 0x04,
        };
        out.write_u8(ty)?;
        out.write_u32(e.section_id)?;
        if matches!(ev.kind, SectionKind::Start | SectionKind::Full) {
            out.write_counted_bytes(e.idstr.as_bytes())?;
            out.write_u32(e.instance_id)?;
            out.write_u32(e.version_id)?;
        }
        let h = e.handlers.as_mut();
        match ev.kind {
            SectionKind::Start => h.save_setup(out)?,
            SectionKind::Part => {
                h.save_live_iterate(out)?;
            }
            SectionKind::End => h.save_live_complete_precopy(out)?,
            SectionKind::Full => h.save_state(out)?,
        }
        out.write_u8(0x7e)?;
        out.write_u32(e.section_id)?;
    }
    w.write_eof()?;
    let out = w.buffer();
    out.write_u8(0x06)?;
    out.write_u32(vmdesc.len() as u32)?;
    out.write_bytes(vmdesc.as_bytes())?;
    let output = w.into_inner()?;
    let first_difference = stream
        .iter()
        .zip(&output)
        .position(|(a, b)| a != b)
        .or((stream.len() != output.len()).then(|| stream.len().min(output.len())));
    Ok(RewriteReport {
        output,
        events,
        sections: pc.sections().to_vec(),
        ram_records: pc.ram_chunking.records_per_chunk(),
        first_difference,
    })
}
