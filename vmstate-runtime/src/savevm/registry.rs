//! The registry of migratable components (QEMU's `savevm_state.handlers` list):
//! priority order, section ids and instance ids as QEMU allocates them.

use std::sync::{Arc, Mutex};

use super::format::{INSTANCE_ID_ANY, MAX_IDSTR_LEN};
use super::handlers::{SaveVmHandlers, VmStateHandler};
use super::postcopy_ram::PostcopyRam;
use super::ram_stats::RamStats;
use crate::error::{Error, ErrorKind, Result};
use crate::priority::MigrationPriority;
use crate::vmstate::VmState;

/// One registered component (QEMU's `SaveStateEntry`).
pub struct SaveStateEntry {
    /// Section name on the wire (`ram`, `pckbd`, `0000:00:02.0/virtio-net`).
    pub idstr: String,
    /// Instance number on the wire.
    pub instance_id: u32,
    /// Another instance id this entry also answers to on load.
    pub alias_id: Option<u32>,
    /// Section id (allocated in registration order, as QEMU does).
    pub section_id: u32,
    /// Version written in section headers; loads accept up to this.
    pub version_id: u32,
    /// Ordering priority.
    pub priority: MigrationPriority,
    /// The handlers.
    pub handlers: Box<dyn SaveVmHandlers>,
}

impl std::fmt::Debug for SaveStateEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaveStateEntry")
            .field("idstr", &self.idstr)
            .field("instance_id", &self.instance_id)
            .field("section_id", &self.section_id)
            .field("version_id", &self.version_id)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

/// The ordered list of registered components.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use vmstate_runtime::savevm::{Registry, InstanceId};
/// use vmstate_runtime::VmState;
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "pit", version = 3)]
/// struct Pit { count: u16 }
///
/// let mut reg = Registry::new();
/// let a = reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(Pit::default()))).unwrap();
/// let b = reg.vmstate_register(InstanceId::Any, Arc::new(Mutex::new(Pit::default()))).unwrap();
/// assert_eq!((a, b), (0, 1)); // section ids in registration order
/// let instances: Vec<u32> = reg.entries().map(|e| e.instance_id).collect();
/// assert_eq!(instances, [0, 1]);
/// ```
#[derive(Debug, Default)]
pub struct Registry {
    entries: Vec<SaveStateEntry>,
    next_section_id: u32,
}

/// How to number an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceId {
    /// This exact number.
    Fixed(u32),
    /// One more than the highest instance with the same idstr (0 for the first).
    Any,
}

impl From<u32> for InstanceId {
    fn from(v: u32) -> Self {
        if v == INSTANCE_ID_ANY {
            InstanceId::Any
        } else {
            InstanceId::Fixed(v)
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a component with its own handlers (QEMU `register_savevm_live`);
    /// returns its section id.
    pub fn register_savevm_live(
        &mut self,
        idstr: &str,
        instance_id: impl Into<InstanceId>,
        version_id: u32,
        handlers: Box<dyn SaveVmHandlers>,
    ) -> Result<u32> {
        self.insert(
            idstr,
            instance_id.into(),
            version_id,
            MigrationPriority::Default,
            handlers,
        )
    }

    /// Registers a `VmState` device under its description's name, version and
    /// priority (QEMU `vmstate_register`); returns its section id.
    pub fn vmstate_register<T: VmState + Send + 'static>(
        &mut self,
        instance_id: impl Into<InstanceId>,
        device: Arc<Mutex<T>>,
    ) -> Result<u32> {
        self.vmstate_register_at(None, instance_id, device)
    }

    /// Like [`vmstate_register`](Self::vmstate_register), with a device path
    /// prefix (`0000:00:02.0` gives idstr `0000:00:02.0/<name>`, as for PCI).
    pub fn vmstate_register_at<T: VmState + Send + 'static>(
        &mut self,
        dev_path: Option<&str>,
        instance_id: impl Into<InstanceId>,
        device: Arc<Mutex<T>>,
    ) -> Result<u32> {
        let desc = T::DESCRIPTION;
        let idstr = match dev_path {
            Some(p) => format!("{p}/{}", desc.name),
            None => desc.name.to_string(),
        };
        self.insert(
            &idstr,
            instance_id.into(),
            desc.version_id,
            desc.priority,
            Box::new(VmStateHandler::new(device)),
        )
    }

    /// Adds an alias instance id the entry also answers to on load.
    pub fn set_alias(&mut self, section_id: u32, alias_id: u32) -> Result<()> {
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.section_id == section_id)
            .ok_or_else(|| Error::new(ErrorKind::NoSuchSection { section_id }))?;
        e.alias_id = Some(alias_id);
        Ok(())
    }

    fn insert(
        &mut self,
        idstr: &str,
        instance_id: InstanceId,
        version_id: u32,
        priority: MigrationPriority,
        handlers: Box<dyn SaveVmHandlers>,
    ) -> Result<u32> {
        if idstr.is_empty() || idstr.len() > MAX_IDSTR_LEN {
            return Err(Error::new(ErrorKind::BadIdstr {
                idstr: idstr.to_string(),
            }));
        }
        let instance_id = match instance_id {
            InstanceId::Fixed(i) => {
                if self.find(idstr, i).is_some() {
                    return Err(Error::new(ErrorKind::DuplicateInstance {
                        idstr: idstr.to_string(),
                        instance_id: i,
                    }));
                }
                i
            }
            InstanceId::Any => self
                .entries
                .iter()
                .filter(|e| e.idstr == idstr)
                .map(|e| e.instance_id + 1)
                .max()
                .unwrap_or(0),
        };
        // QEMU resolves PART/END sections by comparing the stream's section id
        // with every entry's remembered START id, which is 0 for entries that
        // never had a START: an iterative section with id 0 would be taken for
        // the first registered device. So iterative sections never get id 0.
        if self.next_section_id == 0 && handlers.is_iterative() {
            self.next_section_id = 1;
        }
        let section_id = self.next_section_id;
        self.next_section_id += 1;
        let entry = SaveStateEntry {
            idstr: idstr.to_string(),
            instance_id,
            alias_id: None,
            section_id,
            version_id,
            priority,
            handlers,
        };
        // Before the first entry of lower priority (the list stays sorted, stable
        // within a priority), as QEMU's savevm_state_handler_insert.
        let at = self
            .entries
            .iter()
            .position(|e| e.priority < priority)
            .unwrap_or(self.entries.len());
        self.entries.insert(at, entry);
        Ok(section_id)
    }

    /// Removes an entry; returns whether it existed.
    pub fn unregister(&mut self, idstr: &str, instance_id: u32) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|e| !(e.idstr == idstr && e.instance_id == instance_id));
        before != self.entries.len()
    }

    /// The entry answering to `idstr` and `instance_id` (or its alias).
    pub fn find(&self, idstr: &str, instance_id: u32) -> Option<&SaveStateEntry> {
        self.position(idstr.as_bytes(), instance_id)
            .map(|i| &self.entries[i])
    }

    /// Index of the entry answering to `idstr`/`instance_id`, for mutable access.
    pub fn position(&self, idstr: &[u8], instance_id: u32) -> Option<usize> {
        self.entries.iter().position(|e| {
            e.idstr.as_bytes() == idstr
                && (e.instance_id == instance_id || e.alias_id == Some(instance_id))
        })
    }

    /// Entries in stream order.
    pub fn entries(&self) -> impl Iterator<Item = &SaveStateEntry> {
        self.entries.iter()
    }

    /// Entries in stream order, mutable.
    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut SaveStateEntry> {
        self.entries.iter_mut()
    }

    /// The postcopy-capable RAM interfaces of the entries that have one
    /// ([`SaveVmHandlers::as_postcopy_ram`]), in stream order.
    pub fn postcopy_rams(&mut self) -> impl Iterator<Item = &mut (dyn PostcopyRam + '_)> {
        self.entries
            .iter_mut()
            .filter_map(|e| e.handlers.as_postcopy_ram())
    }

    /// The RAM counters of the entries that report them
    /// ([`SaveVmHandlers::ram_stats`]), added up; `None` when no entry does.
    pub fn ram_stats(&self) -> Option<RamStats> {
        self.entries
            .iter()
            .filter_map(|e| e.handlers.ram_stats())
            .reduce(|mut sum, s| {
                sum += s;
                sum
            })
    }

    /// The entry at an index from [`position`](Self::position).
    pub fn get_mut(&mut self, index: usize) -> Option<&mut SaveStateEntry> {
        self.entries.get_mut(index)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::savevm::handlers::SectionReader;

    struct Nop;
    impl SaveVmHandlers for Nop {
        fn load_state(&mut self, _r: &mut SectionReader, _v: u32) -> Result<()> {
            Ok(())
        }
    }

    /// A RAM handler owning one block, opted into the postcopy hooks.
    struct Ram(&'static str);
    impl SaveVmHandlers for Ram {
        fn is_iterative(&self) -> bool {
            true
        }
        fn load_state(&mut self, _r: &mut SectionReader, _v: u32) -> Result<()> {
            Ok(())
        }
        fn as_postcopy_ram(&mut self) -> Option<&mut dyn PostcopyRam> {
            Some(self)
        }
    }
    impl PostcopyRam for Ram {
        fn ram_block_names(&self) -> Vec<String> {
            vec![self.0.to_string()]
        }
    }

    #[test]
    fn postcopy_rams_are_the_handlers_that_opted_in_in_stream_order() {
        let mut reg = Registry::new();
        reg.register_savevm_live("dev", 0, 1, Box::new(Nop))
            .unwrap();
        reg.register_savevm_live("ram", 0, 4, Box::new(Ram("pc.ram")))
            .unwrap();
        reg.register_savevm_live("ram", 1, 4, Box::new(Ram("pc.bios")))
            .unwrap();
        let blocks: Vec<Vec<String>> = reg.postcopy_rams().map(|r| r.ram_block_names()).collect();
        assert_eq!(blocks, [["pc.ram"], ["pc.bios"]]);
        // Everything else keeps the default: no postcopy RAM interface.
        assert!(Nop.as_postcopy_ram().is_none());
    }

    /// A handler reporting fixed RAM counters.
    struct Counted(RamStats);
    impl SaveVmHandlers for Counted {
        fn load_state(&mut self, _r: &mut SectionReader, _v: u32) -> Result<()> {
            Ok(())
        }
        fn ram_stats(&self) -> Option<RamStats> {
            Some(self.0)
        }
    }

    #[test]
    fn ram_stats_add_up_the_handlers_that_report_them() {
        let mut reg = Registry::new();
        reg.register_savevm_live("dev", 0, 1, Box::new(Nop))
            .unwrap();
        assert_eq!(reg.ram_stats(), None, "no handler reports RAM counters");
        let a = RamStats {
            normal: 3,
            duplicate: 1,
            normal_bytes: 3 * 4096,
            dirty_sync_count: 2,
            precopy_bytes: 100,
            downtime_bytes: 10,
            postcopy_bytes: 1,
            page_size: 4096,
            ..RamStats::default()
        };
        let b = RamStats {
            normal: 1,
            normal_bytes: 4096,
            page_size: 4096,
            ..RamStats::default()
        };
        reg.register_savevm_live("ram", 0, 4, Box::new(Counted(a)))
            .unwrap();
        reg.register_savevm_live("ram", 1, 4, Box::new(Counted(b)))
            .unwrap();
        let sum = reg.ram_stats().unwrap();
        assert_eq!(
            sum,
            RamStats {
                normal: 4,
                normal_bytes: 4 * 4096,
                ..a
            }
        );
        assert!(Nop.ram_stats().is_none());
    }

    #[test]
    fn priority_order_is_stable_and_descending() {
        let mut reg = Registry::new();
        reg.insert(
            "a",
            InstanceId::Any,
            1,
            MigrationPriority::Default,
            Box::new(Nop),
        )
        .unwrap();
        reg.insert(
            "b",
            InstanceId::Any,
            1,
            MigrationPriority::Iommu,
            Box::new(Nop),
        )
        .unwrap();
        reg.insert(
            "c",
            InstanceId::Any,
            1,
            MigrationPriority::Default,
            Box::new(Nop),
        )
        .unwrap();
        reg.insert(
            "d",
            InstanceId::Any,
            1,
            MigrationPriority::GicV3,
            Box::new(Nop),
        )
        .unwrap();
        reg.insert(
            "e",
            InstanceId::Any,
            1,
            MigrationPriority::Iommu,
            Box::new(Nop),
        )
        .unwrap();
        let order: Vec<_> = reg
            .entries()
            .map(|e| (e.idstr.as_str(), e.section_id))
            .collect();
        assert_eq!(order, [("d", 3), ("b", 1), ("e", 4), ("a", 0), ("c", 2)]);
    }

    struct Live;
    impl SaveVmHandlers for Live {
        fn is_iterative(&self) -> bool {
            true
        }
        fn load_state(&mut self, _r: &mut SectionReader, _v: u32) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn iterative_sections_never_get_id_zero() {
        let mut reg = Registry::new();
        assert_eq!(
            reg.register_savevm_live("ram", 0, 4, Box::new(Live))
                .unwrap(),
            1
        );
        assert_eq!(
            reg.register_savevm_live("dev", 0, 1, Box::new(Nop))
                .unwrap(),
            2
        );
        let mut reg = Registry::new();
        assert_eq!(
            reg.register_savevm_live("timer", 0, 2, Box::new(Nop))
                .unwrap(),
            0
        );
        assert_eq!(
            reg.register_savevm_live("ram", 0, 4, Box::new(Live))
                .unwrap(),
            1
        );
    }

    #[test]
    fn instance_ids_and_duplicates() {
        let mut reg = Registry::new();
        reg.register_savevm_live("dma", 1, 1, Box::new(Nop))
            .unwrap();
        assert!(reg
            .register_savevm_live("dma", 1, 1, Box::new(Nop))
            .is_err());
        reg.register_savevm_live("dma", INSTANCE_ID_ANY, 1, Box::new(Nop))
            .unwrap();
        assert!(reg.find("dma", 2).is_some());
        let id = reg.register_savevm_live("x", 0, 1, Box::new(Nop)).unwrap();
        reg.set_alias(id, 7).unwrap();
        assert_eq!(reg.find("x", 7).map(|e| e.section_id), Some(id));
        assert!(reg.unregister("dma", 1));
        assert!(!reg.unregister("dma", 1));
        assert!(reg.register_savevm_live("", 0, 1, Box::new(Nop)).is_err());
    }
}
