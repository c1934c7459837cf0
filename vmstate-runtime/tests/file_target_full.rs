//! A `file:` migration target that runs out of space: a 512 KiB tmpfs (when
//! running as root, which CI does) and `/dev/full` (always, every write fails
//! with ENOSPC). The source reports the I/O error (ENOSPC) naming the file,
//! its VM keeps running with RAM and devices unchanged, and the partial file
//! is removed (a regular file only: `/dev/full` stays).

mod common;
use common::ram::{SharedMemory, SyntheticRam};
use common::vm::{Vm, VmLog};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use vmstate_runtime::migration::{
    run_incoming, start_migration, Incoming, MigrationConfig, MigrationParameters, MigrationStatus,
    MigrationUri, StatsHandle,
};
use vmstate_runtime::savevm::{Configuration, InstanceId, LoadOptions, Registry};
use vmstate_runtime::{Error, ErrorKind, VmState};

const PAGE: usize = 4096;
/// 1 MiB of guest RAM: twice what the small file system holds.
const PAGES: usize = 256;
/// No space left on device.
const ENOSPC: i32 = 28;

#[derive(VmState, Default, Debug, Clone, PartialEq)]
#[vmstate(name = "cpu", version = 1)]
struct Cpu {
    rip: u64,
}

fn pattern(i: usize) -> Vec<u8> {
    (0..PAGE)
        .map(|b| (i as u8) ^ (b as u8).rotate_left(3))
        .collect()
}

/// A tmpfs of 512 KiB, unmounted (and its directory removed) on drop.
struct SmallFs {
    dir: PathBuf,
}

impl SmallFs {
    /// Mounts one, or says why it cannot.
    fn mount() -> Result<SmallFs, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("not running as root".into());
        }
        let dir = std::env::temp_dir().join(format!("vmstate-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallFs { dir })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Migrates a booted VM to `file:path`; checks the failure and the VM, and
/// returns the error.
fn migrate_to_full(path: &Path) -> Error {
    let mem = SharedMemory::new(PAGES, PAGE, pattern);
    let cpu = Arc::new(Mutex::new(Cpu { rip: 0x1000 }));
    let log = Arc::new(VmLog::default());
    let mut reg = Registry::new();
    reg.register_savevm_live(
        "ram",
        0,
        1,
        Box::new(SyntheticRam::new(mem.clone()).burst(16)),
    )
    .unwrap();
    reg.vmstate_register(InstanceId::Any, cpu.clone()).unwrap();
    let handle = start_migration(
        MigrationConfig::new(MigrationUri::File(path.to_path_buf()))
            .with_machine("pc-i440fx-7.2")
            .with_params(
                MigrationParameters::default()
                    .with_downtime_limit_ms(0)
                    .with_max_bandwidth(0),
            ),
        reg,
        Box::new(Vm(log.clone())),
    )
    .unwrap();
    let stats = handle.stats();
    let e = handle.wait().1.unwrap_err();
    let s = stats.snapshot();
    assert_eq!(s.status, MigrationStatus::Failed, "{e}");
    assert_eq!(s.error.as_deref(), Some(e.to_string().as_str()));
    let ErrorKind::Io(io) = e.kind() else {
        panic!("an I/O error: {e}");
    };
    assert_eq!(io.kind(), std::io::ErrorKind::StorageFull, "{e}");
    // The OS error (ENOSPC) is the named error's source.
    let os = io
        .get_ref()
        .and_then(|named| named.source())
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(|os| os.raw_os_error());
    assert_eq!(os, Some(ENOSPC), "an ENOSPC write error: {e}");
    assert!(
        e.to_string().contains(&path.display().to_string()),
        "the error names the file: {e}"
    );
    assert!(log.running(), "the source VM runs");
    assert_eq!(log.pauses(), log.resumes(), "every pause was undone");
    assert!(
        mem.pages()
            .iter()
            .enumerate()
            .all(|(i, p)| *p == pattern(i)),
        "source RAM unchanged"
    );
    assert_eq!(cpu.lock().unwrap().rip, 0x1000, "source cpu unchanged");
    e
}

#[test]
fn a_full_file_system_fails_the_migration_and_removes_the_partial_file() {
    let fs = match SmallFs::mount() {
        Ok(fs) => fs,
        Err(why) => {
            println!("skipped: no small tmpfs ({why}); /dev/full covers ENOSPC");
            return;
        }
    };
    let path = fs.dir.join("vm.mig");
    let e = migrate_to_full(&path);
    eprintln!("tmpfs full: {e}");
    // A partial stream is no snapshot: it is removed (and the space freed).
    assert!(!path.exists(), "the partial file was removed");
}

#[test]
fn dev_full_fails_the_migration_and_stays() {
    let path = Path::new("/dev/full");
    if !path.exists() {
        println!("skipped: no /dev/full");
        return;
    }
    let e = migrate_to_full(path);
    eprintln!("/dev/full: {e}");
    // Only a regular file the migration created is removed.
    assert!(path.exists(), "/dev/full is not removed");
}

/// A source VM's registry over fresh memory in the pattern.
fn booted() -> (Registry, SharedMemory, Arc<VmLog>) {
    let mem = SharedMemory::new(PAGES, PAGE, pattern);
    let mut reg = Registry::new();
    reg.register_savevm_live(
        "ram",
        0,
        1,
        Box::new(SyntheticRam::new(mem.clone()).burst(16)),
    )
    .unwrap();
    reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(Cpu { rip: 7 })))
        .unwrap();
    (reg, mem, Arc::new(VmLog::default()))
}

fn file_config(path: &Path, max_bandwidth: u64) -> MigrationConfig {
    MigrationConfig::new(MigrationUri::File(path.to_path_buf()))
        .with_machine("pc-i440fx-7.2")
        .with_params(
            MigrationParameters::default()
                .with_downtime_limit_ms(0)
                .with_max_bandwidth(max_bandwidth),
        )
}

#[test]
fn a_complete_file_stays_and_loads() {
    let path = std::env::temp_dir().join(format!("vmstate-ok-{}.mig", std::process::id()));
    let (reg, mem, log) = booted();
    let handle = start_migration(file_config(&path, 0), reg, Box::new(Vm(log))).unwrap();
    handle.wait().1.unwrap();
    assert!(path.exists(), "a complete stream is kept");
    let dst = SharedMemory::zeroed(PAGES, PAGE);
    let mut reg = Registry::new();
    reg.register_savevm_live("ram", 0, 1, Box::new(SyntheticRam::new(dst.clone())))
        .unwrap();
    reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(Cpu::default())))
        .unwrap();
    let incoming = Incoming::listen(&MigrationUri::File(path.clone())).unwrap();
    run_incoming(
        incoming,
        &mut reg,
        LoadOptions::default().with_configuration(Configuration::new("pc-i440fx-7.2")),
        &StatsHandle::default(),
    )
    .unwrap();
    assert!(dst.pages() == mem.pages());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_cancelled_file_migration_removes_the_partial_file() {
    let path = std::env::temp_dir().join(format!("vmstate-cancel-{}.mig", std::process::id()));
    let (reg, _mem, log) = booted();
    // 256 KiB/s: the 1 MiB stream is far from done at the cancel.
    let handle = start_migration(
        file_config(&path, 256 * 1024),
        reg,
        Box::new(Vm(log.clone())),
    )
    .unwrap();
    let stats = handle.stats();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while stats.snapshot().transferred == 0 {
        assert!(std::time::Instant::now() < deadline, "nothing was written");
        std::thread::yield_now();
    }
    assert!(path.exists(), "the file is being written");
    handle.cancel();
    let e = handle.wait().1.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Cancelled { .. }), "{e}");
    assert!(log.running());
    assert!(!path.exists(), "the partial file was removed");
}
