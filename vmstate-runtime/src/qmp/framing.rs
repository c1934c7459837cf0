//! QMP framing: a stream of JSON texts, one after another, with or without
//! newlines between them (QEMU's JSON streamer splits on the structure, not on
//! lines: an object may span lines, two may share one).
//!
//! [`Splitter`] cuts the byte stream into one candidate text per top-level value,
//! bounded by [`MAX_MESSAGE_BYTES`] (a longer one is skipped to its end and
//! reported once, so a hostile client can neither grow our memory nor lose us
//! the next message); [`parse`] turns one text into a JSON value strictly, as
//! QEMU's parser does: duplicate keys are refused, and nesting is bounded by
//! [`MAX_NESTING`].

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Largest QMP message accepted, in bytes. Migration commands are tiny; this
/// leaves room for any sane client and bounds what one hostile message costs.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Deepest nesting of arrays and objects accepted in one message (QEMU allows
/// 1024; no migration command nests more than 3).
pub const MAX_NESTING: usize = 64;

/// One cut of the input stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The bytes of one top-level JSON text (not yet parsed).
    Text(Vec<u8>),
    /// A text longer than [`MAX_MESSAGE_BYTES`] was skipped (to its end).
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between texts.
    Idle,
    /// Inside a container (`depth` > 0) or a top-level string.
    Structured,
    /// A bare top-level token (number, keyword, garbage).
    Bare,
}

/// Cuts a byte stream into top-level JSON texts. Feed it whatever the socket
/// gave ([`Splitter::push`]); it keeps at most [`MAX_MESSAGE_BYTES`] of a
/// partial text.
#[derive(Debug)]
pub struct Splitter {
    buf: Vec<u8>,
    state: State,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// The current text is too long: its bytes are dropped until it ends.
    overflow: bool,
}

impl Default for Splitter {
    fn default() -> Self {
        Self::new()
    }
}

impl Splitter {
    /// An empty splitter.
    pub fn new() -> Self {
        Splitter {
            buf: Vec::new(),
            state: State::Idle,
            depth: 0,
            in_string: false,
            escaped: false,
            overflow: false,
        }
    }

    /// Bytes of the text in progress (bounded by [`MAX_MESSAGE_BYTES`]).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    fn keep(&mut self, b: u8) {
        if self.overflow {
            return;
        }
        if self.buf.len() >= MAX_MESSAGE_BYTES {
            self.overflow = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.push(b);
    }

    fn end(&mut self, out: &mut Vec<Frame>) {
        let frame = if self.overflow {
            Frame::TooLong
        } else {
            Frame::Text(std::mem::take(&mut self.buf))
        };
        out.push(frame);
        self.buf.clear();
        self.state = State::Idle;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.overflow = false;
    }

    /// Feeds bytes; returns the texts they completed, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        for &b in bytes {
            match self.state {
                State::Idle => match b {
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    b'{' | b'[' => {
                        self.state = State::Structured;
                        self.depth = 1;
                        self.keep(b);
                    }
                    b'"' => {
                        self.state = State::Structured;
                        self.in_string = true;
                        self.keep(b);
                    }
                    b'}' | b']' | b',' | b':' => {
                        // A stray structural character is a text of its own
                        // (it fails to parse, as QEMU reports it).
                        self.keep(b);
                        self.end(&mut out);
                    }
                    _ => {
                        self.state = State::Bare;
                        self.keep(b);
                    }
                },
                State::Bare => match b {
                    b' ' | b'\t' | b'\r' | b'\n' => self.end(&mut out),
                    b'{' | b'[' | b'"' | b'}' | b']' | b',' | b':' => {
                        self.end(&mut out);
                        // The structural byte starts the next text.
                        let more = self.push(&[b]);
                        out.extend(more);
                    }
                    _ => self.keep(b),
                },
                State::Structured => {
                    self.keep(b);
                    if self.in_string {
                        if self.escaped {
                            self.escaped = false;
                        } else if b == b'\\' {
                            self.escaped = true;
                        } else if b == b'"' {
                            self.in_string = false;
                            if self.depth == 0 {
                                self.end(&mut out);
                            }
                        }
                        continue;
                    }
                    match b {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth = self.depth.saturating_add(1),
                        b'}' | b']' => {
                            self.depth = self.depth.saturating_sub(1);
                            if self.depth == 0 {
                                self.end(&mut out);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        out
    }
}

/// Why a text is not a JSON value (the text after QEMU's "JSON parse error, ").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Parses one text strictly: duplicate keys refused (QEMU: "duplicate key"),
/// nesting bounded by [`MAX_NESTING`], nothing but whitespace after the value.
pub fn parse(text: &[u8]) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let v = Strict { depth: 0 }
        .deserialize(&mut de)
        .map_err(|e| ParseError(describe(&e)))?;
    de.end().map_err(|e| ParseError(describe(&e)))?;
    Ok(v)
}

fn describe(e: &serde_json::Error) -> String {
    let text = e.to_string();
    // QEMU's own words for a duplicate key, without a position; otherwise
    // serde_json's message with its position.
    if text.starts_with(DUPLICATE_KEY) {
        return DUPLICATE_KEY.to_string();
    }
    text
}

const DUPLICATE_KEY: &str = "duplicate key";

/// A JSON value, built refusing duplicate keys and deep nesting.
struct Strict {
    depth: usize,
}

impl Strict {
    fn inner<E: serde::de::Error>(&self) -> Result<Strict, E> {
        if self.depth + 1 > MAX_NESTING {
            return Err(E::custom(format!(
                "nesting deeper than {MAX_NESTING} levels"
            )));
        }
        Ok(Strict {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(e) = seq.next_element_seed(self.inner()?)? {
            v.push(e);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(self.inner()?)?;
            if m.contains_key(&k) {
                return Err(serde::de::Error::custom(DUPLICATE_KEY));
            }
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

/// One message as it goes on the wire: compact JSON and QEMU's line end.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(frames: Vec<Frame>) -> Vec<String> {
        frames
            .into_iter()
            .map(|f| match f {
                Frame::Text(t) => String::from_utf8(t).unwrap(),
                Frame::TooLong => "<too long>".into(),
            })
            .collect()
    }

    #[test]
    fn splits_on_structure_not_lines() {
        let mut s = Splitter::new();
        assert!(s.push(b"{\"execute\": \"query-status\"\n").is_empty());
        assert_eq!(texts(s.push(b"}\n")), ["{\"execute\": \"query-status\"\n}"]);
        assert_eq!(
            texts(s.push(b"{\"a\":1} {\"b\":[1,{\"c\":\"}]\\\"\"}]}")),
            ["{\"a\":1}", "{\"b\":[1,{\"c\":\"}]\\\"\"}]}"]
        );
        assert_eq!(
            texts(s.push(b"garbage 12{\"x\":1}\"str\" ] ")),
            ["garbage", "12", "{\"x\":1}", "\"str\"", "]"]
        );
        assert_eq!(s.pending(), 0);
        // Byte by byte gives the same cuts.
        let mut s = Splitter::new();
        let mut all = Vec::new();
        for b in b"[1,2]{\"k\":\"v\"}" {
            all.extend(s.push(&[*b]));
        }
        assert_eq!(texts(all), ["[1,2]", "{\"k\":\"v\"}"]);
    }

    #[test]
    fn too_long_is_skipped_to_its_end_and_the_next_text_survives() {
        let mut s = Splitter::new();
        let mut big = b"{\"execute\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_MESSAGE_BYTES * 3));
        big.extend_from_slice(b"\"}");
        let mut out = Vec::new();
        for chunk in big.chunks(4096) {
            out.extend(s.push(chunk));
            assert!(s.pending() <= MAX_MESSAGE_BYTES);
        }
        out.extend(s.push(b"{\"execute\":\"stop\"}"));
        assert_eq!(texts(out), ["<too long>", "{\"execute\":\"stop\"}"]);
        // An endless unterminated object never holds more than the bound.
        let mut s = Splitter::new();
        for _ in 0..100 {
            assert!(s.push(&[b'['; 4096]).is_empty());
            assert!(s.pending() <= MAX_MESSAGE_BYTES);
        }
    }

    #[test]
    fn strict_parse() {
        assert_eq!(
            parse(b"{\"a\": [1, true, null, \"x\"]}").unwrap(),
            serde_json::json!({"a": [1, true, null, "x"]})
        );
        assert_eq!(parse(b"{\"a\":1,\"a\":2}").unwrap_err().0, "duplicate key");
        assert!(parse(b"{\"x\":{\"a\":1,\"a\":1}}")
            .unwrap_err()
            .0
            .starts_with("duplicate key"));
        assert!(parse(b"garbage").is_err());
        assert!(parse(b"{\"a\":1").is_err());
        assert!(parse(b"]").is_err());
        assert!(parse(&[0xff, 0xfe]).is_err());
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        assert!(parse(deep.as_bytes()).unwrap_err().0.contains("nesting"));
        let ok = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn encode_ends_lines_as_qemu() {
        assert_eq!(
            encode(&serde_json::json!({"return": {}})),
            b"{\"return\":{}}\r\n"
        );
    }
}
