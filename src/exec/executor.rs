//! The executor interface: what `eqlab run` asks of whatever computes the stages. Planning,
//! keys and the store are shared; an executor only decides where the stages that must run are
//! computed — in this process's threads ([`Local`]) or as cluster jobs (`slurm::Slurm`). A
//! further back end (HyperQueue, Kubernetes Jobs, REAPI) is one more implementation.

use super::RunOptions;
use crate::spec::Pipeline;
use crate::stages::Registry;
use crate::store::{RunLog, Store};
use anyhow::Result;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Computes a pipeline's stages that have no stored result; reuses the others.
pub trait Executor {
    /// A short name for messages (`local`, `slurm`).
    fn name(&self) -> &'static str;

    /// Runs the pipeline and returns the run log (also saved in the store). Setting `cancel`
    /// (Ctrl-C) stops the run; nothing partial is ever visible in the store.
    fn run(
        &self,
        p: &Pipeline,
        registry: &Registry,
        store: &Store,
        opts: &RunOptions,
        cancel: Arc<AtomicBool>,
    ) -> Result<RunLog>;
}

/// The local executor: threads of this process, up to `-j` stages at once (see [`super::run`]).
pub struct Local;

impl Executor for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    fn run(
        &self,
        p: &Pipeline,
        registry: &Registry,
        store: &Store,
        opts: &RunOptions,
        cancel: Arc<AtomicBool>,
    ) -> Result<RunLog> {
        super::run(p, registry, store, opts, cancel)
    }
}
