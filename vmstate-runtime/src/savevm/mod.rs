//! The savevm stream: QEMU's migration stream format (header, configuration,
//! sections, commands, EOF, vmdesc), the registry of migratable components with
//! their `SaveVmHandlers`, and the return-path messages.

mod command;
mod config;
pub mod format;
mod handlers;
mod loader;
mod registry;
mod return_path;
mod section_buf;
mod vmdesc;
mod writer;

pub use command::{cmd, Command, PostcopyAdvise, MAX_DISCARDS_PER_COMMAND};
pub use config::{
    Capabilities, Configuration, CountedString, TargetPageBits, VmUuid, TARGET_PAGE_BITS_X86,
    VALIDATED_CAPABILITIES,
};
pub use format::{QemuVersion, RecordType};
pub use handlers::{
    BlockRanges, IterateStatus, PageRequester, Pending, RpSend, SaveVmHandlers, SectionReader,
    SectionWriter, SwitchoverApprover, VmStateHandler,
};
pub use loader::{
    CommandHandler, LoadEnd, LoadFlow, LoadOptions, NoCommands, StreamLoader, MAX_PACKAGE_LEN,
    MAX_VMDESC_LEN,
};
pub use registry::{InstanceId, Registry, SaveStateEntry};
pub use return_path::{rp, RpMessage, MAX_RP_PAYLOAD, RECV_BITMAP_ENDING, RESUME_ACK_VALUE};
pub use section_buf::SectionBuf;
pub use vmdesc::{device_json, VmDescBuilder, TARGET_PAGE_SIZE};
pub use writer::StreamWriter;
