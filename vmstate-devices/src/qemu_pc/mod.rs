//! A QEMU 7.2 `pc` machine's section set (`-M pc -nodefaults`, with any of
//! virtio-blk-pci, virtio-net-pci, virtio-rng-pci, virtio-balloon-pci) as
//! this crate's models plus opaque carriers: guest RAM in the [`RamSection`]
//! over [`RamBlockList::qemu_pc`], the keyboard controller's three sections in
//! one [`I8042`], the virtio-blk, virtio-net, virtio-rng and virtio-balloon
//! sections in their [`crate::virtio`] models (rings in that RAM), and every
//! other FULL section (CPUs, PCI bridges, timers, ...) carried as its body
//! bytes, framed by the size the stream's vmdesc gives it.
//!
//! * [`parse_vmdesc`] / [`stream_vmdesc`]: which sections a machine has and
//!   their body sizes (for a live stream, from a save of the same machine: the
//!   vmdesc only arrives after the sections);
//! * [`QemuPc`]: the models and carriers, and the [`Registry`] they are
//!   registered in, in the vmdesc's order ([`QemuPc::build`]); loading a
//!   whole stream file ([`QemuPc::load_stream`]);
//! * [`MachineState`]: what a loaded machine holds (RAM by block, each
//!   section's body), to compare two machines;
//! * [`receive`] / [`send`]: the machine as the destination or the source of
//!   a live migration with QEMU, [`write_stream`]: as a stream file again;
//! * [`rewrite`]: a stream file through the models and written again with the
//!   input's section order, section ids and RAM chunking (byte-identical).
//!
//! ```
//! use vmstate_devices::qemu_pc::{QemuPc, QemuPcLayout, SectionCarrier};
//! use vmstate_devices::qemu_pc::parse_vmdesc;
//!
//! let vmdesc = r#"{"page_size": 4096, "devices": [
//!   {"name": "timer", "instance_id": 0, "vmsd_name": "timer", "version": 2,
//!    "fields": [{"name": "ticks", "type": "int64", "size": 8}]}]}"#;
//! let devices = parse_vmdesc(vmdesc).unwrap();
//! let (pc, reg) = QemuPc::build(QemuPcLayout::new(1 << 20), &devices).unwrap();
//! let names: Vec<&str> = reg.entries().map(|e| e.idstr.as_str()).collect();
//! assert_eq!(names, ["ram", "timer"]);
//! assert_eq!(pc.carrier("timer", 0), Some(SectionCarrier::Opaque));
//! ```

mod live;
mod opaque;
mod rewrite;
mod state;
mod vmdesc;

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use vmstate_runtime::savevm::{
    Configuration, InstanceId, LoadOptions, NoCommands, Registry, StreamLoader,
};
use vmstate_runtime::wire::Reader;

use crate::pckbd::{PckbdPart, PckbdSection, I8042};
use crate::ram::section::RamCounters;
use crate::ram::{RamBlockList, RamChunking, RamError, RamSection};
use crate::virtio::balloon::VirtioBalloonSection;
use crate::virtio::blk::VirtioBlkSection;
use crate::virtio::net::VirtioNetSection;
use crate::virtio::rng::VirtioRngSection;
use vmstate_runtime::savevm::VmStateHandler;
use vmstate_runtime::VmState;

pub use live::{receive, receive_whole, receive_with, send, summary, write_stream};
pub use opaque::OpaqueSection;
pub use rewrite::{rewrite, RewriteError, RewriteReport, SectionEvent, SectionKind};
pub use state::MachineState;
pub use vmdesc::{merge_vmdescs, parse_vmdesc, stream_vmdesc, BodyLayout, VmDescDevice};

/// The machine type QEMU 7.2's `pc` alias stands for.
pub const MACHINE_TYPE: &str = "pc-i440fx-7.2";

/// Why a machine could not be built from a vmdesc or a stream.
#[derive(Debug, thiserror::Error)]
pub enum QemuPcError {
    /// The vmdesc is not JSON.
    #[error("vmdesc is not valid JSON: {0}")]
    VmDescJson(String),
    /// The vmdesc is JSON but not QEMU's shape.
    #[error("vmdesc{}: {what}", device.map(|d| format!(" device #{d}")).unwrap_or_default())]
    VmDescShape {
        /// Index in the `devices` array, when one device is at fault.
        device: Option<usize>,
        /// What is wrong.
        what: &'static str,
    },
    /// The stream file ends without a vmdesc trailer, so the sections we do
    /// not model cannot be framed.
    #[error("the stream has no vmdesc trailer: the unmodelled sections cannot be framed")]
    NoVmDesc,
    /// The RAM block list could not be built.
    #[error("RAM blocks: {0}")]
    Ram(#[from] RamError),
    /// Registering or loading failed.
    #[error(transparent)]
    Runtime(#[from] vmstate_runtime::Error),
    /// A virtio model could not be set up (its backing file).
    #[error("virtio section {idstr}: {source}")]
    Virtio {
        /// The section.
        idstr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The parts of a `pc` machine the vmdesc does not say: the RAM layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QemuPcLayout {
    /// `pc.ram` bytes (QEMU's `-m`).
    pub ram_size: u64,
    /// Whether a virtio-net-pci at 0000:00:02.0 adds its option ROM block.
    pub virtio_net_rom: bool,
}

impl QemuPcLayout {
    /// `ram_size` bytes of RAM, no virtio-net ROM.
    pub fn new(ram_size: u64) -> Self {
        QemuPcLayout {
            ram_size,
            virtio_net_rom: false,
        }
    }

    /// The layout of the machine that wrote `stream`: the size of `pc.ram`
    /// and whether the virtio-net ROM block is listed, from the RAM section's
    /// block list (`len idstr | be64 used_length` records). `None` when no
    /// `pc.ram` entry is found.
    ///
    /// ```
    /// use vmstate_devices::qemu_pc::QemuPcLayout;
    ///
    /// let mut s = b"\x06pc.ram".to_vec();
    /// s.extend_from_slice(&(32u64 << 20).to_be_bytes());
    /// assert_eq!(QemuPcLayout::of_stream(&s), Some(QemuPcLayout::new(32 << 20)));
    /// assert_eq!(QemuPcLayout::of_stream(b"none"), None);
    /// ```
    pub fn of_stream(stream: &[u8]) -> Option<Self> {
        const PC_RAM: &[u8] = b"\x06pc.ram";
        let at = stream.windows(PC_RAM.len()).position(|w| w == PC_RAM)? + PC_RAM.len();
        let len = u64::from_be_bytes(stream.get(at..at + 8)?.try_into().ok()?);
        const NET_ROM: &[u8] = b"0000:00:02.0/virtio-net-pci.rom";
        Some(QemuPcLayout {
            ram_size: len,
            virtio_net_rom: stream.windows(NET_ROM.len()).any(|w| w == NET_ROM),
        })
    }
}

/// The section kinds a `pc` machine's stream takes through a model: RAM, the
/// keyboard controller's three sections, and the virtio devices of
/// virtio-blk-pci, virtio-net-pci, virtio-rng-pci and virtio-balloon-pci
/// (their sections are named `SLOT/virtio-blk` and so on). Every other
/// section is carried opaque.
pub const KINDS_TO_MODEL: &[&str] = &[
    "ram",
    "ps2kbd",
    "ps2mouse",
    "pckbd",
    "virtio-blk",
    "virtio-net",
    "virtio-rng",
    "virtio-balloon",
];

/// Whether section `idstr` is of a kind in [`KINDS_TO_MODEL`] (its last
/// `/`-separated part names the kind).
///
/// ```
/// use vmstate_devices::qemu_pc::is_kind_to_model;
///
/// assert!(is_kind_to_model("pckbd"));
/// assert!(is_kind_to_model("0000:00:02.0/virtio-net"));
/// assert!(!is_kind_to_model("0000:00:01.1/ide"));
/// assert!(!is_kind_to_model("timer"));
/// ```
pub fn is_kind_to_model(idstr: &str) -> bool {
    let kind = idstr.rsplit('/').next().unwrap_or(idstr);
    KINDS_TO_MODEL.contains(&kind)
}

/// A virtio model of a `pc` machine, shared with its registry entry.
#[derive(Clone, Debug)]
pub enum VirtioModel {
    /// virtio-blk-pci (over `/dev/null`: the state migrates, no disk is attached).
    Blk(Arc<Mutex<VirtioBlkSection>>),
    /// virtio-net-pci (no backend attached).
    Net(Arc<Mutex<VirtioNetSection>>),
    /// virtio-rng-pci (reading `/dev/urandom`).
    Rng(Arc<Mutex<VirtioRngSection>>),
    /// virtio-balloon-pci (no host memory is given back; the state migrates).
    Balloon(Arc<Mutex<VirtioBalloonSection>>),
}

impl VirtioModel {
    /// The model for section `idstr` (`SLOT/virtio-blk`, ...), its rings in
    /// `ram`'s `pc.ram`; `None` for a kind without a model.
    fn for_section(idstr: &str, ram: &RamBlockList) -> Result<Option<VirtioModel>, QemuPcError> {
        let kind = idstr.rsplit('/').next().unwrap_or(idstr);
        if !matches!(
            kind,
            "virtio-blk" | "virtio-net" | "virtio-rng" | "virtio-balloon"
        ) {
            return Ok(None);
        }
        let mem = ram.guest_memory(&["pc.ram"])?;
        let io = |source| QemuPcError::Virtio {
            idstr: idstr.to_string(),
            source,
        };
        Ok(Some(match kind {
            "virtio-blk" => {
                let disk = std::fs::File::open("/dev/null").map_err(io)?;
                let dev = VirtioBlkSection::new(disk, "", mem).map_err(io)?;
                VirtioModel::Blk(Arc::new(Mutex::new(dev)))
            }
            "virtio-net" => {
                VirtioModel::Net(Arc::new(Mutex::new(VirtioNetSection::new([0; 6], mem))))
            }
            "virtio-balloon" => {
                VirtioModel::Balloon(Arc::new(Mutex::new(VirtioBalloonSection::new(mem))))
            }
            _ => {
                let source = std::fs::File::open("/dev/urandom").map_err(io)?;
                VirtioModel::Rng(Arc::new(Mutex::new(VirtioRngSection::new(source, mem))))
            }
        }))
    }

    /// The section version the model writes.
    fn version(&self) -> u32 {
        match self {
            VirtioModel::Blk(_) => VirtioBlkSection::DESCRIPTION.version_id,
            VirtioModel::Net(_) => VirtioNetSection::DESCRIPTION.version_id,
            VirtioModel::Rng(_) => VirtioRngSection::DESCRIPTION.version_id,
            VirtioModel::Balloon(_) => VirtioBalloonSection::DESCRIPTION.version_id,
        }
    }

    /// The registry handler over the shared model.
    fn handler(&self) -> Box<dyn vmstate_runtime::savevm::SaveVmHandlers> {
        match self {
            VirtioModel::Blk(d) => Box::new(VmStateHandler::new(d.clone())),
            VirtioModel::Net(d) => Box::new(VmStateHandler::new(d.clone())),
            VirtioModel::Rng(d) => Box::new(VmStateHandler::new(d.clone())),
            VirtioModel::Balloon(d) => Box::new(VmStateHandler::new(d.clone())),
        }
    }

    /// The section body the model saves now.
    pub fn body(&self) -> Result<Vec<u8>, QemuPcError> {
        fn save<T: VmState>(d: &Mutex<T>) -> Result<Vec<u8>, QemuPcError> {
            let d = d
                .lock()
                .map_err(|_| vmstate_runtime::Error::poisoned("virtio model poisoned"))?;
            Ok(vmstate_runtime::to_bytes(&*d)?)
        }
        match self {
            VirtioModel::Blk(d) => save(d),
            VirtioModel::Net(d) => save(d),
            VirtioModel::Rng(d) => save(d),
            VirtioModel::Balloon(d) => save(d),
        }
    }
}

/// How a section goes through this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionCarrier {
    /// Into and out of a device model.
    Model,
    /// As body bytes, unchanged.
    Opaque,
}

/// A `pc` machine's state: the models and the opaque carriers, shared with the
/// [`Registry`] they are registered in.
#[derive(Clone)]
pub struct QemuPc {
    /// Guest RAM: QEMU 7.2's `pc` blocks.
    pub ram: Arc<Mutex<RamBlockList>>,
    /// The RAM section's counters (pages loaded or sent).
    pub ram_counters: Arc<RamCounters>,
    /// The keyboard controller with its PS/2 keyboard and mouse.
    pub i8042: Arc<Mutex<I8042>>,
    /// The virtio models (section idstr, instance, model), in stream order.
    pub virtio: Vec<(String, u32, VirtioModel)>,
    /// The guest's access to RAM while it runs here in postcopy: a read of a
    /// page not yet received asks the source for it on the return path and
    /// waits (see [`crate::ram::PostcopyAccess`]).
    pub ram_access: crate::ram::PostcopyAccess,
    /// The RAM section's record of each chunk's records while loading,
    /// replayed on save (see [`RamChunking`]).
    pub ram_chunking: Arc<RamChunking>,
    /// The sections carried opaque, in stream order.
    opaque: Vec<OpaqueSection>,
    /// Every FULL section: idstr, instance, carrier, in stream order.
    sections: Vec<(String, u32, SectionCarrier)>,
}

impl std::fmt::Debug for QemuPc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QemuPc")
            .field("sections", &self.sections)
            .finish_non_exhaustive()
    }
}

impl QemuPc {
    /// The machine with `layout`'s RAM and the FULL sections `devices` lists:
    /// the registry holds "ram" first, then each device in the given order,
    /// into its model (ps2kbd, ps2mouse, pckbd) or an [`OpaqueSection`] of the
    /// device's body size.
    pub fn build(
        layout: QemuPcLayout,
        devices: &[VmDescDevice],
    ) -> Result<(QemuPc, Registry), QemuPcError> {
        Self::build_with(layout, devices, false)
    }

    /// [`build`](Self::build); with `postcopy`, the RAM section is
    /// postcopy-capable as a source ([`RamSection::with_postcopy`]).
    pub fn build_with(
        layout: QemuPcLayout,
        devices: &[VmDescDevice],
        postcopy: bool,
    ) -> Result<(QemuPc, Registry), QemuPcError> {
        let ram = Arc::new(Mutex::new(RamBlockList::qemu_pc(
            layout.ram_size,
            layout.virtio_net_rom,
        )?));
        let ram_chunking = Arc::new(RamChunking::default());
        let mut section = RamSection::new(ram.clone()).with_chunking(ram_chunking.clone());
        if postcopy {
            section = section.with_postcopy();
        }
        let ram_counters = section.counters();
        let ram_access = section.postcopy_access();
        let mut reg = Registry::new();
        section.register(&mut reg)?;
        let i8042 = Arc::new(Mutex::new(I8042::default()));
        let mut opaque = Vec::new();
        let mut sections = Vec::new();
        let mut virtio = Vec::new();
        for dev in devices {
            let model = VirtioModel::for_section(
                &dev.name,
                &*ram
                    .lock()
                    .map_err(|_| vmstate_runtime::Error::poisoned("RAM poisoned"))?,
            )?;
            if let Some(model) = model {
                reg.register_savevm_live(
                    &dev.name,
                    InstanceId::Fixed(dev.instance),
                    model.version(),
                    model.handler(),
                )?;
                sections.push((dev.name.clone(), dev.instance, SectionCarrier::Model));
                virtio.push((dev.name.clone(), dev.instance, model));
                continue;
            }
            let part = PckbdPart::ALL.into_iter().find(|p| p.idstr() == dev.name);
            let (handler, version, carrier): (
                Box<dyn vmstate_runtime::savevm::SaveVmHandlers>,
                _,
                _,
            ) = match part {
                Some(part) => (
                    Box::new(PckbdSection::new(i8042.clone(), part)),
                    part.description().version_id,
                    SectionCarrier::Model,
                ),
                None => {
                    let o = OpaqueSection::new(&dev.name, dev.instance, dev.layout.clone());
                    opaque.push(o.clone());
                    // An old-style entry states no version: accept any.
                    (
                        Box::new(o),
                        dev.version.unwrap_or(u32::MAX),
                        SectionCarrier::Opaque,
                    )
                }
            };
            reg.register_savevm_live(&dev.name, InstanceId::Fixed(dev.instance), version, handler)?;
            sections.push((dev.name.clone(), dev.instance, carrier));
        }
        Ok((
            QemuPc {
                ram,
                ram_counters,
                i8042,
                virtio,
                ram_access,
                ram_chunking,
                opaque,
                sections,
            },
            reg,
        ))
    }

    /// Loads a whole QEMU 7.2 stream file (header, configuration, RAM, every
    /// FULL section, EOF, vmdesc) into a machine built from the stream's own
    /// vmdesc and RAM block list. Returns the machine, its registry (which can
    /// write the same state again) and the vmdesc.
    pub fn load_stream(stream: &[u8]) -> Result<(QemuPc, Registry, String), QemuPcError> {
        Self::load_stream_with(stream, false)
    }

    /// [`load_stream`](Self::load_stream) into a machine built with
    /// [`build_with`](Self::build_with)`(.., postcopy)`: with `postcopy`, the
    /// registry can be the source of a postcopy migration.
    pub fn load_stream_with(
        stream: &[u8],
        postcopy: bool,
    ) -> Result<(QemuPc, Registry, String), QemuPcError> {
        let vmdesc = stream_vmdesc(stream).ok_or(QemuPcError::NoVmDesc)?;
        let layout = QemuPcLayout::of_stream(stream).ok_or(QemuPcError::VmDescShape {
            device: None,
            what: "the stream lists no pc.ram block",
        })?;
        let (pc, mut reg) = Self::build_with(layout, &parse_vmdesc(vmdesc)?, postcopy)?;
        let mut loader = StreamLoader::new(Self::load_options());
        let mut r = Reader::new(BytesMut::from(stream));
        let vmdesc = loader
            .load(&mut r, &mut reg, &mut NoCommands)?
            .ok_or(QemuPcError::NoVmDesc)?;
        pc.adopt_loaded_versions(&mut reg);
        Ok((pc, reg, vmdesc))
    }

    /// After a load: each opaque section of `reg` (this machine's registry)
    /// is written again with the version its body came with (an old-style
    /// vmdesc entry states none, so it was registered accepting any).
    pub fn adopt_loaded_versions(&self, reg: &mut Registry) {
        for o in &self.opaque {
            let Some(v) = o.loaded_version() else {
                continue;
            };
            if let Some(e) = reg
                .entries_mut()
                .find(|e| e.idstr == o.idstr() && e.instance_id == o.instance())
            {
                e.version_id = v;
            }
        }
    }

    /// The load options of a `pc` destination: QEMU 7.2, its configuration
    /// record required, the vmdesc read if present.
    pub fn load_options() -> LoadOptions {
        LoadOptions::default().with_configuration(Configuration::new(MACHINE_TYPE))
    }

    /// How the section `idstr`/`instance` goes through: model, opaque, or
    /// `None` when the machine has no such section.
    pub fn carrier(&self, idstr: &str, instance: u32) -> Option<SectionCarrier> {
        self.sections
            .iter()
            .find(|(n, i, _)| n == idstr && *i == instance)
            .map(|(_, _, c)| *c)
    }

    /// Every FULL section (idstr, instance, carrier), in stream order.
    pub fn sections(&self) -> &[(String, u32, SectionCarrier)] {
        &self.sections
    }

    /// The sections carried opaque, in stream order.
    pub fn opaque_sections(&self) -> &[OpaqueSection] {
        &self.opaque
    }

    /// A copy of everything the machine holds now.
    pub fn state(&self) -> Result<MachineState, QemuPcError> {
        MachineState::of(self)
    }
}
