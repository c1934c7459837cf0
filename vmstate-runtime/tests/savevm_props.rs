//! Property tests of the whole savevm stream over generated registries: random
//! sets of `VmState` devices (several types, random values, with and without a
//! PCI-style path prefix, repeated types getting instance ids 0, 1, ...) plus 0-3
//! iterative handlers sending random payloads in random chunk sizes.
//!
//! * a full precopy stream loads into a fresh registry and reproduces every
//!   device and every iterative payload;
//! * writing the same source twice gives identical bytes;
//! * the vmdesc JSON parses and lists exactly the FULL sections, in stream order
//!   (as the loader met them, and as their headers sit in the bytes), with field
//!   sizes equal to a hand computation, and each body as long as the hand
//!   computation says;
//! * single-byte corruptions and truncations of a valid stream never panic, and
//!   every failure carries a byte offset.
//!
//! Plus deterministic tests (ignored where they document a bug) of vmdesc shapes
//! QEMU produces for arrays, and of the loader's error offsets for handler
//! errors.

use std::sync::{Arc, Mutex};

mod common;

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Value};
use vmstate_runtime::savevm::{
    Configuration, InstanceId, IterateStatus, LoadOptions, NoCommands, QemuVersion, Registry,
    SaveVmHandlers, SectionReader, SectionWriter, StreamLoader, StreamWriter,
};
use vmstate_runtime::vmstate::DescribeRecorder;
use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{Error, Result, VmState};

use common::device::ObservedDevice;
use common::payload::{PayloadSink, PayloadSource};

const MACHINE: &str = "pc-q35-7.2";

// ---------------------------------------------------------------------------
// The device types registries are generated from.

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "scalars", version = 1)]
struct Scalars {
    a: u8,
    b: u16,
    c: u32,
    d: u64,
    e: i8,
    f: i16,
    g: i32,
    h: i64,
    flag: bool,
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "regs", version = 3, minimum_version = 1, priority = Iommu)]
struct Regs {
    bank: [u8; 16],
    words: [u32; 4],
    #[vmstate(since = 2)]
    ctl: u16,
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "timerdev/inner", version = 1)]
struct Inner {
    x: u16,
    y: u64,
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "timerdev/extra", version = 1)]
struct Extra {
    z: u32,
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "timerdev", version = 2)]
struct TimerDev {
    count: u32,
    inner: Inner,
    #[vmstate(subsection(needed = TimerDev::extra_needed))]
    extra: Extra,
}

impl TimerDev {
    fn extra_needed(&self) -> bool {
        self.extra.z != 0
    }
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "fifo", version = 1)]
struct Fifo {
    len: u32,
    #[vmstate(varray(len = len), max = 64)]
    data: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq)]
enum Dev {
    Scalars(Scalars),
    Regs(Regs),
    Timer(TimerDev),
    Fifo(Fifo),
}

#[derive(Debug, Clone)]
struct DevSpec {
    dev: Dev,
    /// PCI slot: idstr `0000:00:0<slot>.0/<name>`.
    slot: Option<u8>,
}

#[derive(Debug, Clone)]
struct IterSpec {
    payload: Vec<u8>,
    chunk: usize,
}

#[derive(Debug, Clone)]
struct Spec {
    version: QemuVersion,
    iters: Vec<IterSpec>,
    devs: Vec<DevSpec>,
}

fn dev_strategy() -> impl Strategy<Value = Dev> {
    prop_oneof![
        (
            (any::<u8>(), any::<u16>(), any::<u32>(), any::<u64>()),
            (any::<i8>(), any::<i16>(), any::<i32>(), any::<i64>()),
            any::<bool>()
        )
            .prop_map(|((a, b, c, d), (e, f, g, h), flag)| Dev::Scalars(Scalars {
                a,
                b,
                c,
                d,
                e,
                f,
                g,
                h,
                flag
            })),
        (any::<[u8; 16]>(), any::<[u32; 4]>(), any::<u16>())
            .prop_map(|(bank, words, ctl)| Dev::Regs(Regs { bank, words, ctl })),
        (
            any::<u32>(),
            any::<u16>(),
            any::<u64>(),
            prop_oneof![Just(0u32), any::<u32>()]
        )
            .prop_map(|(count, x, y, z)| Dev::Timer(TimerDev {
                count,
                inner: Inner { x, y },
                extra: Extra { z },
            })),
        vec(any::<u16>(), 0..=8).prop_map(|data| Dev::Fifo(Fifo {
            len: data.len() as u32,
            data
        })),
    ]
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    (
        any::<bool>(),
        vec(
            (vec(any::<u8>(), 0..1024), 1usize..300)
                .prop_map(|(payload, chunk)| IterSpec { payload, chunk }),
            0..=3,
        ),
        vec(
            (dev_strategy(), proptest::option::of(0u8..3))
                .prop_map(|(dev, slot)| DevSpec { dev, slot }),
            0..8,
        ),
    )
        .prop_map(|(v10, iters, devs)| Spec {
            version: if v10 {
                QemuVersion::V10
            } else {
                QemuVersion::V7_2
            },
            iters,
            devs,
        })
}

// ---------------------------------------------------------------------------
// Building registries from a spec.

enum Shared {
    Scalars(Arc<Mutex<Scalars>>),
    Regs(Arc<Mutex<Regs>>),
    Timer(Arc<Mutex<TimerDev>>),
    Fifo(Arc<Mutex<Fifo>>),
}

impl Shared {
    fn get(&self) -> Dev {
        match self {
            Shared::Scalars(d) => Dev::Scalars(d.lock().unwrap().clone()),
            Shared::Regs(d) => Dev::Regs(d.lock().unwrap().clone()),
            Shared::Timer(d) => Dev::Timer(d.lock().unwrap().clone()),
            Shared::Fifo(d) => Dev::Fifo(d.lock().unwrap().clone()),
        }
    }
}

/// A FULL section as registered on the source.
#[derive(Debug, Clone)]
struct FullEntry {
    idstr: String,
    instance_id: u32,
    section_id: u32,
    version_id: u32,
    dev: Dev,
}

struct Built {
    reg: Registry,
    devs: Vec<Shared>,
    iters: Vec<Arc<Mutex<Vec<u8>>>>,
    /// Source: FULL entries in registry (stream) order.
    full: Vec<FullEntry>,
    /// Destination: FULL sections in the order the loader met them.
    log: Arc<Mutex<Vec<(String, u32)>>>,
}

fn slot_path(slot: Option<u8>) -> Option<String> {
    slot.map(|s| format!("0000:00:0{s}.0"))
}

fn register<T: VmState + Default + Send + 'static>(
    reg: &mut Registry,
    path: Option<&str>,
    value: T,
    dest: bool,
    log: &Arc<Mutex<Vec<(String, u32)>>>,
) -> (Arc<Mutex<T>>, u32) {
    let dev = Arc::new(Mutex::new(if dest { T::default() } else { value }));
    let id = if dest {
        let name = T::DESCRIPTION.name;
        let idstr = match path {
            Some(p) => format!("{p}/{name}"),
            None => name.to_string(),
        };
        let instance = reg
            .entries()
            .filter(|e| e.idstr == idstr)
            .map(|e| e.instance_id + 1)
            .max()
            .unwrap_or(0);
        reg.register_savevm_live(
            &idstr.clone(),
            InstanceId::Fixed(instance),
            T::DESCRIPTION.version_id,
            Box::new(ObservedDevice::new(dev.clone()).before_load({
                // Records the order the loader meets FULL sections.
                let (tag, log) = ((idstr.clone(), instance), log.clone());
                move || log.lock().unwrap().push(tag.clone())
            })),
        )
        .unwrap()
    } else {
        reg.vmstate_register_at(path, InstanceId::Any, dev.clone())
            .unwrap()
    };
    (dev, id)
}

fn build(spec: &Spec, dest: bool) -> Built {
    let mut reg = Registry::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut iters = Vec::new();
    for (i, it) in spec.iters.iter().enumerate() {
        let name = format!("iter{i}");
        let received = Arc::new(Mutex::new(Vec::new()));
        let h: Box<dyn SaveVmHandlers> = if dest {
            Box::new(PayloadSink::new(received.clone()))
        } else {
            Box::new(PayloadSource::new(it.payload.clone(), it.chunk))
        };
        reg.register_savevm_live(&name, 0, 1, h).unwrap();
        iters.push(received);
    }
    let mut devs = Vec::new();
    let mut by_section = Vec::new();
    for d in &spec.devs {
        let path = slot_path(d.slot);
        let path = path.as_deref();
        let (shared, id) = match &d.dev {
            Dev::Scalars(v) => {
                let (a, id) = register(&mut reg, path, v.clone(), dest, &log);
                (Shared::Scalars(a), id)
            }
            Dev::Regs(v) => {
                let (a, id) = register(&mut reg, path, v.clone(), dest, &log);
                (Shared::Regs(a), id)
            }
            Dev::Timer(v) => {
                let (a, id) = register(&mut reg, path, v.clone(), dest, &log);
                (Shared::Timer(a), id)
            }
            Dev::Fifo(v) => {
                let (a, id) = register(&mut reg, path, v.clone(), dest, &log);
                (Shared::Fifo(a), id)
            }
        };
        devs.push(shared);
        by_section.push((id, d.dev.clone()));
    }
    let full = reg
        .entries()
        .filter(|e| e.handlers.has_full_section())
        .map(|e| FullEntry {
            idstr: e.idstr.clone(),
            instance_id: e.instance_id,
            section_id: e.section_id,
            version_id: e.version_id,
            dev: by_section
                .iter()
                .find(|(id, _)| *id == e.section_id)
                .unwrap()
                .1
                .clone(),
        })
        .collect();
    Built {
        reg,
        devs,
        iters,
        full,
        log,
    }
}

/// Writes the whole precopy stream of a freshly built source.
fn write_stream(spec: &Spec) -> (Vec<u8>, Vec<FullEntry>) {
    let mut src = build(spec, false);
    let mut w = StreamWriter::new(Vec::new(), spec.version);
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new(MACHINE)).unwrap();
    w.setup(&mut src.reg).unwrap();
    let mut rounds = 0;
    while w.iterate(&mut src.reg, false, &mut |_| false).unwrap() == IterateStatus::Continue {
        rounds += 1;
        assert!(rounds < 10_000, "iteration does not end");
    }
    w.complete_precopy(&mut src.reg).unwrap();
    StreamWriter::<Vec<u8>>::cleanup(&mut src.reg);
    (w.into_inner().unwrap(), src.full)
}

fn load_into(spec: &Spec, bytes: &[u8], dst: &mut Built) -> Result<(Option<String>, usize)> {
    let mut loader = StreamLoader::new(
        LoadOptions::default()
            .with_version(spec.version)
            .with_configuration(Configuration::new(MACHINE)),
    );
    let mut r = Reader::new(BytesMut::from(bytes));
    let vmdesc = loader.load(&mut r, &mut dst.reg, &mut NoCommands)?;
    Ok((vmdesc, r.remaining()))
}

// ---------------------------------------------------------------------------
// Hand computations.

/// Body length of a device's FULL section.
fn body_len(dev: &Dev) -> usize {
    match dev {
        Dev::Scalars(_) => 1 + 2 + 4 + 8 + 1 + 2 + 4 + 8 + 1,
        Dev::Regs(_) => 16 + 4 * 4 + 2,
        Dev::Timer(t) => {
            let sub = if t.extra.z != 0 {
                // 0x05, len, "timerdev/extra", be32 version, z
                1 + 1 + "timerdev/extra".len() + 4 + 4
            } else {
                0
            };
            4 + 2 + 8 + sub
        }
        Dev::Fifo(f) => 4 + 2 * f.data.len(),
    }
}

fn field(name: &str, ty: &str, size: u64) -> Value {
    json!({"name": name, "type": ty, "size": size})
}

fn array(name: &str, ty: &str, len: usize, size: u64) -> Value {
    json!({"name": name, "array_len": len, "type": ty, "size": size})
}

/// The vmdesc object QEMU writes for a device, computed by hand (for the fixed
/// fields; the varray `fifo.data` is left out, see `vmdesc_varray_*`).
fn expected_device(e: &FullEntry) -> Value {
    let (vmsd_name, fields, subsections) = match &e.dev {
        Dev::Scalars(_) => (
            "scalars",
            vec![
                field("a", "uint8", 1),
                field("b", "uint16", 2),
                field("c", "uint32", 4),
                field("d", "uint64", 8),
                field("e", "int8", 1),
                field("f", "int16", 2),
                field("g", "int32", 4),
                field("h", "int64", 8),
                field("flag", "bool", 1),
            ],
            None,
        ),
        Dev::Regs(_) => (
            "regs",
            vec![
                array("bank", "uint8", 16, 1),
                array("words", "uint32", 4, 4),
                field("ctl", "uint16", 2),
            ],
            None,
        ),
        Dev::Timer(t) => (
            "timerdev",
            vec![
                field("count", "uint32", 4),
                json!({"name": "inner", "type": "struct", "struct": {
                    "vmsd_name": "timerdev/inner", "version": 1,
                    "fields": [field("x", "uint16", 2), field("y", "uint64", 8)]
                }, "size": 10}),
            ],
            (t.extra.z != 0).then(|| {
                json!([{"vmsd_name": "timerdev/extra", "version": 1,
                        "fields": [field("z", "uint32", 4)]}])
            }),
        ),
        Dev::Fifo(_) => ("fifo", vec![field("len", "uint32", 4)], None),
    };
    let mut v = json!({
        "name": e.idstr,
        "instance_id": e.instance_id,
        "vmsd_name": vmsd_name,
        "version": e.version_id,
        "fields": fields,
    });
    if let Some(s) = subsections {
        v["subsections"] = s;
    }
    v
}

fn full_header(e: &FullEntry) -> Vec<u8> {
    let mut h = vec![0x04];
    h.extend_from_slice(&e.section_id.to_be_bytes());
    h.push(e.idstr.len() as u8);
    h.extend_from_slice(e.idstr.as_bytes());
    h.extend_from_slice(&e.instance_id.to_be_bytes());
    h.extend_from_slice(&e.version_id.to_be_bytes());
    h
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Offset of the EOF byte: the stream ends with EOF, 0x06, be32 len, JSON.
fn eof_offset(bytes: &[u8], vmdesc: &str) -> usize {
    bytes.len() - vmdesc.len() - 5 - 1
}

// ---------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn stream_roundtrips_every_device_and_payload(spec in spec_strategy()) {
        let (bytes, _) = write_stream(&spec);
        let mut dst = build(&spec, true);
        let (vmdesc, left) = load_into(&spec, &bytes, &mut dst).unwrap();
        prop_assert!(vmdesc.is_some());
        prop_assert_eq!(left, 0, "nothing after the vmdesc trailer");
        for (want, got) in spec.devs.iter().zip(&dst.devs) {
            prop_assert_eq!(&want.dev, &got.get());
        }
        for (want, got) in spec.iters.iter().zip(&dst.iters) {
            prop_assert_eq!(&want.payload, &*got.lock().unwrap());
        }
    }

    #[test]
    fn writing_the_same_source_twice_gives_identical_bytes(spec in spec_strategy()) {
        let (a, _) = write_stream(&spec);
        let (b, _) = write_stream(&spec);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn vmdesc_lists_exactly_the_full_sections_in_stream_order(spec in spec_strategy()) {
        let (bytes, full) = write_stream(&spec);
        let mut dst = build(&spec, true);
        let vmdesc = load_into(&spec, &bytes, &mut dst).unwrap().0.unwrap();
        let json: Value = serde_json::from_str(&vmdesc).unwrap();
        prop_assert_eq!(&json["page_size"], &json!(4096));
        prop_assert_eq!(
            json.get("configuration").is_some(),
            spec.version == QemuVersion::V10,
            "only 10.x describes the configuration"
        );
        let devices = json["devices"].as_array().unwrap();
        prop_assert_eq!(devices.len(), spec.devs.len(), "one per device, none for iterative");
        prop_assert_eq!(full.len(), spec.devs.len());

        // The order the loader met the FULL sections in.
        let met = dst.log.lock().unwrap().clone();
        let listed: Vec<(String, u32)> = devices
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap().to_string(),
                    d["instance_id"].as_u64().unwrap() as u32,
                )
            })
            .collect();
        prop_assert_eq!(&listed, &met);

        // The order their headers sit in the bytes, each body as long as the hand
        // computation says and followed by its footer.
        let eof = eof_offset(&bytes, &vmdesc);
        prop_assert_eq!(bytes[eof], 0x00);
        let mut from = 0;
        for (e, d) in full.iter().zip(devices) {
            prop_assert_eq!((e.idstr.as_str(), e.instance_id), (
                d["name"].as_str().unwrap(),
                d["instance_id"].as_u64().unwrap() as u32,
            ));
            let h = full_header(e);
            let at = find(&bytes, &h, from).expect("FULL header in the stream");
            let end = at + h.len() + body_len(&e.dev);
            prop_assert_eq!(bytes[end], 0x7e, "footer after {} bytes of {}", body_len(&e.dev), e.idstr);
            prop_assert_eq!(&bytes[end + 1..end + 5], &e.section_id.to_be_bytes());
            from = end + 5;

            // Field by field, against the hand computation.
            let want = expected_device(e);
            if let Dev::Fifo(f) = &e.dev {
                let got = d["fields"].as_array().unwrap();
                prop_assert_eq!(&got[0], &want["fields"][0]);
                if f.data.is_empty() {
                    // QEMU describes nothing for an empty array.
                    prop_assert_eq!(got.len(), 1);
                    continue;
                }
                prop_assert_eq!(&got[1]["name"], &json!("data"));
                // Whatever the shape, the sizes add up to the body.
                let n = got[1].get("array_len").and_then(Value::as_u64).unwrap_or(1);
                prop_assert_eq!(got[1]["size"].as_u64().unwrap() * n, 2 * f.data.len() as u64);
                let mut d = d.clone();
                d["fields"] = json!([got[0].clone()]);
                prop_assert_eq!(&d, &want);
            } else {
                prop_assert_eq!(d, &want);
            }
        }
        // After the last FULL section: EOF.
        if !full.is_empty() {
            prop_assert_eq!(from, eof);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_byte_never_panics_and_errors_have_offsets(
        spec in spec_strategy(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let (mut bytes, _) = write_stream(&spec);
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        let mut dst = build(&spec, true);
        if let Err(e) = load_into(&spec, &bytes, &mut dst) {
            prop_assert!(e.offset().is_some(), "byte {} ^ {:#04x}: no offset in: {}", i, xor, e);
            prop_assert!(e.offset().unwrap() <= bytes.len() as u64);
        }
    }

    #[test]
    fn truncated_stream_never_panics_and_fails_with_an_offset(
        spec in spec_strategy(),
        at in any::<prop::sample::Index>(),
    ) {
        let (bytes, _) = write_stream(&spec);
        let cut = at.index(bytes.len());
        let mut dst = build(&spec, true);
        match load_into(&spec, &bytes[..cut], &mut dst) {
            Err(e) => {
                prop_assert!(e.offset().is_some(), "cut at {}: no offset in: {}", cut, e);
                prop_assert!(e.offset().unwrap() <= cut as u64, "cut at {}: {}", cut, e);
            }
            // Only a cut right after EOF (no vmdesc at all) is a whole stream.
            Ok((vmdesc, _)) => {
                prop_assert!(vmdesc.is_none());
                prop_assert_eq!(bytes[cut - 1], 0x00);
                prop_assert_eq!(bytes[cut], 0x06);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Deterministic checks.

#[test]
fn empty_registry_stream_is_header_configuration_eof_vmdesc() {
    let spec = Spec {
        version: QemuVersion::V7_2,
        iters: vec![],
        devs: vec![],
    };
    let (bytes, _) = write_stream(&spec);
    let mut want = b"QEVM\0\0\0\x03\x07\0\0\0\x0a".to_vec();
    want.extend_from_slice(MACHINE.as_bytes());
    want.push(0x00);
    let json = br#"{"page_size": 4096, "devices": []}"#;
    want.push(0x06);
    want.extend_from_slice(&(json.len() as u32).to_be_bytes());
    want.extend_from_slice(json);
    assert_eq!(bytes, want);
}

/// A handler error without an offset: the loader's module doc promises every
/// malformed input yields an error naming "the section, the offset and the
/// reason", but `section_start_full`/`section_part_end` (loader.rs) only add the
/// section, so an error raised by a handler's own check (`Error::invalid`) comes
/// out with no offset at all.
#[test]
fn handler_errors_get_an_offset_from_the_loader() {
    struct Picky;
    impl SaveVmHandlers for Picky {
        fn has_full_section(&self) -> bool {
            true
        }
        fn save_state(&mut self, w: &mut SectionWriter) -> Result<()> {
            w.write_u32(7)
        }
        fn load_state(&mut self, r: &mut SectionReader, _: u32) -> Result<()> {
            let v = r.read_u32()?;
            Err(Error::invalid(format!("picky: {v} is not a valid mode")))
        }
    }
    let mut reg = Registry::new();
    reg.register_savevm_live("picky", 0, 1, Box::new(Picky))
        .unwrap();
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.suppress_vmdesc();
    w.write_header().unwrap();
    w.full_sections(&mut reg).unwrap();
    w.write_eof().unwrap();
    let bytes = w.into_inner().unwrap();
    let mut loader = StreamLoader::new(LoadOptions::default().with_configuration(None));
    let mut r = Reader::new(BytesMut::from(&bytes[..]));
    let e = loader.load(&mut r, &mut reg, &mut NoCommands).unwrap_err();
    assert!(e.to_string().contains("section 'picky' instance 0"), "{e}");
    assert!(
        e.to_string().contains("picky: 7 is not a valid mode"),
        "{e}"
    );
    // The body starts after 8 (header) + 1 + 4 + 1 + 5 + 4 + 4 bytes.
    let body = 8 + 1 + 4 + 1 + 5 + 4 + 4;
    let off = e.offset().expect("error has an offset");
    assert!((body..=body + 4).contains(&(off as usize)), "{e}");
}

fn describe<T: VmState>(t: &T) -> Value {
    let mut rec = DescribeRecorder::new();
    let mut w = Writer::new(Vec::new());
    t.save_described(&mut w, &mut rec).unwrap();
    let len = w.get_ref().len() as u64;
    let s = vmstate_runtime::savevm::device_json("x", 0, rec.finish().as_ref(), len);
    serde_json::from_str(&s).unwrap()
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "one", version = 1)]
struct OneElement {
    only: [u32; 1],
}

/// QEMU `vmsd_desc_field_start`: `is_array = max > 1`, so a one-element array
/// is described like a scalar (no "array_len").
#[test]
fn vmdesc_one_element_array_has_no_array_len() {
    let d = describe(&OneElement { only: [5] });
    assert_eq!(d["fields"], json!([field("only", "uint32", 4)]));
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "pair", version = 1)]
struct Pair {
    ins: [Inner; 2],
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "el", version = 1)]
struct El {
    a: u8,
    #[vmstate(subsection(needed = El::sub_needed))]
    sub: ElSub,
}

impl El {
    fn sub_needed(&self) -> bool {
        self.a != 0
    }
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "el/sub", version = 1)]
struct ElSub {
    b: u8,
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "els", version = 1)]
struct Els {
    els: [El; 2],
}

/// QEMU describes an array of structs with the first element's layout under
/// "struct" (`vmsd_desc_field_start` opens it for VMS_STRUCT); and when the
/// struct has subsections (not "compressible") one object per element with
/// "index". analyze-migration.py reads `desc['struct']` for every struct field.
#[test]

fn vmdesc_struct_arrays_match_qemu() {
    let inner = json!({"vmsd_name": "timerdev/inner", "version": 1,
                       "fields": [field("x", "uint16", 2), field("y", "uint64", 8)]});
    let d = describe(&Pair::default());
    assert_eq!(
        d["fields"],
        json!([{"name": "ins", "array_len": 2, "type": "struct", "struct": inner, "size": 10}])
    );
    let d = describe(&Els {
        els: [
            El {
                a: 1,
                sub: ElSub { b: 2 },
            },
            El::default(),
        ],
    });
    let sub = 1 + 1 + "el/sub".len() as u64 + 4 + 1;
    assert_eq!(
        d["fields"],
        json!([
            {"name": "els", "index": 0, "type": "struct", "struct": {
                "vmsd_name": "el", "version": 1, "fields": [field("a", "uint8", 1)],
                "subsections": [{"vmsd_name": "el/sub", "version": 1, "fields": [field("b", "uint8", 1)]}]
            }, "size": 1 + sub},
            {"name": "els", "index": 1, "type": "struct", "struct": {
                "vmsd_name": "el", "version": 1, "fields": [field("a", "uint8", 1)]
            }, "size": 1},
        ])
    );
}

/// QEMU walks a VARRAY element by element like a fixed array: n > 1 gives one
/// object with "array_len": n and the element size, n == 1 a plain object, and
/// n == 0 no object at all.
#[test]

fn vmdesc_varray_is_described_like_an_array() {
    let d = describe(&Fifo {
        len: 3,
        data: vec![1, 2, 3],
    });
    assert_eq!(
        d["fields"],
        json!([field("len", "uint32", 4), array("data", "uint16", 3, 2)])
    );
    let d = describe(&Fifo {
        len: 1,
        data: vec![1],
    });
    assert_eq!(
        d["fields"],
        json!([field("len", "uint32", 4), field("data", "uint16", 2)])
    );
    let d = describe(&Fifo::default());
    assert_eq!(d["fields"], json!([field("len", "uint32", 4)]));
}
