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
//! NAME (`foreach` instances only substitute `${sweep.NAME}`). Instances are named `stage[q=1.5]`, `stage[q=1.5,rep=2]`. A stage that needs an
//! expanded stage gets the instances whose point agrees with its own on shared axes (all of
//! them when it has no point), which is how `foreach` chains and `collect` work.

use super::errors::Collector;
use super::yaml::{Key, Loc, Node, Value};
use super::{Pipeline, StageDecl};
use std::collections::BTreeMap;

/// A sweep point: axis name → value, in axis order.
pub type Point = Vec<(String, Node)>;

/// Parses a `sweep:` node into its points.
pub(crate) fn parse_points(c: &mut Collector, node: &Node, path: &str) -> Option<Vec<Point>> {
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
            let Some(axes) = v.as_map().filter(|a| !a.is_empty()) else {
                c.push(
                    v.loc,
                    &key,
                    "expected a mapping of axis name → list of values",
                );
                return None;
            };
            let mut lists = Vec::new();
            for (ak, av) in axes {
                lists.push((
                    ak.name.clone(),
                    axis_values(c, av, &format!("{key}.{}", ak.name))?,
                ));
            }
            if k.name == "grid" {
                let mut points: Vec<Point> = vec![Vec::new()];
                for (name, values) in &lists {
                    points = points
                        .iter()
                        .flat_map(|pt| {
                            values.iter().map(move |v| {
                                let mut q = pt.clone();
                                q.push((name.clone(), v.clone()));
                                q
                            })
                        })
                        .collect();
                }
                Some(points)
            } else {
                let n = lists[0].1.len();
                if lists.iter().any(|(_, l)| l.len() != n) {
                    let lens: Vec<String> = lists
                        .iter()
                        .map(|(a, l)| format!("{a}: {}", l.len()))
                        .collect();
                    c.push(
                        v.loc,
                        &key,
                        format!("zip axes must have equal lengths ({})", lens.join(", ")),
                    );
                    return None;
                }
                Some(
                    (0..n)
                        .map(|i| {
                            lists
                                .iter()
                                .map(|(a, l)| (a.clone(), l[i].clone()))
                                .collect()
                        })
                        .collect(),
                )
            }
        }
        "list" => {
            let Value::Seq(items) = &v.value else {
                c.push(v.loc, &key, "expected a list of parameter sets");
                return None;
            };
            let mut points = Vec::new();
            for it in items {
                let Some(m) = it.as_map() else {
                    c.push(it.loc, &key, "each entry must be a mapping axis → value");
                    return None;
                };
                points.push(m.iter().map(|(a, x)| (a.name.clone(), x.clone())).collect());
            }
            if points.is_empty() {
                c.push(v.loc, &key, "the list is empty");
                return None;
            }
            Some(points)
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

/// The values of one axis: a list, `{range: {start, stop, num}}` or `{logspace: {...}}`.
fn axis_values(c: &mut Collector, n: &Node, key: &str) -> Option<Vec<Node>> {
    match &n.value {
        Value::Seq(items) if !items.is_empty() => Some(items.clone()),
        Value::Map(m) if m.len() == 1 && (m[0].0.name == "range" || m[0].0.name == "logspace") => {
            let (k, body) = &m[0];
            let get = |name: &str| -> Option<f64> {
                body.as_map()?
                    .iter()
                    .find(|(kk, _)| kk.name == name)
                    .and_then(|(_, v)| match v.value {
                        Value::Int(i) => Some(i as f64),
                        Value::Float(x) => Some(x),
                        _ => None,
                    })
            };
            let (Some(a), Some(b), Some(num)) = (get("start"), get("stop"), get("num")) else {
                c.push(
                    body.loc,
                    format!("{key}.{}", k.name),
                    "needs numbers `start`, `stop` and an integer `num`",
                );
                return None;
            };
            if num < 1.0 || num.fract() != 0.0 {
                c.push(
                    body.loc,
                    format!("{key}.{}", k.name),
                    format!("`num` must be a positive integer, got {num}"),
                );
                return None;
            }
            if k.name == "logspace" && !(a > 0.0 && b > 0.0) {
                c.push(
                    body.loc,
                    format!("{key}.{}", k.name),
                    "logspace needs `start` and `stop` > 0",
                );
                return None;
            }
            let n_pts = num as usize;
            let frac = |i: usize| {
                if n_pts == 1 {
                    0.0
                } else {
                    i as f64 / (n_pts - 1) as f64
                }
            };
            let values = (0..n_pts).map(|i| {
                let x = if k.name == "range" {
                    a + (b - a) * frac(i)
                } else {
                    (a.ln() + (b.ln() - a.ln()) * frac(i)).exp()
                };
                let x = if i + 1 == n_pts { b } else { x };
                Node {
                    value: Value::Float(x),
                    loc: body.loc,
                }
            });
            Some(values.collect())
        }
        _ => {
            c.push(n.loc, key, "expected a non-empty list of values, {range: {start, stop, num}} or {logspace: {start, stop, num}}");
            None
        }
    }
}

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

/// Replaces every stage with `sweep`, `foreach` or `replicates` by its instances.
pub(crate) fn expand(c: &mut Collector, p: &mut Pipeline) {
    let declared = std::mem::take(&mut p.stages);
    let mut done: BTreeMap<String, Vec<StageDecl>> = BTreeMap::new();
    let mut pending: Vec<StageDecl> = declared.clone();
    // `foreach` targets must expand first: repeat passes until nothing changes.
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for d in pending {
            match &d.foreach {
                Some((target, _))
                    if !done.contains_key(target) && declared.iter().any(|x| &x.name == target) =>
                {
                    rest.push(d)
                }
                _ => {
                    let inst = instances(c, &d, &done);
                    done.insert(d.name.clone(), inst);
                }
            }
        }
        if rest.len() == before {
            for d in &rest {
                c.push(
                    d.loc,
                    format!("stages.{}.foreach", d.name),
                    "`foreach` targets form a cycle",
                );
            }
            break;
        }
        pending = rest;
    }
    // Rewrite `needs` to instance names, pairing points on shared axes.
    let mut out = Vec::new();
    for d in &declared {
        for mut inst in done.get(&d.name).cloned().unwrap_or_default() {
            inst.needs = inst
                .needs
                .iter()
                .flat_map(|n| match done.get(n) {
                    Some(ups) => ups
                        .iter()
                        .filter(|u| agree(&u.point, &inst.point))
                        .map(|u| u.name.clone())
                        .collect(),
                    None => vec![n.clone()],
                })
                .collect();
            out.push(inst);
        }
    }
    p.stages = out;
}

/// Whether two points agree on every axis they share.
fn agree(a: &Point, b: &Point) -> bool {
    a.iter()
        .all(|(x, v)| b.iter().all(|(y, w)| x != y || v.value == w.value))
}

fn instances(
    c: &mut Collector,
    d: &StageDecl,
    done: &BTreeMap<String, Vec<StageDecl>>,
) -> Vec<StageDecl> {
    let path = format!("stages.{}", d.name);
    let points: Vec<Point> = match (&d.sweep, &d.foreach) {
        (Some(_), Some((_, loc))) => {
            c.push(
                *loc,
                format!("{path}.foreach"),
                "a stage cannot have both `sweep` and `foreach`",
            );
            return vec![d.clone()];
        }
        (Some(node), None) => match parse_points(c, node, &format!("{path}.sweep")) {
            Some(p) => p,
            None => return vec![d.clone()],
        },
        (None, Some((target, loc))) => match done.get(target) {
            Some(inst) if inst.iter().any(|i| !i.point.is_empty()) => {
                let mut pts: Vec<Point> = Vec::new();
                for i in inst {
                    if !pts.iter().any(|p| same_point(p, &i.point)) {
                        pts.push(i.point.clone());
                    }
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
                c.push(
                    *loc,
                    format!("{path}.foreach"),
                    format!("'{target}' is not a stage"),
                );
                return vec![d.clone()];
            }
        },
        (None, None) => vec![Vec::new()],
    };
    let reps: Vec<Option<u64>> = match d.replicates {
        Some(n) => (0..n).map(Some).collect(),
        None => vec![None],
    };
    let mut out: Vec<StageDecl> = Vec::new();
    for pt in &points {
        for rep in &reps {
            let mut inst = d.clone();
            inst.sweep = None;
            inst.foreach = None;
            inst.point = pt.clone();
            inst.replicate = *rep;
            let mut label: Vec<String> = pt
                .iter()
                .map(|(a, v)| format!("{}={}", a.rsplit('.').next().unwrap_or(a), show_value(v)))
                .collect();
            if let Some(r) = rep {
                label.push(format!("rep={r}"));
            }
            if !label.is_empty() {
                inst.name = format!("{}[{}]", d.name, label.join(","));
            }
            for (axis, value) in pt {
                // A `foreach` point only names and pairs the instance; a sweep point also sets
                // the parameter at path AXIS when no `${sweep.AXIS}` uses it.
                if !substitute_sweep(&mut inst.with, axis, value) && d.sweep.is_some() {
                    set_path(&mut inst.with, axis, value, d.loc);
                }
            }
            if out.iter().any(|o| o.name == inst.name) {
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

fn same_point(a: &Point, b: &Point) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && x.1.value == y.1.value)
}

/// Replaces `${sweep.AXIS}` in every string of `with`; returns whether there was one.
fn substitute_sweep(with: &mut [(Key, Node)], axis: &str, value: &Node) -> bool {
    let pat = format!("${{sweep.{axis}}}");
    let mut found = false;
    fn walk(n: &mut Node, pat: &str, value: &Node, found: &mut bool) {
        match &mut n.value {
            Value::Str(s) if s.as_str() == pat => {
                *found = true;
                n.value = value.value.clone();
            }
            Value::Str(s) if s.contains(pat) => {
                *found = true;
                *s = s.replace(pat, &show_value(value));
            }
            Value::Seq(items) => items.iter_mut().for_each(|i| walk(i, pat, value, found)),
            Value::Map(m) => m.iter_mut().for_each(|(_, v)| walk(v, pat, value, found)),
            _ => {}
        }
    }
    for (_, v) in with.iter_mut() {
        walk(v, &pat, value, &mut found);
    }
    found
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
