//! The savevm stream: QEMU's migration stream format and everything that reads
//! or writes it.
//!
//! * [`format`](mod@format): every byte value and limit of the stream, named once;
//! * [`Command`] and [`RpMessage`]: the command records and the return-path
//!   messages, encoded and validated;
//! * [`Configuration`]: the configuration record and its checks;
//! * [`SaveVmHandlers`] and [`Registry`]: what a migratable component implements,
//!   and the ordered list of them (section and instance ids as QEMU allocates them);
//! * [`PostcopyRam`]: the hooks only a postcopy-capable RAM handler adds
//!   (discards, page requests, received bitmaps), with [`PageRequester`];
//! * [`TargetPage`]: the target page size, a parameter of each migration;
//! * [`StreamWriter`] (source) and [`StreamLoader`] (destination): header,
//!   START/PART/END/FULL sections, commands, packages, EOF and the vmdesc trailer
//!   ([`VmDescBuilder`]), with [`SectionBuf`] carrying guest pages uncopied
//!   ([`MemorySegment`]s of [`SharedMemory`]).

mod command;
mod config;
pub mod format;
mod handlers;
mod loader;
mod page;
mod postcopy_ram;
mod ram_stats;
mod registry;
mod return_path;
mod section_buf;
mod shared_memory;
mod vmdesc;
mod writer;

pub use command::{Command, PostcopyAdvise};
pub use config::{
    Capabilities, Configuration, CountedString, TargetPageBits, VmUuid, DEFAULT_MACHINE_TYPE,
    VALIDATED_CAPABILITIES,
};
pub use format::{
    QemuVersion, RecordType, MAX_DISCARDS_PER_COMMAND, MAX_PACKAGE_LEN, MAX_RP_PAYLOAD,
    MAX_TARGET_PAGE_BITS, MAX_VMDESC_LEN, MIN_TARGET_PAGE_BITS, RECV_BITMAP_ENDING,
    RESUME_ACK_VALUE, TARGET_PAGE_BITS_X86, TARGET_PAGE_SIZE,
};
pub use handlers::{
    IterateStatus, Pending, RpSend, SaveVmHandlers, SectionReader, SectionWriter,
    SwitchoverApprover, VmStateHandler,
};
pub use loader::{
    CommandHandler, LoadEnd, LoadFlow, LoadOptions, NoCommands, StreamLoader, VmDescPolicy,
};
pub use page::TargetPage;
pub use postcopy_ram::{BlockRanges, PageRequester, PostcopyRam};
pub use ram_stats::{RamStats, XbzrleStats};
pub use registry::{InstanceId, Registry, SaveStateEntry};
pub use return_path::RpMessage;
pub(crate) use section_buf::Part;
pub use section_buf::SectionBuf;
#[cfg(test)]
pub(crate) use shared_memory::Heap;
pub use shared_memory::{MemorySegment, SharedMemory};
pub use vmdesc::{device_json, VmDescBuilder};
pub use writer::StreamWriter;
