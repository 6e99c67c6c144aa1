//! Bulk updates that lose nothing: `prepare --upsert --base` merges a query's changes into
//! the base's users; `diff` previews them; the worked updates in `queries/updates/` run on
//! the fixtures and give their stored previews (`UPDATE_EXPECTED=1` rewrites them).

use std::fs;
use std::path::Path;

use super::{ok, root, run};

/// Prepares the update of `query` (a file) over the fixtures into `dir` and returns the
/// preview (`diff` of the fixtures and the folder, CSV) with its exit code.
fn preview(query: &Path, dir: &Path) -> (i32, String) {
    ok(&[
        "prepare",
        "--upsert",
        "--base",
        "fixtures/users.ndjson",
        "--file",
        query.to_str().unwrap(),
        "-o",
        dir.to_str().unwrap(),
    ]);
    ok(&["validate", "--upsert", dir.to_str().unwrap()]);
    let out = run(&["diff", "fixtures/users.ndjson", dir.to_str().unwrap()]);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn every_worked_update_previews_only_what_it_asks_for() {
    let dir = root().join("queries/updates");
    // What each update may change, by field path.
    let allowed: &[(&str, &[&str])] = &[
        ("add-role", &["app_metadata.roles"]),
        (
            "move-plan-to-app-metadata",
            &["app_metadata", "user_metadata.plan"],
        ),
        (
            "rename-metadata-key",
            &["user_metadata.language", "user_metadata.locale"],
        ),
        ("verify-domain-emails", &["email_verified"]),
    ];
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let mut failures = Vec::new();
    for (name, paths) in allowed {
        let file = dir.join(format!("{name}.sql"));
        assert!(fs::read_to_string(&file).unwrap().starts_with("-- "));
        let tmp = tempfile::tempdir().unwrap();
        let (code, out) = preview(&file, &tmp.path().join("update"));
        assert_eq!(code, 1, "{name}: the preview shows changes");
        let mut rows = csv::Reader::from_reader(out.as_bytes());
        let mut count = 0;
        for row in rows.records() {
            let row = row.unwrap();
            assert_eq!(&row[1], "changed", "{name}: {row:?}");
            let path = &row[2];
            assert!(
                paths
                    .iter()
                    .any(|p| path == *p || path.starts_with(&format!("{p}."))),
                "{name}: {path} changed, which the update did not ask for"
            );
            count += 1;
        }
        assert!(count > 0, "{name}: no change on the fixtures");
        let expected_path = dir.join("expected").join(format!("{name}.csv"));
        if update {
            fs::write(&expected_path, &out).unwrap();
        } else if fs::read_to_string(&expected_path).ok().as_deref() != Some(out.as_str()) {
            failures.push(format!("{name}:\n{out}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn merges_keep_every_key_the_change_does_not_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("update");
    let out = run(&[
        "prepare",
        "--upsert",
        "--base",
        "fixtures/users.ndjson",
        "--sql",
        "SELECT user_id, 'pro' AS \"user_metadata.plan\" FROM users WHERE email = 'ana.almeida@example.com' \
         UNION ALL SELECT 'auth0|nobody', 'x'",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 changed keys match no user"), "{stderr}");
    assert_eq!(
        fs::read_to_string(dir.join("unmatched.json")).unwrap(),
        "[\n  \"nobody\"\n]\n"
    );
    let users = super::users_of(&fs::read_to_string(dir.join("users-0001.json")).unwrap());
    assert_eq!(users.len(), 1);
    let ana = &users[0];
    assert_eq!(ana["user_metadata"]["plan"], "pro");
    // Kept from the base: the other metadata keys, and every upsertable field.
    assert_eq!(ana["user_metadata"]["preferences"]["theme"], "dark");
    assert_eq!(ana["user_metadata"]["language"], "en");
    assert_eq!(ana["app_metadata"]["roles"], serde_json::json!(["admin"]));
    assert_eq!(ana["given_name"], "Ana");
    assert_eq!(ana["email_verified"], false);
    assert!(ana.get("user_id").is_none() && ana.get("created_at").is_none());

    // --replace-metadata: the objects the change touches hold only what it gives.
    let dir = tmp.path().join("replace");
    ok(&[
        "prepare",
        "--upsert",
        "--base",
        "fixtures/users.ndjson",
        "--replace-metadata",
        "--sql",
        "SELECT email, 'pro' AS \"user_metadata.plan\" FROM users WHERE email = 'ana.almeida@example.com'",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let users = super::users_of(&fs::read_to_string(dir.join("users-0001.json")).unwrap());
    assert_eq!(
        users[0]["user_metadata"],
        serde_json::json!({"plan": "pro"})
    );
    let out = run(&["diff", "fixtures/users.ndjson", dir.to_str().unwrap()]);
    let preview = String::from_utf8(out.stdout).unwrap();
    assert!(
        preview.contains("user_metadata.language,en,"),
        "the preview shows the loss: {preview}"
    );

    // Columns an upsert cannot change are refused before anything is read.
    let out = run(&[
        "prepare",
        "--upsert",
        "--base",
        "fixtures/users.ndjson",
        "--sql",
        "SELECT user_id, logins_count FROM users",
        "-o",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("\"logins_count\" is not something an upsert changes")
    );
}

#[test]
fn diff_reports_added_removed_and_changed_users() {
    let tmp = tempfile::tempdir().unwrap();
    // Equal sets, in two formats: exit 0, an empty report (`--key user_id` as documented).
    assert_eq!(
        ok(&[
            "diff",
            "fixtures/users.ndjson",
            "fixtures/users.json",
            "--key",
            "user_id"
        ]),
        "key,change,path,old,new\n"
    );
    assert_eq!(
        ok(&["diff", "fixtures/users.ndjson", "fixtures/users.json"]),
        "key,change,path,old,new\n"
    );
    // An export against its own prepared import files: the auth0| prefix is no difference.
    let prepared = tmp.path().join("prepared");
    ok(&[
        "prepare",
        "fixtures/users.ndjson",
        "-o",
        prepared.to_str().unwrap(),
    ]);
    let out = run(&[
        "diff",
        "fixtures/users.ndjson",
        prepared.to_str().unwrap(),
        "--format",
        "ndjson",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(!report.contains("\"path\":\"user_id\""), "{report}");
    assert!(report.contains("\"path\":\"created_at\""), "{report}");
    // A changed copy: one user gone, one added, one changed.
    let text = fs::read_to_string(super::fixture("users.ndjson")).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    lines.remove(0);
    lines[1] = lines[1].replace("\"email_verified\":false", "\"email_verified\":true");
    lines.push(r#"{"user_id":"auth0|new1","email":"new@example.com"}"#.into());
    let changed = tmp.path().join("changed.ndjson");
    fs::write(&changed, lines.join("\n")).unwrap();
    let out = run(&[
        "diff",
        "fixtures/users.ndjson",
        changed.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr
            .contains("old: 46 users, new: 46 users; added 1, removed 1, changed 1, unchanged 44"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<(&str, &str)> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["change"].as_str().unwrap(), r["path"].as_str().unwrap()))
        .collect();
    assert!(
        kinds.contains(&("added", "")) && kinds.contains(&("removed", "")),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("changed", "email_verified")), "{kinds:?}");
    // By email, without regard to case.
    let out = run(&[
        "diff",
        "fixtures/users.ndjson",
        changed.to_str().unwrap(),
        "--key",
        "email",
        "-o",
        tmp.path().join("r.csv").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        fs::read_to_string(tmp.path().join("r.csv"))
            .unwrap()
            .contains("new@example.com,added")
    );
}

/// The whole cycle against a tenant that applies upserts as Auth0 documents them (metadata
/// replaced whole, `email_verified` false unless given): export → SQL change → prepare
/// --upsert → diff preview → import --upsert (with a backup) → export again; the new export
/// equals the expected result.
#[test]
fn the_whole_update_cycle_loses_nothing() {
    use super::tenant::Server;
    let tmp = tempfile::tempdir().unwrap();
    let path = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let server = Server::start();
    let export_to =
        |name: &str| server.run(&["export", "--format", "ndjson", "-o", &path(name), "-q"]);
    // A tenant holding the fixtures' database users.
    ok(&["prepare", "fixtures/users.ndjson", "-o", &path("seed")]);
    let (code, _, stderr) = server.run(&[
        "import",
        &path("seed"),
        "--connection",
        "Username-Password-Authentication",
        "-q",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = export_to("base.ndjson");
    assert_eq!(code, 0, "{stderr}");
    // The change: a role for the users of a tenant.
    let query = root().join("queries/updates/add-role.sql");
    ok(&[
        "prepare",
        "--upsert",
        "--base",
        &path("base.ndjson"),
        "--file",
        query.to_str().unwrap(),
        "-o",
        &path("update"),
    ]);
    let out = run(&["diff", &path("base.ndjson"), &path("update")]);
    assert_eq!(out.status.code(), Some(1));
    let preview = String::from_utf8(out.stdout).unwrap();
    assert!(
        preview
            .lines()
            .skip(1)
            .all(|l| l.contains(",changed,app_metadata.roles,")),
        "{preview}"
    );
    let (code, _, stderr) = server.run(&[
        "import",
        &path("update"),
        "--upsert",
        "--connection",
        "Username-Password-Authentication",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("backup taken before the upsert"),
        "{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(tmp.path().join("update/report.json")).unwrap()).unwrap();
    let backup = report["backup"].as_str().unwrap().to_string();
    assert_eq!(
        super::users_of(&ok(&["export", &backup, "--format", "ndjson"])).len(),
        23,
        "the backup holds the connection's users"
    );
    let (code, _, stderr) = export_to("after.ndjson");
    assert_eq!(code, 0, "{stderr}");
    // Expected: the base, with "beta" added to the roles of the users of a tenant.
    let mut expected = String::new();
    for mut user in super::users_of(&fs::read_to_string(path("base.ndjson")).unwrap()) {
        if user["app_metadata"].get("tenant_id").is_some() {
            let roles = user["app_metadata"]
                .as_object_mut()
                .unwrap()
                .entry("roles")
                .or_insert_with(|| serde_json::json!([]));
            if !roles
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("beta"))
            {
                roles
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!("beta"));
            }
        }
        expected.push_str(&format!("{user}\n"));
    }
    fs::write(path("expected.ndjson"), expected).unwrap();
    let out = run(&["diff", &path("expected.ndjson"), &path("after.ndjson")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The same cycle with metadata replaced instead of merged loses keys, and diff shows it.
    ok(&[
        "prepare",
        "--upsert",
        "--replace-metadata",
        "--base",
        &path("after.ndjson"),
        "--file",
        query.to_str().unwrap(),
        "-o",
        &path("lossy"),
    ]);
    let (code, _, stderr) = server.run(&[
        "import",
        &path("lossy"),
        "--upsert",
        "--connection",
        "Username-Password-Authentication",
        "--no-backup",
        "-q",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, _) = export_to("lossy.ndjson");
    assert_eq!(code, 0);
    let out = run(&["diff", &path("expected.ndjson"), &path("lossy.ndjson")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("app_metadata.tenant_id")
    );
}
