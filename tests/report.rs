//! `eqlab report`: a self-contained HTML page with the DAG, sweep plots and the check table,
//! rendered in a real headless browser (Chromium) when one is installed. `.ci/run` installs it
//! and sets EQLAB_REQUIRE_CHROMIUM=1 so that CI cannot skip the browser check.

mod common;
use common::{Project, repo, text};

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| b.to_string())
        })
}

#[test]
fn the_report_shows_the_dag_sweeps_and_checks_in_a_browser() {
    let p = Project::new();
    let f = repo().join("pipelines/sweep-q.yaml");
    let f = f.to_str().unwrap();
    let golden = p.write("g.yaml", "checks:\n  - {value: \"calibrated.table.lambda[q=1.5]\", expected: 5.21420062996e-6, rel: 1.0e-6}\n  - {value: proportional.proportional.ell, expected: 5.10109044503e10, rel: 1.0e-6}\n");
    let o = p.eqlab(&[
        "check",
        f,
        "--golden",
        golden.to_str().unwrap(),
        "--set",
        "params.paths=4",
        "--set",
        "params.days=500",
    ]);
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let out = p.ok(&[
        "report",
        f,
        "--set",
        "params.paths=4",
        "--set",
        "params.days=500",
    ]);
    let path = std::path::PathBuf::from(out.trim());
    let html = std::fs::read_to_string(&path).unwrap();
    for needle in [
        "id=\"dag\"",
        "id=\"check-table\"",
        "2 passed, 0 failed",
        "calibrated: lambda against q",
        "Provenance",
        "git commit",
    ] {
        assert!(html.contains(needle), "report lacks {needle}");
    }
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "the report must not load anything from the network"
    );
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("EQLAB_REQUIRE_CHROMIUM").is_none(),
            "Chromium is required here but not installed"
        );
        eprintln!("SKIPPED the browser part: no chromium installed (apt-get install chromium)");
        return;
    };
    let url = format!("file://{}", path.display());
    let dom = std::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            &url,
        ])
        .output()
        .unwrap();
    let dom = text(&dom.stdout);
    assert!(
        dom.contains("check-table") && dom.contains("<svg"),
        "browser DOM lacks the table or a figure"
    );
    let shot = p.path().join("report.png");
    let o = std::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,2400",
            &format!("--screenshot={}", shot.display()),
            &url,
        ])
        .output()
        .unwrap();
    let png = std::fs::read(&shot).unwrap_or_else(|_| panic!("no screenshot: {}", text(&o.stderr)));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot too small: {} bytes",
        png.len()
    );
    if let Ok(dir) = std::env::var("EQLAB_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, std::path::Path::new(&dir).join("report.png")).unwrap();
    }
}

/// The `compare` stage's paper-vs-eqlab table is an HTML table in the report (not Markdown
/// text), each row marked pass or fail, numbers as a person reads them.
#[test]
fn the_report_renders_the_comparison_table_as_html_with_pass_and_fail_marked() {
    let p = Project::new();
    let f = p.write(
        "cmp.yaml",
        "name: cmp\nstages:\n  a:\n    kind: generate\n    with: {rows: 24}\n  cmp:\n    kind: compare\n    needs: a\n    with:\n      checks:\n        - {label: rows, value: a.rows, reference: 24, rel: 1.0e-12, source: exact}\n        - {label: \"mean <off>\", value: a.mean, reference: 1000, abs: 1.0e-9, source: wrong on purpose}\n",
    );
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    let path = std::path::PathBuf::from(p.ok(&["report", f]).trim());
    let html = std::fs::read_to_string(&path).unwrap();
    let table = html
        .split("<table class=\"data\" id=\"table-cmp-comparison\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no comparison table in the report:\n{html}"));
    assert!(
        table.contains("<tr class=\"pass\"><td>rows</td><td>a.rows</td><td class=\"num\">24</td><td class=\"num\">24</td>"),
        "{table}"
    );
    assert!(
        table.contains("<tr class=\"fail\"><td>mean &lt;off&gt;</td>")
            && table.contains("<td class=\"verdict\">FAIL</td>")
            && table.contains("<td class=\"verdict\">PASS</td>"),
        "{table}"
    );
    assert!(
        !html.contains("|---|") && !html.contains("<pre>"),
        "Markdown text left in the report"
    );
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("EQLAB_REQUIRE_CHROMIUM").is_none(),
            "Chromium is required here but not installed"
        );
        eprintln!("SKIPPED the browser part: no chromium installed (apt-get install chromium)");
        return;
    };
    let dom = std::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            &format!("file://{}", path.display()),
        ])
        .output()
        .unwrap();
    let dom = text(&dom.stdout);
    // The browser parsed it as a table: it inserts the implied <tbody>.
    assert!(
        dom.contains(
            "<table class=\"data\" id=\"table-cmp-comparison\"><tbody><tr><th>quantity</th>"
        ),
        "browser DOM lacks the comparison table:\n{dom}"
    );
    assert_eq!(dom.matches("<td class=\"verdict\">FAIL</td>").count(), 1);
    assert_eq!(dom.matches("<td class=\"verdict\">PASS</td>").count(), 1);
}
