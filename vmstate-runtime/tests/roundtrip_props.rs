//! Property tests over a device struct that uses every attribute kind:
//!
//! * the derive's encoding equals an independent, hand-written reference encoder
//!   (QEMU's rules, qemu-wire.md §2) at the current version;
//! * save-then-load is the identity;
//! * older-version streams built by the reference encoder load, with the `since`
//!   fields they lack left at their defaults, for every version from the minimum up;
//! * an absent subsection leaves the pre_load defaults;
//! * arbitrary bytes, and random mutations and truncations of valid encodings, never
//!   panic, and never make the loader allocate beyond the declared bounds.

mod common;
use common::bytes::sub_header;

use proptest::collection::vec;
use proptest::prelude::*;
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{from_bytes, to_bytes, Error, VmState, VmStateTmp, WithTmp};

// The counting allocator of `common::alloc` measures the largest allocation a load
// makes.
#[global_allocator]
static ALLOC: common::alloc::Counting = common::alloc::Counting;

/// Runs `f` and returns its result with the largest allocation it made.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let (r, seen) = common::alloc::measure(f);
    (r, seen.largest)
}

/// Far above anything `Rich` legitimately needs (its largest bounded buffer is 32
/// bytes, its largest list 5 small elements, error paths a few short strings), far
/// below what an unbounded count from the stream would ask for.
const ALLOCATION_BOUND: usize = 4096;

// ---------------------------------------------------------------------------------
// The device
// ---------------------------------------------------------------------------------

#[derive(VmState, Debug, PartialEq, Clone, Copy, Default)]
#[repr(u8)]
enum Mode {
    #[default]
    Off = 0,
    On = 1,
    Turbo = 7,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "rich/elem", version = 1)]
struct Elem {
    id: u16,
    on: bool,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "rich/inner/extra", version = 1)]
struct InnerExtra {
    e: u16,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "rich/inner", version = 2, minimum_version = 2)]
struct Inner {
    x: u8,
    #[vmstate(since = 2)]
    y: u32,
    #[vmstate(subsection(needed = Inner::extra_needed))]
    extra: InnerExtra,
}

impl Inner {
    fn extra_needed(&self) -> bool {
        self.extra.e != 0
    }
}

const SUB_Y_DEFAULT: u8 = 0x5a;

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "rich/sub", version = 2, minimum_version = 1)]
struct RichSub {
    x: u16,
    #[vmstate(since = 2)]
    y: u8,
}

fn sub_defaults() -> RichSub {
    RichSub {
        x: 0,
        y: SUB_Y_DEFAULT,
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "rich/tmp")]
struct RichTmp {
    period_us: u32,
}

impl VmStateTmp<Rich> for RichTmp {
    fn from_parent(p: &Rich) -> Result<Self, Error> {
        Ok(RichTmp {
            period_us: (p.period_ns / 1000) as u32,
        })
    }
    fn into_parent(self, p: &mut Rich) -> Result<(), Error> {
        p.period_ns = u64::from(self.period_us) * 1000;
        Ok(())
    }
}

const MAGIC: u32 = 0x5652_4d53;
const CAP_LIMIT: i32 = 1000;

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "rich", version = 3, minimum_version = 1, pre_load = Rich::pre_load)]
struct Rich {
    flag: bool,
    u8_: u8,
    i8_: i8,
    u16_: u16,
    i16_: i16,
    u32_: u32,
    i32_: i32,
    u64_: u64,
    i64_: i64,
    regs: [u16; 4],
    mode: Mode,
    #[vmstate(since = 2)]
    v2: u32,
    #[vmstate(since = 3)]
    v3: [u8; 3],
    #[vmstate(test = Rich::has_opt)]
    opt: u16,
    n8: u8,
    #[vmstate(varray(len = n8), max = 8)]
    vec8: Vec<u16>,
    n16: u16,
    #[vmstate(varray(len = n16))]
    arr16: [u32; 5],
    n32: u32,
    #[vmstate(vbuffer(len = n32), max = 32)]
    buf: Vec<u8>,
    ni32: i32,
    #[vmstate(varray(len = ni32), max = 4)]
    structs: Vec<Elem>,
    nbits: u32,
    #[vmstate(bitmap(len = nbits), max = 200)]
    bits: Vec<u64>,
    #[vmstate(list, max = 5)]
    list: Vec<Elem>,
    #[vmstate(unused = 3)]
    pad: (),
    #[vmstate(equal)]
    magic: u32,
    #[vmstate(positive_le)]
    cap: i32,
    #[vmstate(timer)]
    timer: Option<u64>,
    #[vmstate(skip)]
    period_ns: u64,
    #[vmstate(with_tmp)]
    tmp: WithTmp<RichTmp>,
    #[vmstate(validate = Rich::checked_ok)]
    checked: u8,
    boxed: Box<Elem>,
    ptrs: [Option<Box<u32>>; 3],
    inner: Inner,
    #[vmstate(buffer)]
    raw: [u8; 4],
    #[vmstate(vbuffer(len = n8))]
    fixedbuf: [u8; 8],
    #[vmstate(subsection(needed = Rich::sub_needed))]
    sub: RichSub,
}

impl Rich {
    fn pre_load(&mut self) -> Result<(), Error> {
        self.magic = MAGIC;
        self.cap = CAP_LIMIT;
        self.ptrs = [Some(Box::new(0)), None, Some(Box::new(0))];
        self.sub = sub_defaults();
        Ok(())
    }
    fn has_opt(&self, _version_id: u32) -> bool {
        self.flag
    }
    fn checked_ok(&self, _version_id: u32) -> bool {
        self.checked < 200
    }
    fn sub_needed(&self) -> bool {
        self.sub != sub_defaults()
    }
}

// ---------------------------------------------------------------------------------
// Reference encoder, written from QEMU's rules independently of the derive
// ---------------------------------------------------------------------------------

fn encode_elem(o: &mut Vec<u8>, e: &Elem) {
    o.extend_from_slice(&e.id.to_be_bytes());
    o.push(e.on as u8);
}

/// The subsection version an older source would send with a stream of `version`.
fn sub_version(version: u32) -> u32 {
    if version >= 3 {
        2
    } else {
        1
    }
}

/// The body of `d` as a source at `version` would write it (fields with
/// `since > version` absent, its subsection at that source's subsection version);
/// `with_sub = false` leaves the subsection out even when needed.
fn encode(d: &Rich, version: u32, with_sub: bool) -> Vec<u8> {
    let mut o = Vec::new();
    o.push(d.flag as u8);
    o.push(d.u8_);
    o.push(d.i8_ as u8);
    o.extend_from_slice(&d.u16_.to_be_bytes());
    o.extend_from_slice(&d.i16_.to_be_bytes());
    o.extend_from_slice(&d.u32_.to_be_bytes());
    o.extend_from_slice(&d.i32_.to_be_bytes());
    o.extend_from_slice(&d.u64_.to_be_bytes());
    o.extend_from_slice(&d.i64_.to_be_bytes());
    for r in d.regs {
        o.extend_from_slice(&r.to_be_bytes());
    }
    o.push(d.mode as u8);
    if version >= 2 {
        o.extend_from_slice(&d.v2.to_be_bytes());
    }
    if version >= 3 {
        o.extend_from_slice(&d.v3);
    }
    if d.flag {
        o.extend_from_slice(&d.opt.to_be_bytes());
    }
    o.push(d.n8);
    for v in &d.vec8 {
        o.extend_from_slice(&v.to_be_bytes());
    }
    o.extend_from_slice(&d.n16.to_be_bytes());
    for v in &d.arr16[..d.n16 as usize] {
        o.extend_from_slice(&v.to_be_bytes());
    }
    o.extend_from_slice(&d.n32.to_be_bytes());
    o.extend_from_slice(&d.buf);
    o.extend_from_slice(&d.ni32.to_be_bytes());
    for e in &d.structs {
        encode_elem(&mut o, e);
    }
    o.extend_from_slice(&d.nbits.to_be_bytes());
    for w in &d.bits {
        o.extend_from_slice(&w.to_be_bytes());
    }
    for e in &d.list {
        o.push(0x01);
        encode_elem(&mut o, e);
    }
    o.push(0x00);
    o.extend_from_slice(&[0, 0, 0]);
    o.extend_from_slice(&d.magic.to_be_bytes());
    o.extend_from_slice(&d.cap.to_be_bytes());
    o.extend_from_slice(&d.timer.unwrap_or(u64::MAX).to_be_bytes());
    o.extend_from_slice(&((d.period_ns / 1000) as u32).to_be_bytes());
    o.push(d.checked);
    encode_elem(&mut o, &d.boxed);
    for p in &d.ptrs {
        match p {
            Some(v) => o.extend_from_slice(&v.to_be_bytes()),
            None => o.push(0x30),
        }
    }
    // Nested struct: always at its own version (2), its subsection right after.
    o.push(d.inner.x);
    o.extend_from_slice(&d.inner.y.to_be_bytes());
    if d.inner.extra.e != 0 {
        o.extend(sub_header("rich/inner/extra", 1));
        o.extend_from_slice(&d.inner.extra.e.to_be_bytes());
    }
    o.extend_from_slice(&d.raw);
    o.extend_from_slice(&d.fixedbuf[..d.n8 as usize]);
    if with_sub && d.sub_needed() {
        let sv = sub_version(version);
        o.extend(sub_header("rich/sub", sv));
        o.extend_from_slice(&d.sub.x.to_be_bytes());
        if sv >= 2 {
            o.push(d.sub.y);
        }
    }
    o
}

/// What loading `encode(d, version, with_sub)` into a fresh value must give.
fn expected_at(d: &Rich, version: u32, with_sub: bool) -> Rich {
    let mut e = d.clone();
    if version < 2 {
        e.v2 = 0;
    }
    if version < 3 {
        e.v3 = [0; 3];
    }
    if !with_sub {
        e.sub = sub_defaults();
    } else if sub_version(version) < 2 {
        e.sub.y = SUB_Y_DEFAULT;
    }
    e
}

// ---------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Off), Just(Mode::On), Just(Mode::Turbo)]
}

fn elem() -> impl Strategy<Value = Elem> {
    (any::<u16>(), any::<bool>()).prop_map(|(id, on)| Elem { id, on })
}

/// Any value the device can be in (consistent counts, destination-compatible
/// `equal`/`positive_le`/pointer slots, a timer value other than the "disarmed" one).
fn rich() -> impl Strategy<Value = Rich> {
    let scalars = (
        any::<bool>(),
        any::<u8>(),
        any::<i8>(),
        any::<u16>(),
        any::<i16>(),
        any::<u32>(),
        any::<i32>(),
        any::<u64>(),
        any::<i64>(),
        any::<[u16; 4]>(),
        mode(),
    );
    let arrays = (
        any::<u32>(),
        any::<[u8; 3]>(),
        any::<u16>(),
        vec(any::<u16>(), 0..=8),
        0..=5u16,
        any::<[u32; 5]>(),
        vec(any::<u8>(), 0..=32),
        vec(elem(), 0..=4),
        0..=200u32,
        any::<[u64; 4]>(),
        vec(elem(), 0..=5),
    );
    let rest = (
        0..=CAP_LIMIT,
        proptest::option::of(
            any::<u64>().prop_filter("all ones means disarmed", |t| *t != u64::MAX),
        ),
        any::<u32>(),
        0..200u8,
        elem(),
        any::<[u32; 2]>(),
        (any::<u8>(), any::<u32>(), any::<u16>()),
        any::<[u8; 4]>(),
        any::<[u8; 8]>(),
        (any::<u16>(), any::<u8>()),
    );
    (scalars, arrays, rest).prop_map(|(s, a, r)| {
        let (flag, u8_, i8_, u16_, i16_, u32_, i32_, u64_, i64_, regs, mode) = s;
        let (v2, v3, opt, vec8, n16, mut arr16, buf, structs, nbits, words, list) = a;
        let (cap, timer, period_us, checked, boxed, ptrs, inner, raw, mut fixedbuf, sub) = r;
        let n8 = vec8.len() as u8;
        for x in &mut arr16[n16 as usize..] {
            *x = 0;
        }
        for x in &mut fixedbuf[n8 as usize..] {
            *x = 0;
        }
        Rich {
            flag,
            u8_,
            i8_,
            u16_,
            i16_,
            u32_,
            i32_,
            u64_,
            i64_,
            regs,
            mode,
            v2,
            v3,
            opt: if flag { opt } else { 0 },
            n8,
            vec8,
            n16,
            arr16,
            n32: buf.len() as u32,
            buf,
            ni32: structs.len() as i32,
            structs,
            nbits,
            bits: words[..(nbits as usize).div_ceil(64)].to_vec(),
            list,
            pad: (),
            magic: MAGIC,
            cap,
            timer,
            period_ns: u64::from(period_us) * 1000,
            tmp: WithTmp::new(),
            checked,
            boxed: Box::new(boxed),
            ptrs: [Some(Box::new(ptrs[0])), None, Some(Box::new(ptrs[1]))],
            inner: Inner {
                x: inner.0,
                y: inner.1,
                extra: InnerExtra { e: inner.2 },
            },
            raw,
            fixedbuf,
            sub: RichSub { x: sub.0, y: sub.1 },
        }
    })
}

/// A mutation of a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        mask: u8,
    },
    Set {
        at: usize,
        byte: u8,
    },
    /// Overwrite four bytes with a hostile count-like value.
    Word {
        at: usize,
        word: u32,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Remove {
        at: usize,
    },
    Truncate {
        at: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (
            at,
            prop_oneof![
                Just(u32::MAX),
                Just(0x7fff_ffff),
                Just(0x8000_0000),
                Just(0x8100_0000),
                Just(0x0001_0000),
                Just(256),
                Just(0),
                any::<u32>()
            ]
        )
            .prop_map(|(at, word)| Mutation::Word { at, word }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        at.prop_map(|at| Mutation::Remove { at }),
        at.prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len();
    match *m {
        _ if n == 0 => {}
        Mutation::Flip { at, mask } => bytes[at % n] ^= mask,
        Mutation::Set { at, byte } => bytes[at % n] = byte,
        Mutation::Word { at, word } => {
            let at = at % n;
            for (i, b) in word.to_be_bytes().into_iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + i) {
                    *slot = b;
                }
            }
        }
        Mutation::Insert { at, byte } => bytes.insert(at % (n + 1), byte),
        Mutation::Remove { at } => {
            bytes.remove(at % n);
        }
        Mutation::Truncate { at } => bytes.truncate(at % n),
    }
}

/// Loads hostile bytes at every version the device might be asked to load (valid and
/// not); whatever loads must survive another save/load unchanged.
fn load_hostile(bytes: &[u8]) -> Result<(), TestCaseError> {
    for version in 0..=4 {
        let (result, largest) = largest_allocation(|| from_bytes::<Rich>(bytes, version));
        prop_assert!(
            largest <= ALLOCATION_BOUND,
            "allocated {largest} bytes for a {}-byte input at v{version}",
            bytes.len()
        );
        if let Ok(loaded) = result {
            let again = to_bytes(&loaded).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(from_bytes::<Rich>(&again, 3).ok(), Some(loaded));
        }
    }
    Ok(())
}

/// A `Buf` over a byte string cut into pieces: the reader must give the same
/// results over non-contiguous input as over one slice (headers, integer runs and
/// names may straddle pieces).
struct Fragmented<'a> {
    pieces: Vec<&'a [u8]>,
    /// Index of the current piece and offset inside it.
    at: usize,
    off: usize,
    remaining: usize,
}

impl<'a> Fragmented<'a> {
    fn new(bytes: &'a [u8], sizes: &[usize]) -> Self {
        let mut pieces = Vec::new();
        let mut rest = bytes;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (head, tail) = rest.split_at(size.clamp(1, rest.len()));
            pieces.push(head);
            rest = tail;
        }
        Fragmented {
            pieces,
            at: 0,
            off: 0,
            remaining: bytes.len(),
        }
    }
}

impl bytes::Buf for Fragmented<'_> {
    fn remaining(&self) -> usize {
        self.remaining
    }
    fn chunk(&self) -> &[u8] {
        match self.pieces.get(self.at) {
            Some(p) => &p[self.off..],
            None => &[],
        }
    }
    fn chunks_vectored<'b>(&'b self, dst: &mut [std::io::IoSlice<'b>]) -> usize {
        let mut n = 0;
        let mut off = self.off;
        for piece in self.pieces.iter().skip(self.at) {
            if n == dst.len() {
                break;
            }
            dst[n] = std::io::IoSlice::new(&piece[off..]);
            off = 0;
            n += 1;
        }
        n
    }
    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end");
        self.remaining -= cnt;
        while cnt > 0 {
            let left = self.pieces[self.at].len() - self.off;
            if cnt < left {
                self.off += cnt;
                return;
            }
            cnt -= left;
            self.at += 1;
            self.off = 0;
        }
    }
}

/// The outcome of a load, comparable across buffer types.
fn outcome<B: bytes::Buf>(buf: B, version: u32) -> Result<(Rich, usize), String> {
    let mut r = Reader::new(buf);
    let mut v = Rich::default();
    match v.load(&mut r, version) {
        Ok(()) => Ok((v, r.remaining())),
        Err(e) => Err(e.to_string()),
    }
}

// ---------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn save_matches_the_reference_encoder(d in rich()) {
        prop_assert_eq!(to_bytes(&d).unwrap(), encode(&d, 3, true));
    }

    #[test]
    fn save_then_load_is_identity(d in rich()) {
        let bytes = to_bytes(&d).unwrap();
        let back: Rich = from_bytes(&bytes, 3).unwrap();
        prop_assert_eq!(&back, &d);
        // And the loaded value saves to the same bytes.
        prop_assert_eq!(to_bytes(&back).unwrap(), bytes);
    }

    #[test]
    fn every_supported_version_loads(d in rich()) {
        let desc = Rich::DESCRIPTION;
        for version in desc.minimum_version_id..=desc.version_id {
            let bytes = encode(&d, version, true);
            let back = from_bytes::<Rich>(&bytes, version);
            prop_assert!(back.is_ok(), "v{}: {}", version, back.unwrap_err());
            prop_assert_eq!(back.unwrap(), expected_at(&d, version, true), "v{}", version);
        }
    }

    #[test]
    fn older_streams_leave_newer_fields_at_destination_values(d in rich(), v2 in any::<u32>(), v3 in any::<[u8; 3]>()) {
        // Loading into a live device: fields the stream lacks keep the device's values.
        for version in 1..=2u32 {
            let bytes = encode(&d, version, true);
            let mut dest = Rich { v2, v3, ..Rich::default() };
            let mut r = Reader::new(&bytes[..]);
            dest.load(&mut r, version).unwrap();
            prop_assert_eq!(r.remaining(), 0);
            prop_assert_eq!(dest.v2, if version >= 2 { d.v2 } else { v2 });
            prop_assert_eq!(dest.v3, v3);
        }
    }

    #[test]
    fn absent_subsection_leaves_pre_load_defaults(d in rich(), x in any::<u16>(), y in any::<u8>()) {
        for version in 1..=3u32 {
            let bytes = encode(&d, version, false);
            let mut dest = Rich {
                sub: RichSub { x, y },
                ..Rich::default()
            };
            let mut r = Reader::new(&bytes[..]);
            dest.load(&mut r, version).unwrap();
            prop_assert_eq!(r.remaining(), 0);
            prop_assert_eq!(&dest.sub, &sub_defaults());
            prop_assert_eq!(dest, expected_at(&d, version, false));
        }
    }

    #[test]
    fn older_version_is_a_different_valid_stream(d in rich()) {
        // A stream read at the wrong version may happen to parse or may fail, but it
        // must never panic.
        for (written, read) in [(3u32, 1u32), (3, 2), (1, 3), (2, 3), (1, 2)] {
            let bytes = encode(&d, written, true);
            let _ = from_bytes::<Rich>(&bytes, read);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..400)) {
        load_hostile(&bytes)?;
    }

    #[test]
    fn random_bytes_after_a_valid_prefix_never_panic(d in rich(), cut in any::<usize>(), tail in vec(any::<u8>(), 0..64)) {
        let mut bytes = to_bytes(&d).unwrap();
        bytes.truncate(cut % (bytes.len() + 1));
        bytes.extend_from_slice(&tail);
        load_hostile(&bytes)?;
    }

    #[test]
    fn mutated_encodings_never_panic(d in rich(), mutations in vec(mutation(), 1..6)) {
        let mut bytes = to_bytes(&d).unwrap();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        load_hostile(&bytes)?;
    }

    #[test]
    fn fragmented_input_loads_like_contiguous_input(
        d in rich(),
        sizes in vec(1..8usize, 1..8),
        mutations in vec(mutation(), 0..3),
    ) {
        let mut bytes = to_bytes(&d).unwrap();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let contiguous = outcome(&bytes[..], 3);
        if mutations.is_empty() {
            prop_assert_eq!(contiguous.as_ref().map(|(v, _)| v), Ok(&d));
        }
        prop_assert_eq!(outcome(Fragmented::new(&bytes, &sizes), 3), contiguous);
    }

    #[test]
    fn truncations_always_fail_or_stop_at_a_subsection_boundary(d in rich(), cut in any::<usize>()) {
        let bytes = to_bytes(&d).unwrap();
        let without_sub = encode(&d, 3, false).len();
        let cut = cut % bytes.len();
        match from_bytes::<Rich>(&bytes[..cut], 3) {
            // A cut right before the optional subsection leaves a valid body.
            Ok(v) if cut == without_sub => prop_assert_eq!(v, expected_at(&d, 3, false)),
            // Otherwise only a cut inside the nested struct's subsection header can
            // load: QEMU's peek then fails, the nested body ends, and the header's bytes
            // are read as the parent's next fields (the format cannot tell).
            Ok(v) => {
                prop_assert!(d.inner.extra.e != 0, "prefix {} loaded: {:?}", cut, v);
                prop_assert_eq!(v.inner.extra.e, 0);
            }
            Err(e) => prop_assert!(e.offset().is_some_and(|o| o <= cut as u64), "{}", e),
        }
    }
}

// ---------------------------------------------------------------------------------
// Deterministic hostile counts: every 4-byte window of a valid encoding overwritten
// with values that would be huge allocations if trusted.
// ---------------------------------------------------------------------------------

fn sample() -> Rich {
    Rich {
        flag: true,
        opt: 0x0102,
        n8: 2,
        vec8: vec![1, 2],
        fixedbuf: [9, 8, 0, 0, 0, 0, 0, 0],
        n16: 1,
        arr16: [3, 0, 0, 0, 0],
        n32: 3,
        buf: vec![4, 5, 6],
        ni32: 1,
        structs: vec![Elem { id: 7, on: true }],
        nbits: 65,
        bits: vec![8, 9],
        list: vec![Elem { id: 10, on: false }],
        magic: MAGIC,
        cap: 11,
        timer: Some(12),
        period_ns: 13_000,
        ptrs: [Some(Box::new(14)), None, Some(Box::new(15))],
        inner: Inner {
            x: 16,
            y: 17,
            extra: InnerExtra { e: 18 },
        },
        sub: RichSub { x: 19, y: 20 },
        ..Rich::default()
    }
}

/// The sample without the nested subsection, whose truncated header could be read
/// as the parent's next fields (see `truncations_always_fail_or_stop_at_a_subsection_boundary`).
fn sample_without_nested_sub() -> Rich {
    let mut s = sample();
    s.inner.extra.e = 0;
    s
}

#[test]
fn hostile_count_words_are_rejected_without_large_allocations() {
    let good = to_bytes(&sample()).unwrap();
    assert_eq!(from_bytes::<Rich>(&good, 3).unwrap(), sample());
    for word in [u32::MAX, 0x7fff_ffff, 0x8000_0000, 0x0100_0000, 0xffff] {
        for at in 0..good.len() {
            let mut bytes = good.clone();
            apply(&mut bytes, &Mutation::Word { at, word });
            load_hostile(&bytes).unwrap();
        }
    }
}

#[test]
fn every_prefix_of_the_sample_fails_cleanly() {
    let s = sample_without_nested_sub();
    let good = to_bytes(&s).unwrap();
    let without_sub = encode(&s, 3, false).len();
    for cut in 0..good.len() {
        let r = from_bytes::<Rich>(&good[..cut], 3);
        assert_eq!(r.is_ok(), cut == without_sub, "prefix {cut}: {r:?}");
    }
}

#[test]
fn allocation_tracking_works() {
    // Sanity check of the tracking allocator itself.
    let (v, largest) = largest_allocation(|| vec![0u8; 10_000]);
    assert_eq!(v.len(), 10_000);
    assert!(largest >= 10_000);
}
