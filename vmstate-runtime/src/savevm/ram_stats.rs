//! [`RamStats`]: the "ram" member of QMP `query-migrate`, as a handler that
//! migrates guest RAM reports it. The runtime knows nothing of RAM: it asks every
//! handler ([`SaveVmHandlers::ram_stats`](super::SaveVmHandlers::ram_stats)) and
//! shows what those that answer report.

/// RAM counters of an outgoing migration, named after the members of QMP
/// `query-migrate`'s "ram" object. All counts are since the migration started.
///
/// ```
/// use vmstate_runtime::savevm::RamStats;
///
/// let mut sum = RamStats { normal: 2, normal_bytes: 8192, page_size: 4096, ..RamStats::default() };
/// sum += RamStats { normal: 1, normal_bytes: 4096, duplicate: 5, page_size: 4096, ..RamStats::default() };
/// assert_eq!((sum.normal, sum.normal_bytes, sum.duplicate), (3, 12288, 5));
/// assert_eq!(sum.page_size, 4096);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RamStats {
    /// Pages sent whole ("normal").
    pub normal: u64,
    /// Pages sent as all-zero records, without payload ("duplicate").
    pub duplicate: u64,
    /// Payload bytes of the pages sent whole ("normal-bytes").
    pub normal_bytes: u64,
    /// Dirty-bitmap syncs done by the RAM code ("dirty-sync-count").
    pub dirty_sync_count: u64,
    /// Bytes of RAM sections sent while the guest ran, before switchover
    /// ("precopy-bytes").
    pub precopy_bytes: u64,
    /// Bytes of RAM sections sent with the guest stopped ("downtime-bytes").
    pub downtime_bytes: u64,
    /// Bytes of RAM sections sent in postcopy ("postcopy-bytes").
    pub postcopy_bytes: u64,
    /// The target page size the counts are in ("page-size").
    pub page_size: u64,
}

impl std::ops::AddAssign for RamStats {
    /// Adds another handler's counts (several RAM handlers show as one "ram"
    /// object, as QEMU's single RAM section does); the page size is the first
    /// non-zero one.
    fn add_assign(&mut self, o: RamStats) {
        self.normal += o.normal;
        self.duplicate += o.duplicate;
        self.normal_bytes += o.normal_bytes;
        self.dirty_sync_count += o.dirty_sync_count;
        self.precopy_bytes += o.precopy_bytes;
        self.downtime_bytes += o.downtime_bytes;
        self.postcopy_bytes += o.postcopy_bytes;
        if self.page_size == 0 {
            self.page_size = o.page_size;
        }
    }
}
