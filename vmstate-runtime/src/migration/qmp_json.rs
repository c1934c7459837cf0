//! The `serde` feature: capabilities, parameters and statistics as QMP's JSON
//! (qapi/migration.json), so a QMP front end or a tool written for QEMU reads
//! the same members.
//!
//! * [`MigrationCapabilities`]: the `query-migrate-capabilities` reply (and
//!   the `capabilities` argument of `migrate-set-capabilities`), a list of
//!   `{"capability": NAME, "state": BOOL}`;
//! * [`MigrationParameters`](super::MigrationParameters): the `query-migrate-parameters` reply (and the
//!   `migrate-set-parameters` arguments: missing members keep their default,
//!   unknown ones are an error), `{"downtime-limit": ..., ...}`;
//! * [`MigrationStats`]: the `query-migrate` reply (QMP `MigrationInfo`),
//!   with the members QEMU 7.2 shows in each status (`{}` before any
//!   migration; `ram` and the times while running and once completed;
//!   `error-desc` when failed);
//! * [`MigrationStatus`]: its QAPI string.
//!
//! The `ram` object carries the counters this runtime keeps; QEMU's members it
//! does not track (`skipped`, `multifd-bytes`,
//! `pages-per-second`, `dirty-sync-missed-zero-copy`) are left out rather
//! than reported as zero.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::params::MigrationCapabilities;
use super::stats::MigrationStats;
use super::status::MigrationStatus;
use crate::savevm::{RamStats, XbzrleStats};

impl Serialize for MigrationStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MigrationStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        MigrationStatus::ALL
            .iter()
            .copied()
            .find(|st| st.as_str() == name)
            .ok_or_else(|| de::Error::custom(format!("unknown migration status '{name}'")))
    }
}

/// One `MigrationCapabilityStatus`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapabilityStatus {
    capability: String,
    state: bool,
}

impl Serialize for MigrationCapabilities {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let all = self.qmp_states();
        let mut seq = s.serialize_seq(Some(all.len()))?;
        for (capability, state) in all {
            seq.serialize_element(&CapabilityStatus {
                capability: capability.to_owned(),
                state,
            })?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for MigrationCapabilities {
    /// A `migrate-set-capabilities` list applied to the defaults (all off);
    /// an unknown capability name is an error.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = MigrationCapabilities;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of {\"capability\": NAME, \"state\": BOOL}")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut caps = MigrationCapabilities::default();
                while let Some(c) = a.next_element::<CapabilityStatus>()? {
                    caps.set(&c.capability, c.state)
                        .map_err(de::Error::custom)?;
                }
                Ok(caps)
            }
        }
        d.deserialize_seq(List)
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The `ram` member of `query-migrate` (QMP `MigrationStats`).
struct RamInfo<'a>(&'a MigrationStats);

impl Serialize for RamInfo<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("transferred", &st.transferred)?;
        m.serialize_entry("remaining", &st.remaining)?;
        m.serialize_entry("total", &st.total)?;
        // Megabits per second, as QEMU's `mbps`.
        m.serialize_entry("mbps", &(st.throughput_bps * 8.0 / 1e6))?;
        match &st.ram {
            Some(r) => ram_counters(&mut m, r)?,
            None => m.serialize_entry("dirty-sync-count", &st.dirty_sync_count)?,
        }
        m.end()
    }
}

fn ram_counters<M: SerializeMap>(m: &mut M, r: &RamStats) -> Result<(), M::Error> {
    m.serialize_entry("duplicate", &r.duplicate)?;
    m.serialize_entry("normal", &r.normal)?;
    m.serialize_entry("normal-bytes", &r.normal_bytes)?;
    m.serialize_entry("dirty-pages-rate", &r.dirty_pages_rate)?;
    m.serialize_entry("dirty-sync-count", &r.dirty_sync_count)?;
    m.serialize_entry("page-size", &r.page_size)?;
    m.serialize_entry("precopy-bytes", &r.precopy_bytes)?;
    m.serialize_entry("downtime-bytes", &r.downtime_bytes)?;
    m.serialize_entry("postcopy-bytes", &r.postcopy_bytes)?;
    m.serialize_entry("postcopy-requests", &r.postcopy_requests)
}

impl Serialize for RamStats {
    /// The RAM counters with their QMP names (the members of `query-migrate`'s
    /// `ram` object that come from the RAM handlers).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        ram_counters(&mut m, self)?;
        m.end()
    }
}

impl Serialize for XbzrleStats {
    /// QMP `XBZRLECacheStats`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("cache-size", &self.cache_size)?;
        m.serialize_entry("bytes", &self.bytes)?;
        m.serialize_entry("pages", &self.pages)?;
        m.serialize_entry("cache-miss", &self.cache_miss)?;
        m.serialize_entry("cache-miss-rate", &self.cache_miss_rate)?;
        m.serialize_entry("encoding-rate", &self.encoding_rate)?;
        m.serialize_entry("overflow", &self.overflow)?;
        m.end()
    }
}

impl Serialize for MigrationStats {
    /// The `query-migrate` reply (QMP `MigrationInfo`), with the members QEMU
    /// 7.2 fills in for this status.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use MigrationStatus as St;
        let mut m = s.serialize_map(None)?;
        if self.status == St::None {
            return m.end();
        }
        m.serialize_entry("status", &self.status)?;
        match self.status {
            St::Active
            | St::Cancelling
            | St::PostcopyActive
            | St::PreSwitchover
            | St::Device
            | St::PostcopyPaused
            | St::PostcopyRecover
            | St::Completed => {
                m.serialize_entry("setup-time", &ms(self.setup_time))?;
                m.serialize_entry("total-time", &ms(self.total_time))?;
                if self.status == St::Completed {
                    if let Some(d) = self.downtime {
                        m.serialize_entry("downtime", &ms(d))?;
                    }
                } else if let Some(d) = self.expected_downtime {
                    m.serialize_entry("expected-downtime", &ms(d))?;
                }
                m.serialize_entry("ram", &RamInfo(self))?;
                if let Some(x) = self.ram.as_ref().and_then(|r| r.xbzrle.as_ref()) {
                    m.serialize_entry("xbzrle-cache", x)?;
                }
            }
            St::Failed => {
                if let Some(e) = &self.error {
                    m.serialize_entry("error-desc", e)?;
                }
            }
            St::None | St::Setup | St::Cancelled | St::Colo | St::WaitUnplug => {}
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_round_trips_through_its_qapi_string() {
        for st in MigrationStatus::ALL {
            let j = serde_json::to_string(st).unwrap();
            assert_eq!(j, format!("\"{}\"", st.as_str()));
            assert_eq!(serde_json::from_str::<MigrationStatus>(&j).unwrap(), *st);
        }
        assert!(serde_json::from_str::<MigrationStatus>("\"bogus\"").is_err());
    }
}
