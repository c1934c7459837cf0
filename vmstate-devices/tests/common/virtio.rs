//! virtio test support: guest memory, a disk file, a virtio-blk device, the
//! virtio-blk body of the QEMU fixture, and the library's guest driver.

use std::fs::File;

use vm_memory::GuestAddress;
use vmstate_devices::virtio::blk::VirtioBlkSection;
use vmstate_devices::virtio::GuestMem;

use super::fixtures::fixture;
use super::sections::{body_to_footer, find_full_section};

/// Guest RAM size of the fixtures (`-m 32`).
pub const MEM_SIZE: usize = 32 << 20;

/// Zeroed guest memory of `size` bytes at GPA 0.
pub fn guest_mem(size: usize) -> GuestMem {
    GuestMem::from_ranges(&[(GuestAddress(0), size)]).expect("guest memory")
}

/// A temporary disk of `len` bytes, filled with `fill`.
pub fn disk(len: usize, fill: u8) -> File {
    use std::io::Write;
    let mut f = tempfile::tempfile().expect("temp disk");
    if fill == 0 {
        f.set_len(len as u64).expect("size disk");
    } else {
        f.write_all(&vec![fill; len]).expect("fill disk");
    }
    f
}

/// A fresh virtio-blk-pci over a copy-free handle of `file`.
pub fn blk(file: &File, mem: &GuestMem) -> VirtioBlkSection {
    VirtioBlkSection::new(
        file.try_clone().expect("dup disk"),
        "vmstate-rs",
        mem.clone(),
    )
    .expect("blk")
}

/// The virtio-blk section body of pc-virtio-blk.mig (version 2).
pub fn qemu_blk_body() -> Vec<u8> {
    let s = fixture("pc-virtio-blk.mig");
    let h = find_full_section(&s, "0000:00:02.0/virtio-blk");
    assert_eq!((h.instance_id, h.version_id), (0, 2));
    body_to_footer(&s, &h).to_vec()
}

/// The guest driver is the library's ([`vmstate_devices::virtio::driver`]).
#[allow(unused_imports)]
pub use vmstate_devices::virtio::driver::blk::BlkDriver;
#[allow(unused_imports)]
pub use vmstate_devices::virtio::driver::{
    RingLayout, SplitRing, F_EVENT_IDX, F_INDIRECT, F_VERSION_1,
};

/// Buffer slot of the tests' bare rings.
pub const SLOT: u64 = 4096;

/// A bare driver ring (the test programs the device's registers itself).
pub fn ring(layout: RingLayout, buf_base: u64) -> SplitRing {
    SplitRing::new(layout, buf_base, SLOT)
}

/// [`BlkDriver::init`] on a test device.
pub fn init_blk(
    dev: &mut VirtioBlkSection,
    features: u64,
    ring: RingLayout,
    buf_base: u64,
) -> BlkDriver {
    BlkDriver::init(&mut dev.virtio, features, ring, buf_base).expect("blk driver init")
}
