//! The `serde` feature: capabilities, parameters and `query-migrate` replies
//! serialize to the JSON QEMU's QMP sends (qapi/migration.json), compared
//! member for member with QEMU-shaped documents.
//! Run with `cargo test -p vmstate-runtime --features serde --test qmp_json`.
#![cfg(feature = "serde")]

use std::time::Duration;

use serde_json::{json, Value};
use vmstate_runtime::migration::{
    MigrationCapabilities, MigrationParameters, MigrationStats, MigrationStatus,
};
use vmstate_runtime::savevm::{RamStats, XbzrleStats};

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn parameters_are_query_migrate_parameters() {
    assert_eq!(
        to_json(&MigrationParameters::default()),
        json!({"downtime-limit": 300, "max-bandwidth": 134217728, "max-postcopy-bandwidth": 0})
    );
    // migrate-set-parameters: missing members keep the defaults ...
    let p: MigrationParameters = serde_json::from_value(json!({"downtime-limit": 50})).unwrap();
    assert_eq!(p, MigrationParameters::default().with_downtime_limit_ms(50));
    // ... unknown ones (and Rust's field names) are refused.
    for bad in [json!({"downtime_limit_ms": 50}), json!({"x-bogus": 1})] {
        let e = serde_json::from_value::<MigrationParameters>(bad).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}

#[test]
fn capabilities_are_query_migrate_capabilities() {
    let caps = MigrationCapabilities::new()
        .with_return_path(true)
        .with_postcopy_ram(true);
    assert_eq!(
        to_json(&caps),
        json!([
            {"capability": "events", "state": false},
            {"capability": "postcopy-ram", "state": true},
            {"capability": "return-path", "state": true},
            {"capability": "pause-before-switchover", "state": false},
            {"capability": "switchover-ack", "state": false},
        ])
    );
    // A migrate-set-capabilities list, applied to the defaults.
    let back: MigrationCapabilities = serde_json::from_value(json!([
        {"capability": "pause-before-switchover", "state": true},
        {"capability": "events", "state": true},
    ]))
    .unwrap();
    assert_eq!(
        back,
        MigrationCapabilities::new()
            .with_pause_before_switchover(true)
            .with_events(true)
    );
    assert_eq!(
        serde_json::from_value::<MigrationCapabilities>(to_json(&caps)).unwrap(),
        caps
    );
    let e = serde_json::from_value::<MigrationCapabilities>(
        json!([{"capability": "xbzrle", "state": true}]),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown migration capability 'xbzrle'"),
        "{e}"
    );
}

fn ram() -> RamStats {
    RamStats::new(4096)
        .with_normal(3333)
        .with_duplicate(10)
        .with_normal_bytes(3333 * 4096)
        .with_dirty_sync_count(15)
        .with_dirty_pages_rate(120)
        .with_precopy_bytes(1_000_000)
        .with_downtime_bytes(20_000)
        .with_postcopy_requests(7)
}

#[test]
fn an_active_migration_is_a_query_migrate_reply() {
    let stats = MigrationStats::default()
        .with_status(MigrationStatus::Active)
        .with_total_time(Duration::from_millis(12345))
        .with_setup_time(Duration::from_millis(12))
        .with_expected_downtime(Duration::from_millis(250))
        .with_transferred(3720)
        .with_remaining(1053304)
        .with_total(1057024)
        .with_throughput_bps(125_000_000.0)
        .with_ram(
            ram().with_xbzrle(
                XbzrleStats::new(67108864)
                    .with_bytes(20971520)
                    .with_pages(2444343)
                    .with_cache_miss(2244)
                    .with_cache_miss_rate(0.125)
                    .with_encoding_rate(80.5)
                    .with_overflow(34434),
            ),
        );
    assert_eq!(
        to_json(&stats),
        json!({
            "status": "active",
            "total-time": 12345,
            "setup-time": 12,
            "expected-downtime": 250,
            "ram": {
                "transferred": 3720,
                "remaining": 1053304,
                "total": 1057024,
                "duplicate": 10,
                "normal": 3333,
                "normal-bytes": 13651968,
                "dirty-pages-rate": 120,
                "mbps": 1000.0,
                "dirty-sync-count": 15,
                "page-size": 4096,
                "precopy-bytes": 1000000,
                "downtime-bytes": 20000,
                "postcopy-bytes": 0,
                "postcopy-requests": 7
            },
            "xbzrle-cache": {
                "cache-size": 67108864,
                "bytes": 20971520,
                "pages": 2444343,
                "cache-miss": 2244,
                "cache-miss-rate": 0.125,
                "encoding-rate": 80.5,
                "overflow": 34434
            }
        })
    );
}

#[test]
fn each_status_shows_what_qemu_shows() {
    // Before any migration: {}.
    assert_eq!(to_json(&MigrationStats::default()), json!({}));
    // Setup, cancelled: the status only.
    for st in [MigrationStatus::Setup, MigrationStatus::Cancelled] {
        let s = MigrationStats::default()
            .with_status(st)
            .with_total_time(Duration::from_millis(5));
        assert_eq!(to_json(&s), json!({"status": st.as_str()}));
    }
    // Completed: downtime instead of expected-downtime.
    let done = MigrationStats::default()
        .with_status(MigrationStatus::Completed)
        .with_total_time(Duration::from_millis(900))
        .with_setup_time(Duration::from_millis(3))
        .with_downtime(Duration::from_millis(40))
        .with_expected_downtime(Duration::from_millis(99))
        .with_transferred(246)
        .with_total(246)
        .with_dirty_sync_count(2);
    assert_eq!(
        to_json(&done),
        json!({
            "status": "completed",
            "total-time": 900,
            "setup-time": 3,
            "downtime": 40,
            "ram": {"transferred": 246, "remaining": 0, "total": 246, "mbps": 0.0, "dirty-sync-count": 2}
        })
    );
    // Failed: the error text as error-desc.
    let failed = MigrationStats::default()
        .with_status(MigrationStatus::Failed)
        .with_error("transport: connection reset".to_string());
    assert_eq!(
        to_json(&failed),
        json!({"status": "failed", "error-desc": "transport: connection reset"})
    );
}
