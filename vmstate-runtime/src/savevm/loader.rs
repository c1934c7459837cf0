//! The destination side of the stream (QEMU's `qemu_loadvm_state`): header,
//! configuration, section dispatch by idstr/instance, footers, commands, packaged
//! sub-streams, EOF and the optional vmdesc trailer. Every malformed input is an
//! error naming the section, the offset and the reason.

use std::collections::HashMap;
use std::time::Duration;

use super::command::Command;
use super::config::{Configuration, DEFAULT_MACHINE_TYPE};
use super::format::{
    MigCmd, QemuVersion, RecordType, FILE_MAGIC, FILE_VERSION, MAX_PACKAGE_LEN, MAX_VMDESC_LEN,
};
use super::handlers::SectionReader;
use super::page::TargetPage;
use super::registry::Registry;
use crate::error::{Error, ErrorKind, Result};
use crate::migration::{CancelToken, DEFAULT_RP_WRITE_TIMEOUT};
use crate::vmstate::VmState;
use crate::wire::Reader;

/// What to do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadFlow {
    /// Keep reading.
    Continue,
    /// Stop the main loop (QEMU's LOADVM_QUIT, after POSTCOPY_RUN).
    Quit,
}

/// Receives the commands found in the stream (the migration layer: return path,
/// postcopy). PACKAGED is handled by the loader itself.
pub trait CommandHandler {
    /// Acts on one command; `reg` is the registry being loaded into.
    fn command(&mut self, cmd: Command, reg: &mut Registry) -> Result<LoadFlow>;
}

/// Refuses every command: for loading snapshots/files where none may appear.
#[derive(Debug, Default)]
pub struct NoCommands;

impl CommandHandler for NoCommands {
    fn command(&mut self, cmd: Command, _reg: &mut Registry) -> Result<LoadFlow> {
        Err(Error::new(ErrorKind::UnexpectedCommand { cmd: cmd.cmd() }))
    }
}

/// How the main loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadEnd {
    /// The EOF record.
    Eof,
    /// A command asked to stop (postcopy run).
    Quit,
}

/// Whether a vmdesc trailer follows EOF.
///
/// QEMU's destination reads one exactly when its own machine does not have
/// `suppress-vmdesc` and the migration did not go through postcopy, and fails if
/// another record comes; it never peeks. Over a connection, peeking is not
/// harmless: a source that sends no vmdesc and keeps the connection open until
/// SHUT would wait for the destination while the destination waits for a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum VmDescPolicy {
    /// Read one if the input has another byte (waits for that byte or EOF): for
    /// files and snapshots, and sources that close after EOF. The default, which
    /// loads every stream the loader loaded before this option existed.
    #[default]
    IfPresent,
    /// One follows (QEMU's default, `suppress-vmdesc=off`): read it; any other
    /// record is [`ErrorKind::MissingVmDesc`].
    Expected,
    /// None follows (`suppress-vmdesc=on`): stop at EOF without reading on.
    Suppressed,
}

/// Options for an incoming stream.
///
/// [`LoadOptions::default()`] loads what a default source sends: it expects
/// the configuration record for [`DEFAULT_MACHINE_TYPE`] (as a
/// [`MigrationConfig::new`](crate::migration::MigrationConfig::new) source,
/// or QEMU 7.2's `pc` machine, writes). For streams without one (QEMU's
/// `send-configuration=off`, hand-written snapshots) use
/// [`with_configuration(None)`](Self::with_configuration); for another
/// machine type, `with_configuration(Configuration::new("pc-q35-7.2"))`. Either
/// mismatch is an error that says what the stream has
/// ([`ErrorKind::MissingConfiguration`], [`ErrorKind::UnexpectedConfiguration`],
/// [`ConfigMismatch::MachineType`](crate::error::ConfigMismatch::MachineType)).
///
/// ```
/// use std::time::Duration;
/// use vmstate_runtime::savevm::{Configuration, LoadOptions, DEFAULT_MACHINE_TYPE};
///
/// let o = LoadOptions::default();
/// assert_eq!(o.configuration, Some(Configuration::new(DEFAULT_MACHINE_TYPE)));
/// let o = o.with_configuration(None).with_accept_timeout(Duration::from_secs(5));
/// assert_eq!((o.configuration, o.accept_timeout), (None, Some(Duration::from_secs(5))));
/// ```
///
/// The timeouts and the cancel token are used by the destination driver
/// ([`run_incoming`](crate::migration::run_incoming)); the in-memory loader
/// ignores them.
///
/// Silence that is legitimate is handled so: a source paused in pre-switchover
/// (waiting for `migrate-continue`) sends nothing for as long as its operator
/// takes, and nothing in the stream tells the destination, so `idle_timeout`
/// is off by default and must be set above the longest pause the VMM allows.
/// In postcopy-paused (the guest runs here, waiting for the source to
/// reconnect) no timeout applies, since giving up loses the guest; only the
/// cancel token ends that wait. A silence beyond `idle_timeout` after
/// POSTCOPY_RUN is a broken connection: it pauses postcopy (when the VMM has a
/// recovery hook) instead of failing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadOptions {
    /// The dialect to accept.
    pub version: QemuVersion,
    /// The local configuration: when set, the stream must carry a configuration
    /// record that matches it (QEMU's `send-configuration`, default on); when
    /// `None`, it must not carry one. Its target page
    /// ([`Configuration::for_target`]) is ours. Default:
    /// `Configuration::new(DEFAULT_MACHINE_TYPE)`.
    pub configuration: Option<Configuration>,
    /// Whether a vmdesc trailer follows EOF (default [`VmDescPolicy::IfPresent`]).
    pub vmdesc: VmDescPolicy,
    /// How long to wait for a source to connect (tcp/unix); default `None`:
    /// as long as it takes, as QEMU's `-incoming` does.
    pub accept_timeout: Option<Duration>,
    /// How long the source may send nothing while it still owes part of the
    /// stream; default `None` (see the type's notes on pre-switchover).
    pub idle_timeout: Option<Duration>,
    /// How long a return-path write may make no progress; default
    /// [`DEFAULT_RP_WRITE_TIMEOUT`] (30 s).
    pub write_timeout: Option<Duration>,
    /// Cancels the incoming migration from another thread (keep a clone);
    /// default `None`.
    pub cancel: Option<CancelToken>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            version: QemuVersion::default(),
            configuration: Some(Configuration::new(DEFAULT_MACHINE_TYPE)),
            vmdesc: VmDescPolicy::default(),
            accept_timeout: None,
            idle_timeout: None,
            write_timeout: Some(DEFAULT_RP_WRITE_TIMEOUT),
            cancel: None,
        }
    }
}

with_setters!(LoadOptions {
    with_version => version: [QemuVersion],
    with_configuration => configuration: into [Option<Configuration>],
    with_vmdesc => vmdesc: [VmDescPolicy],
    with_accept_timeout => accept_timeout: into [Option<Duration>],
    with_idle_timeout => idle_timeout: into [Option<Duration>],
    with_write_timeout => write_timeout: into [Option<Duration>],
    with_cancel => cancel: into [Option<CancelToken>],
});

impl LoadOptions {
    /// The defaults (the same as [`Default`]): expects the configuration record
    /// for [`DEFAULT_MACHINE_TYPE`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Our target page: the local configuration's, x86's 4 KiB without one.
    /// What POSTCOPY_ADVISE must announce and the page-bits check compares.
    ///
    /// ```
    /// use vmstate_runtime::savevm::{Configuration, LoadOptions, TargetPage};
    ///
    /// assert_eq!(LoadOptions::default().target_page(), TargetPage::X86);
    /// let page = TargetPage::new(14, 12).unwrap();
    /// let opts = LoadOptions::default().with_configuration(Configuration::for_target("virt", page));
    /// assert_eq!(opts.target_page().size(), 16384);
    /// ```
    pub fn target_page(&self) -> TargetPage {
        self.configuration
            .as_ref()
            .map_or(TargetPage::X86, |c| c.target_page)
    }
}

#[derive(Debug, Clone, Copy)]
struct OpenSection {
    entry: usize,
    version_id: u32,
}

/// Loads a stream into a registry.
#[derive(Debug)]
pub struct StreamLoader {
    opts: LoadOptions,
    /// Stream section id → registry entry, remembered from START/FULL headers.
    sections: HashMap<u32, OpenSection>,
    /// The header was read without expecting a configuration record: the
    /// next record is the first (a configuration record there is
    /// [`ErrorKind::UnexpectedConfiguration`]).
    first_record: bool,
}

impl StreamLoader {
    /// A loader with the given options.
    pub fn new(opts: LoadOptions) -> Self {
        StreamLoader {
            opts,
            sections: HashMap::new(),
            first_record: false,
        }
    }

    /// The whole incoming side for a precopy stream or snapshot: header,
    /// configuration, `load_setup`, the main loop, the optional vmdesc, and
    /// `load_cleanup` (always). Returns the vmdesc JSON if one was sent.
    pub fn load(
        &mut self,
        r: &mut SectionReader,
        reg: &mut Registry,
        cmds: &mut dyn CommandHandler,
    ) -> Result<Option<String>> {
        self.load_header(r)?;
        Self::load_setup_all(reg)?;
        let result = self.load_main(r, reg, cmds).and_then(|end| match end {
            LoadEnd::Eof => self.load_trailer(r),
            LoadEnd::Quit => Ok(None),
        });
        let cleanup = Self::load_cleanup_all(reg);
        let vmdesc = result?;
        cleanup?;
        Ok(vmdesc)
    }

    /// `load_setup` on every active entry (before any section is read).
    pub fn load_setup_all(reg: &mut Registry) -> Result<()> {
        for e in reg.entries_mut() {
            if e.handlers.is_active() {
                e.handlers
                    .load_setup()
                    .map_err(|err| err.in_section(format!("section '{}' load_setup", e.idstr)))?;
            }
        }
        Ok(())
    }

    /// `load_cleanup` on every entry (always, after success or failure); the
    /// first error is returned after all have run.
    pub fn load_cleanup_all(reg: &mut Registry) -> Result<()> {
        let mut cleanup = Ok(());
        for e in reg.entries_mut() {
            if let Err(err) = e.handlers.load_cleanup() {
                cleanup = cleanup.and(Err(
                    err.in_section(format!("section '{}' load_cleanup", e.idstr))
                ));
            }
        }
        cleanup
    }

    /// Magic, version and (when expected) the configuration record.
    pub fn load_header(&mut self, r: &mut SectionReader) -> Result<()> {
        let at = r.position();
        let magic = r.read_u32()?;
        if magic != FILE_MAGIC {
            return Err(Error::at(ErrorKind::BadMagic { magic }, at));
        }
        let at = r.position();
        let version = r.read_u32()?;
        if version != FILE_VERSION {
            return Err(Error::at(
                ErrorKind::UnsupportedStreamVersion { version },
                at,
            ));
        }
        if let Some(ours) = &self.opts.configuration {
            let at = r.position();
            let ty = r.read_u8()?;
            if ty != RecordType::Configuration as u8 {
                return Err(Error::at(
                    ErrorKind::MissingConfiguration {
                        found: ty,
                        expected: ours.machine(),
                    },
                    at,
                ));
            }
            let mut theirs = Configuration::default();
            let had_uuid_before = theirs.uuid.clone();
            theirs
                .load(r, 0)
                .map_err(|e| e.in_section("configuration"))?;
            let had_uuid = theirs.uuid != had_uuid_before;
            ours.check_incoming(&theirs, had_uuid)
                .map_err(|e| e.with_offset(at).in_section("configuration"))?;
        } else {
            self.first_record = true;
        }
        Ok(())
    }

    /// The main loop: sections and commands until EOF (or a command says quit).
    pub fn load_main(
        &mut self,
        r: &mut SectionReader,
        reg: &mut Registry,
        cmds: &mut dyn CommandHandler,
    ) -> Result<LoadEnd> {
        self.load_main_inner(r, reg, cmds, false)
            .inspect_err(|e| tracing::warn!(error = %e, "load failed"))
    }

    fn load_main_inner(
        &mut self,
        r: &mut SectionReader,
        reg: &mut Registry,
        cmds: &mut dyn CommandHandler,
        in_package: bool,
    ) -> Result<LoadEnd> {
        loop {
            let at = r.position();
            let ty = r.read_u8()?;
            let first = std::mem::take(&mut self.first_record);
            if first && ty == RecordType::Configuration as u8 {
                // Its machine type, for the message (a record that does not
                // parse is reported without one).
                let mut theirs = Configuration::default();
                let stream_machine = theirs.load(r, 0).ok().map(|()| theirs.machine());
                return Err(Error::at(
                    ErrorKind::UnexpectedConfiguration { stream_machine },
                    at,
                ));
            }
            match RecordType::from_u8(ty) {
                Some(RecordType::Eof) => return Ok(LoadEnd::Eof),
                Some(t @ (RecordType::SectionStart | RecordType::SectionFull)) => {
                    self.section_start_full(r, reg, t, at)?
                }
                Some(RecordType::SectionPart | RecordType::SectionEnd) => {
                    self.section_part_end(r, reg, at)?
                }
                Some(RecordType::Command) => {
                    let cmd = Command::read(r, self.opts.version)?;
                    if let Command::Packaged(len) = cmd {
                        if in_package {
                            return Err(Error::at(
                                ErrorKind::MalformedCommand {
                                    name: MigCmd::Packaged.name(),
                                    reason: "nested package".into(),
                                },
                                at,
                            ));
                        }
                        if len > MAX_PACKAGE_LEN {
                            return Err(Error::at(
                                ErrorKind::MalformedCommand {
                                    name: MigCmd::Packaged.name(),
                                    reason: format!(
                                        "length {len} exceeds the limit of {MAX_PACKAGE_LEN}"
                                    ),
                                },
                                at,
                            ));
                        }
                        let base = r.position();
                        // The bytes are checked present first (over a socket they
                        // arrive a chunk at a time), then split off uncopied.
                        let package = r.read_split(len as usize)?;
                        let mut pr = Reader::with_base_offset(package, base);
                        if self.load_main_inner(&mut pr, reg, cmds, true)? == LoadEnd::Quit {
                            return Ok(LoadEnd::Quit);
                        }
                        continue;
                    }
                    if cmds.command(cmd, reg).map_err(|e| e.with_offset(at))? == LoadFlow::Quit {
                        return Ok(LoadEnd::Quit);
                    }
                }
                _ => return Err(Error::at(ErrorKind::UnknownRecordType { ty }, at)),
            }
        }
    }

    fn section_start_full(
        &mut self,
        r: &mut SectionReader,
        reg: &mut Registry,
        ty: RecordType,
        at: u64,
    ) -> Result<()> {
        let section_id = r.read_u32()?;
        let name = r.read_counted_bytes()?;
        if name.as_bytes().is_empty() {
            return Err(Error::at(ErrorKind::EmptyIdstr { section_id }, at));
        }
        let instance_id = r.read_u32()?;
        let version_id = r.read_u32()?;
        let what = format!(
            "section '{}' instance {instance_id} (id {section_id})",
            name.to_string_lossy()
        );
        let _span = tracing::trace_span!("section", section_id, version_id, what = %what).entered();
        let Some(index) = reg.position(name.as_bytes(), instance_id) else {
            return Err(Error::at(
                ErrorKind::UnknownSection {
                    idstr: name.to_string_lossy(),
                    instance_id,
                },
                at,
            ));
        };
        let entry = reg.get_mut(index).expect("index from position");
        if version_id > entry.version_id {
            return Err(Error::at(
                ErrorKind::VersionTooNew {
                    version: version_id,
                    max: entry.version_id,
                },
                at,
            )
            .in_section(what));
        }
        if ty == RecordType::SectionStart && !entry.handlers.is_iterative() {
            return Err(Error::at(ErrorKind::StartForNonIterative, at).in_section(what));
        }
        self.sections.insert(
            section_id,
            OpenSection {
                entry: index,
                version_id,
            },
        );
        entry
            .handlers
            .load_state(r, version_id)
            .map_err(|e| e.with_offset(r.position()).in_section(what.clone()))?;
        check_footer(r, section_id).map_err(|e| e.in_section(what))
    }

    fn section_part_end(
        &mut self,
        r: &mut SectionReader,
        reg: &mut Registry,
        at: u64,
    ) -> Result<()> {
        let section_id = r.read_u32()?;
        let Some(open) = self.sections.get(&section_id).copied() else {
            return Err(Error::at(ErrorKind::UnknownSectionId { section_id }, at));
        };
        let entry = reg
            .get_mut(open.entry)
            .ok_or_else(|| Error::new(ErrorKind::RegistryChanged))?;
        let what = format!(
            "section '{}' instance {} (id {section_id})",
            entry.idstr, entry.instance_id
        );
        let _span = tracing::trace_span!("section", section_id, what = %what).entered();
        entry
            .handlers
            .load_state(r, open.version_id)
            .map_err(|e| e.with_offset(r.position()).in_section(what.clone()))?;
        check_footer(r, section_id).map_err(|e| e.in_section(what))
    }

    /// After EOF: an optional vmdesc record (0x06, be32 len, JSON), read if the
    /// input has another byte ([`VmDescPolicy::IfPresent`]). The end of the
    /// input, or a transport error, means none; but a wait the destination ended
    /// itself (an idle timeout, a cancel) is reported, not taken for "none".
    pub fn load_vmdesc(r: &mut SectionReader) -> Result<Option<String>> {
        match r.require(1) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::TimedOut(_) | ErrorKind::Cancelled { .. }
                ) =>
            {
                return Err(e)
            }
            Err(_) => return Ok(None),
        }
        if r.peek_u8() != Some(RecordType::VmDescription as u8) {
            return Ok(None);
        }
        Self::read_vmdesc(r).map(Some)
    }

    /// After EOF: the vmdesc trailer as this loader's [`VmDescPolicy`] says.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use vmstate_runtime::savevm::{LoadOptions, StreamLoader, VmDescPolicy};
    /// use vmstate_runtime::wire::Reader;
    /// use vmstate_runtime::ErrorKind;
    ///
    /// let expect = |vmdesc| StreamLoader::new(LoadOptions::default().with_vmdesc(vmdesc));
    /// let mut r = Reader::new(BytesMut::from(&[0x06, 0, 0, 0, 2, b'{', b'}'][..]));
    /// assert_eq!(expect(VmDescPolicy::Expected).load_trailer(&mut r).unwrap().as_deref(), Some("{}"));
    /// // Suppressed: nothing is read, even when bytes follow.
    /// let mut r = Reader::new(BytesMut::from(&[0x06][..]));
    /// assert_eq!(expect(VmDescPolicy::Suppressed).load_trailer(&mut r).unwrap(), None);
    /// assert_eq!(r.remaining(), 1);
    /// let err = expect(VmDescPolicy::Expected).load_trailer(&mut Reader::new(BytesMut::from(&[7][..])));
    /// assert!(matches!(err.unwrap_err().kind(), ErrorKind::MissingVmDesc { found: 7 }));
    /// ```
    pub fn load_trailer(&self, r: &mut SectionReader) -> Result<Option<String>> {
        match self.opts.vmdesc {
            VmDescPolicy::IfPresent => Self::load_vmdesc(r),
            VmDescPolicy::Suppressed => Ok(None),
            VmDescPolicy::Expected => {
                let at = r.position();
                let found = r.peek_u8().map_or_else(|| r.read_u8(), Ok)?;
                if found != RecordType::VmDescription as u8 {
                    return Err(Error::at(ErrorKind::MissingVmDesc { found }, at));
                }
                Self::read_vmdesc(r).map(Some)
            }
        }
    }

    /// The vmdesc record at the read position (its type byte checked by the caller).
    fn read_vmdesc(r: &mut SectionReader) -> Result<String> {
        let at = r.position();
        r.read_u8()?;
        let len = r.read_u32()?;
        if len > MAX_VMDESC_LEN {
            return Err(Error::at(ErrorKind::VmDescTooLarge { len }, at));
        }
        // `read_vec` checks the bytes are there first; over a socket the reader
        // grows by a chunk per arrival, so a claimed length costs nothing until
        // the bytes come.
        let json = r.read_vec(len as usize)?;
        Ok(String::from_utf8(json)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

fn check_footer(r: &mut SectionReader, section_id: u32) -> Result<()> {
    let at = r.position();
    let marker = r.read_u8()?;
    if marker != RecordType::SectionFooter as u8 {
        return Err(Error::at(ErrorKind::MissingFooter { found: marker }, at));
    }
    let id = r.read_u32()?;
    if id != section_id {
        return Err(Error::at(
            ErrorKind::FooterMismatch {
                found: id,
                expected: section_id,
            },
            at,
        ));
    }
    Ok(())
}
