//! A YAML document as a tree of located nodes.
//!
//! serde-saphyr deserializes straight into Rust types and has no DOM of its own; pipeline
//! validation needs one so that every problem can be reported at `file:line:col`. [`Node`]
//! is that DOM: each value and each mapping key carries the position it came from. Type
//! checking and meaning live in the parent module, not here.
//!
//! The text is read as YAML 1.2: only `true` / `false` are booleans (`n`, `no`, `yes`, `on`,
//! `off` and `y` stay strings), and mapping keys keep the text they were written with (`1.0`
//! stays `1.0`, `n` stays `n`). Hostile input is bounded before it can grow: [`parse`] refuses
//! text longer than [`MAX_TEXT_BYTES`], nesting deeper than [`MAX_DEPTH`], more than
//! [`MAX_NODES`] nodes, and alias replays (billion laughs) beyond [`MAX_ALIAS_EVENTS`] events.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A 1-based line and column in the source file (0 = unknown).
///
/// Line 0 with a column k > 0 stands for the k-th `--set` value of the command line (see
/// [`Loc::arg`]): values given there are reported there, not in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Loc {
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub col: u64,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

impl Loc {
    /// The location standing for the `index`-th (0-based) `--set` value.
    pub fn arg(index: usize) -> Loc {
        Loc {
            line: 0,
            col: index as u64 + 1,
        }
    }

    /// The index of the `--set` value this location stands for, if it stands for one.
    pub fn arg_index(&self) -> Option<usize> {
        (self.line == 0 && self.col > 0).then(|| (self.col - 1) as usize)
    }

    fn from_spanned<T>(s: &Spanned<T>) -> Loc {
        Loc {
            line: s.referenced.line(),
            col: s.referenced.column(),
        }
    }
}

/// A YAML value with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub loc: Loc,
}

/// A mapping key with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key text.
    pub name: String,
    /// Where the key starts.
    pub loc: Loc,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in i64.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order (duplicate keys are rejected by the parser).
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// A short name of the value's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The entries of a mapping node, or `None`.
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Sets the location of this node, its keys and all nodes below it to `loc`.
    pub fn relocate(&mut self, loc: Loc) {
        self.loc = loc;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|i| i.relocate(loc)),
            Value::Map(m) => m.iter_mut().for_each(|(k, v)| {
                k.loc = loc;
                v.relocate(loc);
            }),
            _ => {}
        }
    }

    /// Converts to a JSON value (locations are dropped).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(v) => J::Array(v.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(
                m.iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            out.push(n);
        }
        Ok(Value::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<Spanned<KeyText>>()? {
            let loc = Loc::from_spanned(&k);
            let v = map.next_value::<Node>()?;
            out.push((
                Key {
                    name: k.value.0,
                    loc,
                },
                v,
            ));
        }
        Ok(Value::Map(out))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Value>::deserialize(d)?;
        let loc = Loc::from_spanned(&s);
        Ok(Node {
            value: s.value,
            loc,
        })
    }
}

/// A mapping key: any scalar, kept as the text it was written with.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Asking for a string makes the parser hand over the scalar's own text, so that a key
        // written `n`, `1.0` or `0x10` keeps exactly that spelling.
        match Option::<String>::deserialize(d) {
            Ok(Some(s)) => Ok(KeyText(s)),
            Ok(None) => Err(de::Error::custom(
                "a mapping key is null (`~`, `null` or nothing): write the name in quotes",
            )),
            Err(_) => Err(de::Error::custom(
                "mapping keys must be plain names, not lists or mappings",
            )),
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone)]
pub struct ParseError {
    /// Where the parser stopped.
    pub loc: Loc,
    /// The parser's message.
    pub message: String,
}

impl ParseError {
    /// The first line of the message (the rest is the parser's excerpt of the text).
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or("invalid YAML")
    }
}

/// The longest pipeline text accepted, in bytes (a pipeline file is a few kilobytes).
pub const MAX_TEXT_BYTES: usize = 4 << 20;
/// The deepest nesting of lists and mappings accepted.
pub const MAX_DEPTH: usize = 64;
/// The most YAML nodes (scalars, lists, mappings) one text may hold.
pub const MAX_NODES: usize = 250_000;
/// The most events that replaying aliases (`*name`) may produce.
pub const MAX_ALIAS_EVENTS: usize = 100_000;

/// The parser settings: YAML 1.2 booleans and the limits above.
fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    budget.max_total_scalar_bytes = MAX_TEXT_BYTES;
    let mut opts = serde_saphyr::Options::default();
    opts.budget = Some(budget);
    opts.strict_booleans = true;
    opts.alias_limits.max_total_replayed_events = MAX_ALIAS_EVENTS;
    opts
}

/// Parses YAML text into a located tree.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ParseError {
            loc: Loc { line: 1, col: 1 },
            message: format!(
                "the text is {} bytes long (limit {MAX_TEXT_BYTES})",
                text.len()
            ),
        });
    }
    serde_saphyr::from_str_with_options::<Node>(text, options()).map_err(|e| {
        let loc = e.location().map_or(Loc::default(), |l| Loc {
            line: l.line(),
            col: l.column(),
        });
        ParseError {
            loc,
            message: explain(&e.to_string()),
        }
    })
}

/// The parser's message in a researcher's words: its first line, without the position it
/// repeats, and the limits named for what they protect against.
fn explain(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or("invalid YAML").trim();
    // "error: line 5 column 4: did not find expected key" → "did not find expected key"
    let msg = first
        .strip_prefix("error: ")
        .and_then(|m| m.strip_prefix("line "))
        .and_then(|m| m.split_once(": ").map(|(_, rest)| rest))
        .unwrap_or(first);
    if msg.contains("recursion limit exceeded") || msg.contains("Depth {") {
        format!("lists and mappings nested deeper than {MAX_DEPTH} levels")
    } else if msg.contains("multiple YAML documents") {
        "a pipeline file holds one YAML document (found a second `---`)".to_owned()
    } else if msg.contains("alias replay limit") {
        format!("aliases (`*name`) expand to more than {MAX_ALIAS_EVENTS} events")
    } else if msg.contains("budget breached") {
        format!("the document is too large ({msg}; at most {MAX_NODES} nodes)")
    } else {
        msg.to_owned()
    }
}
