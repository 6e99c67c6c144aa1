//! `prepare --hashes`: Auth0's password-hash export merged into the import rows by
//! connection and user id, with what matched nothing counted and listed.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::{fails, run, users_of};

const BCRYPT: &str = "$2b$10$.qHPp/srqo1NAAAAAvlkmOdqAbH2Rg0qPv2Txj3ZwXfjJnewSjc4m";

fn hash(n: u32) -> String {
    format!("$2b$10${:053}", n)
}

fn profile(id: &str, email: &str, connection: &str) -> String {
    let provider = id.split('|').next().unwrap();
    json!({"user_id": id, "email": email, "email_verified": true, "logins_count": 3,
           "identities": [{"provider": provider, "connection": connection, "user_id": id.split('|').nth(1), "isSocial": provider != "auth0"}]})
    .to_string()
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn rows(dir: &Path) -> Vec<Value> {
    read(&dir.join("manifest.json"))["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| users_of(&fs::read_to_string(dir.join(f["file"].as_str().unwrap())).unwrap()))
        .collect()
}

#[test]
fn hashes_go_to_their_users_and_the_rest_is_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("users.ndjson");
    let profiles = [
        profile("auth0|5f0000000000000000000001", "one@example.com", "db"),
        profile("auth0|legacy-7", "seven@example.com", "db"),
        profile("auth0|5f0000000000000000000003", "three@example.com", "db"),
        profile(
            "auth0|5f0000000000000000000004",
            "four@example.com",
            "Other-DB",
        ),
        profile("google-oauth2|123", "social@example.com", "google-oauth2"),
        profile("auth0|5f0000000000000000000006", "six@example.com", "db"),
    ];
    fs::write(&export, profiles.join("\n") + "\n").unwrap();
    let plain = tmp.path().join("hashes.ndjson");
    let lines = [
        json!({"_id": {"$oid": "5f0000000000000000000001"}, "email": "one@example.com", "email_verified": true, "passwordHash": hash(1), "password_set_date": {"$date": "2019-12-06T18:36:12.412Z"}, "tenant": "t", "connection": "db"}),
        json!({"_id": {"$oid": "5f00000000000000000000aa"}, "alt_id": "legacy-7", "passwordHash": hash(7), "tenant": "t", "connection": "db", "identifiers": [{"type": "email", "value": "seven@example.com", "verified": true}]}),
        json!({"_id": {"$oid": "5f0000000000000000000004"}, "email": "four@example.com", "passwordHash": hash(4), "connection": "Other-DB"}),
    ];
    fs::write(
        &plain,
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let gz = tmp.path().join("more.ndjson.gz");
    let mut encoder =
        flate2::write::GzEncoder::new(fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    for line in [
        json!({"_id": {"$oid": "5f0000000000000000000006"}, "email": "six@example.com", "passwordHash": hash(6), "connection": "Other-DB"}),
        json!({"_id": {"$oid": "5f0000000000000000000009"}, "email": "nine@example.com", "passwordHash": hash(9), "connection": "db"}),
    ] {
        writeln!(encoder, "{line}").unwrap();
    }
    encoder.finish().unwrap();
    let out = tmp.path().join("out");
    let output = run(&[
        "prepare",
        export.to_str().unwrap(),
        "--connection",
        "db",
        "--hashes",
        plain.to_str().unwrap(),
        "--hashes",
        gz.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("password hashes: 2 of 5 went to their users"),
        "{stderr}"
    );
    let written = rows(&out);
    let by_email = |email: &str| {
        written
            .iter()
            .find(|u| u["email"] == email)
            .unwrap()
            .clone()
    };
    assert_eq!(by_email("one@example.com")["password_hash"], hash(1));
    assert_eq!(
        by_email("one@example.com")["user_id"],
        "5f0000000000000000000001"
    );
    assert_eq!(by_email("seven@example.com")["password_hash"], hash(7));
    assert!(by_email("three@example.com").get("password_hash").is_none());
    // The same id in another connection is another user: its hash is not this one's.
    assert!(by_email("six@example.com").get("password_hash").is_none());
    let manifest = read(&out.join("manifest.json"));
    assert_eq!(
        manifest["hashes"],
        json!({"hashes": 5, "matched": 2, "profiles_without_hash": 2, "hashes_without_profile": 1, "hashes_of_other_connections": 2, "duplicates": 0})
    );
    let without: Vec<Value> = serde_json::from_value(read(&out.join("without-hash.json"))).unwrap();
    let emails: Vec<&str> = without
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["three@example.com", "six@example.com"]);
    let unmatched: Vec<Value> =
        serde_json::from_value(read(&out.join("unmatched-hashes.json"))).unwrap();
    let listed: Vec<(String, String, u64)> = unmatched
        .iter()
        .map(|u| {
            (
                u["user_id"].as_str().unwrap().to_string(),
                u["reason"].as_str().unwrap().to_string(),
                u["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed[0].0, "auth0|5f0000000000000000000004");
    assert!(listed[0].1.contains("of connection Other-DB"), "{listed:?}");
    assert_eq!(listed[1].0, "auth0|5f0000000000000000000006");
    assert!(listed[1].1.contains("of connection Other-DB"));
    assert_eq!(
        listed[2],
        (
            "auth0|5f0000000000000000000009".into(),
            "no profile has this user id".into(),
            2
        )
    );
    assert!(
        unmatched.iter().all(|u| u.get("password_hash").is_none()),
        "hashes are not listed"
    );
    // The rows pass validate.
    let check = run(&["validate", out.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn a_malformed_hash_line_is_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("users.ndjson");
    fs::write(&export, profile("auth0|1", "a@example.com", "db") + "\n").unwrap();
    let hashes = tmp.path().join("h.ndjson");
    fs::write(
        &hashes,
        format!(
            "{}\n{{\"_id\": {{\"$oid\": \"2\"}}, \"email\": \"b@example.com\"}}\n",
            json!({"_id": {"$oid": "1"}, "passwordHash": BCRYPT})
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let stderr = fails(
        &[
            "prepare",
            export.to_str().unwrap(),
            "--hashes",
            hashes.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(
        stderr.contains("h.ndjson:2:1") && stderr.contains("passwordHash"),
        "{stderr}"
    );
    assert!(!out.exists());
    fs::write(&hashes, "{\"_id\": \n").unwrap();
    let stderr = fails(
        &[
            "prepare",
            export.to_str().unwrap(),
            "--hashes",
            hashes.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(
        stderr.contains("h.ndjson:1:1") && stderr.contains("password-hash export"),
        "{stderr}"
    );
}

/// The two sample users of Auth0's article on the password-hash export (read in place; the
/// test says so and passes when `../shared/auth0` is absent).
#[test]
fn the_documented_sample_export_is_read() {
    let sample =
        super::root().join("../shared/auth0/auth0-docs/password-hash-export.docs-samples.ndjson");
    if !sample.exists() {
        eprintln!("skipped: {} is absent", sample.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("users.ndjson");
    fs::write(
        &export,
        profile(
            "auth0|euclid",
            "nico9090@nico.com",
            "Username-Password-Authentication",
        ) + "\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let output = run(&[
        "prepare",
        export.to_str().unwrap(),
        "--hashes",
        sample.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // alt_id "euclid" is the user id; the first line's hash goes to the user, the second
    // line (the article's second sample, the same alt_id) is listed as a second hash.
    assert_eq!(rows(&out)[0]["password_hash"], BCRYPT);
    let manifest = read(&out.join("manifest.json"));
    assert_eq!(manifest["hashes"]["matched"], 1);
    assert_eq!(manifest["hashes"]["duplicates"], 1);
    let unmatched = read(&out.join("unmatched-hashes.json"));
    assert_eq!(unmatched[0]["email"], "user@example.com");
    assert_eq!(unmatched[0]["line"], 2);
}
