//! Damaged and valid daily market data files through `load_table` → `market_data`, driving the
//! real binary. Every damaged file under tests/data/damaged/ must fail with the located message
//! listed in [`DAMAGED`] (file, 1-based file line, column, value), never a panic, never exit 0;
//! every valid variant under tests/data/valid/ must give exactly the numbers of the clean file.
//! The cases of ../shared/cases/inputs 01, 06, 07 and 09 are copied under tests/data/cases/.

mod common;
use common::{Project, repo, text};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Closes of tests/data/valid/clean.csv (S&P 500, 2009-01-02 .. 2009-01-20), typed by hand.
const CLEAN_CLOSES: [f64; 12] = [
    931.799988, 927.450012, 934.700012, 906.650024, 909.72998, 890.349976, 870.26001, 871.789978,
    842.619995, 843.73999, 850.119995, 805.219971,
];

/// Volumes of tests/data/valid/clean.csv.
const CLEAN_VOLUMES: [f64; 12] = [
    4048270000.0,
    5413910000.0,
    5392620000.0,
    4704940000.0,
    4991550000.0,
    4716500000.0,
    4725050000.0,
    5567460000.0,
    5407880000.0,
    7807350000.0,
    6786040000.0,
    6375230000.0,
];

/// (file under tests/data/damaged, extra `load_table` parameters, expected message). The message
/// must appear on one line of stderr, after the file's path as given to eqlab (`FILE:LINE:` or
/// `FILE:` for whole-file problems). Paths are written relative to the test project directory.
const DAMAGED: &[(&str, &str, &str)] = &[
    (
        "repeated_dates.csv",
        "",
        ":7: column 'Date': date 2009-01-07 repeats line 5",
    ),
    (
        "out_of_order.csv",
        "",
        ":5: column 'Date': date 2009-01-06 comes after 2009-01-07 (line 4)",
    ),
    (
        "descending.csv",
        "",
        ":3: column 'Date': the dates decrease from 2009-01-20 (line 2) to 2009-01-02 (line 13): the file lists the newest day first",
    ),
    (
        "zero_price.csv",
        "",
        ":6: column 'Close': price 0 is not positive",
    ),
    (
        "negative_price.csv",
        "",
        ":5: column 'Close': price -906.650024 is not positive",
    ),
    (
        "negative_volume.csv",
        "",
        ":5: column 'Volume': volume -4704940000 is negative",
    ),
    ("empty_close.csv", "", ":9: column 'Close': empty value"),
    ("empty_date.csv", "", ":4: column 'Date': empty date"),
    (
        "nan_close.csv",
        "",
        ":8: column 'Close': 'NaN' is not a finite number",
    ),
    (
        "inf_volume.csv",
        "",
        ":11: column 'Volume': 'inf' is not a finite number",
    ),
    (
        "text_in_close.csv",
        "",
        ":10: column 'Close': 'n/a' is not a number (11 of the column's 12 values are",
    ),
    (
        "thousands_separator.csv",
        "",
        ":2: column 'Volume': '4,048,270,000' is not a number",
    ),
    (
        "mixed_date_formats.csv",
        "",
        ":8: column 'Date': '2009-01-12' does not match %m/%d/%Y (the format of the other rows)",
    ),
    (
        "impossible_date.csv",
        "",
        ":6: column 'Date': '2/30/2009' does not match %m/%d/%Y (the format of the other rows)",
    ),
    (
        "ambiguous_dmy.csv",
        "",
        ":3: column 'Date': '01/02/2009' is ambiguous: it reads as 2009-01-02 with %m/%d/%Y and as 2009-02-01 with %d/%m/%Y",
    ),
    (
        "ambiguous_dmy.csv",
        ", date_format: '%Y-%m-%d'",
        ":2: column 'Date': '01/01/2009' does not match date_format %Y-%m-%d",
    ),
    (
        "missing_column.csv",
        "",
        ":1: no column(s) 'Volume' (the file has: 'Date', 'Open', 'High', 'Low', 'Close', 'Adj Close')",
    ),
    ("short_row.csv", "", ":6: 6 fields, but the header has 7"),
    ("extra_field.csv", "", ":9: 8 fields, but the header has 7"),
    (
        "blank_line.csv",
        "",
        ":6: 1 field (a blank line), but the header has 7",
    ),
    ("empty.csv", "", ":1: the file is empty"),
    (
        "header_only.csv",
        "",
        ":1: the file has a header line but no data rows",
    ),
    (
        "semicolons.csv",
        "",
        ":1: the header 'Date;Open;High;Low;Close;Adj Close;Volume' is one column, but holds ';': the file looks ';'-separated; set `delimiter: \";\"`",
    ),
    (
        "huge_number.csv",
        "",
        ":7: column 'Close': '1e400' is too large for a 64-bit number",
    ),
    (
        "unclosed_quote.csv",
        "",
        ":7: a quoted field opened on this line is never closed",
    ),
    ("quote_then_text.csv", "", ":7: 'x' follows a closing quote"),
    ("latin1.csv", "", ":4: byte 0xe9 is not UTF-8 text"),
    (
        "utf16.csv",
        "",
        ":1: the file is UTF-16 text: save it as UTF-8",
    ),
    (
        "duplicate_header.csv",
        "",
        ":1: the header names 2 columns 'Close' (columns 5, 6)",
    ),
    ("not_parquet.parquet", "", ": cannot read it as Parquet:"),
    (
        "no_dates.csv",
        "",
        ":2: column 'Date': 'day 1' is not a date in any of the formats tried",
    ),
    ("two_days.csv", "", "need at least 3 trading days, got 2"),
    // Read as missing or as text on request, the bad cells still stop market_data, located.
    (
        "empty_close.csv",
        ", allow_empty: true",
        ":9: column 'Close': empty value",
    ),
    (
        "text_in_close.csv",
        ", types: {Close: text}",
        ":10: column 'Close': 'n/a' is not a number (the column is text)",
    ),
    (
        "fraction_in_integer_column.csv",
        ", types: {Volume: integer}",
        ":4: column 'Volume': '5392620000.5' is not an integer (`types` declares the column integer)",
    ),
    (
        "repeated_dates.csv",
        ", start: '2009-01-06'",
        ":7: column 'Date': date 2009-01-07 repeats line 5",
    ),
];

/// Words from the messages of reading libraries (polars, which read the files before, and the
/// csv crate) that are not eqlab options and must never reach the user.
const FOREIGN_HINTS: &[&str] = &[
    "strict=False",
    "infer_schema_length",
    "schema_overrides",
    "ignore_errors",
    "str.strptime",
    "null_values",
    "polars",
    "CSV error",
    "CSV parse error",
    "UnequalLengths",
];

/// A project whose data directory links to tests/data; pipelines refer to files relatively.
fn project() -> Project {
    let p = Project::new();
    copy_dir(&repo().join("tests/data"), &p.path().join("data"));
    p
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// `load_table` of `file` (relative to the project) with the usual columns, then `market_data`.
fn market_pipeline(p: &Project, file: &str, extra: &str) -> PathBuf {
    p.write(
        "market.yaml",
        &format!(
            "stages:\n  prices:\n    kind: load_table\n    with: {{path: {file}, columns: [Date, Close, Volume], rename: {{Date: date, Close: close, Volume: volume}}, date_column: date{extra}}}\n  market:\n    kind: market_data\n    needs: prices\n"
        ),
    )
}

/// Runs eqlab under a time limit, returning (exit code, stderr).
fn run_limited(p: &Project, args: &[&str]) -> (Option<i32>, String) {
    let mut child = p
        .cmd(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("eqlab {args:?} ran for more than 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    (o.status.code(), text(&o.stderr))
}

fn scalars(p: &Project, stage: &str) -> serde_json::Map<String, serde_json::Value> {
    p.record(stage)["scalars"].as_object().unwrap().clone()
}

fn num(s: &serde_json::Map<String, serde_json::Value>, k: &str) -> f64 {
    s[k].as_f64()
        .unwrap_or_else(|| panic!("no scalar {k}: {s:?}"))
}

#[test]
fn every_damaged_data_file_gets_a_located_error() {
    let p = project();
    let dir = repo().join("tests/data/damaged");
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert!(files >= 20, "only {files} damaged files");
    let mut failures = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for (file, extra, want) in DAMAGED {
        covered.insert(*file);
        let path = format!("data/damaged/{file}");
        let f = market_pipeline(&p, &path, extra);
        let (code, err) = run_limited(&p, &["run", f.to_str().unwrap(), "--no-progress"]);
        let located = if want.starts_with(':') {
            format!("{path}{want}")
        } else {
            want.to_string()
        };
        let foreign: Vec<&&str> = FOREIGN_HINTS.iter().filter(|h| err.contains(**h)).collect();
        if code != Some(1) || err.contains("panicked") || !foreign.is_empty() {
            failures.push(format!(
                "{file}{extra}: exit {code:?}, foreign {foreign:?}\n{err}"
            ));
        } else if !err.lines().any(|l| l.contains(&located)) {
            failures.push(format!("{file}{extra}: expected `{located}`, got:\n{err}"));
        }
    }
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if !covered.contains(name.as_str()) && name != "a_directory.csv" {
            failures.push(format!("{name}: no expected message in DAMAGED"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

#[test]
fn a_directory_as_data_path_is_refused_with_its_name() {
    let p = project();
    let f = market_pipeline(&p, "data/damaged/a_directory.csv", "");
    let (code, err) = run_limited(&p, &["run", f.to_str().unwrap(), "--no-progress"]);
    assert!(
        matches!(code, Some(1) | Some(2)) && !err.contains("panicked"),
        "exit {code:?}\n{err}"
    );
    assert!(err.contains("a_directory.csv"), "{err}");
}

/// Runs the market pipeline on `file` and returns the market scalars and the loaded table.
fn load(
    p: &Project,
    file: &str,
    extra: &str,
) -> (serde_json::Map<String, serde_json::Value>, String) {
    let f = market_pipeline(p, file, extra);
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    let out = p.path().join("table.csv");
    p.ok(&[
        "show",
        f,
        "prices",
        "table",
        "--rows",
        "100",
        "--export",
        out.to_str().unwrap(),
    ]);
    (scalars(p, "market"), std::fs::read_to_string(out).unwrap())
}

#[test]
fn valid_variants_load_with_the_numbers_of_the_clean_file() {
    let (clean, table) = load(&project(), "data/valid/clean.csv", "");
    assert_eq!(num(&clean, "n_days"), 12.0);
    let mean = CLEAN_CLOSES.iter().sum::<f64>() / 12.0;
    assert!((num(&clean, "price") - mean).abs() < 1e-9, "{clean:?}");
    let vmean = CLEAN_VOLUMES.iter().sum::<f64>() / 12.0;
    assert!((num(&clean, "turnover") - vmean).abs() < 1e-3, "{clean:?}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "date,close,volume");
    assert_eq!(lines[1], "2009-01-02,931.799988,4048270000");
    assert_eq!(lines[12], "2009-01-20,805.219971,6375230000");
    for (file, extra) in [
        ("data/valid/crlf.csv", ""),
        ("data/valid/bom.csv", ""),
        ("data/valid/quoted.csv", ""),
        ("data/valid/no_trailing_newline.csv", ""),
        ("data/valid/trailing_blank_lines.csv", ""),
        ("data/valid/iso_dates.csv", ""),
        ("data/damaged/semicolons.csv", ", delimiter: ';'"),
    ] {
        let (s, t) = load(&project(), file, extra);
        assert_eq!(s, clean, "{file}");
        assert_eq!(t, table, "{file}");
    }
}

#[test]
fn out_of_order_dates_loaded_with_date_order_any_are_refused_by_market_data() {
    let p = project();
    let f = market_pipeline(&p, "data/damaged/out_of_order.csv", ", date_order: any");
    let (code, err) = run_limited(&p, &["run", f.to_str().unwrap(), "--no-progress"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("data/damaged/out_of_order.csv:5: column 'Date': date 2009-01-06 comes after 2009-01-07 (line 4)"),
        "{err}"
    );
    assert!(err.contains("market_data"), "{err}");
}

#[test]
fn day_first_dates_load_when_date_format_says_so() {
    let p = project();
    let (s, t) = load(
        &p,
        "data/damaged/ambiguous_dmy.csv",
        ", date_format: '%d/%m/%Y'",
    );
    assert_eq!(num(&s, "n_days"), 12.0);
    let dates: Vec<&str> = t.lines().skip(1).map(|l| &l[..10]).collect();
    assert_eq!(dates[0], "2009-01-01");
    assert_eq!(dates[1], "2009-02-01");
    assert_eq!(dates[11], "2009-12-01");
}

#[test]
fn integers_then_decimals_make_a_float_column() {
    let p = project();
    let (s, t) = load(&p, "data/valid/ints_then_decimals.csv", "");
    let closes = [
        932.0, 927.0, 935.0, 907.0, 910.0, 890.0, 870.0, 872.0, 842.619995, 843.73999, 850.119995,
        805.219971,
    ];
    let mean = closes.iter().sum::<f64>() / 12.0;
    assert!((num(&s, "price") - mean).abs() < 1e-9, "{s:?}");
    assert_eq!(t.lines().nth(1), Some("2009-01-02,932.0,4048270000"));
    assert_eq!(t.lines().nth(9), Some("2009-01-14,842.619995,5407880000"));
}

#[test]
fn the_shipped_sp500_file_loads_whole() {
    let p = Project::new();
    let data = repo().join("data/sp500-daily-1999-2018.csv");
    let f = p.write(
        "sp.yaml",
        &format!(
            "stages:\n  sp:\n    kind: load_table\n    with: {{path: {}, date_column: Date}}\n",
            data.display()
        ),
    );
    p.ok(&["run", f.to_str().unwrap(), "--no-progress"]);
    assert_eq!(num(&scalars(&p, "sp"), "rows"), 5031.0);
}

// The cases of issue 12 (copies of ../shared/cases/inputs/NN under tests/data/cases/NN).

fn case(p: &Project, dir: &str) -> PathBuf {
    let d = p.path().join("data/cases").join(dir);
    assert!(d.is_dir(), "{}", d.display());
    d
}

#[test]
fn case_01_repeated_dates_and_zero_prices_are_refused() {
    let p = project();
    let d = case(&p, "01-bad-market-data-accepted");
    let f = d.join("market.yaml");
    for (file, want) in [
        (
            "duplicate_dates.csv",
            "duplicate_dates.csv:7: column 'Date': date 2009-01-07 repeats line 5",
        ),
        (
            "zero_price.csv",
            "zero_price.csv:6: column 'Close': price 0 is not positive",
        ),
    ] {
        let set = format!("prices.path={file}");
        let (code, err) = run_limited(
            &p,
            &["run", f.to_str().unwrap(), "--no-progress", "--set", &set],
        );
        assert_eq!(code, Some(1), "{file}: {err}");
        assert!(err.contains(want), "{file}: {err}");
    }
}

#[test]
fn case_06_data_errors_name_file_line_column_and_value() {
    let p = project();
    let d = case(&p, "06-data-errors-unlocated");
    let f = d.join("sp500.yaml");
    for (file, want) in [
        (
            "missing_close.csv",
            "missing_close.csv:14: column 'Close': empty value",
        ),
        (
            "one_iso_date.csv",
            "one_iso_date.csv:14: column 'Date': '2009-01-09' does not match %m/%d/%Y (the format of the other rows)",
        ),
    ] {
        let set = format!("prices.path={file}");
        let (code, err) = run_limited(
            &p,
            &["run", f.to_str().unwrap(), "--no-progress", "--set", &set],
        );
        assert_eq!(code, Some(1), "{file}: {err}");
        let first = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
        assert!(first.contains(want), "{file}: {err}");
        assert!(!FOREIGN_HINTS.iter().any(|h| err.contains(h)), "{err}");
    }
}

#[test]
fn case_07_column_types_come_from_the_whole_file() {
    let p = project();
    let d = case(&p, "07-csv-types-from-first-rows");
    let f = d.join("load.yaml");
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    assert_eq!(num(&scalars(&p, "t"), "rows"), 10_002.0);
    let out = p.path().join("t.csv");
    p.ok(&[
        "show",
        f,
        "t",
        "table",
        "--rows",
        "20000",
        "--export",
        out.to_str().unwrap(),
    ]);
    let t = std::fs::read_to_string(out).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 10_003);
    assert_eq!(lines[1], "100.0");
    assert_eq!(lines[10_001], "100.5");
    assert_eq!(lines[10_002], "101.0");
}

#[test]
fn case_09_day_month_ambiguous_dates_are_refused() {
    let p = project();
    let d = case(&p, "09-ambiguous-day-month-dates");
    let f = d.join("p.yaml");
    let (code, err) = run_limited(&p, &["run", f.to_str().unwrap(), "--no-progress"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("monthly_dmy.csv:3: column 'Date': '01/02/2009' is ambiguous")
            && err.contains("set `date_format`"),
        "{err}"
    );
    // With the format given, the window keeps February to December.
    let set = [
        "--set",
        "window.date_format='%d/%m/%Y'",
        "--set",
        "load.date_format='%d/%m/%Y'",
    ];
    let mut args = vec!["run", f.to_str().unwrap(), "--no-progress"];
    args.extend(set);
    p.ok(&args);
    assert_eq!(num(&scalars(&p, "window"), "rows"), 11.0);
    assert_eq!(num(&scalars(&p, "load"), "rows"), 12.0);
}

/// Writes `table` as a Parquet file under the project and returns its relative path.
fn write_parquet(p: &Project, name: &str, table: &eqlab::table::Table) -> String {
    let file = std::fs::File::create(p.path().join(name)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, table.schema(), None).unwrap();
    w.write(table).unwrap();
    w.close().unwrap();
    name.to_owned()
}

/// The clean data as an Arrow table: Date as text or as Date32, Close possibly altered.
fn clean_arrow(close: &[Option<f64>], volume: &[Option<i64>]) -> eqlab::table::Table {
    use arrow::array::{Date32Array, Float64Array, Int64Array};
    use std::sync::Arc;
    let days: Vec<i32> = [2, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 20]
        .iter()
        .map(|d| 14244 + d)
        .collect();
    eqlab::table::TableBuilder::new()
        .column("Date", Arc::new(Date32Array::from(days)))
        .column("Close", Arc::new(Float64Array::from(close.to_vec())))
        .column("Volume", Arc::new(Int64Array::from(volume.to_vec())))
        .build()
        .unwrap()
}

#[test]
fn parquet_files_load_and_their_bad_values_name_the_row() {
    let p = project();
    let (clean, table) = load(&project(), "data/valid/clean.csv", "");
    let closes: Vec<Option<f64>> = CLEAN_CLOSES.iter().map(|c| Some(*c)).collect();
    let volumes: Vec<Option<i64>> = CLEAN_VOLUMES.iter().map(|v| Some(*v as i64)).collect();
    let good = write_parquet(&p, "clean.parquet", &clean_arrow(&closes, &volumes));
    let (s, t) = load(&p, &good, "");
    assert_eq!(s, clean);
    assert_eq!(t, table);

    let mut nan = closes.clone();
    nan[3] = Some(f64::NAN);
    let mut missing = volumes.clone();
    missing[5] = None;
    let bad = write_parquet(&p, "bad.parquet", &clean_arrow(&nan, &missing));
    let f = market_pipeline(&p, &bad, "");
    let (code, err) = run_limited(&p, &["run", f.to_str().unwrap(), "--no-progress"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("bad.parquet: row 4: column 'Close': NaN is not a finite number"),
        "{err}"
    );
    assert!(
        err.contains("bad.parquet: row 6: column 'Volume': empty value"),
        "{err}"
    );

    let mut zero = closes.clone();
    zero[7] = Some(0.0);
    let zero = write_parquet(&p, "zero.parquet", &clean_arrow(&zero, &volumes));
    let f = market_pipeline(&p, &zero, "");
    let (code, err) = run_limited(&p, &["run", f.to_str().unwrap(), "--no-progress"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("zero.parquet: row 8: column 'Close': price 0 is not positive"),
        "{err}"
    );
}
