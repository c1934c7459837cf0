//! Command arguments read as QEMU's QAPI input visitor reads them, with its
//! error texts (every one a `GenericError`):
//!
//! | Problem | `desc` |
//! |---|---|
//! | a mandatory member is absent | `Parameter 'uri' is missing` |
//! | a member nobody asked for | `Parameter 'bogus' is unexpected` |
//! | wrong JSON type | `Invalid parameter type for 'uri', expected: string` |
//! | not a uint64 | `Parameter 'max-bandwidth' expects uint64` |
//! | out of a small integer's range | `Parameter 'cpu-throttle-initial' expects uint8_t` |
//! | not a value of the enum | `Parameter 'capability' does not accept value 'foo'` |
//!
//! Names inside lists and objects are full paths (`capabilities[0].state`), as
//! QEMU prints them; the range and enum errors name the member alone, as QEMU's do.

use serde_json::{Map, Value};

use super::QmpError;

/// The members of one JSON object being read; [`Args::finish`] refuses what
/// was not read.
#[derive(Debug)]
pub struct Args<'a> {
    map: &'a Map<String, Value>,
    /// The object's own full name (`""` at the top, `capabilities[0]` inside).
    path: String,
    read: Vec<&'a str>,
}

impl<'a> Args<'a> {
    /// The top-level `arguments` object.
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Args {
            map,
            path: String::new(),
            read: Vec::new(),
        }
    }

    /// `value` as the object named `path` (a list element: `capabilities[0]`).
    pub fn object(value: &'a Value, path: String) -> Result<Self, QmpError> {
        match value {
            Value::Object(map) => Ok(Args {
                map,
                path,
                read: Vec::new(),
            }),
            _ => Err(QmpError::generic(format!(
                "Invalid parameter type for '{path}', expected: object"
            ))),
        }
    }

    /// The full name of member `name`.
    pub fn full(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn take(&mut self, name: &str) -> Option<&'a Value> {
        let (k, v) = self.map.get_key_value(name)?;
        self.read.push(k.as_str());
        Some(v)
    }

    fn missing(&self, name: &str) -> QmpError {
        QmpError::generic(format!("Parameter '{}' is missing", self.full(name)))
    }

    fn wrong_type(&self, name: &str, expected: &str) -> QmpError {
        QmpError::generic(format!(
            "Invalid parameter type for '{}', expected: {expected}",
            self.full(name)
        ))
    }

    /// Whether member `name` is present (without reading it).
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// An optional string.
    pub fn opt_str(&mut self, name: &str) -> Result<Option<String>, QmpError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong_type(name, "string")),
        }
    }

    /// A mandatory string.
    pub fn str(&mut self, name: &str) -> Result<String, QmpError> {
        self.opt_str(name)?.ok_or_else(|| self.missing(name))
    }

    /// An optional boolean.
    pub fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, QmpError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong_type(name, "boolean")),
        }
    }

    /// A mandatory boolean.
    pub fn bool(&mut self, name: &str) -> Result<bool, QmpError> {
        self.opt_bool(name)?.ok_or_else(|| self.missing(name))
    }

    /// An optional `uint64` / `size`: a JSON integer; a negative one is taken
    /// modulo 2^64, as QEMU does for backward compatibility.
    pub fn opt_u64(&mut self, name: &str) -> Result<Option<u64>, QmpError> {
        let Some(v) = self.take(name) else {
            return Ok(None);
        };
        let n = match v {
            Value::Number(n) => n.as_u64().or_else(|| n.as_i64().map(|i| i as u64)),
            _ => None,
        };
        n.map(Some).ok_or_else(|| {
            QmpError::generic(format!("Parameter '{}' expects uint64", self.full(name)))
        })
    }

    /// An optional unsigned integer of at most `max` (QEMU's `uint8` and
    /// friends; `type_name` as QEMU prints it: `uint8_t`).
    pub fn opt_uint(
        &mut self,
        name: &str,
        max: u64,
        type_name: &str,
    ) -> Result<Option<u64>, QmpError> {
        match self.opt_u64(name)? {
            Some(v) if v > max => Err(QmpError::generic(format!(
                "Parameter '{name}' expects {type_name}"
            ))),
            other => Ok(other),
        }
    }

    /// An optional `int64`.
    pub fn opt_i64(&mut self, name: &str) -> Result<Option<i64>, QmpError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong_type(name, "integer")),
            Some(_) => Err(self.wrong_type(name, "integer")),
        }
    }

    /// An optional array.
    pub fn opt_array(&mut self, name: &str) -> Result<Option<&'a Vec<Value>>, QmpError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(self.wrong_type(name, "array")),
        }
    }

    /// A mandatory array.
    pub fn array(&mut self, name: &str) -> Result<&'a Vec<Value>, QmpError> {
        self.opt_array(name)?.ok_or_else(|| self.missing(name))
    }

    /// Any JSON value (QAPI `any`, or an alternate this reader checks itself).
    pub fn opt_any(&mut self, name: &str) -> Option<&'a Value> {
        self.take(name)
    }

    /// A mandatory member of an enum whose values are `allowed`.
    pub fn enumeration(&mut self, name: &str, allowed: &[&str]) -> Result<String, QmpError> {
        let v = self.str(name)?;
        check_enum(Some(name), &v, allowed)?;
        Ok(v)
    }

    /// The path of element `i` of list member `name`.
    pub fn element_path(&self, name: &str, i: usize) -> String {
        format!("{}[{i}]", self.full(name))
    }

    /// Refuses the first member that was not read.
    pub fn finish(self) -> Result<(), QmpError> {
        match self.map.keys().find(|k| !self.read.contains(&k.as_str())) {
            Some(k) => Err(QmpError::generic(format!(
                "Parameter '{}' is unexpected",
                self.full(k)
            ))),
            None => Ok(()),
        }
    }
}

/// Checks an enum value; `name` is `None` for a list element (QEMU prints
/// `null` then).
pub fn check_enum(name: Option<&str>, value: &str, allowed: &[&str]) -> Result<(), QmpError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(QmpError::generic(format!(
        "Parameter '{}' does not accept value '{value}'",
        name.unwrap_or("null")
    )))
}

/// A list element as a string, with QEMU's type error naming it by path.
pub fn element_str<'v>(v: &'v Value, path: &str) -> Result<&'v str, QmpError> {
    v.as_str().ok_or_else(|| {
        QmpError::generic(format!(
            "Invalid parameter type for '{path}', expected: string"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn qemu_texts_for_missing_unexpected_and_types() {
        let m = map(json!({"uri": 5, "bogus": 1}));
        let mut a = Args::new(&m);
        assert_eq!(
            a.str("uri").unwrap_err().desc,
            "Invalid parameter type for 'uri', expected: string"
        );
        assert_eq!(
            a.str("other").unwrap_err().desc,
            "Parameter 'other' is missing"
        );
        assert_eq!(
            a.finish().unwrap_err().desc,
            "Parameter 'bogus' is unexpected"
        );

        let m = map(json!({"max-bandwidth": "x", "n": -5, "big": 300, "f": 1.5}));
        let mut a = Args::new(&m);
        assert_eq!(
            a.opt_u64("max-bandwidth").unwrap_err().desc,
            "Parameter 'max-bandwidth' expects uint64"
        );
        assert_eq!(a.opt_u64("n").unwrap(), Some((-5i64) as u64));
        assert_eq!(
            a.opt_uint("big", 255, "uint8_t").unwrap_err().desc,
            "Parameter 'big' expects uint8_t"
        );
        assert_eq!(
            a.opt_u64("f").unwrap_err().desc,
            "Parameter 'f' expects uint64"
        );
        assert!(a.finish().is_ok());
    }

    #[test]
    fn nested_paths_and_enums() {
        let v = json!({"capability": "foo", "x": 1});
        let mut e = Args::object(&v, "capabilities[0]".into()).unwrap();
        assert_eq!(
            e.bool("state").unwrap_err().desc,
            "Parameter 'capabilities[0].state' is missing"
        );
        assert_eq!(
            e.enumeration("capability", &["events"]).unwrap_err().desc,
            "Parameter 'capability' does not accept value 'foo'"
        );
        assert_eq!(
            e.finish().unwrap_err().desc,
            "Parameter 'capabilities[0].x' is unexpected"
        );
        assert_eq!(
            Args::object(&json!(5), "capabilities[0]".into())
                .unwrap_err()
                .desc,
            "Invalid parameter type for 'capabilities[0]', expected: object"
        );
        assert_eq!(
            check_enum(None, "foo", &["oob"]).unwrap_err().desc,
            "Parameter 'null' does not accept value 'foo'"
        );
        let m = map(json!({"capabilities": {"a": 1}}));
        assert_eq!(
            Args::new(&m).array("capabilities").unwrap_err().desc,
            "Invalid parameter type for 'capabilities', expected: array"
        );
    }
}
