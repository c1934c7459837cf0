//! virtio-rng with a host entropy source: every device-writable buffer the
//! driver posts is filled from the source (by default `/dev/urandom`).
//! Nothing device-specific migrates: the section `<pci-path>/virtio-rng`
//! (version 1) is the "virtio" field alone ([`VirtioRngSection`]).

use std::fs::File;
use std::io::{self, Read};

use virtio_bindings::virtio_config::{
    VIRTIO_F_ANY_LAYOUT, VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::QueueT;
use vmstate_runtime::VmState;

use super::core::{feature, VirtioCore};
use super::device::{DeviceContext, VirtioDeviceModel, VirtioPciDevice};
use super::element::Element;
use super::pci::{PciIdentity, VirtioPci};
use super::GuestMem;

/// QEMU's virtio-rng queue size.
pub const QUEUE_SIZE: u16 = 8;

/// Features the device offers (transport features only).
pub const HOST_FEATURES: u64 = feature(VIRTIO_F_NOTIFY_ON_EMPTY)
    | feature(VIRTIO_F_ANY_LAYOUT)
    | feature(VIRTIO_RING_F_INDIRECT_DESC)
    | feature(VIRTIO_RING_F_EVENT_IDX)
    | feature(VIRTIO_F_VERSION_1);

/// virtio-rng-pci on a 7.2 machine: 2 MSI-X vectors.
pub const PCI_IDENTITY: PciIdentity = PciIdentity {
    virtio_id: 4,
    pci_device_id: 0x1005,
    class: 0x00ff,
    nvectors: 2,
};

/// The entropy device model.
#[derive(Debug)]
pub struct VirtioRng {
    source: File,
    delivered: u64,
}

impl VirtioRng {
    /// A device reading entropy from `source`.
    pub fn new(source: File) -> Self {
        VirtioRng {
            source,
            delivered: 0,
        }
    }

    /// A device reading `/dev/urandom`.
    pub fn urandom() -> io::Result<Self> {
        Ok(Self::new(File::open("/dev/urandom")?))
    }

    /// Bytes handed to the guest so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    fn fill(&mut self, mem: &GuestMem, e: &Element) -> u32 {
        let want = e.in_len().min(u64::from(u32::MAX)) as usize;
        let mut buf = vec![0u8; want];
        let mut got = 0;
        while got < want {
            match self.source.read(&mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        if e.write_at(mem, 0, &buf[..got]).is_err() {
            return 0;
        }
        self.delivered += got as u64;
        got as u32
    }
}

impl VirtioDeviceModel for VirtioRng {
    fn read_config(&self, _config: &mut [u8]) {}

    fn queue_notify(&mut self, ctx: &mut DeviceContext<'_>, queue: usize) {
        while let Some(chain) = ctx.core.queues[queue]
            .ring_mut()
            .pop_descriptor_chain(ctx.mem)
        {
            ctx.core.queues[queue].took();
            let e = Element::from_chain(chain);
            let len = self.fill(ctx.mem, &e);
            if let Ok(true) = ctx.core.queues[queue].complete(ctx.mem, queue, e.head as u16, len) {
                ctx.notify_queue(queue);
            }
        }
    }

    fn reset(&mut self) {}
}

/// The "virtio-rng" section body (version 1): one field "virtio".
#[derive(VmState, Debug)]
#[vmstate(name = "virtio-rng", version = 1, minimum_version = 1)]
pub struct VirtioRngSection {
    /// The device with its transport.
    pub virtio: VirtioPciDevice<VirtioRng>,
}

impl VirtioRngSection {
    /// A freshly realized virtio-rng-pci reading `source`, its ring in `mem`.
    pub fn new(source: File, mem: GuestMem) -> Self {
        let core = VirtioCore::new(4, HOST_FEATURES, 0, &[QUEUE_SIZE]);
        let transport = VirtioPci::new(PCI_IDENTITY, 1);
        VirtioRngSection {
            virtio: VirtioPciDevice::new(core, transport, VirtioRng::new(source), mem),
        }
    }
}
