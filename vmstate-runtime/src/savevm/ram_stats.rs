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
/// let mut sum = RamStats::new(4096).with_normal(2).with_normal_bytes(8192);
/// sum += RamStats::new(4096).with_normal(1).with_normal_bytes(4096).with_duplicate(5);
/// assert_eq!((sum.normal, sum.normal_bytes, sum.duplicate), (3, 12288, 5));
/// assert_eq!(sum.page_size, 4096);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct RamStats {
    /// Pages sent whole ("normal").
    pub normal: u64,
    /// Pages sent as all-zero records, without payload ("duplicate").
    pub duplicate: u64,
    /// Payload bytes of the pages sent whole ("normal-bytes").
    pub normal_bytes: u64,
    /// Dirty-bitmap syncs done by the RAM code ("dirty-sync-count").
    pub dirty_sync_count: u64,
    /// Pages the guest dirtied per second, measured over the dirty syncs of
    /// the last second or more ("dirty-pages-rate").
    pub dirty_pages_rate: u64,
    /// Bytes of RAM sections sent while the guest ran, before switchover
    /// ("precopy-bytes").
    pub precopy_bytes: u64,
    /// Bytes of RAM sections sent with the guest stopped ("downtime-bytes").
    pub downtime_bytes: u64,
    /// Bytes of RAM sections sent in postcopy ("postcopy-bytes").
    pub postcopy_bytes: u64,
    /// Page requests the destination sent over the return path, each counted
    /// on arrival, valid or not, as QEMU counts them ("postcopy-requests").
    pub postcopy_requests: u64,
    /// The target page size the counts are in ("page-size").
    pub page_size: u64,
    /// The XBZRLE counters (QMP `query-migrate`'s "xbzrle-cache"), when the
    /// `xbzrle` capability is on.
    pub xbzrle: Option<XbzrleStats>,
}

/// XBZRLE counters, named after the members of QMP `query-migrate`'s
/// "xbzrle-cache" object.
///
/// ```
/// use vmstate_runtime::savevm::XbzrleStats;
///
/// let mut a = XbzrleStats::new(1 << 20).with_pages(2).with_bytes(100).with_cache_miss(1);
/// a += XbzrleStats::new(1 << 20).with_pages(1).with_bytes(50).with_overflow(1);
/// assert_eq!((a.pages, a.bytes, a.cache_miss, a.overflow), (3, 150, 1, 1));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct XbzrleStats {
    /// The cache size in bytes ("cache-size", the `xbzrle-cache-size` parameter).
    pub cache_size: u64,
    /// Bytes of XBZRLE records (without their 8-byte record words) and of
    /// pages that overflowed ("bytes").
    pub bytes: u64,
    /// XBZRLE records sent ("pages").
    pub pages: u64,
    /// Pages not found in the cache (sent whole) ("cache-miss").
    pub cache_miss: u64,
    /// Cache misses per page sent in the last sync period ("cache-miss-rate").
    pub cache_miss_rate: f64,
    /// Page bytes per encoded byte in the last sync period ("encoding-rate").
    pub encoding_rate: f64,
    /// Pages whose encoding did not fit in a page (sent whole) ("overflow").
    pub overflow: u64,
}

impl RamStats {
    /// All counts zero, in pages of `page_size` bytes.
    pub fn new(page_size: u64) -> Self {
        RamStats {
            page_size,
            ..Self::default()
        }
    }
}

with_setters!(RamStats {
    with_normal => normal: [u64],
    with_duplicate => duplicate: [u64],
    with_normal_bytes => normal_bytes: [u64],
    with_dirty_sync_count => dirty_sync_count: [u64],
    with_dirty_pages_rate => dirty_pages_rate: [u64],
    with_precopy_bytes => precopy_bytes: [u64],
    with_downtime_bytes => downtime_bytes: [u64],
    with_postcopy_bytes => postcopy_bytes: [u64],
    with_postcopy_requests => postcopy_requests: [u64],
    with_page_size => page_size: [u64],
    with_xbzrle => xbzrle: into [Option<XbzrleStats>],
});

impl XbzrleStats {
    /// All counts zero, for a cache of `cache_size` bytes.
    pub fn new(cache_size: u64) -> Self {
        XbzrleStats {
            cache_size,
            ..Self::default()
        }
    }
}

with_setters!(XbzrleStats {
    with_cache_size => cache_size: [u64],
    with_bytes => bytes: [u64],
    with_pages => pages: [u64],
    with_cache_miss => cache_miss: [u64],
    with_cache_miss_rate => cache_miss_rate: [f64],
    with_encoding_rate => encoding_rate: [f64],
    with_overflow => overflow: [u64],
});

impl std::ops::AddAssign for XbzrleStats {
    /// Adds another handler's counts; the cache sizes add up, the rates are
    /// the larger of the two.
    fn add_assign(&mut self, o: XbzrleStats) {
        self.cache_size += o.cache_size;
        self.bytes += o.bytes;
        self.pages += o.pages;
        self.cache_miss += o.cache_miss;
        self.cache_miss_rate = self.cache_miss_rate.max(o.cache_miss_rate);
        self.encoding_rate = self.encoding_rate.max(o.encoding_rate);
        self.overflow += o.overflow;
    }
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
        self.dirty_pages_rate += o.dirty_pages_rate;
        self.precopy_bytes += o.precopy_bytes;
        self.downtime_bytes += o.downtime_bytes;
        self.postcopy_bytes += o.postcopy_bytes;
        self.postcopy_requests += o.postcopy_requests;
        if self.page_size == 0 {
            self.page_size = o.page_size;
        }
        self.xbzrle = match (self.xbzrle, o.xbzrle) {
            (Some(mut a), Some(b)) => {
                a += b;
                Some(a)
            }
            (a, b) => a.or(b),
        };
    }
}
