//! `vmstate analyze` against QEMU's own analyze-migration.py output for four
//! streams written by QEMU 7.2: byte-identical JSON, through the library and
//! through the binary.

use std::process::Command;

mod common;
use common::fixtures::{oracle, stream, stream_path, STREAMS};

use vmstate_examples::analyze::{analyze_desc, analyze_state, to_python_json, AnalyzeOptions};

/// First differing line, for a readable failure.
fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: ours {x:?}, QEMU's {y:?}", i + 1);
        }
    }
    format!(
        "lengths differ: {} vs {} lines",
        a.lines().count(),
        b.lines().count()
    )
}

#[test]
fn state_dump_is_byte_identical_to_qemus_analyze_migration() {
    for name in STREAMS {
        let v = analyze_state(&stream(name), &AnalyzeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = to_python_json(&v) + "\n";
        let theirs = oracle(&format!("{name}.state.json"));
        assert!(
            ours == theirs,
            "{name}: {}",
            first_difference(&ours, &theirs)
        );
    }
}

#[test]
fn device_entries_carry_the_i8042_state_qemu_saved() {
    let v = analyze_state(&stream("pc-i8042"), &AnalyzeOptions::default()).unwrap();
    let kbd = &v["pckbd (25)"]["kbd"];
    assert_eq!(kbd["status"], "0x39");
    assert_eq!(kbd["mode"], "0x47");
    assert_eq!(kbd["pckbd_outport"]["outport"], "0xfd");
    assert_eq!(kbd["pckbd/extended_state"]["obsrc"], "0x00000002");
    assert_eq!(
        v["ps2kbd (23)"]["ps2kbd/ledstate"]["ledstate"],
        "0x00000005"
    );
    assert_eq!(
        v["ps2mouse (24)"]["parent_obj"]["write_cmd"],
        "0xffffffff (-1)"
    );
    assert_eq!(v["ps2mouse (24)"]["mouse_sample_rate"], "0x28");
    assert_eq!(
        v["ram (2)"]["section sizes"]["pc.ram"],
        "0x0000000002000000"
    );
}

#[test]
fn desc_dump_is_byte_identical() {
    let v = analyze_desc(&stream("pc-i8042")).unwrap();
    let ours = to_python_json(&v) + "\n";
    let theirs = oracle("pc-i8042.desc.json");
    assert!(ours == theirs, "{}", first_difference(&ours, &theirs));
}

#[test]
fn memory_dump_lists_every_page_record() {
    let v = analyze_state(
        &stream("pc-default"),
        &AnalyzeOptions {
            dump_memory: true,
            ..AnalyzeOptions::default()
        },
    )
    .unwrap();
    let mem = v["ram (2)"]["memory"].as_object().unwrap();
    // 32 MiB pc.ram + the ROM blocks: every page once, in the first PART.
    let pages: u64 = v["ram (2)"]["section sizes"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| u64::from_str_radix(&s.as_str().unwrap()[2..], 16).unwrap() / 4096)
        .sum();
    assert_eq!(pages, 8322);
    assert_eq!(mem.len() as u64, pages);
    assert_eq!(mem["pc.ram (0x0000000000000000)"], "Filled with 0x00");
    let bios = mem["pc.bios (0x000000000003f000)"].as_str().unwrap();
    assert_eq!(bios.len(), 4096 * 3 - 1, "a raw page as hex bytes");
}

#[test]
fn the_binary_prints_the_same_and_fails_cleanly() {
    let exe = env!("CARGO_BIN_EXE_vmstate");
    let out = Command::new(exe)
        .arg("analyze")
        .arg(stream_path("pc-i8042"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8(out.stdout).unwrap() == oracle("pc-i8042.state.json"));

    let out = Command::new(exe)
        .args(["analyze", "--dump", "desc"])
        .arg(stream_path("pc-i8042"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap() == oracle("pc-i8042.desc.json"));

    let out = Command::new(exe)
        .args(["analyze", "/nonexistent.mig"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("vmstate: error: /nonexistent.mig: "),
        "{err}"
    );
}

// ---- the binary on bad and big input: forms, bounds, exit codes ----

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use vmstate_devices::ram::protocol::{PageAt, RamEncoder, X86_TARGET_PAGE_SIZE};
use vmstate_runtime::wire::Writer;

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_vmstate")
}

/// Runs `vmstate args...`, stdin from `input` (or closed).
fn run(args: &[&str], input: Option<&[u8]>) -> (Option<i32>, Vec<u8>, String) {
    let mut child = Command::new(exe())
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        // The tool may stop reading early (a bad magic): ignore EPIPE.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits for `child`, sampling its peak resident set (VmHWM) until it exits;
/// returns (exit code, peak RSS in KiB, wall time).
fn wait_measuring(mut child: Child, within: Duration) -> (Option<i32>, u64, Duration) {
    let start = Instant::now();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), peak, start.elapsed());
        }
        if start.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vmstate did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_file_a_flag_and_standard_input_give_the_same_output() {
    let path = stream_path("pc-i8042");
    let p = path.to_str().unwrap();
    let expected = oracle("pc-i8042.state.json").into_bytes();
    for args in [
        vec!["analyze", p],
        vec!["analyze", "-f", p],
        vec!["analyze", "--file", p],
    ] {
        let (code, out, err) = run(&args, None);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(out == expected, "{args:?}");
    }
    let (code, out, err) = run(&["analyze", "-"], Some(&stream("pc-i8042")));
    assert_eq!(code, Some(0), "{err}");
    assert!(out == expected, "standard input");
    // Standard input walked directly, described by the file's own trailer.
    let (code, out, err) = run(&["analyze", "-", "--vmdesc", p], Some(&stream("pc-i8042")));
    assert_eq!(code, Some(0), "{err}");
    assert!(out == expected, "standard input with --vmdesc");
    let (code, out, _) = run(&["analyze", "-d", "desc", "-"], Some(&stream("pc-i8042")));
    assert_eq!(code, Some(0));
    assert!(out == oracle("pc-i8042.desc.json").into_bytes());
}

#[test]
fn a_bad_magic_is_reported_after_a_few_bytes() {
    // /dev/zero never ends: only its first bytes may be read.
    let t = Instant::now();
    let (code, _, err) = run(&["analyze", "/dev/zero"], None);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("not a migration stream: magic 0x00000000"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(10));

    // A pipe that stays open after 4 bytes: the answer comes without EOF.
    let mut child = Command::new(exe())
        .args(["analyze", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"ELF\x7f").unwrap();
    stdin.flush().unwrap();
    let (code, _, _) = wait_measuring(child, Duration::from_secs(20));
    assert_eq!(code, Some(1));
    drop(stdin);

    // A 1 GiB (sparse) file with a bad magic, and one with a good header and
    // no trailer: neither is slurped.
    let dir = tempfile::tempdir().unwrap();
    for (name, head) in [
        ("bad.mig", &b"QEVN\0\0\0\x03"[..]),
        ("zeros.mig", &b"QEVM\0\0\0\x03\x01"[..]),
    ] {
        let path = dir.path().join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(head).unwrap();
        f.set_len(1 << 30).unwrap();
        drop(f);
        let child = Command::new(exe())
            .arg("analyze")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (code, peak_kib, took) = wait_measuring(child, Duration::from_secs(60));
        assert_eq!(code, Some(1), "{name}");
        assert!(peak_kib < 32 << 10, "{name}: peak RSS {peak_kib} KiB");
        eprintln!("{name} (1 GiB): exit 1 in {took:?}, peak RSS {peak_kib} KiB");
    }
}

#[test]
fn a_cut_stream_says_where_it_was_cut() {
    let data = stream("pc-i8042");
    let dir = tempfile::tempdir().unwrap();
    for cut in [9, 100, 4000, data.len() / 2, data.len() - 1000] {
        let path = dir.path().join("cut.mig");
        std::fs::write(&path, &data[..cut]).unwrap();
        let (code, _, err) = run(&["analyze", path.to_str().unwrap()], None);
        assert_eq!(code, Some(1), "cut {cut}: {err}");
        assert!(
            err.contains(&format!("it ends at byte offset {cut}")),
            "cut {cut}: {err}"
        );
        let inside = if cut < 1000 {
            "it stops in "
        } else {
            "it stops in section '"
        };
        assert!(err.contains(inside), "cut {cut}: {err}");
        assert!(err.contains("(at byte offset "), "cut {cut}: {err}");
        // The same through a pipe, with the trailer from elsewhere: the walk
        // itself meets the end (a cut inside the trailer leaves the stream whole).
        if cut
            >= vmstate_examples::analyze::find_vmdesc(&data)
                .unwrap()
                .offset
        {
            continue;
        }
        let (code, _, err) = run(
            &[
                "analyze",
                "-",
                "--vmdesc",
                stream_path("pc-i8042").to_str().unwrap(),
            ],
            Some(&data[..cut]),
        );
        assert_eq!(code, Some(1), "cut {cut}: {err}");
        assert!(
            err.contains("stream ends while reading"),
            "cut {cut}: {err}"
        );
        assert!(err.contains("cut at byte offset"), "cut {cut}: {err}");
    }
}

#[test]
fn stream_bytes_in_messages_are_escaped() {
    // A FULL section named with an escape sequence and a non-UTF-8 byte.
    let name = b"\x1b[2J\x1b]0;owned\x07\xff";
    let mut s = b"QEVM\0\0\0\x03\x04\0\0\0\x01".to_vec();
    s.push(name.len() as u8);
    s.extend_from_slice(name);
    s.extend_from_slice(b"\0\0\0\0\0\0\0\x01\x00");
    let json = br#"{"page_size": 4096, "devices": []}"#;
    s.push(0x06);
    s.extend_from_slice(&(json.len() as u32).to_be_bytes());
    s.extend_from_slice(json);
    let (code, _, err) = run(&["analyze", "-"], Some(&s));
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    assert!(
        err.contains(r"section '\x1b[2J\x1b]0;owned\x07\xff'"),
        "{err}"
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let mut child = Command::new(exe())
        .args(["analyze", "-m"])
        .arg(stream_path("pc-i8042"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take()); // `| head -c 100`
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn usage_errors_exit_2_and_help_has_examples() {
    for args in [
        &["analyze"][..],
        &["analyze", "a.mig", "-f", "b.mig"],
        &["analyze", "--bogus", "a.mig"],
        &["analyze", "-d", "nothing", "a.mig"],
        &["frobnicate"],
        &["completions", "tcsh"],
    ] {
        let (code, _, err) = run(args, None);
        assert_eq!(code, Some(2), "{args:?}: {err}");
    }
    let (code, out, _) = run(&["--help"], None);
    assert_eq!(code, Some(0));
    let help = String::from_utf8(out).unwrap();
    for needle in [
        "Examples:",
        "analyze",
        "describe",
        "dump-vmstate",
        "docs",
        "check",
        "completions",
        "cargo install --path examples",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    let (code, out, _) = run(&["analyze", "--help"], None);
    assert_eq!(code, Some(0));
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("vmstate analyze -f vm.mig --dump desc"));
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = run(&["completions", shell], None);
        assert_eq!(code, Some(0), "{shell}: {err}");
        let script = String::from_utf8(out).unwrap();
        assert!(
            script.contains("vmstate") && script.contains("analyze"),
            "{shell}"
        );
    }
}

/// QEMU 7.2's scripts/analyze-migration.py, beside the static checker that
/// `.ci/run` fetches (or `VMSTATE_QEMU_ANALYZE_MIGRATION`).
fn qemu_analyze_script() -> Option<PathBuf> {
    let p = std::env::var_os("VMSTATE_QEMU_ANALYZE_MIGRATION")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("VMSTATE_QEMU_STATIC_CHECKER")
                .map(|c| PathBuf::from(c).with_file_name("analyze-migration.py"))
        })
        .filter(|p| p.exists());
    if p.is_none() {
        let why =
            "QEMU's scripts/analyze-migration.py not found (set VMSTATE_QEMU_ANALYZE_MIGRATION)";
        if std::env::var("VMSTATE_REQUIRE_QEMU").is_ok_and(|v| v == "1") {
            panic!("{why} and VMSTATE_REQUIRE_QEMU=1");
        }
        eprintln!("skipping the comparison with QEMU's -x: {why}");
    }
    p
}

fn files_below(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn extract_writes_each_ramblock_as_qemus_script_does() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours");
    let path = stream_path("pc-i8042");
    let (code, out, err) = run(
        &[
            "analyze",
            "-x",
            "--extract-dir",
            ours.to_str().unwrap(),
            path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    let listed = String::from_utf8(out).unwrap();
    assert_eq!(
        listed,
        "desc.json\npc.ram\n/rom@etc/acpi/tables\npc.bios\npc.rom\n/rom@etc/table-loader\n/rom@etc/acpi/rsdp\nstate.json\n"
    );
    // Every block's file has the MEM_SIZE length, and its pages are the last
    // ones the stream sent (as the -m dump shows them).
    let state = analyze_state(
        &stream("pc-i8042"),
        &AnalyzeOptions {
            dump_memory: true,
            ..AnalyzeOptions::default()
        },
    )
    .unwrap();
    let ram = &state["ram (2)"];
    for (block, size) in ram["section sizes"].as_object().unwrap() {
        let file = ours.join(block.trim_start_matches('/'));
        let len = u64::from_str_radix(size.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), len, "{block}");
    }
    let pc_ram = std::fs::read(ours.join("pc.ram")).unwrap();
    let mut checked = 0;
    for (key, v) in ram["memory"].as_object().unwrap() {
        let Some(addr) = key
            .strip_prefix("pc.ram (0x")
            .and_then(|k| k.strip_suffix(')'))
        else {
            continue;
        };
        let addr = usize::from_str_radix(addr, 16).unwrap();
        let page = &pc_ram[addr..addr + 4096];
        let v = v.as_str().unwrap();
        if let Some(fill) = v.strip_prefix("Filled with 0x") {
            assert!(page
                .iter()
                .all(|&b| b == u8::from_str_radix(fill, 16).unwrap()));
        } else {
            let hex: Vec<String> = page.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex.join(" "), v, "pc.ram page {addr:#x}");
        }
        checked += 1;
    }
    assert!(checked > 100, "{checked} pages checked");
    // Beside QEMU's own script: the same files, byte for byte.
    let Some(script) = qemu_analyze_script() else {
        return;
    };
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg("-x")
        .arg("-f")
        .arg(&path)
        .current_dir(&theirs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), listed);
    let (a, b) = (files_below(&ours), files_below(&theirs));
    assert_eq!(
        a.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        b.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs from QEMU's");
    }
}

#[test]
fn an_unsafe_ramblock_name_is_not_a_path_to_write_to() {
    // MEM_SIZE naming a block "../evil": extraction refuses it.
    let mut w = Writer::new(Vec::new());
    w.write_bytes(b"QEVM\0\0\0\x03\x01\0\0\0\x02\x03ram\0\0\0\0\0\0\0\x04")
        .unwrap();
    w.write_u64(0x1000 | 0x04).unwrap();
    w.write_counted_bytes(b"../evil").unwrap();
    w.write_u64(0x1000).unwrap();
    w.write_u64(0x10).unwrap();
    w.write_bytes(b"\x00").unwrap();
    let mut s = w.into_inner();
    let json = br#"{"page_size": 4096, "devices": []}"#;
    s.push(0x06);
    s.extend_from_slice(&(json.len() as u32).to_be_bytes());
    s.extend_from_slice(json);
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x");
    let (code, _, err) = run(
        &["analyze", "-x", "--extract-dir", x.to_str().unwrap(), "-"],
        Some(&s),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not a safe file name"), "{err}");
    assert!(!dir.path().join("evil").exists());
}

/// A valid stream of `mib` MiB of RAM, every page sent once (no page is all
/// zeros), then EOF and a trailer describing no devices.
fn big_stream(path: &Path, mib: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let len = mib << 20;
    let mut head = Writer::new(Vec::new());
    head.write_bytes(b"QEVM\0\0\0\x03\x01\0\0\0\x02\x03ram\0\0\0\0\0\0\0\x04")
        .unwrap();
    let mut enc = RamEncoder::new(X86_TARGET_PAGE_SIZE);
    head.write_u64(len | 0x04).unwrap();
    head.write_counted_bytes(b"pc.ram").unwrap();
    head.write_u64(len).unwrap();
    enc.write_eos(&mut head).unwrap();
    f.write_all(&head.into_inner()).unwrap();
    let mut page = vec![0u8; 4096];
    for (i, offset) in (0..len).step_by(4096).enumerate() {
        if i % 1024 == 0 {
            let mut w = Writer::new(Vec::new());
            if i > 0 {
                enc.write_eos(&mut w).unwrap();
                w.write_bytes(b"\x7e\0\0\0\x02").unwrap();
            }
            w.write_bytes(b"\x02\0\0\0\x02").unwrap();
            f.write_all(&w.into_inner()).unwrap();
        }
        page[..8].copy_from_slice(&offset.to_be_bytes());
        page[8] = 0xa5;
        let mut w = Writer::new(Vec::with_capacity(4200));
        enc.write_page(
            &mut w,
            PageAt {
                block: 0,
                idstr: "pc.ram",
                offset,
            },
            &page,
        )
        .unwrap();
        f.write_all(&w.into_inner()).unwrap();
    }
    let mut w = Writer::new(Vec::new());
    enc.write_eos(&mut w).unwrap();
    w.write_bytes(b"\x7e\0\0\0\x02\x00").unwrap();
    f.write_all(&w.into_inner()).unwrap();
    let json = br#"{"page_size": 4096, "devices": []}"#;
    f.write_all(&[0x06]).unwrap();
    f.write_all(&(json.len() as u32).to_be_bytes()).unwrap();
    f.write_all(json).unwrap();
    f.flush().unwrap();
}

#[test]
fn a_256_mib_stream_is_read_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mig");
    big_stream(&path, 256);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 256 << 20);
    let x = dir.path().join("x");
    let runs: [(&str, Vec<&str>, bool); 3] = [
        ("file", vec!["analyze", path.to_str().unwrap()], false),
        ("stdin", vec!["analyze", "-"], true),
        (
            "extract",
            vec![
                "analyze",
                "-x",
                "--extract-dir",
                x.to_str().unwrap(),
                path.to_str().unwrap(),
            ],
            false,
        ),
    ];
    for (what, args, stdin) in runs {
        let child = Command::new(exe())
            .args(&args)
            .stdin(if stdin {
                Stdio::from(std::fs::File::open(&path).unwrap())
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (code, peak_kib, took) = wait_measuring(child, Duration::from_secs(120));
        assert_eq!(code, Some(0), "{what}");
        eprintln!("{what}: {size} byte stream in {took:?}, peak RSS {peak_kib} KiB");
        assert!(peak_kib < 48 << 10, "{what}: peak RSS {peak_kib} KiB");
    }
    // The extracted block is the guest RAM the stream carried.
    let ram = std::fs::read(x.join("pc.ram")).unwrap();
    assert_eq!(ram.len() as u64, 256 << 20);
    for offset in [0usize, 4096, 123 << 12, (256 << 20) - 4096] {
        assert_eq!(&ram[offset..offset + 8], &(offset as u64).to_be_bytes());
        assert_eq!(ram[offset + 8], 0xa5);
    }
}

#[test]
fn extract_refuses_pages_outside_their_block() {
    // MEM_SIZE gives "pc.ram" one page; a page at 0x1000 lies beyond it.
    let mut w = Writer::new(Vec::new());
    w.write_bytes(b"QEVM\0\0\0\x03\x01\0\0\0\x02\x03ram\0\0\0\0\0\0\0\x04")
        .unwrap();
    w.write_u64(0x1000 | 0x04).unwrap();
    w.write_counted_bytes(b"pc.ram").unwrap();
    w.write_u64(0x1000).unwrap();
    w.write_u64(0x1000 | 0x08).unwrap();
    w.write_counted_bytes(b"pc.ram").unwrap();
    w.write_bytes(&[7u8; 4096]).unwrap();
    w.write_u64(0x10).unwrap();
    w.write_bytes(b"\x00").unwrap();
    let mut s = w.into_inner();
    let json = br#"{"page_size": 4096, "devices": []}"#;
    s.push(0x06);
    s.extend_from_slice(&(json.len() as u32).to_be_bytes());
    s.extend_from_slice(json);
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x");
    let (code, _, err) = run(
        &["analyze", "-x", "--extract-dir", x.to_str().unwrap(), "-"],
        Some(&s),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("RAMBlock 'pc.ram': page at 0x1000 lies beyond the block's length 0x1000"),
        "{err}"
    );
    // Without -x the same stream decodes (as QEMU's script decodes it).
    let (code, _, err) = run(&["analyze", "-"], Some(&s));
    assert_eq!(code, Some(0), "{err}");
}
