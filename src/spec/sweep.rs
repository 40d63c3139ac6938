//! Sweeps, `foreach` and replicates: expanding one declared stage into concrete instances.
//!
//! ```yaml
//! ode:
//!   kind: cost_ode
//!   with: {cost: {power: {q: "${sweep.q}"}}}
//!   sweep:
//!     grid: {q: [1.1, 1.5, 2]}            # or zip: {...} (lock-step) or list: [{q: 1.1}, ...]
//! sim:
//!   kind: simulate_equilibrium
//!   foreach: matching                     # one instance per instance of `matching`, same point
//!   replicates: 5                         # five seeds per point
//! ```
//!
//! An axis value list may be written `{range: {start, stop, num}}` (evenly spaced, both ends
//! included) or `{logspace: {start, stop, num}}` (geometrically spaced). A point's value goes to
//! every `${sweep.NAME}` in `with`, or, when there is none, to the parameter at the dotted path
//! NAME (`foreach` instances only substitute `${sweep.NAME}`). Instances are named `stage[q=1.5]`,
//! `stage[q=1.5,rep=2]`. A stage that needs an expanded stage gets the instances whose point
//! agrees with its own on shared axes (all of them when it has no point), which is how `foreach`
//! chains and `collect` work.
//!
//! Nothing grows before it is counted: the number of instances of every stage (the product of
//! the grid's axis lengths, the zip length or the list length, times `replicates`) is computed
//! with checked arithmetic and compared with the pipeline's instance limit
//! ([`DEFAULT_MAX_INSTANCES`] unless overridden) before a single instance is built; so are the
//! parameter values the instances copy and the links between instances.

use super::errors::Collector;
use super::yaml::{Key, Loc, Node, Value};
use super::{Pipeline, StageDecl};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A sweep point: axis name → value, in axis order.
pub type Point = Vec<(String, Node)>;

/// How many stage instances one pipeline may expand to unless told otherwise.
pub const DEFAULT_MAX_INSTANCES: u64 = 100_000;
/// Parameter values (YAML nodes) that expansion may copy per allowed instance.
const VALUES_PER_INSTANCE: u64 = 100;
/// Links between instances (`needs` after expansion) per allowed instance.
const LINKS_PER_INSTANCE: u64 = 100;
/// The longest string that `${sweep.NAME}` substitution inside a longer string may build.
const MAX_SUBSTITUTED_BYTES: usize = 1 << 16;

/// The values of one axis.
enum AxisValues {
    /// Values written out.
    List(Vec<Node>),
    /// `{range: ...}` or `{logspace: ...}`: `num` points from `start` to `stop`.
    Spaced {
        log: bool,
        start: f64,
        stop: f64,
        num: u64,
        loc: Loc,
    },
}

/// One named axis of a `grid` or `zip`.
struct Axis {
    name: String,
    /// Dotted path of the axis in the file, e.g. `stages.a.sweep.grid.q`.
    key: String,
    values: AxisValues,
}

impl Axis {
    fn len(&self) -> u64 {
        match &self.values {
            AxisValues::List(v) => v.len() as u64,
            AxisValues::Spaced { num, .. } => *num,
        }
    }

    /// The `i`-th value (i < len).
    fn get(&self, i: u64) -> Node {
        match &self.values {
            AxisValues::List(v) => v[i as usize].clone(),
            AxisValues::Spaced {
                log,
                start,
                stop,
                num,
                loc,
            } => {
                let (a, b) = (*start, *stop);
                let frac = if *num == 1 {
                    0.0
                } else {
                    i as f64 / (*num - 1) as f64
                };
                let x = if i + 1 == *num {
                    b
                } else if *log {
                    (a.ln() + (b.ln() - a.ln()) * frac).exp()
                } else {
                    a + (b - a) * frac
                };
                Node {
                    value: Value::Float(x),
                    loc: *loc,
                }
            }
        }
    }

    /// The most YAML nodes one value holds.
    fn max_nodes(&self) -> u64 {
        match &self.values {
            AxisValues::List(v) => v.iter().map(node_count).max().unwrap_or(0),
            AxisValues::Spaced { .. } => 1,
        }
    }
}

/// A parsed `sweep:`.
enum Sweep {
    /// The product of the axes (first axis slowest).
    Grid(Vec<Axis>),
    /// The axes in lock-step (all of one length).
    Zip(Vec<Axis>),
    /// Points written out; the axis key of each (axis, value) alongside.
    List(Vec<Point>, Vec<String>),
}

impl Sweep {
    /// The number of points, `None` when it does not fit in a u64.
    fn count(&self) -> Option<u64> {
        match self {
            Sweep::Grid(axes) => axes.iter().try_fold(1u64, |n, a| n.checked_mul(a.len())),
            Sweep::Zip(axes) => Some(axes.first().map_or(0, Axis::len)),
            Sweep::List(points, _) => Some(points.len() as u64),
        }
    }

    /// The most YAML nodes one point holds.
    fn max_point_nodes(&self) -> u64 {
        match self {
            Sweep::Grid(axes) | Sweep::Zip(axes) => axes.iter().map(Axis::max_nodes).sum(),
            Sweep::List(points, _) => points
                .iter()
                .map(|p| p.iter().map(|(_, v)| node_count(v)).sum())
                .max()
                .unwrap_or(0),
        }
    }

    /// Every point, with the axis key of each value's location recorded in `axis_at`.
    fn points(&self, axis_at: &mut HashMap<Loc, String>) -> Vec<Point> {
        match self {
            Sweep::Grid(axes) => {
                record_axes(axes, axis_at);
                let n = self.count().unwrap_or(0);
                (0..n)
                    .map(|mut idx| {
                        let mut pt: Point = Vec::with_capacity(axes.len());
                        for a in axes.iter().rev() {
                            let len = a.len();
                            pt.push((a.name.clone(), a.get(idx % len)));
                            idx /= len;
                        }
                        pt.reverse();
                        pt
                    })
                    .collect()
            }
            Sweep::Zip(axes) => {
                record_axes(axes, axis_at);
                let n = self.count().unwrap_or(0);
                (0..n)
                    .map(|i| axes.iter().map(|a| (a.name.clone(), a.get(i))).collect())
                    .collect()
            }
            Sweep::List(points, keys) => {
                let mut k = keys.iter();
                for p in points {
                    for (_, v) in p {
                        if let Some(key) = k.next() {
                            record(v, key, axis_at);
                        }
                    }
                }
                points.clone()
            }
        }
    }
}

fn record_axes(axes: &[Axis], axis_at: &mut HashMap<Loc, String>) {
    for a in axes {
        match &a.values {
            AxisValues::List(v) => v.iter().for_each(|n| record(n, &a.key, axis_at)),
            AxisValues::Spaced { loc, .. } => {
                axis_at.insert(*loc, a.key.clone());
            }
        }
    }
}

fn record(n: &Node, key: &str, axis_at: &mut HashMap<Loc, String>) {
    axis_at.insert(n.loc, key.to_owned());
}

/// The number of YAML nodes in `n` (itself included).
pub(crate) fn node_count(n: &Node) -> u64 {
    1 + match &n.value {
        Value::Seq(items) => items.iter().map(node_count).sum(),
        Value::Map(m) => m.iter().map(|(_, v)| 1 + node_count(v)).sum(),
        _ => 0,
    }
}

/// Whether `name` is a usable axis name: a parameter name or a dotted path of them.
fn valid_axis_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|ch| ch.is_alphanumeric() || "_-".contains(ch))
        })
}

/// Parses a `sweep:` node; `None` after reporting its problems.
fn parse_sweep(c: &mut Collector, node: &Node, path: &str, limit: u64) -> Option<Sweep> {
    let Some(m) = node.as_map().filter(|m| m.len() == 1) else {
        c.push(
            node.loc,
            path,
            "`sweep` must have exactly one of `grid`, `zip` or `list`",
        );
        return None;
    };
    let (k, v) = &m[0];
    let key = format!("{path}.{}", k.name);
    match k.name.as_str() {
        "grid" | "zip" => {
            let Some(entries) = v.as_map().filter(|a| !a.is_empty()) else {
                c.push(
                    v.loc,
                    &key,
                    "expected a mapping of axis name → list of values",
                );
                return None;
            };
            let mut axes = Vec::new();
            let mut ok = true;
            for (ak, av) in entries {
                let akey = format!("{key}.{}", ak.name);
                if !valid_axis_name(&ak.name) {
                    c.push(
                        ak.loc,
                        &akey,
                        "axis names are parameter names or dotted paths of them (letters, digits, '_', '-', '.')",
                    );
                    ok = false;
                    continue;
                }
                match axis_values(c, av, &akey, limit) {
                    Some(values) => axes.push(Axis {
                        name: ak.name.clone(),
                        key: akey,
                        values,
                    }),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            if k.name == "grid" {
                return Some(Sweep::Grid(axes));
            }
            let n = axes[0].len();
            if axes.iter().any(|a| a.len() != n) {
                let lens: Vec<String> = axes
                    .iter()
                    .map(|a| format!("{}: {}", a.name, a.len()))
                    .collect();
                c.push(
                    v.loc,
                    &key,
                    format!("zip axes must have equal lengths ({})", lens.join(", ")),
                );
                return None;
            }
            Some(Sweep::Zip(axes))
        }
        "list" => {
            let Value::Seq(items) = &v.value else {
                c.push(
                    v.loc,
                    &key,
                    format!(
                        "expected a list of parameter sets, found {}",
                        v.value.type_name()
                    ),
                );
                return None;
            };
            if items.is_empty() {
                c.push(v.loc, &key, "the list is empty");
                return None;
            }
            let mut points = Vec::new();
            let mut keys = Vec::new();
            let mut ok = true;
            for it in items {
                let Some(m) = it.as_map().filter(|m| !m.is_empty()) else {
                    c.push(
                        it.loc,
                        &key,
                        format!(
                            "each entry must be a non-empty mapping axis → value, found {}",
                            it.value.type_name()
                        ),
                    );
                    ok = false;
                    continue;
                };
                for (a, _) in m {
                    if !valid_axis_name(&a.name) {
                        c.push(
                            a.loc,
                            format!("{key}.{}", a.name),
                            "axis names are parameter names or dotted paths of them (letters, digits, '_', '-', '.')",
                        );
                        ok = false;
                    }
                    keys.push(format!("{key}.{}", a.name));
                }
                points.push(m.iter().map(|(a, x)| (a.name.clone(), x.clone())).collect());
            }
            ok.then_some(Sweep::List(points, keys))
        }
        other => {
            c.push(
                k.loc,
                &key,
                format!("unknown sweep type '{other}': use grid, zip or list"),
            );
            None
        }
    }
}

/// A number as a person reads it in a message: `1e20`, `3`, `0.5`.
fn show_number(x: f64) -> String {
    if x.abs() >= 1e15 {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// The values of one axis: a list, `{range: {start, stop, num}}` or `{logspace: {...}}`.
fn axis_values(c: &mut Collector, n: &Node, key: &str, limit: u64) -> Option<AxisValues> {
    match &n.value {
        Value::Seq(items) if !items.is_empty() => Some(AxisValues::List(items.clone())),
        Value::Map(m) if m.len() == 1 && (m[0].0.name == "range" || m[0].0.name == "logspace") => {
            let (k, body) = &m[0];
            let rkey = format!("{key}.{}", k.name);
            let Some(fields) = body.as_map() else {
                c.push(
                    body.loc,
                    &rkey,
                    format!(
                        "expected a mapping {{start, stop, num}}, found {}",
                        body.value.type_name()
                    ),
                );
                return None;
            };
            let mut ok = true;
            let mut get = |name: &str| -> Option<(f64, Loc)> {
                let found = fields.iter().find(|(kk, _)| kk.name == name);
                let got = found.and_then(|(_, v)| match v.value {
                    Value::Int(i) => Some((i as f64, v.loc)),
                    Value::Float(x) if x.is_finite() => Some((x, v.loc)),
                    _ => None,
                });
                if got.is_none() {
                    let (loc, what) = match found {
                        Some((_, v)) => (v.loc, format!("found {}", v.value.type_name())),
                        None => (body.loc, "missing".to_owned()),
                    };
                    c.push(
                        loc,
                        format!("{rkey}.{name}"),
                        format!("expected a finite number ({what})"),
                    );
                    ok = false;
                }
                got
            };
            let (start, stop, num) = (get("start"), get("stop"), get("num"));
            for (kk, _) in fields {
                if !["start", "stop", "num"].contains(&kk.name.as_str()) {
                    c.push(
                        kk.loc,
                        format!("{rkey}.{}", kk.name),
                        format!("unknown key: {} takes `start`, `stop` and `num`", k.name),
                    );
                    ok = false;
                }
            }
            let (Some((a, _)), Some((b, _)), Some((num, num_loc)), true) = (start, stop, num, ok)
            else {
                return None;
            };
            let num_key = format!("{rkey}.num");
            if num < 1.0 || num.fract() != 0.0 {
                c.push(
                    num_loc,
                    &num_key,
                    format!("must be a positive integer, got {}", show_number(num)),
                );
                return None;
            }
            if num > limit as f64 {
                c.push(
                    num_loc,
                    &num_key,
                    format!(
                        "{} points (limit {limit} instances per pipeline; {})",
                        show_number(num),
                        RAISE_HINT
                    ),
                );
                return None;
            }
            if k.name == "logspace" && !(a > 0.0 && b > 0.0) {
                c.push(body.loc, &rkey, "logspace needs `start` and `stop` > 0");
                return None;
            }
            Some(AxisValues::Spaced {
                log: k.name == "logspace",
                start: a,
                stop: b,
                num: num as u64,
                loc: body.loc,
            })
        }
        _ => {
            c.push(
                n.loc,
                key,
                "expected a non-empty list of values, {range: {start, stop, num}} or {logspace: {start, stop, num}}",
            );
            None
        }
    }
}

/// How to raise the instance limit, for messages.
pub(crate) const RAISE_HINT: &str =
    "raise it with --max-instances or the EQLAB_MAX_INSTANCES environment variable";

/// How a sweep value is written in an instance name.
pub fn show_value(v: &Node) -> String {
    match &v.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(x) => format!("{x}"),
        Value::Bool(b) => b.to_string(),
        _ => serde_json::to_string(&v.to_json()).unwrap_or_default(),
    }
}

/// A text that identifies a value for pairing points: numbers compare by value (`10` and `10.0`
/// are the same point), everything else by its JSON text.
fn value_id(v: &Node) -> String {
    match &v.value {
        Value::Int(i) => format!("n{}", *i as f64),
        Value::Float(x) => format!("n{x}"),
        Value::Str(s) => format!("s{s}"),
        _ => format!(
            "j{}",
            serde_json::to_string(&v.to_json()).unwrap_or_default()
        ),
    }
}

/// A text that identifies a whole point.
fn point_id(p: &Point) -> String {
    let mut s = String::new();
    for (a, v) in p {
        s.push_str(a);
        s.push('\u{0}');
        s.push_str(&value_id(v));
        s.push('\u{0}');
    }
    s
}

/// Replaces every stage with `sweep`, `foreach` or `replicates` by its instances, refusing
/// expansions beyond `max_instances` instances. Returns, for every sweep value's location, the
/// key of its axis (so that problems with a value can be reported once, at its axis).
pub(crate) fn expand(
    c: &mut Collector,
    p: &mut Pipeline,
    max_instances: u64,
) -> HashMap<Loc, String> {
    let mut ex = Expansion {
        max_instances,
        total: 0,
        values: 0,
        axis_at: HashMap::new(),
        declared: p.stages.iter().map(|s| s.name.clone()).collect(),
    };
    let declared = std::mem::take(&mut p.stages);
    let mut done: BTreeMap<String, Vec<StageDecl>> = BTreeMap::new();
    // `foreach` targets must expand first.
    for i in foreach_order(c, &declared) {
        let d = &declared[i];
        let inst = ex.instances(c, d, &done);
        done.insert(d.name.clone(), inst);
    }
    // Rewrite `needs` to instance names, pairing points on shared axes.
    let ups_of: HashMap<&str, Vec<&Point>> = done
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(|s| &s.point).collect()))
        .collect();
    let names_of: HashMap<&str, Vec<&str>> = done
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(|s| s.name.as_str()).collect()))
        .collect();
    let link_limit = max_instances.saturating_mul(LINKS_PER_INSTANCE);
    let mut index: HashMap<(&str, Vec<&str>), PairIndex> = HashMap::new();
    // Count the links first, so that a pipeline over the limit is refused before any is built.
    let mut links: u64 = 0;
    for d in &declared {
        for inst in done.get(&d.name).map_or(&[][..], Vec::as_slice) {
            for n in &inst.needs {
                let found = linked(&mut index, &ups_of, n, &inst.point).map_or(0, |f| f.len());
                links = links.saturating_add(found as u64);
                if links > link_limit {
                    c.push(
                        d.loc,
                        format!("stages.{}.needs", d.name),
                        format!(
                            "the instances would be linked more than {link_limit} times (limit {LINKS_PER_INSTANCE} × the instance limit {max_instances}; {RAISE_HINT})"
                        ),
                    );
                    return ex.axis_at;
                }
            }
        }
    }
    let mut out = Vec::new();
    for d in &declared {
        for inst in done.get(&d.name).map_or(&[][..], Vec::as_slice) {
            let mut needs = Vec::new();
            for n in &inst.needs {
                match (
                    linked(&mut index, &ups_of, n, &inst.point),
                    names_of.get(n.as_str()),
                ) {
                    (Some(found), Some(names)) => needs.extend(
                        found
                            .iter()
                            .filter_map(|i| names.get(*i).map(|s| (*s).to_owned())),
                    ),
                    _ => needs.push(n.clone()),
                }
            }
            let mut inst = inst.clone();
            inst.needs = needs;
            out.push(inst);
        }
    }
    p.stages = out;
    ex.axis_at
}

/// The instances (indices into `ups_of[need]`) that the instance at `point` links to through
/// `need`, pairing points on shared axes; `None` when `need` is not a stage being expanded.
fn linked<'a>(
    index: &mut HashMap<(&'a str, Vec<&'a str>), PairIndex>,
    ups_of: &HashMap<&str, Vec<&Point>>,
    need: &'a str,
    point: &'a Point,
) -> Option<Vec<usize>> {
    let ups = ups_of.get(need)?;
    let axes: Vec<&str> = point.iter().map(|(a, _)| a.as_str()).collect();
    let idx = index
        .entry((need, axes))
        .or_insert_with(|| PairIndex::new(ups, point));
    Some(idx.lookup(point))
}

/// The declared stages (indices) in an order where every `foreach` target comes before the
/// stages that iterate over it; stages whose `foreach` targets form a cycle are reported and left
/// out.
fn foreach_order(c: &mut Collector, declared: &[StageDecl]) -> Vec<usize> {
    let index: HashMap<&str, usize> = declared
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.as_str(), i))
        .collect();
    // 0: not visited, 1: on the current chain, 2: placed.
    let mut state = vec![0u8; declared.len()];
    let mut order = Vec::with_capacity(declared.len());
    for start in 0..declared.len() {
        let mut chain = Vec::new();
        let mut cur = Some(start);
        while let Some(i) = cur {
            match state[i] {
                2 => break,
                1 => {
                    // chain[pos..] is the cycle; the stages before it only lead into it.
                    let pos = chain.iter().position(|&j| j == i).unwrap_or(0);
                    for &j in &chain[pos..] {
                        let d: &StageDecl = &declared[j];
                        c.push(
                            d.loc,
                            format!("stages.{}.foreach", d.name),
                            "`foreach` targets form a cycle",
                        );
                        state[j] = 2;
                    }
                    chain.truncate(pos);
                    break;
                }
                _ => {
                    state[i] = 1;
                    chain.push(i);
                    cur = declared[i]
                        .foreach
                        .as_ref()
                        .and_then(|(t, _)| index.get(t.as_str()).copied());
                }
            }
        }
        for &j in chain.iter().rev() {
            state[j] = 2;
            order.push(j);
        }
    }
    order
}

/// One group of upstream instances with the same axis names: the axes they share with the
/// downstream point and, per combination of their values, the instances (indices).
type PairGroup = (Vec<String>, HashMap<String, Vec<usize>>);

/// Upstream instances grouped by their values on the axes they share with a downstream point,
/// so that pairing costs the number of links, not the product of the instance counts.
struct PairIndex {
    /// Per group of upstream instances with the same axis names: the shared axes and, for each
    /// combination of their values, the instances (indices into `names`).
    groups: Vec<PairGroup>,
}

impl PairIndex {
    fn new(ups: &[&Point], down: &Point) -> PairIndex {
        let down_axes: HashSet<&str> = down.iter().map(|(a, _)| a.as_str()).collect();
        let mut groups: Vec<PairGroup> = Vec::new();
        let mut by_axes: HashMap<Vec<String>, usize> = HashMap::new();
        for (i, pt) in ups.iter().enumerate() {
            let shared: Vec<String> = pt
                .iter()
                .filter(|(a, _)| down_axes.contains(a.as_str()))
                .map(|(a, _)| a.clone())
                .collect();
            let g = *by_axes.entry(shared.clone()).or_insert_with(|| {
                groups.push((shared.clone(), HashMap::new()));
                groups.len() - 1
            });
            let id = shared_id(pt, &shared);
            groups[g].1.entry(id).or_default().push(i);
        }
        PairIndex { groups }
    }

    /// The upstream instances (indices, in declaration order) that agree with `down`.
    fn lookup(&self, down: &Point) -> Vec<usize> {
        let mut found: Vec<usize> = Vec::new();
        for (shared, map) in &self.groups {
            if let Some(v) = map.get(&shared_id(down, shared)) {
                found.extend(v);
            }
        }
        found.sort_unstable();
        found
    }
}

/// The values of `pt` on the axes `shared` (in that order), as one text.
fn shared_id(pt: &Point, shared: &[String]) -> String {
    let mut s = String::new();
    for a in shared {
        if let Some((_, v)) = pt.iter().find(|(x, _)| x == a) {
            s.push_str(&value_id(v));
        }
        s.push('\u{0}');
    }
    s
}

/// Running totals of one pipeline's expansion.
struct Expansion {
    max_instances: u64,
    /// Instances so far.
    total: u64,
    /// Parameter values copied so far.
    values: u64,
    /// Sweep value location → axis key.
    axis_at: HashMap<Loc, String>,
    /// The declared stage names.
    declared: HashSet<String>,
}

impl Expansion {
    /// Counts the instances `n` (each copying `per_instance` values) of stage `d` against the
    /// limits; false (after reporting) when they do not fit.
    fn admit(
        &mut self,
        c: &mut Collector,
        d: &StageDecl,
        loc: Loc,
        key: &str,
        n: Option<u64>,
        per_instance: u64,
    ) -> bool {
        let limit = self.max_instances;
        let show =
            |n: Option<u64>| n.map_or_else(|| "more than 2^64".to_owned(), |n| n.to_string());
        let total = n.and_then(|n| n.checked_add(self.total));
        if n.is_none_or(|n| n > limit) {
            c.push(
                loc,
                key,
                format!(
                    "{} instances (limit {limit} per pipeline; {RAISE_HINT})",
                    show(n)
                ),
            );
            return false;
        }
        if total.is_none_or(|t| t > limit) {
            c.push(
                loc,
                key,
                format!(
                    "{} instances bring the pipeline to {} (limit {limit} per pipeline; {RAISE_HINT})",
                    show(n),
                    show(total)
                ),
            );
            return false;
        }
        let value_limit = limit.saturating_mul(VALUES_PER_INSTANCE);
        let values = n
            .and_then(|n| n.checked_mul(per_instance))
            .and_then(|v| v.checked_add(self.values));
        if values.is_none_or(|v| v > value_limit) {
            c.push(
                loc,
                key,
                format!(
                    "the {} instances of '{}' would copy {} parameter values (limit {value_limit}: {VALUES_PER_INSTANCE} × the instance limit; {RAISE_HINT})",
                    show(n),
                    d.name,
                    values.map_or_else(|| "too many".to_owned(), |v| v.to_string())
                ),
            );
            return false;
        }
        self.total = total.unwrap_or(u64::MAX);
        self.values = values.unwrap_or(u64::MAX);
        true
    }

    fn instances(
        &mut self,
        c: &mut Collector,
        d: &StageDecl,
        done: &BTreeMap<String, Vec<StageDecl>>,
    ) -> Vec<StageDecl> {
        let path = format!("stages.{}", d.name);
        let with_nodes: u64 = d.with.iter().map(|(_, v)| 1 + node_count(v)).sum::<u64>() + 1;
        let reps = d.replicates.unwrap_or(1);
        let points: Vec<Point> = match (&d.sweep, &d.foreach) {
            (Some(_), Some((_, loc))) => {
                c.push(
                    *loc,
                    format!("{path}.foreach"),
                    "a stage cannot have both `sweep` and `foreach`",
                );
                return vec![d.clone()];
            }
            (Some(node), None) => {
                let key = format!("{path}.sweep");
                let Some(sweep) = parse_sweep(c, node, &key, self.max_instances) else {
                    return vec![d.clone()];
                };
                let n = sweep.count().and_then(|n| n.checked_mul(reps));
                let per = with_nodes + sweep.max_point_nodes();
                if !self.admit(c, d, node.loc, &key, n, per) {
                    return vec![d.clone()];
                }
                sweep.points(&mut self.axis_at)
            }
            (None, Some((target, loc))) => match done.get(target) {
                Some(inst) if inst.iter().any(|i| !i.point.is_empty()) => {
                    let mut seen = HashSet::new();
                    let pts: Vec<Point> = inst
                        .iter()
                        .filter(|i| seen.insert(point_id(&i.point)))
                        .map(|i| i.point.clone())
                        .collect();
                    let n = (pts.len() as u64).checked_mul(reps);
                    let per = with_nodes
                        + pts
                            .iter()
                            .map(|p| p.iter().map(|(_, v)| node_count(v)).sum())
                            .max()
                            .unwrap_or(0);
                    if !self.admit(c, d, *loc, &format!("{path}.foreach"), n, per) {
                        return vec![d.clone()];
                    }
                    pts
                }
                Some(_) => {
                    c.push(
                        *loc,
                        format!("{path}.foreach"),
                        format!("'{target}' has no `sweep` to iterate over"),
                    );
                    return vec![d.clone()];
                }
                None => {
                    // A declared target missing here is in a `foreach` cycle (reported there).
                    if !self.declared.contains(target) {
                        c.push(
                            *loc,
                            format!("{path}.foreach"),
                            format!("'{target}' is not a stage"),
                        );
                    }
                    return vec![d.clone()];
                }
            },
            (None, None) => {
                if !self.admit(c, d, d.loc, &path, Some(reps), with_nodes) {
                    return vec![d.clone()];
                }
                vec![Vec::new()]
            }
        };
        let mut proto = d.clone();
        proto.sweep = None;
        proto.foreach = None;
        proto.with = Vec::new();
        let mut out: Vec<StageDecl> = Vec::new();
        let mut names = HashSet::new();
        for pt in &points {
            let mut label: Vec<String> = pt
                .iter()
                .map(|(a, v)| format!("{}={}", a.rsplit('.').next().unwrap_or(a), show_value(v)))
                .collect();
            let mut with = d.with.clone();
            let mut ok = true;
            for (axis, value) in pt {
                // A `foreach` point only names and pairs the instance; a sweep point also sets
                // the parameter at path AXIS when no `${sweep.AXIS}` uses it.
                match substitute_sweep(&mut with, axis, value) {
                    Ok(true) => {}
                    Ok(false) if d.sweep.is_some() => set_path(&mut with, axis, value, d.loc),
                    Ok(false) => {}
                    Err(loc) => {
                        c.push(
                            loc,
                            &path,
                            format!(
                                "substituting `${{sweep.{axis}}}` would build a string longer than {MAX_SUBSTITUTED_BYTES} bytes"
                            ),
                        );
                        ok = false;
                    }
                }
            }
            if !ok {
                return vec![d.clone()];
            }
            for rep in 0..reps {
                let mut inst = proto.clone();
                inst.point = pt.clone();
                inst.with = with.clone();
                inst.replicate = d.replicates.map(|_| rep);
                if d.replicates.is_some() {
                    label.push(format!("rep={rep}"));
                }
                if !label.is_empty() {
                    inst.name = format!("{}[{}]", d.name, label.join(","));
                }
                if d.replicates.is_some() {
                    label.pop();
                }
                if !names.insert(inst.name.clone()) {
                    c.push(
                        d.loc,
                        &path,
                        format!("the sweep produces '{}' twice", inst.name),
                    );
                    continue;
                }
                out.push(inst);
            }
        }
        out
    }
}

/// Replaces `${sweep.AXIS}` in every string of `with`; returns whether there was one, or the
/// location of a string that would grow beyond [`MAX_SUBSTITUTED_BYTES`].
fn substitute_sweep(with: &mut [(Key, Node)], axis: &str, value: &Node) -> Result<bool, Loc> {
    let pat = format!("${{sweep.{axis}}}");
    let shown = show_value(value);
    let mut found = false;
    fn walk(
        n: &mut Node,
        pat: &str,
        value: &Node,
        shown: &str,
        found: &mut bool,
    ) -> Result<(), Loc> {
        match &mut n.value {
            Value::Str(s) if s.as_str() == pat => {
                *found = true;
                // The value keeps its own location, so that a problem with it is reported
                // where it is written (the sweep axis), not at the reference.
                *n = value.clone();
            }
            Value::Str(s) if s.contains(pat) => {
                *found = true;
                let times = s.matches(pat).count();
                let grown = s.len() - times * pat.len() + times.saturating_mul(shown.len());
                if grown > MAX_SUBSTITUTED_BYTES {
                    return Err(n.loc);
                }
                *s = s.replace(pat, shown);
            }
            Value::Seq(items) => {
                for i in items {
                    walk(i, pat, value, shown, found)?;
                }
            }
            Value::Map(m) => {
                for (_, v) in m {
                    walk(v, pat, value, shown, found)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    for (_, v) in with.iter_mut() {
        walk(v, &pat, value, &shown, &mut found)?;
    }
    Ok(found)
}

/// Sets the parameter at dotted `path` (creating mappings on the way).
fn set_path(with: &mut Vec<(Key, Node)>, path: &str, value: &Node, loc: Loc) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let idx = match with.iter().position(|(k, _)| k.name == head) {
        Some(i) => i,
        None => {
            with.push((
                Key {
                    name: head.to_owned(),
                    loc,
                },
                Node {
                    value: Value::Map(Vec::new()),
                    loc,
                },
            ));
            with.len() - 1
        }
    };
    match rest {
        None => {
            with[idx].1 = Node {
                value: value.value.clone(),
                loc: value.loc,
            }
        }
        Some(r) => {
            if !matches!(with[idx].1.value, Value::Map(_)) {
                with[idx].1.value = Value::Map(Vec::new());
            }
            if let Value::Map(m) = &mut with[idx].1.value {
                set_path(m, r, value, loc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(x: f64) -> Node {
        Node {
            value: Value::Float(x),
            loc: Loc::default(),
        }
    }

    #[test]
    fn spaced_axes_give_the_same_points_as_before() {
        let a = Axis {
            name: "q".into(),
            key: "k".into(),
            values: AxisValues::Spaced {
                log: false,
                start: 10.0,
                stop: 30.0,
                num: 3,
                loc: Loc::default(),
            },
        };
        let v: Vec<Node> = (0..3).map(|i| a.get(i)).collect();
        assert_eq!(v, vec![num(10.0), num(20.0), num(30.0)]);
        let l = Axis {
            name: "q".into(),
            key: "k".into(),
            values: AxisValues::Spaced {
                log: true,
                start: 1.0,
                stop: 100.0,
                num: 3,
                loc: Loc::default(),
            },
        };
        assert_eq!(l.get(0), num(1.0));
        assert_eq!(l.get(2), num(100.0));
        assert!((show_value(&l.get(1)).parse::<f64>().unwrap_or(0.0) - 10.0).abs() < 1e-12);
    }

    #[test]
    fn grid_counts_overflow_to_none() {
        let big = || Axis {
            name: "q".into(),
            key: "k".into(),
            values: AxisValues::Spaced {
                log: false,
                start: 0.0,
                stop: 1.0,
                num: u64::MAX / 2,
                loc: Loc::default(),
            },
        };
        assert_eq!(Sweep::Grid(vec![big(), big()]).count(), None);
        assert_eq!(Sweep::Grid(vec![big()]).count(), Some(u64::MAX / 2));
    }

    #[test]
    fn numbers_pair_by_value() {
        let i = Node {
            value: Value::Int(10),
            loc: Loc::default(),
        };
        assert_eq!(value_id(&i), value_id(&num(10.0)));
        assert_ne!(value_id(&i), value_id(&num(10.5)));
    }
}
