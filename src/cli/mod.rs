//! One file per verb of the `eqlab` command line (cargo's `commands/` is the model): each holds
//! the verb's clap arguments and its `exec`. Shared helpers live here; the library does the work.

/// `print!` to stdout that returns the write error (a closed pipe ends the verb quietly).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($t)*)?;
    }};
}

/// `println!` to stdout that returns the write error (a closed pipe ends the verb quietly).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($t)*)?;
    }};
}

pub mod cancel;
pub mod check;
pub mod explain;
pub mod gc;
pub mod graph;
pub mod hash;
pub mod kinds;
pub mod plan;
pub mod pull;
pub mod push;
pub mod remote;
pub mod report;
pub mod run;
pub mod schema;
pub mod show;
pub mod status;
pub mod worker;

use anyhow::{Result, anyhow};
use eqlab::config::{RemoteFlags, ResolvedRemote, resolve_remote};
use eqlab::spec::{self, LoadOptions, Override, Pipeline};
use eqlab::stages::Registry;
use eqlab::store::Store;
use eqlab::store::remote::Remote;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Whether an error comes from writing to a closed pipe (`eqlab kinds | head -1`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// How every verb loads pipeline files when `--max-instances` is given, set once by `main`
/// (otherwise the library's defaults and `EQLAB_MAX_INSTANCES` apply).
static LOAD_OPTIONS: OnceLock<LoadOptions> = OnceLock::new();

/// Sets the options of [`load`] from the global command-line arguments.
pub fn set_load_options(o: LoadOptions) {
    let _ = LOAD_OPTIONS.set(o);
}

/// The pipeline file and its `--set` overrides: the arguments of every verb that loads one.
#[derive(clap::Args)]
pub struct PipelineArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Override a value: params.NAME=VALUE, STAGE.PARAM=VALUE, or *.PARAM=VALUE for every stage
    /// whose kind has PARAM, e.g. '*.device=tch-cpu' (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<Override>,
}

impl PipelineArgs {
    /// Loads and validates the pipeline with the overrides applied.
    pub fn load(&self, registry: &Registry) -> Result<Pipeline> {
        load(&self.pipeline, registry, &self.set)
    }
}

/// Loads and validates a pipeline file with `--set` overrides applied.
pub fn load(path: &Path, registry: &Registry, set: &[Override]) -> Result<Pipeline> {
    match LOAD_OPTIONS.get() {
        Some(opts) => spec::load_with(path, registry, set, opts),
        None => spec::load(path, registry, set),
    }
    .map_err(|e| anyhow!("{e}"))
}

/// The remote-cache flags of the command line, set once by `main`.
static REMOTE_FLAGS: OnceLock<RemoteFlags> = OnceLock::new();

/// Sets the remote-cache flags every verb's [`open_store`] applies.
pub fn set_remote_flags(f: RemoteFlags) {
    let _ = REMOTE_FLAGS.set(f);
}

/// Whether `--remote` was given (with or without a URL): `gc` then collects the remote.
pub fn remote_flag_given() -> bool {
    REMOTE_FLAGS.get().is_some_and(|f| f.given)
}

/// The remote cache's settings for a command about `start` (a pipeline file, or `.`).
pub fn remote_settings(start: &Path) -> Result<Option<ResolvedRemote>> {
    resolve_remote(REMOTE_FLAGS.get().unwrap_or(&RemoteFlags::default()), start)
}

/// Opens the store at `dir`, with the remote cache configured for `start` (a pipeline file,
/// or `.`) behind it, if any and not `off`.
pub fn open_store(dir: &Path, start: &Path) -> Result<Store> {
    let store = Store::open(dir)?;
    match remote_settings(start)? {
        Some(r) if r.mode.value != eqlab::store::remote::Mode::Off => {
            Ok(store.with_remote(Remote::open(&r.spec())?))
        }
        _ => Ok(store),
    }
}

/// Opens the store at `dir` for a verb that only reads it. With no store there and no remote
/// cache to read from, a verb that `needs` stored results (show, report) fails before creating
/// anything, naming `--store`; the others (plan, explain) say that every stage is new, so a
/// mistyped `--store` is seen at once.
pub fn open_store_to_read(dir: &Path, start: &Path, needs: bool) -> Result<Store> {
    let remote =
        remote_settings(start)?.is_some_and(|r| r.mode.value != eqlab::store::remote::Mode::Off);
    if !remote && !dir.join("records").is_dir() {
        if needs {
            existing_store(dir)?;
        }
        eqlab::errln!(
            "note: no store at {} yet: every stage is new (another store: --store DIR or \
             EQLAB_STORE)",
            dir.display()
        );
    }
    open_store(dir, start)
}

/// Errors unless `dir` is a store already (verbs that only read one must not create it).
pub fn existing_store(dir: &Path) -> Result<()> {
    if dir.join("records").is_dir() {
        return Ok(());
    }
    Err(anyhow!(
        "no store at {}: nothing has run into it yet (`eqlab run PIPELINE` computes the \
         results; the store of another run: --store DIR or EQLAB_STORE)",
        dir.display()
    ))
}

/// Prints, once at the end of a verb, that the remote cache failed and the verb went on
/// without it.
pub fn warn_remote_trouble(store: &Store) {
    if let Some(line) = eqlab::store::sync::trouble_line(store) {
        eqlab::errln!("warning: {line}");
    }
}

/// A spinner counting results for `push` and `pull` (terminals only).
pub fn transfer_bar(progress: bool, verb: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !(progress && std::io::stderr().is_terminal()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    let style =
        indicatif::ProgressStyle::with_template("{spinner} {prefix} {pos} results {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_prefix(verb.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Exit status of `push`/`pull`: 1 when the remote failed, a result was damaged or differs,
/// or a stage's parameters are invalid; 0 otherwise (stages without a result are not errors).
pub fn transfer_exit(t: &eqlab::exec::transfer::Transfer, store: &Store) -> std::process::ExitCode {
    let remote_failed = store.remote().is_some_and(|r| r.trouble().is_some());
    if remote_failed || !t.damaged.is_empty() || !t.differs.is_empty() || !t.errors.is_empty() {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}
