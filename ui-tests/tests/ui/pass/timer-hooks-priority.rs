//! `timer`, the four hooks and `priority`.
use std::cell::Cell;

use vmstate_runtime::{from_bytes, to_bytes, Hooks, MigrationPriority, VmState};

#[derive(VmState, Default, Debug)]
#[vmstate(
    name = "hpet",
    version = 2,
    minimum_version = 1,
    priority = Iommu,
    pre_save = hpet_pre_save,
    post_save = hpet_post_save,
    pre_load = hpet_pre_load,
    post_load = hpet_post_load
)]
struct Hpet {
    config: u64,
    #[vmstate(timer)]
    qemu_timer: Option<u64>,
    #[vmstate(skip)]
    saves: Cell<u32>,
    #[vmstate(skip)]
    loaded_from: u32,
}

fn hpet_pre_save(s: &Hpet) -> Result<(), String> {
    if s.config == u64::MAX {
        return Err("config register not latched".into());
    }
    s.saves.set(s.saves.get() + 1);
    Ok(())
}

fn hpet_post_save(s: &Hpet) -> Result<(), &'static str> {
    s.saves.set(s.saves.get() + 10);
    Ok(())
}

fn hpet_pre_load(s: &mut Hpet) -> Result<(), vmstate_runtime::Error> {
    s.loaded_from = u32::MAX;
    Ok(())
}

fn hpet_post_load(s: &mut Hpet, version_id: u32) -> Result<(), String> {
    s.loaded_from = version_id;
    Ok(())
}

fn main() {
    let hpet = Hpet {
        config: 3,
        qemu_timer: Some(1_000_000),
        ..Default::default()
    };
    let bytes = to_bytes(&hpet).unwrap();
    assert_eq!(hpet.saves.get(), 11);
    assert_eq!(&bytes[8..], 1_000_000u64.to_be_bytes());
    let back = from_bytes::<Hpet>(&bytes, 1).unwrap();
    assert_eq!(
        (back.config, back.qemu_timer, back.loaded_from),
        (3, Some(1_000_000), 1)
    );

    // A disarmed timer is all ones.
    let idle = Hpet {
        config: 3,
        ..Default::default()
    };
    let bytes = to_bytes(&idle).unwrap();
    assert_eq!(&bytes[8..], [0xff; 8]);
    assert_eq!(from_bytes::<Hpet>(&bytes, 2).unwrap().qemu_timer, None);

    // A failing pre_save stops the save.
    let broken = Hpet {
        config: u64::MAX,
        ..Default::default()
    };
    assert!(to_bytes(&broken).is_err());

    let d = Hpet::DESCRIPTION;
    assert_eq!(d.priority, MigrationPriority::Iommu);
    assert_eq!(
        d.hooks,
        Hooks {
            pre_save: true,
            post_save: true,
            pre_load: true,
            post_load: true
        }
    );
}
