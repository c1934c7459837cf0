//! Section ordering priority (QEMU's `MigrationPriority`).

/// Orders sections in a stream: higher priorities are saved first, registration
/// order within a priority. It has no wire representation of its own.
///
/// The numeric values differ between QEMU 7.2 and later versions (which added
/// `Low` and `Apic`); both tables are available.
///
/// `#[vmstate(priority = Iommu)]` names one of these variants: the derive passes the
/// name through to the generated code and rustc resolves it (an unknown name is an
/// error at the attribute, with a similar-name hint), so this enum is the only list
/// of priorities.
///
/// ```
/// use vmstate_runtime::MigrationPriority;
/// assert!(MigrationPriority::Iommu > MigrationPriority::Default);
/// assert_eq!(MigrationPriority::Default.qemu_7_2_value(), Some(0));
/// assert_eq!(MigrationPriority::Default.qemu_master_value(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum MigrationPriority {
    /// Below default (QEMU master only, used by vfio cpr-legacy).
    Low,
    /// Almost every device.
    #[default]
    Default,
    /// IOMMUs: must be loaded before the devices behind them.
    Iommu,
    /// PCI buses and bridges.
    PciBus,
    /// virtio-mem.
    VirtioMem,
    /// The local APIC (QEMU master only).
    Apic,
    /// ARM GICv3 ITS.
    GicV3Its,
    /// ARM GICv3.
    GicV3,
}

impl MigrationPriority {
    /// The value in QEMU 7.2 (`None` for priorities 7.2 does not have; it treats
    /// them as `Default`).
    ///
    /// ```
    /// use vmstate_runtime::MigrationPriority;
    ///
    /// assert_eq!(MigrationPriority::Iommu.qemu_7_2_value(), Some(1));
    /// assert_eq!(MigrationPriority::GicV3.qemu_7_2_value(), Some(5));
    /// // 7.2 has no Apic priority.
    /// assert_eq!(MigrationPriority::Apic.qemu_7_2_value(), None);
    /// ```
    pub const fn qemu_7_2_value(self) -> Option<u8> {
        match self {
            MigrationPriority::Low | MigrationPriority::Apic => None,
            MigrationPriority::Default => Some(0),
            MigrationPriority::Iommu => Some(1),
            MigrationPriority::PciBus => Some(2),
            MigrationPriority::VirtioMem => Some(3),
            MigrationPriority::GicV3Its => Some(4),
            MigrationPriority::GicV3 => Some(5),
        }
    }

    /// The value in QEMU master (10.x).
    ///
    /// ```
    /// use vmstate_runtime::MigrationPriority;
    ///
    /// assert_eq!(MigrationPriority::Low.qemu_master_value(), 1);
    /// assert_eq!(MigrationPriority::Apic.qemu_master_value(), 6);
    /// assert_eq!(MigrationPriority::GicV3.qemu_master_value(), 8);
    /// ```
    pub const fn qemu_master_value(self) -> u8 {
        match self {
            MigrationPriority::Low => 1,
            MigrationPriority::Default => 2,
            MigrationPriority::Iommu => 3,
            MigrationPriority::PciBus => 4,
            MigrationPriority::VirtioMem => 5,
            MigrationPriority::Apic => 6,
            MigrationPriority::GicV3Its => 7,
            MigrationPriority::GicV3 => 8,
        }
    }
}
