//! Helpers for integration tests: a temporary project (store + pipeline files) and a runner
//! for the real `eqlab` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary directory with its own store.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("artifacts")
    }

    /// Writes a pipeline file and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write pipeline");
        p
    }

    /// The eqlab command with this project's store.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_eqlab"));
        c.arg("--store")
            .arg(self.store())
            .args(args)
            .current_dir(self.dir.path());
        c
    }

    /// Runs eqlab to completion.
    pub fn eqlab(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run eqlab")
    }

    /// Runs eqlab, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.eqlab(args);
        assert!(
            o.status.success(),
            "eqlab {args:?} failed:\n{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// Run logs, oldest first.
    pub fn runs(&self) -> Vec<serde_json::Value> {
        read_json_dir(&self.store().join("runs"))
    }

    /// Stage name → status in the latest run.
    pub fn last_run(&self) -> std::collections::BTreeMap<String, String> {
        let runs = self.runs();
        let last = runs.last().expect("a run log");
        last["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["stage"].as_str().unwrap().to_owned(),
                    s["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Names of the stages that ran in the latest run.
    pub fn ran(&self) -> Vec<String> {
        self.last_run()
            .into_iter()
            .filter(|(_, s)| s == "ran")
            .map(|(n, _)| n)
            .collect()
    }

    /// Waits (up to a minute) until the store holds at least `n` records.
    pub fn wait_for_records(&self, n: usize) {
        let t = std::time::Instant::now();
        while self.records().len() < n && t.elapsed() < std::time::Duration::from_secs(60) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The stored record of stage (instance) `stage` (found through its meta, which names the
    /// stage); panics if there is none.
    pub fn record(&self, stage: &str) -> serde_json::Value {
        let path = self.record_path(stage);
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    /// The file of the stored record of stage (instance) `stage`; panics if there is none.
    pub fn record_path(&self, stage: &str) -> PathBuf {
        let dir = self.store().join("meta");
        let mut metas: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
                let finished = m["finished"].as_str()?.to_owned();
                (m["stage"] == stage).then_some((finished, p))
            })
            .collect();
        metas.sort();
        let (_, meta) = metas
            .pop()
            .unwrap_or_else(|| panic!("no record of {stage}"));
        self.store().join("records").join(meta.file_name().unwrap())
    }

    /// Starts eqlab with its stdout and stderr piped (no backtraces).
    fn spawn_piped(&self, args: &[&str]) -> std::process::Child {
        self.cmd(args)
            .env("RUST_BACKTRACE", "0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run eqlab")
    }

    /// Runs eqlab with its stdout closed before it writes (as after `| head` has exited);
    /// returns the exit code and stderr.
    pub fn with_closed_stdout(&self, args: &[&str]) -> (Option<i32>, String) {
        use std::io::Read;
        let mut child = self.spawn_piped(args);
        drop(child.stdout.take());
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            e.read_to_string(&mut err).expect("read stderr");
        }
        (child.wait().expect("wait for eqlab").code(), err)
    }

    /// Runs eqlab with both stdout and stderr closed before it writes (as after
    /// `eqlab … 2>&1 | head` has exited); returns the exit code.
    pub fn with_closed_output(&self, args: &[&str]) -> Option<i32> {
        let mut child = self.spawn_piped(args);
        drop(child.stdout.take());
        drop(child.stderr.take());
        child.wait().expect("wait for eqlab").code()
    }

    /// Every stored record computed by stage (instance) `stage` (found through the metas).
    pub fn records_of(&self, stage: &str) -> Vec<serde_json::Value> {
        let dir = self.store().join("meta");
        std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|m| {
                std::fs::read(m)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .is_some_and(|v| v["stage"] == stage)
            })
            .filter_map(|m| {
                let r = self.store().join("records").join(m.file_name()?);
                serde_json::from_slice(&std::fs::read(r).ok()?).ok()
            })
            .collect()
    }

    /// Every record in the store, parsed.
    pub fn records(&self) -> Vec<serde_json::Value> {
        read_json_dir(&self.store().join("records"))
    }
}

/// Every JSON file of a directory, parsed, in file-name order.
fn read_json_dir(dir: &Path) -> Vec<serde_json::Value> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The repository root (for shipped pipelines and data).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Sends one unsigned HTTP request (moto accepts any credentials) and returns the status.
pub fn http(endpoint: &str, method: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the S3 server");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
