//! A virtio device on the PCI transport: the three layers composed (core,
//! transport, device model) and the guest-visible operations that reach them.
//! Its migration ([`super::migration`]) is the "virtio" field of the device's
//! section, in `virtio_save` / `virtio_load` order.

use bytes::{Buf, BufMut};
use virtio_bindings::virtio_config::VIRTIO_CONFIG_S_DRIVER_OK;
use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::Result;

use super::core::{VirtioCore, ISR_CONFIG, ISR_QUEUE};
use super::pci::VirtioPci;
use super::GuestMem;

/// What a virtio device model (blk, net, rng, ...) provides to the core and
/// the transport.
pub trait VirtioDeviceModel {
    /// Refreshes the config-space cache from the device (QEMU `get_config`).
    fn read_config(&self, config: &mut [u8]);

    /// The driver wrote config bytes (QEMU `set_config`); `core` gives the
    /// negotiated features. Default: read-only.
    fn write_config(&mut self, _core: &VirtioCore, _offset: usize, _data: &[u8]) {}

    /// The driver kicked queue `queue`.
    fn queue_notify(&mut self, ctx: &mut DeviceContext<'_>, queue: usize);

    /// Device reset.
    fn reset(&mut self);

    /// Wire part E: the device's own stream data (QEMU `vdc->save`).
    fn save_device<B: BufMut>(&self, _core: &VirtioCore, _w: &mut Writer<B>) -> Result<()> {
        Ok(())
    }

    /// Loads wire part E. `core` has parts B–D loaded (not yet the features).
    fn load_device<B: Buf>(
        &mut self,
        _core: &VirtioCore,
        _mem: &GuestMem,
        _r: &mut Reader<B>,
    ) -> Result<()> {
        Ok(())
    }

    /// After the whole "virtio" body loaded (QEMU's device post_load work).
    fn post_load(&mut self, _core: &VirtioCore) -> Result<()> {
        Ok(())
    }
}

/// What a device model may touch while handling a kick: the core (queues,
/// ISR), the transport (interrupts) and guest memory.
pub struct DeviceContext<'a> {
    /// The core state.
    pub core: &'a mut VirtioCore,
    /// The transport.
    pub transport: &'a mut VirtioPci,
    /// Guest memory.
    pub mem: &'a GuestMem,
}

impl DeviceContext<'_> {
    /// Signals the driver that queue `queue` was used.
    pub fn notify_queue(&mut self, queue: usize) {
        let vector = self.core.queues[queue].vector;
        self.core.isr |= ISR_QUEUE;
        self.transport.notify(vector);
    }
}

/// A virtio device behind a virtio-pci proxy.
#[derive(Debug)]
pub struct VirtioPciDevice<D> {
    /// Core layer.
    pub core: VirtioCore,
    /// Transport layer.
    pub transport: VirtioPci,
    /// Device layer.
    pub device: D,
    /// Guest memory the rings and buffers live in.
    pub mem: GuestMem,
    /// QEMU's `migrate-extra` proxy property (on for 7.2 machines): send
    /// "virtio/extra_state".
    pub migrate_extra: bool,
}

impl<D: VirtioDeviceModel> VirtioPciDevice<D> {
    /// Composes the three layers.
    pub fn new(core: VirtioCore, transport: VirtioPci, device: D, mem: GuestMem) -> Self {
        VirtioPciDevice {
            core,
            transport,
            device,
            mem,
            migrate_extra: true,
        }
    }

    /// A read of the modern common-config region (BAR4 + 0x0000).
    pub fn common_read(&self, offset: u64) -> u32 {
        self.transport.common_read(&self.core, offset)
    }

    /// A write to the modern common-config region.
    pub fn common_write(&mut self, offset: u64, value: u32) {
        if self.transport.common_write(&mut self.core, offset, value) {
            self.device.reset();
        }
    }

    /// A read of the ISR region (BAR4 + 0x1000): read-to-clear.
    pub fn isr_read(&mut self) -> u8 {
        self.transport.read_isr(&mut self.core)
    }

    /// A read of device config (BAR4 + 0x2000): refreshes the cache first,
    /// as QEMU does, so the migrated cache is what the driver last saw.
    pub fn config_read(&mut self, offset: usize, out: &mut [u8]) {
        self.device.read_config(&mut self.core.config);
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.core.config.get(offset + i).copied().unwrap_or(0);
        }
    }

    /// A write of device config.
    pub fn config_write(&mut self, offset: usize, data: &[u8]) {
        self.device.write_config(&self.core, offset, data);
        self.device.read_config(&mut self.core.config);
    }

    /// A write to the notify region (BAR4 + 0x3000 + 4 × queue).
    pub fn queue_notify(&mut self, queue: usize) {
        if queue >= self.core.queues.len() || !self.core.running() {
            return;
        }
        let mut ctx = DeviceContext {
            core: &mut self.core,
            transport: &mut self.transport,
            mem: &self.mem,
        };
        self.device.queue_notify(&mut ctx, queue);
    }

    /// The device changed its config space: bump the generation and
    /// interrupt. As QEMU's `virtio_notify_config`, nothing happens before
    /// the driver set DRIVER_OK (the driver reads the config when it starts).
    pub fn config_changed(&mut self) {
        if self.core.status & VIRTIO_CONFIG_S_DRIVER_OK as u8 == 0 {
            return;
        }
        self.core.config_generation = self.core.config_generation.wrapping_add(1);
        self.core.isr |= ISR_QUEUE | ISR_CONFIG;
        let v = self.transport.config_vector;
        self.transport.notify(v);
    }

    /// Runs `f` with the device model and a context (for device-specific
    /// operations outside a kick, such as completing stalled I/O).
    pub fn with_device<R>(&mut self, f: impl FnOnce(&mut D, &mut DeviceContext<'_>) -> R) -> R {
        let mut ctx = DeviceContext {
            core: &mut self.core,
            transport: &mut self.transport,
            mem: &self.mem,
        };
        f(&mut self.device, &mut ctx)
    }
}
