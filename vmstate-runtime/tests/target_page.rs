//! The target page size is a parameter of a stream, not a constant: a 16 KiB
//! target page goes into the configuration record (its target-page-bits
//! subsection) and the vmdesc trailer, a destination with the same page loads
//! the stream and one with x86's 4 KiB refuses it naming both page bits, and
//! x86 streams stay byte for byte what they were. (Postcopy at 16 KiB, with
//! discards, page requests and received bitmaps, is in `postcopy.rs`.)

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use vmstate_runtime::error::ConfigMismatch;
use vmstate_runtime::savevm::{
    Configuration, InstanceId, LoadOptions, NoCommands, QemuVersion, Registry, StreamLoader,
    StreamWriter, TargetPage,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{ErrorKind, VmState};

const MACHINE: &str = "virt-7.2";

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "timer", version = 1)]
struct Timer {
    ticks: u64,
}

fn registry(timer: &Arc<Mutex<Timer>>) -> Registry {
    let mut reg = Registry::new();
    reg.vmstate_register(InstanceId::Any, timer.clone())
        .unwrap();
    reg
}

fn stream(page: TargetPage) -> Vec<u8> {
    let timer = Arc::new(Mutex::new(Timer { ticks: 0x1122 }));
    let mut reg = registry(&timer);
    let mut w = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    w.write_header().unwrap();
    w.write_configuration(&Configuration::for_target(MACHINE, page))
        .unwrap();
    w.setup(&mut reg).unwrap();
    w.complete_precopy(&mut reg).unwrap();
    w.into_inner().unwrap()
}

fn load(bytes: &[u8], page: TargetPage) -> vmstate_runtime::Result<(Timer, Option<String>)> {
    let timer = Arc::new(Mutex::new(Timer::default()));
    let mut reg = registry(&timer);
    let mut loader = StreamLoader::new(
        LoadOptions::default().with_configuration(Configuration::for_target(MACHINE, page)),
    );
    let mut r = Reader::new(BytesMut::from(bytes));
    let vmdesc = loader.load(&mut r, &mut reg, &mut NoCommands)?;
    let t = timer.lock().unwrap().clone();
    Ok((t, vmdesc))
}

/// The configuration record right after the 8-byte header: type 0x07, be32
/// name length, the name, then (when the page bits are sent) the subsection.
fn configuration_record(bytes: &[u8]) -> &[u8] {
    &bytes[8..]
}

#[test]
fn a_16_kib_page_is_in_the_configuration_record_and_the_vmdesc() {
    let page = TargetPage::new(14, 12).unwrap();
    let bytes = stream(page);
    let rec = configuration_record(&bytes);
    let name_end = 1 + 4 + MACHINE.len();
    assert_eq!(rec[0], 0x07);
    assert_eq!(&rec[5..name_end], MACHINE.as_bytes());
    // Subsection: 0x05, counted name, be32 version 1, be32 page bits 14.
    let sub = b"configuration/target-page-bits";
    assert_eq!(rec[name_end], 0x05);
    assert_eq!(rec[name_end + 1] as usize, sub.len());
    assert_eq!(&rec[name_end + 2..name_end + 2 + sub.len()], sub);
    let after = name_end + 2 + sub.len();
    assert_eq!(&rec[after..after + 8], &[0, 0, 0, 1, 0, 0, 0, 14]);

    let (timer, vmdesc) = load(&bytes, page).unwrap();
    assert_eq!(timer.ticks, 0x1122);
    let json: serde_json::Value = serde_json::from_str(&vmdesc.expect("vmdesc")).unwrap();
    assert_eq!(json["page_size"], 16384);
}

/// The load failed on the configuration's page bits, naming both.
fn assert_page_bits_mismatch(e: &vmstate_runtime::Error, stream: u32, ours: u32) {
    let want = ConfigMismatch::PageBits { stream, ours };
    assert!(
        matches!(e.kind(), ErrorKind::ConfigurationMismatch(m) if *m == want),
        "{e}"
    );
}

#[test]
fn a_destination_with_another_page_size_refuses_the_stream() {
    let bytes = stream(TargetPage::new(14, 12).unwrap());
    let e = load(&bytes, TargetPage::X86).unwrap_err();
    assert_page_bits_mismatch(&e, 14, 12);
    // And the other way round: an x86 stream (no subsection: the minimum, 12
    // bits) on a 16 KiB destination.
    let e = load(&stream(TargetPage::X86), TargetPage::new(14, 12).unwrap()).unwrap_err();
    assert_page_bits_mismatch(&e, 12, 14);
}

#[test]
fn x86_streams_are_unchanged_by_the_parameter() {
    let bytes = stream(TargetPage::default());
    let rec = configuration_record(&bytes);
    let name_end = 1 + 4 + MACHINE.len();
    // No subsection on x86: the next byte starts the timer's FULL section.
    assert_eq!(rec[name_end], 0x04, "section FULL follows the machine name");
    let mut with_new = StreamWriter::new(Vec::new(), QemuVersion::V7_2);
    with_new.write_header().unwrap();
    with_new
        .write_configuration(&Configuration::new(MACHINE))
        .unwrap();
    let a = with_new.into_inner().unwrap();
    assert_eq!(&bytes[..a.len()], &a[..], "Configuration::new is x86");
    let (_, vmdesc) = load(&bytes, TargetPage::X86).unwrap();
    assert!(vmdesc.unwrap().contains("\"page_size\": 4096"));
}
