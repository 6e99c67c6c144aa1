//! Conformance with Auth0's real traffic: the recordings of Auth0's Go SDK against a live
//! tenant (`../shared/auth0/go-auth0-recordings/extracted`) are replayed. The requests
//! userport sends are compared with the recorded ones (method, path, query, multipart
//! parts, form fields) and the recorded answers are fed back to userport.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use super::tenant::Server;

fn recording(name: &str) -> Option<Vec<Value>> {
    let path = super::root()
        .join("../shared/auth0/go-auth0-recordings/extracted")
        .join(format!("{name}.interactions.json"));
    match fs::read(&path) {
        Ok(bytes) => {
            let doc: Value = serde_json::from_slice(&bytes).unwrap();
            Some(doc["interactions"].as_array().unwrap().clone())
        }
        Err(_) => {
            eprintln!(
                "skipped: {} is absent (recorded Auth0 traffic)",
                path.display()
            );
            None
        }
    }
}

/// Path and query of a recorded URL.
fn split(url: &str) -> (String, Option<String>) {
    let rest = url.split_once("://").unwrap().1;
    let path = &rest[rest.find('/').unwrap()..];
    match path.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (path.to_string(), None),
    }
}

fn pairs(query: Option<&str>) -> BTreeSet<String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The parts of a recorded multipart body: name, file name, content type, content.
fn recorded_parts(
    body: &str,
    content_type: &str,
) -> Vec<(String, Option<String>, Option<String>, String)> {
    let boundary = content_type.split("boundary=").nth(1).unwrap();
    body.split(&format!("--{boundary}"))
        .filter(|p| p.starts_with("\r\n"))
        .map(|part| {
            let (head, content) = part[2..].split_once("\r\n\r\n").unwrap();
            let content = content.strip_suffix("\r\n").unwrap_or(content).to_string();
            let field = |key: &str| {
                head.split(&format!("{key}=\""))
                    .nth(1)
                    .map(|r| r.split('"').next().unwrap().to_string())
            };
            let ctype = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Type: "))
                .map(str::to_string);
            (field(" name").unwrap(), field("filename"), ctype, content)
        })
        .collect()
}

/// Replays the recorded answers of `interactions` for the calls userport makes.
fn replaying(interactions: &[Value]) -> Server {
    let server = Server::start();
    let mut tenant = server.state.lock().unwrap();
    for i in interactions {
        let (path, _) = split(i["url"].as_str().unwrap());
        tenant.replay.push((
            i["method"].as_str().unwrap().to_string(),
            path,
            i["status"].as_u64().unwrap() as u16,
            i["response_body"].clone(),
        ));
    }
    drop(tenant);
    server
}

/// A recorded multipart part: name, file name, content type, content.
type Part = (String, Option<String>, Option<String>, String);

/// The recorded upload: its interaction, its parts, and its users written to
/// `dir/users.json` (the name the SDK gave the file).
fn recorded_upload(interactions: &[Value], dir: &std::path::Path) -> (Value, Vec<Part>, PathBuf) {
    let post = interactions
        .iter()
        .find(|i| i["method"] == "POST" && i["url"].as_str().unwrap().contains("users-imports"))
        .unwrap()
        .clone();
    let parts = recorded_parts(
        post["request_body"].as_str().unwrap(),
        post["request_content_type"].as_str().unwrap(),
    );
    let users = &parts.iter().find(|p| p.0 == "users").unwrap().3;
    let file = dir.join("users.json");
    fs::write(&file, users).unwrap();
    (post, parts, file)
}

/// Runs `userport ARGS` with a token given as is (the recordings carry none).
fn with_token(server: &Server, args: &[&str]) -> std::process::Output {
    server
        .userport()
        .env_remove("AUTH0_CLIENT_ID")
        .env_remove("AUTH0_CLIENT_SECRET")
        .env("AUTH0_TOKEN", "recorded-token")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn an_import_sends_what_the_sdk_sent_and_reads_what_auth0_answered() {
    let Some(interactions) = recording("TestJobManager_ImportUsers") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (_, parts, file) = recorded_upload(&interactions, tmp.path());
    let server = replaying(&interactions);
    let out = with_token(
        &server,
        &[
            "import",
            file.to_str().unwrap(),
            "--connection",
            "Username-Password-Authentication",
            "--upsert",
            // The recording has no backup export.
            "--no-backup",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let sent = server.requests();
    // Ours: the connection lookup, the upload, the job's status (the SDK's test then went on
    // to look the user up and delete it, which is not userport's business).
    assert_eq!(sent.len(), 3, "{sent:#?}");
    for (ours, recorded) in sent.iter().zip(&interactions) {
        let (path, query) = split(recorded["url"].as_str().unwrap());
        assert_eq!(ours.method, recorded["method"].as_str().unwrap());
        assert_eq!(ours.path, path);
        assert_eq!(
            pairs(ours.query.as_deref()),
            pairs(query.as_deref()),
            "{path}"
        );
        assert_eq!(ours.authorization.as_deref(), Some("Bearer recorded-token"));
    }
    assert_eq!(
        sent[1].parts, parts,
        "the multipart parts, in order, with the file's name and type"
    );
    assert!(stderr.contains("job_6nNLiwFZksN0YmRR"), "{stderr}");
    let report: Value =
        serde_json::from_slice(&fs::read(tmp.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["totals"]["inserted"], 1);
}

#[test]
fn job_errors_are_read_as_auth0_wrote_them() {
    let Some(interactions) = recording("TestJobManager_ReadErrors") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (post, parts, file) = recorded_upload(&interactions, tmp.path());
    let server = replaying(&interactions);
    // The recording reads the errors without asking for the job first; userport asks, and
    // is answered as Auth0 answers for such a job.
    let job_id = post["response_body"]["id"].as_str().unwrap().to_string();
    server.state.lock().unwrap().replay.push((
        "GET".into(),
        format!("/api/v2/jobs/{job_id}"),
        200,
        serde_json::json!({"type": "users_import", "status": "completed", "id": job_id,
                           "summary": {"failed": 1, "updated": 0, "inserted": 0, "total": 1}}),
    ));
    let out = with_token(
        &server,
        &[
            "import",
            file.to_str().unwrap(),
            "--connection",
            "Username-Password-Authentication",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let sent = server.requests();
    assert_eq!(sent[1].parts, parts);
    assert_eq!(
        sent.last().unwrap().path,
        format!("/api/v2/jobs/{job_id}/errors")
    );
    let failed: Value =
        serde_json::from_slice(&fs::read(tmp.path().join("failed-users.json")).unwrap()).unwrap();
    let original: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        failed, original,
        "the failed user, import-ready, as the file had it"
    );
    let report: Value =
        serde_json::from_slice(&fs::read(tmp.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["files"][0]["errors"], post_errors(&interactions));
}

fn post_errors(interactions: &[Value]) -> Value {
    interactions
        .iter()
        .find(|i| i["url"].as_str().unwrap().ends_with("/errors"))
        .unwrap()["response_body"]
        .clone()
}

#[test]
fn the_token_request_has_the_recorded_form() {
    let Some(interactions) =
        recording("authentication__TestLoginWithClientCredentials_Should_return_tokens")
    else {
        return;
    };
    let recorded = &interactions[0];
    let server = replaying(&interactions);
    let _ = server
        .userport()
        .env("AUTH0_CLIENT_ID", "test-client_id")
        .env("AUTH0_CLIENT_SECRET", "test-client_secret")
        .args(["jobs", "show", "job_1"])
        .output()
        .unwrap();
    let sent = server.requests();
    let ours = &sent[0];
    assert_eq!(ours.path, "/oauth/token");
    assert_eq!(
        ours.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let keys = |form: &str| -> BTreeSet<String> {
        form.split('&')
            .map(|kv| kv.split('=').next().unwrap().to_string())
            .collect()
    };
    let recorded_form = recorded["request_body"].as_str().unwrap();
    assert_eq!(keys(&ours.body), keys(recorded_form));
    for field in [
        "client_id=test-client_id",
        "client_secret=test-client_secret",
        "grant_type=client_credentials",
    ] {
        assert!(ours.body.split('&').any(|kv| kv == field), "{}", ours.body);
    }
    // The recorded token was used on the next call.
    assert_eq!(
        sent[1].authorization.as_deref(),
        Some("Bearer test-access-token")
    );
}

#[test]
fn an_export_job_is_asked_for_as_the_sdk_asked() {
    let Some(interactions) = recording("TestJobManager_ExportUsers") else {
        return;
    };
    let calls: Vec<Value> = interactions
        .iter()
        .filter(|i| {
            let url = i["url"].as_str().unwrap();
            url.contains("/connections") || url.contains("/jobs/")
        })
        .cloned()
        .collect();
    let server = replaying(&calls);
    let recorded_post = calls.iter().find(|i| i["method"] == "POST").unwrap();
    let job_id = recorded_post["response_body"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The recording ends at the job's creation; the job then completes as Auth0's do.
    {
        let mut tenant = server.state.lock().unwrap();
        tenant.export_body =
            b"{\"user_id\":\"auth0|1\",\"email\":\"a@example.com\",\"name\":\"A\"}\n".to_vec();
        let location = format!(
            "{}/downloads/{job_id}.json.gz?Expires=1&Signature=x",
            server.url
        );
        tenant.replay.push((
            "GET".into(),
            format!("/api/v2/jobs/{job_id}"),
            200,
            serde_json::json!({"type": "users_export", "status": "completed", "id": job_id, "format": "json", "location": location}),
        ));
    }
    let out = with_token(
        &server,
        &[
            "export",
            "--field",
            "name",
            "--field",
            "email",
            "--connection",
            "Username-Password-Authentication",
            "-q",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "name,email\nA,a@example.com\n"
    );
    let sent = server.requests();
    let (path, query) = split(calls[0]["url"].as_str().unwrap());
    assert_eq!(
        (sent[0].method.as_str(), sent[0].path.as_str()),
        ("GET", path.as_str())
    );
    assert_eq!(pairs(sent[0].query.as_deref()), pairs(query.as_deref()));
    let ours: Value = serde_json::from_str(&sent[1].body).unwrap();
    let theirs = &recorded_post["request_body"];
    assert_eq!(sent[1].path, "/api/v2/jobs/users-exports");
    assert_eq!(sent[1].content_type.as_deref(), Some("application/json"));
    assert_eq!(ours["format"], theirs["format"]);
    assert_eq!(ours["connection_id"], theirs["connection_id"]);
    // The SDK's test also asked for identities[0].connection and a limit of 5.
    for field in ours["fields"].as_array().unwrap() {
        assert!(
            theirs["fields"].as_array().unwrap().contains(field),
            "{field}"
        );
    }
}

/// Runs `call` with a client of the replaying server (a token given as is), on a runtime
/// of its own.
fn with_client<T>(
    server: &Server,
    call: impl AsyncFnOnce(&userport::auth0::Client) -> userport::error::Result<T>,
) -> T {
    let client = userport::auth0::Client::new(userport::auth0::Tenant {
        base: server.url.clone(),
        auth: userport::auth0::Auth::Token(userport::auth0::Secret::new("recorded-token")),
    })
    .unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(call(&client))
        .unwrap()
}

/// The value of a query parameter.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.replace("%2C", ","))
    })
}

/// Userport's requests against the recorded ones of the same method, in order: the same
/// path; for a list, the same checkpoint (`from`) and the same values of the parameters the
/// recording has too (`include_totals`, `fields`, `include_fields`); for a write, the same
/// JSON body.
fn assert_like_recorded(server: &Server, interactions: &[Value], method: &str, prefix: &str) {
    let ours: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path.starts_with(prefix))
        .collect();
    let recorded: Vec<&Value> = interactions
        .iter()
        .filter(|i| {
            i["method"] == method && split(i["url"].as_str().unwrap()).0.starts_with(prefix)
        })
        .collect();
    assert!(!ours.is_empty());
    assert_eq!(ours.len(), recorded.len(), "{ours:#?}");
    for (ours, recorded) in ours.iter().zip(recorded) {
        let (path, query) = split(recorded["url"].as_str().unwrap());
        assert_eq!(ours.path, path);
        assert_eq!(ours.authorization.as_deref(), Some("Bearer recorded-token"));
        if method == "GET" {
            assert_eq!(
                param(ours.query.as_deref(), "from"),
                param(query.as_deref(), "from"),
                "the checkpoint of {path}"
            );
            for key in ["include_totals", "fields", "include_fields"] {
                if let (Some(a), Some(b)) = (
                    param(ours.query.as_deref(), key),
                    param(query.as_deref(), key),
                ) {
                    assert_eq!(a, b, "{key} of {path}");
                }
            }
        } else {
            let body: Value = serde_json::from_str(&ours.body).unwrap();
            assert_eq!(
                body, recorded["request_body"],
                "the body of {method} {path}"
            );
            assert_eq!(ours.content_type.as_deref(), Some("application/json"));
        }
    }
}

#[test]
fn role_users_are_read_by_checkpoints_and_given_in_a_batch_as_recorded() {
    for name in [
        "TestRoleManager_UsersCheckpointPagination",
        "TestRoleManager_Users",
    ] {
        let Some(interactions) = recording(name) else {
            return;
        };
        let post = interactions
            .iter()
            .find(|i| {
                let url = i["url"].as_str().unwrap();
                i["method"] == "POST" && url.contains("/roles/") && url.ends_with("/users")
            })
            .unwrap();
        let (path, _) = split(post["url"].as_str().unwrap());
        let role = path.split('/').nth(4).unwrap().to_string();
        let batch: Vec<String> =
            serde_json::from_value(post["request_body"]["users"].clone()).unwrap();
        let server = replaying(&interactions);
        let users = with_client(&server, async |client| {
            client.add_role_users(&role, &batch).await?;
            let mut users = Vec::new();
            client.role_users(&role, |page| users.extend(page)).await?;
            Ok(users)
        });
        let mut sorted = users.clone();
        sorted.sort();
        let mut given = batch.clone();
        given.sort();
        assert_eq!(
            sorted, given,
            "{name}: every user of the role, across the pages"
        );
        assert_like_recorded(
            &server,
            &interactions,
            "POST",
            &format!("/api/v2/roles/{role}"),
        );
        assert_like_recorded(
            &server,
            &interactions,
            "GET",
            &format!("/api/v2/roles/{role}"),
        );
    }
}

#[test]
fn organizations_and_members_are_read_by_checkpoints_as_recorded() {
    let Some(interactions) = recording("TestOrganizationManager_ListCheckpointPagination") else {
        return;
    };
    let server = replaying(&interactions);
    let organizations = with_client(&server, async |client| client.organizations().await);
    let names: Vec<&str> = organizations.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "test-organization745",
            "test-organization24",
            "test-organization804"
        ]
    );
    assert_like_recorded(&server, &interactions, "GET", "/api/v2/organizations");

    let Some(interactions) = recording("TestOrganizationManager_MembersCheckpointPagination")
    else {
        return;
    };
    let post = interactions
        .iter()
        .find(|i| i["method"] == "POST" && i["url"].as_str().unwrap().ends_with("/members"))
        .unwrap();
    let (path, _) = split(post["url"].as_str().unwrap());
    let org = path.split('/').nth(4).unwrap().to_string();
    let batch: Vec<String> =
        serde_json::from_value(post["request_body"]["members"].clone()).unwrap();
    let server = replaying(&interactions);
    let members = with_client(&server, async |client| {
        client.add_organization_members(&org, &batch).await?;
        let mut members = Vec::new();
        client
            .organization_members(&org, |page| members.extend(page))
            .await?;
        Ok(members)
    });
    let mut ids: Vec<String> = members.into_iter().map(|m| m.user_id).collect();
    ids.sort();
    let mut given = batch;
    given.sort();
    assert_eq!(ids, given);
    assert_like_recorded(
        &server,
        &interactions,
        "POST",
        &format!("/api/v2/organizations/{org}"),
    );
    // Three pages: the last answer is empty and ends the list.
    assert_like_recorded(
        &server,
        &interactions,
        "GET",
        &format!("/api/v2/organizations/{org}"),
    );
}

#[test]
fn members_roles_and_role_lists_are_as_recorded() {
    let Some(interactions) = recording("TestOrganizationManager_Members") else {
        return;
    };
    let server = replaying(&interactions);
    let (path, _) = split(
        interactions.iter().find(|i| i["method"] == "GET").unwrap()["url"]
            .as_str()
            .unwrap(),
    );
    let org = path.split('/').nth(4).unwrap().to_string();
    let members = with_client(&server, async |client| {
        let mut members = Vec::new();
        client
            .organization_members(&org, |page| members.extend(page))
            .await?;
        Ok(members)
    });
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id, "auth0|63d16bb11e39d8a43b8ed0f5");
    assert_eq!(
        members[0].roles,
        ["test-role403"],
        "the member's roles, asked with the members"
    );
    assert_like_recorded(
        &server,
        &interactions,
        "GET",
        &format!("/api/v2/organizations/{org}"),
    );

    let Some(interactions) = recording("TestOrganizationManager_MemberRoles") else {
        return;
    };
    let post = interactions
        .iter()
        .find(|i| {
            let url = i["url"].as_str().unwrap();
            i["method"] == "POST" && url.contains("/members/") && url.ends_with("/roles")
        })
        .unwrap();
    let (path, _) = split(post["url"].as_str().unwrap());
    let parts: Vec<&str> = path.split('/').collect();
    let (org, user) = (parts[4].to_string(), parts[6].replace("%7C", "|"));
    let roles: Vec<String> = serde_json::from_value(post["request_body"]["roles"].clone()).unwrap();
    let server = replaying(&interactions);
    with_client(&server, async |client| {
        client.add_member_roles(&org, &user, &roles).await
    });
    assert_like_recorded(
        &server,
        &interactions,
        "POST",
        &format!("/api/v2/organizations/{org}/members/"),
    );

    let Some(interactions) = recording("TestRoleManager_List") else {
        return;
    };
    let server = replaying(&interactions);
    let roles = with_client(&server, async |client| client.roles().await);
    assert_eq!(roles.len(), 1);
    assert_eq!(
        (roles[0].id.as_str(), roles[0].name.as_str()),
        ("rol_9yRKwo2Bl0zckceV", "test-role14")
    );
    assert_eq!(roles[0].description.as_deref(), Some("Test Role"));
    assert_like_recorded(&server, &interactions, "GET", "/api/v2/roles");
}
