//! The runtime's `tracing` output, captured by a test layer: a migration has
//! its spans (migration per side, the phases, iterations, sections) and
//! events (status changes, dirty syncs, the convergence decision with its
//! numbers, the switchover), and a failed load traces its error.
// Config structs are built as `default()` plus fields: they are (or will be)
// `#[non_exhaustive]`, where struct literals do not compile.
#![allow(clippy::field_reassign_with_default)]

mod common;
use common::ram::{SharedMemory, SyntheticRam};
use common::vm::Vm;

use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use vmstate_runtime::migration::{
    run_incoming, start_migration_on, Connection, MigrationConfig, MigrationUri, SourceOptions,
    StatsHandle,
};
use vmstate_runtime::savevm::{Configuration, InstanceId, LoadOptions, QemuVersion, Registry};
use vmstate_runtime::VmState;

/// A span as it was opened, or an event: its name or message, its fields,
/// and the names of the spans it was in (outermost first).
#[derive(Debug, Clone)]
struct Record {
    kind: &'static str,
    name: String,
    fields: BTreeMap<String, String>,
    scope: Vec<String>,
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

/// Records every span and event (all levels) into a shared log.
struct Capture(Arc<Mutex<Vec<Record>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        let scope = ctx
            .span(id)
            .map(|s| {
                s.scope()
                    .from_root()
                    .map(|p| p.name().to_string())
                    .collect()
            })
            .unwrap_or_default();
        self.0.lock().unwrap().push(Record {
            kind: "span",
            name: attrs.metadata().name().to_string(),
            fields: f.0,
            scope,
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let scope = ctx
            .event_scope(event)
            .map(|s| s.from_root().map(|p| p.name().to_string()).collect())
            .unwrap_or_default();
        let name = f.0.remove("message").unwrap_or_default();
        self.0.lock().unwrap().push(Record {
            kind: "event",
            name,
            fields: f.0,
            scope,
        });
    }
}

/// The process-wide capture (the migration runs on threads of its own).
fn log() -> Arc<Mutex<Vec<Record>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<Record>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(log.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        log
    })
    .clone()
}

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "cpu", version = 1)]
struct Cpu {
    rip: u64,
}

const PAGES: usize = 64;
const PAGE: usize = 4096;

fn registry(mem: &SharedMemory) -> Registry {
    let mut reg = Registry::new();
    reg.register_savevm_live("ram", 0, 1, Box::new(SyntheticRam::new(mem.clone())))
        .unwrap();
    reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(Cpu { rip: 1 })))
        .unwrap();
    reg
}

/// Migrates over a socketpair to a destination expecting `dst_machine`
/// (without the cpu device when `dst_cpu` is false).
fn migrate(dst_machine: &'static str, dst_cpu: bool) {
    let (a, b) = UnixStream::pair().unwrap();
    let dst = thread::spawn(move || {
        let mem = SharedMemory::zeroed(PAGES, PAGE);
        let mut reg = if dst_cpu {
            registry(&mem)
        } else {
            let mut reg = Registry::new();
            reg.register_savevm_live("ram", 0, 1, Box::new(SyntheticRam::new(mem)))
                .unwrap();
            reg
        };
        let mut opts = LoadOptions::default();
        opts.version = QemuVersion::V7_2;
        opts.configuration = Some(Configuration::new(dst_machine));
        let conn = Connection::from_unix_stream(b).unwrap();
        run_incoming(conn.into(), &mut reg, opts, &StatsHandle::default())
    });
    let mut config = MigrationConfig::new(MigrationUri::Unix("/caller/owned".into()))
        .with_machine("pc-i440fx-7.2")
        .with_version(QemuVersion::V7_2);
    config.caps.return_path = true;
    config.params.downtime_limit_ms = 20;
    let mem = SharedMemory::new(PAGES, PAGE, |i| vec![i as u8; PAGE]);
    let handle = start_migration_on(
        Connection::from_unix_stream(a).unwrap(),
        config,
        registry(&mem),
        Box::new(Vm::default()),
        SourceOptions::default(),
    )
    .unwrap();
    let _ = handle.wait();
    let _ = dst.join().unwrap();
}

fn find<'a>(log: &'a [Record], kind: &str, name: &str) -> Vec<&'a Record> {
    log.iter()
        .filter(|r| r.kind == kind && r.name == name)
        .collect()
}

#[test]
fn a_migration_traces_its_spans_and_decisions_and_a_failed_load_its_error() {
    let log = log();
    migrate("pc-i440fx-7.2", true);
    let ok: Vec<Record> = std::mem::take(&mut *log.lock().unwrap());

    // Spans: one migration per side, the phases inside, iterations and sections.
    let migrations = find(&ok, "span", "migration");
    let sides: Vec<_> = migrations
        .iter()
        .map(|r| r.fields["side"].as_str())
        .collect();
    assert!(
        sides.contains(&"\"source\"") && sides.contains(&"\"destination\""),
        "{sides:?}"
    );
    let source = migrations
        .iter()
        .find(|r| r.fields["side"] == "\"source\"")
        .unwrap();
    assert_eq!(source.fields["uri"], "unix:/caller/owned");
    for phase in ["setup", "iterate", "complete", "accept", "header", "main"] {
        let spans = find(&ok, "span", phase);
        assert!(!spans.is_empty(), "no {phase} span");
        assert_eq!(
            spans[0].scope.first().map(String::as_str),
            Some("migration"),
            "{phase}"
        );
    }
    let iterations = find(&ok, "span", "iteration");
    assert!(!iterations.is_empty());
    assert!(iterations
        .iter()
        .all(|r| r.scope.ends_with(&["iterate".into(), "iteration".into()])));
    assert_eq!(iterations[0].fields["n"], "1");
    let sections = find(&ok, "span", "section");
    assert!(sections
        .iter()
        .any(|r| r.fields.get("idstr").is_some_and(|v| v == "ram")));
    assert!(
        sections
            .iter()
            .any(|r| r.scope.contains(&"main".to_string())),
        "load sections"
    );

    // Events: statuses, dirty syncs, the decision with its numbers, switchover.
    let statuses: Vec<_> = find(&ok, "event", "migration status")
        .iter()
        .filter(|r| !r.scope.is_empty())
        .map(|r| r.fields["status"].clone())
        .collect();
    for s in ["setup", "active", "completed"] {
        assert!(
            statuses.iter().filter(|x| *x == s).count() >= 2,
            "{s} on both sides: {statuses:?}"
        );
    }
    let syncs = find(&ok, "event", "dirty sync");
    assert!(!syncs.is_empty());
    assert!(syncs[0].fields.contains_key("pending") && syncs[0].fields["sync"] == "1");
    let decision = find(&ok, "event", "converged: switchover");
    assert_eq!(decision.len(), 1, "one decision");
    for k in [
        "pending",
        "threshold",
        "bandwidth_bps",
        "downtime_limit_ms",
        "iterations",
        "syncs",
    ] {
        assert!(decision[0].fields.contains_key(k), "decision lacks {k}");
    }
    assert_eq!(decision[0].fields["downtime_limit_ms"], "20");
    assert_eq!(find(&ok, "event", "switchover: VM stopped").len(), 1);
    let sent = find(&ok, "event", "switchover: stream sent");
    assert!(sent[0].fields.contains_key("downtime_ms"));
    assert!(find(&ok, "event", "load failed").is_empty());

    // A destination that expects another machine: its load error is traced,
    // in the destination's spans, and the source's failure too.
    migrate("pc-q35-7.2", true);
    let failed: Vec<Record> = std::mem::take(&mut *log.lock().unwrap());
    let header = find(&failed, "event", "load failed in the header");
    assert_eq!(header.len(), 1, "{failed:#?}");
    assert!(header[0].fields["error"].contains("q35"), "{:?}", header[0]);
    assert_eq!(header[0].scope, ["migration", "header"]);
    assert_eq!(find(&failed, "event", "incoming migration failed").len(), 1);
    assert!(!find(&failed, "event", "migration failed; the VM runs on here").is_empty());

    // A section the destination does not know: the loader's error, in the
    // main phase, names it.
    migrate("pc-i440fx-7.2", false);
    let failed: Vec<Record> = std::mem::take(&mut *log.lock().unwrap());
    let load = find(&failed, "event", "load failed");
    assert_eq!(load.len(), 1, "{failed:#?}");
    assert!(load[0].fields["error"].contains("cpu"), "{:?}", load[0]);
    assert_eq!(load[0].scope, ["migration", "main"]);
}
