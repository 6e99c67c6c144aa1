//! Bad input ends with exit 2, one clear message naming the file and line (or argument), and
//! no output file; an existing output is left as it was.

use std::fs;

use super::{entries, fails, fixture, write_generated};

/// Runs a failing export into a fresh folder and checks that nothing was left there.
fn fails_without_output(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let mut all = args.to_vec();
    all.extend(["-o", out.to_str().unwrap()]);
    let stderr = fails(&all, 2);
    assert_eq!(
        entries(dir.path()),
        Vec::<String>::new(),
        "no output left behind"
    );
    assert_eq!(stderr.lines().count(), stderr.trim_end().lines().count());
    stderr
}

#[test]
fn a_line_that_is_not_an_object() {
    let e = fails_without_output(&["export", "fixtures/bad/not-an-object.ndjson"]);
    assert!(
        e.contains("fixtures/bad/not-an-object.ndjson:3:1: expected a JSON object (one user), found an array"),
        "{e}"
    );
}

#[test]
fn invalid_json_names_line_and_column() {
    let e = fails_without_output(&["export", "fixtures/bad/invalid-json.ndjson"]);
    assert!(e.contains("fixtures/bad/invalid-json.ndjson:4:"), "{e}");
    assert!(e.contains("invalid JSON"), "{e}");
}

#[test]
fn invalid_utf8() {
    let e = fails_without_output(&["export", "fixtures/bad/invalid-utf8.ndjson"]);
    assert!(
        e.contains("fixtures/bad/invalid-utf8.ndjson:2:33: invalid UTF-8"),
        "{e}"
    );
}

#[test]
fn truncated_gzip_is_an_error_not_a_short_export() {
    let e = fails_without_output(&["export", "fixtures/bad/truncated.ndjson.gz"]);
    assert!(
        e.contains("cannot read fixtures/bad/truncated.ndjson.gz"),
        "{e}"
    );
    assert!(e.contains("gzip"), "{e}");
}

#[test]
fn trailing_comma_in_a_json_array() {
    let e = fails_without_output(&["export", "fixtures/bad/trailing-comma.json"]);
    assert!(
        e.contains("fixtures/bad/trailing-comma.json:4:1: invalid JSON: trailing comma"),
        "{e}"
    );
}

#[test]
fn a_missing_file() {
    let e = fails_without_output(&["export", "fixtures/no-such-file.ndjson"]);
    assert!(
        e.contains("cannot read fixtures/no-such-file.ndjson: No such file"),
        "{e}"
    );
}

#[test]
fn an_unknown_output_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.txt");
    let e = fails(
        &[
            "export",
            "fixtures/users.ndjson",
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("unknown output format"), "{e}");
    assert!(!out.exists());
    let e = fails(&["export", "fixtures/users.ndjson", "--format", "xml"], 2);
    assert!(e.contains("invalid value 'xml'"), "{e}");
}

#[test]
fn malformed_fields_files() {
    let e = fails_without_output(&[
        "export",
        "fixtures/users.ndjson",
        "--fields",
        "fixtures/bad/fields-not-a-list.json",
    ]);
    assert!(
        e.contains("--fields fixtures/bad/fields-not-a-list.json: expected a JSON array"),
        "{e}"
    );
    let e = fails_without_output(&[
        "export",
        "fixtures/users.ndjson",
        "--fields",
        "fixtures/bad/fields-bad-path.json",
    ]);
    assert!(
        e.contains("--fields fixtures/bad/fields-bad-path.json: user_metadata.plan +"),
        "{e}"
    );
    let e = fails_without_output(&["export", "fixtures/users.ndjson", "--fields", "nope.json"]);
    assert!(e.contains("cannot read nope.json"), "{e}");
}

#[test]
fn a_path_that_does_not_parse_gets_a_caret() {
    let e = fails_without_output(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "Plan=user_metadata..plan",
    ]);
    assert!(e.contains("--field Plan=user_metadata..plan: "), "{e}");
    assert!(e.contains("\n  user_metadata..plan\n"), "{e}");
    assert!(e.contains('^'), "{e}");
    let e = fails_without_output(&["export", "fixtures/users.ndjson", "--field", "=email"]);
    assert!(e.contains("--field =email: expected [COLUMN=]EXPR"), "{e}");
    let e = fails_without_output(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "email",
        "--field",
        "email",
    ]);
    assert!(e.contains("\"email\" is used twice"), "{e}");
}

#[test]
fn a_failure_after_output_began_leaves_no_partial_file_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("late-error.ndjson");
    write_generated(&input, 20_000);
    let mut text = fs::read_to_string(&input).unwrap();
    text.push_str("{\"user_id\": oops}\n");
    fs::write(&input, text).unwrap();
    let out = dir.path().join("report.csv");
    fs::write(&out, "the previous report\n").unwrap();
    let e = fails(
        &[
            "export",
            input.to_str().unwrap(),
            "--field",
            "user_id",
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("late-error.ndjson:20001:"), "{e}");
    assert_eq!(fs::read_to_string(&out).unwrap(), "the previous report\n");
    assert_eq!(entries(dir.path()), ["late-error.ndjson", "report.csv"]);
    let _ = fixture("users.ndjson");
}

#[test]
fn unsupported_expressions_are_refused_before_reading() {
    let e = fails_without_output(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "X=user.name.repeat(3)",
    ]);
    assert!(
        e.contains("--field X=user.name.repeat(3): .repeat() is not part of the expression language\n  user.name.repeat(3)\n  ^^^^^^^^^^^^^^^^"),
        "{e}"
    );
    let e = fails_without_output(&["export", "fixtures/users.ndjson", "--field", "user.a ** 2"]);
    assert!(
        e.contains("this is not part of the expression language\n  user.a ** 2\n  ^^^^^^^^^^^"),
        "{e}"
    );
    let e = fails_without_output(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "new Date(user.created_at)",
    ]);
    assert!(e.contains("new Date(x).toISOString() or .getTime()"), "{e}");
}

#[test]
fn line_numbers_hold_across_decoding_chunks() {
    // 80,000 users are several chunks of the parallel decoder; the bad line is in a later one.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.ndjson");
    write_generated(&input, 80_000);
    let mut lines: Vec<String> = fs::read_to_string(&input)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines[61_233] = "{\"user_id\": \"x\", \"email\": tru}".to_string();
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    let e = fails(
        &["export", input.to_str().unwrap(), "--field", "user_id"],
        2,
    );
    assert!(e.contains("big.ndjson:61234:"), "{e}");
}

#[test]
fn mapped_files_read_byte_order_marks_long_lines_and_a_missing_last_newline() {
    // Plain files are mapped into memory a window at a time: a mark at the start, a line
    // longer than a window and a last line without its newline must read as from a stream.
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(9 << 20);
    let text = format!(
        "\u{feff}{{\"user_id\":\"a\"}}\n\n{{\"user_id\":\"b\",\"user_metadata\":{{\"note\":\"{long}\"}}}}\n{{\"user_id\":\"c\"}}"
    );
    let input = dir.path().join("users.ndjson");
    fs::write(&input, &text).unwrap();
    let path = input.to_str().unwrap();
    let out = super::ok(&[
        "export",
        path,
        "--field",
        "user_id",
        "--field",
        "n=user.user_metadata.note.length",
    ]);
    assert_eq!(out, "user_id,n\na,\nb,9437184\nc,\n");
    // The same bytes through stdin (a stream, not a map) give the same report.
    let piped = super::userport()
        .args([
            "export",
            "-",
            "--field",
            "user_id",
            "--field",
            "n=user.user_metadata.note.length",
        ])
        .stdin(fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(piped.stdout).unwrap(), out);
    // A bad line after the long one is named by its number.
    fs::write(&input, format!("{text}\n{{\"user_id\":tru}}\n")).unwrap();
    let e = fails(&["export", path, "--field", "user_id"], 2);
    assert!(e.contains("users.ndjson:5:"), "{e}");
}

#[test]
fn an_expression_that_fails_in_the_decoding_threads_reads_as_datafusion_says_it() {
    for sort in [&[][..], &["--sort", "email"][..]] {
        let mut args = vec![
            "export",
            "fixtures/users.ndjson",
            "--field",
            "email",
            "--where",
            "CAST(email AS INT) > 3",
        ];
        args.extend_from_slice(sort);
        let e = fails_without_output(&args);
        assert!(e.contains("Cast error: Cannot cast string"), "{e}");
        assert!(!e.contains("internal"), "{e}");
    }
}
