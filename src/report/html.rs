//! `eqlab report`: one self-contained HTML page per pipeline (no network needed to view it):
//! the DAG with each stage's status, time and key components; every figure the pipeline
//! produced; sweep plots of each collected scalar against each swept parameter; the check
//! table of the last `eqlab check`; and the provenance of the run.
//!
//! Every table is an HTML `<table>`: a stage's Markdown table (the `compare` stage's
//! paper-vs-eqlab table) is shown from the stage's table of the same name when there is one,
//! else converted from the Markdown; a row with a pass column is marked `pass` or `fail` (class
//! and visible text). Numbers print as a person reads them (`crate::table::fmt_f64`).

use super::figures::{Series, line_chart};
use crate::check::Verdict;
use crate::graph::Dag;
use crate::spec::Pipeline;
use crate::store::{Record, RunLog, Store};
use crate::table::{Table, column_text, f64_column, fmt_f64, str_column};
use anyhow::{Context, Result, bail};
use arrow::array::{Array, BooleanArray};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Writes `index.html` in the pipeline's report folder (`crate::exec::report_dir`) from the
/// latest run of this pipeline file.
pub fn write_report(p: &Pipeline, store: &Store) -> Result<PathBuf> {
    let runs = store.runs()?;
    let id = crate::exec::pipeline_id(p);
    let Some(run) = runs.iter().rev().find(|r| {
        if r.file_id.is_empty() {
            r.pipeline == p.name
        } else {
            r.file_id == id
        }
    }) else {
        bail!(
            "pipeline '{}' has not been run with this store yet: `eqlab run {}` first",
            p.name,
            p.file.display()
        );
    };
    let records = store.run_records(run)?;
    let dir = crate::exec::report_dir(store, p);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let checks: Option<Vec<Verdict>> = std::fs::read(dir.join("check.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let html = render(p, store, run, &records, checks.as_deref())?;
    let path = dir.join("index.html");
    std::fs::write(&path, html).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em;max-width:1200px;color:#222}\
h1{margin-bottom:0}table{border-collapse:collapse;margin:1em 0;font-size:13px}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}\
.ran{background:#dff0d8}.cached{background:#e8eef7}.failed{background:#f2dede}.skipped,.interrupted{background:#fcf8e3}\
.pass{background:#dff0d8}.fail{background:#f2dede;font-weight:bold}td.num{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1em 0}figcaption{font-size:13px;color:#555}\
details summary{cursor:pointer}code{font-size:12px}.prov td:first-child{font-weight:bold}";

fn render(
    p: &Pipeline,
    store: &Store,
    run: &RunLog,
    records: &BTreeMap<String, Record>,
    checks: Option<&[Verdict]>,
) -> Result<String> {
    let mut h = String::new();
    let status: BTreeMap<&str, &crate::store::RunStage> =
        run.stages.iter().map(|s| (s.stage.as_str(), s)).collect();
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>eqlab: {0}</title><style>{STYLE}</style></head><body>\
         <h1>{0}</h1><p>{1}</p>",
        esc(&p.name),
        esc(&p.description)
    );
    // Provenance.
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&p.base_dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        );
    let seeds: Vec<String> = records
        .iter()
        .map(|(n, r)| format!("{n}: {}", r.components.seed))
        .collect();
    let _ = write!(
        h,
        "<h2>Provenance</h2><table class=\"prov\"><tr><td>pipeline file</td><td>{}</td></tr><tr><td>file blake3</td><td><code>{}</code></td></tr>\
         <tr><td>run started</td><td>{} ({:.2}s)</td></tr><tr><td>eqlab</td><td>{}</td></tr><tr><td>git commit</td><td><code>{}</code></td></tr>\
         <tr><td>host</td><td>{}</td></tr><tr><td>pipeline seed</td><td>{}</td></tr><tr><td>stage seeds</td><td><details><summary>{} stages</summary>{}</details></td></tr></table>",
        esc(&run.file),
        run.file_hash,
        run.started,
        run.seconds,
        run.eqlab_version,
        esc(&commit),
        esc(&run.host),
        p.seed,
        seeds.len(),
        esc(&seeds.join("<br>")).replace("&lt;br&gt;", "<br>")
    );
    // DAG.
    h.push_str("<h2>Stages</h2>");
    h.push_str(&dag_svg(p, &status));
    h.push_str(
        "<table><tr><th>stage</th><th>kind</th><th>status</th><th>time</th><th>key</th></tr>",
    );
    for s in &run.stages {
        let key = match records.get(&s.stage) {
            Some(r) => {
                let leaves: Vec<String> = r
                    .components
                    .leaves()
                    .iter()
                    .map(|(k, v)| format!("{} = {}", esc(k), esc(v)))
                    .collect();
                format!(
                    "<details><summary><code>{}</code></summary><code>{}</code></details>",
                    &r.key[..16],
                    leaves.join("<br>")
                )
            }
            None => esc(s.error.as_deref().unwrap_or("")),
        };
        let _ = write!(
            h,
            "<tr class=\"{0}\"><td>{1}</td><td>{2}</td><td>{0}</td><td>{3:.2}s</td><td>{4}</td></tr>",
            s.status,
            esc(&s.stage),
            esc(&s.kind),
            s.seconds,
            key
        );
    }
    h.push_str("</table>");
    // Checks.
    if let Some(vs) = checks {
        let failed = vs.iter().filter(|v| !v.pass).count();
        let _ = write!(
            h,
            "<h2 id=\"checks\">Checks: {} passed, {failed} failed</h2><table id=\"check-table\"><tr><th>value</th><th>expected</th><th>got</th><th>tolerance</th><th>verdict</th></tr>",
            vs.len() - failed
        );
        for v in vs {
            let tol = v.entry.tolerance();
            let _ = write!(
                h,
                "<tr class=\"{}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"verdict\">{} ({})</td></tr>",
                if v.pass { "pass" } else { "fail" },
                esc(&v.entry.value),
                fmt_f64(v.entry.expected),
                v.got.map_or("-".into(), fmt_f64),
                esc(&tol),
                if v.pass { "PASS" } else { "FAIL" },
                esc(&v.detail)
            );
        }
        h.push_str("</table>");
    }
    // Figures produced by stages.
    let mut figs = String::new();
    for (stage, r) in records {
        for (name, f) in &r.files {
            let bytes = store.get_file(&f.object, &f.ext)?;
            let body = match f.ext.as_str() {
                "svg" => String::from_utf8_lossy(&bytes).into_owned(),
                "png" => continue, // the SVG twin is shown
                // A Markdown table: the stage's table of the same name holds the exact values.
                "md" => match r.tables.get(name) {
                    Some(t) => {
                        table_html(&store.get_table(&t.object)?, &format!("{stage}-{name}"))?
                    }
                    None => markdown_html(&String::from_utf8_lossy(&bytes)),
                },
                _ => continue,
            };
            let _ = write!(
                figs,
                "<figure>{body}<figcaption>{} — {}</figcaption></figure>",
                esc(stage),
                esc(name)
            );
        }
    }
    if !figs.is_empty() {
        h.push_str("<h2>Figures and tables</h2>");
        h.push_str(&figs);
    }
    // Sweep plots: each collected scalar against each numeric swept parameter.
    let mut sweeps = String::new();
    for (stage, r) in records {
        if r.components.kind != "collect" {
            continue;
        }
        let Some(t) = r.tables.get("table") else {
            continue;
        };
        let t = store.get_table(&t.object)?;
        let axes: Vec<String> = p
            .stages
            .iter()
            .filter(|s| p.stage(stage).is_some_and(|c| c.needs.contains(&s.name)))
            .flat_map(|s| s.point.iter().map(|(a, _)| a.clone()))
            .fold(Vec::new(), |mut v, a| {
                if !v.contains(&a) {
                    v.push(a);
                }
                v
            });
        let names: Vec<String> = t
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for axis in &axes {
            let Ok(x) = f64_column(&t, axis) else {
                continue;
            };
            let reps = str_column(&t, "instance").unwrap_or_default();
            for col in names
                .iter()
                .filter(|c| *c != axis && *c != "instance" && *c != "replicate")
            {
                let Ok(y) = f64_column(&t, col) else { continue };
                let mut pts: Vec<(f64, f64)> = x.iter().copied().zip(y).collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let series = Series {
                    label: col.clone(),
                    x: pts.iter().map(|p| p.0).collect(),
                    y: pts.iter().map(|p| p.1).collect(),
                };
                let title = format!("{stage}: {col} against {axis} ({} instances)", reps.len());
                if let Ok(fig) = line_chart(&title, axis, col, &[series], None) {
                    let _ = write!(
                        sweeps,
                        "<figure>{}<figcaption>{}</figcaption></figure>",
                        fig.svg,
                        esc(&title)
                    );
                }
            }
        }
    }
    if !sweeps.is_empty() {
        h.push_str("<h2>Sweeps</h2>");
        h.push_str(&sweeps);
    }
    h.push_str("</body></html>\n");
    Ok(h)
}

/// Whether a column name or a cell says pass/fail: the `pass` column of `compare`, a verdict.
fn is_pass_column(name: &str) -> bool {
    matches!(
        name.trim().to_lowercase().as_str(),
        "pass" | "passed" | "ok" | "verdict"
    )
}

/// The `<tr>` class and visible text of a pass/fail cell.
fn verdict(pass: bool) -> (&'static str, &'static str) {
    if pass {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    }
}

/// An Arrow table as an HTML `<table class="data">`, numbers right-aligned as [`fmt_f64`] writes
/// them; a boolean pass column marks each row `pass` or `fail`.
fn table_html(t: &Table, id: &str) -> Result<String> {
    let names: Vec<String> = t
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let cells = t
        .columns()
        .iter()
        .map(|c| column_text(c.as_ref(), false))
        .collect::<Result<Vec<_>>>()?;
    let numeric: Vec<bool> = t
        .columns()
        .iter()
        .map(|c| c.data_type().is_numeric())
        .collect();
    let pass = names.iter().zip(t.columns()).find_map(|(n, c)| {
        is_pass_column(n)
            .then(|| c.as_any().downcast_ref::<BooleanArray>())
            .flatten()
    });
    let mut h = format!("<table class=\"data\" id=\"table-{}\"><tr>", esc(id));
    for n in &names {
        let _ = write!(h, "<th>{}</th>", esc(n));
    }
    h.push_str("</tr>");
    for row in 0..t.num_rows() {
        let ok = pass.map(|p| p.is_valid(row) && p.value(row));
        match ok {
            Some(ok) => {
                let _ = write!(h, "<tr class=\"{}\">", verdict(ok).0);
            }
            None => h.push_str("<tr>"),
        }
        for (i, col) in cells.iter().enumerate() {
            match ok {
                Some(ok) if is_pass_column(&names[i]) => {
                    let _ = write!(h, "<td class=\"verdict\">{}</td>", verdict(ok).1);
                }
                _ if numeric[i] => {
                    let _ = write!(h, "<td class=\"num\">{}</td>", esc(&col[row]));
                }
                _ => {
                    let _ = write!(h, "<td>{}</td>", esc(&col[row]));
                }
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    Ok(h)
}

/// Markdown as HTML: pipe tables become `<table>`s (a pass column marks rows, `✓`/`true`/`pass`
/// passing), other non-empty lines paragraphs.
fn markdown_html(md: &str) -> String {
    let cells = |line: &str| -> Vec<String> {
        let l = line.trim();
        let l = l.strip_prefix('|').unwrap_or(l);
        let l = l.strip_suffix('|').unwrap_or(l);
        l.split('|').map(|c| c.trim().to_owned()).collect()
    };
    let is_rule = |line: &str| {
        let c = cells(line);
        !c.is_empty()
            && c.iter()
                .all(|x| !x.is_empty() && x.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
    };
    let lines: Vec<&str> = md.lines().collect();
    let mut h = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim_start().starts_with('|') && lines.get(i + 1).is_some_and(|l| is_rule(l)) {
            let head = cells(line);
            let pass_col = head.iter().position(|c| is_pass_column(c));
            h.push_str("<table class=\"data\"><tr>");
            for c in &head {
                let _ = write!(h, "<th>{}</th>", esc(c));
            }
            h.push_str("</tr>");
            i += 2;
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                let row = cells(lines[i]);
                let ok = pass_col
                    .and_then(|p| row.get(p))
                    .map(|c| matches!(c.to_lowercase().as_str(), "✓" | "true" | "pass" | "yes"));
                match ok {
                    Some(ok) => {
                        let _ = write!(h, "<tr class=\"{}\">", verdict(ok).0);
                    }
                    None => h.push_str("<tr>"),
                }
                for (j, c) in row.iter().enumerate() {
                    match ok {
                        Some(ok) if Some(j) == pass_col => {
                            let _ = write!(h, "<td class=\"verdict\">{}</td>", verdict(ok).1);
                        }
                        _ => {
                            let _ = write!(h, "<td>{}</td>", esc(c));
                        }
                    }
                }
                h.push_str("</tr>");
                i += 1;
            }
            h.push_str("</table>");
            continue;
        }
        if !line.trim().is_empty() {
            let _ = write!(h, "<p>{}</p>", esc(line.trim()));
        }
        i += 1;
    }
    h
}

/// The DAG as an inline SVG: stages in columns by depth, coloured by status.
fn dag_svg(p: &Pipeline, status: &BTreeMap<&str, &crate::store::RunStage>) -> String {
    let order = Dag::new(p).order();
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &order {
        let d = p.stage(n).map_or(0, |s| {
            s.needs
                .iter()
                .filter_map(|u| depth.get(u.as_str()))
                .map(|d| d + 1)
                .max()
                .unwrap_or(0)
        });
        depth.insert(n.as_str(), d);
    }
    let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
    let mut pos: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    let (bw, bh, gx, gy) = (170.0, 36.0, 60.0, 14.0);
    for n in &order {
        let d = depth[n.as_str()];
        let r = rows.entry(d).or_insert(0);
        pos.insert(
            n.as_str(),
            (10.0 + d as f64 * (bw + gx), 10.0 + *r as f64 * (bh + gy)),
        );
        *r += 1;
    }
    let width = 20.0 + (rows.len() as f64) * (bw + gx);
    let height = 20.0 + rows.values().max().copied().unwrap_or(1) as f64 * (bh + gy);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"dag\" width=\"{width}\" height=\"{height}\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"11\">"
    );
    for st in &p.stages {
        let Some(&(x2, y2)) = pos.get(st.name.as_str()) else {
            continue;
        };
        for n in &st.needs {
            if let Some(&(x1, y1)) = pos.get(n.as_str()) {
                let _ = write!(
                    s,
                    "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>",
                    x1 + bw,
                    y1 + bh / 2.0,
                    x2,
                    y2 + bh / 2.0
                );
            }
        }
    }
    for st in &p.stages {
        let Some(&(x, y)) = pos.get(st.name.as_str()) else {
            continue;
        };
        let (fill, label) = match status.get(st.name.as_str()) {
            Some(r) => (
                match r.status.as_str() {
                    "ran" => "#dff0d8",
                    "cached" | "pulled" => "#e8eef7",
                    "failed" => "#f2dede",
                    _ => "#fcf8e3",
                },
                r.status.clone(),
            ),
            None => ("#ffffff", "not run".to_owned()),
        };
        let _ = write!(
            s,
            "<g><title>{0} ({1}): {2}</title><rect x=\"{x}\" y=\"{y}\" width=\"{bw}\" height=\"{bh}\" rx=\"4\" fill=\"{fill}\" stroke=\"#666\"/>\
             <text x=\"{tx}\" y=\"{ty1}\">{0}</text><text x=\"{tx}\" y=\"{ty2}\" fill=\"#555\">{1} · {2}</text></g>",
            esc(&st.name),
            esc(&st.kind),
            label,
            tx = x + 6.0,
            ty1 = y + 15.0,
            ty2 = y + 29.0
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::TableBuilder;

    #[test]
    fn a_table_with_a_pass_column_marks_each_row() {
        let t = TableBuilder::new()
            .str("quantity", &["c_2", "λ <q>"])
            .f64("eqlab", vec![2.0, 5.21420062996e-6])
            .bool("pass", vec![true, false])
            .build()
            .unwrap();
        let h = table_html(&t, "cmp-comparison").unwrap();
        assert!(
            h.starts_with("<table class=\"data\" id=\"table-cmp-comparison\">"),
            "{h}"
        );
        assert!(
            h.contains("<tr class=\"pass\"><td>c_2</td><td class=\"num\">2</td><td class=\"verdict\">PASS</td></tr>"),
            "{h}"
        );
        assert!(
            h.contains("<tr class=\"fail\"><td>λ &lt;q&gt;</td><td class=\"num\">5.21420062996e-6</td><td class=\"verdict\">FAIL</td></tr>"),
            "{h}"
        );
    }

    #[test]
    fn markdown_tables_become_html_tables() {
        let md = "Title line\n\n| quantity | eqlab | pass |\n|---|---:|---|\n| a | 1 | ✓ |\n| b | 2 | ✗ |\n";
        let h = markdown_html(md);
        assert_eq!(
            h,
            "<p>Title line</p><table class=\"data\"><tr><th>quantity</th><th>eqlab</th><th>pass</th></tr>\
             <tr class=\"pass\"><td>a</td><td>1</td><td class=\"verdict\">PASS</td></tr>\
             <tr class=\"fail\"><td>b</td><td>2</td><td class=\"verdict\">FAIL</td></tr></table>"
        );
        assert!(!h.contains("|---"));
    }
}
