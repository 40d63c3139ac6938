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

/// The (job id, array task id) pairs of `ids` that Slurm still lists, with their state
/// (`PENDING`, `RUNNING`, `REQUEUED`, …).
pub fn alive_tasks(ids: &[String]) -> Result<HashMap<(String, String), String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let text = slurm_cmd(Command::new("squeue").args(["-h", "-r", "-o", "%F %K %T"]))?;
    let mut alive = HashMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        if let (Some(job), Some(task)) = (f.next(), f.next())
            && wanted.contains(job)
        {
            let state = f.next().unwrap_or("UNKNOWN").to_owned();
            alive.insert((job.to_owned(), task.to_owned()), state);
        }
    }
    Ok(alive)
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
