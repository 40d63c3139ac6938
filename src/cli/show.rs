//! `eqlab show`: a stage's stored outputs — its scalars and the head of its tables — or one
//! output exported to a file.

use anyhow::{Result, anyhow, bail};
use eqlab::exec::plan::{Planned, plan, reason};
use eqlab::spec::{Override, Pipeline};
use eqlab::stages::Registry;
use eqlab::store::Store;
use eqlab::store::sync::Pulled;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `eqlab show`.
#[derive(clap::Args)]
pub struct Args {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// The stage.
    pub stage: String,
    /// One output (table or file) to show; all when omitted.
    pub output: Option<String>,
    /// Rows to print per table.
    #[arg(long, default_value_t = 10)]
    pub rows: usize,
    /// Write the output (table as CSV, file as is) to this path instead of printing.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Override a value: params.NAME=VALUE or STAGE.PARAM=VALUE.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<Override>,
}

/// Prints (or exports) the stored outputs of the stage's current key.
pub fn exec(a: Args, store_dir: &Path, registry: &Registry) -> Result<ExitCode> {
    let p = super::load(&a.pipeline, registry, &a.set)?;
    let store = super::open_store_to_read(store_dir, &a.pipeline, true)?;
    show(
        &p,
        registry,
        &store,
        &a.stage,
        a.output.as_deref(),
        a.rows,
        a.export.as_deref(),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn show(
    p: &Pipeline,
    registry: &Registry,
    store: &Store,
    stage: &str,
    output: Option<&str>,
    rows: usize,
    export: Option<&Path>,
) -> Result<()> {
    eqlab::exec::one_instance(p, stage)?;
    let planned = plan(p, registry, store)?;
    let (_, pl) = planned
        .iter()
        .find(|(n, _)| n == stage)
        .ok_or_else(|| anyhow!("no stage '{stage}' in {}", p.file.display()))?;
    let prep = match pl {
        Planned::Cached(prep) => prep,
        // On the remote only: bring it in, then show it like a local result.
        Planned::Remote(prep) => match store.pull(&prep.hash)? {
            Pulled::Hit(..) => prep,
            Pulled::Damaged(why) => bail!("the remote result of stage '{stage}' is damaged: {why}"),
            Pulled::Miss => bail!(
                "the remote result of stage '{stage}' could not be downloaded{}",
                eqlab::store::sync::trouble_line(store)
                    .map(|t| format!(": {t}"))
                    .unwrap_or_default()
            ),
        },
        _ => bail!(
            "stage '{stage}' has no stored result for its current parameters and inputs ({}); run `eqlab run {} --only {stage}` first",
            reason(pl).1,
            p.file.display()
        ),
    };
    let r = store
        .record(&prep.hash)?
        .ok_or_else(|| anyhow!("the stored result of stage '{stage}' vanished while reading it"))?;
    let meta = store.meta(&prep.hash);
    if let Some(o) = output {
        if let Some(t) = r.tables.get(o) {
            let table = store.get_table(&t.object)?;
            return match export {
                Some(path) => {
                    std::fs::write(path, eqlab::table::to_csv(&table, usize::MAX)?)?;
                    outln!("wrote {} rows to {}", table.num_rows(), path.display());
                    Ok(())
                }
                None => {
                    outln!(
                        "{o}: {} rows\n{}",
                        table.num_rows(),
                        eqlab::table::to_csv(&table, rows)?
                    );
                    Ok(())
                }
            };
        }
        if let Some(f) = r.files.get(o) {
            let bytes = store.get_file(&f.object, &f.ext)?;
            let path = export.map_or_else(
                || PathBuf::from(format!("{stage}-{o}.{}", f.ext)),
                Path::to_path_buf,
            );
            std::fs::write(&path, bytes)?;
            outln!("wrote {} ({} bytes)", path.display(), f.bytes);
            return Ok(());
        }
        let names: Vec<&str> = r
            .tables
            .keys()
            .chain(r.files.keys())
            .map(String::as_str)
            .collect();
        bail!(
            "stage '{stage}' has no output '{o}' (outputs: {})",
            names.join(", ")
        );
    }
    match meta {
        Some(m) => outln!(
            "stage {stage} ({}), key {}, computed {} in {:.2}s",
            r.components.kind,
            r.key,
            m.finished,
            m.elapsed_s
        ),
        None => outln!("stage {stage} ({}), key {}", r.components.kind, r.key),
    }
    if !r.scalars.is_empty() {
        outln!("scalars:");
        for (k, v) in &r.scalars {
            outln!("  {k:<28} {}", eqlab::table::fmt_f64(*v));
        }
    }
    for (k, t) in &r.tables {
        if k == "metrics" {
            continue;
        }
        let table = store.get_table(&t.object)?;
        outln!(
            "table {k}: {} rows (first {})\n{}",
            table.num_rows(),
            rows.min(table.num_rows()),
            eqlab::table::to_csv(&table, rows)?
        );
    }
    for (k, f) in &r.files {
        outln!(
            "file {k}: {} bytes ({}) at {}",
            f.bytes,
            f.ext,
            store.file_path(&f.object, &f.ext).display()
        );
    }
    Ok(())
}
