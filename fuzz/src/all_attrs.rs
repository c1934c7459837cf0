//! [`AllAttrs`]: one device struct that uses every one of the derive's 26
//! attribute keys (`vmstate-derive/src/symbol.rs`), so that one fuzz target
//! drives every piece of code the derive generates.
//!
//! Container keys: `name`, `version`, `minimum_version`, `priority`,
//! `pre_save`, `post_save`, `pre_load`, `post_load`, `crate` (also on the enum
//! [`Kind`]). Field keys: `since`, `test`, `subsection` (with and without
//! `needed`), `with_tmp`, `skip`, `unused`, `varray`, `vbuffer`, `bitmap`,
//! `list`, `max`, `equal`, `positive_le`, `timer`, `buffer`, `validate`,
//! `rename`.

use std::cell::Cell;

use vmstate_runtime::{Error, VmStateTmp, WithTmp};

/// The runtime under another path, for the `crate` key.
pub mod rt {
    pub use vmstate_runtime::*;
}

use rt::VmState;

/// An enum travelling as its discriminant.
#[derive(VmState, Default, Debug, Clone, Copy, PartialEq, Eq)]
#[vmstate(crate = "crate::all_attrs::rt")]
#[repr(u8)]
pub enum Kind {
    /// Discriminant 0.
    #[default]
    Idle = 0,
    /// Discriminant 1.
    Busy = 1,
    /// Discriminant 9.
    Broken = 9,
}

/// An element of the `list` field.
#[derive(VmState, Default, Debug, Clone, PartialEq, Eq)]
#[vmstate(crate = "crate::all_attrs::rt", name = "fuzz/entry", version = 1)]
pub struct Entry {
    /// A tag.
    pub tag: u32,
    /// A length.
    pub len: u8,
}

/// The subsection sent only when needed.
#[derive(VmState, Default, Debug, Clone, PartialEq, Eq)]
#[vmstate(
    crate = "crate::all_attrs::rt",
    name = "fuzz/all-attrs/extra",
    version = 1
)]
pub struct Extra {
    /// Sent when non-zero.
    pub value: u64,
}

/// The subsection always sent.
#[derive(VmState, Default, Debug, Clone, PartialEq, Eq)]
#[vmstate(
    crate = "crate::all_attrs::rt",
    name = "fuzz/all-attrs/always",
    version = 1
)]
pub struct Always {
    /// A flag.
    pub flag: bool,
}

/// The wire view of the ring: head and length (memory has head and tail).
#[derive(VmState, Default)]
#[vmstate(crate = "crate::all_attrs::rt", name = "fuzz/all-attrs/ring")]
pub struct RingTmp {
    /// Head index.
    pub head: u16,
    /// Elements in use.
    pub len: u16,
}

impl VmStateTmp<AllAttrs> for RingTmp {
    fn from_parent(p: &AllAttrs) -> Result<Self, Error> {
        Ok(RingTmp {
            head: p.head,
            len: p.tail.wrapping_sub(p.head),
        })
    }

    fn into_parent(self, p: &mut AllAttrs) -> Result<(), Error> {
        p.head = self.head;
        p.tail = self.head.wrapping_add(self.len);
        Ok(())
    }
}

/// Every attribute key in one struct.
#[derive(VmState, Debug)]
#[vmstate(
    crate = "crate::all_attrs::rt",
    name = "fuzz/all-attrs",
    version = 2,
    minimum_version = 1,
    priority = Iommu,
    pre_save = pre_save,
    post_save = post_save,
    pre_load = pre_load,
    post_load = post_load
)]
pub struct AllAttrs {
    /// Plain field; bit 0 says whether `extra_word` travels (`test`).
    pub id: u32,
    /// Must be ours (`equal`).
    #[vmstate(equal)]
    pub magic: u16,
    /// 0 ≤ incoming ≤ ours (`positive_le`).
    #[vmstate(positive_le)]
    pub queues: i32,
    /// Only from version 2 (`since`).
    #[vmstate(since = 2)]
    pub v2_reg: u32,
    /// Only when `id` is odd (`test`).
    #[vmstate(test = has_extra_word)]
    pub extra_word: u16,
    /// Named `regs.mode` in descriptions (`rename`).
    #[vmstate(rename = "regs.mode")]
    pub mode: u8,
    /// At most 100 (`validate`).
    #[vmstate(validate = level_ok)]
    pub level: u8,
    /// Three reserved bytes (`unused`).
    #[vmstate(unused = 3)]
    pub _reserved: (),
    /// Count of `items`.
    pub nr_items: u8,
    /// `varray` bounded by `max`.
    #[vmstate(varray(len = nr_items), max = 8)]
    pub items: Vec<u16>,
    /// Length of `buf`.
    pub buf_len: u32,
    /// `vbuffer` bounded by `max`.
    #[vmstate(vbuffer(len = buf_len), max = 32)]
    pub buf: Vec<u8>,
    /// A fixed `buffer`.
    #[vmstate(buffer)]
    pub raw: [u8; 4],
    /// Bits in `bits`.
    pub nbits: u32,
    /// A `bitmap` of at most 200 bits.
    #[vmstate(bitmap(len = nbits), max = 200)]
    pub bits: Vec<u64>,
    /// A `timer` (all ones: disarmed).
    #[vmstate(timer)]
    pub timer: Option<u64>,
    /// A `list` of at most 4 entries.
    #[vmstate(list, max = 4)]
    pub entries: Vec<Entry>,
    /// An enum.
    pub kind: Kind,
    /// Ring head, carried by `ring` (`skip`).
    #[vmstate(skip)]
    pub head: u16,
    /// Ring tail, carried by `ring` (`skip`).
    #[vmstate(skip)]
    pub tail: u16,
    /// Hook bookkeeping of any type (`skip`).
    #[vmstate(skip)]
    pub hook_calls: Cell<u32>,
    /// Head and tail as the wire's head and length (`with_tmp`).
    #[vmstate(with_tmp)]
    pub ring: WithTmp<RingTmp>,
    /// Sent when its value is non-zero (`subsection(needed = ...)`).
    #[vmstate(subsection(needed = extra_needed))]
    pub extra: Extra,
    /// Always sent (`subsection`).
    #[vmstate(subsection)]
    pub always: Always,
}

impl Default for AllAttrs {
    fn default() -> Self {
        AllAttrs {
            id: 0,
            magic: 0x5aa5,
            queues: 8,
            v2_reg: 0,
            extra_word: 0,
            mode: 0,
            level: 0,
            _reserved: (),
            nr_items: 0,
            items: Vec::new(),
            buf_len: 0,
            buf: Vec::new(),
            raw: [0; 4],
            nbits: 0,
            bits: Vec::new(),
            timer: None,
            entries: Vec::new(),
            kind: Kind::default(),
            head: 0,
            tail: 0,
            hook_calls: Cell::new(0),
            ring: WithTmp::default(),
            extra: Extra::default(),
            always: Always::default(),
        }
    }
}

fn has_extra_word(s: &AllAttrs, _version_id: u32) -> bool {
    s.id & 1 != 0
}

fn level_ok(s: &AllAttrs, _version_id: u32) -> bool {
    s.level <= 100
}

fn extra_needed(s: &AllAttrs) -> bool {
    s.extra.value != 0
}

fn pre_save(s: &AllAttrs) -> Result<(), String> {
    s.hook_calls.set(s.hook_calls.get().wrapping_add(1));
    Ok(())
}

fn post_save(s: &AllAttrs) -> Result<(), String> {
    s.hook_calls.set(s.hook_calls.get().wrapping_add(1));
    Ok(())
}

fn pre_load(s: &mut AllAttrs) -> Result<(), String> {
    s.hook_calls.set(0);
    Ok(())
}

fn post_load(s: &mut AllAttrs, _version_id: u32) -> Result<(), String> {
    // A broken device refuses to load, as a QEMU post_load returning -EINVAL.
    if s.kind == Kind::Broken {
        return Err("device reports a broken state".into());
    }
    Ok(())
}
