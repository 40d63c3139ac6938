//! The remote cache against a real S3-compatible server (moto) on loopback: sharing between
//! stores, damage on the remote, concurrent writers, a server that stops mid-run, read-only
//! mode, and a writer killed mid-upload.
//!
//! `.ci/run` starts moto and exports `EQLAB_TEST_S3_ENDPOINT` (the shared server) and
//! `EQLAB_TEST_MOTO_SERVER` (its binary, for tests that need a server of their own). Outside CI
//! a `moto_server` on the PATH is used; without one these tests are SKIPPED, loudly, and under
//! `CI=true` that is a failure.

mod common;
use common::{Project, http, repo, text};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An S3 server for one test: the shared one (a fresh prefix) or a private process.
struct S3 {
    endpoint: String,
    url: String,
    child: Option<Child>,
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

static N: AtomicUsize = AtomicUsize::new(0);
const BUCKET: &str = "eqlab-test";

fn moto_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EQLAB_TEST_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("moto_server"))
        .find(|p| p.is_file())
}

/// Skips (returns `None`) outside CI when there is no server; fails under CI.
fn absent(why: &str) -> Option<S3> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {why}: .ci/run must install and start moto (see .ci/run)"
    );
    eprintln!(
        "\n*** SKIPPED: {why}; install moto (pip install 'moto[server]') or run .ci/run ***\n"
    );
    None
}

fn wait_until_up(endpoint: &str) -> bool {
    let addr = endpoint.trim_start_matches("http://");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect(addr).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A moto process of this test's own.
fn private_server() -> Option<S3> {
    let Some(bin) = moto_binary() else {
        return absent("no moto_server binary (EQLAB_TEST_MOTO_SERVER or PATH)");
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut s = S3 {
        endpoint: endpoint.clone(),
        url: format!("s3://{BUCKET}/t"),
        child: Some(child),
    };
    assert!(wait_until_up(&endpoint), "moto did not start on {endpoint}");
    let code = http(&endpoint, "PUT", &format!("/{BUCKET}"));
    assert_eq!(code, 200, "creating the bucket on {endpoint}");
    s.url = format!("s3://{BUCKET}/t");
    Some(s)
}

/// The shared server with a fresh prefix, or a private one.
fn server() -> Option<S3> {
    let Ok(endpoint) = std::env::var("EQLAB_TEST_S3_ENDPOINT") else {
        return private_server();
    };
    assert!(wait_until_up(&endpoint), "no S3 server at {endpoint}");
    let code = http(&endpoint, "PUT", &format!("/{BUCKET}"));
    assert!(
        code == 200 || code == 409,
        "creating the bucket on {endpoint}: {code}"
    );
    let n = N.fetch_add(1, Ordering::SeqCst);
    Some(S3 {
        url: format!("s3://{BUCKET}/{}-{n}", std::process::id()),
        endpoint,
        child: None,
    })
}

impl S3 {
    /// eqlab for `project` with this remote (credentials and endpoint as a user sets them).
    fn cmd(&self, p: &Project, args: &[&str]) -> Command {
        let mut c = p.cmd(args);
        c.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("EQLAB_REMOTE", &self.url)
            .env_remove("EQLAB_REMOTE_MODE")
            .env_remove("EQLAB_REMOTE_REQUIRED");
        c
    }

    fn run(&self, p: &Project, args: &[&str]) -> std::process::Output {
        self.cmd(p, args).output().expect("run eqlab")
    }

    fn ok(&self, p: &Project, args: &[&str]) -> String {
        let o = self.run(p, args);
        assert!(
            o.status.success(),
            "eqlab {args:?} failed:\n{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout) + &text(&o.stderr)
    }

    /// A client of the bucket (object_store, as eqlab uses it) and a runtime to drive it.
    fn client(&self) -> (object_store::aws::AmazonS3, tokio::runtime::Runtime) {
        let s3 = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (s3, rt)
    }

    fn prefix(&self) -> String {
        self.url
            .trim_start_matches(&format!("s3://{BUCKET}/"))
            .to_owned()
    }

    /// Every remote file under the prefix, relative to it.
    fn list(&self) -> Vec<String> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let (s3, rt) = self.client();
        let prefix = object_store::path::Path::from(self.prefix());
        let metas: Vec<object_store::ObjectMeta> =
            rt.block_on(s3.list(Some(&prefix)).try_collect()).unwrap();
        metas
            .into_iter()
            .map(|m| {
                m.location
                    .as_ref()
                    .trim_start_matches(&format!("{}/", self.prefix()))
                    .to_owned()
            })
            .collect()
    }

    /// Overwrites a remote file's body (damage behind eqlab's back).
    fn put(&self, rel: &str, body: &[u8]) {
        use object_store::ObjectStoreExt;
        let (s3, rt) = self.client();
        let path = object_store::path::Path::from(format!("{}/{rel}", self.prefix()));
        rt.block_on(s3.put(&path, body.to_vec().into())).unwrap();
    }

    /// A remote file's body.
    fn get(&self, rel: &str) -> Vec<u8> {
        use object_store::ObjectStoreExt;
        let (s3, rt) = self.client();
        let path = object_store::path::Path::from(format!("{}/{rel}", self.prefix()));
        rt.block_on(async { s3.get(&path).await.unwrap().bytes().await.unwrap() })
            .to_vec()
    }

    fn delete(&self, rel: &str) {
        use object_store::ObjectStoreExt;
        let (s3, rt) = self.client();
        let path = object_store::path::Path::from(format!("{}/{rel}", self.prefix()));
        rt.block_on(s3.delete(&path)).unwrap();
    }
}

/// Three stages whose tables (about 240 kB) go to `cas/`, and a small one carried inline in
/// its record's action-cache entry.
const CHAIN: &str = r#"
name: chain
stages:
  a:
    kind: generate
    with: {rows: 20000, scale: 2.0}
  b:
    kind: generate
    needs: a
    with: {rows: 20000, offset: 1.0}
  c:
    kind: generate
    needs: b
    with: {rows: 20000, offset: 2.0}
  d:
    kind: describe
    needs: c
"#;

/// Files of a store's `records/` and `objects/`, name → bytes.
fn contents(store: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for d in ["records", "objects"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(store.join(d))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            out.push((
                format!("{d}/{}", f.file_name().unwrap().to_string_lossy()),
                std::fs::read(&f).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn a_second_store_reuses_everything_the_first_computed_byte_for_byte() {
    let Some(s3) = server() else { return };
    let (a, b) = (Project::new(), Project::new());
    let f = repo().join("pipelines/gms-exogenous.yaml");
    let f = f.to_str().unwrap();
    let out = s3.ok(&a, &["run", f, "--no-progress"]);
    assert!(a.last_run().values().all(|s| s == "ran"), "{out}");
    // Every result is on the remote, records after objects.
    let listed = s3.list();
    let records = listed.iter().filter(|k| k.starts_with("ac/")).count();
    assert_eq!(records, a.last_run().len(), "{listed:?}");
    // plan from an empty store: every stage would come from the remote.
    let plan = s3.ok(&b, &["plan", f]);
    assert!(plan.contains("would come from the remote cache"), "{plan}");
    assert!(plan.contains("0 of 12 stages would run"), "{plan}");
    let out = s3.ok(&b, &["run", f, "--no-progress"]);
    let statuses = b.last_run();
    assert!(
        statuses.values().all(|s| s == "pulled"),
        "B computed something: {statuses:?}\n{out}"
    );
    assert!(out.contains("0 ran"), "{out}");
    assert_eq!(
        contents(&a.store()),
        contents(&b.store()),
        "B's records and objects differ from A's"
    );
    let shown = s3.ok(&b, &["show", f, "compare"]);
    assert!(shown.contains("comparison"), "{shown}");
    // A rerun in B is purely local.
    let out = s3.ok(&b, &["run", f, "--no-progress"]);
    assert!(b.last_run().values().all(|s| s == "cached"), "{out}");
}

/// Runs CHAIN in a fresh store `a` with the remote; returns the project and the pipeline path.
fn seeded(s3: &S3) -> (Project, String) {
    let a = Project::new();
    let f = a.write("chain.yaml", CHAIN).to_str().unwrap().to_owned();
    s3.ok(&a, &["run", &f, "--no-progress"]);
    (a, f)
}

/// The remote name (`cas/<blake3>`) of the table `table` of stage `stage` in `p`.
fn remote_object(p: &Project, stage: &str) -> String {
    let r = p.record(stage);
    format!("cas/{}", r["tables"]["table"]["file_b3"].as_str().unwrap())
}

/// A table larger than two upload parts (16 MiB each) goes up as a multipart upload with
/// per-part checksums the server verifies, and comes back into another store byte for byte.
#[test]
fn a_table_larger_than_two_parts_goes_up_in_parts_and_comes_back_byte_for_byte() {
    let Some(s3) = server() else { return };
    let (a, b) = (Project::new(), Project::new());
    let yaml =
        "name: large\nstages:\n  t:\n    kind: generate\n    with: {rows: 3000000, scale: 1.5}\n";
    let fa = a.write("large.yaml", yaml).to_str().unwrap().to_owned();
    s3.ok(&a, &["run", &fa, "--no-progress"]);
    let name = remote_object(&a, "t");
    let body = s3.get(&name);
    assert!(
        body.len() > 32 << 20,
        "only {} bytes: not 3 parts",
        body.len()
    );
    assert_eq!(
        name.trim_start_matches("cas/"),
        blake3::hash(&body).to_hex().as_str(),
        "the uploaded bytes are not the object"
    );
    let fb = b.write("large.yaml", yaml).to_str().unwrap().to_owned();
    let out = s3.ok(&b, &["run", &fb, "--no-progress"]);
    assert!(b.last_run().values().all(|s| s == "pulled"), "{out}");
    assert_eq!(contents(&a.store()), contents(&b.store()));
}

#[test]
fn damaged_remote_objects_and_records_are_named_recomputed_and_never_used() {
    let Some(s3) = server() else { return };
    let (a, _) = seeded(&s3);
    let (a_obj, b_obj, c_obj) = (
        remote_object(&a, "a"),
        remote_object(&a, "b"),
        remote_object(&a, "c"),
    );
    let local = |stage: &str| {
        let object = a.record(stage)["tables"]["table"]["object"]
            .as_str()
            .unwrap()
            .to_owned();
        std::fs::read(a.store().join("objects").join(format!("{object}.parquet"))).unwrap()
    };
    // A truncated object (a), a flipped byte (b), a record pointing at a missing object (c),
    // and a flipped byte in an object carried inline in d's entry.
    let a_body = local("a");
    s3.put(&a_obj, &a_body[..a_body.len() / 2]);
    let mut flipped = local("b");
    flipped[100] ^= 1;
    s3.put(&b_obj, &flipped);
    s3.delete(&c_obj);
    let key_d = a.record("d")["key"].as_str().unwrap().to_owned();
    let mut entry: serde_json::Value =
        serde_json::from_slice(&s3.get(&format!("ac/{key_d}"))).unwrap();
    let inline = entry["inline"].as_object_mut().unwrap();
    let (name, b64) = inline.iter_mut().next().unwrap();
    let inline_name = name.clone();
    let mut chars: Vec<char> = b64.as_str().unwrap().chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    *b64 = serde_json::Value::String(chars.into_iter().collect());
    s3.put(&format!("ac/{key_d}"), &serde_json::to_vec(&entry).unwrap());

    let b = Project::new();
    let f = b.write("chain.yaml", CHAIN).to_str().unwrap().to_owned();
    let o = s3.run(&b, &["run", &f, "--no-progress"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(b.ran(), ["a", "b", "c", "d"], "{err}");
    for name in [&a_obj, &b_obj, &c_obj, &inline_name] {
        assert!(err.contains(name.as_str()), "{name} not named:\n{err}");
    }
    assert!(
        err.contains("corrupt") && err.contains("missing") && err.contains("inline"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // B's results are A's (deterministic), and the remote was repaired by B's uploads.
    assert_eq!(contents(&a.store()), contents(&b.store()));
    let c = Project::new();
    let out = s3.ok(&c, &["run", &f, "--no-progress"]);
    assert!(c.last_run().values().all(|s| s == "pulled"), "{out}");
}

#[test]
fn a_damaged_remote_record_is_named_and_overwritten() {
    let Some(s3) = server() else { return };
    let (a, f) = seeded(&s3);
    let key = a.record("a")["key"].as_str().unwrap().to_owned();
    s3.put(
        &format!("ac/{key}"),
        b"{\"format\": 2, \"key\": \"truncated",
    );
    let b = Project::new();
    let o = s3.run(&b, &["run", &f, "--no-progress"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("ac/{key}")) && err.contains("unreadable"),
        "{err}"
    );
    assert_eq!(b.last_run()["a"], "ran", "{err}");
    let c = Project::new();
    let out = s3.ok(&c, &["run", &f, "--no-progress"]);
    assert!(c.last_run().values().all(|s| s == "pulled"), "{out}");
    // A forced recompute that finds the remote record damaged replaces it too.
    s3.put(&format!("ac/{key}"), b"garbage");
    s3.ok(&a, &["run", &f, "--no-progress", "--force", "a"]);
    let d = Project::new();
    let out = s3.ok(&d, &["run", &f, "--no-progress"]);
    assert!(d.last_run().values().all(|s| s == "pulled"), "{out}");
}

#[test]
fn two_writers_of_one_key_end_with_one_record_and_identical_outputs() {
    let Some(s3) = server() else { return };
    let (a, b) = (Project::new(), Project::new());
    let f = a.write("chain.yaml", CHAIN).to_str().unwrap().to_owned();
    // Both compute every stage at once (--force: neither may reuse the other's upload).
    let ta = std::thread::spawn({
        let mut c = s3.cmd(
            &a,
            &["run", &f, "--no-progress", "--force", "a", "b", "c", "d"],
        );
        move || c.output().unwrap()
    });
    let tb = std::thread::spawn({
        let mut c = s3.cmd(
            &b,
            &["run", &f, "--no-progress", "--force", "a", "b", "c", "d"],
        );
        move || c.output().unwrap()
    });
    let (oa, ob) = (ta.join().unwrap(), tb.join().unwrap());
    assert!(oa.status.success(), "{}", text(&oa.stderr));
    assert!(ob.status.success(), "{}", text(&ob.stderr));
    assert!(
        !text(&oa.stderr).contains("not deterministic"),
        "{}",
        text(&oa.stderr)
    );
    assert!(
        !text(&ob.stderr).contains("not deterministic"),
        "{}",
        text(&ob.stderr)
    );
    assert_eq!(contents(&a.store()), contents(&b.store()));
    let records = s3
        .list()
        .into_iter()
        .filter(|k| k.starts_with("ac/"))
        .count();
    assert_eq!(records, 4);
}

#[test]
fn a_server_that_stops_mid_run_costs_one_warning_or_fails_when_required() {
    let Some(s3) = private_server() else { return };
    let (a, f) = seeded(&s3);
    let mut s3 = s3;
    // Stop the server; a run that needs the remote goes on locally and says so once.
    if let Some(c) = &mut s3.child {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let b = Project::new();
    let o = s3.run(&b, &["run", &f, "--no-progress"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(b.ran(), ["a", "b", "c", "d"], "{err}");
    assert_eq!(err.matches("warning: remote cache").count(), 1, "{err}");
    assert!(err.contains(&s3.url), "{err}");
    let c = Project::new();
    let o = s3.run(&c, &["run", &f, "--no-progress", "--remote-required"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--remote-required") && err.contains(&s3.url),
        "{err}"
    );
    drop(a);
}

#[test]
fn read_mode_never_writes() {
    let Some(s3) = server() else { return };
    let p = Project::new();
    let f = p.write("chain.yaml", CHAIN).to_str().unwrap().to_owned();
    let out = s3.ok(&p, &["run", &f, "--no-progress", "--remote-mode", "read"]);
    assert_eq!(p.ran(), ["a", "b", "c", "d"], "{out}");
    assert!(s3.list().is_empty(), "read mode wrote {:?}", s3.list());
    let o = s3.run(&p, &["push", &f, "--remote-mode", "read"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(s3.list().is_empty());
    // push in read-write uploads what the run computed; pull into another store brings it back.
    let out = s3.ok(&p, &["push", &f]);
    assert!(out.contains("4 uploaded"), "{out}");
    let q = Project::new();
    let out = s3.ok(&q, &["pull", &f]);
    assert!(out.contains("4 downloaded"), "{out}");
    assert_eq!(contents(&p.store()), contents(&q.store()));
    // gc --remote keeps everything referenced.
    let out = s3.ok(&p, &["gc", "--remote", "--grace", "0s"]);
    assert!(out.contains("deleted 0 unreferenced objects"), "{out}");
    // An object no record references goes (after the grace period only).
    s3.put(&format!("cas/{}", "e".repeat(64)), b"stray");
    let out = s3.ok(&p, &["gc", "--remote", "--dry-run"]);
    assert!(out.contains("would delete 0 unreferenced"), "{out}");
    let out = s3.ok(&p, &["gc", "--remote", "--grace", "0s"]);
    assert!(out.contains("deleted 1 unreferenced objects"), "{out}");
    assert!(!s3.list().iter().any(|k| k.contains(&"e".repeat(64))));
    let access = s3.ok(&p, &["remote"]);
    assert!(access.contains("ok: read and write access"), "{access}");
    assert!(
        !access.contains("testing"),
        "a secret was printed: {access}"
    );
}

#[test]
fn a_writer_killed_mid_upload_never_leaves_a_record_without_its_objects() {
    let Some(s3) = server() else { return };
    let p = Project::new();
    // Large outputs (a few MB each) so that uploads take a while.
    let big = r#"
name: big
stages:
  a:
    kind: generate
    with: {rows: 400000, scale: 1.0}
  b:
    kind: generate
    with: {rows: 400000, scale: 3.0}
"#;
    let f = p.write("big.yaml", big).to_str().unwrap().to_owned();
    let mut seen_records = 0;
    // Killed after 0.3, 0.9 and 1.5 s, then a run left to finish.
    for delay_ms in [Some(300u64), Some(900), Some(1500), None] {
        let mut child = s3
            .cmd(&p, &["run", &f, "--no-progress", "--force", "a", "b"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if let Some(ms) = delay_ms {
            std::thread::sleep(Duration::from_millis(ms));
            let _ = child.kill();
        }
        let _ = child.wait();
        let listed = s3.list();
        let objects: std::collections::HashSet<&str> = listed
            .iter()
            .filter_map(|k| k.strip_prefix("cas/"))
            .collect();
        let mut records = 0;
        for rec in listed.iter().filter_map(|k| k.strip_prefix("ac/")) {
            // The entry as a reader finds it: small objects inline, the others in `cas/`.
            let entry: serde_json::Value =
                serde_json::from_slice(&s3.get(&format!("ac/{rec}"))).unwrap();
            let inline = entry["inline"].as_object().unwrap();
            let r: serde_json::Value =
                serde_json::from_str(entry["record"].as_str().unwrap()).unwrap();
            for t in r["tables"].as_object().unwrap().values() {
                let b3 = t["file_b3"].as_str().unwrap();
                assert!(
                    objects.contains(b3) || inline.contains_key(b3),
                    "record {rec} without its object {b3}"
                );
            }
            // Each large table was uploaded before its record.
            let large = r["tables"]["table"]["file_b3"].as_str().unwrap();
            assert!(objects.contains(large), "record {rec} without {large}");
            records += 1;
        }
        seen_records = seen_records.max(records);
    }
    // The last run finished: the check above saw both records.
    assert_eq!(
        seen_records, 2,
        "the finished run did not publish both records"
    );
}

/// eqlab for `p` with the remote settings of the environment cleared (only eqlab.toml and
/// flags count).
fn plain(p: &Project, args: &[&str]) -> Command {
    let mut c = p.cmd(args);
    for v in [
        "EQLAB_REMOTE",
        "EQLAB_REMOTE_MODE",
        "EQLAB_REMOTE_REQUIRED",
        "AWS_ENDPOINT_URL",
    ] {
        c.env_remove(v);
    }
    c
}

#[test]
fn settings_come_from_eqlab_toml_flags_and_environment_with_their_sources() {
    let p = Project::new();
    let shared = p.path().join("shared-cache");
    p.write(
        "eqlab.toml",
        &format!(
            "[remote]\nurl = \"file://{}\"\nmode = \"read\"\n",
            shared.display()
        ),
    );
    std::fs::create_dir_all(p.path().join("sub")).unwrap();
    let f = p.write("sub/chain.yaml", CHAIN);
    let o = plain(&p, &["remote", f.to_str().unwrap()])
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    let toml = p.path().join("eqlab.toml");
    assert!(
        out.contains(&format!("file://{}", shared.display()))
            && out.contains(&format!("({})", toml.display())),
        "{out}"
    );
    assert!(out.contains("mode         read "), "{out}");
    assert!(out.contains("ok: read access"), "{out}");
    // A flag beats the environment, which beats the file.
    let o = plain(&p, &["remote", "--remote-mode", "read-write"])
        .env("EQLAB_REMOTE_MODE", "off")
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(
        out.contains("read-write   (command line --remote-mode)"),
        "{out}"
    );
    let o = plain(&p, &["remote"])
        .env("EQLAB_REMOTE_MODE", "read-write")
        .output()
        .unwrap();
    assert!(
        text(&o.stdout).contains("(environment EQLAB_REMOTE_MODE)"),
        "{}",
        text(&o.stdout)
    );
    // Errors name the file, the line and the key; a bad mode names where it came from.
    p.write(
        "eqlab.toml",
        "[remote]\nurl = \"file:///x\"\nsecret_key = \"k\"\n",
    );
    let o = plain(&p, &["remote"]).output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("eqlab.toml") && err.contains("line 3") && err.contains("secret_key"),
        "{err}"
    );
    p.write(
        "eqlab.toml",
        "[remote]\nurl = \"file:///x\"\nmode = \"sometimes\"\n",
    );
    let o = plain(&p, &["run", f.to_str().unwrap()]).output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("sometimes") && err.contains("eqlab.toml"),
        "{err}"
    );
    // No remote anywhere: push says how to configure one.
    std::fs::remove_file(p.path().join("eqlab.toml")).unwrap();
    let o = plain(&p, &["push", f.to_str().unwrap()]).output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no remote cache is configured"), "{err}");
}

#[test]
fn a_shared_directory_works_as_a_remote_without_any_server() {
    let (a, b) = (Project::new(), Project::new());
    let shared = a.path().join("shared");
    let url = format!("file://{}", shared.display());
    let f = a.write("chain.yaml", CHAIN).to_str().unwrap().to_owned();
    let o = plain(&a, &["run", &f, "--no-progress", "--remote", &url])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = plain(&b, &["run", &f, "--no-progress", "--remote", &url])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        b.last_run().values().all(|s| s == "pulled"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(contents(&a.store()), contents(&b.store()));
}

#[test]
fn a_stage_whose_outputs_differ_from_the_remote_is_reported_as_not_deterministic() {
    let Some(s3) = server() else { return };
    let (a, f) = seeded(&s3);
    // Another machine's record of a's key with other outputs (a valid, sealed record).
    let mut r: eqlab::store::Record =
        serde_json::from_slice(&std::fs::read(a.record_path("a")).unwrap()).unwrap();
    for t in r.tables.values_mut() {
        t.file_b3 = "0".repeat(64);
    }
    let theirs = eqlab::store::Record::new(r.components, r.tables, r.files, r.scalars);
    s3.put(
        &format!("ac/{}", theirs.key),
        &serde_json::to_vec_pretty(&theirs).unwrap(),
    );
    let b = Project::new();
    let o = s3.run(&b, &["run", &f, "--no-progress", "--force", "a"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("stage 'a' (generate) is not deterministic") && err.contains("table"),
        "{err}"
    );
}
