//! The JSON documents of the store: a stage [`Record`] (written last, after its objects) and a
//! [`RunLog`] (what one `eqlab run` did). Plain data; reading and writing is in the parent module.

use crate::key::StageKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Hex hash of `components`.
    pub key: String,
    /// The key itself.
    pub components: StageKey,
    /// Pipeline that computed it (informational).
    pub pipeline: String,
    /// Stage name that computed it (informational).
    pub stage: String,
    /// Table outputs.
    pub tables: BTreeMap<String, TableRef>,
    /// File outputs.
    pub files: BTreeMap<String, FileRef>,
    /// Scalar outputs.
    pub scalars: BTreeMap<String, f64>,
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
    /// The error, for failed stages.
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
    /// Pipeline file.
    pub file: String,
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
