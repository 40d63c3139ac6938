//! Every file under tests/malformed/ is a broken or hostile pipeline. `eqlab plan FILE` must
//! exit 2 within a time and memory limit, without a panic, and report what the file's header says:
//!
//! - `# expect: LINE: TEXT`: a problem reported at `FILE:LINE:` with TEXT on that line (LINE 0:
//!   TEXT anywhere in the output; LINE `arg`: a problem located on the command line, i.e. a line
//!   starting with `--set` or `EQLAB_`, never at a file position).
//! - `# count: N`: exactly N problems are reported (one message per problem, no consequences).
//! - `# forbid: TEXT`: TEXT appears nowhere in the output.
//! - `# args: ARGS`: extra command-line arguments (split at spaces).
//! - `# env: NAME=VALUE`: an environment variable for the run.

mod common;
use common::{Project, repo};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Wall-clock limit for one file.
const TIME_LIMIT: Duration = Duration::from_secs(30);
/// Address-space limit for one run, in KiB (`ulimit -v`).
const MEMORY_LIMIT_KIB: u64 = 4_000_000;

/// The outcome of one limited run.
struct Limited {
    code: Option<i32>,
    stderr: String,
    timed_out: bool,
}

/// Runs `eqlab --store STORE plan FILE ARGS` under the time and memory limits.
fn plan_limited(p: &Project, file: &Path, args: &[&str], env: &[(&str, &str)]) -> Limited {
    let err_path = p.path().join("stderr.txt");
    let err_file = std::fs::File::create(&err_path).expect("stderr file");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {MEMORY_LIMIT_KIB}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_eqlab"))
        .arg("--store")
        .arg(p.store())
        .arg("plan")
        .arg(file)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("EQLAB_MAX_INSTANCES")
        .stdout(Stdio::null())
        .stderr(Stdio::from(err_file))
        .current_dir(p.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn eqlab");
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            timed_out = true;
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Limited {
        code: status.and_then(|s| s.code()),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        timed_out,
    }
}

/// The problems in eqlab's error output: lines that start with the file or a command-line place.
fn problems<'a>(err: &'a str, file: &str) -> Vec<&'a str> {
    err.lines()
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .filter(|l| {
            l.starts_with(&format!("{file}:")) || l.starts_with("--set ") || l.starts_with("EQLAB_")
        })
        .collect()
}

/// Checks one file; the failures found.
fn check_file(p: &Project, f: &Path) -> Vec<String> {
    let name = f.display().to_string();
    let src = String::from_utf8_lossy(&std::fs::read(f).expect("read")).into_owned();
    let header = |tag: &str| -> Vec<String> {
        src.lines()
            .filter_map(|l| l.strip_prefix(tag))
            .map(str::to_owned)
            .collect()
    };
    let args: Vec<String> = header("# args: ")
        .iter()
        .flat_map(|a| a.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let env: Vec<(String, String)> = header("# env: ")
        .iter()
        .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = plan_limited(p, f, &args, &env);
    let err = &o.stderr;
    let mut failures = Vec::new();
    if o.timed_out {
        return vec![format!("{name}: no answer within {TIME_LIMIT:?}")];
    }
    if o.code != Some(2) || err.contains("panicked") || err.contains("has overflowed") {
        return vec![format!("{name}: exit {:?}\n{err}", o.code)];
    }
    let found = problems(err, &name);
    for line in header("# expect: ") {
        let Some((n, want)) = line.split_once(": ") else {
            failures.push(format!("{name}: bad expect header `{line}`"));
            continue;
        };
        let ok = match n {
            "0" => err.contains(want),
            "arg" => found
                .iter()
                .any(|l| !l.starts_with(&format!("{name}:")) && l.contains(want)),
            _ => {
                let prefix = format!("{name}:{n}:");
                found
                    .iter()
                    .any(|l| l.starts_with(&prefix) && l.contains(want))
            }
        };
        if !ok {
            failures.push(format!(
                "{name}: expected line {n} with `{want}`, got:\n{err}"
            ));
        }
    }
    for want in header("# count: ") {
        if want.trim().parse::<usize>().ok() != Some(found.len()) {
            failures.push(format!(
                "{name}: expected {want} problems, got {}:\n{err}",
                found.len()
            ));
        }
    }
    for bad in header("# forbid: ") {
        if err.contains(&bad) {
            failures.push(format!("{name}: `{bad}` must not appear, got:\n{err}"));
        }
    }
    failures
}

#[test]
fn every_malformed_pipeline_gets_a_located_error() {
    let dir = repo().join("tests/malformed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/malformed")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 100, "only {} malformed files", files.len());
    let p = Project::new();
    let mut failures = Vec::new();
    for f in &files {
        let src = std::fs::read(f).expect("read");
        assert!(
            String::from_utf8_lossy(&src).contains("# expect: "),
            "{}: no `# expect:` header",
            f.display()
        );
        failures.extend(check_file(&p, f));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}
