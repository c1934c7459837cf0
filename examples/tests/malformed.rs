//! Untrusted input: truncated and corrupted QEMU streams must give a clear
//! error (what, where), never a panic, through the library and the binary.

use std::process::Command;

mod common;
use common::fixtures::stream;

// The runtime's counting allocator, shared rather than copied: the peak a
// hostile trailer makes the analyzer hold is what these tests bound.
#[path = "../../vmstate-runtime/tests/common/alloc.rs"]
#[allow(dead_code)]
mod alloc;
#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

use vmstate_examples::analyze::{
    analyze_desc, analyze_state, analyze_state_counted, analyze_state_with, to_python_json_bounded,
    AnalyzeError, AnalyzeOptions, MAX_STRUCT_DEPTH, WORK_BASE, WORK_PER_BYTE,
};

fn opts() -> AnalyzeOptions {
    AnalyzeOptions {
        dump_memory: false,
        max_values: 100_000,
        ..AnalyzeOptions::default()
    }
}

fn analyze(data: &[u8]) -> Result<serde_json::Value, AnalyzeError> {
    analyze_state(data, &opts())
}

/// Offset of the vmdesc record (0x06, be32 len, JSON to the end).
fn vmdesc_offset(data: &[u8]) -> usize {
    (0..data.len())
        .rev()
        .find(|&p| {
            data[p] == 0x06
                && p + 5 < data.len()
                && u32::from_be_bytes(data[p + 1..p + 5].try_into().unwrap()) as usize + p + 5
                    == data.len()
        })
        .unwrap()
}

fn find(data: &[u8], needle: &[u8]) -> usize {
    data.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{needle:?} not found"))
}

/// A QEMU stream split for fast walks: its parsed trailer, the whole stream
/// up to the trailer, and the same stream without its RAM sections (header,
/// configuration, then the device sections to EOF: still a valid stream).
struct Split {
    vmdesc: serde_json::Value,
    stream: Vec<u8>,
    devices_only: Vec<u8>,
}

fn split(name: &str) -> Split {
    let data = stream(name);
    let desc = vmdesc_offset(&data);
    let vmdesc = serde_json::from_slice(&data[desc + 5..]).unwrap();
    let ram_start = find(&data, b"\x01\x00\x00\x00\x02\x03ram");
    let first_full = find(&data, b"\x04\x00\x00\x00\x00\x05timer");
    let devices_only = [&data[..ram_start], &data[first_full..desc]].concat();
    Split {
        vmdesc,
        stream: data[..desc].to_vec(),
        devices_only,
    }
}

#[test]
fn the_file_cut_anywhere_is_an_error() {
    let data = stream("pc-i8042");
    for cut in (0..data.len())
        .step_by(4001)
        .chain(data.len() - 120..data.len())
    {
        let e = analyze(&data[..cut]).expect_err("a cut stream must not decode");
        let msg = e.to_string();
        assert!(
            msg.contains("vmdesc") || msg.contains("too short"),
            "cut {cut}: {msg}"
        );
    }
    assert!(analyze_desc(&data[..data.len() - 1]).is_err());
}

#[test]
fn the_stream_cut_before_its_trailer_is_an_error_with_an_offset() {
    // Every reader of the walk meets the end of its input somewhere: in the
    // header, the configuration, the RAM records, every device section.
    let s = split("pc-i8042");
    assert!(analyze_state_with(&s.devices_only, &s.vmdesc, &opts()).is_ok());
    let check =
        |stream: &[u8], cut: usize| match analyze_state_with(&stream[..cut], &s.vmdesc, &opts()) {
            Ok(_) => panic!("cut at {cut} decoded"),
            Err(e) => {
                let msg = e.to_string();
                if cut >= 8 {
                    assert!(e.offset.is_some(), "cut {cut}: no offset in {msg}");
                    assert!(msg.contains("stream ends"), "cut {cut}: {msg}");
                }
            }
        };
    for cut in (0..400).chain((400..s.stream.len()).step_by(19_997)) {
        check(&s.stream, cut);
    }
    // Every byte of the keyboard controller's three sections, a sample of the rest.
    let kbd = find(&s.devices_only, b"\x06ps2kbd") - 5;
    let after = find(&s.devices_only, b"\x07vmmouse") - 5;
    for cut in (kbd..after).chain((0..s.devices_only.len()).step_by(89)) {
        check(&s.devices_only, cut);
    }
}

#[test]
fn memory_dump_of_a_cut_ram_section_is_an_error() {
    let s = split("pc-default");
    let with_memory = AnalyzeOptions {
        dump_memory: true,
        ..opts()
    };
    for cut in [300, 5000, 77_777] {
        let e = analyze_state_with(&s.stream[..cut], &s.vmdesc, &with_memory).unwrap_err();
        assert!(e.to_string().contains("stream ends"), "{e}");
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let s = split("pc-virtio-net");
    let mut errors = 0;
    let mut walks = 0;
    let mut corrupt = |stream: &[u8], at: usize| {
        let mut d = stream.to_vec();
        d[at] ^= 0xff;
        walks += 1;
        if let Err(e) = analyze_state_with(&d, &s.vmdesc, &opts()) {
            errors += 1;
            assert!(!e.to_string().is_empty());
        }
    };
    for at in 0..48 {
        corrupt(&s.stream, at);
    }
    for at in (0..s.devices_only.len()).step_by(211) {
        corrupt(&s.devices_only, at);
    }
    // Most flipped bytes are just other values; framing bytes are caught.
    assert!(errors > 0, "corruptions detected: {errors} of {walks}");
    // Corrupting the trailer itself: an error or a different decoding, never a panic.
    let data = stream("pc-i8042");
    let desc = vmdesc_offset(&data);
    for at in (desc..data.len()).step_by(1999).chain(desc..desc + 8) {
        let mut d = data.clone();
        d[at] ^= 0x21;
        let _ = analyze(&d);
    }
}

#[test]
fn specific_corruptions_say_what_and_where() {
    let data = stream("pc-i8042");
    let err = |d: &[u8]| analyze(d).unwrap_err().to_string();

    let mut d = data.clone();
    d[0] = b'X';
    assert_eq!(
        err(&d),
        "not a migration stream: magic 0x5845564d, expected 0x5145564d (\"QEVM\") (at byte offset 0 = 0x0)"
    );
    let mut d = data.clone();
    d[7] = 2;
    assert!(err(&d).contains("unsupported stream version 2"));

    // The configuration record is followed by the RAM START section.
    let start = find(&data, b"\x01\x00\x00\x00\x02\x03ram");
    let mut d = data.clone();
    d[start] = 0x09;
    assert_eq!(
        err(&d),
        format!("unknown section type 0x09 (at byte offset {start} = {start:#x})")
    );
    let mut d = data.clone();
    d[start + 16] = 3; // ram version 3
    assert!(err(&d).starts_with("section 'ram' instance 0 (id 2): unknown RAM version 3"));

    // The first page record names "pc.ram"; make the next one CONTINUE-less
    // garbage: an unknown flag combination.
    let first_page = find(&data, b"\x00\x00\x00\x00\x00\x00\x00\x02\x06pc.ram");
    let mut d = data.clone();
    d[first_page + 7] = 0x22; // ZERO|CONTINUE before any block was named
    let e = err(&d);
    assert!(
        e.contains("CONTINUE page record with no previous RAMBlock"),
        "{e}"
    );
    assert!(e.contains(&format!("at byte offset {first_page}")), "{e}");
    let mut d = data.clone();
    d[first_page + 7] = 0x40; // XBZRLE
    assert!(err(&d).contains("XBZRLE RAM compression is not supported"));
    let mut d = data.clone();
    d[first_page + 6] = 0x04; // flag 0x400 is not a RAM flag
    assert!(err(&d).contains("unknown RAM flags: 0x400"));

    // pckbd: footer id, subsection marker and name.
    let pckbd = find(&data, b"\x04\x00\x00\x00\x19\x05pckbd");
    let body = pckbd + 19;
    let mut d = data.clone();
    d[body + 4] = 0x07; // "pckbd_outport" subsection marker
    let e = err(&d);
    assert!(
        e.starts_with("section 'pckbd' instance 0 (id 25), field 'kbd': subsection 'pckbd_outport' not found: byte 0x07 instead of 0x05"),
        "{e}"
    );
    let mut d = data.clone();
    d[body + 6] = b'X';
    assert!(err(&d).contains("expected subsection 'pckbd_outport', found 'Xckbd_outport'"));
    let footer = body + 60;
    assert_eq!(data[footer], 0x7e);
    let mut d = data.clone();
    d[footer + 4] = 0x18;
    assert!(err(&d).contains("mismatched section footer: id 24, the section was 25"));

    // A command that is not one.
    let mut d = data.clone();
    d[start] = 0x08;
    assert!(err(&d).contains("unknown command"));
}

#[test]
fn hostile_vmdesc_is_refused_or_bounded() {
    let data = stream("pc-default");
    let desc = vmdesc_offset(&data);
    let json = String::from_utf8(data[desc + 5..].to_vec()).unwrap();
    let with = |j: &str| {
        let mut d = data[..desc].to_vec();
        d.push(0x06);
        d.extend_from_slice(&(j.len() as u32).to_be_bytes());
        d.extend_from_slice(j.as_bytes());
        analyze(&d).map(|_| ()).map_err(|e| e.to_string())
    };
    assert_eq!(with(&json), Ok(()));
    let e = with(&json.replacen("\"size\": 8", "\"size\": 80000000", 1)).unwrap_err();
    assert!(
        e.contains("stream ends while reading a 80000000-byte"),
        "{e}"
    );
    let e = with(&json.replacen("\"size\": 8", "\"size\": -8", 1)).unwrap_err();
    assert!(e.contains("no non-negative integer \"size\""), "{e}");
    let e = with(&json.replacen("\"type\": \"int64\"", "\"type\": 7", 1)).unwrap_err();
    assert!(e.contains("has no string \"type\""), "{e}");
    let e = with(&json.replacen("\"page_size\": 4096", "\"page_size\": 4095", 1)).unwrap_err();
    assert!(e.contains("page_size"), "{e}");
    let e = with(&json.replacen("\"fields\"", "\"fieldz\"", 1)).unwrap_err();
    assert!(e.contains("no \"fields\" list"), "{e}");
    let e = with(&json.replacen(
        "\"type\": \"int64\", \"size\": 8",
        "\"array_len\": 99999999999, \"type\": \"unused_buffer\", \"size\": 0",
        1,
    ))
    .unwrap_err();
    assert!(e.contains("more than 100000 values"), "{e}");
    let e = with(&json[..json.len() - 1]).unwrap_err();
    assert!(e.contains("not valid JSON"), "{e}");
    let e = with(&json.replacen("\"name\": \"timer\"", "\"name\": \"timex\"", 1)).unwrap_err();
    assert!(
        e.contains("section 'timer' instance 0 (id 0): FULL section not described"),
        "{e}"
    );
}

#[test]
fn the_binary_reports_malformed_files_without_panicking() {
    let data = stream("pc-i8042");
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_vmstate");
    let desc = vmdesc_offset(&data);
    for (name, bytes) in [
        ("empty.mig", Vec::new()),
        ("truncated.mig", data[..data.len() / 2].to_vec()),
        (
            "cut-stream.mig",
            [&data[..desc - 100], &data[desc..]].concat(),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        // The desc dump only needs the trailer, which the cut stream still has.
        let dumps: &[&str] = if name == "cut-stream.mig" {
            &["state"]
        } else {
            &["state", "desc"]
        };
        for &dump in dumps {
            let out = Command::new(exe)
                .args(["analyze", "--dump", dump])
                .arg(&path)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name}: {err}");
            assert!(err.starts_with("vmstate: error: "), "{name}: {err}");
            assert!(!err.contains("panicked"), "{name}: {err}");
            if name == "cut-stream.mig" {
                assert!(
                    err.contains("stream ends") && err.contains("byte offset"),
                    "{err}"
                );
            }
        }
    }
}

/// A stream of one FULL section of device "d" whose body is `body`, then EOF,
/// then the vmdesc trailer describing "d" with `fields` (a JSON list).
fn crafted(body: &[u8], fields: &str) -> Vec<u8> {
    let mut s = b"QEVM\0\0\0\x03".to_vec();
    s.extend_from_slice(b"\x04\0\0\0\x05\x01d\0\0\0\0\0\0\0\x01");
    s.extend_from_slice(body);
    s.extend_from_slice(b"\x7e\0\0\0\x05\x00");
    let json = format!(
        r#"{{"page_size": 4096, "devices": [{{"name": "d", "instance_id": 0, "vmsd_name": "d", "version": 1, "fields": {fields}}}]}}"#
    );
    s.push(0x06);
    s.extend_from_slice(&(json.len() as u32).to_be_bytes());
    s.extend_from_slice(json.as_bytes());
    s
}

/// A struct field named `name` repeated `count` times, each element described
/// by `inner` (a JSON list of fields).
fn struct_array(name: &str, count: u64, inner: &str) -> String {
    format!(
        r#"{{"name": "{name}", "array_len": {count}, "type": "struct", "size": 0, "struct": {{"vmsd_name": "{name}", "version": 1, "fields": {inner}}}}}"#
    )
}

/// The three reports against the analyzer (a 4.4 KB file allocating 4 GB, a
/// 1 MB file taking ~24 minutes, an index near u64::MAX overflowing): each
/// input now ends in a clear error, with the work done within
/// `WORK_PER_BYTE` per stream byte (plus `WORK_BASE`) and a bounded peak
/// allocation.
#[test]
fn vmdesc_counts_are_not_work_the_input_does_not_back() {
    let zero = r#"[{"name": "z", "type": "unused_buffer", "size": 0}]"#;
    // Many fields that each read nothing (array_len 0): one element costs the
    // whole list, however few values it yields.
    let empties = format!(
        "[{}]",
        (0..300)
            .map(|i| format!(r#"{{"name": "e{i}", "array_len": 0, "type": "uint8", "size": 1}}"#))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // 30 levels of two-element arrays over an empty leaf: 2^30 leaves.
    let mut nested = zero.to_string();
    for level in 0..30 {
        nested = format!("[{}]", struct_array(&format!("n{level}"), 2, &nested));
    }
    // Deeper than the walk follows (still within serde_json's nesting limit).
    let mut deep = zero.to_string();
    for level in 0..MAX_STRUCT_DEPTH + 2 {
        deep = format!("[{}]", struct_array(&format!("l{level}"), 1, &deep));
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a huge count of zero-byte elements",
            crafted(
                &[],
                &format!("[{}]", struct_array("a", 4_000_000_000, zero)),
            ),
            "more work than the stream backs",
        ),
        (
            "a huge count of elements whose fields read nothing",
            crafted(&[], &format!("[{}]", struct_array("a", 1 << 40, &empties))),
            "more work than the stream backs",
        ),
        (
            "nested arrays multiplying",
            crafted(&[], &nested),
            "more work than the stream backs",
        ),
        (
            "nesting deeper than the walk follows",
            crafted(&[], &deep),
            "nested deeper than",
        ),
        (
            "an index near u64::MAX",
            crafted(
                &[7],
                r#"[{"name": "x", "index": 18446744073709551615, "type": "uint8", "size": 1}]"#,
            ),
            "overflows",
        ),
    ];
    for (what, data, expected) in cases {
        let ((r, work), seen) =
            alloc::measure(|| analyze_state_counted(&data, &AnalyzeOptions::default()));
        let e = r.expect_err(what).to_string();
        assert!(e.contains(expected), "{what}: {e}");
        assert!(e.contains("section 'd' instance 0 (id 5)"), "{what}: {e}");
        let limit = WORK_PER_BYTE * work.stream_bytes + WORK_BASE;
        assert_eq!(work.limit, limit, "{what}");
        assert!(work.visits <= limit + 1, "{what}: {work:?}");
        // The file is a few KB; what it may make the tool hold is a few MB
        // (the values of at most `limit` visits), not gigabytes.
        assert!(data.len() < 20_000, "{what}: {} bytes", data.len());
        assert!(seen.peak < 32 << 20, "{what}: peak {} bytes", seen.peak);
    }
}

/// A real stream costs a few units of work per byte, far below the budget.
#[test]
fn real_streams_take_work_linear_in_their_length() {
    for name in common::fixtures::STREAMS {
        let data = stream(name);
        let (r, work) = analyze_state_counted(&data, &AnalyzeOptions::default());
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(work.visits > 0, "{name}");
        assert!(
            work.visits <= 2 * work.stream_bytes,
            "{name}: {} visits for {} bytes",
            work.visits,
            work.stream_bytes
        );
    }
}

/// Many sections: the walk looks sections and devices up by hash, so its
/// work stays linear (one visit per record) however many there are.
#[test]
fn many_sections_cost_one_visit_each() {
    let n = 20_000u32;
    let mut s = b"QEVM\0\0\0\x03".to_vec();
    let mut devices = Vec::new();
    for id in 0..n {
        s.extend_from_slice(&[0x04]);
        s.extend_from_slice(&id.to_be_bytes());
        s.extend_from_slice(b"\x01d");
        s.extend_from_slice(&id.to_be_bytes());
        s.extend_from_slice(&1u32.to_be_bytes());
        s.push(id as u8);
        devices.push(format!(
            r#"{{"name": "d", "instance_id": {id}, "vmsd_name": "d", "version": 1, "fields": [{{"name": "x", "type": "uint8", "size": 1}}]}}"#
        ));
    }
    s.push(0x00);
    let json = format!(
        r#"{{"page_size": 4096, "devices": [{}]}}"#,
        devices.join(", ")
    );
    s.push(0x06);
    s.extend_from_slice(&(json.len() as u32).to_be_bytes());
    s.extend_from_slice(json.as_bytes());
    let (r, work) = analyze_state_counted(&s, &AnalyzeOptions::default());
    let v = r.unwrap();
    assert_eq!(v.as_object().unwrap().len(), n as usize);
    assert_eq!(v["d (19999)"]["x"], "0x1f");
    // A record, a field and an element per section, and the EOF.
    assert_eq!(work.visits, 3 * u64::from(n) + 1);
}

/// The printed JSON stops at the caller's cap with a marker saying so, in the
/// library and through `vmstate analyze --max-output`.
#[test]
fn output_is_cut_at_the_cap_with_a_marker() {
    let data = stream("pc-i8042");
    let v = analyze_state(&data, &AnalyzeOptions::default()).unwrap();
    let full = vmstate_examples::analyze::to_python_json(&v);
    assert!(full.len() > 4000);
    let (cut, seen) = alloc::measure(|| to_python_json_bounded(&v, 1000));
    let marker = "\n... output truncated at 1000 bytes";
    assert!(cut.ends_with(marker), "{cut}");
    assert_eq!(cut.len(), 1000 + marker.len());
    assert_eq!(&cut[..1000], &full[..1000]);
    assert!(seen.peak < 16 * 1024, "peak {}", seen.peak);
    assert_eq!(to_python_json_bounded(&v, full.len()), full);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i8042.mig");
    std::fs::write(&path, &data).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vmstate"))
        .args(["analyze", "--max-output", "500"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        format!("{}\n... output truncated at 500 bytes\n", &full[..500])
    );
}

#[test]
fn the_incremental_reader_fails_cleanly_on_cuts_and_flips() {
    use std::io::Cursor;
    use vmstate_examples::analyze::{analyze_file, analyze_reader_with};
    let data = stream("pc-i8042");
    let s = split("pc-i8042");
    let whole = analyze_file(Cursor::new(data.clone()), &opts()).unwrap();
    assert_eq!(whole.state, analyze(&data).unwrap());
    // A file cut anywhere: no trailer, the bare walk says where it stops.
    for cut in (0..24).chain((24..data.len()).step_by(15_919)) {
        let e = analyze_file(Cursor::new(data[..cut].to_vec()), &opts()).unwrap_err();
        let msg = e.to_string();
        if cut >= 8 {
            assert!(
                msg.contains(&format!("it ends at byte offset {cut}")),
                "cut {cut}: {msg}"
            );
        }
    }
    // A stream read straight through (a pipe), cut anywhere.
    for cut in (0..100).chain((100..s.stream.len()).step_by(15_013)) {
        let r = analyze_reader_with(Cursor::new(s.stream[..cut].to_vec()), &s.vmdesc, &opts());
        let e = r.expect_err("a cut stream");
        if cut >= 8 {
            assert!(e.offset.is_some(), "cut {cut}: {e}");
            assert!(e.to_string().contains("stream ends"), "cut {cut}: {e}");
        }
    }
    // Flipped bytes anywhere in the file: a result or an error, never a panic.
    for at in (0..data.len()).step_by(9_973) {
        let mut d = data.clone();
        d[at] ^= 0x5a;
        let _ = analyze_file(Cursor::new(d), &opts());
    }
}
