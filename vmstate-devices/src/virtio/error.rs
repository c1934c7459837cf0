//! The typed errors of the virtio models: what a hostile or inconsistent
//! "virtio" body can do wrong (each `virtio_load` check of QEMU 7.2 has a
//! variant), and what a guest can do wrong on the rings.
//!
//! On the wire path they travel inside [`vmstate_runtime::Error`] as
//! [`ErrorKind::Device`](vmstate_runtime::ErrorKind::Device) with device
//! `"virtio"`; [`VirtioError::of`] gets them back out.

use vmstate_runtime::{Error, ErrorKind};

/// What went wrong in a virtio model.
///
/// ```
/// use vmstate_devices::virtio::VirtioError;
///
/// let e: vmstate_runtime::Error = VirtioError::QueueSelOutOfRange { queue_sel: 0x400 }.into();
/// assert_eq!(VirtioError::of(&e), Some(&VirtioError::QueueSelOutOfRange { queue_sel: 0x400 }));
/// assert!(e.to_string().contains("queue_sel 1024"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VirtioError {
    /// The PCIDevice body's version is outside 0..=2.
    #[error("PCIDevice version {0} outside 0..=2")]
    BadPciVersion(i32),
    /// A read-only byte of PCI config space differs from this device's
    /// (QEMU: "Bad config data").
    #[error(
        "read-only PCI config byte {offset:#04x} is {stream:#04x} in the stream, {local:#04x} here"
    )]
    BadConfigData {
        /// Offset in config space.
        offset: usize,
        /// The stream's value.
        stream: u8,
        /// This device's value.
        local: u8,
    },
    /// An `irq_state` entry other than 0 or 1.
    #[error("irq_state[{pin}] = {value} (must be 0 or 1)")]
    BadIrqState {
        /// INTx pin index (0..4).
        pin: usize,
        /// The value.
        value: u32,
    },
    /// An MSI-X vector (config or queue) that is neither 0xffff nor < nvectors.
    #[error("MSI-X vector {vector:#x} of {what} out of range ({nvectors} vectors)")]
    BadVector {
        /// "config" or "queue N".
        what: String,
        /// The vector.
        vector: u16,
        /// Vectors of this device.
        nvectors: u16,
    },
    /// CVE-2013-6399: `queue_sel` indexes the 1024 queue slots.
    #[error("queue_sel {queue_sel} >= 1024")]
    QueueSelOutOfRange {
        /// The stream's value.
        queue_sel: u16,
    },
    /// CVE-2014-0182: a negative config_len.
    #[error("config_len {0} is negative")]
    ConfigLenNegative(i32),
    /// CVE-2014-0182: a config_len beyond any virtio device config region
    /// (4 KiB); QEMU would skip up to 2 GiB of stream.
    #[error("config_len {config_len} larger than the {max}-byte device config region")]
    ConfigLenTooLarge {
        /// The stream's value.
        config_len: u32,
        /// The bound.
        max: u32,
    },
    /// CVE-2013-4151: more queues than VIRTIO_QUEUE_MAX.
    #[error("{0} virtqueues (max 1024)")]
    TooManyQueues(u32),
    /// More queues in the stream than this device has.
    #[error("{stream} virtqueues in the stream, the device has {local}")]
    QueueCountMismatch {
        /// The stream's count.
        stream: u32,
        /// This device's.
        local: usize,
    },
    /// A queue size that virtio-queue cannot take (0, not a power of two,
    /// larger than the device's maximum).
    #[error("queue {queue}: size {num} invalid (max {max}, power of two)")]
    BadQueueSize {
        /// Queue index.
        queue: usize,
        /// The size.
        num: u32,
        /// The device maximum.
        max: u16,
    },
    /// A queue without a descriptor table but with a non-zero last_avail_idx.
    #[error("queue {queue}: no descriptor table but last_avail_idx {last_avail_idx}")]
    NoRingButIndex {
        /// Queue index.
        queue: usize,
        /// The index.
        last_avail_idx: u16,
    },
    /// A vring (descriptor table, avail or used ring) not inside guest memory,
    /// or misaligned.
    #[error("queue {queue}: vring (desc {desc:#x}, avail {avail:#x}, used {used:#x}, size {size}) outside guest memory or misaligned")]
    RingOutsideMemory {
        /// Queue index.
        queue: usize,
        /// Descriptor table address.
        desc: u64,
        /// Avail ring address.
        avail: u64,
        /// Used ring address.
        used: u64,
        /// Queue size.
        size: u16,
    },
    /// last_avail_idx − used_idx is more than the queue holds.
    #[error("queue {queue}: last_avail_idx {last_avail_idx} vs used idx {used_idx}: {inuse} in use > size {size}")]
    InUseExceedsSize {
        /// Queue index.
        queue: usize,
        /// Loaded last_avail_idx.
        last_avail_idx: u16,
        /// The used idx read from guest memory.
        used_idx: u16,
        /// Their difference.
        inuse: u16,
        /// Queue size.
        size: u16,
    },
    /// The stream negotiates a feature this device does not offer.
    #[error("features {requested:#x} not offered (offered {offered:#x})")]
    FeaturesNotOffered {
        /// The stream's guest features.
        requested: u64,
        /// This device's host features.
        offered: u64,
    },
    /// A subsection of "virtio" (or "virtio_pci") this model does not know.
    #[error("unknown subsection {0:?}")]
    UnknownSubsection(String),
    /// A subsection with an unexpected version.
    #[error("subsection {name:?} version {version} (expected 1)")]
    SubsectionVersion {
        /// Name.
        name: String,
        /// Version in the stream.
        version: u32,
    },
    /// A bool byte other than 0/1.
    #[error("{0}: bool byte {1:#x}")]
    BadBool(&'static str, u8),
    /// CVE-2013-4535/4536: an in-flight element with more than 1024 segments.
    #[error("in-flight element: in_num {in_num}, out_num {out_num} (max 1024 each)")]
    TooManySegments {
        /// Device-writable segments.
        in_num: u32,
        /// Device-readable segments.
        out_num: u32,
    },
    /// An in-flight element whose segment is not in guest memory.
    #[error("in-flight element {head}: segment {addr:#x}+{len} outside guest memory")]
    SegmentOutsideMemory {
        /// Head descriptor index.
        head: u32,
        /// Guest address.
        addr: u64,
        /// Length.
        len: u64,
    },
    /// An in-flight element naming a queue the device does not have.
    #[error("in-flight request on queue {queue} (device has {num_queues})")]
    RequestQueueOutOfRange {
        /// The queue index.
        queue: u32,
        /// The device's queue count.
        num_queues: usize,
    },
    /// A marker byte of the request list other than 0/1.
    #[error("request list marker {0} (expected 0 or 1)")]
    BadRequestMarker(i8),
    /// CVE-2013-4148: a MAC table count so large that even skipping its
    /// entries is not credible (QEMU would skip `in_use × 6` bytes).
    #[error("MAC table in_use {0} (more than {max} entries)", max = super::net::MAC_TABLE_SKIP_MAX)]
    MacTableTooLarge(u32),
    /// The stream's peer had a vnet header or UFO that this backend lacks.
    #[error("{0} in the stream, the backend has none")]
    BackendLacks(&'static str),
    /// The guest's ring or descriptor chain could not be used.
    #[error("queue {queue}: {msg}")]
    Ring {
        /// Queue index.
        queue: usize,
        /// What virtio-queue or guest memory said.
        msg: String,
    },
}

impl VirtioError {
    /// The `VirtioError` carried by a runtime error, if it is one.
    pub fn of(e: &Error) -> Option<&VirtioError> {
        match e.kind() {
            ErrorKind::Device { source, .. } => source.downcast_ref(),
            _ => None,
        }
    }
}

impl From<VirtioError> for Error {
    fn from(e: VirtioError) -> Self {
        Error::device("virtio", e)
    }
}
