//! Switchover-ack (QEMU 10.x): the source does not switch over until every
//! destination handler that asked for it has approved; SWITCHOVER_START reaches
//! the destination handlers; the 7.2 dialect refuses the capability.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use vmstate_runtime::migration::{
    run_incoming_with, start_migration, Incoming, IncomingHooks, MigrationCapabilities,
    MigrationConfig, MigrationParameters, MigrationStatus, MigrationUri, StatsHandle, VmControl,
};
use vmstate_runtime::savevm::{
    Configuration, LoadOptions, QemuVersion, Registry, SaveVmHandlers, SectionReader,
    SectionWriter, SwitchoverApprover,
};
use vmstate_runtime::Result;

/// A device with a one-byte FULL section; on the destination it may demand to
/// approve the switchover, and records SWITCHOVER_START.
#[derive(Clone, Default)]
struct Gate {
    needs_ack: bool,
    approver: Arc<Mutex<Option<SwitchoverApprover>>>,
    switchover_started: Arc<AtomicBool>,
    value: Arc<Mutex<u8>>,
}

impl SaveVmHandlers for Gate {
    fn has_full_section(&self) -> bool {
        true
    }
    fn save_state(&mut self, w: &mut SectionWriter) -> Result<()> {
        w.write_u8(*self.value.lock().unwrap())
    }
    fn load_state(&mut self, r: &mut SectionReader, _: u32) -> Result<()> {
        *self.value.lock().unwrap() = r.read_u8()?;
        Ok(())
    }
    fn switchover_ack_needed(&self) -> bool {
        self.needs_ack
    }
    fn set_switchover_approver(&mut self, approver: SwitchoverApprover) {
        *self.approver.lock().unwrap() = Some(approver);
    }
    fn switchover_start(&mut self) -> Result<()> {
        self.switchover_started.store(true, Ordering::SeqCst);
        Ok(())
    }
}

struct NopVm;
impl VmControl for NopVm {
    fn pause(&mut self) -> Result<()> {
        Ok(())
    }
    fn resume(&mut self) -> Result<()> {
        Ok(())
    }
}

fn config(path: std::path::PathBuf, version: QemuVersion) -> MigrationConfig {
    MigrationConfig {
        uri: MigrationUri::Unix(path),
        machine: "pc-i440fx-10.2".into(),
        version,
        params: MigrationParameters::default(),
        caps: MigrationCapabilities {
            return_path: true,
            switchover_ack: true,
            ..Default::default()
        },
    }
}

fn run(needs_ack: bool) {
    let path = std::env::temp_dir().join(format!(
        "vmstate-ack-{}-{needs_ack}.sock",
        std::process::id()
    ));
    let incoming = Incoming::listen(&MigrationUri::Unix(path.clone())).unwrap();
    let dst_gate = Gate {
        needs_ack,
        ..Default::default()
    };
    let dg = dst_gate.clone();
    let dst = thread::spawn(move || {
        let mut reg = Registry::new();
        reg.register_savevm_live("gate", 0, 1, Box::new(dg))
            .unwrap();
        run_incoming_with(
            incoming,
            &mut reg,
            LoadOptions {
                version: QemuVersion::V10,
                configuration: Some(Configuration::new("pc-i440fx-10.2")),
            },
            &StatsHandle::default(),
            IncomingHooks {
                switchover_ack: true,
                ..Default::default()
            },
        )
    });
    let src_gate = Gate::default();
    *src_gate.value.lock().unwrap() = 0x5a;
    let mut reg = Registry::new();
    reg.register_savevm_live("gate", 0, 1, Box::new(src_gate))
        .unwrap();
    let handle = start_migration(config(path, QemuVersion::V10), reg, Box::new(NopVm)).unwrap();
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
    assert_eq!(*dst_gate.value.lock().unwrap(), 0x5a);
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
        Box::new(NopVm),
    )
    .unwrap_err();
    assert!(e.to_string().contains("10.x"), "{e}");
}
