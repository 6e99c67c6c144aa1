//! `userport export` with no INPUT: an export job on a tenant on 127.0.0.1, polled, its
//! gzipped download streamed into the same pipeline as a local file.

use std::fs;

use serde_json::Value;

use super::ok;
use super::tenant::{Fault, Server};

fn server_with_fixture_users() -> Server {
    let server = Server::start();
    server.state.lock().unwrap().export_body = fs::read(super::fixture("users.ndjson")).unwrap();
    server
}

#[test]
fn a_tenant_export_reads_like_a_local_file() {
    let server = server_with_fixture_users();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("users.csv");
    let raw = tmp.path().join("raw.json.gz");
    let (code, _, stderr) = server.run(&[
        "export",
        "--default-fields",
        "-o",
        out.to_str().unwrap(),
        "--save-raw",
        raw.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let local = ok(&["export", "fixtures/users.ndjson", "--default-fields"]);
    assert_eq!(fs::read_to_string(&out).unwrap(), local);
    // --save-raw keeps the download as served.
    let whole = ok(&["export", raw.to_str().unwrap(), "--format", "ndjson"]);
    assert_eq!(
        whole,
        ok(&["export", "fixtures/users.ndjson", "--format", "ndjson"])
    );
    let requests = server.requests();
    let post = requests
        .iter()
        .find(|r| r.path == "/api/v2/jobs/users-exports")
        .unwrap();
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["format"], "json");
    assert!(body.get("connection_id").is_none());
    // The default fields are attribute paths: Auth0 is asked for just those.
    assert!(
        body["fields"].as_array().is_some_and(|f| !f.is_empty()),
        "{body}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path.starts_with("/downloads/"))
            .all(|r| r.authorization.is_none())
    );
}

#[test]
fn top_level_columns_ask_auth0_for_those_fields_of_one_connection() {
    let server = server_with_fixture_users();
    let (code, stdout, stderr) = server.run(&[
        "export",
        "--field",
        "email",
        "--field",
        "Name=name",
        "--field",
        "email_verified",
        "--connection",
        "Username-Password-Authentication",
        "-q",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("email,Name,email_verified\n"),
        "{stdout}"
    );
    let requests = server.requests();
    let post = requests
        .iter()
        .find(|r| r.path == "/api/v2/jobs/users-exports")
        .unwrap();
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["connection_id"], "con_0000000000000001");
    assert_eq!(
        body["fields"],
        serde_json::json!([{"name": "email"}, {"name": "name"}, {"name": "email_verified"}])
    );
}

#[test]
fn a_lapsed_link_is_fetched_again() {
    let server = server_with_fixture_users();
    server.fault(Fault::new(
        "GET",
        "/downloads/",
        403,
        serde_json::json!("Request has expired"),
        1,
    ));
    let (code, stdout, stderr) = server.run(&["export", "--field", "email", "-q"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        ok(&["export", "fixtures/users.ndjson", "--field", "email"])
    );
    assert_eq!(
        server.state.lock().unwrap().links,
        2,
        "a second link was asked for"
    );
}

#[test]
fn a_broken_download_is_an_error_not_a_short_export() {
    let server = server_with_fixture_users();
    server.state.lock().unwrap().truncate_download = true;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("users.csv");
    let (code, _, stderr) = server.run(&[
        "export",
        "--default-fields",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("the export of job job_export000001"),
        "{stderr}"
    );
    assert!(!out.exists(), "no partial output");
    assert_eq!(super::entries(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_failed_job_says_why() {
    let server = server_with_fixture_users();
    server.state.lock().unwrap().fail_exports =
        Some(serde_json::json!({"reason": "export limit reached"}));
    let (code, _, stderr) = server.run(&["export", "--default-fields", "-q"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("job job_export000001 failed: {\"reason\":\"export limit reached\"}"),
        "{stderr}"
    );
}

#[test]
fn nested_fields_read_the_same_flat_or_nested() {
    // Auth0 may write the fields asked for as flat keys; userport reads both shapes alike.
    let server = Server::start();
    server.state.lock().unwrap().export_body = concat!(
        r#"{"email":"a@example.com","user_metadata.plan":"pro","identities[0].connection":"Username-Password-Authentication"}"#,
        "\n",
        r#"{"email":"b@example.com","user_metadata":{"plan":3},"identities":[{"connection":"github"}]}"#,
        "\n"
    )
    .as_bytes()
    .to_vec();
    let (code, stdout, stderr) = server.run(&[
        "export",
        "--field",
        "email",
        "--field",
        "Plan=user_metadata.plan",
        "--field",
        "identities[0].connection",
        "-q",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "email,Plan,identities[0].connection\na@example.com,pro,Username-Password-Authentication\nb@example.com,3,github\n"
    );
    let requests = server.requests();
    let post = requests
        .iter()
        .find(|r| r.path == "/api/v2/jobs/users-exports")
        .unwrap();
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(
        body["fields"],
        serde_json::json!([{"name": "email"}, {"name": "user_metadata.plan"}, {"name": "identities[0].connection"}])
    );
    // The same columns from the fixture's nested users equal a local run.
    let server = server_with_fixture_users();
    let (code, stdout, _) = server.run(&[
        "export",
        "--field",
        "email",
        "--field",
        "user_metadata.plan",
        "-q",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        ok(&[
            "export",
            "fixtures/users.ndjson",
            "--field",
            "email",
            "--field",
            "user_metadata.plan"
        ])
    );
}
