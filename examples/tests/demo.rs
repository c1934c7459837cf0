//! The live-migration demo, in-process with tiny parameters and through the
//! built binary: it converges, the destination equals the source at
//! switchover, the kept stream decodes with `vmstate analyze`; its flags are
//! QEMU's names; one process per side (unix and TCP) gives equal checksums;
//! `file:` works both ways; the failure messages tell the truth (did not
//! converge, timed out); Ctrl-C cancels cleanly.

use std::process::Command;
use std::time::Duration;

use clap::Parser;

mod common;
use common::output::assert_contains_all;
use common::processes::{checksum_rows, demo_exe, spawn_demo};

use vmstate_devices::machine::VIRTIO_AREA;
use vmstate_examples::analyze::{analyze_state, AnalyzeOptions};
use vmstate_examples::demo::{run, Args, DemoOptions, ProgressMode, Role, Xxh64};
use vmstate_runtime::migration::MigrationStatus;

const MIB: u64 = 1 << 20;

fn tiny() -> DemoOptions {
    DemoOptions {
        ram_size: 4 * MIB,
        max_bandwidth: 16 * MIB,
        downtime_limit_ms: 20,
        dirty_rate: 1500,
        keys_per_sec: 100,
        progress: ProgressMode::Off,
        ..DemoOptions::default()
    }
}

/// The blocks of QEMU 7.2's pc machine the demo declares, in RAM-list order.
const PC_BLOCKS: [&str; 6] = [
    "pc.ram",
    "/rom@etc/acpi/tables",
    "pc.bios",
    "pc.rom",
    "/rom@etc/table-loader",
    "/rom@etc/acpi/rsdp",
];

#[test]
fn migrates_a_running_guest_and_verifies_it_with_a_kept_stream() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("demo.mig");
    let opts = DemoOptions {
        keep_stream: Some(kept.clone()),
        ..tiny()
    };
    let mut out = Vec::new();
    let report =
        run(&opts, &mut out).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&out)));
    let text = String::from_utf8(out).unwrap();
    assert!(report.verified(), "{text}");
    assert_contains_all(
        &text,
        &[
            "verified: the destination holds exactly",
            "max-bandwidth 16.0 MiB/s, downtime-limit 20 ms",
            "Checksums at switchover, source and destination alike",
            "  total time    ",
            "  rate          ",
            "  peak RSS      ",
        ],
    );
    let s = &report.stats;
    assert_eq!(s.status, MigrationStatus::Completed);
    assert_eq!(report.destination_status, Some(MigrationStatus::Completed));
    assert!(
        s.downtime.is_some() && s.iterations > 1 && s.dirty_sync_count >= 1,
        "{s:?}"
    );
    assert_eq!(report.ram_pages, 1024);
    // Every page of every block went at least once: pc.ram's 1024 and the
    // firmware and fw_cfg blocks' 64 + 32 + 32 + 1 + 1.
    assert_eq!(
        report.normal_pages + report.zero_pages - report.resent_pages,
        1024 + 130
    );
    assert!(
        report.guest_writes > 0 && report.keys_typed > 0,
        "{report:?}"
    );
    let names: Vec<_> = report.checks.iter().map(|c| c.what.clone()).collect();
    let want: Vec<String> = PC_BLOCKS
        .iter()
        .map(|b| format!("ram ({b})"))
        .chain(["ps2kbd", "ps2mouse", "pckbd"].map(String::from))
        .collect();
    assert_eq!(names[..9], want[..]);
    assert_eq!(report.checks[0].bytes, 4 << 20);
    assert_eq!(report.source_checksums, report.destination_checksums);
    assert_eq!(report.source_checksums.len(), 9);

    // The kept stream is a complete QEMU-format stream: analyze decodes it.
    let bytes = std::fs::read(&kept).unwrap();
    assert_eq!(report.kept_bytes, Some(bytes.len() as u64));
    assert_eq!(
        bytes.len() as u64,
        s.transferred,
        "the file is the stream the source sent"
    );
    let v = analyze_state(&bytes, &AnalyzeOptions::default()).unwrap();
    // Keys are "<idstr> (<section id>)", in stream order.
    let sections: Vec<(&str, &serde_json::Value)> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.split(" (").next().unwrap(), v))
        .collect();
    let names: Vec<_> = sections.iter().map(|s| s.0).collect();
    assert_eq!(
        names,
        [
            "ram",
            "ps2kbd",
            "ps2mouse",
            "pckbd",
            "0000:00:02.0/virtio-net",
            "0000:00:03.0/virtio-blk",
            "0000:00:04.0/virtio-rng",
            "0000:00:05.0/virtio-balloon"
        ]
    );
    let (ram, kbd, mouse, ctl) = (sections[0].1, sections[1].1, sections[2].1, sections[3].1);
    assert_eq!(ram["section sizes"]["pc.ram"], "0x0000000000400000");
    assert_eq!(ram["section sizes"]["pc.bios"], "0x0000000000040000");
    assert_eq!(ctl["kbd"]["mode"], "0x47", "command byte set at boot");
    assert_eq!(kbd["ps2kbd/ledstate"]["ledstate"], "0x00000002", "Num Lock");
    assert_eq!(mouse["mouse_status"], "0x20", "reporting enabled");
}

#[test]
fn over_tcp_without_limits() {
    let opts = DemoOptions {
        uri: Some("tcp:127.0.0.1:0".into()),
        max_bandwidth: 0,
        ram_size: 2 * MIB,
        ..tiny()
    };
    let mut out = Vec::new();
    let report = run(&opts, &mut out).unwrap();
    assert!(report.verified());
    let text = String::from_utf8(out).unwrap();
    assert_contains_all(
        &text,
        &[
            "listening on tcp:127.0.0.1:",
            "max-bandwidth unlimited",
            "(max-bandwidth unlimited)",
        ],
    );
}

#[test]
fn file_uri_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stream.mig");
    let uri = format!("file:{}", file.display());
    // Both sides here: the source writes the file, the destination reads it back.
    let opts = DemoOptions {
        uri: Some(uri.clone()),
        ram_size: 2 * MIB,
        ..tiny()
    };
    let mut out = Vec::new();
    let report =
        run(&opts, &mut out).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&out)));
    assert!(report.verified(), "{}", String::from_utf8_lossy(&out));
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        report.stats.transferred
    );
    // A destination process loads the same file (QEMU's -incoming file:).
    let out = Command::new(demo_exe())
        .args([
            "--role",
            "destination",
            "--ram-size",
            "2M",
            "--incoming",
            &uri,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = checksum_rows(&stdout);
    let want: Vec<String> = report
        .source_checksums
        .iter()
        .map(|c| format!("{:016x}", c.xxh64))
        .collect();
    let got: Vec<String> = rows.iter().map(|r| r.3.clone()).collect();
    assert_eq!(got, want, "{stdout}");
}

#[test]
fn exec_uri_pipes_the_stream_through_commands() {
    // QEMU's `migrate "exec:CMD"` / `-incoming "exec:CMD2"`: here through a
    // file the two commands share.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("piped.mig");
    let opts = DemoOptions {
        uri: Some(format!("exec:cat > '{}'", file.display())),
        incoming: Some(format!("exec:cat '{}'", file.display())),
        ram_size: 2 * MIB,
        ..tiny()
    };
    let mut out = Vec::new();
    let report =
        run(&opts, &mut out).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&out)));
    assert!(report.verified(), "{}", String::from_utf8_lossy(&out));
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        report.stats.transferred
    );
}

/// Both sides as processes over `incoming` (a destination that prints where
/// it waits); the source goes to `uri_of(that line)`.
fn two_processes(incoming: &str, uri_of: impl Fn(&str) -> String) -> String {
    two_processes_with(incoming, uri_of, &["--dirty-rate", "1500"])
}

/// Both sides as processes; `source_args` are the source's extra flags.
/// Returns the source's output.
fn two_processes_with(
    incoming: &str,
    uri_of: impl Fn(&str) -> String,
    source_args: &[&str],
) -> String {
    let mut dst = spawn_demo(&[
        "--role",
        "destination",
        "--ram-size",
        "4M",
        "--incoming",
        incoming,
        "--accept-timeout",
        "30",
    ]);
    let waiting = dst.wait_for_line("waiting on ", Duration::from_secs(30));
    let uri = uri_of(waiting.split("waiting on ").nth(1).unwrap().trim());
    let src = Command::new(demo_exe())
        .args([
            "--role",
            "source",
            "--ram-size",
            "4M",
            "--max-bandwidth",
            "16M",
            "--no-progress-bar",
            "--uri",
            &uri,
        ])
        .args(source_args)
        .output()
        .unwrap();
    let src_out = String::from_utf8_lossy(&src.stdout);
    assert!(
        src.status.success(),
        "{src_out}\n{}",
        String::from_utf8_lossy(&src.stderr)
    );
    let (status, dst_out, dst_err) = dst.finish();
    assert!(status.success(), "{dst_out}\n{dst_err}");
    assert_contains_all(&src_out, &["status        completed", "  rate          "]);
    assert_contains_all(&dst_out, &["status        completed", "  peak RSS      "]);
    let (a, b) = (checksum_rows(&src_out), checksum_rows(&dst_out));
    let names: Vec<&str> = a.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(names[..6], PC_BLOCKS, "{src_out}");
    assert_eq!(a.len(), 9, "{src_out}");
    assert_eq!(a, b, "source:\n{src_out}\ndestination:\n{dst_out}");
    src_out.into_owned()
}

#[test]
fn one_process_per_side_over_unix_gives_equal_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let sock = format!("unix:{}", dir.path().join("m.sock").display());
    two_processes(&sock, |shown| shown.to_string());
}

#[test]
fn one_process_per_side_over_tcp_loopback_gives_equal_checksums() {
    // Port 0: the destination says which port it got.
    two_processes("tcp:127.0.0.1:0", |shown| {
        assert!(shown.starts_with("tcp:127.0.0.1:") && !shown.ends_with(":0"));
        shown.to_string()
    });
}

/// `--mem-path`: the source's pc.ram is the file (QEMU's
/// memory-backend-file), not filled at boot; what arrives is its bytes.
#[test]
fn a_source_with_mem_path_migrates_the_files_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let ram = dir.path().join("guest.ram");
    let image: Vec<u8> = (0..4 * MIB).map(|i| (i % 253) as u8).collect();
    std::fs::write(&ram, &image).unwrap();
    let sock = format!("unix:{}", dir.path().join("m.sock").display());
    let out = two_processes_with(
        &sock,
        |shown| shown.to_string(),
        &["--dirty-rate", "0", "--mem-path", ram.to_str().unwrap()],
    );
    // The file is the source's RAM as it stopped (paused after switchover):
    // what both sides' checksums say. The memory workload wrote nothing;
    // only the virtio devices' area at the top of pc.ram changed.
    let after = std::fs::read(&ram).unwrap();
    let rows = checksum_rows(&out);
    assert_eq!(rows[0].1, "pc.ram");
    assert_eq!(rows[0].3, format!("{:016x}", Xxh64::of(&after)), "{out}");
    let below = (4 * MIB - VIRTIO_AREA) as usize;
    assert!(
        after[..below] == image[..below],
        "the boot left the file's bytes"
    );
}

#[test]
fn a_guest_dirtying_faster_than_the_link_does_not_converge() {
    let opts = DemoOptions {
        ram_size: 2 * MIB,
        max_bandwidth: MIB,
        downtime_limit_ms: 1,
        dirty_rate: 200_000,
        timeout: Duration::from_millis(600),
        ..tiny()
    };
    let e = run(&opts, &mut Vec::new()).unwrap_err().to_string();
    assert_contains_all(
        &e,
        &[
            "did not converge",
            "--max-bandwidth",
            "--downtime-limit",
            "--auto-converge",
            "--postcopy",
            "the source guest runs again",
        ],
    );
}

#[test]
fn a_slow_but_converging_migration_times_out_without_blaming_the_guest() {
    // No dirtying at all: 8 MiB at 1 MiB/s cannot finish in 0.8 s.
    let opts = DemoOptions {
        ram_size: 8 * MIB,
        used_percent: 100,
        max_bandwidth: MIB,
        dirty_rate: 0,
        timeout: Duration::from_millis(800),
        ..tiny()
    };
    let mut out = Vec::new();
    let e = run(&opts, &mut out).unwrap_err().to_string();
    assert!(e.contains("timed out after 0.8 s"), "{e}");
    assert!(!e.contains("did not converge"), "{e}");
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("status        cancelled"), "{text}");
}

#[test]
fn auto_converge_throttles_the_guest_until_precopy_converges() {
    // The guest dirties 16 MiB/s of a 2 MiB working set against 2 MiB/s:
    // only a throttled guest lets the passes shrink under the limit.
    let opts = DemoOptions {
        ram_size: 4 * MIB,
        max_bandwidth: 2 * MIB,
        downtime_limit_ms: 100,
        dirty_rate: 4000,
        auto_converge: true,
        cpu_throttle_initial: 80,
        cpu_throttle_increment: 19,
        timeout: Duration::from_secs(40),
        ..tiny()
    };
    let mut out = Vec::new();
    let report =
        run(&opts, &mut out).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&out)));
    let text = String::from_utf8(out).unwrap();
    assert!(report.verified(), "{text}");
    assert!(report.max_throttle >= 80, "{text}");
    assert!(text.contains("vCPU throttle up to"), "{text}");
}

#[test]
fn xbzrle_sends_rewritten_pages_as_deltas_and_verifies() {
    // A slow link: several passes, so rewritten pages are resent from the cache.
    let opts = DemoOptions {
        xbzrle_cache_size: Some(4 * MIB),
        max_bandwidth: 4 * MIB,
        ..tiny()
    };
    let mut out = Vec::new();
    let report =
        run(&opts, &mut out).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&out)));
    let text = String::from_utf8(out).unwrap();
    assert!(report.verified(), "{text}");
    assert!(
        text.contains("xbzrle (xbzrle-cache-size 4.0 MiB)"),
        "{text}"
    );
    let x = report
        .stats
        .ram
        .and_then(|r| r.xbzrle)
        .expect("xbzrle counters");
    assert_eq!(x.cache_size, 4 * MIB, "{x:?}");
    assert!(x.pages > 0, "{x:?}");
    assert!(text.contains("  xbzrle        "), "{text}");
}

#[test]
fn flags_are_named_as_qemu_names_the_parameters() {
    let parse = |args: &[&str]| {
        Args::try_parse_from(std::iter::once("demo").chain(args.iter().copied()))
            .map(Args::into_options)
    };
    // (flags, check on the options)
    type Check = fn(&DemoOptions) -> bool;
    let cases: &[(&[&str], Check)] = &[
        (&[], |o| {
            o.role == Role::Both
                && o.ram_size == 128 * MIB
                && o.max_bandwidth == 32 * MIB
                && o.downtime_limit_ms == 50
                && !o.postcopy
                && !o.auto_converge
                && o.progress == ProgressMode::Auto
        }),
        (&["--ram-size", "1G"], |o| o.ram_size == 1 << 30),
        (&["--ram-size", "512M"], |o| o.ram_size == 512 * MIB),
        (&["--ram-size", "512"], |o| o.ram_size == 512 * MIB),
        (&["--ram-size", "1.5G"], |o| o.ram_size == 3 << 29),
        (&["--max-bandwidth", "0"], |o| o.max_bandwidth == 0),
        (&["--max-bandwidth", "32M"], |o| o.max_bandwidth == 32 * MIB),
        (&["--max-bandwidth", "100KiB"], |o| {
            o.max_bandwidth == 102400
        }),
        (&["--downtime-limit", "60000"], |o| {
            o.downtime_limit_ms == 60000
        }),
        (&["--dirty-rate", "0"], |o| o.dirty_rate == 0),
        (&["--used-percent", "100"], |o| o.used_percent == 100),
        (&["--postcopy"], |o| o.postcopy),
        (&["--xbzrle"], |o| o.xbzrle_cache_size == Some(64 * MIB)),
        (&["--xbzrle", "--xbzrle-cache-size", "8M"], |o| {
            o.xbzrle_cache_size == Some(8 * MIB)
        }),
        (&["--xbzrle-cache-size", "8M"], |o| {
            o.xbzrle_cache_size.is_none()
        }),
        (&["--auto-converge"], |o| {
            o.auto_converge && o.cpu_throttle_initial == 20 && o.cpu_throttle_increment == 10
        }),
        (
            &[
                "--cpu-throttle-initial",
                "30",
                "--cpu-throttle-increment",
                "5",
            ],
            |o| o.cpu_throttle_initial == 30 && o.cpu_throttle_increment == 5,
        ),
        (&["--uri", "exec:cat > /dev/null"], |o| {
            o.uri.as_deref() == Some("exec:cat > /dev/null")
        }),
        (&["--role", "source", "--uri", "tcp:10.0.0.2:4444"], |o| {
            o.role == Role::Source
        }),
        (
            &["--role", "destination", "--incoming", "unix:/tmp/s"],
            |o| o.role == Role::Destination && o.incoming.as_deref() == Some("unix:/tmp/s"),
        ),
        (&["--no-progress-bar"], |o| {
            o.progress == ProgressMode::Lines
        }),
    ];
    for (args, check) in cases {
        let o = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(check(&o), "{args:?}: {o:?}");
    }
    for bad in [
        &["--ram-size", "1X"][..],
        &["--ram-size", "G"],
        &["--used-percent", "101"],
        &["--role", "sideways"],
        &["--max-bandwidth", "-1"],
        &["--ram-mib", "64"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn the_binary_runs_and_reports_errors() {
    let exe = demo_exe();
    let out = Command::new(exe)
        .args([
            "--ram-size",
            "2M",
            "--max-bandwidth",
            "0",
            "--no-progress-bar",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_contains_all(
        &stdout,
        &[
            "Migration summary",
            "status        completed",
            "downtime",
            "verified",
        ],
    );
    // (flags, what stderr says)
    for (args, says) in [
        (
            &["--uri", "ftp:/tmp/x"][..],
            "demo: error: --uri ftp:/tmp/x:",
        ),
        (&["--role", "source"], "--role source needs --uri"),
        (
            &["--role", "destination"],
            "--role destination needs --incoming",
        ),
        (
            &[
                "--role",
                "destination",
                "--incoming",
                "unix:/tmp/x",
                "--uri",
                "unix:/tmp/y",
            ],
            "the destination takes --incoming",
        ),
        (
            &["--uri", "exec:cat >/dev/null"],
            "say with --incoming exec:",
        ),
        (
            &["--ram-size", "5000B"],
            "--ram-size must be a multiple of 4 KiB",
        ),
        (
            &[
                "--uri",
                "file:/tmp/vmstate-demo-test-postcopy.mig",
                "--postcopy",
            ],
            "--postcopy needs a tcp: or unix: --uri",
        ),
    ] {
        let out = Command::new(exe).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = Command::new(exe)
        .args(["--ram-size", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn postcopy_switches_and_verifies() {
    let out = Command::new(demo_exe())
        // A guest dirtying far faster than the link: precopy alone could not
        // converge, postcopy must finish it.
        .args([
            "--ram-size",
            "8M",
            "--max-bandwidth",
            "4M",
            "--dirty-rate",
            "20000",
            "--postcopy",
            "--no-progress-bar",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_contains_all(
        &stdout,
        &[
            "switching to postcopy",
            "capabilities postcopy-ram",
            "verified",
        ],
    );
    // The summary shows what went after the switch (query-migrate's
    // postcopy-bytes and postcopy-requests): precopy could not converge, so
    // postcopy carried bytes.
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("postcopy  "))
        .unwrap_or_else(|| panic!("no postcopy line in the summary:\n{stdout}"));
    assert!(
        line.contains("sent after the switch")
            && line.contains("page requests from the destination"),
        "{line}"
    );
    assert!(
        !line.contains(" 0 B sent after the switch"),
        "postcopy sent nothing: {line}"
    );
}

#[test]
fn ctrl_c_cancels_cleanly() {
    // 64 MiB at 4 MiB/s would take many seconds: interrupt it early.
    let mut demo = spawn_demo(&[
        "--ram-size",
        "64M",
        "--max-bandwidth",
        "4M",
        "--no-progress-bar",
    ]);
    let listening = demo.wait_for_line("listening on unix:", Duration::from_secs(30));
    let sock = listening.split("listening on unix:").nth(1).unwrap().trim();
    let tmp = std::path::Path::new(sock).parent().unwrap().to_path_buf();
    assert!(tmp.exists(), "{}", tmp.display());
    demo.wait_for_line("remaining ", Duration::from_secs(30));
    let pid = demo.child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    let (status, stdout, stderr) = demo.finish();
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    assert_contains_all(&stdout, &["Migration summary", "status        cancelled"]);
    assert_contains_all(
        &stderr,
        &[
            "Ctrl-C: cancelling the migration",
            "migration cancelled by Ctrl-C",
            "the source guest runs again",
        ],
    );
    assert!(!tmp.exists(), "temporary directory left: {}", tmp.display());
}

#[test]
fn ctrl_c_stops_a_waiting_destination_and_removes_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("wait.sock");
    let incoming = format!("unix:{}", sock.display());
    let mut dst = spawn_demo(&[
        "--role",
        "destination",
        "--ram-size",
        "2M",
        "--incoming",
        &incoming,
    ]);
    dst.wait_for_line("waiting on ", Duration::from_secs(30));
    assert!(sock.exists());
    let pid = dst.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let (status, stdout, stderr) = dst.finish();
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("incoming migration cancelled by Ctrl-C"),
        "{stderr}"
    );
    assert!(!sock.exists(), "socket left behind");
}
