//! `eqlab check`: compares stored results with a golden file of expected values and
//! tolerances, for CI gates. Knows records and tables, nothing about finance.
//!
//! ```yaml
//! checks:
//!   - value: calibrate.mu_bar                      # STAGE.SCALAR
//!     expected: 0.07225232544
//!     rel: 1.0e-10                                 # and/or abs: ...
//!   - value: simulate.stats.cv_turnover[model=proportional]   # STAGE.TABLE.COLUMN[KEY=VALUE] or [ROW]
//!     expected: 2.66
//!     rel: 0.1
//!   - value: sim.mean_turnover                     # a replicated stage: the mean over replicates
//!     expected: 1.838e9
//!     se: 3                                        # pass within 3 standard errors
//! ```
//!
//! A value that cannot be found is a failure, never a pass. With `se: k` the standard error
//! comes from the replicates of the stage, or from a sibling column (`X.se` next to `X.mean`,
//! or `X_se` next to `X`).

use crate::spec::{Pipeline, split_stage};
use crate::store::{Record, Store};
use crate::table::{f64_column, fmt_f64, str_column};
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One golden entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenEntry {
    /// What to check: `STAGE.SCALAR` or `STAGE.TABLE.COLUMN[KEY=VALUE]` / `[ROW]`.
    pub value: String,
    /// The expected value.
    pub expected: f64,
    /// Relative tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<f64>,
    /// Absolute tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs: Option<f64>,
    /// Tolerance in standard errors (Monte-Carlo quantities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se: Option<f64>,
    /// Free text (where the expected value comes from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl GoldenEntry {
    /// The tolerance as text, e.g. `rel 1e-6 | 3 se`.
    pub fn tolerance(&self) -> String {
        [
            self.rel.map(|r| format!("rel {}", fmt_f64(r))),
            self.abs.map(|a| format!("abs {}", fmt_f64(a))),
            self.se.map(|k| format!("{} se", fmt_f64(k))),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" | ")
    }
}

/// A golden file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Golden {
    /// Informational: the pipeline this file belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// The checks.
    pub checks: Vec<GoldenEntry>,
}

/// The verdict on one entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// The entry.
    pub entry: GoldenEntry,
    /// The value found (None: not found).
    pub got: Option<f64>,
    /// Standard error used, for `se` entries.
    pub std_err: Option<f64>,
    /// Whether it passed.
    pub pass: bool,
    /// Why it failed, or how close it was.
    pub detail: String,
}

/// Reads a golden file, with line and column on errors.
pub fn read_golden(path: &Path) -> Result<Golden> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the golden file {}", path.display()))?;
    let g: Golden = serde_saphyr::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        anyhow!(
            "{}{at}: {}",
            path.display(),
            e.to_string().lines().next().unwrap_or("")
        )
    })?;
    for (i, c) in g.checks.iter().enumerate() {
        if c.rel.is_none() && c.abs.is_none() && c.se.is_none() {
            bail!(
                "{}: check {} ({}): give a tolerance `rel`, `abs` or `se`",
                path.display(),
                i + 1,
                c.value
            );
        }
    }
    Ok(g)
}

/// Writes a golden file (used by `--update`).
pub fn write_golden(path: &Path, g: &Golden) -> Result<()> {
    let mut text = String::from(
        "# eqlab golden values: `eqlab check PIPELINE --update` rewrites `expected`, keeping tolerances.\n",
    );
    text.push_str(&serde_saphyr::to_string(g)?);
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Evaluates every entry against the records of the current run.
pub fn evaluate(
    p: &Pipeline,
    store: &Store,
    records: &BTreeMap<String, Record>,
    golden: &Golden,
) -> Vec<Verdict> {
    golden
        .checks
        .iter()
        .map(
            |e| match lookup(p, store, records, &e.value, e.se.is_some()) {
                Ok((got, se)) => verdict(e, got, se),
                Err(err) => Verdict {
                    entry: e.clone(),
                    got: None,
                    std_err: None,
                    pass: false,
                    detail: format!("not found: {err:#}"),
                },
            },
        )
        .collect()
}

fn verdict(e: &GoldenEntry, got: f64, se: Option<f64>) -> Verdict {
    let abs_err = (got - e.expected).abs();
    let rel_err = abs_err / e.expected.abs().max(f64::MIN_POSITIVE);
    let mut ok = false;
    let mut parts = Vec::new();
    if let Some(r) = e.rel {
        ok |= rel_err <= r;
        parts.push(format!("rel err {rel_err:.2e}"));
    }
    if let Some(a) = e.abs {
        ok |= abs_err <= a;
        parts.push(format!("abs err {abs_err:.2e}"));
    }
    if let (Some(k), Some(s)) = (e.se, se) {
        ok |= abs_err <= k * s;
        parts.push(format!("{:.2} se", abs_err / s));
    }
    if e.se.is_some() && se.is_none() && e.rel.is_none() && e.abs.is_none() {
        parts.push("no standard error available".into());
    }
    ok &= got.is_finite();
    Verdict {
        entry: e.clone(),
        got: Some(got),
        std_err: se,
        pass: ok,
        detail: parts.join(", "),
    }
}

/// The value (and standard error, if wanted and available) at an address.
fn lookup(
    p: &Pipeline,
    store: &Store,
    records: &BTreeMap<String, Record>,
    addr: &str,
    want_se: bool,
) -> Result<(f64, Option<f64>)> {
    let (stage, rest) = split_stage(addr)
        .ok_or_else(|| anyhow!("'{addr}' is not STAGE.SCALAR or STAGE.TABLE.COLUMN[...]"))?;
    if let Some(r) = records.get(stage) {
        return value_in(store, stage, r, rest, want_se);
    }
    // A stage with several instances: replicates of one sweep point are averaged (mean and
    // standard error); different sweep points never are — the check must name one.
    let decls: Vec<_> = p.stages.iter().filter(|s| s.base == stage).collect();
    let point = |d: &crate::spec::StageDecl| crate::exec::prepare::upstream_point(d);
    if decls.iter().any(|d| point(d) != point(decls[0])) {
        let mut names: Vec<String> = Vec::new();
        for d in decls.iter().filter(|d| d.replicate.unwrap_or(0) == 0) {
            let n = d.name.replace(",rep=0]", "]").replace("[rep=0]", "");
            if !names.contains(&n) {
                names.push(n);
            }
        }
        bail!(
            "stage '{stage}' is swept over {} points; name one of them: {}",
            names.len(),
            names.join(", ")
        );
    }
    let inst: Vec<(&str, &Record)> = decls
        .iter()
        .filter_map(|s| records.get(&s.name).map(|r| (s.name.as_str(), r)))
        .collect();
    if inst.is_empty() {
        let names: Vec<&str> = records.keys().map(String::as_str).collect();
        bail!(
            "no result for stage '{stage}' (results: {})",
            names.join(", ")
        );
    }
    let xs = inst
        .iter()
        .map(|(name, r)| value_in(store, name, r, rest, false).map(|v| v.0))
        .collect::<Result<Vec<f64>>>()?;
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let se = (xs.len() > 1)
        .then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt());
    Ok((mean, se))
}

fn value_in(
    store: &Store,
    stage: &str,
    r: &Record,
    rest: &str,
    want_se: bool,
) -> Result<(f64, Option<f64>)> {
    if !rest.ends_with(']') {
        let v = r
            .scalars
            .get(rest)
            .copied()
            .ok_or_else(|| anyhow!("stage '{stage}' has no scalar '{rest}'"))?;
        return Ok((v, None));
    }
    let (table, col_sel) = rest
        .split_once('.')
        .ok_or_else(|| anyhow!("'{rest}': expected TABLE.COLUMN[...]"))?;
    let open = col_sel
        .find('[')
        .ok_or_else(|| anyhow!("'{rest}': missing '['"))?;
    let (column, sel) = (&col_sel[..open], &col_sel[open + 1..col_sel.len() - 1]);
    let tref = r
        .tables
        .get(table)
        .ok_or_else(|| anyhow!("stage '{stage}' has no table '{table}'"))?;
    let t = store.get_table(&tref.object)?;
    let row = match sel.split_once('=') {
        Some((k, v)) => {
            let keys = str_column(&t, k)?;
            keys.iter()
                .position(|x| {
                    x == v
                        || x.parse::<f64>()
                            .ok()
                            .zip(v.parse::<f64>().ok())
                            .is_some_and(|(a, b)| a == b)
                })
                .ok_or_else(|| anyhow!("no row with {k} = {v} in table '{table}'"))?
        }
        None => sel
            .parse::<usize>()
            .map_err(|_| anyhow!("'[{sel}]': use [COLUMN=VALUE] or a row number"))?,
    };
    let values = f64_column(&t, column)?;
    let v = *values
        .get(row)
        .ok_or_else(|| anyhow!("table '{table}' has {} rows", values.len()))?;
    let se = if want_se {
        let sibling = column
            .strip_suffix(".mean")
            .map(|b| format!("{b}.se"))
            .unwrap_or_else(|| format!("{column}_se"));
        f64_column(&t, &sibling)
            .ok()
            .and_then(|c| c.get(row).copied())
    } else {
        None
    };
    Ok((v, se))
}

/// The verdicts as a text table; numbers as a person reads them ([`fmt_f64`]).
pub fn render(verdicts: &[Verdict]) -> String {
    let rows: Vec<[String; 4]> = verdicts
        .iter()
        .map(|v| {
            [
                v.entry.value.clone(),
                fmt_f64(v.entry.expected),
                v.got.map_or("-".to_owned(), fmt_f64),
                v.entry.tolerance(),
            ]
        })
        .collect();
    let head = ["value", "expected", "got", "tolerance"];
    let w: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = format!(
        "{:<w0$}  {:>w1$}  {:>w2$}  {:<w3$}  verdict\n",
        head[0],
        head[1],
        head[2],
        head[3],
        w0 = w[0],
        w1 = w[1],
        w2 = w[2],
        w3 = w[3]
    );
    for (v, r) in verdicts.iter().zip(&rows) {
        let verdict = if v.pass { "PASS" } else { "FAIL" };
        s.push_str(&format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:<w3$}  {verdict} ({})\n",
            r[0],
            r[1],
            r[2],
            r[3],
            v.detail,
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        ));
    }
    let failed = verdicts.iter().filter(|v| !v.pass).count();
    s.push_str(&format!(
        "{} passed, {} failed\n",
        verdicts.len() - failed,
        failed
    ));
    s
}

/// The verdicts as JUnit XML (one test case per entry).
pub fn junit(suite: &str, verdicts: &[Verdict]) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let failures = verdicts.iter().filter(|v| !v.pass).count();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">\n",
        esc(suite),
        verdicts.len()
    );
    for v in verdicts {
        x.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\"",
            esc(suite),
            esc(&v.entry.value)
        ));
        if v.pass {
            x.push_str("/>\n");
        } else {
            let got = v.got.map_or("not found".to_owned(), fmt_f64);
            x.push_str(&format!(
                ">\n    <failure message=\"expected {}, got {}\">{}</failure>\n  </testcase>\n",
                fmt_f64(v.entry.expected),
                esc(&got),
                esc(&v.detail)
            ));
        }
    }
    x.push_str("</testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rel: Option<f64>, abs: Option<f64>, se: Option<f64>) -> GoldenEntry {
        GoldenEntry {
            value: "s.x".into(),
            expected: 1.0,
            rel,
            abs,
            se,
            note: None,
        }
    }

    #[test]
    fn tolerances_decide_the_verdict() {
        assert!(verdict(&entry(Some(1e-3), None, None), 1.0005, None).pass);
        assert!(!verdict(&entry(Some(1e-4), None, None), 1.0005, None).pass);
        assert!(verdict(&entry(None, Some(0.01), None), 1.005, None).pass);
        assert!(verdict(&entry(None, None, Some(2.0)), 1.3, Some(0.2)).pass);
        assert!(!verdict(&entry(None, None, Some(2.0)), 1.5, Some(0.2)).pass);
        assert!(
            !verdict(&entry(None, None, Some(2.0)), 1.0, None).pass,
            "no se is not a pass"
        );
        assert!(!verdict(&entry(Some(1.0), None, None), f64::NAN, None).pass);
        assert_eq!(split_stage("ode[q=1.5].c_q"), Some(("ode[q=1.5]", "c_q")));
        assert_eq!(
            split_stage("sim.stats.cv[model=q=1.5]"),
            Some(("sim", "stats.cv[model=q=1.5]"))
        );
    }

    #[test]
    fn junit_is_well_formed() {
        let v = vec![
            verdict(&entry(Some(1e-3), None, None), 1.0, None),
            verdict(&entry(Some(1e-9), None, None), 2.0, None),
        ];
        let x = junit("ci<1>", &v);
        assert!(
            x.contains("tests=\"2\" failures=\"1\"")
                && x.contains("ci&lt;1&gt;")
                && x.contains("<failure"),
            "{x}"
        );
    }

    #[test]
    fn render_prints_numbers_as_a_person_reads_them() {
        let mut e = entry(Some(0.1), None, None);
        e.expected = 24.0;
        let v = vec![verdict(&e, 24.0, None), verdict(&e, 2.5e-7, None)];
        let text = render(&v);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains(" 24  ") && lines[1].contains("rel 0.1"),
            "{text}"
        );
        assert!(lines[1].trim_end().contains("PASS"), "{text}");
        assert!(
            lines[2].contains("2.5e-7") && lines[2].contains("FAIL"),
            "{text}"
        );
        assert!(!text.contains("e1"), "no exponent form for 24: {text}");
        assert_eq!(lines[3], "1 passed, 1 failed");
    }
}
