//! The binaries' log output: quiet by default, `-v` / `-vv` raise it, and
//! `RUST_LOG` (env-filter syntax) takes precedence; all of it on stderr.

use std::process::Command;

/// Runs the demo on a tiny guest with `args` and `RUST_LOG` (`None`: unset);
/// returns stderr (the run must succeed).
fn demo(args: &[&str], rust_log: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo"));
    cmd.args([
        "--ram-size",
        "2M",
        "--max-bandwidth",
        "0",
        "--no-progress-bar",
    ])
    .args(args)
    .env_remove("RUST_LOG");
    if let Some(spec) = rust_log {
        cmd.env("RUST_LOG", spec);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Migration summary"));
    stderr
}

#[test]
fn demo_logs_by_verbosity_and_rust_log() {
    let quiet = demo(&[], None);
    assert!(!quiet.contains("migration status"), "{quiet}");

    let info = demo(&["-v"], None);
    assert!(info.contains("INFO"), "{info}");
    assert!(info.contains("converged: switchover"), "{info}");
    assert!(info.contains("status=completed"), "{info}");
    assert!(!info.contains("DEBUG"), "{info}");

    let debug = demo(&["-vv"], None);
    assert!(debug.contains("dirty sync"), "{debug}");

    // RUST_LOG wins over -v: only the runtime's convergence module, at debug.
    let filtered = demo(
        &["-v"],
        Some("vmstate_runtime::migration::source::convergence=debug"),
    );
    assert!(filtered.contains("dirty sync"), "{filtered}");
    assert!(!filtered.contains("migration status"), "{filtered}");
}

#[test]
fn vmstate_takes_v_on_any_subcommand() {
    let out = Command::new(env!("CARGO_BIN_EXE_vmstate"))
        .args(["describe", "-vv", "--help"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
