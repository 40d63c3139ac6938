//! `eqlab remote`: the remote cache's resolved settings, where each came from, and an access
//! check. Secrets are never printed.

use anyhow::Result;
use eqlab::config::Setting;
use eqlab::store::remote::Remote;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `eqlab remote`.
#[derive(clap::Args)]
#[command(
    after_help = "Settings, highest priority first: the --remote, --remote-mode and \
--remote-required flags; EQLAB_REMOTE, EQLAB_REMOTE_MODE, EQLAB_REMOTE_REQUIRED; the [remote] \
table of the nearest eqlab.toml (next to the pipeline or in a parent directory):\n\n  \
[remote]\n  url = \"s3://lab-cache/eqlab\"     # or file:///shared/eqlab-cache\n  \
mode = \"read-write\"              # read-write | read | off\n  \
endpoint = \"http://127.0.0.1:9000\" # S3-compatible servers; else AWS_ENDPOINT_URL\n  \
region = \"us-east-1\"              # else AWS_REGION, AWS_DEFAULT_REGION, the profile\n\n\
Credentials come only from the standard AWS variables (AWS_ACCESS_KEY_ID, \
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or the profile files (~/.aws/credentials, \
AWS_PROFILE), never from eqlab.toml.\n\nLayout on the remote: cas/<blake3> objects, ac/<key> \
records (created last, never overwritten), meta/<key> who computed them.\n\nExit status: 0 \
when the remote is reachable with the access its mode needs, 1 when not, 2 on a \
configuration error."
)]
pub struct Args {
    /// A pipeline file or directory whose eqlab.toml to use (default: the current directory).
    pub path: Option<PathBuf>,
}

fn line(name: &str, s: &Setting<impl Display>) -> Result<()> {
    outln!("  {name:<12} {}   ({})", s.value, s.source);
    Ok(())
}

/// Prints the settings and checks access.
pub fn exec(a: Args, store_dir: &Path) -> Result<ExitCode> {
    let start = a.path.unwrap_or_else(|| PathBuf::from("."));
    let Some(r) = super::remote_settings(&start)? else {
        return Err(eqlab::store::sync::no_remote());
    };
    outln!("remote cache");
    line("url", &r.url)?;
    line("mode", &r.mode)?;
    line("required", &r.required)?;
    match &r.endpoint {
        Some(e) => line("endpoint", e)?,
        None => outln!("  {:<12} AWS's own (no endpoint set)", "endpoint"),
    }
    match &r.region {
        Some(e) => line("region", e)?,
        None => outln!("  {:<12} not set (us-east-1)", "region"),
    }
    line("credentials", &r.credentials)?;
    if let Some(f) = &r.project_file {
        outln!("  {:<12} {}", "project file", f.display());
    }
    outln!("  {:<12} {}", "local store", store_dir.display());
    if r.mode.value == eqlab::store::remote::Mode::Off {
        outln!("the remote is off: nothing to check");
        return Ok(ExitCode::SUCCESS);
    }
    let remote = Remote::open(&r.spec())?;
    match remote.check_access() {
        Ok(what) => {
            outln!("ok: {what}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eqlab::errln!("error: {e:#}");
            Ok(ExitCode::from(1))
        }
    }
}
