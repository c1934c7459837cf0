//! Switchover-ack (QEMU 10.x): the source does not switch over until every
//! destination handler that asked for it has approved; SWITCHOVER_START reaches
//! the destination handlers; the 7.2 dialect refuses the capability.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use vmstate_runtime::migration::{
    run_incoming_with, start_migration, Incoming, IncomingHooks, MigrationCapabilities,
    MigrationConfig, MigrationStatus, MigrationUri, StatsHandle,
};
use vmstate_runtime::savevm::{
    Configuration, LoadOptions, QemuVersion, Registry, SwitchoverApprover,
};
use vmstate_runtime::VmState;

mod common;
use common::device::ObservedDevice;
use common::vm::Vm;

/// The one device of this test: a one-byte FULL section.
#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "gate", version = 1)]
struct Byte {
    value: u8,
}

/// What the destination device records: the approver it was handed and
/// whether SWITCHOVER_START arrived.
#[derive(Clone, Default)]
struct Observed {
    device: Arc<Mutex<Byte>>,
    approver: Arc<Mutex<Option<SwitchoverApprover>>>,
    switchover_started: Arc<AtomicBool>,
}

fn config(path: std::path::PathBuf, version: QemuVersion) -> MigrationConfig {
    MigrationConfig::new(MigrationUri::Unix(path))
        .with_machine("pc-i440fx-10.2")
        .with_version(version)
        .with_caps(
            MigrationCapabilities::default()
                .with_return_path(true)
                .with_switchover_ack(true),
        )
}

fn run(needs_ack: bool) {
    let path = std::env::temp_dir().join(format!(
        "vmstate-ack-{}-{needs_ack}.sock",
        std::process::id()
    ));
    let incoming = Incoming::listen(&MigrationUri::Unix(path.clone())).unwrap();
    let dst_gate = Observed::default();
    let mut dg = ObservedDevice::new(dst_gate.device.clone())
        .on_switchover_start(dst_gate.switchover_started.clone());
    if needs_ack {
        // The destination device demands to approve the switchover.
        dg = dg.switchover_ack(dst_gate.approver.clone());
    }
    let dst = thread::spawn(move || {
        let mut reg = Registry::new();
        reg.register_savevm_live("gate", 0, 1, Box::new(dg))
            .unwrap();
        run_incoming_with(
            incoming,
            &mut reg,
            LoadOptions::default()
                .with_version(QemuVersion::V10)
                .with_configuration(Configuration::new("pc-i440fx-10.2")),
            &StatsHandle::default(),
            IncomingHooks::default().with_switchover_ack(true),
        )
    });
    let src_gate = ObservedDevice::new(Arc::new(Mutex::new(Byte { value: 0x5a })));
    let mut reg = Registry::new();
    reg.register_savevm_live("gate", 0, 1, Box::new(src_gate))
        .unwrap();
    let handle =
        start_migration(config(path, QemuVersion::V10), reg, Box::<Vm>::default()).unwrap();
    let stats = handle.stats();
    if needs_ack {
        // Nothing to send, yet no switchover without the approval.
        thread::sleep(Duration::from_millis(150));
        assert_eq!(stats.snapshot().status, MigrationStatus::Active);
        let approver = dst_gate
            .approver
            .lock()
            .unwrap()
            .clone()
            .expect("approver handed out");
        assert_eq!(approver.outstanding(), 1);
        approver.approve().unwrap();
        assert!(approver.approve().is_err(), "a second approval is refused");
    }
    let (_, r) = handle.wait();
    r.unwrap();
    assert_eq!(stats.snapshot().status, MigrationStatus::Completed);
    dst.join().unwrap().unwrap();
    assert_eq!(dst_gate.device.lock().unwrap().value, 0x5a);
    assert!(dst_gate.switchover_started.load(Ordering::SeqCst));
}

#[test]
fn source_waits_for_the_destination_approval() {
    run(true);
}

#[test]
fn no_handler_needing_ack_means_immediate_ack() {
    run(false);
}

#[test]
fn qemu_7_2_dialect_refuses_switchover_ack() {
    let e = start_migration(
        config("/nonexistent.sock".into(), QemuVersion::V7_2),
        Registry::new(),
        Box::<Vm>::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("10.x"), "{e}");
}
