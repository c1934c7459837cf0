//! The source side: the machine, booted, with its guest workload running; and
//! what the guest would read next from its keyboard controller.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vmstate_runtime::migration::MigrationUri;

use vmstate_devices::pckbd::I8042;

use super::{DemoError, DemoOptions};
use vmstate_devices::machine::{Guest, Machine, Workload};

/// Seed of the data the source guest boots with.
const BOOT_SEED: u64 = 0x1234_5678;
/// How long the guest runs before the migration starts.
const WARM_UP: Duration = Duration::from_millis(200);

/// The running source VM.
pub(super) struct Source {
    pub(super) machine: Machine,
    pub(super) guest: Guest,
}

impl Source {
    /// Boots the source machine (QEMU's pc RAM blocks) and starts its guest;
    /// returns after a warm-up. With a `disk` (see [`virtio_disk`]) the
    /// machine has the virtio devices, blk on that image.
    pub(super) fn start(opts: &DemoOptions, disk: Option<&Path>) -> Result<Source, DemoError> {
        let machine = Machine::demo_over(opts.ram_size, disk, opts.mem_path.as_deref())?;
        machine.boot(opts.used_percent, BOOT_SEED)?;
        let guest = Guest::start(
            &machine,
            Workload {
                dirty_pages_per_sec: opts.dirty_rate,
                keys_per_sec: opts.keys_per_sec,
                ..Workload::default()
            },
        )?;
        std::thread::sleep(WARM_UP);
        Ok(Source { machine, guest })
    }
}

/// The disk when the machine has virtio devices: not with `--postcopy` (the
/// devices' state loads before the RAM has arrived, and the destination has
/// no page-fault path for device reads of missing pages yet).
pub(super) fn virtio_disk<'a>(opts: &DemoOptions, disk: &'a Path) -> Option<&'a Path> {
    (!opts.postcopy).then_some(disk)
}

/// The virtio-blk disk image of a migration to or from `uri`: shared
/// storage both sides find from the address they meet at (next to a unix
/// socket or a file, in the temporary directory for TCP and exec).
pub(super) fn disk_for(uri: &MigrationUri) -> PathBuf {
    let name = |s: &str| {
        let s: String = s
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        std::env::temp_dir().join(format!("vmstate-demo-{s}.disk"))
    };
    match uri {
        MigrationUri::Unix(p) | MigrationUri::File(p) => {
            let mut s = p.clone().into_os_string();
            s.push(".disk");
            PathBuf::from(s)
        }
        other => name(&format!("{other:?}")),
    }
}

/// Bytes the controller holds for the guest, in the order port 0x60 would
/// deliver them (read on a copy: the device itself is not disturbed).
pub fn pending_bytes(dev: &I8042) -> Vec<u8> {
    let mut twin = dev.clone();
    let mut out = Vec::new();
    while twin.read_port(0x64) & 0x01 != 0 && out.len() < 64 {
        out.push(twin.read_port(0x60));
    }
    out
}
