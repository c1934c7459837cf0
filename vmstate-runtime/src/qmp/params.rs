//! QEMU 7.2's migration parameters (qapi/migration.json `MigrateSetParameters`),
//! in schema order (the order QEMU reads, and so reports type errors, in),
//! with their types, defaults (migration/migration.c) and range checks
//! (`migrate_params_check`, with QEMU's texts).

use serde_json::Value;

use super::args::{check_enum, Args};
use super::QmpError;
use crate::migration::{DEFAULT_DOWNTIME_LIMIT_MS, DEFAULT_MAX_BANDWIDTH, MAX_DOWNTIME_LIMIT_MS};

/// The parameters the runtime itself reads.
pub const RUNTIME_PARAMETERS: &[&str] =
    &["downtime-limit", "max-bandwidth", "max-postcopy-bandwidth"];

/// A parameter's QAPI type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `size` / `uint64`.
    U64,
    /// `uint32`.
    U32,
    /// `uint8`.
    U8,
    /// `bool`.
    Bool,
    /// `StrOrNull`.
    StrOrNull,
    /// An enum with these values.
    Enum(&'static [&'static str]),
    /// A list (`block-bitmap-mapping`): never stored here.
    List,
}

impl ParamKind {
    /// Reads member `name` of this type, with QEMU's type errors.
    pub(super) fn read(self, a: &mut Args<'_>, name: &str) -> Result<Option<Value>, QmpError> {
        Ok(match self {
            ParamKind::U64 => a.opt_u64(name)?.map(Value::from),
            ParamKind::U32 => a
                .opt_uint(name, u64::from(u32::MAX), "uint32_t")?
                .map(Value::from),
            ParamKind::U8 => a
                .opt_uint(name, u64::from(u8::MAX), "uint8_t")?
                .map(Value::from),
            ParamKind::Bool => a.opt_bool(name)?.map(Value::Bool),
            ParamKind::StrOrNull => match a.opt_any(name) {
                None => None,
                Some(Value::Null) => Some(Value::String(String::new())),
                Some(Value::String(s)) => Some(Value::String(s.clone())),
                Some(_) => {
                    return Err(QmpError::generic(format!(
                        "Invalid parameter type for '{}', expected: string or null",
                        a.full(name)
                    )))
                }
            },
            ParamKind::Enum(values) => match a.opt_str(name)? {
                None => None,
                Some(s) => {
                    check_enum(Some(name), &s, values)?;
                    Some(Value::String(s))
                }
            },
            ParamKind::List => a.opt_array(name)?.map(|l| Value::Array(l.clone())),
        })
    }
}

/// A default value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// A number.
    U64(u64),
    /// A flag.
    Bool(bool),
    /// A string.
    Str(&'static str),
    /// No value (a list absent by default).
    Absent,
}

impl DefaultValue {
    /// As JSON (`null` for [`DefaultValue::Absent`]).
    pub fn to_value(self) -> Value {
        match self {
            DefaultValue::U64(v) => Value::from(v),
            DefaultValue::Bool(b) => Value::Bool(b),
            DefaultValue::Str(s) => Value::String(s.into()),
            DefaultValue::Absent => Value::Null,
        }
    }
}

/// One parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// QMP name.
    pub name: &'static str,
    /// Its type.
    pub kind: ParamKind,
    /// QEMU's default.
    pub default: DefaultValue,
}

const fn p(name: &'static str, kind: ParamKind, default: DefaultValue) -> Param {
    Param {
        name,
        kind,
        default,
    }
}

use DefaultValue::{Absent, Bool, Str, U64};
use ParamKind as K;

/// Every parameter of QEMU 7.2, in schema order.
pub const PARAMETERS: &[Param] = &[
    p("announce-initial", K::U64, U64(50)),
    p("announce-max", K::U64, U64(550)),
    p("announce-rounds", K::U64, U64(5)),
    p("announce-step", K::U64, U64(100)),
    p("compress-level", K::U8, U64(1)),
    p("compress-threads", K::U8, U64(8)),
    p("compress-wait-thread", K::Bool, Bool(true)),
    p("decompress-threads", K::U8, U64(2)),
    p("throttle-trigger-threshold", K::U8, U64(50)),
    p("cpu-throttle-initial", K::U8, U64(20)),
    p("cpu-throttle-increment", K::U8, U64(10)),
    p("cpu-throttle-tailslow", K::Bool, Bool(false)),
    p("tls-creds", K::StrOrNull, Str("")),
    p("tls-hostname", K::StrOrNull, Str("")),
    p("tls-authz", K::StrOrNull, Str("")),
    p("max-bandwidth", K::U64, U64(DEFAULT_MAX_BANDWIDTH)),
    p("downtime-limit", K::U64, U64(DEFAULT_DOWNTIME_LIMIT_MS)),
    p("x-checkpoint-delay", K::U32, U64(20_000)),
    p("block-incremental", K::Bool, Bool(false)),
    p("multifd-channels", K::U8, U64(2)),
    p("xbzrle-cache-size", K::U64, U64(64 * 1024 * 1024)),
    p("max-postcopy-bandwidth", K::U64, U64(0)),
    p("max-cpu-throttle", K::U8, U64(99)),
    p(
        "multifd-compression",
        K::Enum(&["none", "zlib", "zstd"]),
        Str("none"),
    ),
    p("multifd-zlib-level", K::U8, U64(1)),
    p("multifd-zstd-level", K::U8, U64(1)),
    p("block-bitmap-mapping", K::List, Absent),
];

/// The target page size the `xbzrle-cache-size` check compares with.
const TARGET_PAGE_SIZE: u64 = 4096;

/// QEMU's range checks (migrate_params_check), its texts included (they name
/// the C field, with underscores).
pub fn check_range(name: &str, v: &Value) -> Result<(), QmpError> {
    let Some(n) = v.as_u64() else {
        return Ok(());
    };
    let range = |field: &str, lo: u64, hi: u64| -> Result<(), QmpError> {
        if n < lo || n > hi {
            return Err(QmpError::generic(format!(
                "Parameter '{field}' expects an integer in the range of {lo} to {hi}"
            )));
        }
        Ok(())
    };
    match name {
        "compress-level" if n > 9 => Err(QmpError::generic(
            "Parameter 'compress_level' expects a value between 0 and 9",
        )),
        "compress-threads" if n < 1 => Err(QmpError::generic(
            "Parameter 'compress_threads' expects a value between 1 and 255",
        )),
        "decompress-threads" if n < 1 => Err(QmpError::generic(
            "Parameter 'decompress_threads' expects a value between 1 and 255",
        )),
        "throttle-trigger-threshold" => range("throttle_trigger_threshold", 1, 100),
        "cpu-throttle-initial" => range("cpu_throttle_initial", 1, 99),
        "cpu-throttle-increment" => range("cpu_throttle_increment", 1, 99),
        "max-cpu-throttle" => range("max_cpu_throttle", 1, 99),
        "downtime-limit" if n > MAX_DOWNTIME_LIMIT_MS => Err(QmpError::generic(
            "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms",
        )),
        "multifd-channels" if n < 1 => Err(QmpError::generic(
            "Parameter 'multifd_channels' expects a value between 1 and 255",
        )),
        "xbzrle-cache-size" if n < TARGET_PAGE_SIZE || !n.is_power_of_two() => {
            Err(QmpError::generic(
                "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size",
            ))
        }
        "announce-initial" | "announce-max" if n > 100_000 => Err(QmpError::generic(format!(
            "Parameter '{}' expects an integer in the range of 0 to 100000 ms",
            name.replace('-', "_")
        ))),
        "announce-rounds" if n > 1000 => Err(QmpError::generic(
            "Parameter 'announce_rounds' expects an integer in the range of 0 to 1000 rounds",
        )),
        "announce-step" if !(1..=10_000).contains(&n) => Err(QmpError::generic(
            "Parameter 'announce_step' expects an integer in the range of 0 to 10000 ms",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_qemu_7_2s() {
        let get = |n: &str| PARAMETERS.iter().find(|p| p.name == n).unwrap().default;
        assert_eq!(get("downtime-limit"), U64(300));
        assert_eq!(get("max-bandwidth"), U64(134_217_728));
        assert_eq!(get("xbzrle-cache-size"), U64(67_108_864));
        assert_eq!(get("cpu-throttle-initial"), U64(20));
        assert_eq!(get("tls-creds"), Str(""));
        assert_eq!(PARAMETERS.len(), 27);
        for r in RUNTIME_PARAMETERS {
            assert!(PARAMETERS.iter().any(|p| p.name == *r), "{r}");
        }
    }

    #[test]
    fn range_texts() {
        assert_eq!(
            check_range("downtime-limit", &json!(3_000_000))
                .unwrap_err()
                .desc,
            "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms"
        );
        assert!(check_range("downtime-limit", &json!(2_000_000)).is_ok());
        assert_eq!(
            check_range("cpu-throttle-initial", &json!(0))
                .unwrap_err()
                .desc,
            "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99"
        );
        assert_eq!(
            check_range("xbzrle-cache-size", &json!(1000)).unwrap_err().desc,
            "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size"
        );
        assert!(check_range("xbzrle-cache-size", &json!(1 << 20)).is_ok());
        assert!(check_range("max-bandwidth", &json!(u64::MAX)).is_ok());
    }
}
