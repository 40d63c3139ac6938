//! Pipeline files: the YAML format, its validation, `${...}` references and `--set` overrides.
//!
//! A pipeline file has a `name`, optional `description`, `seed` and `params`, and a `stages`
//! mapping of stage name → `{kind, needs, with, seed, description}`. [`load`] parses it,
//! checks **every** problem it can find before anything runs (unknown keys and kinds, missing
//! `needs`, dangling references, wrong types, cycles) and reports them all with
//! `file:line:col`. Turning a declared stage into concrete parameter values is [`instantiate`].
//! Graph algorithms live in `graph`, hashing in `key`.

pub mod errors;
pub mod sweep;
pub mod yaml;

use crate::stage::{ParamKind, ParamSpec, Params, Stage};
use crate::stages::Registry;
use errors::{Collector, suggest};
pub use errors::{SpecError, SpecErrors};
use serde_json::Value as J;
use std::collections::BTreeMap;
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
    /// Stages in file order.
    pub stages: Vec<StageDecl>,
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
}

impl Pipeline {
    /// The declaration of stage `name`.
    pub fn stage(&self, name: &str) -> Option<&StageDecl> {
        self.stages.iter().find(|s| s.name == name)
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

/// A `--set KEY=VALUE` override: `params.NAME=V` or `STAGE.PARAM=V`.
#[derive(Debug, Clone)]
pub struct Override {
    /// The dotted key.
    pub key: String,
    /// The value, parsed as YAML.
    pub value: Node,
}

impl std::str::FromStr for Override {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE (e.g. params.q=1.5), got '{s}'"))?;
        if !k.contains('.') {
            return Err(format!("'{k}': use params.NAME=VALUE or STAGE.PARAM=VALUE"));
        }
        let value = yaml::parse(v).map_err(|e| format!("value of '{k}': {}", e.message))?;
        Ok(Override {
            key: k.to_owned(),
            value,
        })
    }
}

/// Reads, parses and validates a pipeline file.
pub fn load(
    path: &Path,
    registry: &Registry,
    overrides: &[Override],
) -> Result<Pipeline, SpecErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            loc: Loc::default(),
            key: String::new(),
            message: format!("cannot read the pipeline file: {e}"),
        }])
    })?;
    parse(&text, path, registry, overrides)
}

/// Parses and validates pipeline text as if read from `path`.
pub fn parse(
    text: &str,
    path: &Path,
    registry: &Registry,
    overrides: &[Override],
) -> Result<Pipeline, SpecErrors> {
    let mut c = Collector::new(path.to_path_buf());
    let root = match yaml::parse(text) {
        Ok(n) => n,
        Err(e) => {
            let msg = e
                .message
                .lines()
                .next()
                .unwrap_or("invalid YAML")
                .to_owned();
            c.push(e.loc, "", format!("invalid YAML: {msg}"));
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
        stages: Vec::new(),
    };
    let mut stages_node = None;
    for (k, v) in top {
        match k.name.as_str() {
            "name" => {
                if let Some(s) = expect_str(&mut c, v, "name") {
                    p.name = s;
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
    apply_overrides(&mut c, &mut p, overrides);
    if c.errors.is_empty() {
        sweep::expand(&mut c, &mut p);
    }
    check_references(&mut c, &mut p);
    check_params(&mut c, &p, registry);
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
        stages: Vec::new(),
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

fn apply_overrides(c: &mut Collector, p: &mut Pipeline, overrides: &[Override]) {
    for o in overrides {
        let Some((head, rest)) = o.key.split_once('.') else {
            continue;
        };
        if head == "params" {
            if p.params.contains_key(rest) {
                p.params.insert(rest.to_owned(), o.value.clone());
            } else {
                let names: Vec<&str> = p.params.keys().map(String::as_str).collect();
                c.push(
                    Loc::default(),
                    format!("--set {}", o.key),
                    format!(
                        "the pipeline has no parameter '{rest}'{}",
                        suggest(rest, names)
                    ),
                );
            }
        } else if let Some(s) = p.stages.iter_mut().find(|s| s.name == head)
            && let Some(axis) = rest.strip_prefix("sweep.")
        {
            if !set_sweep_axis(s, axis, &o.value) {
                c.push(
                    Loc::default(),
                    format!("--set {}", o.key),
                    format!("stage '{head}' has no grid/zip sweep axis '{axis}'"),
                );
            }
        } else if let Some(s) = p.stages.iter_mut().find(|s| s.name == head) {
            let key = Key {
                name: rest.to_owned(),
                loc: o.value.loc,
            };
            match s.with.iter_mut().find(|(k, _)| k.name == rest) {
                Some(entry) => entry.1 = o.value.clone(),
                None => s.with.push((key, o.value.clone())),
            }
        } else {
            let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
            c.push(
                Loc::default(),
                format!("--set {}", o.key),
                format!(
                    "no stage or `params` called '{head}'{}",
                    suggest(head, names)
                ),
            );
        }
    }
}

/// A `${...}` reference inside a string.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// `${params.NAME}`.
    Param(String),
    /// `${stages.STAGE.SCALAR}`.
    Scalar(String, String),
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
            ["sweep", name, ..] => Err(format!(
                "`${{sweep.{name}}}` is only defined in a stage whose `sweep:` has an axis '{name}'"
            )),
            _ => Err(format!(
                "bad reference `${{{inner}}}`: use ${{params.NAME}} or ${{stages.STAGE.SCALAR}}"
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

fn check_references(c: &mut Collector, p: &mut Pipeline) {
    let names: Vec<String> = p.stages.iter().map(|s| s.name.clone()).collect();
    let bases: Vec<String> = p.stages.iter().map(|s| s.base.clone()).collect();
    for s in &mut p.stages {
        for n in &s.needs {
            if !names.contains(n) {
                c.push(
                    s.loc,
                    format!("stages.{}.needs", s.name),
                    format!(
                        "needs '{n}', which is not a stage{}",
                        suggest(n, names.iter().map(String::as_str))
                    ),
                );
            }
            if *n == s.name {
                c.push(
                    s.loc,
                    format!("stages.{}.needs", s.name),
                    "a stage cannot need itself",
                );
            }
        }
        let mut inferred = Vec::new();
        for (k, v) in &s.with {
            let key = format!("stages.{}.with.{}", s.name, k.name);
            walk_strings(v, &mut |text, loc| {
                for (_, r) in references(text) {
                    match r {
                        Err(m) => c.push(loc, &key, m),
                        Ok(Reference::Param(name)) if !p.params.contains_key(&name) => {
                            c.push(
                                loc,
                                &key,
                                format!(
                                    "`${{params.{name}}}` is not defined under `params:`{}",
                                    suggest(&name, p.params.keys().map(String::as_str))
                                ),
                            );
                        }
                        Ok(Reference::Scalar(st, _))
                            if !names.contains(&st) && bases.contains(&st) =>
                        {
                            c.push(loc, &key, format!("stage '{st}' has several instances (sweep, foreach or replicates): gather them with a `collect` stage"));
                        }
                        Ok(Reference::Scalar(st, _)) if !names.contains(&st) => {
                            c.push(
                                loc,
                                &key,
                                format!(
                                    "`${{stages.{st}...}}` names no stage{}",
                                    suggest(&st, names.iter().map(String::as_str))
                                ),
                            );
                        }
                        Ok(Reference::Scalar(st, _)) => inferred.push(st),
                        Ok(Reference::Param(_)) => {}
                    }
                }
            });
        }
        for st in inferred {
            if !s.needs.contains(&st) {
                s.needs.push(st);
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in &p.stages {
        if !seen.insert(&s.name) {
            c.push(s.loc, format!("stages.{}", s.name), "duplicate stage name");
        }
    }
}

fn check_params(c: &mut Collector, p: &Pipeline, registry: &Registry) {
    for s in &p.stages {
        let Some(stage) = registry.get(&s.kind) else {
            continue;
        };
        if let Err(errs) = instantiate(p, s, stage, None) {
            c.errors.extend(errs.0);
        }
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
    let specs = stage.params();
    let mut values = BTreeMap::new();
    let mut pending = false;
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
            Err(m) => c.push(v.loc, &key, m),
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
    if !c.errors.is_empty() || pending {
        return c.finish(None);
    }
    let params = Params::new(values, p.base_dir.clone());
    if let Err(e) = stage.check(&params) {
        let loc = decl
            .with
            .iter()
            .find(|(k, _)| k.name == e.param)
            .map_or(decl.loc, |(_, v)| v.loc);
        c.push(
            loc,
            format!("stages.{}.with.{}", decl.name, e.param),
            e.message,
        );
    }
    c.finish(Some(params))
}

fn default_value(spec: &ParamSpec, text: &str) -> J {
    let v: J = serde_json::from_str(text).unwrap_or(J::String(text.to_owned()));
    match (spec.kind, &v) {
        (ParamKind::Float, J::Number(n)) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(v.clone(), J::Number),
        _ => v,
    }
}

/// Resolves references in `n` and converts it to JSON of the required kind.
/// `Ok(None)`: depends on an upstream scalar that is not known yet.
fn resolve(
    p: &Pipeline,
    n: &Node,
    kind: ParamKind,
    scalars: Option<ScalarLookup>,
) -> Result<Option<J>, String> {
    let v = match substitute(p, n, scalars)? {
        None => {
            return match kind {
                ParamKind::Float | ParamKind::Any => Ok(None),
                other => Err(format!(
                    "an upstream scalar is a number, but this parameter is {}",
                    other.with_article()
                )),
            };
        }
        Some(v) => v,
    };
    let v = coerce(&v, kind)?;
    if let (ParamKind::Path, J::String(rel)) = (kind, &v) {
        let path = p.base_dir.join(rel);
        if !path.is_file() {
            return Err(format!(
                "file not found: {} (paths are relative to the pipeline file)",
                path.display()
            ));
        }
    }
    Ok(Some(v))
}

/// Replaces references; a string that is exactly one reference takes the referenced value.
fn substitute(p: &Pipeline, n: &Node, scalars: Option<ScalarLookup>) -> Result<Option<J>, String> {
    match &n.value {
        Value::Str(s) => {
            let refs = references(s);
            if refs.is_empty() {
                return Ok(Some(J::String(s.clone())));
            }
            let whole = refs.len() == 1 && refs[0].0 == (0..s.len());
            let mut out = String::new();
            let mut last = 0;
            for (range, r) in refs {
                let value = match r? {
                    Reference::Param(name) => {
                        let node = p
                            .params
                            .get(&name)
                            .ok_or_else(|| format!("`${{params.{name}}}` is not defined"))?;
                        match substitute(p, node, scalars)? {
                            Some(v) => v,
                            None => return Ok(None),
                        }
                    }
                    Reference::Scalar(st, name) => match scalars {
                        None => return Ok(None),
                        Some(f) => {
                            let x = f(&st, &name).ok_or_else(|| {
                                format!("stage '{st}' produced no scalar '{name}'")
                            })?;
                            serde_json::Number::from_f64(x)
                                .map(J::Number)
                                .ok_or_else(|| {
                                    format!("`${{stages.{st}.{name}}}` is not finite ({x})")
                                })?
                        }
                    },
                };
                if whole {
                    return Ok(Some(value));
                }
                out.push_str(&s[last..range.start]);
                match &value {
                    J::String(t) => out.push_str(t),
                    other => out.push_str(&other.to_string()),
                }
                last = range.end;
            }
            out.push_str(&s[last..]);
            Ok(Some(J::String(out)))
        }
        Value::Seq(items) => {
            let mut out = Vec::new();
            for i in items {
                match substitute(p, i, scalars)? {
                    Some(v) => out.push(v),
                    None => return Ok(None),
                }
            }
            Ok(Some(J::Array(out)))
        }
        Value::Map(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                match substitute(p, v, scalars)? {
                    Some(x) => {
                        out.insert(k.name.clone(), x);
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some(J::Object(out)))
        }
        _ => Ok(Some(n.to_json())),
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
