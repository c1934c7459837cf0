//! The RAM record protocol of QEMU's "ram" section (qemu-wire.md §4): the one
//! place in the workspace that names `RAM_SAVE_FLAG_*` and encodes or decodes
//! the records.
//!
//! A record starts with a be64 word holding a page-aligned offset in its
//! RAMBlock and flag bits in the low bits; the block's idstr follows unless
//! CONTINUE says "same block as the previous record on this channel" (kept
//! across sections). Decoding checks every number the stream claims against the
//! local block table ([`BlockTable`]) before anything is sized by it.

use bytes::{Buf, BufMut};
use vmstate_runtime::wire::{Reader, Writer};

use super::block::RamBlockSpec;
use super::error::{RamError, RamErrorKind};
use super::xbzrle::{XbzrleError, ENCODING_FLAG_XBZRLE};

/// QEMU's `RAM_SAVE_FLAG_*` bits, with QEMU's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum RamFlag {
    /// Obsolete full-page flag, never sent.
    Full = 0x001,
    /// A page filled with one byte (payload: the byte).
    Zero = 0x002,
    /// The RAMBlock list (setup).
    MemSize = 0x004,
    /// A raw target page.
    Page = 0x008,
    /// End of this RAM chunk.
    Eos = 0x010,
    /// Same RAMBlock as the previous page record; idstr omitted.
    Continue = 0x020,
    /// An XBZRLE-encoded page.
    Xbzrle = 0x040,
    /// RDMA control hook.
    Hook = 0x080,
    /// A zlib-compressed page (QEMU 7.2, removed in 9.1).
    CompressPage = 0x100,
    /// Multifd sync point (QEMU 8.1+).
    MultifdFlush = 0x200,
}

impl RamFlag {
    /// The flag's bit.
    pub const fn bit(self) -> u64 {
        self as u64
    }
}

/// Bits of the record word that carry flags on a target with `page_size`
/// pages (x86: 0xfff).
pub const fn flag_mask(page_size: u64) -> u64 {
    page_size - 1
}

/// The target page size of x86 guests (QEMU's `TARGET_PAGE_SIZE` there; the
/// runtime's constant, named once).
pub const X86_TARGET_PAGE_SIZE: u64 = vmstate_runtime::savevm::TARGET_PAGE_SIZE;

/// Section name, instance and version of the RAM section.
pub const SECTION_NAME: &str = "ram";
/// Version QEMU writes and accepts for "ram".
pub const SECTION_VERSION: u32 = 4;

/// One entry of the MEM_SIZE block list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    /// The RAMBlock idstr.
    pub idstr: String,
    /// Its used_length in bytes.
    pub used_length: u64,
    /// The postcopy page-size word, when it is on the wire (see [`MemSizeOptions`]).
    pub page_size: Option<u64>,
    /// The x-ignore-shared guest address word, when it is on the wire.
    pub gpa: Option<u64>,
}

/// Which optional words each MEM_SIZE entry carries; both sides must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemSizeOptions {
    /// `Some(host page size)` when the postcopy-ram capability is on: then an
    /// entry carries its block's page size whenever that differs from the host's.
    pub postcopy_host_page_size: Option<u64>,
    /// The x-ignore-shared capability: every entry carries its block's GPA.
    pub ignore_shared: bool,
}

/// What the decoder needs to know of the local RAMBlocks.
pub trait BlockTable {
    /// Index of the block called `idstr`.
    fn find(&self, idstr: &[u8]) -> Option<usize>;
    /// Declaration of block `index` (an index `find` returned), with its
    /// current used_length: what the stream is checked against.
    fn limits(&self, index: usize) -> &RamBlockSpec;
}

/// A decoded record header. For [`RecordHeader::Page`] the page's bytes follow
/// in the reader and the caller consumes them (e.g. straight into guest memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordHeader {
    /// The MEM_SIZE list, each entry already checked against the local block
    /// (`index` = its local index). The caller applies any resize.
    MemSize(Vec<(usize, BlockEntry)>),
    /// A page of one byte value (always 0 after the checks).
    Zero {
        /// Local block index.
        block: usize,
        /// Page offset in the block.
        offset: u64,
        /// Fill byte.
        fill: u8,
    },
    /// A raw page; `page_size` bytes follow.
    Page {
        /// Local block index.
        block: usize,
        /// Page offset in the block.
        offset: u64,
    },
    /// An XBZRLE page whose encoding flag was checked; `len` (≤ the page size)
    /// bytes of encoded data follow, to apply to the destination's copy of the
    /// page ([`xbzrle::decode`](super::xbzrle::decode)).
    Xbzrle {
        /// Local block index.
        block: usize,
        /// Page offset in the block.
        offset: u64,
        /// Bytes of encoded data.
        len: usize,
    },
    /// End of the chunk.
    Eos,
}

/// An owned record, for tests and tools: [`RecordHeader`] with the page payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The MEM_SIZE list.
    MemSize(Vec<BlockEntry>),
    /// A zero page.
    Zero {
        /// Local block index.
        block: usize,
        /// Page offset in the block.
        offset: u64,
    },
    /// A raw page and its bytes.
    Page {
        /// Local block index.
        block: usize,
        /// Page offset in the block.
        offset: u64,
        /// `page_size` bytes.
        data: Vec<u8>,
    },
    /// An XBZRLE page and its encoded data.
    Xbzrle {
        /// Local block index.
        block: usize,
        /// Page offset in the block.
        offset: u64,
        /// The encoded data (at most a page).
        data: Vec<u8>,
    },
    /// End of the chunk.
    Eos,
}

/// Which page a record is for: the local block index (what CONTINUE compares),
/// its idstr (sent when the block changes) and the page offset in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageAt<'a> {
    /// Local block index.
    pub block: usize,
    /// The block's idstr.
    pub idstr: &'a str,
    /// Page-aligned offset in the block.
    pub offset: u64,
}

/// Writes RAM records; remembers the last block named so CONTINUE is used
/// whenever QEMU would use it (across sections too).
///
/// ```
/// use vmstate_devices::ram::protocol::{PageAt, RamEncoder, X86_TARGET_PAGE_SIZE};
/// use vmstate_runtime::wire::Writer;
///
/// let mut enc = RamEncoder::new(X86_TARGET_PAGE_SIZE);
/// let mut w = Writer::new(Vec::new());
/// let at = |offset| PageAt { block: 0, idstr: "pc.ram", offset };
/// enc.write_zero(&mut w, at(0)).unwrap();
/// enc.write_zero(&mut w, at(0x1000)).unwrap();
/// enc.write_eos(&mut w).unwrap();
/// let bytes = w.into_inner();
/// assert_eq!(&bytes[..16], b"\0\0\0\0\0\0\0\x02\x06pc.ram\0");
/// assert_eq!(&bytes[16..25], b"\0\0\0\0\0\0\x10\x22\0");
/// assert_eq!(&bytes[25..], b"\0\0\0\0\0\0\0\x10");
/// ```
#[derive(Debug, Clone)]
pub struct RamEncoder {
    page_size: u64,
    last_block: Option<usize>,
}

impl RamEncoder {
    /// An encoder for `page_size` target pages (a power of two ≥ 1 KiB).
    pub fn new(page_size: u64) -> Self {
        assert!(
            page_size.is_power_of_two() && page_size >= 1024,
            "target page size {page_size:#x} must be a power of two of at least 1 KiB"
        );
        RamEncoder {
            page_size,
            last_block: None,
        }
    }

    /// The target page size.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// Forgets the last block (QEMU resets it when the RAM list changes or
    /// postcopy starts), so the next record names its block.
    pub fn reset_last_block(&mut self) {
        self.last_block = None;
    }

    /// The MEM_SIZE list: the total of every used_length, then per block its
    /// idstr, used_length and the optional words `opts` calls for.
    pub fn write_mem_size<B: BufMut>(
        &mut self,
        w: &mut Writer<B>,
        entries: &[BlockEntry],
        opts: MemSizeOptions,
    ) -> vmstate_runtime::Result<()> {
        let total: u64 = entries.iter().map(|e| e.used_length).sum();
        w.write_u64(total | RamFlag::MemSize.bit())?;
        for e in entries {
            w.write_counted_bytes(e.idstr.as_bytes())?;
            w.write_u64(e.used_length)?;
            if opts.postcopy_host_page_size.is_some() {
                if let Some(ps) = e.page_size {
                    w.write_u64(ps)?;
                }
            }
            if opts.ignore_shared {
                w.write_u64(e.gpa.unwrap_or(0))?;
            }
        }
        Ok(())
    }

    fn header<B: BufMut>(
        &mut self,
        w: &mut Writer<B>,
        PageAt {
            block,
            idstr,
            offset,
        }: PageAt<'_>,
        flag: RamFlag,
    ) -> vmstate_runtime::Result<()> {
        debug_assert_eq!(offset & flag_mask(self.page_size), 0, "unaligned page");
        if self.last_block == Some(block) {
            w.write_u64(offset | flag.bit() | RamFlag::Continue.bit())
        } else {
            w.write_u64(offset | flag.bit())?;
            w.write_counted_bytes(idstr.as_bytes())?;
            self.last_block = Some(block);
            Ok(())
        }
    }

    /// A ZERO record for the page `at`.
    pub fn write_zero<B: BufMut>(
        &mut self,
        w: &mut Writer<B>,
        at: PageAt<'_>,
    ) -> vmstate_runtime::Result<()> {
        self.header(w, at, RamFlag::Zero)?;
        w.write_u8(0)
    }

    /// The header of a PAGE record; the caller writes the `page_size` bytes.
    pub fn write_page_header<B: BufMut>(
        &mut self,
        w: &mut Writer<B>,
        at: PageAt<'_>,
    ) -> vmstate_runtime::Result<()> {
        self.header(w, at, RamFlag::Page)
    }

    /// A whole PAGE record.
    pub fn write_page<B: BufMut>(
        &mut self,
        w: &mut Writer<B>,
        at: PageAt<'_>,
        data: &[u8],
    ) -> vmstate_runtime::Result<()> {
        assert_eq!(
            data.len() as u64,
            self.page_size,
            "a page is one target page"
        );
        self.write_page_header(w, at)?;
        w.write_bytes(data)
    }

    /// An XBZRLE record for the page `at`: the encoding flag byte, the be16
    /// length and `encoded` (an [`xbzrle::encode`](super::xbzrle::encode)
    /// result of at most a page).
    pub fn write_xbzrle<B: BufMut>(
        &mut self,
        w: &mut Writer<B>,
        at: PageAt<'_>,
        encoded: &[u8],
    ) -> vmstate_runtime::Result<()> {
        assert!(
            encoded.len() as u64 <= self.page_size,
            "an XBZRLE encoding is at most a page"
        );
        self.header(w, at, RamFlag::Xbzrle)?;
        w.write_u8(ENCODING_FLAG_XBZRLE)?;
        w.write_u16(encoded.len() as u16)?;
        w.write_bytes(encoded)
    }

    /// The EOS word that ends every START/PART/END body.
    pub fn write_eos<B: BufMut>(&mut self, w: &mut Writer<B>) -> vmstate_runtime::Result<()> {
        w.write_u64(RamFlag::Eos.bit())
    }
}

/// Reads RAM records, checking each against the local [`BlockTable`]; keeps the
/// last block across sections for CONTINUE.
#[derive(Debug, Clone)]
pub struct RamDecoder {
    page_size: u64,
    opts: MemSizeOptions,
    last_block: Option<usize>,
}

/// Converts a wire read error into a RAM error at `at`.
fn wire(at: u64) -> impl FnOnce(vmstate_runtime::Error) -> RamError {
    move |e| RamError::new(RamErrorKind::Wire(e), at)
}

impl RamDecoder {
    /// A decoder for `page_size` target pages, expecting the MEM_SIZE words
    /// `opts` calls for.
    pub fn new(page_size: u64, opts: MemSizeOptions) -> Self {
        assert!(page_size.is_power_of_two() && page_size >= 1024);
        RamDecoder {
            page_size,
            opts,
            last_block: None,
        }
    }

    /// The target page size.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    fn block_name<B: Buf, T: BlockTable>(
        r: &mut Reader<B>,
        table: &T,
        at: u64,
    ) -> Result<usize, RamError> {
        let name = r.read_counted_bytes().map_err(wire(at))?;
        table.find(name.as_bytes()).ok_or_else(|| {
            RamError::new(
                RamErrorKind::UnknownBlock {
                    block: name.to_string_lossy(),
                },
                at,
            )
        })
    }

    /// Reads the next record header. A PAGE's payload is left in `r`.
    pub fn next_header<B: Buf, T: BlockTable>(
        &mut self,
        r: &mut Reader<B>,
        table: &T,
    ) -> Result<RecordHeader, RamError> {
        let at = r.position();
        let word = r.read_u64().map_err(wire(at))?;
        let mask = flag_mask(self.page_size);
        let (flags, offset) = (word & mask, word & !mask);
        let cont = flags & RamFlag::Continue.bit() != 0;
        let kind = flags & !RamFlag::Continue.bit();
        const MEM_SIZE: u64 = RamFlag::MemSize as u64;
        const EOS: u64 = RamFlag::Eos as u64;
        const ZERO: u64 = RamFlag::Zero as u64;
        const PAGE: u64 = RamFlag::Page as u64;
        const XBZRLE: u64 = RamFlag::Xbzrle as u64;
        const COMPRESS: u64 = RamFlag::CompressPage as u64;
        const HOOK: u64 = RamFlag::Hook as u64;
        match (kind, cont) {
            (MEM_SIZE, false) => self.mem_size(r, table, offset, at),
            (EOS, false) if offset == 0 => Ok(RecordHeader::Eos),
            (ZERO | PAGE | XBZRLE, _) => {
                let block = self.page_block(r, table, cont, offset, at)?;
                let lim = table.limits(block);
                let bad = |kind| Err(RamError::new(kind, at));
                match kind {
                    PAGE => Ok(RecordHeader::Page { block, offset }),
                    ZERO => match r.read_u8().map_err(wire(at))? {
                        0 => Ok(RecordHeader::Zero {
                            block,
                            offset,
                            fill: 0,
                        }),
                        fill => bad(RamErrorKind::BadFill {
                            block: lim.idstr.to_string(),
                            offset,
                            fill,
                        }),
                    },
                    _ => {
                        let xbzrle = |reason| RamErrorKind::BadXbzrle {
                            block: lim.idstr.to_string(),
                            offset,
                            reason,
                        };
                        let flag = r.read_u8().map_err(wire(at))?;
                        if flag != ENCODING_FLAG_XBZRLE {
                            return bad(xbzrle(XbzrleError::BadEncodingFlag(flag)));
                        }
                        let len = usize::from(r.read_u16().map_err(wire(at))?);
                        if len as u64 > self.page_size {
                            return bad(xbzrle(XbzrleError::LengthBeyondPage {
                                len,
                                page: self.page_size as usize,
                            }));
                        }
                        Ok(RecordHeader::Xbzrle { block, offset, len })
                    }
                }
            }
            (COMPRESS | HOOK, _) => {
                let what = match kind {
                    COMPRESS => "COMPRESS_PAGE (compress capability)",
                    _ => "RDMA HOOK",
                };
                Err(RamError::new(RamErrorKind::Unsupported { what, flags }, at))
            }
            _ => Err(RamError::new(RamErrorKind::UnknownFlags { flags }, at)),
        }
    }

    /// The block of a page record (named, or the previous one for CONTINUE),
    /// with the page checked to lie within its used_length.
    fn page_block<B: Buf, T: BlockTable>(
        &mut self,
        r: &mut Reader<B>,
        table: &T,
        cont: bool,
        offset: u64,
        at: u64,
    ) -> Result<usize, RamError> {
        let block = if cont {
            self.last_block
                .ok_or_else(|| RamError::new(RamErrorKind::ContinueWithoutBlock { offset }, at))?
        } else {
            Self::block_name(r, table, at)?
        };
        self.last_block = Some(block);
        let lim = table.limits(block);
        if offset
            .checked_add(self.page_size)
            .is_none_or(|end| end > lim.used_length)
        {
            return Err(RamError::new(
                RamErrorKind::OffsetBeyondUsed {
                    block: lim.idstr.to_string(),
                    offset,
                    used: lim.used_length,
                },
                at,
            ));
        }
        Ok(block)
    }

    /// The MEM_SIZE list: entries until the announced total is used up, each
    /// checked against its local block.
    fn mem_size<B: Buf, T: BlockTable>(
        &mut self,
        r: &mut Reader<B>,
        table: &T,
        total: u64,
        at: u64,
    ) -> Result<RecordHeader, RamError> {
        let mut remaining = total;
        // Grows only with entries actually read and matched to a local block.
        let mut entries = Vec::new();
        while remaining > 0 {
            let entry_at = r.position();
            let name = r.read_counted_bytes().map_err(wire(entry_at))?;
            if name.as_bytes().is_empty() {
                // No RAMBlock has an empty idstr: the list ended (typically at
                // the EOS word) before the announced total was used up.
                return Err(RamError::new(
                    RamErrorKind::MemSizeListShort {
                        total,
                        listed: total - remaining,
                        entries: entries.len(),
                    },
                    entry_at,
                ));
            }
            let index = table.find(name.as_bytes()).ok_or_else(|| {
                RamError::new(
                    RamErrorKind::UnknownBlock {
                        block: name.to_string_lossy(),
                    },
                    entry_at,
                )
            })?;
            let lim = table.limits(index);
            let block = || lim.idstr.to_string();
            let err = |kind| RamError::new(kind, entry_at);
            let len = r.read_u64().map_err(wire(entry_at))?;
            if len > remaining {
                return Err(err(RamErrorKind::TotalMismatch {
                    block: block(),
                    len,
                    remaining,
                }));
            }
            remaining -= len;
            if len != lim.used_length {
                if !lim.resizeable {
                    return Err(err(RamErrorKind::LengthMismatch {
                        block: block(),
                        local: lim.used_length,
                        stream: len,
                    }));
                }
                if len > lim.max_length {
                    return Err(err(RamErrorKind::ResizeBeyondMax {
                        block: block(),
                        max: lim.max_length,
                        stream: len,
                    }));
                }
                if !len.is_multiple_of(self.page_size) {
                    return Err(err(RamErrorKind::UnalignedLength {
                        block: block(),
                        stream: len,
                        page_size: self.page_size,
                    }));
                }
            }
            // Optional words: each must equal the local value.
            let read_matching =
                |r: &mut Reader<B>, local: u64, kind: fn(String, u64, u64) -> RamErrorKind| {
                    let v = r.read_u64().map_err(wire(entry_at))?;
                    if v == local {
                        Ok(v)
                    } else {
                        Err(err(kind(block(), local, v)))
                    }
                };
            let page_size = match self.opts.postcopy_host_page_size {
                Some(host) if lim.page_size != host => {
                    Some(read_matching(r, lim.page_size, |block, local, stream| {
                        RamErrorKind::PageSizeMismatch {
                            block,
                            local,
                            stream,
                        }
                    })?)
                }
                _ => None,
            };
            let gpa = if self.opts.ignore_shared {
                Some(read_matching(r, lim.gpa, |block, local, stream| {
                    RamErrorKind::GpaMismatch {
                        block,
                        local,
                        stream,
                    }
                })?)
            } else {
                None
            };
            entries.push((
                index,
                BlockEntry {
                    idstr: lim.idstr.to_string(),
                    used_length: len,
                    page_size,
                    gpa,
                },
            ));
        }
        let _ = at;
        Ok(RecordHeader::MemSize(entries))
    }

    /// Reads the next record with its payload (for tools and tests; the RAM
    /// section reads PAGE payloads straight into guest memory instead).
    pub fn next_record<B: Buf, T: BlockTable>(
        &mut self,
        r: &mut Reader<B>,
        table: &T,
    ) -> Result<Record, RamError> {
        let at = r.position();
        Ok(match self.next_header(r, table)? {
            RecordHeader::MemSize(e) => Record::MemSize(e.into_iter().map(|(_, e)| e).collect()),
            RecordHeader::Zero { block, offset, .. } => Record::Zero { block, offset },
            RecordHeader::Page { block, offset } => {
                let data = r.read_vec(self.page_size as usize).map_err(wire(at))?;
                Record::Page {
                    block,
                    offset,
                    data,
                }
            }
            RecordHeader::Xbzrle { block, offset, len } => Record::Xbzrle {
                block,
                offset,
                data: r.read_vec(len).map_err(wire(at))?,
            },
            RecordHeader::Eos => Record::Eos,
        })
    }
}

/// A plain [`BlockTable`] of declarations without memory, for tools and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockSpecs(pub Vec<RamBlockSpec>);

impl BlockTable for BlockSpecs {
    fn find(&self, idstr: &[u8]) -> Option<usize> {
        self.0.iter().position(|b| b.idstr.as_bytes() == idstr)
    }
    fn limits(&self, index: usize) -> &RamBlockSpec {
        &self.0[index]
    }
}
