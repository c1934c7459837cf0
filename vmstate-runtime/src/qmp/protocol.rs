//! The QMP session, as QEMU 7.2 runs one (docs/interop/qmp-spec): the
//! greeting, capabilities-negotiation mode (only `qmp_capabilities` works),
//! then command mode; each request checked as QEMU checks it, its `id` echoed
//! in the reply, a `return` or an `error` with `class` and `desc`; events with
//! a `timestamp`.
//!
//! Pure: no sockets here ([`super::server`] feeds it), so every rule is a unit
//! test.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::args::{check_enum, element_str, Args};
use super::framing::{parse, Frame, MAX_MESSAGE_BYTES};
use super::{ErrorClass, QmpError};

/// What the session hands a command to.
pub trait Dispatch {
    /// Runs `command` with its `arguments` (an empty map when absent); `None`
    /// when there is no such command.
    fn dispatch(&self, command: &str, args: &Map<String, Value>)
        -> Option<Result<Value, QmpError>>;
}

/// The version the greeting announces (`query-version`'s shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpVersion {
    /// QEMU major version whose protocol and commands are spoken.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Micro.
    pub micro: u32,
    /// The `package` string: who is answering.
    pub package: String,
}

impl Default for QmpVersion {
    /// QEMU 7.2.0, the stream dialect the runtime speaks by default, answered
    /// by vmstate-rs.
    fn default() -> Self {
        QmpVersion {
            major: 7,
            minor: 2,
            micro: 0,
            package: concat!("vmstate-rs ", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl QmpVersion {
    /// As `query-version` returns it.
    pub fn to_json(&self) -> Value {
        json!({
            "qemu": {"major": self.major, "minor": self.minor, "micro": self.micro},
            "package": self.package,
        })
    }
}

/// The greeting a new connection receives. No QMP capability is offered (QEMU
/// offers `oob` only on a monitor with its own I/O thread).
pub fn greeting(version: &QmpVersion) -> Value {
    json!({"QMP": {"version": version.to_json(), "capabilities": []}})
}

/// An event as QEMU sends it: name, optional data, and the host time.
pub fn event(name: &str, data: Option<Value>) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert(
        "timestamp".into(),
        json!({"seconds": now.as_secs(), "microseconds": now.subsec_micros()}),
    );
    m.insert("event".into(), Value::String(name.into()));
    if let Some(d) = data {
        m.insert("data".into(), d);
    }
    Value::Object(m)
}

/// The error reply for `e`, with the request's `id` when it had one.
pub fn error_reply(e: &QmpError, id: Option<&Value>) -> Value {
    let mut m = Map::new();
    if let Some(id) = id {
        m.insert("id".into(), id.clone());
    }
    m.insert(
        "error".into(),
        json!({"class": e.class.as_str(), "desc": e.desc}),
    );
    Value::Object(m)
}

fn return_reply(v: Value, id: Option<&Value>) -> Value {
    let mut m = Map::new();
    m.insert("return".into(), v);
    if let Some(id) = id {
        m.insert("id".into(), id.clone());
    }
    Value::Object(m)
}

/// One client's protocol state.
#[derive(Debug, Default)]
pub struct Session {
    negotiated: bool,
}

/// QEMU's QMP capabilities (the `enable` values of `qmp_capabilities`).
const QMP_CAPABILITIES: &[&str] = &["oob"];

impl Session {
    /// A session in capabilities-negotiation mode.
    pub fn new() -> Self {
        Session::default()
    }

    /// Whether `qmp_capabilities` succeeded (events are sent only then).
    pub fn negotiated(&self) -> bool {
        self.negotiated
    }

    /// The reply to one frame of input.
    pub fn handle_frame(&mut self, frame: Frame, d: &dyn Dispatch) -> Value {
        match frame {
            Frame::TooLong => error_reply(
                &QmpError::generic(format!(
                    "JSON parse error, message longer than {MAX_MESSAGE_BYTES} bytes"
                )),
                None,
            ),
            Frame::Text(t) => match parse(&t) {
                Ok(v) => self.handle(&v, d),
                Err(e) => error_reply(
                    &QmpError::generic(format!("JSON parse error, {}", e.0)),
                    None,
                ),
            },
        }
    }

    /// The reply to one parsed request.
    pub fn handle(&mut self, request: &Value, d: &dyn Dispatch) -> Value {
        let id = request.get("id");
        match self.run(request, d) {
            Ok(v) => return_reply(v, id),
            Err(e) => error_reply(&e, id),
        }
    }

    fn run(&mut self, request: &Value, d: &dyn Dispatch) -> Result<Value, QmpError> {
        let (command, args) = check_request(request)?;
        let empty = Map::new();
        let args = args.unwrap_or(&empty);
        if command == "qmp_capabilities" {
            return self.qmp_capabilities(args);
        }
        if !self.negotiated {
            return Err(QmpError::new(
                ErrorClass::CommandNotFound,
                "Expecting capabilities negotiation with 'qmp_capabilities'",
            ));
        }
        match d.dispatch(command, args) {
            Some(r) => r,
            None => Err(QmpError::new(
                ErrorClass::CommandNotFound,
                format!("The command {command} has not been found"),
            )),
        }
    }

    fn qmp_capabilities(&mut self, args: &Map<String, Value>) -> Result<Value, QmpError> {
        if self.negotiated {
            return Err(QmpError::new(
                ErrorClass::CommandNotFound,
                "Capabilities negotiation is already complete, command ignored",
            ));
        }
        let mut a = Args::new(args);
        let enable = a.opt_array("enable")?;
        if let Some(list) = enable {
            for (i, v) in list.iter().enumerate() {
                let s = element_str(v, &a.element_path("enable", i))?;
                check_enum(None, s, QMP_CAPABILITIES)?;
            }
        }
        a.finish()?;
        if let Some(first) = enable.and_then(|l| l.first()).and_then(Value::as_str) {
            // Valid, but not offered in the greeting.
            return Err(QmpError::generic(format!(
                "Capability '{first}' not available"
            )));
        }
        self.negotiated = true;
        Ok(json!({}))
    }
}

/// QEMU's checks of a request's members (qmp_dispatch_check_obj): an object;
/// `execute` a string, `arguments` an object, `id` anything, nothing else.
/// A request's command name and its arguments (when given).
type Request<'a> = (&'a str, Option<&'a Map<String, Value>>);

fn check_request(request: &Value) -> Result<Request<'_>, QmpError> {
    let Value::Object(m) = request else {
        return Err(QmpError::generic("QMP input must be a JSON object"));
    };
    let mut command = None;
    let mut args = None;
    for (k, v) in m {
        match k.as_str() {
            "execute" => match v {
                Value::String(s) => command = Some(s.as_str()),
                _ => {
                    return Err(QmpError::generic(
                        "QMP input member 'execute' must be a string",
                    ))
                }
            },
            "arguments" => match v {
                Value::Object(a) => args = Some(a),
                _ => {
                    return Err(QmpError::generic(
                        "QMP input member 'arguments' must be an object",
                    ))
                }
            },
            "id" => {}
            other => {
                return Err(QmpError::generic(format!(
                    "QMP input member '{other}' is unexpected"
                )))
            }
        }
    }
    let command = command.ok_or_else(|| QmpError::generic("QMP input lacks member 'execute'"))?;
    Ok((command, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Dispatch for Echo {
        fn dispatch(
            &self,
            command: &str,
            args: &Map<String, Value>,
        ) -> Option<Result<Value, QmpError>> {
            match command {
                "echo" => Some(Ok(Value::Object(args.clone()))),
                "fail" => Some(Err(QmpError::generic("it failed"))),
                _ => None,
            }
        }
    }

    fn text(s: &str) -> Frame {
        Frame::Text(s.as_bytes().to_vec())
    }

    #[test]
    fn greeting_has_qemus_shape() {
        let g = greeting(&QmpVersion::default());
        assert_eq!(g["QMP"]["version"]["qemu"]["major"], 7);
        assert_eq!(g["QMP"]["version"]["qemu"]["minor"], 2);
        assert!(g["QMP"]["version"]["package"]
            .as_str()
            .unwrap()
            .starts_with("vmstate-rs"));
        assert_eq!(g["QMP"]["capabilities"], json!([]));
    }

    #[test]
    fn negotiation_mode_then_command_mode() {
        let mut s = Session::new();
        let r = s.handle(&json!({"execute": "echo", "id": 1}), &Echo);
        assert_eq!(
            r,
            json!({"id": 1, "error": {"class": "CommandNotFound",
                "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}})
        );
        let r = s.handle(
            &json!({"execute": "qmp_capabilities", "arguments": {"enable": ["foo"]}}),
            &Echo,
        );
        assert_eq!(
            r["error"]["desc"],
            "Parameter 'null' does not accept value 'foo'"
        );
        let r = s.handle(
            &json!({"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}),
            &Echo,
        );
        assert_eq!(r["error"]["desc"], "Capability 'oob' not available");
        assert!(!s.negotiated());
        let r = s.handle(&json!({"execute": "qmp_capabilities", "id": "x"}), &Echo);
        assert_eq!(r, json!({"return": {}, "id": "x"}));
        assert!(s.negotiated());
        let r = s.handle(&json!({"execute": "qmp_capabilities"}), &Echo);
        assert_eq!(
            r["error"],
            json!({"class": "CommandNotFound",
                "desc": "Capabilities negotiation is already complete, command ignored"})
        );
        let r = s.handle(
            &json!({"execute": "echo", "arguments": {"a": [1]}, "id": {"k": [2]}}),
            &Echo,
        );
        assert_eq!(r, json!({"return": {"a": [1]}, "id": {"k": [2]}}));
        let r = s.handle(&json!({"execute": "nope", "id": 5}), &Echo);
        assert_eq!(
            r,
            json!({"id": 5, "error": {"class": "CommandNotFound",
                "desc": "The command nope has not been found"}})
        );
        let r = s.handle(&json!({"execute": "fail"}), &Echo);
        assert_eq!(
            r,
            json!({"error": {"class": "GenericError", "desc": "it failed"}})
        );
    }

    #[test]
    fn malformed_requests_get_qemus_texts() {
        let mut s = Session::new();
        s.handle(&json!({"execute": "qmp_capabilities"}), &Echo);
        let cases = [
            ("[1,2]", "QMP input must be a JSON object"),
            ("\"str\"", "QMP input must be a JSON object"),
            (
                "{\"execute\": 5}",
                "QMP input member 'execute' must be a string",
            ),
            ("{\"arguments\": {}}", "QMP input lacks member 'execute'"),
            (
                "{\"execute\":\"echo\",\"arguments\":[]}",
                "QMP input member 'arguments' must be an object",
            ),
            (
                "{\"execute\":\"echo\",\"control\":{}}",
                "QMP input member 'control' is unexpected",
            ),
            (
                "{\"exec-oob\":\"echo\"}",
                "QMP input member 'exec-oob' is unexpected",
            ),
        ];
        for (input, desc) in cases {
            let r = s.handle_frame(text(input), &Echo);
            assert_eq!(r["error"]["class"], "GenericError", "{input}");
            assert_eq!(r["error"]["desc"], desc, "{input}");
        }
        let r = s.handle_frame(text("garbage"), &Echo);
        assert!(r["error"]["desc"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error, "));
        let r = s.handle_frame(text("{\"execute\":\"echo\",\"id\":1,\"id\":2}"), &Echo);
        assert!(r["error"]["desc"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error, duplicate key"));
        let r = s.handle_frame(Frame::TooLong, &Echo);
        assert_eq!(r["error"]["class"], "GenericError");
        // Still in command mode after all that.
        let r = s.handle_frame(text("{\"execute\":\"echo\"}"), &Echo);
        assert_eq!(r, json!({"return": {}}));
    }

    #[test]
    fn events_carry_a_timestamp() {
        let e = event("MIGRATION", Some(json!({"status": "setup"})));
        assert_eq!(e["event"], "MIGRATION");
        assert_eq!(e["data"]["status"], "setup");
        assert!(e["timestamp"]["seconds"].as_u64().unwrap() > 1_600_000_000);
        assert!(e["timestamp"]["microseconds"].as_u64().unwrap() < 1_000_000);
        let e = event("STOP", None);
        assert!(e.get("data").is_none());
    }
}
