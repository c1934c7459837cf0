//! The live-migration demo, in-process with tiny parameters and through the
//! built binary: it converges, the destination equals the source at
//! switchover, the kept stream decodes with `vmstate analyze`, and failures
//! (a bad URI, no convergence) are reported and exit non-zero.

use std::process::Command;
use std::time::Duration;

mod common;
use common::output::assert_contains_all;

use vmstate_examples::analyze::{analyze_state, AnalyzeOptions};
use vmstate_examples::demo::{run, DemoOptions, ProgressMode};
use vmstate_runtime::migration::MigrationStatus;

fn tiny() -> DemoOptions {
    DemoOptions {
        ram_mib: 4,
        max_bandwidth_mib: 16,
        downtime_ms: 20,
        dirty_rate: 1500,
        keys_per_sec: 100,
        progress: ProgressMode::Off,
        ..DemoOptions::default()
    }
}

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
    assert!(
        text.contains("verified: the destination holds exactly"),
        "{text}"
    );
    let s = &report.stats;
    assert_eq!(s.status, MigrationStatus::Completed);
    assert_eq!(report.destination_status, MigrationStatus::Completed);
    assert!(
        s.downtime.is_some() && s.iterations > 1 && s.dirty_sync_count >= 1,
        "{s:?}"
    );
    assert_eq!(report.ram_pages, 1024);
    assert_eq!(
        report.normal_pages + report.zero_pages - report.resent_pages,
        1024
    );
    assert!(
        report.guest_writes > 0 && report.keys_typed > 0,
        "{report:?}"
    );
    let names: Vec<_> = report.checks.iter().map(|c| c.what.as_str()).collect();
    assert_eq!(names[..4], ["ram (pc.ram)", "ps2kbd", "ps2mouse", "pckbd"]);
    assert_eq!(report.checks[0].bytes, 4 << 20);

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
    assert_eq!(names, ["ram", "ps2kbd", "ps2mouse", "pckbd"]);
    let (ram, kbd, mouse, ctl) = (sections[0].1, sections[1].1, sections[2].1, sections[3].1);
    assert_eq!(ram["section sizes"]["pc.ram"], "0x0000000000400000");
    assert_eq!(ctl["kbd"]["mode"], "0x47", "command byte set at boot");
    assert_eq!(kbd["ps2kbd/ledstate"]["ledstate"], "0x00000002", "Num Lock");
    assert_eq!(mouse["mouse_status"], "0x20", "reporting enabled");
}

#[test]
fn over_tcp_without_limits() {
    let opts = DemoOptions {
        uri: Some("tcp:127.0.0.1:0".into()),
        max_bandwidth_mib: 0,
        ram_mib: 2,
        ..tiny()
    };
    let mut out = Vec::new();
    let report = run(&opts, &mut out).unwrap();
    assert!(report.verified());
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("listening on tcp:127.0.0.1:"));
}

#[test]
fn a_guest_dirtying_faster_than_the_link_times_out_cleanly() {
    let opts = DemoOptions {
        ram_mib: 2,
        max_bandwidth_mib: 1,
        downtime_ms: 1,
        dirty_rate: 200_000,
        timeout: Duration::from_millis(600),
        ..tiny()
    };
    let e = run(&opts, &mut Vec::new()).unwrap_err().to_string();
    assert!(e.contains("did not converge within"), "{e}");
}

#[test]
fn the_binary_runs_and_reports_errors() {
    let exe = env!("CARGO_BIN_EXE_demo");
    let out = Command::new(exe)
        .args([
            "--ram-mib",
            "2",
            "--max-bandwidth-mib",
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

    let out = Command::new(exe)
        .args(["--uri", "file:/tmp/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("demo: error: --uri file:/tmp/x: the demo's destination listens"),
        "{err}"
    );

    let out = Command::new(exe).args(["--ram-mib", "0"]).output().unwrap();
    assert!(!out.status.success());
}
