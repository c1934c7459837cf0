//! The savevm stream end to end in memory: a registry of devices and an iterative
//! handler written by `StreamWriter` and read back by `StreamLoader`, exact bytes
//! of the framing, and the malformed-stream cases of qemu-wire.md §9.

use std::sync::{Arc, Mutex};

use bytes::BytesMut;

mod common;
use common::ram::{SharedMemory, SyntheticRam};
use vmstate_runtime::savevm::{
    Command, CommandHandler, Configuration, InstanceId, IterateStatus, LoadFlow, LoadOptions,
    NoCommands, QemuVersion, Registry, StreamLoader, StreamWriter,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{Error, ErrorKind, Result, VmState};

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "uart", version = 2, minimum_version = 1)]
struct Uart {
    lcr: u8,
    divisor: u16,
    #[vmstate(since = 2)]
    scratch: u8,
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "rtc", version = 1)]
struct Rtc {
    regs: [u8; 4],
}

/// Pages of this test's RAM-like iterative section.
const PAGE: usize = 4;

/// A RAM-like iterative source of `n` 4-byte pages, `per_round` pages a PART.
fn pages_source(n: usize, per_round: usize) -> SyntheticRam {
    SyntheticRam::new(SharedMemory::new(n, PAGE, |i| vec![i as u8, 1, 2, 3])).burst(per_round)
}

struct Source {
    reg: Registry,
}

fn source() -> Source {
    let mut reg = Registry::new();
    reg.register_savevm_live("pages", 0, 1, Box::new(pages_source(10, 3)))
        .unwrap();
    reg.vmstate_register(
        InstanceId::Any,
        Arc::new(Mutex::new(Uart {
            lcr: 3,
            divisor: 12,
            scratch: 0x5a,
        })),
    )
    .unwrap();
    reg.vmstate_register(0, Arc::new(Mutex::new(Rtc { regs: [9, 8, 7, 6] })))
        .unwrap();
    Source { reg }
}

fn write_precopy(version: QemuVersion, vmdesc: bool) -> Vec<u8> {
    let mut src = source();
    let mut w = StreamWriter::new(Vec::new(), version);
    if !vmdesc {
        w.suppress_vmdesc();
    }
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new("pc-i440fx-7.2"))
        .unwrap();
    w.setup(&mut src.reg).unwrap();
    let mut rounds = 0;
    while w.iterate(&mut src.reg, false, &mut |_| false).unwrap() == IterateStatus::Continue {
        rounds += 1;
        assert!(rounds < 100);
    }
    assert_eq!(
        StreamWriter::<Vec<u8>>::pending(&mut src.reg, false).total(),
        0
    );
    w.complete_precopy(&mut src.reg).unwrap();
    StreamWriter::<Vec<u8>>::cleanup(&mut src.reg);
    w.into_inner().unwrap()
}

struct Destination {
    reg: Registry,
    uart: Arc<Mutex<Uart>>,
    rtc: Arc<Mutex<Rtc>>,
    pages: SharedMemory,
}

fn destination() -> Destination {
    let mut reg = Registry::new();
    let pages = SharedMemory::zeroed(10, PAGE);
    reg.register_savevm_live("pages", 0, 1, Box::new(SyntheticRam::new(pages.clone())))
        .unwrap();
    let uart = Arc::new(Mutex::new(Uart::default()));
    let rtc = Arc::new(Mutex::new(Rtc::default()));
    reg.vmstate_register(InstanceId::Any, uart.clone()).unwrap();
    reg.vmstate_register(0, rtc.clone()).unwrap();
    Destination {
        reg,
        uart,
        rtc,
        pages,
    }
}

fn load(bytes: &[u8], dst: &mut Destination) -> Result<Option<String>> {
    let mut loader = StreamLoader::new(
        LoadOptions::default().with_configuration(Configuration::new("pc-i440fx-7.2")),
    );
    let mut r = Reader::new(BytesMut::from(bytes));
    let out = loader.load(&mut r, &mut dst.reg, &mut NoCommands)?;
    if r.remaining() != 0 {
        return Err(Error::invalid(format!(
            "{} bytes after the stream",
            r.remaining()
        )));
    }
    Ok(out)
}

#[test]
fn precopy_stream_roundtrips_every_section() {
    let bytes = write_precopy(QemuVersion::V7_2, true);
    let mut dst = destination();
    let vmdesc = load(&bytes, &mut dst).unwrap().expect("vmdesc trailer");
    assert_eq!(
        *dst.uart.lock().unwrap(),
        Uart {
            lcr: 3,
            divisor: 12,
            scratch: 0x5a
        }
    );
    assert_eq!(dst.rtc.lock().unwrap().regs, [9, 8, 7, 6]);
    let pages = dst.pages.lock();
    for (i, p) in pages.pages.iter().enumerate() {
        assert_eq!(*p, [i as u8, 1, 2, 3]);
    }
    let json: serde_json::Value = serde_json::from_str(&vmdesc).unwrap();
    assert_eq!(json["page_size"], 4096);
    let devices = json["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "only FULL sections are described");
    assert_eq!(devices[0]["name"], "uart");
    assert_eq!(devices[0]["vmsd_name"], "uart");
    assert_eq!(devices[0]["version"], 2);
}

#[test]
fn framing_bytes_are_qemus() {
    let bytes = write_precopy(QemuVersion::V7_2, false);
    let mut expected = vec![0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3, 0x07, 0, 0, 0, 13];
    expected.extend_from_slice(b"pc-i440fx-7.2");
    // START, section id 1 (an iterative section never gets id 0: QEMU would take
    // its PARTs for its first device), "pages", instance 0, version 1, body, footer.
    expected.extend_from_slice(&[0x01, 0, 0, 0, 1, 5]);
    expected.extend_from_slice(b"pages");
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 10, 0x7e, 0, 0, 0, 1]);
    assert_eq!(&bytes[..expected.len()], &expected[..]);
    // Next: PART (0x02) with section id 1.
    assert_eq!(
        &bytes[expected.len()..expected.len() + 5],
        &[0x02, 0, 0, 0, 1]
    );
    // The end: FULL uart (id 2), FULL rtc (id 3), EOF, no vmdesc.
    let mut tail = vec![0x04, 0, 0, 0, 2, 4];
    tail.extend_from_slice(b"uart");
    tail.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, 3, 0, 12, 0x5a, 0x7e, 0, 0, 0, 2]);
    tail.extend_from_slice(&[0x04, 0, 0, 0, 3, 3]);
    tail.extend_from_slice(b"rtc");
    tail.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 9, 8, 7, 6, 0x7e, 0, 0, 0, 3, 0x00]);
    assert_eq!(&bytes[bytes.len() - tail.len()..], &tail[..]);
}

#[test]
fn qemu_7_2_iteration_takes_turns_and_10_calls_everyone() {
    // Two iterative handlers: 7.2 stops a round at the first unfinished one.
    for (version, expected_parts_in_round1) in [(QemuVersion::V7_2, 1), (QemuVersion::V10, 2)] {
        let mut reg = Registry::new();
        reg.register_savevm_live("a", 0, 1, Box::new(pages_source(4, 1)))
            .unwrap();
        reg.register_savevm_live("b", 0, 1, Box::new(pages_source(4, 1)))
            .unwrap();
        let mut w = StreamWriter::new(Vec::new(), version);
        w.suppress_vmdesc();
        w.setup(&mut reg).unwrap();
        let before = w.buffered();
        w.iterate(&mut reg, false, &mut |_| false).unwrap();
        let round = w.into_inner().unwrap()[before..].to_vec();
        let parts = round.iter().filter(|b| **b == 0x7e).count();
        assert_eq!(parts, expected_parts_in_round1, "{version:?}");
    }
}

#[test]
fn switchover_start_only_in_10() {
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    assert!(w.write_command(&Command::SwitchoverStart).is_err());
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V10);
    w.write_command(&Command::SwitchoverStart).unwrap();
    assert_eq!(w.into_inner().unwrap(), [0x08, 0, 11, 0, 0]);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = write_precopy(QemuVersion::V7_2, false);
    for cut in 0..bytes.len() {
        let mut dst = destination();
        let e = load(&bytes[..cut], &mut dst).unwrap_err();
        assert!(e.offset().is_some(), "cut {cut}: {e}");
    }
}

fn expect_err(bytes: &[u8], needle: &str) -> Error {
    let mut dst = destination();
    let e = load(bytes, &mut dst).unwrap_err();
    assert!(
        e.to_string().contains(needle),
        "expected '{needle}' in: {e}"
    );
    e
}

/// Offset of the first FULL section record in a stream without vmdesc.
fn first_full(bytes: &[u8]) -> usize {
    let needle = b"\x04\x00\x00\x00\x02\x04uart";
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn malformed_streams_fail_with_clear_errors() {
    let good = write_precopy(QemuVersion::V7_2, false);

    let mut b = good.clone();
    b[0] = 0;
    expect_err(&b, "not a migration stream");
    let mut b = good.clone();
    b[7] = 2;
    expect_err(&b, "obsolete");
    let mut b = good.clone();
    b[7] = 4;
    expect_err(&b, "unsupported stream version 4");
    let mut b = good.clone();
    b[8] = 0x01;
    expect_err(&b, "configuration record missing");
    let mut b = good.clone();
    b[13] = b'q';
    expect_err(&b, "machine type mismatch");

    let full = first_full(&good);
    for ty in [0x05u8, 0x06, 0x09, 0x7d, 0x7f, 0xff] {
        let mut b = good.clone();
        b[full] = ty;
        expect_err(&b, "unknown savevm section type");
    }
    // Zero-length idstr.
    let mut b = good[..full + 5].to_vec();
    b.push(0);
    b.extend_from_slice(&good[full + 10..]);
    expect_err(&b, "unable to read ID string");
    // Unknown idstr, wrong instance, version too new.
    let mut b = good.clone();
    b[full + 6] = b'x';
    expect_err(&b, "unknown savevm section or instance 'xart' 0");
    let mut b = good.clone();
    b[full + 13] = 1;
    expect_err(&b, "unknown savevm section or instance 'uart' 1");
    let mut b = good.clone();
    b[full + 17] = 3;
    let e = expect_err(&b, "too new");
    assert!(matches!(
        e.kind(),
        ErrorKind::VersionTooNew { version: 3, max: 2 }
    ));
    assert_eq!(e.section(), Some("section 'uart' instance 0 (id 2)"));
    // Version below the minimum reaches the device's own check.
    let mut b = good.clone();
    b[full + 17] = 0;
    expect_err(&b, "too old");
    // Footer: missing marker, wrong id.
    let footer = full + 18 + 4;
    assert_eq!(good[footer], 0x7e);
    let mut b = good.clone();
    b[footer] = 0x7f;
    expect_err(&b, "missing section footer");
    let mut b = good.clone();
    b[footer + 4] = 9;
    expect_err(&b, "mismatched section id in footer");
    // PART for a section never started.
    let part = good.iter().position(|&x| x == 0x02).unwrap();
    let mut b = good.clone();
    b[part + 4] = 7;
    expect_err(&b, "unknown section id 7");
    // Commands where none are expected / malformed.
    let mut b = good[..full].to_vec();
    b.extend_from_slice(&[0x08, 0, 2, 0, 4, 0, 0, 0, 1]);
    b.extend_from_slice(&good[full..]);
    expect_err(&b, "PING not expected");
    let mut b = good[..full].to_vec();
    b.extend_from_slice(&[0x08, 0, 0, 0, 0]);
    b.extend_from_slice(&good[full..]);
    expect_err(&b, "unknown command 0x0");
    let mut b = good[..full].to_vec();
    b.extend_from_slice(&[0x08, 0, 7, 0, 4, 0xff, 0xff, 0xff, 0xff]);
    expect_err(&b, "exceeds the limit");
    let mut b = good[..full].to_vec();
    b.extend_from_slice(&[0x08, 0, 7, 0, 4, 0, 0, 0, 100, 1, 2]);
    let e = expect_err(&b, "stream ended");
    assert!(matches!(e.kind(), ErrorKind::Truncated { .. }));
}

/// Records commands and quits on POSTCOPY_RUN.
#[derive(Default)]
struct Recorder(Vec<Command>);

impl CommandHandler for Recorder {
    fn command(&mut self, cmd: Command, _reg: &mut Registry) -> Result<LoadFlow> {
        let quit = cmd == Command::PostcopyRun;
        self.0.push(cmd);
        Ok(if quit {
            LoadFlow::Quit
        } else {
            LoadFlow::Continue
        })
    }
}

#[test]
fn packaged_stream_loads_devices_and_quits_on_run() {
    let mut src = source();
    // The package: LISTEN, FULL sections, PING(3), RUN.
    let mut pkg = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    pkg.suppress_vmdesc();
    pkg.write_command(&Command::PostcopyListen).unwrap();
    pkg.full_sections(&mut src.reg).unwrap();
    pkg.write_command(&Command::Ping(3)).unwrap();
    pkg.write_command(&Command::PostcopyRun).unwrap();
    let pkg = pkg.into_inner().unwrap();

    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.suppress_vmdesc();
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new("pc-i440fx-7.2"))
        .unwrap();
    w.write_command(&Command::OpenReturnPath).unwrap();
    w.write_command(&Command::Ping(1)).unwrap();
    w.write_packaged(&pkg).unwrap();
    w.write_command(&Command::Ping(4)).unwrap();
    let bytes = w.into_inner().unwrap();

    let mut dst = destination();
    let mut loader = StreamLoader::new(
        LoadOptions::default().with_configuration(Configuration::new("pc-i440fx-7.2")),
    );
    let mut r = Reader::new(BytesMut::from(&bytes[..]));
    loader.load_header(&mut r).unwrap();
    let mut rec = Recorder::default();
    let end = loader.load_main(&mut r, &mut dst.reg, &mut rec).unwrap();
    assert_eq!(end, vmstate_runtime::savevm::LoadEnd::Quit);
    assert_eq!(
        rec.0,
        [
            Command::OpenReturnPath,
            Command::Ping(1),
            Command::PostcopyListen,
            Command::Ping(3),
            Command::PostcopyRun
        ]
    );
    assert_eq!(dst.uart.lock().unwrap().divisor, 12);
    // The main stream continues after the package.
    assert_eq!(r.remaining(), 9);

    // A package inside a package is refused.
    let mut nested = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    nested.write_packaged(&[0x00]).unwrap();
    let nested = nested.into_inner().unwrap();
    let mut outer = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    outer.write_packaged(&nested).unwrap();
    let outer = outer.into_inner().unwrap();
    let mut r = Reader::new(BytesMut::from(&outer[..]));
    let e = StreamLoader::new(LoadOptions::default())
        .load_main(&mut r, &mut destination().reg, &mut Recorder::default())
        .unwrap_err();
    assert!(e.to_string().contains("nested package"), "{e}");
}

/// Pages handed over as shared `Bytes` (no copy into the stream buffer) produce
/// exactly the bytes of the copying path, through a real vectored socket write.
#[test]
fn shared_page_segments_equal_copied_pages_on_the_wire() {
    use std::io::Read;
    let write = |shared: bool| {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut b = b;
            b.read_to_end(&mut all).unwrap();
            all
        });
        let mut reg = Registry::new();
        reg.register_savevm_live(
            "pages",
            0,
            1,
            Box::new(
                SyntheticRam::new(SharedMemory::new(64, 4096, |i| vec![i as u8; 4096]))
                    .share_pages(shared),
            ),
        )
        .unwrap();
        let mut w = StreamWriter::new(&mut a, QemuVersion::V7_2);
        w.suppress_vmdesc();
        w.write_header().unwrap();
        w.setup(&mut reg).unwrap();
        w.iterate(&mut reg, false, &mut |_| false).unwrap();
        let pos = w.position();
        w.complete_precopy(&mut reg).unwrap();
        drop(w);
        drop(a);
        (reader.join().unwrap(), pos)
    };
    let (copied, pos_copied) = write(false);
    let (shared, pos_shared) = write(true);
    assert_eq!(pos_copied, pos_shared, "positions count shared bytes");
    assert!(copied == shared, "same stream bytes");
    assert!(copied.len() > 64 * 4096);
}

/// An END body written in pieces: every piece reaches the sink before the
/// next is asked for (a stop-and-copy of all of RAM never sits in memory
/// whole), and the stream's bytes equal the same body written in one piece.
#[test]
fn end_body_in_pieces_is_flushed_between_pieces_and_equals_one_piece() {
    use std::io::Write;
    use vmstate_runtime::savevm::{SaveVmHandlers, SectionReader, SectionWriter};

    /// Counts what reached the sink so far (shared with the handler).
    #[derive(Clone, Default)]
    struct CountingSink(Arc<Mutex<Vec<u8>>>);
    impl Write for CountingSink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    /// Three 1000-byte pieces; records how much the sink held at each call.
    struct Pieces {
        sink: CountingSink,
        seen: Arc<Mutex<Vec<usize>>>,
        left: u8,
        one_piece: bool,
    }
    impl SaveVmHandlers for Pieces {
        fn is_iterative(&self) -> bool {
            true
        }
        fn save_live_complete_precopy(&mut self, w: &mut SectionWriter) -> Result<()> {
            for i in 0..3u8 {
                w.write_bytes(&[i; 1000])?;
            }
            Ok(())
        }
        fn save_live_complete_precopy_piece(
            &mut self,
            w: &mut SectionWriter,
            first: bool,
        ) -> Result<bool> {
            if self.one_piece {
                self.save_live_complete_precopy(w)?;
                return Ok(false);
            }
            if first {
                self.left = 3;
            }
            self.seen
                .lock()
                .unwrap()
                .push(self.sink.0.lock().unwrap().len());
            self.left -= 1;
            w.write_bytes(&[2 - self.left; 1000])?;
            Ok(self.left > 0)
        }
        fn load_state(&mut self, _r: &mut SectionReader, _v: u32) -> Result<()> {
            Ok(())
        }
    }
    let stream = |one_piece: bool| {
        let sink = CountingSink::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut reg = Registry::new();
        let h = Pieces {
            sink: sink.clone(),
            seen: seen.clone(),
            left: 0,
            one_piece,
        };
        reg.register_savevm_live("pieces", 0, 1, Box::new(h))
            .unwrap();
        let mut w = StreamWriter::new(sink.clone(), QemuVersion::V7_2);
        w.write_header().unwrap();
        w.setup(&mut reg).unwrap();
        w.complete_precopy(&mut reg).unwrap();
        drop(w);
        let bytes = sink.0.lock().unwrap().clone();
        let seen = seen.lock().unwrap().clone();
        (bytes, seen)
    };
    let (pieces, seen) = stream(false);
    let (whole, _) = stream(true);
    assert_eq!(pieces, whole, "pieces change the stream's bytes");
    assert_eq!(seen.len(), 3);
    assert!(
        seen[1] >= seen[0] + 1000 && seen[2] >= seen[1] + 1000,
        "each piece reached the sink before the next was asked for: {seen:?}"
    );
}
