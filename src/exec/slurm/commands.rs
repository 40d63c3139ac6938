//! Slurm's client commands as eqlab calls them (`sbatch --parsable`, `squeue`, `scancel`,
//! `scontrol show config`), through the command line, never FFI. No planning here.

use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::process::Command;

/// Runs a Slurm client command and returns its stdout; errors name the command and carry its
/// stderr. A missing command means Slurm is not installed.
pub fn slurm_cmd(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "Slurm is not installed here: `{}` was not found on PATH (--executor slurm submits \
             with sbatch and watches with squeue; run without --executor to compute locally)",
            cmd.get_program().to_string_lossy()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot start `{shown}`")),
    };
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cluster's `MaxArraySize` (from `scontrol show config`); this also checks that Slurm is
/// installed and its controller answers.
pub fn max_array_size() -> Result<usize> {
    let text = slurm_cmd(Command::new("scontrol").args(["show", "config"]))?;
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=')
            && k.trim() == "MaxArraySize"
        {
            return v
                .trim()
                .parse::<usize>()
                .map_err(|e| anyhow!("`scontrol show config` gives MaxArraySize = {v:?}: {e}"));
        }
    }
    Ok(1001) // Slurm's default
}

/// Quotes a string for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What Slurm says of one array task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `CANCELLED`, `TIMEOUT`, …
    pub state: String,
    /// Why it is pending (`Priority`, `Dependency`, `PartitionConfig`, …), `None` otherwise.
    pub reason: String,
}

/// States of a task that has ended (Slurm keeps them listed for `MinJobAge` seconds).
const ENDED: &[&str] = &[
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
];

/// Reasons for which a pending job will never start unless an administrator or the user
/// changes something: eqlab fails such jobs instead of waiting forever.
const NEVER: &[&str] = &[
    "PartitionConfig",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "BadConstraints",
    "InvalidAccount",
    "InvalidQOS",
    "AccountNotAllowed",
    "QOSNotAllowed",
    "DependencyNeverSatisfied",
];

impl TaskState {
    /// Whether the task is still queued or running.
    pub fn alive(&self) -> bool {
        !ENDED.contains(&self.state.as_str())
    }

    /// Whether Slurm will not start this pending task as things are.
    pub fn never_starts(&self) -> bool {
        self.state == "PENDING" && NEVER.contains(&self.reason.as_str())
    }

    /// Why a task that ended without a result did, in words (empty for a plain end).
    pub fn ended_why(&self) -> String {
        match self.state.as_str() {
            "CANCELLED" => " (it was cancelled: scancel or eqlab cancel)".into(),
            "TIMEOUT" => " (it hit its time limit: raise resources.time)".into(),
            "OUT_OF_MEMORY" => " (it ran out of memory: raise resources.mem)".into(),
            "NODE_FAIL" | "BOOT_FAIL" | "PREEMPTED" | "DEADLINE" => {
                format!(" (Slurm stopped it: {})", self.state)
            }
            _ => String::new(),
        }
    }
}

/// What Slurm lists of the array tasks of `ids` — pending, running, and those ended within
/// `MinJobAge` — by (job id, array task id).
pub fn task_states(ids: &[String]) -> Result<HashMap<(String, String), TaskState>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let text =
        slurm_cmd(Command::new("squeue").args(["-h", "-r", "--states=all", "-o", "%F %K %T %r"]))?;
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        if let (Some(job), Some(task)) = (f.next(), f.next())
            && wanted.contains(job)
        {
            let state = f.next().unwrap_or("UNKNOWN").to_owned();
            let reason = f.collect::<Vec<_>>().join(" ");
            out.insert(
                (job.to_owned(), task.to_owned()),
                TaskState { state, reason },
            );
        }
    }
    Ok(out)
}

/// The array tasks of `ids` still queued or running.
pub fn alive_tasks(ids: &[String]) -> Result<HashMap<(String, String), TaskState>> {
    let mut all = task_states(ids)?;
    all.retain(|_, t| t.alive());
    Ok(all)
}

/// Cancels jobs (a job that already ended is no error).
pub fn cancel_jobs(ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    slurm_cmd(Command::new("scancel").args(ids)).map(|_| ())
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_quoting() {
        assert_eq!(super::sh_quote("a b"), "'a b'");
        assert_eq!(super::sh_quote("it's"), r"'it'\''s'");
    }
}

#[cfg(test)]
mod state_tests {
    use super::TaskState;

    fn t(state: &str, reason: &str) -> TaskState {
        TaskState {
            state: state.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn ended_and_hopeless_tasks_are_told_apart() {
        assert!(t("PENDING", "Priority").alive());
        assert!(t("REQUEUED", "None").alive());
        assert!(!t("CANCELLED", "None").alive());
        assert!(t("PENDING", "PartitionConfig").never_starts());
        assert!(!t("PENDING", "Resources").never_starts());
        assert!(t("TIMEOUT", "None").ended_why().contains("resources.time"));
        assert_eq!(t("COMPLETED", "None").ended_why(), "");
    }
}
