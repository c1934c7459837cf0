//! Fuzz target `virtio_body`: byte 0 picks the device. A selector that is 3
//! modulo 4 picks virtio-balloon (v1, here); every other one goes to
//! `vmstate_fuzz::virtio_body` (virtio-blk, virtio-net, virtio-rng). Hostile
//! bodies must fail cleanly; a body that loads must save, and that save must
//! load into a fresh device and save to the same bytes.
#![no_main]

use vm_memory::{GuestAddress, GuestMemoryMmap};
use vmstate_devices::virtio::balloon::VirtioBalloonSection;
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{to_bytes, VmState};

/// Loads `body` into a fresh balloon (32 MiB of guest RAM, the fixtures'
/// size) and saves it again: `None` when it does not load.
fn balloon_load_save(
    mem: &GuestMemoryMmap<vm_memory::bitmap::AtomicBitmap>,
    body: &[u8],
) -> Option<Vec<u8>> {
    let mut dev = VirtioBalloonSection::new(mem.clone());
    dev.load(&mut Reader::new(body), 1).ok()?;
    Some(to_bytes(&dev).expect("a loaded virtio-balloon saves"))
}

fn balloon(body: &[u8]) {
    static MEM: std::sync::OnceLock<GuestMemoryMmap<vm_memory::bitmap::AtomicBitmap>> =
        std::sync::OnceLock::new();
    let mem = MEM.get_or_init(|| {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 32 << 20)]).expect("guest memory")
    });
    let Some(first) = balloon_load_save(mem, body) else {
        return;
    };
    let second = balloon_load_save(mem, &first).expect("our own save of a loaded body loads");
    assert_eq!(
        first, second,
        "virtio-balloon: load, save, load, save is not stable"
    );
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((&sel, body)) if sel % 4 == 3 => balloon(body),
        _ => vmstate_fuzz::virtio_body(data),
    }
});
