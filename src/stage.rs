//! The contract between the engine and a stage kind: the [`Stage`] trait, its declared
//! parameters ([`ParamSpec`]), the values it receives ([`Params`], [`Inputs`], [`StageCtx`]) and
//! what it returns ([`Outputs`]).
//!
//! The engine validates parameters against the declared specs, fills defaults, hashes them and
//! hands them over; a stage never sees YAML, keys or the store.

use crate::table::Table;
use anyhow::{Result, anyhow, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The type a parameter must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A number (integers are accepted and stored as floats).
    Float,
    /// An integer.
    Int,
    /// `true` or `false`.
    Bool,
    /// A string.
    Str,
    /// A path to an input file, relative to the pipeline file; its *content* is part of the key.
    Path,
    /// A list of strings.
    StrList,
    /// A list of numbers.
    FloatList,
    /// Any YAML value (a mapping, a list of mappings, ...); the stage checks it.
    Any,
}

impl ParamKind {
    /// How the kind is named in messages and in `eqlab kinds`.
    pub fn describe(self) -> &'static str {
        match self {
            ParamKind::Float => "number",
            ParamKind::Int => "integer",
            ParamKind::Bool => "boolean",
            ParamKind::Str => "string",
            ParamKind::Path => "path",
            ParamKind::StrList => "list of strings",
            ParamKind::FloatList => "list of numbers",
            ParamKind::Any => "any",
        }
    }

    /// The kind with its article, for messages ("an integer", "a list of numbers").
    pub fn with_article(self) -> String {
        match self {
            ParamKind::Int | ParamKind::Any => format!("an {}", self.describe()),
            _ => format!("a {}", self.describe()),
        }
    }
}

/// One declared parameter of a stage kind.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// Name used under `with:`.
    pub name: &'static str,
    /// Required type.
    pub kind: ParamKind,
    /// Default as JSON text; `None` means the parameter is required.
    pub default: Option<&'static str>,
    /// One line for `eqlab kinds`.
    pub doc: &'static str,
    /// Whether the parameter is part of the key when it has its default value: `false` for a
    /// parameter added after results were stored ([`ParamSpec::added`]), so that those results
    /// keep their keys while any other value gets a key of its own.
    pub keyed_at_default: bool,
}

impl ParamSpec {
    /// A parameter with a default value (JSON text).
    pub const fn opt(
        name: &'static str,
        kind: ParamKind,
        default: &'static str,
        doc: &'static str,
    ) -> Self {
        ParamSpec {
            name,
            kind,
            default: Some(default),
            doc,
            keyed_at_default: true,
        }
    }

    /// A parameter with a default, added to a kind after results were stored: at its default it
    /// is left out of the key (the stored results stay valid), any other value is in it.
    pub const fn added(
        name: &'static str,
        kind: ParamKind,
        default: &'static str,
        doc: &'static str,
    ) -> Self {
        ParamSpec {
            keyed_at_default: false,
            ..ParamSpec::opt(name, kind, default, doc)
        }
    }

    /// A required parameter.
    pub const fn req(name: &'static str, kind: ParamKind, doc: &'static str) -> Self {
        ParamSpec {
            name,
            kind,
            default: None,
            doc,
            keyed_at_default: true,
        }
    }

    /// The default as a JSON value (numbers of a `Float` parameter as floats); `None` when the
    /// parameter is required.
    pub fn default_json(&self) -> Option<Value> {
        let text = self.default?;
        let v: Value = serde_json::from_str(text).unwrap_or(Value::String(text.to_owned()));
        Some(match (self.kind, &v) {
            (ParamKind::Float, Value::Number(n)) => n
                .as_f64()
                .and_then(serde_json::Number::from_f64)
                .map_or(v.clone(), Value::Number),
            _ => v,
        })
    }
}

/// A parameter value rejected by [`Stage::check`]; the engine adds file, line and column.
#[derive(Debug, Clone)]
pub struct ParamError {
    /// The offending parameter.
    pub param: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl ParamError {
    /// A new error about `param`.
    pub fn new(param: &str, message: impl Into<String>) -> Self {
        ParamError {
            param: param.to_owned(),
            message: message.into(),
        }
    }
}

/// Validated parameters with defaults filled in.
#[derive(Debug, Clone)]
pub struct Params {
    values: BTreeMap<String, Value>,
    base_dir: PathBuf,
}

impl Params {
    /// Wraps validated values; relative paths resolve against `base_dir`.
    pub fn new(values: BTreeMap<String, Value>, base_dir: PathBuf) -> Self {
        Params { values, base_dir }
    }

    /// All values, sorted by name (what is hashed).
    pub fn values(&self) -> &BTreeMap<String, Value> {
        &self.values
    }

    /// The raw value of `name`.
    pub fn get(&self, name: &str) -> Result<&Value> {
        self.values
            .get(name)
            .ok_or_else(|| anyhow!("parameter '{name}' is missing"))
    }

    /// A number.
    pub fn f64(&self, name: &str) -> Result<f64> {
        self.get(name)?
            .as_f64()
            .ok_or_else(|| anyhow!("parameter '{name}' must be a number"))
    }

    /// A number, or `None` when the value is null.
    pub fn opt_f64(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name)? {
            Value::Null => Ok(None),
            _ => self.f64(name).map(Some),
        }
    }

    /// A non-negative integer.
    pub fn usize(&self, name: &str) -> Result<usize> {
        self.get(name)?
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| anyhow!("parameter '{name}' must be a non-negative integer"))
    }

    /// A boolean.
    pub fn bool(&self, name: &str) -> Result<bool> {
        self.get(name)?
            .as_bool()
            .ok_or_else(|| anyhow!("parameter '{name}' must be true or false"))
    }

    /// A string.
    pub fn str(&self, name: &str) -> Result<&str> {
        self.get(name)?
            .as_str()
            .ok_or_else(|| anyhow!("parameter '{name}' must be a string"))
    }

    /// A string, or `None` when the value is null.
    pub fn opt_str(&self, name: &str) -> Result<Option<&str>> {
        match self.get(name)? {
            Value::Null => Ok(None),
            _ => self.str(name).map(Some),
        }
    }

    /// A list of strings.
    pub fn str_list(&self, name: &str) -> Result<Vec<String>> {
        match self.get(name)? {
            Value::Array(a) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("parameter '{name}' must be a list of strings"))
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            _ => bail!("parameter '{name}' must be a list of strings"),
        }
    }

    /// A list of numbers.
    pub fn f64_list(&self, name: &str) -> Result<Vec<f64>> {
        match self.get(name)? {
            Value::Array(a) => a
                .iter()
                .map(|v| {
                    v.as_f64()
                        .ok_or_else(|| anyhow!("parameter '{name}' must be a list of numbers"))
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            _ => bail!("parameter '{name}' must be a list of numbers"),
        }
    }

    /// Checks that each named number parameter, when set, is finite and > 0.
    pub fn require_positive(&self, names: &[&str]) -> std::result::Result<(), ParamError> {
        for name in names {
            match self.opt_f64(name) {
                Ok(Some(v)) if v > 0.0 && v.is_finite() => {}
                Ok(None) => {}
                Ok(Some(v)) => {
                    return Err(ParamError::new(
                        name,
                        format!("must be a finite number > 0, got {v}"),
                    ));
                }
                Err(e) => return Err(ParamError::new(name, e.to_string())),
            }
        }
        Ok(())
    }

    /// Checks that each named integer parameter is at least its minimum.
    pub fn require_at_least(&self, mins: &[(&str, usize)]) -> std::result::Result<(), ParamError> {
        for &(name, min) in mins {
            let n = self
                .usize(name)
                .map_err(|e| ParamError::new(name, e.to_string()))?;
            if n < min {
                return Err(ParamError::new(
                    name,
                    format!("must be at least {min}, got {n}"),
                ));
            }
        }
        Ok(())
    }

    /// A path parameter resolved against the pipeline file's directory.
    pub fn path(&self, name: &str) -> Result<PathBuf> {
        Ok(self.resolve(Path::new(self.str(name)?)))
    }

    /// Resolves a path relative to the pipeline file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

/// A file output (a figure, a report, model weights).
#[derive(Debug, Clone, PartialEq)]
pub struct FileOut {
    /// File extension without the dot (`svg`, `png`, `md`, `bpk`).
    pub ext: String,
    /// The content.
    pub bytes: Vec<u8>,
}

/// What a stage produced: named tables, named scalars and named files.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Tables, each stored as one Parquet object.
    pub tables: BTreeMap<String, Table>,
    /// Scalars, stored in the record and as the `metrics` table.
    pub scalars: BTreeMap<String, f64>,
    /// Files, stored as bytes.
    pub files: BTreeMap<String, FileOut>,
}

impl Outputs {
    /// No outputs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a table.
    pub fn table(mut self, name: &str, t: Table) -> Self {
        self.tables.insert(name.to_owned(), t);
        self
    }

    /// Adds a scalar.
    pub fn scalar(mut self, name: &str, v: f64) -> Self {
        self.scalars.insert(name.to_owned(), v);
        self
    }

    /// Adds a file.
    pub fn file(mut self, name: &str, ext: &str, bytes: Vec<u8>) -> Self {
        self.files.insert(
            name.to_owned(),
            FileOut {
                ext: ext.to_owned(),
                bytes,
            },
        );
        self
    }
}

/// The outputs of one upstream stage, as seen by a downstream stage.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The upstream stage's kind.
    pub kind: String,
    /// The upstream stage's parameters (after defaults), for stages that tabulate them.
    pub params: BTreeMap<String, Value>,
    /// The upstream instance's sweep point (axis → value); empty when not swept.
    pub point: Vec<(String, Value)>,
    /// The upstream instance's replicate index, if replicated.
    pub replicate: Option<u64>,
    /// Its outputs.
    pub outputs: Outputs,
}

/// All upstream outputs of a stage, by upstream stage name (in `needs` order).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Upstream stage name → outputs, in the order of `needs`.
    pub upstream: Vec<(String, Upstream)>,
}

impl Inputs {
    /// The only table called `name` among all upstream outputs.
    pub fn table(&self, name: &str) -> Result<&Table> {
        let found: Vec<(&str, &Table)> = self
            .upstream
            .iter()
            .filter_map(|(s, u)| u.outputs.tables.get(name).map(|t| (s.as_str(), t)))
            .collect();
        match found.as_slice() {
            [(_, t)] => Ok(t),
            [] => bail!(
                "no upstream stage produced a table '{name}' (available: {})",
                self.available(|u| u.outputs.tables.keys().cloned().collect())
            ),
            many => bail!(
                "several upstream stages produced a table '{name}' ({}); name one in `needs`",
                many.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The scalar called `name` among all upstream outputs (several upstream stages may pass the
    /// same value on; different values are an error).
    pub fn scalar(&self, name: &str) -> Result<f64> {
        let found: Vec<(&str, f64)> = self
            .upstream
            .iter()
            .filter_map(|(s, u)| u.outputs.scalars.get(name).map(|v| (s.as_str(), *v)))
            .collect();
        match found.as_slice() {
            [] => bail!(
                "no upstream stage produced a scalar '{name}' (available: {})",
                self.available(|u| u.outputs.scalars.keys().cloned().collect())
            ),
            [(_, v), rest @ ..] if rest.iter().all(|(_, w)| w.to_bits() == v.to_bits()) => Ok(*v),
            many => bail!(
                "upstream stages disagree on the scalar '{name}': {}",
                many.iter()
                    .map(|(s, v)| format!("{s} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The only upstream stage of kind `kind`, as (stage name, outputs).
    pub fn only_of_kind(&self, kind: &str) -> Result<(&str, &Upstream)> {
        let found: Vec<&(String, Upstream)> = self
            .upstream
            .iter()
            .filter(|(_, u)| u.kind == kind)
            .collect();
        match found.as_slice() {
            [(name, u)] => Ok((name.as_str(), u)),
            _ => bail!(
                "needs exactly one `{kind}` stage upstream, found {}",
                found.len()
            ),
        }
    }

    /// Whether any upstream stage produced a scalar `name`.
    pub fn has_scalar(&self, name: &str) -> bool {
        self.upstream
            .iter()
            .any(|(_, u)| u.outputs.scalars.contains_key(name))
    }

    /// The outputs of upstream stage `stage`.
    pub fn stage(&self, stage: &str) -> Result<&Upstream> {
        self.upstream
            .iter()
            .find(|(s, _)| s == stage)
            .map(|(_, u)| u)
            .ok_or_else(|| anyhow!("'{stage}' is not among this stage's `needs`"))
    }

    fn available(&self, names: impl Fn(&Upstream) -> Vec<String>) -> String {
        let all: Vec<String> = self
            .upstream
            .iter()
            .flat_map(|(s, u)| names(u).into_iter().map(move |n| format!("{s}.{n}")))
            .collect();
        if all.is_empty() {
            "none".into()
        } else {
            all.join(", ")
        }
    }
}

/// Progress reporting for a running stage (a no-op when hidden).
#[derive(Clone)]
pub struct Progress {
    bar: indicatif::ProgressBar,
}

impl Progress {
    /// Wraps an indicatif bar.
    pub fn new(bar: indicatif::ProgressBar) -> Self {
        Progress { bar }
    }

    /// A progress handle that draws nothing.
    pub fn hidden() -> Self {
        Progress {
            bar: indicatif::ProgressBar::hidden(),
        }
    }

    /// Sets the number of work units.
    pub fn set_len(&self, n: u64) {
        self.bar.set_length(n);
    }

    /// Marks `n` more units done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Shows a short message (e.g. the current loss).
    pub fn message(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
    }
}

/// Raised by [`StageCtx::check_cancelled`] after Ctrl-C.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Cancelled;

/// What the engine gives a running stage besides parameters and inputs.
#[derive(Clone)]
pub struct StageCtx {
    /// The seed for this stage's random streams (explicit `seed:` or derived, see `key`).
    pub seed: u64,
    /// Progress reporting.
    pub progress: Progress,
    /// A private scratch directory, removed after the stage.
    pub scratch: PathBuf,
    cancel: Arc<AtomicBool>,
}

impl StageCtx {
    /// A context for one stage run.
    pub fn new(seed: u64, progress: Progress, scratch: PathBuf, cancel: Arc<AtomicBool>) -> Self {
        StageCtx {
            seed,
            progress,
            scratch,
            cancel,
        }
    }

    /// Whether the user asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Returns `Err(Cancelled)` once the user asked to stop; call it in long loops.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Cancelled.into())
        } else {
            Ok(())
        }
    }
}

/// A stage kind: a thin adapter from parameters and upstream tables to the science code.
pub trait Stage: Send + Sync {
    /// Unique kind name used in pipeline files, e.g. `cost_ode`.
    fn kind(&self) -> &'static str;
    /// Bump when the stage's results may change; part of every key.
    fn version(&self) -> u32;
    /// One line saying what the stage does.
    fn about(&self) -> &'static str;
    /// Declared parameters (types and defaults).
    fn params(&self) -> &'static [ParamSpec];
    /// Source files (relative to the crate root) whose content determines the results; a test
    /// fails when one changes without a version bump.
    fn sources(&self) -> &'static [&'static str];
    /// Checks parameter values before anything runs.
    fn check(&self, _params: &Params) -> std::result::Result<(), ParamError> {
        Ok(())
    }
    /// Checks that this machine can compute the stage (a device, its library, a GPU): before a
    /// run computes here, not when a run is only planned or is submitted to run elsewhere.
    fn check_machine(&self, _params: &Params) -> std::result::Result<(), ParamError> {
        Ok(())
    }
    /// Whether a non-finite value is acceptable in `column` of output `table`.
    fn allows_nonfinite(&self, _table: &str, _column: &str) -> bool {
        false
    }
    /// Does the work.
    fn run(&self, ctx: &StageCtx, params: &Params, inputs: &Inputs) -> Result<Outputs>;
}
