//! `--qmp unix:PATH` / `--qmp tcp:127.0.0.1:PORT`: one side driven over QMP,
//! as a QEMU process is. A source without `--uri` boots its guest and waits
//! for `migrate`; a destination without `--incoming` (or with
//! `--incoming defer`) waits for `migrate-incoming`, as QEMU's
//! `-incoming defer`. Capabilities and parameters come from
//! `migrate-set-capabilities` / `migrate-set-parameters` (the flags give the
//! starting parameters); the process serves QMP until `quit` (or Ctrl-C) and
//! prints each migration's checksums and summary as it ends.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use vmstate_runtime::migration::{
    run_incoming_with, start_migration, Incoming, IncomingHooks, MigrationConfig, MigrationHandle,
    MigrationStats, MigrationStatus,
};
use vmstate_runtime::qmp::protocol::Dispatch;
use vmstate_runtime::qmp::{
    HostError, IncomingMigration, IncomingSetup, MigrationHost, Monitor, OutgoingSetup, QmpAddress,
    QmpServer, VmStart,
};
use vmstate_runtime::savevm::{Configuration, LoadOptions, QemuVersion, Registry};

use super::checksum::{machine_checksums, print_checksums};
use super::guest::Source;
use super::migrate::ram_config;
use super::options::Role;
use super::report::{self, human_bytes, peak_rss, DemoReport};
use super::{fail, DemoError, DemoOptions};
use vmstate_devices::machine::{Machine, MACHINE_TYPE};

/// What a host thread tells the main thread.
struct Note {
    text: String,
    report: Option<DemoReport>,
}

/// Runs one side under QMP until `quit` or Ctrl-C.
pub(super) fn run(opts: &DemoOptions, out: &mut dyn Write) -> Result<DemoReport, DemoError> {
    let t0 = Instant::now();
    let addr: QmpAddress = opts.qmp.as_deref().unwrap_or_default().parse().map_err(
        |e: vmstate_runtime::qmp::QmpError| DemoError::Failed(format!("--qmp: {}", e.desc)),
    )?;
    let (tx, rx) = mpsc::channel();
    let (monitor, start_with): (Monitor, Option<(&str, Value)>) = match opts.role {
        Role::Source => {
            // No virtio devices over QMP: the destination's machine is made at
            // `migrate-incoming`, with no disk image shared with this side.
            let source = Source::start(opts, None)?;
            let total = report::lock(&source.machine.ram, "source RAM")?.total_used();
            report::print_intro(opts, total, out);
            let host = SourceHost {
                opts: opts.clone(),
                source,
                tx,
                t0,
            };
            let m = Monitor::new(Box::new(host), VmStart::Running)?;
            (m, opts.uri.as_ref().map(|u| ("migrate", json!({"uri": u}))))
        }
        Role::Destination => {
            let _ = writeln!(
                out,
                "vmstate-rs live migration demo: destination\n\
                 \x20 guest RAM    {} ({:#x} bytes) in QEMU 7.2's pc RAM blocks + PC keyboard controller",
                human_bytes(opts.ram_size),
                opts.ram_size
            );
            let host = DestinationHost {
                opts: opts.clone(),
                tx,
                loaded: Arc::new(AtomicBool::new(false)),
                running: Arc::new(AtomicBool::new(false)),
                autostart: Arc::new(AtomicBool::new(true)),
                t0,
            };
            let m = Monitor::new(Box::new(host), VmStart::IncomingDefer)?;
            let start = opts
                .incoming
                .as_ref()
                .filter(|u| u.as_str() != "defer")
                .map(|u| ("migrate-incoming", json!({"uri": u})));
            (m, start)
        }
        Role::Both => return fail("--qmp goes with --role source or --role destination"),
    };
    // The migration parameters the flags ask for are the starting ones.
    let mut params = Map::new();
    params.insert("downtime-limit".into(), json!(opts.downtime_limit_ms));
    params.insert("max-bandwidth".into(), json!(opts.max_bandwidth));
    run_command(&monitor, "migrate-set-parameters", &Value::Object(params))?;
    let server = QmpServer::start(monitor.clone(), &addr)
        .map_err(|e| DemoError::Failed(format!("--qmp {addr}: {e}")))?;
    let _ = writeln!(
        out,
        "  QMP          {} (waiting for {}; `quit` ends this process)\n",
        server.address(),
        match (opts.role, &start_with) {
            (_, Some(_)) => "commands",
            (Role::Source, None) => "`migrate`",
            _ => "`migrate-incoming`",
        }
    );
    let _ = out.flush();
    if let Some((cmd, args)) = start_with {
        run_command(&monitor, cmd, &args)?;
    }
    let mut last: Option<DemoReport> = None;
    let mut last_failed = None;
    let mut take = |note: Note, out: &mut dyn Write| {
        let _ = out.write_all(note.text.as_bytes());
        let _ = out.flush();
        match note.report {
            Some(r) => {
                last_failed = None;
                last = Some(r);
            }
            None => last_failed = Some(note.text),
        }
    };
    loop {
        if monitor.quit_requested() {
            // What ended before `quit` is still told.
            while let Ok(note) = rx.try_recv() {
                take(note, out);
            }
            break;
        }
        if opts.interrupt.as_ref().is_some_and(|t| t.is_cancelled()) {
            // Ctrl-C: cancel what runs, then end.
            let _ = monitor.dispatch("migrate_cancel", &Map::new());
            drop(server);
            return Err(DemoError::Interrupted("QMP demo ended by Ctrl-C".into()));
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(note) => take(note, out),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // Give the reply to `quit` a moment to reach the client.
    std::thread::sleep(Duration::from_millis(100));
    server.shutdown();
    let _ = writeln!(out, "quit: ending (QMP command)");
    match (last, last_failed) {
        (_, Some(text)) => Err(DemoError::Failed(format!(
            "the last migration did not complete: {}",
            text.trim()
        ))),
        (Some(r), None) => Ok(r),
        (None, None) => {
            let mut r = DemoReport::new(opts.role, MigrationStats::default(), opts.pages());
            r.wall = t0.elapsed();
            Ok(r)
        }
    }
}

/// Runs a command as if a client sent it (the flags' starting values).
fn run_command(monitor: &Monitor, cmd: &str, args: &Value) -> Result<(), DemoError> {
    let empty = Map::new();
    let args = args.as_object().unwrap_or(&empty);
    match monitor.dispatch(cmd, args) {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => fail(format!("{cmd}: {}", e.desc)),
        None => fail(format!("{cmd}: no such command")),
    }
}

struct SourceHost {
    opts: DemoOptions,
    source: Source,
    tx: mpsc::Sender<Note>,
    t0: Instant,
}

impl SourceHost {
    /// The demo's options as the QMP settings of this migration say.
    fn options_for(&self, setup: &OutgoingSetup) -> DemoOptions {
        let mut o = self.opts.clone();
        o.postcopy = setup.caps.postcopy_ram;
        o.max_bandwidth = setup.params.max_bandwidth;
        o.downtime_limit_ms = setup.params.downtime_limit_ms;
        o.xbzrle_cache_size = setup
            .settings
            .capability("xbzrle")
            .then(|| setup.settings.parameter_u64("xbzrle-cache-size"))
            .flatten();
        o
    }
}

impl MigrationHost for SourceHost {
    fn start_migration(&mut self, setup: &OutgoingSetup) -> Result<MigrationHandle, HostError> {
        let o = self.options_for(setup);
        let m = &self.source.machine;
        let registry = if o.postcopy {
            m.postcopy_registry_with(ram_config(&o))?
        } else {
            m.registry_with(ram_config(&o))?
        };
        let config = MigrationConfig::new(setup.uri.clone())
            .with_machine(MACHINE_TYPE)
            .with_version(QemuVersion::V7_2)
            .with_params(setup.params.clone())
            .with_caps(setup.caps);
        Ok(start_migration(
            config,
            registry,
            self.source.guest.control(),
        )?)
    }

    fn migration_finished(
        &mut self,
        _registry: Registry,
        outcome: vmstate_runtime::Result<()>,
        stats: &MigrationStats,
    ) {
        let mut text = Vec::new();
        let mut report = DemoReport::new(Role::Source, stats.clone(), self.opts.pages());
        let completed = outcome.is_ok() && stats.status == MigrationStatus::Completed;
        if completed {
            if let Ok(sums) = machine_checksums(&self.source.machine) {
                report.source_checksums = sums;
                print_checksums("source", &report.source_checksums, &mut text);
            }
        }
        report.count_ram(&self.source.machine);
        let _ = report.count_guest(&self.source);
        report.peak_rss = peak_rss();
        report.wall = self.t0.elapsed();
        report::print_summary(&self.opts, &report, &mut text);
        match &outcome {
            Ok(()) => {
                let _ = writeln!(
                    text,
                    "completed: the guest is paused here (QMP status postmigrate) and runs on at \
                     the destination"
                );
            }
            Err(e) => {
                let _ = writeln!(
                    text,
                    "migration {}: {e}; the guest runs here again",
                    stats.status
                );
            }
        }
        let _ = self.tx.send(Note {
            text: String::from_utf8_lossy(&text).into_owned(),
            report: completed.then_some(report),
        });
    }

    fn start_incoming(&mut self, _setup: IncomingSetup) -> Result<IncomingMigration, HostError> {
        Err(HostError(
            "this process is a source (--role source): start a --role destination".into(),
        ))
    }

    fn is_running(&self) -> bool {
        self.source.guest.is_running()
    }

    fn stop(&mut self) -> Result<(), HostError> {
        Ok(self.source.guest.control().pause()?)
    }

    fn cont(&mut self) -> Result<(), HostError> {
        Ok(self.source.guest.control().resume()?)
    }

    fn extra_capabilities(&self) -> &[&'static str] {
        &["xbzrle"]
    }

    fn extra_parameters(&self) -> &[&'static str] {
        &["xbzrle-cache-size"]
    }
}

struct DestinationHost {
    opts: DemoOptions,
    tx: mpsc::Sender<Note>,
    /// The stream is in.
    loaded: Arc<AtomicBool>,
    /// The guest "runs" here (loaded, and not stopped).
    running: Arc<AtomicBool>,
    /// Run once loaded (QEMU: cleared by `stop` during `inmigrate`).
    autostart: Arc<AtomicBool>,
    t0: Instant,
}

impl MigrationHost for DestinationHost {
    fn start_migration(&mut self, _setup: &OutgoingSetup) -> Result<MigrationHandle, HostError> {
        Err(HostError(
            "this demo destination cannot migrate onwards (its guest has no workload)".into(),
        ))
    }

    // Field by field, not literals: the runtime's option structs become
    // #[non_exhaustive].
    #[allow(clippy::field_reassign_with_default)]
    fn start_incoming(&mut self, setup: IncomingSetup) -> Result<IncomingMigration, HostError> {
        let mut o = self.opts.clone();
        o.postcopy = setup.caps.postcopy_ram;
        let incoming = Incoming::listen(&setup.uri)?;
        let tcp_addr = incoming.local_tcp_addr();
        let machine = Machine::qemu_pc(o.ram_size)?;
        let mut reg = machine.registry_with(ram_config(&o))?;
        let stats = setup.stats.clone();
        let mut load = LoadOptions::default();
        load.version = QemuVersion::V7_2;
        load.configuration = Some(Configuration::new(MACHINE_TYPE));
        load.accept_timeout = o.accept_timeout;
        load.idle_timeout = o.idle_timeout;
        load.cancel = Some(setup.cancel.clone());
        let mut hooks = IncomingHooks::default();
        // Postcopy: the guest runs here from POSTCOPY_RUN on (RESUME then),
        // and a broken link waits for QMP migrate-recover.
        let (run_flag, run_auto) = (self.running.clone(), self.autostart.clone());
        hooks.on_postcopy_run = Some(Box::new(move || {
            if run_auto.load(Ordering::SeqCst) {
                run_flag.store(true, Ordering::SeqCst);
            }
            Ok(())
        }));
        hooks.on_postcopy_paused = Some(setup.recovery_hook());
        let (tx, loaded, running, autostart) = (
            self.tx.clone(),
            self.loaded.clone(),
            self.running.clone(),
            self.autostart.clone(),
        );
        let (opts, t0, uri, s2) = (o, self.t0, setup.uri.clone(), stats.clone());
        std::thread::Builder::new()
            .name("demo-incoming".into())
            .spawn(move || {
                let result = run_incoming_with(incoming, &mut reg, load, &s2, hooks);
                drop(reg);
                if let vmstate_runtime::migration::MigrationUri::Unix(p) = &uri {
                    let _ = std::fs::remove_file(p);
                }
                let mut text = Vec::new();
                let s = s2.snapshot();
                let mut report = DemoReport::new(Role::Destination, s.clone(), opts.pages());
                report.destination_status = Some(s.status);
                report.count_ram(&machine);
                report.peak_rss = peak_rss();
                report.wall = t0.elapsed();
                let ok = result.is_ok();
                match result {
                    Ok(()) => {
                        if let Ok(sums) = machine_checksums(&machine) {
                            report.destination_checksums = sums;
                            print_checksums(
                                "destination",
                                &report.destination_checksums,
                                &mut text,
                            );
                        }
                        let _ = writeln!(
                            text,
                            "\nIncoming migration completed: received {} ({} bytes), {} pages with \
                             data, {} zero pages\n\
                             completed: compare the checksums above with the source's",
                            human_bytes(s.transferred),
                            s.transferred,
                            report.normal_pages,
                            report.zero_pages
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(text, "incoming migration {}: {e}", s.status);
                    }
                }
                // The note first: whoever sees the guest run (RESUME, then
                // `quit`) finds it printed.
                let _ = tx.send(Note {
                    text: String::from_utf8_lossy(&text).into_owned(),
                    report: ok.then_some(report),
                });
                if ok {
                    loaded.store(true, Ordering::SeqCst);
                    if autostart.load(Ordering::SeqCst) {
                        running.store(true, Ordering::SeqCst);
                    }
                }
            })
            .map_err(|e| HostError(e.to_string()))?;
        Ok(IncomingMigration::new(stats).with_tcp_addr(tcp_addr))
    }

    fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    fn stop(&mut self) -> Result<(), HostError> {
        self.autostart.store(false, Ordering::SeqCst);
        self.running.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn cont(&mut self) -> Result<(), HostError> {
        if self.loaded.load(Ordering::SeqCst) {
            self.running.store(true, Ordering::SeqCst);
        } else {
            self.autostart.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}
