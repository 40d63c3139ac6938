//! The project file `eqlab.toml` and how its settings combine with the command line and the
//! environment.
//!
//! The file is found like `.dvc/config` or `Cargo.toml`: in the pipeline file's directory or
//! the nearest parent that has one (the current directory for verbs without a pipeline). It
//! holds settings that belong to a project and a machine, never to a pipeline's results, and
//! never secrets (credentials come from the standard AWS variables and profile files, see
//! `store::remote`):
//!
//! ```toml
//! [remote]
//! url = "s3://lab-cache/eqlab"   # or file:///shared/eqlab-cache
//! mode = "read-write"            # read-write | read | off
//! endpoint = "http://127.0.0.1:9000"   # S3-compatible servers (MinIO, Ceph, R2, ...)
//! region = "us-east-1"
//!
//! [executor.slurm]               # eqlab run --executor slurm
//! partition = "gpu"
//! account = "lab"
//! qos = "normal"
//! sbatch_flags = ["--constraint=avx2"]
//! max_jobs = 50                  # array tasks running at once, per job array
//! pack = 10                      # instances per array task
//! ```
//!
//! A command-line flag beats an `EQLAB_*` variable, which beats the file; every resolved value
//! remembers where it came from ([`Source`]) so `eqlab remote` can say. Parsing lives here; what
//! the remote does lives in `store::remote`.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// The name of the project file.
pub const FILE_NAME: &str = "eqlab.toml";

/// The project file's contents (every table optional; unknown keys are errors).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    /// `[remote]`: the shared remote cache.
    pub remote: Option<RemoteSection>,
    /// `[executor.*]`: settings of the cluster executors.
    pub executor: Option<ExecutorSection>,
}

/// The `[executor]` table: one sub-table per cluster executor.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    /// `[executor.slurm]`.
    pub slurm: Option<SlurmSection>,
}

/// The `[executor.slurm]` table: how `eqlab run --executor slurm` submits (cluster settings
/// belong to the project and the machine, not to the pipeline, so pipelines stay portable).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSection {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--qos`.
    pub qos: Option<String>,
    /// Further `sbatch` flags, one per element (e.g. `["--constraint=avx2"]`).
    #[serde(default)]
    pub sbatch_flags: Vec<String>,
    /// Most array tasks of one job array running at once (`--array=…%K`); none by default.
    #[serde(default, deserialize_with = "at_least_one")]
    pub max_jobs: Option<std::num::NonZeroU32>,
    /// Instances per array task (cheap stages: fewer, longer jobs); 1 by default.
    #[serde(default, deserialize_with = "at_least_one")]
    pub pack: Option<std::num::NonZeroU32>,
    /// How often the submitter looks at the store and `squeue`, in milliseconds (default 500).
    pub poll_ms: Option<u64>,
    /// Whether the nodes see this machine's files (the store, the pipeline, its input files);
    /// true by default. With `false`, jobs work through the remote cache (which must be
    /// configured and writable): the pipeline and its input files travel through it, each
    /// node keeps its own store in `${TMPDIR:-/tmp}/eqlab-node-store-<uid>`, and results come back
    /// as pulls.
    pub shared_fs: Option<bool>,
    /// The `eqlab` binary on the nodes (default: the path of the one that submits).
    pub eqlab: Option<PathBuf>,
}

/// A count that must be at least 1 (the error names the rule; toml adds the line).
fn at_least_one<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<std::num::NonZeroU32>, D::Error> {
    let n = u32::deserialize(d)?;
    std::num::NonZeroU32::new(n)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("must be at least 1, not {n}")))
}

/// The `[executor.slurm]` settings for a command about `start` (the pipeline file), and the
/// project file they came from; defaults when there is no file or no table.
pub fn slurm_settings(start: &Path) -> Result<(SlurmSection, Option<PathBuf>)> {
    let Some(file) = find(start) else {
        return Ok((SlurmSection::default(), None));
    };
    let s = load(&file)?
        .executor
        .and_then(|e| e.slurm)
        .unwrap_or_default();
    Ok((s, Some(file)))
}

/// The `[remote]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSection {
    /// Where the cache lives: `s3://bucket/prefix` or `file:///path`.
    pub url: Option<String>,
    /// `read-write` (default), `read` or `off`.
    pub mode: Option<String>,
    /// Endpoint of an S3-compatible server (otherwise `AWS_ENDPOINT_URL` or AWS's own).
    pub endpoint: Option<String>,
    /// Region (otherwise `AWS_REGION` / `AWS_DEFAULT_REGION` or the profile's).
    pub region: Option<String>,
}

/// Where a resolved setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag (its name).
    Flag(&'static str),
    /// An environment variable (its name).
    Env(String),
    /// The project file (its path).
    File(PathBuf),
    /// An AWS profile file (its path and profile).
    Profile(PathBuf, String),
    /// eqlab's default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(n) => write!(f, "command line {n}"),
            Source::Env(v) => write!(f, "environment {v}"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Profile(p, name) => write!(f, "{} [{name}]", p.display()),
            Source::Default => write!(f, "default"),
        }
    }
}

/// A setting's value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Its origin.
    pub source: Source,
}

impl<T> Setting<T> {
    /// A value from `source`.
    pub fn new(value: T, source: Source) -> Self {
        Setting { value, source }
    }
}

/// The nearest `eqlab.toml` at or above `start` (a file's directory or a directory).
pub fn find(start: &Path) -> Option<PathBuf> {
    let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    let dir = if start.is_dir() {
        start.as_path()
    } else {
        start.parent()?
    };
    dir.ancestors()
        .map(|d| d.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// Reads and parses a project file; errors name the file, line and key.
pub fn load(path: &Path) -> Result<ProjectFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the project file {}", path.display()))?;
    parse(&text).with_context(|| format!("in the project file {}", path.display()))
}

/// Parses project-file text (see the module docs for the keys).
pub fn parse(text: &str) -> Result<ProjectFile> {
    match toml::from_str::<ProjectFile>(text) {
        Ok(f) => Ok(f),
        Err(e) => {
            let at = e.span().map(|s| {
                let start = s.start.min(text.len());
                let line = text[..start].matches('\n').count() + 1;
                let source = text[text[..start].rfind('\n').map_or(0, |i| i + 1)..]
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim();
                format!("line {line} (`{source}`): ")
            });
            bail!("{}{}", at.unwrap_or_default(), e.message())
        }
    }
}

/// The remote settings given on the command line (each `None` when not given).
#[derive(Debug, Clone, Default)]
pub struct RemoteFlags {
    /// `--remote URL`.
    pub url: Option<String>,
    /// Whether `--remote` was given at all (with or without a URL).
    pub given: bool,
    /// `--remote-mode MODE`.
    pub mode: Option<crate::store::remote::Mode>,
    /// `--remote-required`.
    pub required: bool,
}

/// The remote cache's settings after flags, `EQLAB_*` variables, `eqlab.toml` and the AWS
/// environment and profile files, each with its source (secrets are never part of it).
#[derive(Debug, Clone)]
pub struct ResolvedRemote {
    /// Where the cache lives.
    pub url: Setting<String>,
    /// What this process may do.
    pub mode: Setting<crate::store::remote::Mode>,
    /// Whether a failure stops the command.
    pub required: Setting<bool>,
    /// S3 endpoint, if not AWS's.
    pub endpoint: Option<Setting<String>>,
    /// S3 region, if set anywhere.
    pub region: Option<Setting<String>>,
    /// Where the credentials come from (never the credentials themselves).
    pub credentials: Setting<String>,
    /// The project file that was read, if any.
    pub project_file: Option<PathBuf>,
}

impl ResolvedRemote {
    /// What `store::remote::Remote::open` needs.
    pub fn spec(&self) -> crate::store::remote::Spec {
        let (profile, _) = crate::store::remote::aws_profile();
        crate::store::remote::Spec {
            url: self.url.value.clone(),
            mode: self.mode.value,
            required: self.required.value,
            endpoint: self.endpoint.as_ref().map(|s| s.value.clone()),
            region: self.region.as_ref().map(|s| s.value.clone()),
            profile,
        }
    }
}

/// The first of `vars` that is set (and not empty), with its name.
fn env_setting(vars: &[&str]) -> Option<Setting<String>> {
    vars.iter().find_map(|v| {
        std::env::var(v)
            .ok()
            .filter(|x| !x.is_empty())
            .map(|x| Setting::new(x, Source::Env((*v).to_owned())))
    })
}

/// Resolves the remote cache for a command run on `start` (the pipeline file, or the current
/// directory): `Ok(None)` when no URL is configured anywhere. Errors: an unreadable or invalid
/// `eqlab.toml` (file, line, key), an unknown mode.
pub fn resolve_remote(flags: &RemoteFlags, start: &Path) -> Result<Option<ResolvedRemote>> {
    use crate::store::remote::Mode;
    let project_file = find(start);
    let section = match &project_file {
        Some(p) => load(p)?.remote.unwrap_or_default(),
        None => RemoteSection::default(),
    };
    let from_file = |v: &Option<String>| {
        v.clone()
            .map(|x| Setting::new(x, Source::File(project_file.clone().unwrap_or_default())))
    };
    let url = flags
        .url
        .clone()
        .map(|u| Setting::new(u, Source::Flag("--remote")))
        .or_else(|| env_setting(&["EQLAB_REMOTE"]))
        .or_else(|| from_file(&section.url));
    let Some(url) = url else {
        return Ok(None);
    };
    let mode_text = env_setting(&["EQLAB_REMOTE_MODE"]).or_else(|| from_file(&section.mode));
    let mode = match (flags.mode, mode_text) {
        (Some(m), _) => Setting::new(m, Source::Flag("--remote-mode")),
        (None, Some(t)) => {
            let m: Mode = t
                .value
                .parse()
                .map_err(|e: String| anyhow::anyhow!("{e} (from {})", t.source))?;
            Setting::new(m, t.source)
        }
        (None, None) => Setting::new(Mode::ReadWrite, Source::Default),
    };
    let required = if flags.required {
        Setting::new(true, Source::Flag("--remote-required"))
    } else if let Some(v) = env_setting(&["EQLAB_REMOTE_REQUIRED"]) {
        let on = !matches!(v.value.as_str(), "0" | "false" | "no");
        Setting::new(on, v.source)
    } else {
        Setting::new(false, Source::Default)
    };
    let endpoint =
        from_file(&section.endpoint).or_else(|| env_setting(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]));
    let (profile, profile_region) = crate::store::remote::aws_profile();
    let region = from_file(&section.region)
        .or_else(|| env_setting(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
        .or_else(|| profile_region.map(|(r, s)| Setting::new(r, s)));
    let credentials = if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        Setting::new(
            "access key from the environment".to_owned(),
            Source::Env("AWS_ACCESS_KEY_ID".into()),
        )
    } else if profile.is_some() {
        let p = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
        Setting::new(format!("AWS profile '{p}'"), Source::Default)
    } else {
        Setting::new(
            "none found: AWS instance or container credentials, if any".to_owned(),
            Source::Default,
        )
    };
    Ok(Some(ResolvedRemote {
        url,
        mode,
        required,
        endpoint,
        region,
        credentials,
        project_file,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_table_parses_and_unknown_keys_name_their_line() {
        let f = parse("[remote]\nurl = \"s3://b/p\"\nmode = \"read\"\n").unwrap();
        let r = f.remote.unwrap();
        assert_eq!(r.url.as_deref(), Some("s3://b/p"));
        assert_eq!(r.mode.as_deref(), Some("read"));
        let e = parse("[remote]\nurl = \"s3://b/p\"\nsecret = \"x\"\n").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("line 3") && msg.contains("secret"), "{msg}");
        let e = parse("[remote\n").unwrap_err();
        assert!(format!("{e:#}").contains("line 1"), "{e:#}");
    }

    #[test]
    fn an_executor_slurm_table_parses_and_unknown_keys_name_their_line() {
        let f = parse(
            "[executor.slurm]\npartition = \"debug\"\nsbatch_flags = [\"--exclusive\"]\npack = 4\n",
        )
        .unwrap();
        let s = f.executor.unwrap().slurm.unwrap();
        assert_eq!(s.partition.as_deref(), Some("debug"));
        assert_eq!(s.sbatch_flags, ["--exclusive"]);
        assert_eq!(s.pack.map(|n| n.get()), Some(4));
        let e = parse("[executor.slurm]\npartition = \"x\"\nqueue = \"y\"\n").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("line 3") && msg.contains("queue"), "{msg}");
        for (key, line) in [("pack", 3), ("max_jobs", 2)] {
            let text = if key == "pack" {
                "[executor.slurm]\nmax_jobs = 2\npack = 0\n"
            } else {
                "[executor.slurm]\nmax_jobs = 0\npack = 2\n"
            };
            let msg = format!("{:#}", parse(text).unwrap_err());
            assert!(
                msg.contains(&format!("line {line} (`{key} = 0`)"))
                    && msg.contains("must be at least 1"),
                "{msg}"
            );
        }
    }

    #[test]
    fn the_nearest_project_file_is_found_walking_up() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("p.yaml"), "x").unwrap();
        assert_eq!(find(&sub.join("p.yaml")), None);
        std::fs::write(d.path().join("a").join(FILE_NAME), "").unwrap();
        assert_eq!(
            find(&sub.join("p.yaml")),
            Some(d.path().join("a").join(FILE_NAME))
        );
    }
}
