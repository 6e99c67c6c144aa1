//! `userport migrate` between two tenants on 127.0.0.1 (each with its own token endpoint and
//! credentials): users with their password hashes, roles and organizations moved, the plan
//! that sends nothing, the proof, and runs cut short and resumed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::tenant::{FakeOrganization, FakeRole, Server};

const CONNECTION: &str = "Username-Password-Authentication";

/// The source's user number `i`: its id.
fn source_id(i: usize) -> String {
    if i % 50 == 1 {
        format!("auth0|legacy-{i}")
    } else {
        format!("auth0|5f{i:022x}")
    }
}

fn email(i: usize) -> String {
    format!("user{i}@example.com")
}

/// Whether user `i` exists on the target before the migration.
fn on_target(i: usize) -> bool {
    i % 25 == 4
}

/// Whether user `i`'s hash in the export is broken (the user is refused).
fn broken(i: usize) -> bool {
    i % 250 == 3
}

fn has_hash(i: usize) -> bool {
    !i.is_multiple_of(10)
}

fn bcrypt(i: usize) -> String {
    const ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = (0..53)
        .map(|k| ALPHABET[(i * 31 + k * 7) % ALPHABET.len()] as char)
        .collect();
    format!("$2b$10${tail}")
}

/// Where a user is on the target after the migration.
fn target_id(i: usize) -> String {
    if on_target(i) {
        format!("auth0|target{i}")
    } else {
        source_id(i)
    }
}

/// Two tenants: the source with `n` users, roles and organizations; the target with some
/// of the users, some of the roles and one organization. Returns the hash export's path.
fn tenants(n: usize, dir: &Path) -> (Server, Server, std::path::PathBuf) {
    let source = Server::start();
    let target = Server::start();
    {
        let mut s = source.state.lock().unwrap();
        for i in 0..n {
            let id = source_id(i);
            let bare = id.trim_start_matches("auth0|").to_string();
            let mut user = json!({
                "user_id": id, "email": email(i), "email_verified": i % 2 == 0,
                "name": format!("User {i}"), "nickname": format!("u{i}"),
                "created_at": "2020-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z",
                "logins_count": i, "user_metadata": {"plan": if i % 2 == 0 { "free" } else { "pro" }, "n": i},
                "app_metadata": {"tier": i % 3},
                "identities": [{"connection": CONNECTION, "provider": "auth0", "user_id": bare, "isSocial": false}],
            });
            if i % 2 == 1 {
                user["last_login"] = json!("2025-06-01T00:00:00.000Z");
            }
            if i % 100 == 7 {
                user["multifactor"] = json!(["guardian"]);
            }
            s.users.insert(email(i), user);
        }
        let members = |m: usize| {
            (0..n)
                .filter(|i| i % m == 0)
                .map(source_id)
                .collect::<Vec<_>>()
        };
        s.roles = vec![
            role("rol_src_admin", "admin", members(7)),
            role("rol_src_editor", "editor", members(3)),
            role("rol_src_support", "support", members(13)),
        ];
        // Members of every `every`-th user; every other one of them with `role` there.
        let organization = |id: &str, name: &str, every: usize, role: &str| FakeOrganization {
            id: id.into(),
            name: name.into(),
            display_name: Some(name.to_uppercase()),
            members: (0..n)
                .filter(|i| i % every == 0)
                .map(|i| {
                    let roles = if i % (2 * every) == 0 {
                        vec![role.to_string()]
                    } else {
                        vec![]
                    };
                    (source_id(i), roles)
                })
                .collect(),
        };
        s.organizations = vec![
            organization("org_src_acme", "acme", 5, "rol_src_admin"),
            organization("org_src_globex", "globex", 11, "rol_src_support"),
        ];
    }
    {
        let mut t = target.state.lock().unwrap();
        for i in (0..n).filter(|i| on_target(*i)) {
            t.users.insert(
                email(i),
                json!({"user_id": format!("auth0|target{i}"), "email": email(i), "email_verified": true,
                       "user_metadata": {"plan": "target"},
                       "identities": [{"connection": CONNECTION, "provider": "auth0", "user_id": format!("target{i}"), "isSocial": false}]}),
            );
        }
        t.roles = vec![
            role("rol_tgt_admin", "admin", Vec::new()),
            role("rol_tgt_editor", "editor", Vec::new()),
            role("rol_tgt_other", "other", Vec::new()),
        ];
        t.organizations = vec![FakeOrganization {
            id: "org_tgt_acme".into(),
            name: "acme".into(),
            display_name: Some("ACME".into()),
            members: Vec::new(),
        }];
    }
    let hashes = dir.join("hashes.ndjson");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&hashes).unwrap());
    for i in (0..n).filter(|i| has_hash(*i)) {
        let mut line = json!({
            "_id": {"$oid": format!("5f{i:022x}")}, "email": email(i), "email_verified": i % 2 == 0,
            "passwordHash": if broken(i) { "$2b$10$broken".to_string() } else { bcrypt(i) },
            "password_set_date": {"$date": "2019-12-06T18:36:12.412Z"},
            "tenant": "source", "connection": CONNECTION, "_tmp_is_unique": true,
        });
        if i % 50 == 1 {
            line["_id"]["$oid"] = json!(format!("6a{i:022x}"));
            line["alt_id"] = json!(format!("legacy-{i}"));
        }
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
    (source, target, hashes)
}

fn role(id: &str, name: &str, users: Vec<String>) -> FakeRole {
    FakeRole {
        id: id.into(),
        name: name.into(),
        description: Some(format!("the {name}s")),
        users,
    }
}

/// `userport migrate` from `source` to `target`, with each tenant's own credentials.
fn migrate(source: &Server, target: &Server, args: &[&str]) -> (i32, String) {
    let out = super::userport()
        .arg("migrate")
        .args([
            "--from",
            &source.url,
            "--to",
            &target.url,
            "--connection",
            CONNECTION,
        ])
        .args(args)
        .env_remove("AUTH0_CLIENT_ID")
        .env_remove("AUTH0_CLIENT_SECRET")
        .env_remove("AUTH0_TOKEN")
        .env("AUTH0_FROM_CLIENT_ID", "source-client")
        .env("AUTH0_FROM_CLIENT_SECRET", "source-secret-s3cr3t")
        .env("AUTH0_TO_CLIENT_ID", "target-client")
        .env("AUTH0_TO_CLIENT_SECRET", "target-secret-t0p")
        .env("USERPORT_BACKOFF_MS", "2")
        .env("USERPORT_POLL_MS", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !stderr.contains("s3cr3t") && !stderr.contains("t0p"),
        "a secret leaked:\n{stderr}"
    );
    (out.status.code().unwrap(), stderr)
}

/// What the target must hold after the migration: every user but the refused ones, with
/// the profile and hash of the source (or as it was, when it was there before), and the
/// role and organization members of the source.
fn assert_arrived(target: &Server, source: &Server, n: usize) {
    let t = target.state.lock().unwrap();
    let s = source.state.lock().unwrap();
    for i in 0..n {
        let user = t.users.get(&email(i));
        if broken(i) {
            assert!(user.is_none(), "refused user {i} is on the target");
            continue;
        }
        let user = user.unwrap_or_else(|| panic!("user {i} is not on the target"));
        assert_eq!(user["user_id"], target_id(i).as_str(), "user {i}");
        if on_target(i) {
            assert_eq!(
                user["user_metadata"],
                json!({"plan": "target"}),
                "user {i} was left as it was"
            );
            continue;
        }
        let from = &s.users[&email(i)];
        for field in [
            "email_verified",
            "name",
            "nickname",
            "user_metadata",
            "app_metadata",
        ] {
            assert_eq!(user[field], from[field], "user {i}: {field}");
        }
        assert!(user.get("logins_count").is_none() && user.get("created_at").is_none());
        if has_hash(i) {
            assert_eq!(
                user["password_hash"],
                bcrypt(i).as_str(),
                "user {i}: the hash as sent"
            );
        } else {
            assert!(user.get("password_hash").is_none());
        }
    }
    // Roles: matched by name, created when missing; their users are the source's, mapped.
    let name_of: BTreeMap<&str, &str> = s
        .roles
        .iter()
        .map(|r| (r.id.as_str(), r.name.as_str()))
        .collect();
    let target_role: BTreeMap<&str, &FakeRole> =
        t.roles.iter().map(|r| (r.name.as_str(), r)).collect();
    let index: BTreeMap<String, usize> = (0..n).map(|i| (source_id(i), i)).collect();
    let mapped = |id: &String| {
        let i = index[id];
        (!broken(i)).then(|| target_id(i))
    };
    for role in &s.roles {
        let there = target_role
            .get(role.name.as_str())
            .unwrap_or_else(|| panic!("role {} missing", role.name));
        let want: BTreeSet<String> = role.users.iter().filter_map(mapped).collect();
        let have: BTreeSet<String> = there.users.iter().cloned().collect();
        assert_eq!(have, want, "role {}", role.name);
        assert_eq!(there.users.len(), have.len(), "a user given a role twice");
    }
    let target_org: BTreeMap<&str, &FakeOrganization> = t
        .organizations
        .iter()
        .map(|o| (o.name.as_str(), o))
        .collect();
    let role_name_there: BTreeMap<&str, &str> = t
        .roles
        .iter()
        .map(|r| (r.id.as_str(), r.name.as_str()))
        .collect();
    for org in &s.organizations {
        let there = target_org[org.name.as_str()];
        let want: BTreeMap<String, BTreeSet<&str>> = org
            .members
            .iter()
            .filter_map(|(m, roles)| {
                Some((
                    mapped(m)?,
                    roles.iter().map(|r| name_of[r.as_str()]).collect(),
                ))
            })
            .collect();
        let have: BTreeMap<String, BTreeSet<&str>> = there
            .members
            .iter()
            .map(|(m, roles)| {
                (
                    m.clone(),
                    roles.iter().map(|r| role_name_there[r.as_str()]).collect(),
                )
            })
            .collect();
        assert_eq!(have, want, "organization {}", org.name);
    }
}

fn report(work: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(work.join("report.json")).unwrap()).unwrap()
}

/// The requests of a kind the server accepted, as (path, body).
fn sent(server: &Server, method: &str, prefix: &str) -> Vec<(String, String)> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path.starts_with(prefix) && r.status < 300)
        .map(|r| {
            let body = if r.parts.is_empty() {
                r.body
            } else {
                r.parts
                    .iter()
                    .find(|p| p.0 == "users")
                    .map(|p| p.3.clone())
                    .unwrap_or_default()
            };
            (r.path, body)
        })
        .collect()
}

#[test]
fn users_hashes_roles_and_organizations_move_and_a_cut_run_resumes() {
    let n = 5000;
    let tmp = tempfile::tempdir().unwrap();
    let (source, target, hashes) = tenants(n, tmp.path());
    let work = tmp.path().join("work");
    let work_arg = work.to_str().unwrap();
    let args = [
        "--hashes",
        hashes.to_str().unwrap(),
        "--work",
        work_arg,
        "--create-missing",
        "-v",
    ];

    // The first import job is accepted; from then on the target answers 500 to everything.
    target.state.lock().unwrap().down_after = Some(("POST", "/api/v2/jobs/users-imports", 1));
    let (code, stderr) = migrate(&source, &target, &args);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("500"), "{stderr}");
    let jobs_before = target.state.lock().unwrap().jobs_created();
    assert_eq!(jobs_before, 1);
    let state: Value =
        serde_json::from_slice(&std::fs::read(work.join("state.json")).unwrap()).unwrap();
    assert!(
        state["done"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "plan"),
        "{state}"
    );

    // The target is back: the run resumes, sends the other files once each, and proves it.
    target.state.lock().unwrap().down = false;
    let (code, stderr) = migrate(&source, &target, &args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    let files = std::fs::read_dir(work.join("create"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("users-")
        })
        .count();
    assert!(files >= 3, "{files} files");
    assert_eq!(
        target.state.lock().unwrap().jobs_created(),
        files,
        "a file was imported twice"
    );
    let accepted: Vec<(String, String)> = sent(&target, "POST", "/api/v2/jobs/users-imports");
    let distinct: BTreeSet<&String> = accepted.iter().map(|(_, b)| b).collect();
    assert_eq!(distinct.len(), files);
    let role_posts = sent(&target, "POST", "/api/v2/roles/");
    let unique: BTreeSet<&(String, String)> = role_posts.iter().collect();
    assert_eq!(
        unique.len(),
        role_posts.len(),
        "a role batch was sent twice"
    );
    assert!(role_posts.iter().all(|(_, b)| {
        serde_json::from_str::<Value>(b).unwrap()["users"]
            .as_array()
            .unwrap()
            .len()
            <= 100
    }));

    assert_arrived(&target, &source, n);
    // Each tenant was asked for a token with its own credentials.
    for (server, id) in [
        (&source, "client_id=source-client"),
        (&target, "client_id=target-client"),
    ] {
        let tokens: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.path == "/oauth/token")
            .collect();
        assert!(!tokens.is_empty());
        assert!(
            tokens.iter().all(|r| r.body.contains(id)),
            "{:?}",
            tokens[0].body
        );
    }

    // The report says so.
    let report = report(&work);
    let refused = (0..n).filter(|i| broken(*i)).count() as u64;
    let there = (0..n).filter(|i| on_target(*i)).count() as u64;
    let whole = (0..n)
        .filter(|i| !broken(*i) && !on_target(*i) && has_hash(*i) && i % 100 != 7)
        .count() as u64;
    let summary = &report["summary"];
    assert_eq!(summary["read"], n as u64);
    assert_eq!(summary["refused"], refused);
    assert_eq!(summary["already_there"], there);
    assert_eq!(summary["moved"], n as u64 - refused - there);
    assert_eq!(summary["failed_on_target"], 0);
    assert_eq!(summary["arrived_different"], 0);
    assert_eq!(summary["moved_whole"], whole, "{summary}");
    assert_eq!(summary["everything_arrived"], true);
    assert_eq!(report["proof"]["arrived_equal"], n as u64 - refused - there);
    let users = report["users"].as_array().unwrap();
    assert_eq!(users.len(), n);
    let user3 = users.iter().find(|u| u["email"] == email(3)).unwrap();
    assert_eq!(user3["status"], "refused");
    assert!(
        user3["reasons"][0]
            .as_str()
            .unwrap()
            .contains("password_hash"),
        "{user3}"
    );
    let user4 = users.iter().find(|u| u["email"] == email(4)).unwrap();
    assert_eq!(user4["status"], "already there (left as it is)");
    assert_eq!(user4["target_user_id"], "auth0|target4");
    let user7 = users.iter().find(|u| u["email"] == email(7)).unwrap();
    assert_eq!(user7["status"], "moved");
    assert_eq!(user7["whole"], false);
    assert!(
        user7["left_behind"]
            .as_array()
            .unwrap()
            .contains(&json!("multifactor"))
    );
    for role in report["roles"].as_array().unwrap() {
        assert_eq!(role["missing"], json!([]), "{role}");
        assert_eq!(role["present"], role["meant"]);
    }
    let support = report["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "support")
        .unwrap();
    assert_eq!(support["created"], true);
    let globex = report["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "globex")
        .unwrap();
    assert_eq!(globex["created"], true);
    assert_eq!(globex["missing_roles"], Value::Null);
    assert_eq!(
        report["cannot_travel"]["logins_count"]["users"],
        n as u64 - refused - there
    );
    assert!(stderr.contains("users moved whole"), "{stderr}");

    // A run after success does nothing: not one request to either tenant.
    let (before_source, before_target) = (source.requests().len(), target.requests().len());
    let (code, stderr) = migrate(&source, &target, &args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("done already"), "{stderr}");
    assert_eq!(source.requests().len(), before_source);
    assert_eq!(target.requests().len(), before_target);
}

#[test]
fn a_run_cut_among_the_role_batches_sends_none_twice() {
    let n = 1200;
    let tmp = tempfile::tempdir().unwrap();
    let (source, target, hashes) = tenants(n, tmp.path());
    let work = tmp.path().join("work");
    let args = [
        "--hashes",
        hashes.to_str().unwrap(),
        "--work",
        work.to_str().unwrap(),
        "--create-missing",
        "--role-batch",
        "20",
        "-q",
    ];
    target.state.lock().unwrap().down_after = Some(("POST", "/api/v2/roles/", 4));
    let (code, stderr) = migrate(&source, &target, &args);
    assert_eq!(code, 2, "{stderr}");
    target.state.lock().unwrap().down = false;
    let (code, stderr) = migrate(&source, &target, &args);
    assert_eq!(code, 0, "{stderr}");
    // Of the role batches the target accepted, none was sent twice.
    let accepted = sent(&target, "POST", "/api/v2/roles/");
    let distinct: BTreeSet<&(String, String)> = accepted.iter().collect();
    assert_eq!(
        distinct.len(),
        accepted.len(),
        "a role batch was sent twice"
    );
    let refused_while_down = target
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/api/v2/roles/") && r.status >= 500)
        .count();
    assert!(refused_while_down >= 1);
    assert_arrived(&target, &source, n);
}

#[test]
fn the_plan_sends_nothing_to_the_target() {
    let n = 300;
    let tmp = tempfile::tempdir().unwrap();
    let (source, target, hashes) = tenants(n, tmp.path());
    let work = tmp.path().join("work");
    let (code, stderr) = migrate(
        &source,
        &target,
        &[
            "--hashes",
            hashes.to_str().unwrap(),
            "--work",
            work.to_str().unwrap(),
            "--plan",
            "--upsert",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let writes: Vec<String> = target
        .requests()
        .into_iter()
        .filter(|r| {
            r.method != "GET" && r.path != "/oauth/token" && r.path != "/api/v2/jobs/users-exports"
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "the plan sent {writes:?}");
    let refused = (0..n).filter(|i| broken(*i)).count();
    let there = (0..n).filter(|i| on_target(*i)).count();
    assert!(
        stderr.contains(&format!("to create:            {:>9}", n - refused - there)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("to update (upsert):   {:>9}", there)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("refused:              {:>9}", refused)),
        "{stderr}"
    );
    assert!(stderr.contains("user_metadata.plan"), "{stderr}");
    assert!(stderr.contains("logins_count"), "{stderr}");
    assert!(target.state.lock().unwrap().users.len() == there);
    assert_eq!(target.state.lock().unwrap().jobs_created(), 0);

    // With an export of the target on disk, the plan sends nothing at all to the target.
    let before = tmp.path().join("target.ndjson");
    target.write_users(&before);
    let requests = target.requests().len();
    let work = tmp.path().join("work2");
    let (code, again) = migrate(
        &source,
        &target,
        &[
            "--hashes",
            hashes.to_str().unwrap(),
            "--work",
            work.to_str().unwrap(),
            "--plan",
            "--upsert",
            "--to-file",
            before.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{again}");
    assert_eq!(
        target.requests().len(),
        requests,
        "the plan called the target"
    );
    let counts = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("  to ") || l.starts_with("  refused"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(counts(&again), counts(&stderr));
}

#[test]
fn an_upsert_updates_who_is_there_and_a_user_the_target_refuses_is_reported() {
    let n = 400;
    let tmp = tempfile::tempdir().unwrap();
    let (source, target, hashes) = tenants(n, tmp.path());
    let work = tmp.path().join("work");
    let work_arg = work.to_str().unwrap();
    let args = [
        "--hashes",
        hashes.to_str().unwrap(),
        "--work",
        work_arg,
        "--upsert",
        "-q",
    ];
    // The plan first: the steps up to it are done and kept.
    let (code, stderr) = migrate(&source, &target, &[&args[..], &["--plan"]].concat());
    assert_eq!(code, 0, "{stderr}");
    // Meanwhile someone creates user 6 on the target: its import fails (DUPLICATED_USER).
    target.state.lock().unwrap().users.insert(
        email(6),
        json!({"user_id": "auth0|meanwhile6", "email": email(6), "email_verified": false,
               "identities": [{"connection": CONNECTION, "provider": "auth0", "user_id": "meanwhile6", "isSocial": false}]}),
    );
    let (code, stderr) = migrate(&source, &target, &args);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("NOT everything meant to move arrived"),
        "{stderr}"
    );
    let report = report(&work);
    let users = report["users"].as_array().unwrap();
    let six = users.iter().find(|u| u["email"] == email(6)).unwrap();
    assert_eq!(six["status"], "failed on the target", "{six}");
    assert!(
        six["error"].as_str().unwrap().contains("DUPLICATED_USER"),
        "{six}"
    );
    assert_eq!(report["summary"]["failed_on_target"], 1);
    // The users that were there are updated with the source's profile (metadata whole).
    let t = target.state.lock().unwrap();
    for i in (0..n).filter(|i| on_target(*i)) {
        let user = &t.users[&email(i)];
        assert_eq!(
            user["user_id"],
            format!("auth0|target{i}"),
            "the target's id stays"
        );
        assert_eq!(
            user["user_metadata"],
            json!({"plan": if i % 2 == 0 { "free" } else { "pro" }, "n": i})
        );
        let entry = users.iter().find(|u| u["email"] == email(i)).unwrap();
        assert_eq!(entry["status"], "updated", "{entry}");
        assert!(
            entry["changes"]
                .as_array()
                .unwrap()
                .contains(&json!("user_metadata.plan")),
            "{entry}"
        );
    }
    // The failed user was given no role (it is not the target's user 6).
    let admin = t.roles.iter().find(|r| r.name == "admin").unwrap();
    assert!(
        !admin
            .users
            .iter()
            .any(|u| u.contains("meanwhile") || *u == source_id(6))
    );
    drop(t);
    // Its role membership is reported as not moved, not as missing.
    assert_eq!(report["summary"]["everything_arrived"], false);
}

#[test]
fn an_export_on_disk_moves_without_the_source_tenant() {
    let n = 120;
    let tmp = tempfile::tempdir().unwrap();
    let (source, target, hashes) = tenants(n, tmp.path());
    let export = tmp.path().join("source.ndjson");
    source.write_users(&export);
    let work = tmp.path().join("work");
    let out = target
        .userport()
        .args(["migrate", "--to", &target.url, "--connection", CONNECTION])
        .args([
            "--from-file",
            export.to_str().unwrap(),
            "--hashes",
            hashes.to_str().unwrap(),
        ])
        .args([
            "--where",
            "user_metadata->>'plan' = 'pro'",
            "--work",
            work.to_str().unwrap(),
        ])
        .env("AUTH0_TO_CLIENT_ID", "target-client")
        .env("AUTH0_TO_CLIENT_SECRET", "target-secret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("no --from"), "{stderr}");
    assert!(source.requests().is_empty(), "the source tenant was called");
    let t = target.state.lock().unwrap();
    for i in 0..n {
        let there = t.users.contains_key(&email(i));
        let meant = i % 2 == 1 && !broken(i);
        assert_eq!(there, meant || on_target(i), "user {i}");
    }
    assert!(
        t.roles.iter().all(|r| r.users.is_empty()),
        "no role without --from"
    );
}

#[test]
fn the_users_of_a_failed_import_job_are_reported_and_given_no_role() {
    let n = 1500;
    let tmp = tempfile::tempdir().unwrap();
    let (source, target, hashes) = tenants(n, tmp.path());
    target.state.lock().unwrap().fail_import_job = Some(1);
    let work = tmp.path().join("work");
    let args = [
        "--hashes",
        hashes.to_str().unwrap(),
        "--work",
        work.to_str().unwrap(),
        "-q",
    ];
    let (code, stderr) = migrate(&source, &target, &args);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("job job_0000000000000001 failed"),
        "{stderr}"
    );
    // Without --create-missing, the roles and organizations the target lacks are reported.
    assert!(stderr.contains("role support: 0 of"), "{stderr}");
    assert!(
        stderr.contains("no organization of this name on the target"),
        "{stderr}"
    );
    let report = report(&work);
    let failed: Vec<&Value> = report["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["status"] == "failed on the target")
        .collect();
    assert!(!failed.is_empty());
    assert!(failed.iter().all(|u| {
        u["error"]
            .as_str()
            .unwrap()
            .contains("the import job failed")
    }));
    let t = target.state.lock().unwrap();
    for user in &failed {
        assert!(!t.users.contains_key(user["email"].as_str().unwrap()));
    }
    // The roles went to the users that arrived, and to them only.
    let arrived: BTreeSet<String> = t
        .users
        .values()
        .map(|u| u["user_id"].as_str().unwrap().to_string())
        .collect();
    for role in &t.roles {
        assert!(
            role.users.iter().all(|u| arrived.contains(u)),
            "role {}",
            role.name
        );
    }
    assert!(
        !t.roles
            .iter()
            .find(|r| r.name == "admin")
            .unwrap()
            .users
            .is_empty()
    );
}
