//! Users from other systems: every worked migration of `queries/migrate/` runs on the legacy
//! fixtures (`fixtures/make_legacy.py`: Django on a live PostgreSQL, ASP.NET Identity from
//! SQLite, a Keycloak realm export, a Firebase export, a spreadsheet), its files pass
//! `validate`, every known password matches its converted hash, and the rows come through
//! field by field.

use std::fs;
use std::path::Path;

use serde_json::Value;

use super::postgres::{PASSWORD, Server};
use super::{fails, fixture, root, userport};

/// The users of a prepared folder's files, by email (lowercased).
fn prepared(dir: &Path) -> std::collections::BTreeMap<String, Value> {
    let mut users = std::collections::BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("users-") {
            let list: Vec<Value> = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
            for user in list {
                users.insert(user["email"].as_str().unwrap().to_lowercase(), user);
            }
        }
    }
    users
}

fn rejected(dir: &Path) -> Vec<Value> {
    serde_json::from_slice(&fs::read(dir.join("rejected.json")).unwrap()).unwrap()
}

/// Runs `userport ARGS` with `PGPASSWORD` set; returns (exit code, stdout, stderr).
fn run_pg(args: &[&str]) -> (Option<i32>, String, String) {
    let out = userport()
        .env("PGPASSWORD", PASSWORD)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Prepares with a migration query and its passwords checked, then validates the folder
/// with the same passwords; returns the folder.
fn migrate(
    table: &str,
    query: &str,
    passwords: &str,
    extra: &[&str],
    tmp: &Path,
) -> std::path::PathBuf {
    let out = tmp.join(query.trim_end_matches(".sql"));
    let query = format!("queries/migrate/{query}");
    let passwords = fixture(&format!("migrate/{passwords}"));
    let mut args = vec![
        "prepare",
        "--table",
        table,
        "--file",
        &query,
        "-o",
        out.to_str().unwrap(),
        "--check-passwords",
        passwords.to_str().unwrap(),
    ];
    args.extend(extra);
    let (code, _, stderr) = run_pg(&args);
    assert_eq!(code, Some(0), "{args:?}:\n{stderr}");
    assert!(stderr.contains("all match"), "{stderr}");
    let (code, _, stderr) = run_pg(&[
        "validate",
        out.to_str().unwrap(),
        "--check-passwords",
        passwords.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "validate {}:\n{stderr}", out.display());
    out
}

/// Each query opens with the command line it expects.
#[test]
fn every_migration_opens_with_its_command_line() {
    let dir = root().join("queries/migrate");
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with("-- userport prepare --table ")
                && first.contains(&format!(
                    "--file queries/migrate/{}",
                    path.file_name().unwrap().to_str().unwrap()
                )),
            "{}: {first}",
            path.display()
        );
        count += 1;
    }
    assert!(count >= 5);
}

#[test]
fn django_users_come_from_a_live_postgresql() {
    let Some(server) = Server::start() else {
        return;
    };
    server.load(&fixture("migrate/django_auth_user.sql"));
    let tmp = tempfile::tempdir().unwrap();
    let table = format!("auth_user={}#auth_user", server.url());
    let out = migrate(
        &table,
        "django.sql",
        "django.passwords.csv",
        &[],
        tmp.path(),
    );
    let users = prepared(&out);
    // Field by field: every accepted legacy row is in the import rows.
    let rows = server.rows(
        "SELECT id, email, first_name, last_name, username, is_staff, is_superuser, is_active, password FROM auth_user ORDER BY id",
    );
    let refused: Vec<String> = rejected(&out)
        .iter()
        .map(|r| r["email"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        refused,
        ["john@example.com", ""],
        "bcrypt_sha256 and the user without email"
    );
    assert_eq!(users.len(), rows.len() - 2);
    for row in &rows {
        let text = |i: usize| row[i].clone().unwrap_or_default();
        let Some(user) = users.get(&text(1).to_lowercase()) else {
            assert!(
                refused.contains(&text(1)),
                "{row:?} is neither imported nor refused"
            );
            continue;
        };
        assert_eq!(user["user_id"], text(0));
        assert_eq!(user["email"], text(1));
        let optional = |v: &Value, s: String| {
            if s.is_empty() {
                assert!(v.is_null(), "{v}");
            } else {
                assert_eq!(v, &Value::String(s));
            }
        };
        optional(&user["given_name"], text(2));
        optional(&user["family_name"], text(3));
        assert_eq!(user["app_metadata"]["django_username"], text(4));
        assert_eq!(user["app_metadata"]["is_staff"], text(5) == "t");
        assert_eq!(user["app_metadata"]["is_superuser"], text(6) == "t");
        assert_eq!(user["blocked"], text(7) == "f");
        let unusable = text(8).starts_with('!');
        assert_eq!(
            user.get("custom_password_hash").is_none(),
            unusable,
            "{user}"
        );
    }
    let john = &rejected(&out)[0];
    assert_eq!(john["problems"][0]["code"], "UNCONVERTIBLE_HASH");
    assert!(
        john["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("password reset")
    );

    // One wrong password fails the run, names the user, and writes nothing.
    let wrong = tmp.path().join("wrong.csv");
    fs::write(
        &wrong,
        "email,password\nada@example.com,correct horse 1\nalan@example.com,wrong\n",
    )
    .unwrap();
    let target = tmp.path().join("never");
    let (code, _, stderr) = run_pg(&[
        "prepare",
        "--table",
        &table,
        "--file",
        "queries/migrate/django.sql",
        "-o",
        target.to_str().unwrap(),
        "--check-passwords",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("alan@example.com: the password does not match its pbkdf2 hash"),
        "{stderr}"
    );
    assert!(!stderr.contains("ada@example.com:"), "{stderr}");
    assert!(!target.exists());

    // Only the columns used are fetched, simple filters and the limit run in the database.
    let (code, plan, stderr) = run_pg(&[
        "sql",
        "--table",
        &table,
        "-e",
        "SELECT email FROM auth_user WHERE id > 3 AND is_staff = false LIMIT 2",
        "--explain",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        plan.contains(r#"query="SELECT "email", "id", "is_staff" FROM "auth_user" WHERE"#)
            || plan.contains("FROM \"auth_user\" WHERE"),
        "{plan}"
    );
    let (_, csv, _) = run_pg(&[
        "sql",
        "--table",
        &table,
        "-e",
        "SELECT email FROM auth_user WHERE id > 3 AND is_staff = false ORDER BY id LIMIT 2",
    ]);
    assert_eq!(csv, "email\nedsger@example.com\nbarbara@example.com\n");

    // A wrong password, a missing table, an unreachable server: one message naming the
    // source, without the password.
    let bad = format!(
        "auth_user=postgres://userport:not-{PASSWORD}@127.0.0.1:{}/postgres#auth_user",
        server.port
    );
    let out = userport()
        .args(["sql", "--table", &bad, "-e", "SELECT 1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("postgres://userport@127.0.0.1")
            && stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    let (code, _, stderr) = run_pg(&[
        "sql",
        "--table",
        &format!("t={}#nope", server.url()),
        "-e",
        "SELECT 1",
    ]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("#nope") && stderr.contains("does not exist"),
        "{stderr}"
    );
}

#[test]
fn aspnet_identity_users_come_from_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let db = fixture("migrate/aspnet.sqlite");
    let table = format!("AspNetUsers=sqlite://{}#AspNetUsers", db.display());
    let out = migrate(
        &table,
        "aspnet-identity.sql",
        "aspnet.passwords.csv",
        &[],
        tmp.path(),
    );
    let users = prepared(&out);
    assert_eq!(users.len(), 4);
    let hash = |email: &str| {
        users[email]["custom_password_hash"]["hash"]["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(hash("linus@example.com").starts_with("$pbkdf2-sha512$i=100000,l=32$"));
    assert!(hash("anders@example.com").starts_with("$pbkdf2-sha256$i=10000,l=32$"));
    assert!(hash("bjarne@example.com").starts_with("$pbkdf2-sha1$i=1000,l=32$"));
    assert!(
        users["guido@example.com"]
            .get("custom_password_hash")
            .is_none()
    );
    assert_eq!(
        users["linus@example.com"]["user_metadata"]["phone_number"],
        "+15550100"
    );
    assert_eq!(users["bjarne@example.com"]["email_verified"], false);
}

#[test]
fn keycloak_users_come_from_a_realm_export() {
    let tmp = tempfile::tempdir().unwrap();
    let table = format!(
        "users={}#/users",
        fixture("migrate/keycloak-realm.json").display()
    );
    let out = migrate(
        &table,
        "keycloak.sql",
        "keycloak.passwords.csv",
        &[],
        tmp.path(),
    );
    let users = prepared(&out);
    assert_eq!(users.len(), 5);
    assert_eq!(
        users["frances@example.com"]["custom_password_hash"]["algorithm"],
        "argon2"
    );
    assert_eq!(
        users["frances@example.com"]["app_metadata"]["roles"],
        serde_json::json!(["default-roles-acme", "editor", "viewer"])
    );
    assert_eq!(
        users["margo@example.com"]["app_metadata"]["attributes"]["department"][0],
        "research"
    );
}

#[test]
fn firebase_users_are_imported_without_their_unverifiable_passwords() {
    let tmp = tempfile::tempdir().unwrap();
    let table = format!(
        "users={}#/users",
        fixture("migrate/firebase-users.json").display()
    );
    let out = tmp.path().join("firebase");
    let (code, _, stderr) = run_pg(&[
        "prepare",
        "--table",
        &table,
        "--file",
        "queries/migrate/firebase.sql",
        "--unconvertible",
        "no-password",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("wrote 3 users without a password: firebase-scrypt"),
        "{stderr}"
    );
    let users = prepared(&out);
    assert_eq!(users.len(), 3);
    assert!(
        users
            .values()
            .all(|u| u.get("custom_password_hash").is_none()
                && u["app_metadata"]["password_reset_required"] == true)
    );
    let listed: Vec<Value> =
        serde_json::from_slice(&fs::read(out.join("without-password.json")).unwrap()).unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed[0]["reason"].as_str().unwrap().contains("signer key"));
    // Without the option, each is refused with the reason.
    let refused = tmp.path().join("refused");
    let (code, _, _) = run_pg(&[
        "prepare",
        "--table",
        &table,
        "--file",
        "queries/migrate/firebase.sql",
        "-o",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(rejected(&refused).len(), 3);
    assert_eq!(
        rejected(&refused)[2]["problems"][0]["code"],
        "UNCONVERTIBLE_HASH"
    );
}

#[test]
fn a_spreadsheet_comes_through_field_by_field() {
    let tmp = tempfile::tempdir().unwrap();
    let csv_path = fixture("migrate/spreadsheet.csv");
    let table = format!("people={}", csv_path.display());
    let out = migrate(
        &table,
        "spreadsheet.sql",
        "spreadsheet.passwords.csv",
        &[],
        tmp.path(),
    );
    let users = prepared(&out);
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let mut count = 0;
    for record in reader.records() {
        let r = record.unwrap();
        let user = &users[&r[0].to_lowercase()];
        let truthy = ["yes", "true", "1"].contains(&r[3].to_lowercase().as_str());
        assert_eq!(user["email_verified"], truthy, "{user}");
        assert_eq!(user["given_name"], r[1]);
        assert_eq!(user["family_name"], r[2]);
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        assert_eq!(text(&user["user_metadata"]["plan"]), r[4]);
        let roles: Vec<String> = user["app_metadata"]["roles"]
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        assert_eq!(roles.join(";"), r[5]);
        assert_eq!(text(&user["user_metadata"]["signed_up"]), r[6]);
        assert_eq!(text(&user["custom_password_hash"]["hash"]["value"]), r[7]);
        count += 1;
    }
    assert_eq!(count, users.len());
}

#[test]
fn foreign_tables_and_mappings_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let csv_path = tmp.path().join("people.csv");
    fs::write(
        &csv_path,
        "email,age,first_name\na@x.co,31,A\nb@x.co,32,B\n",
    )
    .unwrap();
    let table = format!("people={}", csv_path.display());
    let out = tmp.path().join("out");
    // A column that maps to nothing is refused before any row is read.
    let stderr = fails(
        &[
            "prepare",
            "--table",
            &table,
            "--sql",
            "SELECT email, first_name FROM people",
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(
        stderr.contains("the column \"first_name\" maps to no import attribute"),
        "{stderr}"
    );
    assert!(!out.exists());
    // A cell that does not fit its column's type names the file, the line and the column.
    let schema = tmp.path().join("types.json");
    fs::write(&schema, r#"{"first_name": "integer"}"#).unwrap();
    let stderr = fails(
        &[
            "sql",
            "--table",
            &table,
            "--table-schema",
            &format!("people={}", schema.display()),
            "-e",
            "SELECT * FROM people",
        ],
        2,
    );
    assert!(
        stderr.contains("people.csv:2:1: column first_name: \"A\" is not an integer"),
        "{stderr}"
    );
    // A missing file, a JSON pointer to nothing, a missing SQLite table.
    let stderr = fails(&["sql", "--table", "t=nope.csv", "-e", "SELECT 1"], 2);
    assert!(
        stderr.contains("--table t=nope.csv: no such file"),
        "{stderr}"
    );
    let realm = fixture("migrate/keycloak-realm.json");
    let stderr = fails(
        &[
            "sql",
            "--table",
            &format!("t={}#/people", realm.display()),
            "-e",
            "SELECT 1",
        ],
        2,
    );
    assert!(
        stderr.contains("nothing at the JSON pointer /people"),
        "{stderr}"
    );
    let db = fixture("migrate/aspnet.sqlite");
    let stderr = fails(
        &[
            "sql",
            "--table",
            &format!("t=sqlite://{}#Users", db.display()),
            "-e",
            "SELECT 1",
        ],
        2,
    );
    assert!(
        stderr.contains("no table Users in the database (it has: AspNetUsers)"),
        "{stderr}"
    );
    // Gzipped CSV reads the same; nested JSON stays readable with ->>.
    let gz = tmp.path().join("people.csv.gz");
    let mut encoder =
        flate2::write::GzEncoder::new(fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &fs::read(&csv_path).unwrap()).unwrap();
    encoder.finish().unwrap();
    let out = super::ok(&[
        "sql",
        "--table",
        &format!("p={}", gz.display()),
        "-e",
        "SELECT email, age + 1 AS next FROM p",
    ]);
    assert_eq!(out, "email,next\na@x.co,32\nb@x.co,33\n");
    let out = super::ok(&[
        "sql",
        "--table",
        &format!("u={}#/users", realm.display()),
        "-e",
        "SELECT attributes->'department'->>0 AS d FROM u LIMIT 1",
    ]);
    assert_eq!(out, "d\nresearch\n");
    // Parquet keeps its own types; it joins the exports' users.
    let pq = tmp.path().join("logins.parquet");
    super::ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "email",
        "--field",
        "logins_count",
        "-o",
        pq.to_str().unwrap(),
    ]);
    let joined = super::ok(&[
        "sql",
        "fixtures/users.ndjson",
        "--table",
        &format!("l={}", pq.display()),
        "-e",
        "SELECT count(*) AS n FROM users WHERE email IN (SELECT email FROM l WHERE logins_count > 0)",
    ]);
    let direct = super::ok(&[
        "sql",
        "fixtures/users.ndjson",
        "-e",
        "SELECT count(*) AS n FROM users WHERE email IN (SELECT email FROM users WHERE logins_count > 0)",
    ]);
    assert_eq!(joined, direct);
    // export takes tables beside the users, for its conditions.
    let picked = super::ok(&[
        "export",
        "fixtures/users.ndjson",
        "--table",
        &format!("l={}", pq.display()),
        "--where",
        "email IN (SELECT email FROM l WHERE logins_count > 0)",
        "--field",
        "email",
        "--format",
        "ndjson",
    ]);
    let n: usize = direct.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(picked.lines().count(), n);
}

/// The converters and the check agree with Auth0's own examples of custom_password_hash
/// (../shared/auth0, with the plaintexts found for them).
#[test]
fn auth0_examples_verify_with_their_passwords() {
    let docs = root().join("../shared/auth0/auth0-docs");
    let (Ok(examples), Ok(plain)) = (
        fs::read(docs.join("bulk-import-custom-password-hash-examples.json")),
        fs::read(docs.join("bulk-import-custom-password-hash-examples.plaintexts.DERIVED.json")),
    ) else {
        eprintln!("skipped: ../shared/auth0 is not there");
        return;
    };
    let examples: Vec<Value> = serde_json::from_slice(&examples).unwrap();
    let plain: Value = serde_json::from_slice(&plain).unwrap();
    let mut checked = 0;
    for user in &examples {
        let email = user["email"].as_str().unwrap();
        let Some(password) = plain["by_email"][email]["plaintext"].as_str() else {
            continue;
        };
        let outcome = userport::password::verify::check(user, password);
        assert!(outcome.is_ok(), "{email}: {outcome:?}");
        let wrong = userport::password::verify::check(user, "not-it");
        assert!(wrong.is_err(), "{email} matched a wrong password");
        checked += 1;
    }
    assert!(checked >= 8, "{checked}");
}
