//! Pipeline files: the YAML format, its validation, `${...}` references and `--set` overrides.
//!
//! A pipeline file has a `name`, optional `description`, `seed` and `params`, and a `stages`
//! mapping of stage name → `{kind, needs, with, seed, description}`. [`load`] parses it,
//! checks **every** problem it can find before anything runs (unknown keys and kinds, missing
//! `needs`, dangling references, wrong types, cycles) and reports them all with
//! `file:line:col`. Turning a declared stage into concrete parameter values is [`instantiate`].
//! Graph algorithms live in `graph`, hashing in `key`.
//!
//! Every problem is reported once, at the node that holds it: a `--set` value on the command
//! line (`--set a.rows=x: stages.a.with.rows: …`), a problem inside `params:` at that parameter
//! (reference cycles included), a bad sweep value at its axis (once, however many instances
//! carry it). Nothing a file says can make validation grow without bound: the YAML parser has
//! limits (see `yaml`), sweeps are counted before they are expanded (see `sweep`, and
//! [`LoadOptions::max_instances`]), and reference expansion is bounded in depth and size.

pub mod errors;
pub mod resources;
pub mod sweep;
pub mod yaml;

use crate::stage::{ParamError, ParamKind, ParamSpec, Params, Stage};
use crate::stages::Registry;
use errors::{Collector, suggest};
pub use errors::{SpecError, SpecErrors};
use serde_json::Value as J;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use yaml::{Key, Loc, Node, Value};

const TOP_KEYS: &[&str] = &["name", "description", "seed", "params", "stages"];
const STAGE_KEYS: &[&str] = &[
    "kind",
    "needs",
    "with",
    "seed",
    "description",
    "sweep",
    "foreach",
    "replicates",
    "resources",
];

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// `name:` (defaults to the file stem).
    pub name: String,
    /// `description:`.
    pub description: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Directory that relative paths resolve against (the file's directory).
    pub base_dir: PathBuf,
    /// Blake3 of the file text (for provenance).
    pub file_hash: String,
    /// Pipeline-level seed from which stage seeds derive (default 0).
    pub seed: u64,
    /// Pipeline parameters after `--set` overrides.
    pub params: BTreeMap<String, Node>,
    /// The `--set` arguments as given (`KEY=VALUE`): problems in them are reported there.
    pub overrides: Vec<String>,
    /// Stages in file order.
    pub stages: Vec<StageDecl>,
    /// Instance name → position in `stages`, built on the first [`Pipeline::stage`] call.
    index: std::sync::OnceLock<std::collections::HashMap<String, usize>>,
}

/// One stage instance: a stage as declared in the file, or one point of its sweep.
#[derive(Debug, Clone)]
pub struct StageDecl {
    /// The instance name: the declared name, or e.g. `ode[q=1.5,rep=2]` for a sweep point.
    pub name: String,
    /// The declared name (under `stages:`).
    pub base: String,
    /// The sweep point of this instance (axis → value); empty when not swept.
    pub point: sweep::Point,
    /// Replicate index, for stages with `replicates:`.
    pub replicate: Option<u64>,
    /// Raw `sweep:` (expanded away after parsing).
    pub sweep: Option<Node>,
    /// `foreach:` target and its location (expanded away after parsing).
    pub foreach: Option<(String, Loc)>,
    /// `replicates:`.
    pub replicates: Option<u64>,
    /// Its kind.
    pub kind: String,
    /// Where it is declared.
    pub loc: Loc,
    /// Upstream stages: the explicit `needs` plus those referenced with `${stages.X.y}`.
    pub needs: Vec<String>,
    /// Raw parameters under `with:`, with their locations.
    pub with: Vec<(Key, Node)>,
    /// Explicit `seed:`.
    pub seed: Option<u64>,
    /// `description:`.
    pub description: String,
    /// `resources:`: scheduler hints for cluster executors (never part of the key).
    pub resources: resources::Resources,
}

impl Pipeline {
    /// The declaration of stage `name` (a hash lookup: sweeps have up to 10⁵ instances).
    pub fn stage(&self, name: &str) -> Option<&StageDecl> {
        let index = self.index.get_or_init(|| {
            self.stages
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.clone(), i))
                .collect()
        });
        match index.get(name).and_then(|&i| self.stages.get(i)) {
            Some(s) if s.name == name => Some(s),
            // The stages changed after the index was built (only while loading): search.
            _ => self.stages.iter().find(|s| s.name == name),
        }
    }
}

/// Splits an output address `STAGE.REST` at the first dot outside `[...]`, so that instance
/// names such as `ode[q=1.5]` stay whole.
pub fn split_stage(addr: &str) -> Option<(&str, &str)> {
    let mut depth = 0;
    for (i, ch) in addr.char_indices() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            '.' if depth == 0 => return Some((&addr[..i], &addr[i + 1..])),
            _ => {}
        }
    }
    None
}

/// A `--set KEY=VALUE` override: `params.NAME=V`, `STAGE.PARAM=V`, or `*.PARAM=V` (every stage
/// whose kind has the parameter, e.g. `*.device=tch-cpu`).
#[derive(Debug, Clone)]
pub struct Override {
    /// The dotted key.
    pub key: String,
    /// The value, parsed as YAML.
    pub value: Node,
    /// The argument as given, `KEY=VALUE`.
    pub text: String,
}

impl std::str::FromStr for Override {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE (e.g. params.q=1.5), got '{s}'"))?;
        if !k.contains('.') {
            return Err(format!(
                "'{k}': use params.NAME=VALUE, STAGE.PARAM=VALUE or *.PARAM=VALUE"
            ));
        }
        let value = yaml::parse(v).map_err(|e| format!("value of '{k}': {}", e.summary()))?;
        Ok(Override {
            key: k.to_owned(),
            value,
            text: s.to_owned(),
        })
    }
}

/// The environment variable that sets [`LoadOptions::max_instances`] for [`load`].
pub const MAX_INSTANCES_ENV: &str = "EQLAB_MAX_INSTANCES";

/// How a pipeline file is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// The most stage instances the pipeline may expand to (sweep points × replicates, summed
    /// over stages); a pipeline beyond it is refused before it is expanded.
    pub max_instances: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_instances: sweep::DEFAULT_MAX_INSTANCES,
        }
    }
}

impl LoadOptions {
    /// The defaults, with [`MAX_INSTANCES_ENV`] applied when it is set.
    pub fn from_env() -> Result<LoadOptions, String> {
        let mut o = LoadOptions::default();
        if let Some(v) = std::env::var_os(MAX_INSTANCES_ENV) {
            let v = v.to_string_lossy();
            o.max_instances = parse_max_instances(&v)?;
        }
        Ok(o)
    }
}

/// Parses an instance limit as given on the command line or in [`MAX_INSTANCES_ENV`].
pub fn parse_max_instances(v: &str) -> Result<u64, String> {
    match v.trim().replace('_', "").parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a positive whole number of instances, found '{v}'"
        )),
    }
}

/// Reads, parses and validates a pipeline file, with the instance limit of
/// [`LoadOptions::from_env`].
pub fn load(
    path: &Path,
    registry: &Registry,
    overrides: &[Override],
) -> Result<Pipeline, SpecErrors> {
    let opts = LoadOptions::from_env().map_err(|m| {
        let mut c = Collector::new(path.to_path_buf());
        let v = std::env::var_os(MAX_INSTANCES_ENV).unwrap_or_default();
        c.push_arg(
            format!("{MAX_INSTANCES_ENV}={}", v.to_string_lossy()),
            "",
            m,
        );
        SpecErrors(c.errors)
    })?;
    load_with(path, registry, overrides, &opts)
}

/// Reads, parses and validates a pipeline file.
pub fn load_with(
    path: &Path,
    registry: &Registry,
    overrides: &[Override],
    opts: &LoadOptions,
) -> Result<Pipeline, SpecErrors> {
    let text = read_text(path).map_err(|message| {
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            loc: Loc::default(),
            key: String::new(),
            message,
            arg: None,
        }])
    })?;
    parse_with(&text, path, registry, overrides, opts)
}

/// Reads a pipeline file of at most [`yaml::MAX_TEXT_BYTES`] bytes.
fn read_text(path: &Path) -> Result<String, String> {
    use std::io::Read;
    if path.is_dir() {
        return Err("cannot read the pipeline file: it is a directory, not a file".to_owned());
    }
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read the pipeline file: {e}"))?;
    let mut bytes = Vec::new();
    f.take(yaml::MAX_TEXT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the pipeline file: {e}"))?;
    if bytes.len() > yaml::MAX_TEXT_BYTES {
        return Err(format!(
            "the pipeline file is longer than {} bytes: is it the right file?",
            yaml::MAX_TEXT_BYTES
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the pipeline file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Parses and validates pipeline text as if read from `path`, with the default options.
pub fn parse(
    text: &str,
    path: &Path,
    registry: &Registry,
    overrides: &[Override],
) -> Result<Pipeline, SpecErrors> {
    parse_with(text, path, registry, overrides, &LoadOptions::default())
}

/// Parses and validates pipeline text as if read from `path`.
pub fn parse_with(
    text: &str,
    path: &Path,
    registry: &Registry,
    overrides: &[Override],
    opts: &LoadOptions,
) -> Result<Pipeline, SpecErrors> {
    errors::reset_suggestion_budget();
    let mut c = Collector::new(path.to_path_buf());
    c.args = overrides.iter().map(|o| o.text.clone()).collect();
    let root = match yaml::parse(text) {
        Ok(n) => n,
        Err(e) => {
            c.push(e.loc, "", format!("invalid YAML: {}", e.summary()));
            return c.finish(unreachable_pipeline());
        }
    };
    let Some(top) = root.as_map() else {
        c.push(
            root.loc,
            "",
            format!(
                "a pipeline file must be a mapping with `stages:`, found {}",
                root.value.type_name()
            ),
        );
        return c.finish(unreachable_pipeline());
    };
    let stem = path
        .file_stem()
        .map_or("pipeline".to_owned(), |s| s.to_string_lossy().into_owned());
    let mut p = Pipeline {
        name: stem,
        description: String::new(),
        file: path.to_path_buf(),
        base_dir: path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        file_hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
        seed: 0,
        params: BTreeMap::new(),
        overrides: c.args.clone(),
        stages: Vec::new(),
        index: Default::default(),
    };
    let mut stages_node = None;
    for (k, v) in top {
        match k.name.as_str() {
            "name" => {
                if let Some(s) = expect_str(&mut c, v, "name") {
                    let plain = !s.is_empty()
                        && s.len() <= 100
                        && !s.starts_with('.')
                        && s.chars()
                            .all(|ch| ch.is_alphanumeric() || "_-.".contains(ch));
                    if plain {
                        p.name = s;
                    } else {
                        c.push(
                            v.loc,
                            "name",
                            format!(
                                "{s:?} is not a pipeline name: use letters, digits, '_', '-' and '.' (not first), at most 100 characters"
                            ),
                        );
                    }
                }
            }
            "description" => {
                p.description = expect_str(&mut c, v, "description").unwrap_or_default()
            }
            "seed" => p.seed = expect_seed(&mut c, v, "seed").unwrap_or(0),
            "params" => match v.as_map() {
                Some(m) => {
                    for (pk, pv) in m {
                        p.params.insert(pk.name.clone(), pv.clone());
                    }
                }
                None if v.value == Value::Null => {}
                None => c.push(
                    v.loc,
                    "params",
                    format!("must be a mapping, found {}", v.value.type_name()),
                ),
            },
            "stages" => stages_node = Some(v),
            other => c.push(
                k.loc,
                other,
                format!(
                    "unknown top-level key{}",
                    suggest(other, TOP_KEYS.iter().copied())
                ),
            ),
        }
    }
    match stages_node {
        None => c.push(
            root.loc,
            "stages",
            "missing `stages:` (a mapping of stage name → {kind, needs, with})",
        ),
        Some(n) => match n.as_map() {
            Some(m) if !m.is_empty() => {
                for (k, v) in m {
                    if let Some(d) = parse_stage(&mut c, k, v, registry) {
                        p.stages.push(d);
                    }
                }
            }
            Some(_) => c.push(n.loc, "stages", "no stages declared"),
            None => c.push(
                n.loc,
                "stages",
                format!(
                    "must be a mapping of stage name → stage, found {}",
                    n.value.type_name()
                ),
            ),
        },
    }
    apply_overrides(&mut c, &mut p, overrides, registry);
    let broken_params = check_param_values(&mut c, &p);
    let axis_at = sweep::expand(&mut c, &mut p, opts.max_instances);
    let troubled = check_references(&mut c, &mut p, &broken_params);
    check_params(&mut c, &p, registry, &axis_at, &troubled);
    if c.errors.is_empty()
        && let Err(cycle) = crate::graph::find_cycle(&p)
    {
        let first = p.stage(&cycle[0]).map_or(Loc::default(), |s| s.loc);
        c.push(
            first,
            format!("stages.{}", cycle[0]),
            format!("dependency cycle: {}", cycle.join(" → ")),
        );
    }
    c.finish(p)
}

fn unreachable_pipeline() -> Pipeline {
    Pipeline {
        name: String::new(),
        description: String::new(),
        file: PathBuf::new(),
        base_dir: PathBuf::new(),
        file_hash: String::new(),
        seed: 0,
        params: BTreeMap::new(),
        overrides: Vec::new(),
        stages: Vec::new(),
        index: Default::default(),
    }
}

fn expect_str(c: &mut Collector, v: &Node, key: &str) -> Option<String> {
    match &v.value {
        Value::Str(s) => Some(s.clone()),
        other => {
            c.push(
                v.loc,
                key,
                format!("expected a string, found {}", other.type_name()),
            );
            None
        }
    }
}

fn expect_seed(c: &mut Collector, v: &Node, key: &str) -> Option<u64> {
    match &v.value {
        Value::Int(i) if *i >= 0 => Some(*i as u64),
        other => {
            c.push(
                v.loc,
                key,
                format!(
                    "expected a non-negative integer seed, found {}",
                    other.type_name()
                ),
            );
            None
        }
    }
}

fn parse_stage(c: &mut Collector, k: &Key, v: &Node, registry: &Registry) -> Option<StageDecl> {
    let name = k.name.clone();
    let path = format!("stages.{name}");
    if name.is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_alphanumeric() || "_-".contains(ch))
    {
        c.push(
            k.loc,
            &path,
            "stage names may contain only letters, digits, '_' and '-'",
        );
    }
    let Some(m) = v.as_map() else {
        c.push(
            v.loc,
            &path,
            format!(
                "a stage must be a mapping with `kind:`, found {}",
                v.value.type_name()
            ),
        );
        return None;
    };
    let mut d = StageDecl {
        name: name.clone(),
        base: name.clone(),
        point: Vec::new(),
        replicate: None,
        sweep: None,
        foreach: None,
        replicates: None,
        kind: String::new(),
        loc: k.loc,
        needs: Vec::new(),
        with: Vec::new(),
        seed: None,
        description: String::new(),
        resources: resources::Resources::default(),
    };
    let mut has_kind = false;
    for (sk, sv) in m {
        let key = format!("{path}.{}", sk.name);
        match sk.name.as_str() {
            "kind" => {
                has_kind = true;
                if let Some(kind) = expect_str(c, sv, &key) {
                    if registry.get(&kind).is_none() {
                        c.push(
                            sv.loc,
                            &key,
                            format!(
                                "unknown stage kind '{kind}'{}",
                                suggest(&kind, registry.kinds())
                            ),
                        );
                    }
                    d.kind = kind;
                }
            }
            "needs" => match &sv.value {
                Value::Str(s) => d.needs.push(s.clone()),
                Value::Seq(items) => {
                    for it in items {
                        if let Some(s) = expect_str(c, it, &key) {
                            d.needs.push(s);
                        }
                    }
                }
                Value::Null => {}
                other => c.push(
                    sv.loc,
                    &key,
                    format!(
                        "expected a stage name or a list of stage names, found {}",
                        other.type_name()
                    ),
                ),
            },
            "with" => match &sv.value {
                Value::Map(entries) => d.with = entries.clone(),
                Value::Null => {}
                other => c.push(
                    sv.loc,
                    &key,
                    format!(
                        "expected a mapping of parameters, found {}",
                        other.type_name()
                    ),
                ),
            },
            "seed" => d.seed = expect_seed(c, sv, &key),
            "sweep" => d.sweep = Some(sv.clone()),
            "foreach" => {
                if let Some(t) = expect_str(c, sv, &key) {
                    if !d.needs.contains(&t) {
                        d.needs.push(t.clone());
                    }
                    d.foreach = Some((t, sv.loc));
                }
            }
            "replicates" => match &sv.value {
                Value::Int(n) if *n >= 1 => d.replicates = Some(*n as u64),
                other => c.push(
                    sv.loc,
                    &key,
                    format!("expected a positive integer, found {}", other.type_name()),
                ),
            },
            "description" => d.description = expect_str(c, sv, &key).unwrap_or_default(),
            "resources" => d.resources = resources::parse(c, sv, &key),
            other => c.push(
                sk.loc,
                &key,
                format!(
                    "unknown stage key{}",
                    suggest(other, STAGE_KEYS.iter().copied())
                ),
            ),
        }
    }
    if !has_kind {
        c.push(
            k.loc,
            &path,
            format!(
                "stage '{name}' has no `kind:`{}",
                suggest("", registry.kinds())
            ),
        );
    }
    Some(d)
}

/// Replaces the values of a `grid`/`zip` sweep axis; false when there is no such axis.
fn set_sweep_axis(s: &mut StageDecl, axis: &str, value: &Node) -> bool {
    let Some(Node {
        value: Value::Map(kinds),
        ..
    }) = &mut s.sweep
    else {
        return false;
    };
    for (k, body) in kinds.iter_mut() {
        if let (true, Value::Map(axes)) = (k.name == "grid" || k.name == "zip", &mut body.value)
            && let Some((_, v)) = axes.iter_mut().find(|(a, _)| a.name == axis)
        {
            *v = value.clone();
            return true;
        }
    }
    false
}

fn apply_overrides(
    c: &mut Collector,
    p: &mut Pipeline,
    overrides: &[Override],
    registry: &Registry,
) {
    for (i, o) in overrides.iter().enumerate() {
        let Some((head, rest)) = o.key.split_once('.') else {
            continue;
        };
        let here = Loc::arg(i);
        let mut value = o.value.clone();
        value.relocate(here);
        if head == "params" {
            if p.params.contains_key(rest) {
                p.params.insert(rest.to_owned(), value);
            } else {
                let names: Vec<&str> = p.params.keys().map(String::as_str).collect();
                c.push(
                    here,
                    "",
                    format!(
                        "the pipeline has no parameter '{rest}'{}",
                        suggest(rest, names)
                    ),
                );
            }
        } else if head == "*" {
            // Every stage whose kind has the parameter (e.g. `*.device=tch-cpu`).
            let mut hit = false;
            for s in p.stages.iter_mut() {
                let has = registry
                    .get(&s.kind)
                    .is_some_and(|k| k.params().iter().any(|sp| sp.name == rest));
                if !has {
                    continue;
                }
                hit = true;
                set_with(s, rest, value.clone(), here);
            }
            if !hit {
                c.push(
                    here,
                    "",
                    format!("no stage of this pipeline has a kind with the parameter '{rest}'"),
                );
            }
        } else if let Some(s) = p.stages.iter_mut().find(|s| s.name == head)
            && let Some(axis) = rest.strip_prefix("sweep.")
        {
            if !set_sweep_axis(s, axis, &value) {
                c.push(
                    here,
                    "",
                    format!("stage '{head}' has no grid/zip sweep axis '{axis}'"),
                );
            }
        } else if let Some(s) = p.stages.iter_mut().find(|s| s.name == head) {
            set_with(s, rest, value, here);
        } else {
            let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
            c.push(
                here,
                "",
                format!(
                    "no stage or `params` called '{head}'{}",
                    suggest(head, names)
                ),
            );
        }
    }
}

/// Sets parameter `name` of stage `s` to `value`: replaces its `with:` entry, or appends one
/// located at the command-line argument `loc`.
fn set_with(s: &mut StageDecl, name: &str, value: Node, loc: Loc) {
    match s.with.iter_mut().find(|(k, _)| k.name == name) {
        Some(entry) => entry.1 = value,
        None => s.with.push((
            Key {
                name: name.to_owned(),
                loc,
            },
            value,
        )),
    }
}

/// A `${...}` reference inside a string.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// `${params.NAME}`.
    Param(String),
    /// `${stages.STAGE.SCALAR}`.
    Scalar(String, String),
    /// `${sweep.AXIS}` (replaced when the stage's sweep is expanded).
    Sweep(String),
}

/// The most characters of a bad reference quoted in a message.
const MAX_QUOTED: usize = 60;

/// `s`, cut to [`MAX_QUOTED`] characters for a message.
fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Finds every `${...}` in `s`: (byte range, parsed reference or an error message).
fn references(s: &str) -> Vec<(std::ops::Range<usize>, Result<Reference, String>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = s[from..].find("${").map(|i| i + from) {
        let Some(end) = s[start..].find('}').map(|i| i + start) else {
            out.push((start..s.len(), Err("unterminated `${`".to_owned())));
            break;
        };
        let inner = s[start + 2..end].trim();
        let parts: Vec<&str> = inner.splitn(3, '.').collect();
        let r = match parts.as_slice() {
            ["params", name] if !name.is_empty() => Ok(Reference::Param((*name).to_owned())),
            ["stages", st, out] if !st.is_empty() && !out.is_empty() => {
                Ok(Reference::Scalar((*st).to_owned(), (*out).to_owned()))
            }
            ["sweep", name] if !name.is_empty() => Ok(Reference::Sweep((*name).to_owned())),
            _ => Err(format!(
                "bad reference `${{{}}}`: use ${{params.NAME}}, ${{stages.STAGE.SCALAR}} or ${{sweep.AXIS}}",
                quote(inner)
            )),
        };
        out.push((start..end + 1, r));
        from = end + 1;
    }
    out
}

fn walk_strings<'a>(n: &'a Node, f: &mut dyn FnMut(&'a str, Loc)) {
    match &n.value {
        Value::Str(s) => f(s, n.loc),
        Value::Seq(items) => items.iter().for_each(|i| walk_strings(i, f)),
        Value::Map(m) => m.iter().for_each(|(_, v)| walk_strings(v, f)),
        _ => {}
    }
}

/// Checks the references inside `params:` values (undefined names, bad syntax, `${sweep...}`,
/// cycles of any length), each reported once at the parameter that holds it. Returns the names
/// of the parameters with such a problem.
fn check_param_values(c: &mut Collector, p: &Pipeline) -> HashSet<String> {
    let stages: HashSet<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    let mut broken = HashSet::new();
    let mut graph = petgraph::graph::DiGraph::<&str, ()>::new();
    let node: BTreeMap<&str, petgraph::graph::NodeIndex> = p
        .params
        .keys()
        .map(|k| (k.as_str(), graph.add_node(k.as_str())))
        .collect();
    for (name, value) in &p.params {
        let key = format!("params.{name}");
        walk_strings(value, &mut |text, loc| {
            for (_, r) in references(text) {
                let problem = match r {
                    Err(m) => Some(m),
                    Ok(Reference::Param(q)) => {
                        match (node.get(name.as_str()), node.get(q.as_str())) {
                            (Some(&a), Some(&b)) => {
                                graph.add_edge(a, b, ());
                                None
                            }
                            _ => Some(format!(
                                "`${{params.{}}}` is not defined under `params:`{}",
                                quote(&q),
                                suggest(&q, p.params.keys().map(String::as_str))
                            )),
                        }
                    }
                    Ok(Reference::Sweep(a)) => Some(format!(
                        "`${{sweep.{}}}` can only be used in a swept stage's `with:`, not under `params:`",
                        quote(&a)
                    )),
                    Ok(Reference::Scalar(st, _)) if !stages.contains(st.as_str()) => Some(format!(
                        "`${{stages.{}...}}` names no stage{}",
                        quote(&st),
                        suggest(&st, stages.iter().copied())
                    )),
                    Ok(Reference::Scalar(..)) => None,
                };
                if let Some(m) = problem {
                    c.push(loc, &key, m);
                    broken.insert(name.clone());
                }
            }
        });
    }
    let loc_of = |n: &str| p.params.get(n).map_or(Loc::default(), |v| v.loc);
    for scc in petgraph::algo::tarjan_scc(&graph) {
        let looped = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if !looped {
            continue;
        }
        let Some(&start) = scc
            .iter()
            .min_by_key(|&&i| (loc_of(graph[i]).line, loc_of(graph[i]).col, graph[i]))
        else {
            continue;
        };
        let cycle = cycle_through(&graph, &scc, start);
        let names: Vec<String> = cycle
            .iter()
            .map(|&i| format!("params.{}", graph[i]))
            .collect();
        c.push(
            loc_of(graph[start]),
            format!("params.{}", graph[start]),
            format!("reference cycle {}", names.join(" → ")),
        );
        broken.extend(scc.iter().map(|&i| graph[i].to_owned()));
    }
    broken
}

/// A shortest cycle from `start` back to itself inside the strongly connected `scc` (breadth
/// first, so any length is fine), as the list of its nodes with `start` at both ends.
fn cycle_through(
    graph: &petgraph::graph::DiGraph<&str, ()>,
    scc: &[petgraph::graph::NodeIndex],
    start: petgraph::graph::NodeIndex,
) -> Vec<petgraph::graph::NodeIndex> {
    let members: HashSet<_> = scc.iter().copied().collect();
    let mut parent = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(u) = queue.pop_front() {
        for v in graph.neighbors(u) {
            if v == start {
                // Walk back from u to start along the breadth-first parents.
                let mut back = Vec::new();
                let mut cur = u;
                while cur != start {
                    back.push(cur);
                    cur = parent.get(&cur).copied().unwrap_or(start);
                }
                let mut cycle = vec![start];
                cycle.extend(back.into_iter().rev());
                cycle.push(start);
                return cycle;
            }
            if members.contains(&v) && v != start && !parent.contains_key(&v) {
                parent.insert(v, u);
                queue.push_back(v);
            }
        }
    }
    vec![start, start]
}

/// Whether following `${params...}` references from parameter `name` runs into a cycle.
fn reaches_cycle(params: &BTreeMap<String, Node>, name: &str) -> bool {
    // Depth-first with colours: 1 = on the current path, 2 = finished.
    let mut colour: HashMap<&str, u8> = HashMap::new();
    let refs = |n: &str| -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(v) = params.get(n) {
            walk_strings(v, &mut |text, _| {
                for (_, r) in references(text) {
                    if let Ok(Reference::Param(q)) = r
                        && let Some((k, _)) = params.get_key_value(&q)
                    {
                        out.push(k.as_str());
                    }
                }
            });
        }
        out
    };
    let Some((start, _)) = params.get_key_value(name) else {
        return false;
    };
    let mut stack: Vec<(&str, Vec<&str>)> = vec![(start.as_str(), refs(start))];
    colour.insert(start.as_str(), 1);
    while let Some(top) = stack.last_mut() {
        let n = top.0;
        match top.1.pop() {
            Some(m) => match colour.get(m).copied() {
                Some(1) => return true,
                Some(_) => {}
                None => {
                    colour.insert(m, 1);
                    let r = refs(m);
                    stack.push((m, r));
                }
            },
            None => {
                colour.insert(n, 2);
                stack.pop();
            }
        }
    }
    false
}

/// The `${stages.X...}` stages that parameter `name` refers to, directly or through other
/// parameters (each parameter visited once, so cycles end).
fn param_stage_refs(params: &BTreeMap<String, Node>, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut todo = vec![name.to_owned()];
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        let Some(v) = params.get(&n) else { continue };
        walk_strings(v, &mut |text, _| {
            for (_, r) in references(text) {
                match r {
                    Ok(Reference::Param(q)) => todo.push(q),
                    Ok(Reference::Scalar(st, _)) => out.push(st),
                    _ => {}
                }
            }
        });
    }
    out
}

/// Checks `needs` and the references in every stage's `with:`, and adds the stages referenced
/// with `${stages...}` to `needs`. Returns the declared stages with a reference problem.
fn check_references(
    c: &mut Collector,
    p: &mut Pipeline,
    broken: &HashSet<String>,
) -> HashSet<String> {
    let mut troubled = HashSet::new();
    let names: HashSet<String> = p.stages.iter().map(|s| s.name.clone()).collect();
    let bases: HashSet<String> = p.stages.iter().map(|s| s.base.clone()).collect();
    let mut sorted_names: Vec<&str> = names.iter().map(String::as_str).collect();
    sorted_names.sort_unstable();
    for s in &mut p.stages {
        // A stage still carrying `sweep`/`foreach` could not be expanded (reported already):
        // its `${sweep...}` references and its `foreach` target are not reported again.
        let unexpanded = s.sweep.is_some() || s.foreach.is_some();
        let foreach_target = s.foreach.as_ref().map(|(t, _)| t.clone());
        for n in &s.needs {
            if !names.contains(n) && foreach_target.as_ref() != Some(n) {
                c.push(
                    s.loc,
                    format!("stages.{}.needs", s.base),
                    format!(
                        "needs '{}', which is not a stage{}",
                        quote(n),
                        suggest(n, sorted_names.iter().copied())
                    ),
                );
            }
            if *n == s.name || *n == s.base {
                c.push(
                    s.loc,
                    format!("stages.{}.needs", s.base),
                    "a stage cannot need itself",
                );
            }
        }
        let mut inferred = Vec::new();
        let mut trouble = false;
        let axes: Vec<&str> = s.point.iter().map(|(a, _)| a.as_str()).collect();
        let scalar_ref = |st: String,
                          loc: Loc,
                          key: &str,
                          c: &mut Collector,
                          inferred: &mut Vec<String>| {
            if names.contains(&st) {
                inferred.push(st);
            } else if bases.contains(&st) {
                c.push(loc, key, format!("stage '{st}' has several instances (sweep, foreach or replicates): gather them with a `collect` stage"));
            } else {
                c.push(
                    loc,
                    key,
                    format!(
                        "`${{stages.{}...}}` names no stage{}",
                        quote(&st),
                        suggest(&st, sorted_names.iter().copied())
                    ),
                );
            }
        };
        for (k, v) in &s.with {
            let key = format!("stages.{}.with.{}", s.base, k.name);
            walk_strings(v, &mut |text, loc| {
                for (_, r) in references(text) {
                    match r {
                        Err(m) => {
                            trouble = true;
                            c.push(loc, &key, m);
                        }
                        Ok(Reference::Param(name)) if !p.params.contains_key(&name) => {
                            trouble = true;
                            c.push(
                                loc,
                                &key,
                                format!(
                                    "`${{params.{}}}` is not defined under `params:`{}",
                                    quote(&name),
                                    suggest(&name, p.params.keys().map(String::as_str))
                                ),
                            );
                        }
                        Ok(Reference::Param(name)) => {
                            trouble |= broken.contains(&name);
                            if !broken.contains(&name) {
                                for st in param_stage_refs(&p.params, &name) {
                                    // Stages named nowhere were reported at the parameter.
                                    if names.contains(&st) || bases.contains(&st) {
                                        scalar_ref(st, loc, &key, c, &mut inferred);
                                    }
                                }
                            }
                        }
                        Ok(Reference::Scalar(st, _)) => scalar_ref(st, loc, &key, c, &mut inferred),
                        Ok(Reference::Sweep(_)) if unexpanded => {}
                        Ok(Reference::Sweep(a)) => {
                            trouble = true;
                            c.push(
                                loc,
                                &key,
                                format!(
                                    "`${{sweep.{}}}` is only defined in a stage whose `sweep:` (or `foreach:` target) has an axis '{}'{}",
                                    quote(&a),
                                    quote(&a),
                                    suggest(&a, axes.iter().copied())
                                ),
                            );
                        }
                    }
                }
            });
        }
        for st in inferred {
            if !s.needs.contains(&st) {
                s.needs.push(st);
            }
        }
        if trouble {
            troubled.insert(s.base.clone());
        }
    }
    let mut seen = HashSet::new();
    for s in &p.stages {
        if !seen.insert(&s.name) {
            c.push(s.loc, format!("stages.{}", s.name), "duplicate stage name");
        }
    }
    troubled
}

/// Instantiates every stage instance once to check its parameters. A problem shared by several
/// instances is reported once, keyed by the declared stage (`stages.g.with.rows`); a problem with a
/// sweep value is reported at its axis (`stages.g.sweep.grid.rows`), so a bad `range` gives one
/// error, not one per point.
fn check_params(
    c: &mut Collector,
    p: &Pipeline,
    registry: &Registry,
    axis_at: &HashMap<Loc, String>,
    troubled: &HashSet<String>,
) {
    let mut instances: HashMap<&str, usize> = HashMap::new();
    for s in &p.stages {
        *instances.entry(s.base.as_str()).or_default() += 1;
    }
    // Per (arg, loc, key): the error, its first instance and declared stage, the number of
    // instances with it, and whether they all have the same message.
    let mut groups: Vec<(SpecError, String, String, usize, bool)> = Vec::new();
    let mut at: HashMap<(Option<String>, Loc, String), usize> = HashMap::new();
    for s in &p.stages {
        let Some(stage) = registry.get(&s.kind) else {
            continue;
        };
        let Err(errs) = instantiate(p, s, stage, None) else {
            continue;
        };
        let prefix = format!("stages.{}.", s.name);
        let with_prefix = format!("stages.{}.with.", s.name);
        for mut e in errs.0 {
            // A parameter created by a sweep axis that no `${sweep...}` uses (see `sweep`).
            let axis = e
                .key
                .strip_prefix(&with_prefix)
                .filter(|_| e.loc == s.loc && e.message.starts_with("unknown parameter"))
                .and_then(|k| s.point.iter().find(|(a, _)| a.split('.').next() == Some(k)))
                .map(|(a, _)| a.clone());
            if let Some(a) = axis {
                // With a broken reference in `with:` the axis was meant for it: that is the
                // problem reported.
                if troubled.contains(&s.base) {
                    continue;
                }
                e.message = format!(
                    "{} (set by the sweep axis '{a}': use `${{sweep.{a}}}` in `with:` to put its value elsewhere)",
                    e.message
                );
            }
            if let Some(rest) = e.key.strip_prefix(&prefix) {
                e.key = format!("stages.{}.{rest}", s.base);
            }
            if let Some(axis) = axis_at.get(&e.loc) {
                e.message = format!("{} (for {})", e.message, e.key);
                e.key = axis.clone();
            }
            let id = (e.arg.clone(), e.loc, e.key.clone());
            match at.get(&id) {
                Some(&i) => {
                    let g = &mut groups[i];
                    g.3 += 1;
                    g.4 &= g.0.message == e.message;
                }
                None => {
                    at.insert(id, groups.len());
                    groups.push((e, s.name.clone(), s.base.clone(), 1, true));
                }
            }
        }
    }
    for (mut e, inst, base, count, same) in groups {
        let total = instances.get(base.as_str()).copied().unwrap_or(1);
        if total > 1 && !(same && count == total) && !axis_at.contains_key(&e.loc) {
            e.message = format!("{} (in {inst}; {count} of {total} instances)", e.message);
        }
        c.errors.push(e);
    }
}

/// Looks up an upstream scalar `(stage, name)` while instantiating parameters.
pub type ScalarLookup<'a> = &'a dyn Fn(&str, &str) -> Option<f64>;

/// Resolves references, checks types and fills defaults for one stage.
///
/// With `scalars = None` (validation before running) references to upstream scalars are only
/// type-checked and `Ok(None)` is returned when the stage's own `check` must wait for them.
pub fn instantiate(
    p: &Pipeline,
    decl: &StageDecl,
    stage: &dyn Stage,
    scalars: Option<ScalarLookup>,
) -> Result<Option<Params>, SpecErrors> {
    let mut c = Collector::new(p.file.clone());
    c.args = p.overrides.clone();
    let specs = stage.params();
    let mut values = BTreeMap::new();
    let mut pending = false;
    let mut failed = false;
    for (k, v) in &decl.with {
        let key = format!("stages.{}.with.{}", decl.name, k.name);
        let Some(spec) = specs.iter().find(|sp| sp.name == k.name) else {
            c.push(
                k.loc,
                &key,
                format!(
                    "unknown parameter for kind '{}'{}",
                    decl.kind,
                    suggest(&k.name, specs.iter().map(|sp| sp.name))
                ),
            );
            continue;
        };
        match resolve(p, v, spec.kind, scalars) {
            Ok(Some(j)) => {
                values.insert(spec.name.to_owned(), j);
            }
            Ok(None) => pending = true,
            Err(SubstError::New(m)) => c.push(origin(p, v), &key, m),
            // Reference problems are reported where they are written (by `check_references`
            // and `check_param_values`); at run time, when that cannot have happened, here.
            Err(SubstError::Known(m)) => {
                failed = true;
                if scalars.is_some() {
                    c.push(v.loc, &key, m);
                }
            }
        }
    }
    for spec in specs {
        if values.contains_key(spec.name) || decl.with.iter().any(|(k, _)| k.name == spec.name) {
            continue;
        }
        match spec.default {
            Some(d) => {
                values.insert(spec.name.to_owned(), default_value(spec, d));
            }
            None => c.push(
                decl.loc,
                format!("stages.{}.with", decl.name),
                format!(
                    "missing required parameter '{}' ({}: {})",
                    spec.name,
                    spec.kind.describe(),
                    spec.doc
                ),
            ),
        }
    }
    if !c.errors.is_empty() || pending || failed {
        return c.finish(None);
    }
    let params = Params::new(values, p.base_dir.clone());
    if let Err(e) = stage.check(&params) {
        push_param_error(&mut c, p, decl, e);
    }
    c.finish(Some(params))
}

/// Reports a stage's [`ParamError`] where the parameter is written (its `with:` entry or `--set`
/// argument), or at the stage when it takes its default.
fn push_param_error(c: &mut Collector, p: &Pipeline, decl: &StageDecl, e: ParamError) {
    let loc = decl
        .with
        .iter()
        .find(|(k, _)| k.name == e.param)
        .map_or(decl.loc, |(_, v)| origin(p, v));
    c.push(
        loc,
        format!("stages.{}.with.{}", decl.name, e.param),
        e.message,
    );
}

/// Checks that this machine can compute every stage of `p` ([`Stage::check_machine`]: a
/// device, its library, a GPU). A local run calls it before anything runs, and a cluster job
/// before it computes; validation alone does not, so that a pipeline for a GPU can be planned,
/// shown and submitted from a machine without one. Errors name file, line and field.
pub fn check_machine(p: &Pipeline, registry: &Registry) -> Result<(), SpecErrors> {
    let mut c = Collector::new(p.file.clone());
    c.args = p.overrides.clone();
    let mut seen = HashSet::new();
    for decl in &p.stages {
        let Some(stage) = registry.get(&decl.kind) else {
            continue;
        };
        // Parameters that wait for upstream scalars are checked when the stage runs.
        let Ok(Some(params)) = instantiate(p, decl, stage, None) else {
            continue;
        };
        if let Err(e) = stage.check_machine(&params)
            && seen.insert((decl.base.clone(), e.param.clone()))
        {
            push_param_error(&mut c, p, decl, e);
        }
    }
    c.finish(())
}

/// Where a problem with the value `n` is reported: the `--set` value it comes from when it is
/// exactly a reference to a parameter given on the command line, else `n` itself.
fn origin(p: &Pipeline, n: &Node) -> Loc {
    let mut cur = n;
    for _ in 0..MAX_REF_DEPTH {
        let Value::Str(s) = &cur.value else { break };
        let refs = references(s);
        let next = match refs.as_slice() {
            [(r, Ok(Reference::Param(name)))] if *r == (0..s.len()) => p.params.get(name),
            _ => None,
        };
        match next {
            Some(next) => cur = next,
            None => break,
        }
    }
    if cur.loc.arg_index().is_some() {
        cur.loc
    } else {
        n.loc
    }
}

fn default_value(spec: &ParamSpec, text: &str) -> J {
    spec.default_json()
        .unwrap_or_else(|| J::String(text.to_owned()))
}

/// Why a value could not be resolved.
enum SubstError {
    /// A reference problem that validation reports where the reference is written.
    Known(String),
    /// A problem with the value itself (type, file, size), reported at the value.
    New(String),
}

/// Resolves references in `n` and converts it to JSON of the required kind.
/// `Ok(None)`: depends on an upstream scalar that is not known yet.
fn resolve(
    p: &Pipeline,
    n: &Node,
    kind: ParamKind,
    scalars: Option<ScalarLookup>,
) -> Result<Option<J>, SubstError> {
    let mut sub = Subst {
        p,
        scalars,
        size: 0,
        stack: Vec::new(),
    };
    let v = match sub.node(n)? {
        None => {
            return match kind {
                ParamKind::Float | ParamKind::Any => Ok(None),
                other => Err(SubstError::New(format!(
                    "an upstream scalar is a number, but this parameter is {}",
                    other.with_article()
                ))),
            };
        }
        Some(v) => v,
    };
    let v = coerce(&v, kind).map_err(SubstError::New)?;
    if let (ParamKind::Path, J::String(rel)) = (kind, &v) {
        let path = p.base_dir.join(rel);
        if path.is_dir() {
            return Err(SubstError::New(format!(
                "{} is a directory, not a file",
                path.display()
            )));
        }
        if !path.is_file() {
            return Err(SubstError::New(format!(
                "file not found: {} (paths are relative to the pipeline file)",
                path.display()
            )));
        }
    }
    Ok(Some(v))
}

/// The deepest chain of `${params...}` references inside each other.
const MAX_REF_DEPTH: usize = 16;
/// The most bytes and values that reference substitution may produce for one parameter.
const MAX_SUBST_SIZE: usize = 1 << 20;

/// Reference substitution for one parameter value, bounded in depth and size.
struct Subst<'a> {
    p: &'a Pipeline,
    scalars: Option<ScalarLookup<'a>>,
    /// Bytes and values produced so far.
    size: usize,
    /// The parameters being expanded, outermost first.
    stack: Vec<String>,
}

impl Subst<'_> {
    /// Counts `n` more bytes or values produced.
    fn grow(&mut self, n: usize) -> Result<(), SubstError> {
        self.size = self.size.saturating_add(n);
        if self.size > MAX_SUBST_SIZE {
            return Err(SubstError::New(format!(
                "the references expand to more than {MAX_SUBST_SIZE} bytes"
            )));
        }
        Ok(())
    }

    /// The value of `${params.NAME}`.
    fn param(&mut self, name: &str) -> Result<Option<J>, SubstError> {
        if let Some(i) = self.stack.iter().position(|s| s == name) {
            let mut cycle: Vec<String> = self.stack[i..]
                .iter()
                .map(|s| format!("params.{s}"))
                .collect();
            cycle.push(format!("params.{name}"));
            return Err(SubstError::Known(format!(
                "reference cycle {}",
                cycle.join(" → ")
            )));
        }
        if self.stack.len() >= MAX_REF_DEPTH {
            // A long cycle also ends here; it is reported at the parameters.
            if reaches_cycle(&self.p.params, name) {
                return Err(SubstError::Known(format!(
                    "`${{params.{}}}` leads into a reference cycle",
                    quote(name)
                )));
            }
            return Err(SubstError::New(format!(
                "references nested more than {MAX_REF_DEPTH} deep (`${{params.{}}}`)",
                quote(name)
            )));
        }
        let p = self.p;
        let node = p.params.get(name).ok_or_else(|| {
            SubstError::Known(format!("`${{params.{}}}` is not defined", quote(name)))
        })?;
        self.stack.push(name.to_owned());
        let v = self.node(node);
        self.stack.pop();
        v
    }

    /// Replaces references; a string that is exactly one reference takes the referenced value.
    fn node(&mut self, n: &Node) -> Result<Option<J>, SubstError> {
        match &n.value {
            Value::Str(s) => {
                self.grow(s.len())?;
                let refs = references(s);
                if refs.is_empty() {
                    return Ok(Some(J::String(s.clone())));
                }
                let whole = refs.len() == 1 && refs[0].0 == (0..s.len());
                let mut out = String::new();
                let mut last = 0;
                for (range, r) in refs {
                    let value = match r.map_err(SubstError::Known)? {
                        Reference::Param(name) => match self.param(&name)? {
                            Some(v) => v,
                            None => return Ok(None),
                        },
                        Reference::Scalar(st, name) => match self.scalars {
                            None => return Ok(None),
                            Some(f) => {
                                let x = f(&st, &name).ok_or_else(|| {
                                    SubstError::New(format!(
                                        "stage '{st}' produced no scalar '{name}'"
                                    ))
                                })?;
                                serde_json::Number::from_f64(x)
                                    .map(J::Number)
                                    .ok_or_else(|| {
                                        SubstError::New(format!(
                                            "`${{stages.{st}.{name}}}` is not finite ({x})"
                                        ))
                                    })?
                            }
                        },
                        Reference::Sweep(a) => {
                            return Err(SubstError::Known(format!(
                                "`${{sweep.{}}}` is only defined in a stage whose `sweep:` has an axis '{}'",
                                quote(&a),
                                quote(&a)
                            )));
                        }
                    };
                    if whole {
                        return Ok(Some(value));
                    }
                    out.push_str(&s[last..range.start]);
                    let text = match &value {
                        J::String(t) => t.clone(),
                        other => other.to_string(),
                    };
                    self.grow(text.len())?;
                    out.push_str(&text);
                    last = range.end;
                }
                out.push_str(&s[last..]);
                Ok(Some(J::String(out)))
            }
            Value::Seq(items) => {
                self.grow(1)?;
                let mut out = Vec::new();
                for i in items {
                    match self.node(i)? {
                        Some(v) => out.push(v),
                        None => return Ok(None),
                    }
                }
                Ok(Some(J::Array(out)))
            }
            Value::Map(m) => {
                self.grow(1)?;
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    self.grow(k.name.len())?;
                    match self.node(v)? {
                        Some(x) => {
                            out.insert(k.name.clone(), x);
                        }
                        None => return Ok(None),
                    }
                }
                Ok(Some(J::Object(out)))
            }
            _ => {
                self.grow(1)?;
                Ok(Some(n.to_json()))
            }
        }
    }
}

fn json_type(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(n) if n.is_f64() => "a number",
        J::Number(_) => "an integer",
        J::String(_) => "a string",
        J::Array(_) => "a list",
        J::Object(_) => "a mapping",
    }
}

/// `x` as an integer when it is a whole number (up to floating-point rounding, as the points of
/// a `range` or `logspace` are) that a double represents exactly.
fn whole_number(x: f64) -> Option<i64> {
    let r = x.round();
    let exact = r.abs() <= 9_007_199_254_740_992.0; // 2^53
    (x.is_finite() && exact && (x - r).abs() <= 1e-9 * r.abs().max(1.0)).then_some(r as i64)
}

fn coerce(v: &J, kind: ParamKind) -> Result<J, String> {
    let wrong = || format!("expected {}, found {}", kind.with_article(), json_type(v));
    match kind {
        ParamKind::Float => match v {
            J::Number(n) => n
                .as_f64()
                .and_then(serde_json::Number::from_f64)
                .map(J::Number)
                .ok_or_else(wrong),
            J::Null => Ok(J::Null),
            _ => Err(wrong()),
        },
        ParamKind::Int => match v {
            J::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            J::Number(n) => match n.as_f64() {
                Some(x) if x.abs() > 9_007_199_254_740_992.0 => Err(format!(
                    "expected an integer, found {x:e}, which is too large for one"
                )),
                Some(x) => whole_number(x).map(J::from).ok_or_else(|| {
                    format!("expected an integer, found {x}, which is not a whole number")
                }),
                None => Err(wrong()),
            },
            _ => Err(wrong()),
        },
        ParamKind::Bool => v.is_boolean().then(|| v.clone()).ok_or_else(wrong),
        ParamKind::Str | ParamKind::Path => match v {
            J::String(_) | J::Null => Ok(v.clone()),
            _ => Err(wrong()),
        },
        ParamKind::StrList => match v {
            J::Array(a) if a.iter().all(J::is_string) => Ok(v.clone()),
            _ => Err(wrong()),
        },
        ParamKind::FloatList => match v {
            J::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_f64()
                        .and_then(serde_json::Number::from_f64)
                        .map(J::Number)
                        .ok_or_else(wrong)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(J::Array),
            _ => Err(wrong()),
        },
        ParamKind::Any => Ok(v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, overrides: &[&str], max_instances: u64) -> Result<Pipeline, String> {
        let registry = Registry::builtin();
        let overrides: Vec<Override> = overrides
            .iter()
            .map(|o| o.parse().expect("override"))
            .collect();
        let opts = LoadOptions { max_instances };
        parse_with(text, Path::new("p.yaml"), &registry, &overrides, &opts)
            .map_err(|e| e.to_string())
    }

    /// A kind whose `site` parameter must name this machine: `check_machine` refuses others.
    struct OnSite;
    impl Stage for OnSite {
        fn kind(&self) -> &'static str {
            "on_site"
        }
        fn version(&self) -> u32 {
            1
        }
        fn about(&self) -> &'static str {
            "test kind"
        }
        fn params(&self) -> &'static [ParamSpec] {
            const P: &[ParamSpec] = &[ParamSpec::opt("site", ParamKind::Str, "here", "where")];
            P
        }
        fn sources(&self) -> &'static [&'static str] {
            &[]
        }
        fn check_machine(&self, p: &Params) -> std::result::Result<(), ParamError> {
            match p.str("site") {
                Ok("here") => Ok(()),
                _ => Err(ParamError::new("site", "not on this machine")),
            }
        }
        fn run(
            &self,
            _: &crate::stage::StageCtx,
            _: &Params,
            _: &crate::stage::Inputs,
        ) -> anyhow::Result<crate::stage::Outputs> {
            Ok(crate::stage::Outputs::new())
        }
    }

    #[test]
    fn machine_checks_are_separate_from_validation_and_name_the_field() {
        let registry = Registry::builtin().with(Box::new(OnSite));
        let text = "stages:\n  a:\n    kind: on_site\n    with: {site: cluster}\n  b:\n    kind: on_site\n  c:\n    kind: on_site\n    sweep: {grid: {site: [x, y]}}\n";
        // Validation (plan, show, a cluster submission) accepts what this machine cannot run…
        let p = parse(text, Path::new("m.yaml"), &registry, &[]).expect("valid");
        // …and the machine check before a local run refuses it where it is written, once per
        // declared stage.
        let e = check_machine(&p, &registry)
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("m.yaml:4:") && e.contains("stages.a.with.site"),
            "{e}"
        );
        assert!(e.contains("not on this machine"), "{e}");
        assert!(!e.contains("stages.b."), "b runs here: {e}");
        assert_eq!(e.matches("stages.c[").count(), 1, "{e}");
        let here = parse(
            "stages:\n  b:\n    kind: on_site\n",
            Path::new("m.yaml"),
            &registry,
            &[],
        )
        .expect("valid");
        assert!(check_machine(&here, &registry).is_ok());
    }

    #[test]
    fn yaml_1_1_booleans_are_strings_and_keys_keep_their_text() {
        let n =
            yaml::parse("{n: no, yes: on, 1.0: y, 0x10: off, t: true, f: False}").expect("yaml");
        let m = n.as_map().expect("map");
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(keys, ["n", "yes", "1.0", "0x10", "t", "f"]);
        let values: Vec<&Value> = m.iter().map(|(_, v)| &v.value).collect();
        assert_eq!(
            values,
            [
                &Value::Str("no".into()),
                &Value::Str("on".into()),
                &Value::Str("y".into()),
                &Value::Str("off".into()),
                &Value::Bool(true),
                &Value::Bool(false)
            ]
        );
    }

    #[test]
    fn the_parser_refuses_deep_nesting_alias_bombs_and_huge_text() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let e = yaml::parse(&deep).expect_err("too deep");
        assert_eq!(e.message, "lists and mappings nested deeper than 64 levels");
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = yaml::parse(&bomb).expect_err("alias bomb");
        assert_eq!(
            e.message,
            "aliases (`*name`) expand to more than 100000 events"
        );
        let huge = "#".repeat(yaml::MAX_TEXT_BYTES + 1);
        assert!(yaml::parse(&huge).is_err());
    }

    #[test]
    fn instances_are_counted_against_the_limit_before_expansion() {
        let text = "stages:\n  a:\n    kind: generate\n    replicates: 2\n    sweep: {grid: {rows: [1, 2, 3]}}\n";
        let e = check(text, &[], 5).expect_err("over the limit");
        assert!(
            e.starts_with("p.yaml:5:12: stages.a.sweep: 6 instances (limit 5 per pipeline"),
            "{e}"
        );
        let p = check(text, &[], 6).expect("at the limit");
        assert_eq!(p.stages.len(), 6);
        assert_eq!(p.stages[5].name, "a[rows=3,rep=1]");
        assert_eq!(parse_max_instances("1_000"), Ok(1000));
        assert!(parse_max_instances("0").is_err());
        assert!(parse_max_instances("-1").is_err());
    }

    #[test]
    fn reference_cycles_and_bombs_end_in_one_error() {
        let cycle = "params: {a: \"${params.b}\", b: \"${params.c}\", c: \"${params.a}\"}\nstages:\n  g:\n    kind: generate\n    with: {offset: \"${params.b}\"}\n";
        assert_eq!(
            check(cycle, &[], 10).expect_err("cycle"),
            "p.yaml:1:13: params.a: reference cycle params.a → params.b → params.c → params.a"
        );
        let mut bomb = String::from("params:\n  e0: \"\"\n");
        for i in 1..14 {
            bomb.push_str(&format!(
                "  e{i}: \"{}\"\n",
                format!("${{params.e{}}}", i - 1).repeat(10)
            ));
        }
        bomb.push_str(
            "stages:\n  g:\n    kind: paper_inputs\n    with: {path: \"${params.e13}\"}\n",
        );
        let e = check(&bomb, &[], 10).expect_err("bomb");
        assert!(
            e.ends_with("stages.g.with.path: the references expand to more than 1048576 bytes"),
            "{e}"
        );
    }

    #[test]
    fn set_values_are_reported_on_the_command_line() {
        let text = "params: {n: 5}\nstages:\n  a:\n    kind: generate\n    with: {rows: \"${params.n}\"}\n";
        assert_eq!(
            check(text, &["params.n=x", "a.scale=[1]"], 10).expect_err("bad values"),
            "--set params.n=x: stages.a.with.rows: expected an integer, found a string\n\
             --set a.scale=[1]: stages.a.with.scale: expected a number, found a list\n\
             2 problems on the command line"
        );
        let p = check(text, &["params.n=7"], 10).expect("good value");
        assert_eq!(p.params["n"].value, Value::Int(7));
    }

    #[test]
    fn hostile_overrides_of_a_swept_pipeline_end_in_errors() {
        // The seeds of the `set_and_sweep` fuzz target, on a smaller pipeline of the same shape.
        let text = "params: {n: 3, s: \"${params.t}\", t: 1.5}\nstages:\n  a:\n    kind: generate\n    with: {rows: \"${sweep.k}\", scale: \"${params.s}\"}\n    sweep: {grid: {k: [1, 2]}}\n  b:\n    kind: generate\n    foreach: a\n    replicates: 2\n    with: {rows: \"${params.n}\"}\n";
        assert_eq!(check(text, &[], 100).map(|p| p.stages.len()), Ok(6));
        for o in [
            "a.sweep.k={range: {start: 0, stop: 1, num: 1e20}}",
            "a.sweep.k=[1, 2.5, x]",
            "a.sweep.k=[[1], {a: 1}]",
            "params.s=${params.s}",
            "params.n=${sweep.k}",
            "params.t=${params.s}",
            "a.rows=${stages.b.mean}",
            "a.sweep.k={logspace: {start: -1, stop: 1, num: 3}}",
        ] {
            let e = check(text, &[o], 100).expect_err(o);
            assert!(e.starts_with(&format!("--set {o}: ")), "{o}: {e}");
        }
    }

    #[test]
    fn whole_numbers_pass_as_integers() {
        assert_eq!(whole_number(20.0), Some(20));
        assert_eq!(whole_number(99.99999999999997), Some(100));
        assert_eq!(whole_number(10.5), None);
        assert_eq!(whole_number(f64::NAN), None);
        assert_eq!(whole_number(1e20), None);
        assert_eq!(coerce(&J::from(30.0), ParamKind::Int), Ok(J::from(30)));
        assert_eq!(
            coerce(&J::from(2.5), ParamKind::Int),
            Err("expected an integer, found 2.5, which is not a whole number".to_owned())
        );
    }
}
