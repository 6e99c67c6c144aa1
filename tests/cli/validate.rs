//! `userport validate`: import files checked as Auth0 checks them; Auth0's own examples
//! pass; each problem names file, user, line, JSON pointer and code.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use super::{fixture, ok, run};

/// Auth0's documentation examples, when `../shared/auth0` is there.
fn auth0_docs() -> Option<PathBuf> {
    let dir = super::root().join("../shared/auth0/auth0-docs");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: ../shared/auth0/auth0-docs is absent (Auth0's bulk-import examples)");
        None
    }
}

/// Runs `validate ARGS`; returns exit code, stdout, stderr.
fn validate(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["validate"];
    all.extend(args);
    let out = run(&all);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn auth0s_documented_examples_validate() {
    let Some(docs) = auth0_docs() else { return };
    let mut checked = 0;
    for entry in fs::read_dir(&docs).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // The examples themselves; not the derived list of their plaintext passwords.
        if !name.starts_with("bulk-import-")
            || !name.contains("example")
            || name.contains("DERIVED")
        {
            continue;
        }
        let (code, stdout, stderr) = validate(&[path.to_str().unwrap()]);
        if name.ends_with(".docs-verbatim.jsonc") {
            // The docs' MFA example has a trailing comma after velma's factor (line 39;
            // its `]` is on line 40).
            assert_eq!(code, 1, "{name}: {stdout}{stderr}");
            assert!(
                stdout.contains(&format!(
                    "{}:39:8: INVALID_JSON: not valid JSON: trailing comma: JSON allows no \
                     comma before ] (line 40)",
                    path.display()
                )),
                "{stdout}"
            );
        } else {
            assert_eq!(code, 0, "{name}: {stdout}{stderr}");
            assert!(stderr.contains("all valid"), "{stderr}");
        }
        checked += 1;
    }
    assert_eq!(checked, 4, "the four bulk-import example files");
}

#[test]
fn each_problem_names_file_user_line_pointer_and_code() {
    let (code, stdout, stderr) = validate(&["fixtures/import/bad-users.json"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("1 file, 7 users: 15 problems in 6 users"),
        "{stderr}"
    );
    insta::assert_snapshot!("validate_bad_users", stdout);
    let (code, stdout, _) = validate(&["fixtures/import/bad-users.json", "--format", "json"]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["users"], 7);
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 15);
    let dup = problems
        .iter()
        .find(|p| p["code"] == "DUPLICATED_USER")
        .unwrap();
    assert_eq!(dup["index"], 2);
    assert_eq!(dup["line"], 12);
    assert_eq!(dup["pointer"], "/email");
    assert_eq!(dup["email"], "OK@Example.com");
    assert_eq!(dup["rule"], "auth0");
    let fmt = problems
        .iter()
        .find(|p| p["code"] == "INVALID_FORMAT")
        .unwrap();
    assert_eq!(fmt["rule"], "schema");
    assert_eq!(fmt["index"], 5);

    let (code, stdout, stderr) = validate(&["fixtures/import/good-users.json"]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    assert!(stderr.contains("1 file, 2 users: all valid"), "{stderr}");
}

#[test]
fn duplicates_are_found_across_files() {
    let (code, stdout, _) = validate(&[
        "fixtures/import/good-users.json",
        "fixtures/import/bad-users.json",
    ]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains(
            "fixtures/import/bad-users.json:2: user [0] <ok@example.com> at /email \
             DUPLICATED_USER: email \"ok@example.com\" is already used (without regard to \
             case) by user [0] of fixtures/import/good-users.json"
        ),
        "{stdout}"
    );
}

#[test]
fn files_auth0_would_refuse_whole() {
    let tmp = tempfile::tempdir().unwrap();
    // Larger than 512000 bytes.
    let big = tmp.path().join("big.json");
    let users: Vec<String> = (0..6000)
        .map(|i| format!(r#"{{"email":"user{i}@example.com","email_verified":true,"name":"User number {i} with a long name"}}"#))
        .collect();
    fs::write(&big, format!("[\n{}\n]\n", users.join(",\n"))).unwrap();
    let (code, stdout, _) = validate(&[big.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stdout.contains("FILE_TOO_LARGE"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "the users themselves are fine");
    // NDJSON is not an import file.
    let (code, stdout, _) = validate(&[fixture("users.ndjson").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("users.ndjson:1: INVALID_TYPE: an import file is a JSON array"),
        "{stdout}"
    );
    // Not JSON at all: the line and column.
    let (code, stdout, _) = validate(&["fixtures/bad/trailing-comma.json"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("INVALID_JSON"), "{stdout}");
    // A file that cannot be read is exit 2.
    let (code, _, stderr) = validate(&["fixtures/import/missing.json"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot read fixtures/import/missing.json"),
        "{stderr}"
    );
}

#[test]
fn a_prepared_folder_is_checked_against_its_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    ok(&[
        "prepare",
        "fixtures/users.ndjson",
        "-o",
        out.to_str().unwrap(),
    ]);
    ok(&["validate", out.join("manifest.json").to_str().unwrap()]);
    let file = out.join("users-0001.json");
    let text = fs::read_to_string(&file).unwrap();
    fs::write(
        &file,
        text.replacen("\"email_verified\":false", "\"email_verified\":true", 1),
    )
    .unwrap();
    let (code, stdout, _) = validate(&[out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("MANIFEST_MISMATCH: the file changed since prepare wrote it"),
        "{stdout}"
    );
}
