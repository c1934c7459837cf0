//! virtio-net with an in-process backend: packets the guest transmits are
//! collected ([`VirtioNet::take_transmitted`]), packets the host injects
//! ([`VirtioNet::receive`]) land in the guest's receive buffers; the control
//! queue handles the RX-mode, MAC-table, MAC-address and VLAN commands; and
//! the device state is QEMU 7.2's "virtio-net-device" v11 (qemu-wire.md §7.4),
//! written after the core's queues in the "virtio" field of the section
//! `<pci-path>/virtio-net` (version 11).
//!
//! Single queue pair only: `max_queue_pairs` is 1, so the multiqueue fields
//! (and CVE-2013-4150's `curr_queue_pairs`) are not on the wire.

use std::collections::VecDeque;

use bytes::{Buf, BufMut};
use virtio_bindings::virtio_config::{
    VIRTIO_F_ANY_LAYOUT, VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_net::{
    VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_ERR,
    VIRTIO_NET_F_CTRL_MAC_ADDR, VIRTIO_NET_F_CTRL_RX, VIRTIO_NET_F_CTRL_VLAN, VIRTIO_NET_F_CTRL_VQ,
    VIRTIO_NET_F_MAC, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_F_STATUS, VIRTIO_NET_OK,
    VIRTIO_NET_S_LINK_UP,
};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::QueueT;
use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{Result, VmState};

use super::core::{feature, VirtioCore};
use super::device::{DeviceContext, VirtioDeviceModel, VirtioPciDevice};
use super::element::Element;
use super::error::VirtioError;
use super::pci::{PciIdentity, VirtioPci};
use super::GuestMem;

/// Queue indices.
pub const RX: usize = 0;
/// Transmit queue.
pub const TX: usize = 1;
/// Control queue.
pub const CTRL: usize = 2;
/// Entries of the MAC filter table (MAC_TABLE_ENTRIES).
pub const MAC_TABLE_ENTRIES: usize = 64;
/// Largest `in_use` whose entries a load skips (QEMU: any).
pub const MAC_TABLE_SKIP_MAX: u32 = 1 << 16;
/// Bytes of the VLAN filter bitmap (4096 VLANs).
pub const VLAN_BYTES: usize = 512;
/// Length of the config space (mac, status).
pub const CONFIG_LEN: usize = 8;

/// Features the device offers.
pub const HOST_FEATURES: u64 = feature(VIRTIO_NET_F_MAC)
    | feature(VIRTIO_NET_F_MRG_RXBUF)
    | feature(VIRTIO_NET_F_STATUS)
    | feature(VIRTIO_NET_F_CTRL_VQ)
    | feature(VIRTIO_NET_F_CTRL_RX)
    | feature(VIRTIO_NET_F_CTRL_VLAN)
    | feature(VIRTIO_NET_F_CTRL_MAC_ADDR)
    | feature(VIRTIO_F_NOTIFY_ON_EMPTY)
    | feature(VIRTIO_F_ANY_LAYOUT)
    | feature(VIRTIO_RING_F_INDIRECT_DESC)
    | feature(VIRTIO_RING_F_EVENT_IDX)
    | feature(VIRTIO_F_VERSION_1);

/// virtio-net-pci with one queue pair: 4 MSI-X vectors.
pub const PCI_IDENTITY: PciIdentity = PciIdentity {
    virtio_id: 1,
    pci_device_id: 0x1000,
    class: 0x0200,
    nvectors: 4,
};

/// The receive filter state (QEMU's `mac_table` and the RX-mode flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxFilter {
    /// Accept every packet.
    pub promisc: bool,
    /// Accept every multicast packet.
    pub allmulti: bool,
    /// Accept every unicast packet.
    pub alluni: bool,
    /// Drop multicast.
    pub nomulti: bool,
    /// Drop unicast.
    pub nouni: bool,
    /// Drop broadcast.
    pub nobcast: bool,
    /// MAC table: unicast entries first, then multicast from `first_multi`.
    pub macs: Vec<[u8; 6]>,
    /// Index of the first multicast entry in `macs`.
    pub first_multi: usize,
    /// The guest sent more multicast entries than fit.
    pub multi_overflow: bool,
    /// The guest sent more unicast entries than fit.
    pub uni_overflow: bool,
    /// VLAN filter bitmap, as QEMU stores it (host-order u32 words, raw bytes).
    pub vlans: [u8; VLAN_BYTES],
}

impl Default for RxFilter {
    fn default() -> Self {
        RxFilter {
            promisc: true,
            allmulti: false,
            alluni: false,
            nomulti: false,
            nouni: false,
            nobcast: false,
            macs: Vec::new(),
            first_multi: 0,
            multi_overflow: false,
            uni_overflow: false,
            // Without CTRL_VLAN every VLAN passes.
            vlans: [0xff; VLAN_BYTES],
        }
    }
}

/// The network device model.
#[derive(Debug)]
pub struct VirtioNet {
    /// The device MAC address.
    pub mac: [u8; 6],
    /// Link status (VIRTIO_NET_S_LINK_UP).
    pub status: u16,
    /// Receive filter.
    pub filter: RxFilter,
    mergeable_rx_bufs: bool,
    tx_waiting: u32,
    transmitted: Vec<Vec<u8>>,
    rx_backlog: VecDeque<Vec<u8>>,
}

impl VirtioNet {
    /// A device with `mac`, link up.
    pub fn new(mac: [u8; 6]) -> Self {
        VirtioNet {
            mac,
            status: VIRTIO_NET_S_LINK_UP as u16,
            filter: RxFilter::default(),
            mergeable_rx_bufs: false,
            tx_waiting: 0,
            transmitted: Vec::new(),
            rx_backlog: VecDeque::new(),
        }
    }

    /// Packets the guest sent since the last call (virtio-net header removed).
    pub fn take_transmitted(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.transmitted)
    }

    /// Packets waiting for receive buffers.
    pub fn rx_backlog(&self) -> usize {
        self.rx_backlog.len()
    }

    fn hdr_len(core: &VirtioCore) -> u64 {
        if core.has_feature(VIRTIO_F_VERSION_1) || core.has_feature(VIRTIO_NET_F_MRG_RXBUF) {
            12
        } else {
            10
        }
    }

    /// Whether the receive filter accepts a frame for `dst`.
    pub fn accepts(&self, dst: &[u8; 6]) -> bool {
        let f = &self.filter;
        if f.promisc {
            return true;
        }
        if dst == &[0xff; 6] {
            return !f.nobcast;
        }
        if dst[0] & 1 != 0 {
            if f.nomulti {
                return false;
            }
            return f.allmulti || f.multi_overflow || f.macs[f.first_multi..].contains(dst);
        }
        if f.nouni {
            return false;
        }
        f.alluni || f.uni_overflow || dst == &self.mac || f.macs[..f.first_multi].contains(dst)
    }

    /// The host delivers `packet` (an Ethernet frame): filtered, then placed
    /// into the next receive buffer, or kept until the driver posts one.
    /// Returns whether the filter accepted it.
    pub fn receive(&mut self, ctx: &mut DeviceContext<'_>, packet: &[u8]) -> bool {
        let dst: [u8; 6] = match packet.get(..6) {
            Some(d) => d.try_into().unwrap_or([0; 6]),
            None => return false,
        };
        if !self.accepts(&dst) {
            return false;
        }
        self.rx_backlog.push_back(packet.to_vec());
        self.flush_rx(ctx);
        true
    }

    fn flush_rx(&mut self, ctx: &mut DeviceContext<'_>) {
        if !ctx.core.running() {
            return;
        }
        let hdr = Self::hdr_len(ctx.core);
        while let Some(pkt) = self.rx_backlog.front() {
            let Some(chain) = ctx.core.queues[RX].ring_mut().pop_descriptor_chain(ctx.mem) else {
                return;
            };
            ctx.core.queues[RX].took();
            let e = Element::from_chain(chain);
            let mut h = [0u8; 12];
            h[10] = 1; // num_buffers (12-byte header)
            let fits = e.in_len() >= hdr + pkt.len() as u64;
            let len = if fits
                && e.write_at(ctx.mem, 0, &h[..hdr as usize]).is_ok()
                && e.write_at(ctx.mem, hdr, pkt).is_ok()
            {
                hdr as u32 + pkt.len() as u32
            } else {
                0 // too small: the packet is dropped, the buffer returned empty
            };
            self.rx_backlog.pop_front();
            if let Ok(true) = ctx.core.queues[RX].complete(ctx.mem, RX, e.head as u16, len) {
                ctx.notify_queue(RX);
            }
        }
    }

    fn transmit(&mut self, ctx: &mut DeviceContext<'_>) {
        let hdr = Self::hdr_len(ctx.core);
        while let Some(chain) = ctx.core.queues[TX].ring_mut().pop_descriptor_chain(ctx.mem) {
            ctx.core.queues[TX].took();
            let e = Element::from_chain(chain);
            let len = e.out_len().saturating_sub(hdr);
            let mut pkt = vec![0u8; len as usize];
            if e.read_at(ctx.mem, hdr, &mut pkt).is_ok() {
                self.transmitted.push(pkt);
            }
            if let Ok(true) = ctx.core.queues[TX].complete(ctx.mem, TX, e.head as u16, 0) {
                ctx.notify_queue(TX);
            }
        }
    }

    fn control(&mut self, ctx: &mut DeviceContext<'_>) {
        while let Some(chain) = ctx.core.queues[CTRL]
            .ring_mut()
            .pop_descriptor_chain(ctx.mem)
        {
            ctx.core.queues[CTRL].took();
            let e = Element::from_chain(chain);
            let mut cmd = vec![0u8; e.out_len().min(4096) as usize];
            let ack = if cmd.len() >= 2 && e.read_at(ctx.mem, 0, &mut cmd).is_ok() {
                self.command(cmd[0], cmd[1], &cmd[2..])
            } else {
                VIRTIO_NET_ERR as u8
            };
            let ok = e.in_len() >= 1 && e.write_at(ctx.mem, e.in_len() - 1, &[ack]).is_ok();
            let len = u32::from(ok);
            if let Ok(true) = ctx.core.queues[CTRL].complete(ctx.mem, CTRL, e.head as u16, len) {
                ctx.notify_queue(CTRL);
            }
        }
    }

    /// One control command: class, command, data → ack.
    fn command(&mut self, class: u8, cmd: u8, data: &[u8]) -> u8 {
        let ok = VIRTIO_NET_OK as u8;
        let err = VIRTIO_NET_ERR as u8;
        let f = &mut self.filter;
        match (u32::from(class), cmd) {
            (VIRTIO_NET_CTRL_RX, 0..=5) => {
                let Some(&on) = data.first() else { return err };
                let on = on != 0;
                *[
                    &mut f.promisc,
                    &mut f.allmulti,
                    &mut f.alluni,
                    &mut f.nomulti,
                    &mut f.nouni,
                    &mut f.nobcast,
                ][usize::from(cmd)] = on;
                ok
            }
            (VIRTIO_NET_CTRL_MAC, 0) => {
                // Two tables: be careful, counts are guest-controlled.
                let mut macs = Vec::new();
                let mut rest = data;
                let mut overflow = [false; 2];
                let mut first_multi = 0;
                for (t, over) in overflow.iter_mut().enumerate() {
                    let Some(n) = rest.get(..4) else { return err };
                    let n = u32::from_le_bytes(n.try_into().unwrap()) as usize;
                    rest = &rest[4..];
                    let Some(bytes) = n.checked_mul(6).and_then(|b| rest.get(..b)) else {
                        return err;
                    };
                    if macs.len() + n <= MAC_TABLE_ENTRIES {
                        macs.extend(
                            bytes
                                .chunks_exact(6)
                                .map(|m| <[u8; 6]>::try_from(m).unwrap()),
                        );
                    } else {
                        *over = true;
                    }
                    rest = &rest[n * 6..];
                    if t == 0 {
                        first_multi = macs.len();
                    }
                }
                f.macs = macs;
                f.first_multi = first_multi;
                f.uni_overflow = overflow[0];
                f.multi_overflow = overflow[1];
                ok
            }
            (VIRTIO_NET_CTRL_MAC, 1) => match data.get(..6) {
                Some(m) => {
                    self.mac.copy_from_slice(m);
                    ok
                }
                None => err,
            },
            (VIRTIO_NET_CTRL_VLAN, 0 | 1) => {
                let Some(v) = data.get(..2) else { return err };
                let vid = u16::from_le_bytes([v[0], v[1]]) as usize;
                if vid >= VLAN_BYTES * 8 {
                    return err;
                }
                // QEMU's bitmap is u32 words in host (little-endian) order.
                let (byte, bit) = ((vid >> 5) * 4 + ((vid & 31) >> 3), vid & 7);
                if cmd == 0 {
                    f.vlans[byte] |= 1 << bit;
                } else {
                    f.vlans[byte] &= !(1 << bit);
                }
                ok
            }
            _ => err,
        }
    }

    /// Whether VLAN `vid` passes the filter.
    pub fn vlan_allowed(&self, vid: u16) -> bool {
        let vid = usize::from(vid) & 0xfff;
        self.filter.vlans[(vid >> 5) * 4 + ((vid & 31) >> 3)] & (1 << (vid & 7)) != 0
    }
}

impl VirtioDeviceModel for VirtioNet {
    fn read_config(&self, c: &mut [u8]) {
        let mut cfg = [0u8; CONFIG_LEN];
        cfg[..6].copy_from_slice(&self.mac);
        cfg[6..8].copy_from_slice(&self.status.to_le_bytes());
        let n = c.len().min(CONFIG_LEN);
        c[..n].copy_from_slice(&cfg[..n]);
    }

    fn queue_notify(&mut self, ctx: &mut DeviceContext<'_>, queue: usize) {
        match queue {
            RX => self.flush_rx(ctx),
            TX => self.transmit(ctx),
            _ => self.control(ctx),
        }
    }

    fn reset(&mut self) {
        self.filter = RxFilter::default();
        self.mergeable_rx_bufs = false;
        self.tx_waiting = 0;
        self.rx_backlog.clear();
    }

    /// "virtio-net-device" v11 (no multiqueue, no guest-offloads command).
    fn save_device<B: BufMut>(&self, core: &VirtioCore, w: &mut Writer<B>) -> Result<()> {
        let f = &self.filter;
        w.write_bytes(&self.mac)?;
        w.write_u32(self.tx_waiting)?;
        w.write_u32(u32::from(core.has_feature(VIRTIO_NET_F_MRG_RXBUF)))?;
        w.write_u16(self.status)?;
        w.write_u8(u8::from(f.promisc))?;
        w.write_u8(u8::from(f.allmulti))?;
        w.write_u32(f.macs.len() as u32)?;
        for m in &f.macs {
            w.write_bytes(m)?;
        }
        w.write_bytes(&f.vlans)?;
        w.write_u32(0)?; // has_vnet_hdr: the in-process backend has none
        for b in [
            f.multi_overflow,
            f.uni_overflow,
            f.alluni,
            f.nomulti,
            f.nouni,
            f.nobcast,
        ] {
            w.write_u8(u8::from(b))?;
        }
        w.write_u8(0) // has_ufo
    }

    fn load_device<B: Buf>(
        &mut self,
        _core: &VirtioCore,
        _mem: &GuestMem,
        r: &mut Reader<B>,
    ) -> Result<()> {
        let bool8 = |r: &mut Reader<B>, what| super::wire::read_bool(r, what);
        let mut mac = [0u8; 6];
        r.read_bytes(&mut mac)?;
        let tx_waiting = r.read_u32()?;
        let mergeable = r.read_u32()?;
        let status = r.read_u16()?;
        let promisc = bool8(r, "promisc")?;
        let allmulti = bool8(r, "allmulti")?;
        let in_use = r.read_u32()?;
        let mut macs = Vec::new();
        if in_use as usize <= MAC_TABLE_ENTRIES {
            for _ in 0..in_use {
                let mut m = [0u8; 6];
                r.read_bytes(&mut m)?;
                macs.push(m);
            }
        } else if in_use <= MAC_TABLE_SKIP_MAX {
            // CVE-2013-4149: entries that do not fit are skipped; the table is emptied.
            r.skip(in_use as usize * 6)?;
        } else {
            return Err(VirtioError::MacTableTooLarge(in_use).into());
        }
        let mut vlans = [0u8; VLAN_BYTES];
        r.read_bytes(&mut vlans)?;
        if r.read_u32()? != 0 {
            return Err(VirtioError::BackendLacks("vnet header").into());
        }
        let mut flags = [false; 6];
        for (b, what) in flags.iter_mut().zip([
            "multi_overflow",
            "uni_overflow",
            "alluni",
            "nomulti",
            "nouni",
            "nobcast",
        ]) {
            *b = bool8(r, what)?;
        }
        if bool8(r, "has_ufo")? {
            return Err(VirtioError::BackendLacks("UFO").into());
        }
        self.mac = mac;
        self.tx_waiting = tx_waiting;
        self.mergeable_rx_bufs = mergeable != 0;
        self.status = status;
        // QEMU's post_load recomputes first_multi: unicast entries come first.
        let first_multi = macs
            .iter()
            .position(|m| m[0] & 1 != 0)
            .unwrap_or(macs.len());
        let [multi_overflow, uni_overflow, alluni, nomulti, nouni, nobcast] = flags;
        self.filter = RxFilter {
            promisc,
            allmulti,
            alluni,
            nomulti,
            nouni,
            nobcast,
            macs,
            first_multi,
            multi_overflow,
            uni_overflow,
            vlans,
        };
        Ok(())
    }
}

/// The "virtio-net" section body (version 11): one field "virtio".
#[derive(VmState, Debug)]
#[vmstate(name = "virtio-net", version = 11, minimum_version = 11)]
pub struct VirtioNetSection {
    /// The device with its transport.
    pub virtio: VirtioPciDevice<VirtioNet>,
}

impl VirtioNetSection {
    /// A freshly realized virtio-net-pci with `mac`, its rings in `mem`.
    pub fn new(mac: [u8; 6], mem: GuestMem) -> Self {
        let core = VirtioCore::new(1, HOST_FEATURES, CONFIG_LEN, &[256, 256, 64]);
        let transport = VirtioPci::new(PCI_IDENTITY, 3);
        VirtioNetSection {
            virtio: VirtioPciDevice::new(core, transport, VirtioNet::new(mac), mem),
        }
    }
}
