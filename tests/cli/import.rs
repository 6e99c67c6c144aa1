//! `userport import` and `userport jobs` against a tenant on 127.0.0.1: the happy path, the
//! faults networks and rate limits bring, resuming after an interruption, and secrets.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use super::tenant::{Fault, Server};
use super::{ok, write_generated};

/// Prepares `count` generated users into `dir/import` in files of at most `max` bytes.
fn prepared(dir: &Path, count: usize, max: &str) -> std::path::PathBuf {
    let input = dir.join("users.ndjson");
    write_generated(&input, count);
    let out = dir.join("import");
    ok(&[
        "prepare",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--max-bytes",
        max,
    ]);
    out
}

/// Runs `userport import DIR --connection-id con_…01 EXTRA…` against `server`.
fn import(server: &Server, dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "import",
        dir.to_str().unwrap(),
        "--connection-id",
        "con_0000000000000001",
    ];
    args.extend(extra);
    server.run(&args)
}

/// How many import files (`users-NNNN.json`) a prepared folder holds.
fn import_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("users-")
        })
        .count()
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn files_become_jobs_two_at_a_time_with_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = prepared(tmp.path(), 400, "8000");
    let files = import_files(&dir);
    assert!(files >= 4, "{files} files");
    let server = Server::start();
    let (code, _, stderr) = server.run(&[
        "import",
        dir.to_str().unwrap(),
        "--connection",
        "Username-Password-Authentication",
        "--external-id",
        "batch-7",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let requests = server.requests();
    // One token, for the Management API audience.
    let tokens: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/oauth/token")
        .collect();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].body.contains("grant_type=client_credentials"));
    assert!(tokens[0].body.contains(&format!(
        "audience={}",
        urlencode(&format!("{}/api/v2/", server.url))
    )));
    // Each file once, as the SDKs send it.
    let posts: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v2/jobs/users-imports")
        .collect();
    assert_eq!(posts.len(), files);
    for post in &posts {
        let names: Vec<&str> = post.parts.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "connection_id",
                "upsert",
                "external_id",
                "send_completion_email",
                "users"
            ]
        );
        assert_eq!(post.parts[0].3, "con_0000000000000001");
        assert_eq!(post.parts[1].3, "false");
        assert_eq!(post.parts[2].3, "batch-7");
        assert_eq!(post.parts[3].3, "false");
        assert!(post.parts[4].1.as_deref().unwrap().starts_with("users-"));
        assert_eq!(post.parts[4].2.as_deref(), Some("application/json"));
        assert_eq!(post.authorization.as_deref(), Some("Bearer token-1"));
    }
    assert!(server.state.lock().unwrap().max_active <= 2);
    assert_eq!(server.state.lock().unwrap().users.len(), 400);
    let report = json_file(&dir.join("report.json"));
    assert_eq!(report["totals"]["inserted"], 400);
    assert_eq!(report["totals"]["failed"], 0);
    assert_eq!(json_file(&dir.join("failed-users.json")), json!([]));
    assert!(stderr.contains("total"), "{stderr}");
    // A second run finds every job done in the state file and sends nothing.
    let before = server.requests().len();
    let (code, _, stderr) = import(&server, &dir, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.requests().len(), before, "nothing submitted twice");
}

#[test]
fn failed_users_come_back_import_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = prepared(tmp.path(), 30, "500000");
    let server = Server::start();
    server.state.lock().unwrap().users.insert(
        "user7@example.com".into(),
        json!({"email": "user7@example.com"}),
    );
    let (code, _, stderr) = import(&server, &dir, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("1 failed users"), "{stderr}");
    let failed = json_file(&dir.join("failed-users.json"));
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["email"], "user7@example.com");
    assert_eq!(
        failed[0]["user_id"], "00000007",
        "the user as the file has it"
    );
    let report = json_file(&dir.join("report.json"));
    assert_eq!(
        report["files"][0]["errors"][0]["errors"][0]["code"],
        "DUPLICATED_USER"
    );
    assert_eq!(report["totals"]["inserted"], 29);
}

#[test]
fn invalid_files_send_nothing() {
    let server = Server::start();
    let (code, stdout, stderr) = server.run(&[
        "import",
        "fixtures/import/bad-users.json",
        "--connection-id",
        "con_0000000000000001",
    ]);
    assert_eq!(code, 1);
    assert!(stdout.contains("DUPLICATED_USER"), "{stdout}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert!(server.requests().is_empty());
    // A prepared file edited after prepare no longer matches its manifest.
    let tmp = tempfile::tempdir().unwrap();
    let dir = prepared(tmp.path(), 20, "500000");
    let file = dir.join("users-0001.json");
    let text = fs::read_to_string(&file).unwrap();
    fs::write(&file, text.replacen("user1@", "user1x@", 1)).unwrap();
    let (code, stdout, _) = import(&server, &dir, &[]);
    assert_eq!(code, 1);
    assert!(stdout.contains("MANIFEST_MISMATCH"), "{stdout}");
    assert!(server.requests().is_empty());
}

#[test]
fn rate_limits_server_errors_and_expired_tokens_are_survived() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = prepared(tmp.path(), 20, "500000");
    let server = Server::start();
    let mut limited = Fault::new(
        "POST",
        "/api/v2/jobs/users-imports",
        429,
        json!({"statusCode": 429, "error": "Too Many Requests", "message": "Global limit has been reached", "errorCode": "too_many_requests"}),
        1,
    );
    limited.headers.push(("retry-after", "0".into()));
    server.fault(limited);
    let mut reset = Fault::new(
        "GET",
        "/api/v2/jobs/",
        429,
        json!({"statusCode": 429, "error": "Too Many Requests", "message": "Global limit has been reached"}),
        1,
    );
    reset.headers.push(("x-ratelimit-reset", "0".into()));
    server.fault(reset);
    server.fault(Fault::new(
        "GET",
        "/api/v2/jobs/",
        503,
        json!({"statusCode": 503, "error": "Service Unavailable", "message": "try later"}),
        2,
    ));
    let (code, _, stderr) = import(&server, &dir, &[]);
    assert_eq!(code, 0, "{stderr}");
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("users-imports"))
        .count();
    assert_eq!(posts, 2, "one rate-limited, one accepted");

    // A token that stops working is refreshed once.
    let tmp = tempfile::tempdir().unwrap();
    let dir = prepared(tmp.path(), 20, "500000");
    let server = Server::start();
    server.fault(Fault::new(
        "GET",
        "/api/v2/jobs/",
        401,
        json!({"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"}),
        1,
    ));
    let (code, _, stderr) = import(&server, &dir, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.state.lock().unwrap().tokens, 2);
}

#[test]
fn errors_are_shown_as_auth0_wrote_them_and_secrets_never() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = prepared(tmp.path(), 20, "500000");
    let server = Server::start();
    server.fault(Fault::new("POST", "/api/v2/jobs/users-imports", 413, json!({"statusCode": 413, "error": "Request Entity Too Large", "message": "Payload content length greater than maximum allowed: 512000", "errorCode": "too_large"}), 1));
    let (code, stdout, stderr) = import(&server, &dir, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("POST /api/v2/jobs/users-imports: HTTP 413: 413 Request Entity Too Large: Payload content length greater than maximum allowed: 512000 (errorCode too_large)"), "{stderr}");
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains("s3cr3t") && !text.contains("token-1"),
            "{text}"
        );
    }
    // A 400 as Auth0 wrote it (the body of auth0/docs#1327).
    let server = Server::start();
    server.fault(Fault::new("POST", "/api/v2/jobs/users-imports", 400, json!({"statusCode": 400, "error": "Bad Request", "message": "Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$' on property connection_id", "errorCode": "invalid_body"}), 1));
    let (code, _, stderr) = import(
        &server,
        &dir,
        &["--state", tmp.path().join("s400.json").to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("HTTP 400: 400 Bad Request: Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$' on property connection_id (errorCode invalid_body)"), "{stderr}");
    // A server that keeps failing: a bounded number of tries, then a clear error.
    let server = Server::start();
    server.fault(Fault::new(
        "GET",
        "/api/v2/connections",
        500,
        json!({"statusCode": 500, "error": "Internal Server Error", "message": "boom"}),
        u32::MAX,
    ));
    let (code, _, stderr) = server.run(&[
        "import",
        dir.to_str().unwrap(),
        "--connection",
        "Username-Password-Authentication",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("gave up after 6 attempts: GET /api/v2/connections: HTTP 500: 500 Internal Server Error: boom"), "{stderr}");
    assert!(!stderr.contains("s3cr3t"));
    // A bad client secret: Auth0's answer, not the secret.
    let server = Server::start();
    server.fault(Fault::new(
        "POST",
        "/oauth/token",
        403,
        json!({"error": "access_denied", "error_description": "Unauthorized"}),
        u32::MAX,
    ));
    let (code, _, stderr) = server.run(&["jobs", "show", "job_1"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("POST /oauth/token: HTTP 403"), "{stderr}");
    assert!(!stderr.contains("s3cr3t"), "{stderr}");
}

#[test]
fn an_interrupted_import_resumes_without_submitting_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = prepared(tmp.path(), 300, "8000");
    let state = tmp.path().join("state.json");
    let server = Server::start();
    // The second job's status cannot be read: the run ends with jobs on record.
    server.fault(Fault::new(
        "GET",
        "/api/v2/jobs/job_0000000000000002",
        500,
        json!({"statusCode": 500, "error": "Internal Server Error", "message": "down"}),
        u32::MAX,
    ));
    let args = [
        "import",
        dir.to_str().unwrap(),
        "--connection-id",
        "con_0000000000000001",
        "--state",
        state.to_str().unwrap(),
    ];
    let (code, _, stderr) = server.run(&args);
    assert_eq!(code, 2, "{stderr}");
    let recorded = json_file(&state);
    let jobs: Vec<&Value> = recorded["files"].as_object().unwrap().values().collect();
    assert!(
        jobs.iter()
            .any(|f| f["job"] == "job_0000000000000002" && f["status"] == "pending"),
        "{recorded}"
    );
    let jobs_before = server.state.lock().unwrap().jobs_created();
    server.state.lock().unwrap().faults.clear();
    let (code, _, stderr) = server.run(&args);
    assert_eq!(code, 0, "{stderr}");
    let files = import_files(&dir);
    assert_eq!(
        server.state.lock().unwrap().jobs_created(),
        files,
        "every file submitted exactly once over both runs ({jobs_before} in the first)"
    );
    assert_eq!(server.state.lock().unwrap().users.len(), 300);
}

#[test]
fn jobs_show_errors_and_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = prepared(tmp.path(), 10, "500000");
    let server = Server::start();
    server.state.lock().unwrap().users.insert(
        "user3@example.com".into(),
        json!({"email": "user3@example.com"}),
    );
    let (code, _, _) = import(&server, &dir, &[]);
    assert_eq!(code, 1);
    let (code, stdout, _) = server.run(&["jobs", "show", "job_0000000000000001"]);
    assert_eq!(code, 0);
    let job: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(job["status"], "completed");
    assert_eq!(job["summary"]["failed"], 1);
    let out = tmp.path().join("errors.json");
    let (code, _, _) = server.run(&[
        "jobs",
        "errors",
        "job_0000000000000001",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(json_file(&out)[0]["errors"][0]["code"], "DUPLICATED_USER");
    let (code, stdout, _) = server.run(&["jobs", "wait", "job_0000000000000001", "--quiet"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("\"completed\""));
    let (code, _, stderr) = server.run(&["jobs", "show", "../users"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a job id"), "{stderr}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_busy_tenant_and_an_unreachable_one() {
    // Auth0's "2 active import jobs" answer has no Retry-After: userport backs off and
    // tries again until a slot is free.
    let tmp = tempfile::tempdir().unwrap();
    let dir = prepared(tmp.path(), 20, "500000");
    let server = Server::start();
    server.fault(Fault::new("POST", "/api/v2/jobs/users-imports", 429, json!({"statusCode": 429, "error": "Too Many Requests", "message": "There are 2 active import users jobs, please wait until some of them are finished and try again"}), 2));
    let (code, _, stderr) = import(&server, &dir, &["--verbose"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.state.lock().unwrap().jobs_created(), 1);
    assert!(
        stderr.contains("POST /api/v2/jobs/users-imports → 429"),
        "{stderr}"
    );
    assert!(stderr.contains("POST /oauth/token → 200"), "{stderr}");
    assert!(
        !stderr.contains("s3cr3t") && !stderr.contains("token-1"),
        "{stderr}"
    );

    // Nothing listens: bounded retries, then the reason.
    let out = super::userport()
        .env("AUTH0_DOMAIN", "http://127.0.0.1:9")
        .env("AUTH0_TOKEN", "t0ken-never-shown")
        .env("USERPORT_BACKOFF_MS", "1")
        .args(["jobs", "show", "job_1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("gave up after 6 attempts: GET /api/v2/jobs/job_1"),
        "{stderr}"
    );
    assert!(!stderr.contains("t0ken-never-shown"), "{stderr}");
    // Plain http only on loopback.
    let out = super::userport()
        .env("AUTH0_DOMAIN", "http://example.auth0.com")
        .env("AUTH0_TOKEN", "x")
        .args(["jobs", "show", "job_1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("plain http is allowed only for loopback addresses")
    );
}
