//! `eqlab gc`: delete objects no record references, records that fail verification, set-aside
//! records, and (with --older-than) old records that no pipeline file still uses; with
//! `--remote`, unreferenced objects of the remote cache instead.

use anyhow::Result;
use eqlab::store::gc::{gc, gc_remote};
use eqlab::store::sync::no_remote;
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `eqlab gc`.
#[derive(clap::Args)]
#[command(after_help = "The remote cache:\n  \
`eqlab gc --remote [URL]` collects the remote cache (the URL given, or EQLAB_REMOTE's, or \
eqlab.toml's) instead of the local store: it deletes objects (cas/) that no record (ac/) on the remote references and \
that are older than --grace, so an upload in progress (objects first, record last) is never cut \
short. Records are expired by the bucket itself with a lifecycle rule on the ac/ and meta/ \
prefixes, e.g. for AWS (30 days):\n\n    \
aws s3api put-bucket-lifecycle-configuration --bucket BUCKET --lifecycle-configuration \
'{\"Rules\":[{\"ID\":\"eqlab-records\",\"Status\":\"Enabled\",\"Filter\":{\"Prefix\":\"PREFIX/ac/\"},\"Expiration\":{\"Days\":30}},\
{\"ID\":\"eqlab-metas\",\"Status\":\"Enabled\",\"Filter\":{\"Prefix\":\"PREFIX/meta/\"},\"Expiration\":{\"Days\":30}}]}'\n\n\
then `eqlab gc --remote` regularly (e.g. weekly) deletes the objects only expired records used. \
Never expire cas/ by age: a live record would point at a missing object (detected, and \
recomputed, but a waste).")]
pub struct Args {
    /// Also delete records older than this (e.g. 30d, 12h), except the current result of each
    /// stage of each pipeline file (the key its latest run used).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Option<std::time::Duration>,
    /// Report what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remote objects younger than this are kept even when unreferenced (uploads in progress).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "24h")]
    pub grace: std::time::Duration,
}

/// Collects garbage and prints what was (or would be) deleted.
pub fn exec(a: Args, store_dir: &Path) -> Result<ExitCode> {
    let verb = if a.dry_run { "would delete" } else { "deleted" };
    if super::remote_flag_given() {
        let store = super::open_store(store_dir, Path::new("."))?;
        let remote = store.remote().ok_or_else(no_remote)?;
        if remote.mode() != eqlab::store::remote::Mode::ReadWrite && !a.dry_run {
            anyhow::bail!(
                "the remote cache {} is in {} mode: gc needs read-write (or --dry-run)",
                remote.url(),
                remote.mode()
            );
        }
        let r = gc_remote(remote, a.grace, a.dry_run)?;
        outln!(
            "{}: {verb} {} unreferenced objects ({:.1} MB); {} objects kept ({} younger than the grace period); {} records ({} unreadable)",
            remote.url(),
            r.objects,
            r.bytes as f64 / 1e6,
            r.kept_objects,
            r.young_objects,
            r.records,
            r.bad_records
        );
        return Ok(ExitCode::SUCCESS);
    }
    let store = eqlab::store::Store::open(store_dir)?;
    let r = gc(&store, a.older_than, a.dry_run)?;
    outln!(
        "{verb} {} records and {} objects ({:.1} MB); {} objects kept",
        r.records,
        r.objects,
        r.bytes as f64 / 1e6,
        r.kept_objects
    );
    Ok(ExitCode::SUCCESS)
}
