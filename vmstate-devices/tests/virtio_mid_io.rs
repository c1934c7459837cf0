//! Mid-I/O live migration: the machine with virtio-net, -blk, -rng and
//! -balloon runs its guest (memory writes, block writes through an
//! asynchronous backend, frames through a loopback, entropy reads) while a
//! precopy migration goes over a unix socket in several passes. At
//! switchover block requests are in flight and frames wait in the transmit
//! ring; the destination's devices must then complete every request exactly
//! once, the shared disk image must hold exactly what the guest wrote, and
//! every frame must come back once, in order.

// The runtime's option structs are built field by field, never as literals
// (they are `#[non_exhaustive]`).
#![allow(clippy::field_reassign_with_default)]

use std::path::Path;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use vmstate_devices::machine::{Guest, Machine, Workload, RAM_BLOCK};
use vmstate_runtime::migration::{
    run_incoming, start_migration, Incoming, MigrationConfig, MigrationParameters, MigrationStatus,
    MigrationUri, StatsHandle,
};
use vmstate_runtime::savevm::{Configuration, LoadOptions, QemuVersion, TargetPage};

const RAM: u64 = 16 << 20;

fn machine(disk: &Path) -> Machine {
    Machine::qemu_pc(RAM).unwrap().with_virtio(disk).unwrap()
}

fn load_options() -> LoadOptions {
    let mut o = LoadOptions::default();
    o.version = QemuVersion::V7_2;
    o.configuration = Some(Configuration::new(vmstate_devices::machine::MACHINE_TYPE));
    o
}

/// `MigrationConfig` has no constructor on this branch's runtime yet: the
/// one literal of it lives here.
fn migration_config(uri: MigrationUri) -> MigrationConfig {
    let mut params = MigrationParameters::default();
    params.downtime_limit_ms = 30;
    // ~16 MiB of RAM at 24 MiB/s: several passes while the guest runs.
    params.max_bandwidth = 24 << 20;
    MigrationConfig::new(uri)
        .with_machine(vmstate_devices::machine::MACHINE_TYPE)
        .with_version(QemuVersion::V7_2)
        .with_params(params)
        .with_target_page(TargetPage::X86)
}

#[test]
fn live_migration_mid_io_completes_every_request_once_and_loses_no_frame() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.raw");
    let uri = MigrationUri::Unix(dir.path().join("mig.sock"));

    let dst = machine(&disk);
    let incoming = Incoming::listen(&uri).unwrap();
    let mut dst_reg = dst.registry().unwrap();
    let destination = thread::spawn(move || {
        run_incoming(
            incoming,
            &mut dst_reg,
            load_options(),
            &StatsHandle::default(),
        )
    });

    let src = machine(&disk);
    src.boot(40, 9).unwrap();
    let mut w = Workload::default();
    w.dirty_pages_per_sec = 3000;
    w.keys_per_sec = 10;
    let guest = Guest::start(&src, w).unwrap();
    thread::sleep(Duration::from_millis(150));

    let handle = start_migration(
        migration_config(uri),
        src.registry().unwrap(),
        guest.control(),
    )
    .unwrap();
    let stats = handle.stats();
    let (_reg, result) = handle.wait();
    result.unwrap();
    destination.join().unwrap().unwrap();
    let s = stats.snapshot();
    assert_eq!(s.status, MigrationStatus::Completed);
    assert!(s.iterations > 1, "several passes: {s:?}");
    assert!(!guest.is_running(), "the source stays paused");
    assert_eq!(guest.counters().virtio_errors.load(Ordering::Relaxed), 0);

    // The state at switchover: RAM and every virtio section alike.
    {
        let (a, b) = (src.ram.lock().unwrap(), dst.ram.lock().unwrap());
        let (a, b) = (a.get(RAM_BLOCK).unwrap(), b.get(RAM_BLOCK).unwrap());
        assert!(a.to_vec().unwrap() == b.to_vec().unwrap(), "pc.ram differs");
    }
    let sv = src.virtio.as_ref().unwrap();
    let dv = dst.virtio.as_ref().unwrap();
    let (sb, db) = (sv.section_bodies().unwrap(), dv.section_bodies().unwrap());
    for ((name, x), (_, y)) in sb.iter().zip(&db) {
        assert!(x == y, "{name} differs after the migration");
    }

    // The source's guest at switchover continues on the destination.
    let at_switchover = sv.guest.lock().unwrap().clone();
    assert!(
        at_switchover.counters.blk_submitted > 10,
        "{:?}",
        at_switchover.counters
    );
    assert!(
        at_switchover.counters.net_received > 10,
        "{:?}",
        at_switchover.counters
    );
    assert!(at_switchover.counters.rng_bytes > 0);
    let v = dst.virtio_resume(&at_switchover).unwrap();
    assert!(
        v.blk_in_flight > 0,
        "requests were in flight at switchover: {v:?}"
    );
    assert_eq!(v.blk_completed_on_destination, v.blk_in_flight, "{v:?}");
    assert!(v.blk_exactly_once, "{v:?}");
    assert!(v.disk_matches, "{v:?}");
    assert!(
        v.net_unsent > 0,
        "frames waited in the transmit ring: {v:?}"
    );
    assert!(v.net_intact, "{v:?}");
    assert_eq!(v.balloon_pages, 16);
    assert!(v.ok());
    // The source's devices did not complete the in-flight requests: the
    // source's guest still has them pending.
    assert_eq!(
        sv.blk.lock().unwrap().virtio.device.in_flight().len(),
        v.blk_in_flight
    );
}

/// A machine whose guest ran three ticks: requests in flight, frames waiting.
fn busy(disk: &Path) -> Machine {
    let m = machine(disk);
    m.boot(0, 1).unwrap();
    let running = std::sync::atomic::AtomicBool::new(true);
    for _ in 0..3 {
        m.virtio.as_ref().unwrap().guest_tick(&running).unwrap();
    }
    m
}

#[test]
fn a_lost_request_a_lost_frame_or_a_bad_disk_is_caught() {
    use vmstate_devices::virtio::VirtioDeviceModel;
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.raw");

    // Untouched, the checks pass.
    let m = busy(&disk);
    let g = m.virtio.as_ref().unwrap().guest.lock().unwrap().clone();
    let v = m.virtio_resume(&g).unwrap();
    assert!(v.ok() && v.blk_in_flight > 0 && v.net_unsent > 0, "{v:?}");

    // The device forgets its in-flight requests: they never come back.
    let m = busy(&disk);
    let dv = m.virtio.as_ref().unwrap();
    let g = dv.guest.lock().unwrap().clone();
    dv.blk.lock().unwrap().virtio.device.reset();
    let v = m.virtio_resume(&g).unwrap();
    assert!(!v.blk_exactly_once && !v.ok(), "{v:?}");

    // The frames waiting in the transmit ring are sent into the void.
    let m = busy(&disk);
    let dv = m.virtio.as_ref().unwrap();
    let g = dv.guest.lock().unwrap().clone();
    {
        let mut net = dv.net.lock().unwrap();
        net.virtio.queue_notify(vmstate_devices::virtio::net::TX);
        assert!(!net.virtio.device.take_transmitted().is_empty());
    }
    let v = m.virtio_resume(&g).unwrap();
    assert!(!v.net_intact && !v.ok(), "{v:?}");

    // A sector of the image changed behind the guest's back.
    let m = busy(&disk);
    let g = m.virtio.as_ref().unwrap().guest.lock().unwrap().clone();
    let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&[0xee; 512], 1000 * 512).unwrap();
    let v = m.virtio_resume(&g).unwrap();
    assert!(!v.disk_matches && !v.ok(), "{v:?}");
}
