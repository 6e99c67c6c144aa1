//! `userport export` on the fixtures: fidelity, columns, formats, value rendering, order.

use std::fs;

use serde_json::{Value, json};

use super::{entries, fixture, ok, run, userport, users_of, write_generated};

fn fixture_users() -> Vec<Value> {
    users_of(&fs::read_to_string(fixture("users.ndjson")).unwrap())
}

#[test]
fn whole_users_round_trip_from_every_input_kind() {
    let expected = fixture_users();
    assert!(expected.len() >= 40, "the fixture is a realistic export");
    for input in [
        "users.ndjson",
        "users.ndjson.gz",
        "users-export",
        "users.json",
    ] {
        let path = fixture(input);
        let out = ok(&["export", path.to_str().unwrap(), "--format", "ndjson"]);
        let got = users_of(&out);
        assert_eq!(got.len(), expected.len(), "{input}");
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g, e, "{input}: user {i} differs");
        }
    }
}

#[test]
fn fidelity_covers_the_hard_cases() {
    // The fixture must hold what the fidelity test claims to prove.
    let users = fixture_users();
    let text = fs::read_to_string(fixture("users.ndjson")).unwrap();
    assert!(text.contains("🦊"), "non-BMP characters");
    assert!(text.contains(r#""name":null"#), "explicit nulls");
    assert!(text.contains(r#""empty":{}"#), "empty objects");
    assert!(
        text.contains(r#""favorite_color":"teal""#),
        "an unknown top-level key"
    );
    assert!(
        text.contains(r#""negzero":-0.0"#) && text.contains("1e+21"),
        "odd numbers"
    );
    let plan_types: std::collections::HashSet<&str> = users
        .iter()
        .filter_map(|u| u.pointer("/user_metadata/plan"))
        .map(|p| match p {
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Object(_) => "object",
            Value::Array(_) => "array",
            _ => "other",
        })
        .collect();
    assert!(
        plan_types.len() >= 3,
        "user_metadata.plan changes type: {plan_types:?}"
    );
    assert!(
        users.iter().any(|u| u.get("email").is_none()),
        "absent fields"
    );
    let depth = users
        .iter()
        .filter_map(|u| u.pointer("/user_metadata/address/geo/tags/0/1/b/1/c"))
        .count();
    assert_eq!(depth, 1, "deep metadata");
}

#[test]
fn raw_text_survives_exactly() {
    // Timestamps keep their exact text; numbers keep their text in metadata.
    let out = ok(&["export", "fixtures/users.ndjson", "--format", "ndjson"]);
    assert!(out.contains(r#""created_at":"2020-10-06T15:29:11.123Z""#));
    assert!(out.contains(r#""huge_int":9007199254740993"#));
    assert!(out.contains(r#""escaped":"tab\there \"quoted\" back\\slash \u0001""#));
}

#[test]
fn several_inputs_are_one_table_in_order() {
    let out = ok(&[
        "export",
        "fixtures/users.ndjson",
        "fixtures/users.json",
        "--field",
        "user_id",
        "--format",
        "ndjson",
    ]);
    let ids: Vec<Value> = users_of(&out)
        .into_iter()
        .map(|u| u["user_id"].clone())
        .collect();
    let once: Vec<Value> = fixture_users()
        .into_iter()
        .map(|u| u["user_id"].clone())
        .collect();
    assert_eq!(ids.len(), 2 * once.len());
    assert_eq!(ids[..once.len()], once[..]);
    assert_eq!(ids[once.len()..], once[..]);
}

#[test]
fn stdin_is_an_input() {
    let mut child = userport()
        .args(["export", "-", "--field", "email", "--format", "csv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let data = fs::read(fixture("users.ndjson.gz")).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&data).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().next(), Some("email"));
    assert_eq!(text.lines().count(), fixture_users().len() + 1);
}

#[test]
fn default_fields_report() {
    let out = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--default-fields",
        "--format",
        "csv",
    ]);
    insta::assert_snapshot!("default_fields_csv", out);
}

#[test]
fn fields_file_and_field_flags_make_the_same_report() {
    let from_file = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--fields",
        "fixtures/fields.json",
    ]);
    let from_flags = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "Id=user_id",
        "--field",
        "email",
        "--field",
        "Plan=user.user_metadata.plan",
        "--field",
        "Connection=identities[0].connection",
        "--field",
        "First role=app_metadata.roles[0]",
    ]);
    assert_eq!(from_file, from_flags);
    assert_eq!(
        from_file.lines().next(),
        Some("Id,email,Plan,Connection,First role")
    );
}

#[test]
fn mapped_json_has_every_column_with_typed_values() {
    let out = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "id=user_id",
        "--field",
        "plan=user_metadata.plan",
        "--field",
        "verified=email_verified",
        "--field",
        "logins=logins_count",
        "--field",
        "color=favorite_color",
        "--field",
        "geo=user_metadata.address.geo",
        "--format",
        "json",
    ]);
    let rows = users_of(&out);
    assert_eq!(rows.len(), fixture_users().len());
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(
        row("auth0|000000000000000000000001"),
        json!({"id": "auth0|000000000000000000000001", "plan": 3, "verified": false,
               "logins": 0, "color": null, "geo": null})
    );
    let zoe = row("auth0|5f7c8ec7c33c6c004bbafe82");
    assert_eq!(zoe["plan"], json!({"name": "enterprise", "seats": 250}));
    assert_eq!(zoe["geo"]["tags"][0][1]["b"][1], json!({"c": null}));
    assert_eq!(
        row("auth0|000000000000000000000002")["color"],
        json!("teal")
    );
    for r in &rows {
        assert_eq!(
            r.as_object().unwrap().len(),
            6,
            "every column in every row: {r}"
        );
    }
    // Keys come in the order of the columns.
    let first_line = out.lines().nth(1).unwrap();
    assert!(first_line.starts_with(r#"{"id":"#), "{first_line}");
}

#[test]
fn numbers_print_as_javascript_prints_them() {
    let mut args = vec!["export", "fixtures/users.ndjson", "--field", "user_id"];
    let keys = [
        "zero", "negzero", "big", "tenth", "huge_int", "one", "small", "third",
    ];
    let specs: Vec<String> = keys
        .iter()
        .map(|k| format!("{k}=user_metadata.{k}"))
        .collect();
    for s in &specs {
        args.extend(["--field", s]);
    }
    let out = ok(&args);
    let line = out
        .lines()
        .find(|l| l.starts_with("auth0|000000000000000000000001"))
        .unwrap();
    assert_eq!(
        line,
        "auth0|000000000000000000000001,0,0,1e+21,0.1,9007199254740992,1,1e-7,0.3333333333333333"
    );
}

#[test]
fn csv_quotes_and_neutralizes_formulas() {
    let args = [
        "export",
        "fixtures/users.ndjson",
        "--field",
        "name",
        "--field",
        "given_name",
        "--field",
        "family_name",
        "--field",
        "nickname",
        "--field",
        "logins_count",
    ];
    let guarded = ok(&args);
    assert!(
        guarded.contains(r#""'=HYPERLINK(""http://evil.test"",""click"")",'+1 555,'@risk,-5,0"#)
    );
    assert!(guarded.contains("\"Smith, \"\"Jo\"\"\nSecond line\",,,'\tindent,"));
    let mut raw_args = args.to_vec();
    raw_args.push("--no-csv-guard");
    let raw = ok(&raw_args);
    assert!(raw.contains(r#""=HYPERLINK(""http://evil.test"",""click"")",+1 555,@risk,-5,0"#));
    // The CSV reads back as the same number of records and fields.
    let mut reader = csv::Reader::from_reader(guarded.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), fixture_users().len());
    assert!(records.iter().all(|r| r.len() == 5));
}

#[test]
fn whole_user_csv_has_every_column_and_json_texts() {
    let out = ok(&["export", "fixtures/users.ndjson", "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "user_id");
    assert_eq!(headers.iter().next_back(), Some("_extra"));
    let md = headers.iter().position(|h| h == "user_metadata").unwrap();
    let first = reader.records().next().unwrap().unwrap();
    // Objects are written as JavaScript's JSON.stringify writes them: numbers such as 0.0
    // and -0 become 0, the rest is the same value.
    assert_eq!(
        &first[md],
        r#"{"plan":"free","preferences":{"theme":"dark","notifications":{"email":true,"sms":true}},"favorite_numbers":[0,0,0],"language":"en"}"#
    );
    assert!(fixture_users()[0]["user_metadata"]["favorite_numbers"][2].as_f64() == Some(-0.0));
}

#[test]
fn output_format_comes_from_the_extension_and_gzip_works() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("report.csv");
    let gz = dir.path().join("report.csv.gz");
    for out in [&plain, &gz] {
        ok(&[
            "export",
            "fixtures/users.ndjson",
            "--default-fields",
            "-o",
            out.to_str().unwrap(),
        ]);
    }
    let plain = fs::read_to_string(&plain).unwrap();
    let mut unzipped = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(fs::File::open(&gz).unwrap())
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(plain, unzipped);
    assert!(plain.starts_with("Id,Given Name,"));
    assert_eq!(entries(dir.path()), ["report.csv", "report.csv.gz"]);

    let nd = dir.path().join("users.ndjson");
    ok(&["export", "fixtures/users.json", "-o", nd.to_str().unwrap()]);
    assert_eq!(users_of(&fs::read_to_string(&nd).unwrap()), fixture_users());
    let js = dir.path().join("users.json");
    ok(&[
        "export",
        "fixtures/users.ndjson",
        "-o",
        js.to_str().unwrap(),
    ]);
    let text = fs::read_to_string(&js).unwrap();
    assert!(text.starts_with("[\n{"));
    assert_eq!(users_of(&text), fixture_users());
}

#[test]
fn parquet_keeps_types_for_users_and_renders_mapped_json() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("users.parquet");
    ok(&[
        "export",
        "fixtures/users.ndjson",
        "-o",
        whole.to_str().unwrap(),
    ]);
    let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&whole).unwrap()).unwrap();
    let schema = reader.schema().clone();
    assert_eq!(
        schema
            .field_with_name("logins_count")
            .unwrap()
            .data_type()
            .to_string(),
        "Int64"
    );
    assert_eq!(
        schema
            .field_with_name("email_verified")
            .unwrap()
            .data_type()
            .to_string(),
        "Boolean"
    );
    let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, fixture_users().len());

    let mapped = dir.path().join("report.parquet");
    ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "id=user_id",
        "--field",
        "plan=user_metadata.plan",
        "-o",
        mapped.to_str().unwrap(),
    ]);
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&mapped).unwrap()).unwrap();
    let batch = reader.build().unwrap().next().unwrap().unwrap();
    let plans = datafusion::arrow::util::display::ArrayFormatter::try_new(
        batch.column(1).as_ref(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(plans.value(0).to_string(), "free");
    assert_eq!(
        plans.value(1).to_string(),
        r#"{"name":"enterprise","seats":250}"#
    );
    assert_eq!(plans.value(2).to_string(), "3");
}

#[test]
fn users_come_out_in_input_order_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.ndjson");
    write_generated(&input, 30_000);
    let out = ok(&["export", input.to_str().unwrap(), "--field", "user_id"]);
    let ids: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(ids.len(), 30_000);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(*id, format!("auth0|{i:08}"));
    }
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.ndjson");
    write_generated(&input, 50_000);
    let mut child = userport()
        .args(["export", input.to_str().unwrap(), "--format", "ndjson"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    use std::io::Read;
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn help_lists_the_export_options() {
    let out = run(&["export", "--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--field",
        "--fields",
        "--default-fields",
        "--format",
        "--output",
        "--no-csv-guard",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn expressions_make_columns() {
    let out = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "Name=user.user_metadata.name || user.name",
        "--field",
        "Domain=user.email ? user.email.split('@')[1].toLowerCase() : 'none'",
        "--field",
        "Label=`${user.nickname ?? '?'}: ${user.logins_count ?? 0} logins`",
        "--field",
        "Roles=Array.isArray(user.app_metadata.roles) ? user.app_metadata.roles.join('|') : user.app_metadata.roles",
        "--field",
        "Days=Math.floor((Date.parse(user.updated_at) - Date.parse(user.created_at)) / 86400000)",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("Name,Domain,Label,Roles,Days"));
    assert_eq!(
        lines.next(),
        Some("Ana Almeida,example.com,ana: 1 logins,admin,132")
    );
    // The third user: the label starts with "-" (guarded), no updated_at gives NaN days, as
    // JavaScript says.
    assert_eq!(
        out.lines().nth(3).unwrap(),
        "\"'=HYPERLINK(\"\"http://evil.test\"\",\"\"click\"\")\",example.com,'-5: 0 logins,admin,NaN"
    );
}

#[test]
fn explain_shows_expressions_sql_and_plans_without_reading() {
    // The input's fourth line is bad JSON: --explain reads no user, so it does not fail.
    let out = ok(&[
        "export",
        "fixtures/bad/invalid-json.ndjson",
        "--field",
        "Name=user.user_metadata.name || user.name",
        "--field",
        "email",
        "--explain",
    ]);
    assert!(
        out.contains("  Name\n    expression: (user.user_metadata.name || user.name)\n"),
        "{out}"
    );
    assert!(
        out.contains("    sql:        js_or(json_path(user_metadata, 'name'), js_defined(\"name\", json_path(_extra, 'name')))"),
        "{out}"
    );
    assert!(out.contains("Logical plan:\n  Projection: "), "{out}");
    // The projection runs in the scan (its decoding threads): the plan is the scan alone,
    // and the path into the metadata is read there too (the metadata is not decoded).
    assert!(out.contains("Physical plan:\n  UsersExec: inputs=[fixtures/bad/invalid-json.ndjson], decoded=[email, name, _extra], paths=[user_metadata.name], projection=Projection[js_or(user_metadata.name@"), "{out}");
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("users.ndjson");
    super::write_generated(&input, 20_000);
    let out = super::run(&[
        "export",
        input.to_str().unwrap(),
        "--default-fields",
        "-o",
        tmp.path().join("out.csv").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "");
}
