//! Helpers shared by the command-line tests, and the tests by subcommand.

mod architecture;
mod conformance;
mod export;
mod export_errors;
mod expressions;
mod hardening;
mod hashes;
mod import;
mod migrate;
mod postgres;
mod prepare;
mod queries;
mod recordings;
mod search;
mod sql;
mod tenant;
mod tenant_export;
mod tenants;
mod updates;
mod validate;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The project's root folder.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture's path.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// A `userport` command.
pub fn userport() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_userport"));
    cmd.current_dir(root()).stdin(Stdio::null());
    cmd
}

/// Runs `userport ARGS` and returns its output.
pub fn run(args: &[&str]) -> Output {
    userport().args(args).output().expect("running userport")
}

/// Runs `userport ARGS`, asserts success, and returns stdout as text.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "userport {args:?} failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// Runs `userport ARGS`, asserts it failed with exit code `code`, and returns stderr.
pub fn fails(args: &[&str], code: i32) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "userport {args:?}: expected exit {code}, stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).expect("stderr is UTF-8")
}

/// The users of an NDJSON or JSON-array text, as JSON values.
pub fn users_of(text: &str) -> Vec<serde_json::Value> {
    if text.trim_start().starts_with('[') {
        match serde_json::from_str(text).expect("a JSON array") {
            serde_json::Value::Array(users) => users,
            _ => unreachable!(),
        }
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("one JSON value a line"))
            .collect()
    }
}

/// The names of the entries of a folder, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("reading a folder")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Writes `count` generated users (sequential ids, varied metadata) as NDJSON to `path`.
pub fn write_generated(path: &Path, count: usize) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..count {
        let meta = match i % 3 {
            0 => format!(r#"{{"plan":"pro","n":{i}}}"#),
            1 => format!(r#"{{"plan":{i},"tags":["a","b"]}}"#),
            _ => "{}".to_string(),
        };
        writeln!(
            out,
            r#"{{"user_id":"auth0|{i:08}","email":"user{i}@example.com","email_verified":{},"logins_count":{i},"identities":[{{"connection":"db","provider":"auth0","isSocial":false}}],"user_metadata":{meta}}}"#,
            i % 2 == 0
        )
        .unwrap();
    }
}
