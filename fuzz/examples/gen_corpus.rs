//! Writes the checked-in seed corpora, `fuzz/corpus/<target>/`: QEMU 7.2
//! fixtures shrunk to their keyboard-controller sections and a few RAM records,
//! and streams our own writer produces.
//!
//! ```text
//! cd fuzz && cargo +nightly run --example gen_corpus [FIXTURE_DIR [OUT_DIR]]
//! ```
//!
//! FIXTURE_DIR defaults to `../vmstate-devices/tests/fixtures/qemu-7.2`, OUT_DIR
//! to `corpus`. The output is deterministic; rerun it when a format changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use vmstate_devices::machine::{Machine, MACHINE_TYPE, RAM_BLOCK};
use vmstate_devices::pckbd::{KeyCode, Ps2Keyboard, Ps2Mouse, I8042};
use vmstate_devices::ram::protocol::{
    MemSizeOptions, RamDecoder, RecordHeader, X86_TARGET_PAGE_SIZE,
};
use vmstate_devices::ram::{RamBlockList, RamSection};
use vmstate_fuzz::all_attrs::{AllAttrs, Always, Entry, Extra, Kind};
use vmstate_runtime::migration::read_return_path;
use vmstate_runtime::savevm::format::RECV_BITMAP_ENDING;
use vmstate_runtime::savevm::{
    Command, Configuration, IterateStatus, LoadOptions, NoCommands, QemuVersion, Registry,
    RpMessage, StreamLoader, StreamWriter,
};
use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{to_bytes, VmState};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The QEMU fixtures: (file, whether its RAM list has the virtio-net ROM).
const FIXTURES: [(&str, bool); 4] = [
    ("pc-default.mig", false),
    ("pc-i8042.mig", false),
    ("pc-virtio-blk.mig", false),
    ("pc-virtio-net.mig", true),
];

/// RAM_SAVE_FLAG_CONTINUE.
const CONTINUE: u64 = 0x20;

struct Out(PathBuf);

impl Out {
    /// Writes seed `name` of `target`, unless the same bytes are there already.
    fn put(&self, target: &str, name: &str, bytes: &[u8]) -> Res<()> {
        let dir = self.0.join(target);
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            if std::fs::read(entry?.path())? == bytes {
                return Ok(());
            }
        }
        std::fs::write(dir.join(name), bytes)?;
        Ok(())
    }
}

/// Offset of the body of the FULL section `idstr` (instance 0, `version`).
fn full_body_at(stream: &[u8], idstr: &str, version: u32) -> Option<usize> {
    let mut pat = vec![idstr.len() as u8];
    pat.extend_from_slice(idstr.as_bytes());
    pat.extend_from_slice(&0u32.to_be_bytes());
    pat.extend_from_slice(&version.to_be_bytes());
    (5..stream.len().saturating_sub(pat.len()))
        .find(|&i| stream[i - 5] == 0x04 && stream[i..].starts_with(&pat))
        .map(|i| i + pat.len())
}

/// The body of FULL section `T` in a QEMU stream, delimited by loading it.
fn qemu_body<T: VmState + Default>(stream: &[u8]) -> Res<(T, Vec<u8>)> {
    let d = T::DESCRIPTION;
    let at = full_body_at(stream, d.name, d.version_id).ok_or("section not found")?;
    let mut value = T::default();
    let mut r = Reader::new(&stream[at..]);
    value.load(&mut r, d.version_id)?;
    let len = r.position() as usize;
    Ok((value, stream[at..at + len].to_vec()))
}

/// A QEMU stream's "ram" START body (MEM_SIZE list, EOS) and the first records
/// of its first PART, up to `pages` raw pages, then an EOS.
fn qemu_ram_records(stream: &[u8], virtio_rom: bool, pages: usize) -> Res<Vec<u8>> {
    let pat = b"\x03ram\x00\x00\x00\x00\x00\x00\x00\x04";
    let hdr = (5..stream.len())
        .find(|&i| stream[i - 5] == 0x01 && stream[i..].starts_with(pat))
        .ok_or("no ram START")?;
    let id = &stream[hdr - 4..hdr];
    let table = RamBlockList::qemu_pc(32 << 20, virtio_rom)?.specs();
    let mut dec = RamDecoder::new(X86_TARGET_PAGE_SIZE, MemSizeOptions::default());
    let start = hdr + pat.len();
    let mut r = Reader::new(&stream[start..]);
    while dec.next_header(&mut r, &table)? != RecordHeader::Eos {}
    let mut out = stream[start..start + r.position() as usize].to_vec();
    let mut part_hdr = vec![0x02];
    part_hdr.extend_from_slice(id);
    let part = (start..stream.len())
        .find(|&i| stream[i..].starts_with(&part_hdr))
        .ok_or("no ram PART")?
        + part_hdr.len();
    // The first few records, then (skipping runs of CONTINUE zero pages) each
    // record that names its block and the first raw pages.
    let mut r = Reader::new(&stream[part..]);
    let (mut seen_pages, mut records) = (0, 0);
    while seen_pages < pages {
        let at = r.position() as usize;
        let word = u64::from_be_bytes(stream[part + at..part + at + 8].try_into()?);
        let header = dec.next_header(&mut r, &table)?;
        let keep = match header {
            RecordHeader::Page { .. } => {
                let mut page = vec![0; X86_TARGET_PAGE_SIZE as usize];
                r.read_bytes(&mut page)?;
                seen_pages += 1;
                true
            }
            RecordHeader::Eos => break,
            _ => records < 8 || word & CONTINUE == 0,
        };
        if keep {
            out.extend_from_slice(&stream[part + at..part + r.position() as usize]);
        }
        records += 1;
    }
    out.extend_from_slice(&0x10u64.to_be_bytes()); // EOS
    Ok(out)
}

/// How a machine stream is written.
#[derive(Clone, Copy)]
struct StreamKind {
    /// OPEN_RETURN_PATH and PING before the sections (the socket driver answers).
    commands: bool,
    /// No vmdesc after EOF.
    suppress_vmdesc: bool,
}

/// A precopy stream of `m` as the demo's source writes it (with its
/// configuration record).
fn machine_stream(m: &Machine, kind: StreamKind) -> Res<Vec<u8>> {
    let mut reg = m.registry_with_part_budget(4 * X86_TARGET_PAGE_SIZE)?;
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    if kind.suppress_vmdesc {
        w.suppress_vmdesc();
    }
    w.write_header()?;
    w.write_configuration(&Configuration::new(MACHINE_TYPE))?;
    if kind.commands {
        w.write_command(&Command::OpenReturnPath)?;
        w.write_command(&Command::Ping(1))?;
    }
    write_precopy(&mut w, &mut reg)?;
    Ok(w.into_inner()?)
}

fn write_precopy(w: &mut StreamWriter<Vec<u8>>, reg: &mut Registry) -> Res<()> {
    w.setup(reg)?;
    while w.iterate(reg, false, &mut |_| false)? != IterateStatus::Done {}
    w.complete_precopy(reg)?;
    Ok(())
}

/// The machine streams: fresh, booted, and with the i8042 state of each QEMU
/// fixture.
fn machine_streams(qemu_i8042: &[(String, I8042)]) -> Res<Vec<(String, Vec<u8>)>> {
    let plain = StreamKind {
        commands: false,
        suppress_vmdesc: false,
    };
    let mut out = Vec::new();
    let fresh = Machine::new(vmstate_fuzz::MACHINE_PAGES)?;
    out.push(("ours-fresh".to_string(), machine_stream(&fresh, plain)?));
    let booted = Machine::new(vmstate_fuzz::MACHINE_PAGES)?;
    booted.boot(50, 7)?;
    booted.i8042.lock().unwrap().key_event(KeyCode::A, true);
    out.push(("ours-booted".to_string(), machine_stream(&booted, plain)?));
    let cmds = StreamKind {
        commands: true,
        suppress_vmdesc: true,
    };
    out.push(("ours-commands".to_string(), machine_stream(&booted, cmds)?));
    for (name, dev) in qemu_i8042 {
        let m = Machine::new(vmstate_fuzz::MACHINE_PAGES)?;
        m.boot(25, 3)?;
        *m.i8042.lock().unwrap() = clone_i8042(dev)?;
        out.push((format!("qemu-i8042-{name}"), machine_stream(&m, plain)?));
    }
    Ok(out)
}

/// A copy of a controller, through its own wire format.
fn clone_i8042(dev: &I8042) -> Res<I8042> {
    let mut copy = I8042::default();
    let kbd = to_bytes(dev.keyboard())?;
    let mouse = to_bytes(dev.mouse())?;
    let ctl = to_bytes(dev)?;
    copy.keyboard_mut().load(&mut Reader::new(&kbd[..]), 3)?;
    copy.mouse_mut().load(&mut Reader::new(&mouse[..]), 2)?;
    copy.load(&mut Reader::new(&ctl[..]), 3)?;
    Ok(copy)
}

/// Streams of the "ram" section alone over the small block list.
fn ram_section_streams() -> Res<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for (name, fill) in [("zero", false), ("data", true)] {
        let ram = Arc::new(Mutex::new(RamBlockList::new(vmstate_fuzz::small_blocks())?));
        if fill {
            let list = ram.lock().unwrap();
            for (i, block) in list.blocks().iter().enumerate() {
                block.write(0, format!("block {i}").as_bytes())?;
            }
            list.get(RAM_BLOCK)
                .ok_or("pc.ram")?
                .write(5 * X86_TARGET_PAGE_SIZE, &[0xa5; 64])?;
        }
        let mut reg = Registry::new();
        RamSection::new(ram).register(&mut reg)?;
        let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
        w.write_header()?;
        write_precopy(&mut w, &mut reg)?;
        out.push((format!("ours-{name}"), w.into_inner()?));
    }
    Ok(out)
}

/// A populated [`AllAttrs`] body.
fn all_attrs_bodies() -> Res<Vec<(String, Vec<u8>)>> {
    let full = AllAttrs {
        id: 3,
        v2_reg: 0x1234_5678,
        extra_word: 0xbeef,
        mode: 2,
        level: 99,
        nr_items: 3,
        items: vec![1, 2, 3],
        buf_len: 5,
        buf: b"hello".to_vec(),
        raw: [1, 2, 3, 4],
        nbits: 70,
        bits: vec![u64::MAX, 0x3f],
        timer: Some(1_000_000),
        entries: vec![Entry { tag: 1, len: 2 }, Entry { tag: 3, len: 4 }],
        kind: Kind::Busy,
        head: 10,
        tail: 14,
        extra: Extra { value: 42 },
        always: Always { flag: true },
        ..AllAttrs::default()
    };
    Ok(vec![
        ("default".into(), to_bytes(&AllAttrs::default())?),
        ("full".into(), to_bytes(&full)?),
    ])
}

/// Return-path conversations (without the version byte).
fn return_paths() -> Res<Vec<(String, Vec<u8>)>> {
    let frames = |msgs: &[RpMessage], tail: &[u8]| -> Res<Vec<u8>> {
        let mut w = Writer::new(Vec::new());
        for m in msgs {
            m.write(&mut w)?;
        }
        let mut b = w.into_inner();
        b.extend_from_slice(tail);
        Ok(b)
    };
    let shut = RpMessage::Shut { error: false };
    let req = |block: Option<&str>, start| RpMessage::ReqPages {
        block: block.map(str::to_string),
        start,
        len: 4096,
    };
    let mut bitmap_tail = 16u64.to_be_bytes().to_vec();
    bitmap_tail.extend_from_slice(&[0xff; 16]);
    bitmap_tail.extend_from_slice(&RECV_BITMAP_ENDING.to_be_bytes());
    let mut bitmap = frames(&[RpMessage::RecvBitmap("pc.ram".into())], &bitmap_tail)?;
    bitmap.extend(frames(&[RpMessage::ResumeAck(1), shut.clone()], &[])?);
    Ok(vec![
        (
            "precopy".into(),
            frames(
                &[RpMessage::Pong(1), RpMessage::SwitchoverAck, shut.clone()],
                &[],
            )?,
        ),
        (
            "postcopy".into(),
            frames(
                &[
                    req(Some("pc.ram"), 0),
                    req(None, 0x2000),
                    req(Some("pc.bios"), 0),
                    RpMessage::Shut { error: true },
                ],
                &[],
            )?,
        ),
        ("recovery".into(), bitmap),
    ])
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let fixtures = PathBuf::from(
        args.get(1)
            .map_or("../vmstate-devices/tests/fixtures/qemu-7.2", String::as_str),
    );
    let out = Out(PathBuf::from(args.get(2).map_or("corpus", String::as_str)));
    let stem = |f: &str| {
        Path::new(f)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };

    let mut qemu_i8042 = Vec::new();
    for (file, virtio_rom) in FIXTURES {
        let stream = std::fs::read(fixtures.join(file))?;
        let name = stem(file);
        let (kbd, kbd_body) = qemu_body::<Ps2Keyboard>(&stream)?;
        let (mouse, mouse_body) = qemu_body::<Ps2Mouse>(&stream)?;
        let (_, ctl_body) = qemu_body::<I8042>(&stream)?;
        if file != "pc-default.mig" && file != "pc-i8042.mig" {
            // Same i8042 bytes as pc-i8042: only their RAM records are new.
            let ram = qemu_ram_records(&stream, virtio_rom, 3)?;
            out.put(
                "ram_decoder",
                &format!("qemu-{name}"),
                &[&[u8::from(virtio_rom)], &ram[..]].concat(),
            )?;
            continue;
        }
        for (sel, body, dev) in [
            (0u8, &kbd_body, "ps2kbd"),
            (1, &mouse_body, "ps2mouse"),
            (2, &ctl_body, "pckbd"),
        ] {
            out.put(
                "device_body",
                &format!("qemu-{name}-{dev}"),
                &[&[sel], &body[..]].concat(),
            )?;
        }
        let mut dev = I8042::default();
        *dev.keyboard_mut() = kbd;
        *dev.mouse_mut() = mouse;
        dev.load(&mut Reader::new(&ctl_body[..]), 3)?;
        // The fixtures after pc-i8042 share its i8042 state: one stream of each.
        if qemu_i8042
            .iter()
            .all(|(_, d)| to_bytes(d).ok() != to_bytes(&dev).ok())
        {
            qemu_i8042.push((name.clone(), dev));
        }
        let ram = qemu_ram_records(&stream, virtio_rom, 3)?;
        out.put(
            "ram_decoder",
            &format!("qemu-{name}"),
            &[&[u8::from(virtio_rom)], &ram[..]].concat(),
        )?;
    }

    for (name, stream) in machine_streams(&qemu_i8042)? {
        // A seed that does not load gets the fuzzer no deeper than its error.
        let (_m, mut reg) = vmstate_fuzz::machine();
        StreamLoader::new(vmstate_fuzz::load_options())
            .load(
                &mut Reader::new(BytesMut::from(&stream[..])),
                &mut reg,
                &mut NoCommands,
            )
            .or_else(|e| {
                if name == "ours-commands" {
                    Ok(None)
                } else {
                    Err(e)
                }
            })
            .map_err(|e| format!("seed {name} does not load: {e}"))?;
        for target in ["stream_memory", "stream_socket", "analyze"] {
            out.put(target, &name, &stream)?;
        }
    }
    let booted = Machine::new(vmstate_fuzz::MACHINE_PAGES)?;
    booted.boot(100, 9)?;
    let dev = booted.i8042.lock().unwrap();
    for (sel, body) in [
        (0u8, to_bytes(dev.keyboard())?),
        (1, to_bytes(dev.mouse())?),
        (2, to_bytes(&*dev)?),
    ] {
        let name = vmstate_fuzz::DEVICES[usize::from(sel)];
        out.put(
            "device_body",
            &format!("ours-booted-{name}"),
            &[&[sel], &body[..]].concat(),
        )?;
    }
    for (name, body) in all_attrs_bodies()? {
        out.put("derive_all_attrs", &name, &[&[0u8], &body[..]].concat())?;
    }
    for (name, stream) in ram_section_streams()? {
        let mut reg = vmstate_fuzz::ram_registry();
        StreamLoader::new(LoadOptions::default().with_configuration(None))
            .load(
                &mut Reader::new(BytesMut::from(&stream[..])),
                &mut reg,
                &mut NoCommands,
            )
            .map_err(|e| format!("ram seed {name} does not load: {e}"))?;
        out.put("ram_section", &name, &stream)?;
    }
    for (name, rp) in return_paths()? {
        for (sel, v) in [(0u8, "7.2"), (1, "10")] {
            let version = if sel == 0 {
                QemuVersion::V7_2
            } else {
                QemuVersion::V10
            };
            if name != "precopy" || sel == 1 {
                // SWITCHOVER_ACK is a 10.x message: 7.2 refuses it.
                read_return_path(&mut &rp[..], version, true, Some("pc.ram"))
                    .map_err(|e| format!("rp {name}-{v}: {e}"))?;
            }
            out.put(
                "return_path",
                &format!("{name}-{v}"),
                &[&[sel], &rp[..]].concat(),
            )?;
        }
    }
    xbzrle_seeds(&out)?;
    virtio_seeds(&out, &fixtures)
}

/// virtio seeds: QEMU's virtio-blk and virtio-net bodies (re-saved by our
/// models, which write QEMU's bytes), and a fresh virtio-rng body.
fn virtio_seeds(out: &Out, fixtures: &std::path::Path) -> Res<()> {
    for (sel, file) in [(0u8, "pc-virtio-blk.mig"), (1, "pc-virtio-net.mig")] {
        let (kind, version) = vmstate_fuzz::virtio_kind(sel);
        let stream = std::fs::read(fixtures.join(file))?;
        let at = full_body_at(&stream, &format!("0000:00:02.0/{kind}"), version)
            .ok_or_else(|| format!("{file}: no {kind} section"))?;
        let body = vmstate_fuzz::virtio_load_save(kind, &stream[at..])
            .ok_or_else(|| format!("{file}: {kind} body does not load"))?;
        if !stream[at..].starts_with(&body) {
            return Err(format!("{file}: {kind} does not save QEMU's bytes").into());
        }
        out.put(
            "virtio_body",
            &format!("qemu-{kind}"),
            &[&[sel], &body[..]].concat(),
        )?;
    }
    let rng = vmstate_fuzz::virtio_fresh_rng();
    out.put(
        "virtio_body",
        "fresh-virtio-rng",
        &[&[2u8], &rng[..]].concat(),
    )
}

/// XBZRLE seeds: deltas our encoder writes (decode mode, byte 0 = 0) and
/// old/new page pairs (round-trip mode, byte 0 = 1).
fn xbzrle_seeds(out: &Out) -> Res<()> {
    use vmstate_devices::ram::xbzrle::{encode, Encoded};
    let old: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
    let edits: [(&str, &[(usize, u8)]); 3] = [
        ("one-byte", &[(100, 0xee)]),
        ("scattered", &[(0, 1), (2000, 2), (4095, 3)]),
        ("dense", &[(10, 9), (11, 9), (12, 9), (300, 7), (301, 7)]),
    ];
    for (name, edit) in edits {
        let mut new = old.clone();
        for &(at, b) in edit {
            new[at] = b;
        }
        let mut enc = vec![0u8; 4096];
        let Encoded::Delta(len) = encode(&old, &new, &mut enc) else {
            return Err(format!("xbzrle seed {name}: no delta").into());
        };
        out.put(
            "xbzrle",
            &format!("delta-{name}"),
            &[&[0u8], &enc[..len]].concat(),
        )?;
        // Round trip: old and new, each a half of the input (zero-padded).
        out.put(
            "xbzrle",
            &format!("pair-{name}"),
            &[&[1u8][..], &old[..64], &new[..64]].concat(),
        )?;
    }
    Ok(())
}
