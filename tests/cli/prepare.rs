//! `userport prepare`: export users → Auth0 import files that pass `validate`, refused users
//! with their reasons, files under the size limit, a folder that appears whole or not at all.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{entries, fails, fixture, ok, run, users_of, write_generated};

/// What an import user may hold.
use userport::import::rules::PROPERTIES as IMPORTABLE;

/// Runs `userport prepare ARGS -o DIR/out` and returns the folder and stderr.
fn prepare(dir: &Path, args: &[&str]) -> (std::path::PathBuf, String) {
    let out = dir.join("out");
    let mut all = vec!["prepare"];
    all.extend(args);
    all.extend(["-o", out.to_str().unwrap()]);
    let output = run(&all);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{all:?}: {stderr}");
    (out, stderr)
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The users of every file a manifest lists, in order.
fn prepared_users(dir: &Path) -> Vec<Value> {
    let manifest = json(&dir.join("manifest.json"));
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| users_of(&fs::read_to_string(dir.join(f["file"].as_str().unwrap())).unwrap()))
        .collect()
}

/// Each refused user's input number and its error codes.
fn rejected(dir: &Path) -> BTreeMap<u64, Vec<String>> {
    json(&dir.join("rejected.json"))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let codes = r["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["code"].as_str().unwrap().to_string())
                .collect();
            (r["input"].as_u64().unwrap(), codes)
        })
        .collect()
}

#[test]
fn an_export_becomes_import_files_that_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, stderr) = prepare(tmp.path(), &["fixtures/users.ndjson"]);
    assert_eq!(
        entries(&out),
        ["manifest.json", "rejected.json", "users-0001.json"]
    );
    assert!(
        stderr.contains("prepared 23 users of 46 read into 1 file"),
        "{stderr}"
    );
    assert!(stderr.contains("UNSUPPORTED_IDENTITY"), "{stderr}");
    assert!(
        stderr.contains("left out: app_metadata (null) (1)"),
        "{stderr}"
    );
    let manifest = json(&out.join("manifest.json"));
    assert_eq!(manifest["totals"]["read"], 46);
    assert_eq!(manifest["totals"]["users"], 23);
    assert_eq!(manifest["totals"]["rejected"], 23);
    assert_eq!(manifest["dropped"]["identities"], 23);
    assert_eq!(manifest["linked_identities_dropped"], 1);
    let file = fs::read(out.join("users-0001.json")).unwrap();
    assert_eq!(manifest["files"][0]["bytes"], file.len());
    assert_eq!(
        manifest["files"][0]["sha256"],
        hex::encode(Sha256::digest(&file))
    );
    for user in prepared_users(&out) {
        let user = user.as_object().unwrap();
        assert!(user["email_verified"].is_boolean(), "{user:?}");
        assert!(!user["user_id"].as_str().unwrap().contains('|'), "{user:?}");
        assert!(
            user.keys().all(|k| IMPORTABLE.contains(&k.as_str())),
            "{user:?}"
        );
    }
    // Every file passes validate, by the manifest and as plain files.
    let stderr = String::from_utf8(
        super::userport()
            .args(["validate", out.to_str().unwrap()])
            .output()
            .unwrap()
            .stderr,
    )
    .unwrap();
    assert!(stderr.contains("1 file, 23 users: all valid"), "{stderr}");
    ok(&["validate", out.join("users-0001.json").to_str().unwrap()]);
}

/// export → prepare → import as Auth0 does it (the `auth0|` prefix added back): every
/// importable field of every importable user is kept, and exactly the others are refused.
#[test]
fn round_trip_keeps_every_importable_field() {
    let tmp = tempfile::tempdir().unwrap();
    let exported = users_of(&fs::read_to_string(fixture("users.ndjson")).unwrap());
    let (out, _) = prepare(tmp.path(), &["fixtures/users.ndjson"]);
    let prepared = prepared_users(&out);
    let mut imported: BTreeMap<String, Value> = BTreeMap::new();
    for user in prepared {
        let id = format!("auth0|{}", user["user_id"].as_str().unwrap());
        assert!(imported.insert(id, user).is_none());
    }
    let refused = rejected(&out);
    let mut expected_refused = Vec::new();
    for (i, user) in exported.iter().enumerate() {
        let provider = user["identities"][0]["provider"].as_str().unwrap();
        let importable = provider == "auth0"
            && user.get("email").is_some()
            && user
                .get("email_verified")
                .is_none_or(|v| v.is_boolean() || v.is_null());
        if !importable {
            expected_refused.push(i as u64 + 1);
            continue;
        }
        let id = user["user_id"].as_str().unwrap();
        let back = imported
            .get(id)
            .unwrap_or_else(|| panic!("{id} was not prepared"));
        for key in IMPORTABLE {
            match (user.get(*key), back.get(*key)) {
                (Some(Value::Null) | None, None) => {}
                (Some(v), Some(w)) if *key == "user_id" => {
                    assert_eq!(
                        v.as_str().unwrap(),
                        format!("auth0|{}", w.as_str().unwrap())
                    )
                }
                (None, Some(Value::Bool(false))) if *key == "email_verified" => {}
                (v, w) => assert_eq!(v, w, "{id}: {key}"),
            }
        }
    }
    assert_eq!(
        refused.keys().copied().collect::<Vec<_>>(),
        expected_refused
    );
    assert_eq!(imported.len() + refused.len(), exported.len());
}

#[test]
fn refused_users_are_listed_with_their_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, stderr) = prepare(
        tmp.path(),
        &["fixtures/prepare/mixed.ndjson", "--max-bytes", "2048"],
    );
    let refused = rejected(&out);
    let expected: BTreeMap<u64, Vec<String>> = [
        (2, vec!["DUPLICATED_USER"]),
        (3, vec!["DUPLICATED_USER"]),
        (4, vec!["DUPLICATED_USER"]),
        (5, vec!["INVALID_KEY", "INVALID_KEY"]),
        (6, vec!["RESERVED_KEY"]),
        (7, vec!["INVALID_HASH"]),
        (9, vec!["INVALID_FORMAT"]),
        (11, vec!["DUPLICATED_USER"]),
        (12, vec!["USER_TOO_LARGE"]),
    ]
    .into_iter()
    .map(|(i, codes)| (i, codes.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(refused, expected, "{stderr}");
    let list = fs::read_to_string(out.join("rejected.json")).unwrap();
    assert!(list.contains("is in connection Username-Password-Authentication (input user 1) and in connection Other-DB"), "{list}");
    assert!(
        list.contains(
            r#"email \"DUP@Example.com\" is already used (without regard to case) by input user 1"#
        ),
        "{list}"
    );
    let users = prepared_users(&out);
    let ids: Vec<&str> = users
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a1", "a8", "a10"]);
    // Hashes, MFA factors and blocked survive; a user with no email_verified gets false.
    assert!(
        users[0]["password_hash"]
            .as_str()
            .unwrap()
            .starts_with("$2b$10$")
    );
    assert_eq!(users[1]["custom_password_hash"]["algorithm"], "sha256");
    assert_eq!(users[1]["mfa_factors"].as_array().unwrap().len(), 2);
    assert_eq!(users[1]["blocked"], true);
    assert_eq!(users[2]["email_verified"], false);
}

#[test]
fn files_stay_under_the_limit_and_keep_the_order() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("users.ndjson");
    write_generated(&input, 3000);
    let (out, stderr) = prepare(
        tmp.path(),
        &[input.to_str().unwrap(), "--max-bytes", "20000"],
    );
    let manifest = json(&out.join("manifest.json"));
    let files = manifest["files"].as_array().unwrap();
    assert!(files.len() > 5, "{stderr}");
    let mut all = Vec::new();
    for (n, f) in files.iter().enumerate() {
        let name = f["file"].as_str().unwrap();
        assert_eq!(name, format!("users-{:04}.json", n + 1));
        let bytes = fs::read(out.join(name)).unwrap();
        assert!(bytes.len() <= 20000, "{name}: {}", bytes.len());
        assert_eq!(f["bytes"], bytes.len());
        assert_eq!(f["sha256"], hex::encode(Sha256::digest(&bytes)));
        let users = users_of(std::str::from_utf8(&bytes).unwrap());
        assert_eq!(f["users"], users.len());
        // Files are filled: the next file's first user would not have fitted.
        if let Some(next) = files.get(n + 1) {
            let next_text = fs::read_to_string(out.join(next["file"].as_str().unwrap())).unwrap();
            let first_len = next_text
                .lines()
                .nth(1)
                .unwrap()
                .trim_end_matches(',')
                .len();
            assert!(
                bytes.len() + 2 + first_len > 20000,
                "{name} could hold more"
            );
        }
        all.extend(users);
    }
    assert_eq!(all.len(), 3000);
    for (i, user) in all.iter().enumerate() {
        assert_eq!(user["user_id"], format!("{i:08}"));
    }
    assert_eq!(manifest["totals"]["users"], 3000);
    assert_eq!(manifest["totals"]["files"], files.len());
}

#[test]
fn upsert_rows_hold_only_what_an_upsert_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = prepare(tmp.path(), &["fixtures/users.ndjson", "--upsert"]);
    let manifest = json(&out.join("manifest.json"));
    assert_eq!(manifest["kind"], "upsert");
    let upsertable = userport::import::rules::UPSERTABLE;
    let users = prepared_users(&out);
    assert!(!users.is_empty());
    for user in &users {
        let user = user.as_object().unwrap();
        assert!(
            user.keys().all(|k| upsertable.contains(&k.as_str())),
            "{user:?}"
        );
        assert!(user["email_verified"].is_boolean());
    }
    // Blocked users are refused with a pointer to the Management API.
    let list = json(&out.join("rejected.json"));
    let blocked: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["code"] == "NOT_UPSERTABLE")
        })
        .collect();
    let exported = users_of(&fs::read_to_string(fixture("users.ndjson")).unwrap());
    let blocked_users = exported
        .iter()
        .filter(|u| u["blocked"] == true && u["identities"][0]["provider"] == "auth0")
        .count();
    assert!(blocked_users > 0);
    assert_eq!(blocked.len(), blocked_users);
    assert!(list.to_string().contains("Management API"));
    ok(&["validate", "--upsert", out.to_str().unwrap()]);
    // The same rows are not plain import rows' business: validate --upsert refuses others.
    let e = run(&["validate", "--upsert", "fixtures/import/good-users.json"]);
    assert_eq!(e.status.code(), Some(1));
    assert!(
        String::from_utf8(e.stdout)
            .unwrap()
            .contains("at /user_id NOT_UPSERTABLE")
    );
}

#[test]
fn queries_choose_the_users() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, stderr) = prepare(
        tmp.path(),
        &["fixtures/users.ndjson", "--query", "email_verified:true"],
    );
    assert!(stderr.contains("of 26 read"), "{stderr}");
    assert!(
        prepared_users(&out)
            .iter()
            .all(|u| u["email_verified"] == true)
    );

    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = prepare(
        tmp.path(),
        &[
            "fixtures/users.ndjson",
            "--sql",
            "SELECT user_id, email, true AS email_verified, user_metadata, identities \
             FROM users WHERE logins_count > 40 ORDER BY email",
        ],
    );
    let users = prepared_users(&out);
    assert!(!users.is_empty());
    let emails: Vec<&str> = users.iter().map(|u| u["email"].as_str().unwrap()).collect();
    let mut sorted = emails.clone();
    sorted.sort();
    assert_eq!(emails, sorted);
    assert!(users.iter().all(|u| u["email_verified"] == true));

    let tmp = tempfile::tempdir().unwrap();
    let (out, stderr) = prepare(
        tmp.path(),
        &["fixtures/prepare/mixed.ndjson", "--connection", "Other-DB"],
    );
    assert!(stderr.contains("prepared 1 user of 12 read"), "{stderr}");
    assert!(
        stderr.contains("skipped 11 users of other connections"),
        "{stderr}"
    );
    assert_eq!(prepared_users(&out)[0]["email"], "other1@example.com");
}

#[test]
fn the_folder_appears_whole_or_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let e = fails(
        &[
            "prepare",
            "fixtures/bad/invalid-json.ndjson",
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("fixtures/bad/invalid-json.ndjson:4:"), "{e}");
    assert_eq!(
        entries(tmp.path()),
        Vec::<String>::new(),
        "nothing left behind"
    );

    // A folder with content is kept unless --force.
    let forced = |input: &str| {
        let out = out.to_str().unwrap();
        fails(&["prepare", input, "-o", out, "--force"], 2)
    };
    fs::create_dir(&out).unwrap();
    fs::write(out.join("keep.txt"), "mine").unwrap();
    let e = fails(
        &[
            "prepare",
            "fixtures/users.ndjson",
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("not empty"), "{e}");
    assert_eq!(entries(&out), ["keep.txt"]);
    let e = forced("fixtures/bad/invalid-json.ndjson");
    assert!(e.contains("not a folder that userport prepare made"), "{e}");
    assert_eq!(
        entries(&out),
        ["keep.txt"],
        "a refused run leaves the old content"
    );
    // --force replaces only a folder that prepare made, holding nothing else.
    let e = forced("fixtures/users.ndjson");
    assert!(e.contains("not a folder that userport prepare made"), "{e}");
    assert_eq!(entries(&out), ["keep.txt"]);
    fs::remove_file(out.join("keep.txt")).unwrap();
    ok(&[
        "prepare",
        "fixtures/users.ndjson",
        "-o",
        out.to_str().unwrap(),
    ]);
    ok(&[
        "prepare",
        "fixtures/users.ndjson",
        "-o",
        out.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(
        entries(&out),
        ["manifest.json", "rejected.json", "users-0001.json"]
    );
    assert_eq!(entries(tmp.path()), ["out"], "no staging folder left");
    let before = fs::read(out.join("manifest.json")).unwrap();
    let e = forced("fixtures/bad/invalid-json.ndjson");
    assert!(e.contains("invalid-json"), "{e}");
    assert_eq!(
        fs::read(out.join("manifest.json")).unwrap(),
        before,
        "a failed run leaves the old folder"
    );
    assert_eq!(entries(tmp.path()), ["out"], "no staging folder left");

    let e = fails(
        &[
            "prepare",
            "fixtures/users.ndjson",
            "-o",
            tmp.path().join("x").to_str().unwrap(),
            "--max-bytes",
            "600000",
        ],
        2,
    );
    assert!(
        e.contains("--max-bytes 600000: must be between 1024 and 512000"),
        "{e}"
    );
}

#[test]
fn users_are_converted_as_written_compact_and_as_json_parse_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    // A pretty-printed JSON array: members out of the usual order, spaces between tokens,
    // an escaped key, a repeated key inside metadata, and a key that is only wrong once its
    // escape is read.
    let input = tmp.path().join("users.json");
    fs::write(
        &input,
        r#"[
  {
    "email" : "zoë@example.com",
    "user_metadata" : { "na\u006de" : "Zoë López", "tags" : [ 1, { "k" : 1, "k" : 2 } ] },
    "user_id" : "auth0|first",
    "app_metadata" : { "plan" : "free", "plan" : "pro" },
    "logins_count" : 3
  },
  {
    "user_id": "auth0|second", "email": "b@example.com",
    "user_metadata": { "a\u002eb": 1 }
  }
]
"#,
    )
    .unwrap();
    let (out, _) = prepare(tmp.path(), &[input.to_str().unwrap()]);
    let text = fs::read_to_string(out.join("users-0001.json")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "[",
            r#"{"email":"zoë@example.com","email_verified":false,"user_metadata":{"name":"Zoë López","tags":[1,{"k":2}]},"user_id":"first","app_metadata":{"plan":"pro"}}"#,
            "]"
        ],
        "{text}"
    );
    // The second user's metadata key holds a dot once its escape is read.
    assert_eq!(
        rejected(&out),
        BTreeMap::from([(2, vec!["INVALID_KEY".to_string()])])
    );
    let problems = &json(&out.join("rejected.json"))[0]["problems"];
    assert_eq!(problems[0]["pointer"], "/user_metadata/a.b", "{problems}");
    ok(&["validate", out.to_str().unwrap()]);
}
