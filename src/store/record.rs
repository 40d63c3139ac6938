//! The JSON documents of the store: a stage [`Record`] (written last, after its objects), its
//! informational [`RecordMeta`] (who computed it, when, how long) and a [`RunLog`] (what one
//! `eqlab run` did). Plain data plus the record's integrity rules; reading and writing files is
//! in the parent module.
//!
//! A record is untrusted input (it can be truncated, edited, or come from another machine), so
//! [`Record::verify`] checks it before anything uses it: its key is the hash of its components,
//! its body matches its checksum, every object name is a 64-hex hash with a known extension,
//! every output name is plain, and its scalars are exactly the content of its hash-named
//! `metrics` table. A record holds only what the computation determines (no times, no host), so
//! the same computation always writes the same bytes, however and wherever it ran.

use crate::key::StageKey;
use crate::table::{Table, TableBuilder, logical_hash};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The record format this eqlab writes and accepts.
pub const RECORD_FORMAT: u32 = 2;

/// Extensions a file object may have (anything else in a record is rejected).
pub const FILE_EXTENSIONS: &[&str] = &[
    "bpk", "bin", "csv", "html", "json", "md", "png", "svg", "txt",
];

/// Name of the table that holds a stage's scalars (`name`, `value`), hash-verified like any table.
pub const METRICS: &str = "metrics";

/// A stored table output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRef {
    /// Logical content hash = object name.
    pub object: String,
    /// Number of rows.
    pub rows: u64,
    /// Blake3 of the Parquet file bytes (a fast check that needs no decoding).
    pub file_b3: String,
}

/// A stored file output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    /// Blake3 of the bytes = object name.
    pub object: String,
    /// Extension.
    pub ext: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// The result of computing one stage: what went in (the key) and what came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Record format ([`RECORD_FORMAT`]).
    pub format: u32,
    /// Hex hash of `components`.
    pub key: String,
    /// The key itself.
    pub components: StageKey,
    /// Table outputs (the scalars' `metrics` table among them).
    pub tables: BTreeMap<String, TableRef>,
    /// File outputs.
    pub files: BTreeMap<String, FileRef>,
    /// Scalar outputs, stored bit-exactly (see [`exact_f64`]).
    #[serde(with = "exact_f64::map")]
    pub scalars: BTreeMap<String, f64>,
    /// Blake3 of the record with this field empty (detects truncation and edits).
    pub checksum: String,
}

/// Why a stored record cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct RecordFault(pub String);

impl Record {
    /// A sealed record (its checksum filled in).
    pub fn new(
        components: StageKey,
        tables: BTreeMap<String, TableRef>,
        files: BTreeMap<String, FileRef>,
        scalars: BTreeMap<String, f64>,
    ) -> Record {
        let mut r = Record {
            format: RECORD_FORMAT,
            key: components.hash(),
            components,
            tables,
            files,
            scalars,
            checksum: String::new(),
        };
        r.checksum = r.compute_checksum();
        r
    }

    fn compute_checksum(&self) -> String {
        let mut body = self.clone();
        body.checksum.clear();
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut h = blake3::Hasher::new();
        h.update(b"eqlab-record-v2\0");
        h.update(&bytes);
        h.finalize().to_hex().to_string()
    }

    /// Checks every integrity rule of a record stored under `name` (its file stem).
    ///
    /// Errors: a [`RecordFault`] saying which rule failed. Objects are not opened here (see
    /// `Store::verify_objects`).
    pub fn verify(&self, name: &str) -> Result<(), RecordFault> {
        let fault = |m: String| Err(RecordFault(m));
        if self.format != RECORD_FORMAT {
            return fault(format!(
                "format {} (this eqlab reads format {RECORD_FORMAT})",
                self.format
            ));
        }
        if self.key != name {
            return fault(format!("it names key {} but is stored as {name}", self.key));
        }
        let actual = self.components.hash();
        if actual != self.key {
            return fault(format!(
                "its key components hash to {actual}, not to its key"
            ));
        }
        if self.checksum != self.compute_checksum() {
            return fault("its content does not match its checksum (edited or damaged)".into());
        }
        for (k, t) in &self.tables {
            check_name(k)?;
            check_hash("table object", &t.object)?;
            check_hash("table file hash", &t.file_b3)?;
        }
        for (k, f) in &self.files {
            check_name(k)?;
            check_hash("file object", &f.object)?;
            if !FILE_EXTENSIONS.contains(&f.ext.as_str()) {
                return fault(format!("file '{k}' has an unknown extension {:?}", f.ext));
            }
        }
        for k in self.scalars.keys() {
            check_name(k)?;
        }
        match (self.scalars.is_empty(), self.tables.get(METRICS)) {
            (true, None) => {}
            (false, None) => return fault("it has scalars but no metrics table".into()),
            (_, Some(t)) => {
                let expected = metrics_table(&self.scalars)
                    .map(|m| logical_hash(&m))
                    .map_err(|e| RecordFault(format!("its scalars cannot be tabulated: {e}")))?;
                if expected != t.object {
                    return fault("its scalars differ from its verified metrics table".into());
                }
            }
        }
        Ok(())
    }

    /// Every object file name (`<hash>.<ext>`) the record references.
    pub fn object_names(&self) -> impl Iterator<Item = String> + '_ {
        self.tables
            .values()
            .map(|t| format!("{}.parquet", t.object))
            .chain(
                self.files
                    .values()
                    .map(|f| format!("{}.{}", f.object, f.ext)),
            )
    }
}

/// The `metrics` table of a stage's scalars: columns `name` (utf8) and `value` (f64), one row per
/// scalar in name order.
pub fn metrics_table(scalars: &BTreeMap<String, f64>) -> anyhow::Result<Table> {
    let (names, values): (Vec<String>, Vec<f64>) =
        scalars.iter().map(|(k, v)| (k.clone(), *v)).unzip();
    TableBuilder::new()
        .str("name", &names)
        .f64("value", values)
        .build()
}

/// Whether `s` is a lowercase 64-hex blake3 hash.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_hash(what: &str, s: &str) -> Result<(), RecordFault> {
    if is_hash(s) {
        Ok(())
    } else {
        Err(RecordFault(format!(
            "{what} {:?} is not a 64-hex hash",
            s.chars().take(80).collect::<String>()
        )))
    }
}

/// Output and scalar names: 1 to 256 bytes, no path separator, no control character, not
/// starting with `.` (so a name can never lead a path anywhere, should one be built from it).
fn check_name(s: &str) -> Result<(), RecordFault> {
    let ok = !s.is_empty()
        && s.len() <= 256
        && !s.starts_with('.')
        && !s.chars().any(|c| c == '/' || c == '\\' || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(RecordFault(format!(
            "output name {:?} is not plain (no '/', '\\', control characters or leading '.')",
            s.chars().take(80).collect::<String>()
        )))
    }
}

/// Who computed a record, when and how long it took: informational, kept beside the record so
/// that the record itself depends only on the computation. Never used to find data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordMeta {
    /// Pipeline name that computed it.
    pub pipeline: String,
    /// Stage (instance) name that computed it.
    pub stage: String,
    /// When the computation started (RFC 3339, UTC).
    pub started: String,
    /// When it finished.
    pub finished: String,
    /// Seconds it took.
    pub elapsed_s: f64,
    /// eqlab version that computed it.
    pub eqlab_version: String,
    /// Host name.
    pub host: String,
}

/// What happened to one stage in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStage {
    /// Stage name.
    pub stage: String,
    /// Stage kind.
    pub kind: String,
    /// `cached`, `ran`, `failed`, `skipped` (an upstream failed) or `interrupted`.
    pub status: String,
    /// Stage key, when it was computed.
    pub key: Option<String>,
    /// Seconds spent (0 for cached).
    pub seconds: f64,
    /// The error, for failed stages; a note (e.g. waited for another run) otherwise.
    pub error: Option<String>,
}

impl RunStage {
    /// An outcome with no key, no time and no error yet.
    pub fn new(stage: &str, kind: &str, status: &str) -> Self {
        RunStage {
            stage: stage.to_owned(),
            kind: kind.to_owned(),
            status: status.to_owned(),
            key: None,
            seconds: 0.0,
            error: None,
        }
    }

    /// Sets the error message.
    pub fn error(mut self, e: impl Into<String>) -> Self {
        self.error = Some(e.into());
        self
    }

    /// Sets the stage key.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// Sets the time spent.
    pub fn seconds(mut self, s: f64) -> Self {
        self.seconds = s;
        self
    }
}

/// One `eqlab run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLog {
    /// Pipeline name.
    pub pipeline: String,
    /// Pipeline file, as given on the command line.
    pub file: String,
    /// The pipeline's identity: its file's canonical absolute path (two files with the same
    /// `name:` in different folders are different pipelines).
    #[serde(default)]
    pub file_id: String,
    /// Blake3 of the pipeline file.
    pub file_hash: String,
    /// Start time (RFC 3339, UTC).
    pub started: String,
    /// Total seconds.
    pub seconds: f64,
    /// eqlab version.
    pub eqlab_version: String,
    /// Host name.
    pub host: String,
    /// Per-stage outcome, in execution order.
    pub stages: Vec<RunStage>,
    /// Set when the log could not be written to the store (why); never stored.
    #[serde(skip)]
    pub not_saved: Option<String>,
    /// Scheduler operations the run took (see `exec::schedule`); never stored.
    #[serde(skip)]
    pub scheduler_steps: u64,
}

/// The current time as RFC 3339 UTC with microseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// This machine's host name (or `unknown`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Bit-exact f64 in JSON: finite values as JSON numbers (shortest round-trip text, parsed back
/// exactly: serde_json's `float_roundtrip`), non-finite ones as strings (`"inf"`, `"-inf"`,
/// `"NaN"`, or `"NaN:0x…"` for a NaN with a payload). ±0 keep their sign.
pub mod exact_f64 {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// JSON form of one value.
    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Num(f64),
        Text(String),
    }

    const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

    fn to_repr(v: f64) -> Repr {
        if v.is_finite() {
            Repr::Num(v)
        } else if v.is_nan() {
            if v.to_bits() == CANONICAL_NAN {
                Repr::Text("NaN".into())
            } else {
                Repr::Text(format!("NaN:0x{:016x}", v.to_bits()))
            }
        } else if v > 0.0 {
            Repr::Text("inf".into())
        } else {
            Repr::Text("-inf".into())
        }
    }

    fn from_repr(r: Repr) -> Result<f64, String> {
        match r {
            Repr::Num(v) => Ok(v),
            Repr::Text(t) => match t.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "NaN" => Ok(f64::from_bits(CANONICAL_NAN)),
                s => s
                    .strip_prefix("NaN:0x")
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .map(f64::from_bits)
                    .filter(|v| v.is_nan())
                    .ok_or_else(|| format!("{s:?} is not a number")),
            },
        }
    }

    /// Serde adapter for `BTreeMap<String, f64>`.
    pub mod map {
        use super::*;
        use std::collections::BTreeMap;

        /// Serializes each value bit-exactly.
        pub fn serialize<S: Serializer>(
            m: &BTreeMap<String, f64>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            let r: BTreeMap<&String, Repr> = m.iter().map(|(k, v)| (k, to_repr(*v))).collect();
            r.serialize(s)
        }

        /// Deserializes what [`serialize`] wrote.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, f64>, D::Error> {
            let r = BTreeMap::<String, Repr>::deserialize(d)?;
            r.into_iter()
                .map(|(k, v)| from_repr(v).map(|v| (k, v)).map_err(D::Error::custom))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn record(scalars: BTreeMap<String, f64>) -> Record {
        let components = StageKey {
            kind: "generate".into(),
            version: 1,
            params: BTreeMap::new(),
            files: BTreeMap::new(),
            inputs: Vec::new(),
            seed: 1,
        };
        let mut tables = BTreeMap::new();
        if !scalars.is_empty() {
            let m = metrics_table(&scalars).unwrap();
            tables.insert(
                METRICS.to_owned(),
                TableRef {
                    object: logical_hash(&m),
                    rows: m.num_rows() as u64,
                    file_b3: "0".repeat(64),
                },
            );
        }
        Record::new(components, tables, BTreeMap::new(), scalars)
    }

    /// Every f64 bit pattern class survives the JSON round trip bit for bit.
    #[test]
    fn scalars_round_trip_bit_exactly() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut values = vec![
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::from_bits(1),
            -f64::from_bits(1),
            f64::from_bits(0x000f_ffff_ffff_ffff),
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            1.0 / 3.0,
            0.1 + 0.2,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::from_bits(0x7ff0_0000_dead_beef),
            f64::from_bits(0xfff8_0000_0000_0001),
            -f64::NAN,
        ];
        for _ in 0..20_000 {
            values.push(f64::from_bits(rng.random::<u64>()));
        }
        for chunk in values.chunks(500) {
            let scalars: BTreeMap<String, f64> = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("s{i}"), *v))
                .collect();
            let r = record(scalars.clone());
            let text = serde_json::to_vec_pretty(&r).unwrap();
            let back: Record = serde_json::from_slice(&text).unwrap();
            for (k, v) in &scalars {
                assert_eq!(back.scalars[k].to_bits(), v.to_bits(), "{k} = {v:e}");
            }
            back.verify(&r.key).unwrap();
            assert_eq!(serde_json::to_vec_pretty(&back).unwrap(), text);
        }
    }

    #[test]
    fn every_integrity_rule_is_enforced() {
        let good = record([("mean".to_string(), 1.5)].into());
        good.verify(&good.key).unwrap();
        let fails = |r: &Record, want: &str| {
            let e = r.verify(&good.key).unwrap_err().0;
            assert!(e.contains(want), "{e}");
        };
        let mut r = good.clone();
        r.scalars.insert("mean".into(), 2.0);
        fails(&r, "checksum");
        r.checksum = r.compute_checksum();
        fails(&r, "metrics table");
        let mut r = good.clone();
        r.tables.get_mut(METRICS).unwrap().object = "../../precious".into();
        r.checksum = r.compute_checksum();
        fails(&r, "not a 64-hex hash");
        let mut r = good.clone();
        r.components.seed = 2;
        r.checksum = r.compute_checksum();
        fails(&r, "hash to");
        let mut r = good.clone();
        r.files.insert(
            "x".into(),
            FileRef {
                object: "a".repeat(64),
                ext: "sh/../x".into(),
                bytes: 1,
            },
        );
        r.checksum = r.compute_checksum();
        fails(&r, "unknown extension");
        assert!(good.verify(&"0".repeat(64)).is_err());
    }
}
