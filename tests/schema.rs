//! `eqlab schema`: the committed `schema/eqlab-pipeline.schema.json` is the command's output
//! (so it cannot go stale), every shipped pipeline names it in its first line and validates
//! against it, and the malformed pipelines whose fault a schema can know (wrong types, unknown
//! keys and kinds, missing required values) are rejected by it too — checked with a maintained
//! JSON Schema validator (the `jsonschema` crate), YAML read with the crate eqlab uses.

mod common;
use common::{Project, repo};
use serde_json::Value;

const SCHEMA: &str = "schema/eqlab-pipeline.schema.json";
const FIRST_LINE: &str = "# yaml-language-server: $schema=../schema/eqlab-pipeline.schema.json";

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join(SCHEMA)).expect("the committed schema");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    assert!(
        jsonschema::draft7::meta::is_valid(&schema),
        "the schema is not a valid draft-07 schema"
    );
    jsonschema::draft7::new(&schema).expect("the schema compiles")
}

/// YAML text as JSON, read with serde-saphyr as YAML 1.2 (only `true`/`false` are booleans), as
/// eqlab and the editors' YAML language server read it.
fn yaml(text: &str) -> Value {
    let opts = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_str_with_options(text, opts).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A YAML file as JSON.
fn yaml_json(path: &std::path::Path) -> Value {
    yaml(&std::fs::read_to_string(path).unwrap())
}

/// Every error the schema reports for `doc`, as `path: message`.
fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_committed_schema_is_the_output_of_eqlab_schema() {
    let p = Project::new();
    let out = p.ok(&["schema"]);
    let committed = std::fs::read_to_string(repo().join(SCHEMA)).unwrap_or_default();
    assert!(
        out == committed,
        "{SCHEMA} is stale (a stage kind or parameter changed): refresh it with `make schema` \
         (eqlab schema --output {SCHEMA}) and commit it"
    );
    // --output writes the same text.
    let file = p.path().join("s.json");
    p.ok(&["schema", "--output", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), out);
}

#[test]
fn the_schema_knows_every_kind_with_its_parameters() {
    let s: Value = serde_json::from_str(&Project::new().ok(&["schema"])).unwrap();
    let kinds = &s["definitions"]["stage"]["properties"]["kind"]["enum"];
    for k in ["cost_ode", "compare", "load_table", "rgan_train", "collect"] {
        assert!(
            kinds.as_array().unwrap().iter().any(|x| x == k),
            "no kind {k}"
        );
    }
    let ode = &s["definitions"]["with.cost_ode"];
    assert_eq!(ode["additionalProperties"], false);
    let points = &ode["properties"]["points"];
    assert_eq!(points["default"], 401);
    assert_eq!(points["anyOf"][0]["type"], "integer");
    assert!(
        points["description"]
            .as_str()
            .unwrap()
            .starts_with("grid points of the output tables (integer, default 401)"),
        "{points}"
    );
    assert!(ode["properties"]["cost"]["default"].is_null());
    let gen_rows = &s["definitions"]["with.generate"]["properties"]["rows"];
    assert_eq!(gen_rows["default"], 100);
}

#[test]
fn every_shipped_pipeline_names_the_schema_and_validates_against_it() {
    let v = validator();
    let mut files: Vec<_> = std::fs::read_dir(repo().join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "only {} pipelines", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if text.lines().next() != Some(FIRST_LINE) {
            failures.push(format!(
                "{}: the first line must be `{FIRST_LINE}`",
                f.display()
            ));
        }
        let errs = errors(&v, &yaml_json(f));
        if !errs.is_empty() {
            failures.push(format!("{}:\n  {}", f.display(), errs.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Malformed files (tests/malformed/) whose fault is a type, an unknown key or kind, or a
/// missing required value, with a part of the schema error each must produce.
const REJECTED: &[(&str, &str)] = &[
    ("bad_ref_syntax.yaml", "/stages/a/with/scale"),
    ("bad_seed.yaml", "/seed"),
    ("bad_stage_name.yaml", "/stages"),
    ("description_is_list.yaml", "/description"),
    ("empty_axis.yaml", "/stages/a/sweep"),
    ("empty_document.yaml", "is not of type \"object\""),
    ("five_problems_one_pass.yaml", "nmae"),
    ("float_list_nested.yaml", "/stages/m/with/powers"),
    ("kind_is_list.yaml", "/stages/a/kind"),
    ("list_sweep_empty.yaml", "/stages/a/sweep/list"),
    ("list_sweep_not_list.yaml", "/stages/a/sweep/list"),
    ("list_sweep_not_mappings.yaml", "/stages/a/sweep/list"),
    ("logspace_not_positive.yaml", "/stages/a/sweep/grid/scale"),
    ("many_problems.yaml", "/stages/s0/kind"),
    ("missing_kind.yaml", "\"kind\" is a required property"),
    (
        "missing_required.yaml",
        "/stages/a: \"with\" is a required property",
    ),
    ("missing_stages.yaml", "\"stages\" is a required property"),
    ("name_is_number.yaml", "/name"),
    ("needs_list_of_maps.yaml", "/stages/b/needs"),
    ("needs_wrong_type.yaml", "/stages/b/needs"),
    ("no_stages_declared.yaml", "/stages"),
    ("params_is_list.yaml", "/params"),
    ("range_body_not_mapping.yaml", "/stages/a/sweep/grid/offset"),
    ("range_missing_stop.yaml", "/stages/a/sweep/grid/offset"),
    ("range_num_fraction.yaml", "/stages/a/sweep/grid/offset"),
    ("range_num_negative.yaml", "/stages/a/sweep/grid/offset"),
    ("range_num_string.yaml", "/stages/a/sweep/grid/offset"),
    ("range_unknown_key.yaml", "/stages/a/sweep/grid/offset"),
    ("ref_wrong_type.yaml", "/stages/b/with/rows"),
    ("replicates_string.yaml", "/stages/a/replicates"),
    ("replicates_zero.yaml", "/stages/a/replicates"),
    ("seed_float.yaml", "/seed"),
    ("seed_huge.yaml", "/seed"),
    ("several_problems.yaml", "/stages/a/kind"),
    ("stage_name_brackets.yaml", "/stages"),
    ("stage_not_map.yaml", "/stages/a"),
    ("stage_seed_string.yaml", "/stages/a/seed"),
    ("stages_not_map.yaml", "/stages"),
    ("sweep_two_types.yaml", "/stages/a/sweep"),
    ("sweep_unknown_type.yaml", "/stages/a/sweep"),
    ("top_not_map.yaml", "is not of type \"object\""),
    ("unknown_kind.yaml", "/stages/a/kind"),
    ("unknown_param.yaml", "rowz"),
    ("unknown_stage_key.yaml", "need"),
    ("unknown_top_key.yaml", "stagse"),
    ("unterminated_ref.yaml", "/stages/a/with/scale"),
    ("valid_sweep_other_error.yaml", "rowz"),
    ("with_is_list.yaml", "/stages/a/with"),
    ("wrong_type_float.yaml", "/stages/a/with/scale"),
    ("wrong_type_fraction_as_int.yaml", "/stages/a/with/rows"),
    ("wrong_type_int.yaml", "/stages/a/with/rows"),
    ("yaml11_no_is_a_string.yaml", "/stages/a/with/rows"),
    ("yaml11_yes_is_a_string.yaml", "/stages/a/with/proportional"),
];

#[test]
fn malformed_pipelines_of_the_type_error_kind_are_rejected_by_the_schema() {
    let v = validator();
    let mut failures = Vec::new();
    for (name, want) in REJECTED {
        let f = repo().join("tests/malformed").join(name);
        let errs = errors(&v, &yaml_json(&f));
        if !errs.iter().any(|e| e.contains(want)) {
            failures.push(format!(
                "{name}: expected an error with `{want}`, got {errs:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn references_sweeps_and_nulls_are_accepted_where_eqlab_accepts_them() {
    let v = validator();
    let ok = r#"
name: t
seed: 3
params: {rows: 5, scale: 2.5}
stages:
  a:
    kind: generate
    with: {rows: "${params.rows}", scale: "${params.scale}"}
  b:
    kind: generate
    with: {scale: "${stages.a.mean}", offset: "${sweep.o}"}
    sweep:
      grid: {o: {range: {start: 0, stop: 1, num: 3}}, rows: [2, 3]}
  c:
    kind: load_table
    description: the required path comes from the sweep
    sweep: {list: [{path: a.csv}, {path: b.csv}]}
  d:
    kind: cost_ode
    needs: [a]
    with: {cost: {power: {q: 1.5}}, beta: null}
    replicates: 2
  e:
    kind: collect
    foreach: b
    with: null
"#;
    let doc = yaml(ok);
    assert_eq!(errors(&v, &doc), Vec::<String>::new());
    // eqlab accepts it too.
    let p = Project::new();
    for csv in ["a.csv", "b.csv"] {
        p.write(csv, "date,close\n2020-01-02,1\n");
    }
    p.ok(&["plan", p.write("ok.yaml", ok).to_str().unwrap()]);
    // The same file with faults the schema can see: each is reported at its node.
    let bad = [
        (
            "with: {rows: \"${params.rows}\"",
            "with: {rows: \"${stages.a.rows}\"",
            "/stages/a/with/rows",
        ),
        ("seed: 3", "seed: 3.5", "/seed"),
        ("num: 3}", "num: 0}", "/stages/b/sweep"),
        ("grid: {o:", "grd: {o:", "/stages/b/sweep"),
        ("replicates: 2", "replicates: 0", "/stages/d/replicates"),
        ("kind: collect", "kind: colect", "/stages/e/kind"),
        (
            "\"${sweep.o}\"",
            "\"${ sweep.o }\"",
            "/stages/b/with/offset",
        ),
        ("beta: null}", "beta: high}", "/stages/d/with/beta"),
        (
            "{cost: {power: {q: 1.5}}, beta",
            "{beta",
            "/stages/d/with: \"cost\" is a required",
        ),
    ];
    for (from, to, at) in bad {
        assert!(ok.contains(from), "{from}");
        let doc = yaml(&ok.replacen(from, to, 1));
        let errs = errors(&v, &doc);
        assert!(
            errs.iter().any(|e| e.starts_with(at)),
            "{to}: expected an error at {at}, got {errs:?}"
        );
    }
}

#[test]
fn a_closed_pipe_ends_eqlab_schema_quietly() {
    let p = Project::new();
    let (code, err) = p.with_closed_stdout(&["schema"]);
    assert_eq!(code, Some(141), "{err}");
    assert!(err.is_empty(), "must stop quietly: {err}");
}
