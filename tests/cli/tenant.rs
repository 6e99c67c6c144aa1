//! A tenant on 127.0.0.1, started by the tests: the Management API's token, connections,
//! users-imports and jobs endpoints with state (users stored by email, jobs that go pending →
//! processing → completed, at most two active), faults to inject, and every request
//! recorded for the tests to compare.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The query string, as sent.
    pub query: Option<String>,
    /// The Authorization header.
    pub authorization: Option<String>,
    /// The Content-Type header.
    pub content_type: Option<String>,
    /// A form or JSON body, as text.
    pub body: String,
    /// Multipart parts: name, file name, content type, content.
    pub parts: Vec<(String, Option<String>, Option<String>, String)>,
    /// The status of the answer.
    pub status: u16,
}

/// An answer to give instead of the normal one.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Requests this fault matches: method and a path prefix.
    pub method: &'static str,
    /// The path prefix.
    pub path: &'static str,
    /// The status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: String,
    /// How many times (`u32::MAX`: always).
    pub times: u32,
}

impl Fault {
    /// A fault of `status` with a JSON body, `times` times.
    pub fn new(
        method: &'static str,
        path: &'static str,
        status: u16,
        body: Value,
        times: u32,
    ) -> Self {
        Fault {
            method,
            path,
            status,
            headers: Vec::new(),
            body: body.to_string(),
            times,
        }
    }
}

/// A job the server runs.
#[derive(Debug, Clone)]
struct ServerJob {
    id: String,
    connection_id: String,
    upsert: bool,
    users: Vec<Value>,
    polls: u32,
    result: Option<(Value, Vec<Value>)>,
}

/// The server's state.
#[derive(Debug, Default)]
pub struct Tenant {
    /// Every request, in order.
    pub requests: Vec<Recorded>,
    /// Faults still to give.
    pub faults: VecDeque<Fault>,
    /// Users by lower-case email.
    pub users: HashMap<String, Value>,
    /// The token the API accepts now (`None`: any).
    pub valid_token: Option<String>,
    /// Tokens issued so far.
    pub tokens: u32,
    /// The most jobs that were active at once.
    pub max_active: usize,
    /// The server's own base URL (for download links).
    pub base: String,
    /// What an export job's download holds (NDJSON, served gzipped).
    pub export_body: Vec<u8>,
    /// Serve only the first half of the gzipped download (a broken transfer).
    pub truncate_download: bool,
    /// Export jobs end `failed` with these `status_details`.
    pub fail_exports: Option<Value>,
    /// Export jobs: id and how often each was polled.
    pub exports: Vec<(String, u32)>,
    /// Download links handed out so far.
    pub links: u32,
    /// Recorded answers to give instead of the normal ones (replay mode): method, path,
    /// status, body; each used once, by the first request that matches.
    pub replay: Vec<(String, String, u16, Value)>,
    /// The roles, with their users' ids.
    pub roles: Vec<FakeRole>,
    /// The organizations, with their members.
    pub organizations: Vec<FakeOrganization>,
    /// After this many successful requests of a method and path prefix, the tenant answers
    /// 500 to everything ([`Tenant::down`]).
    pub down_after: Option<(&'static str, &'static str, u32)>,
    /// Whether the tenant answers 500 to everything.
    pub down: bool,
    /// Export jobs: the connection each exports.
    pub export_connections: HashMap<String, String>,
    /// The import job of this number (1-based) fails as a whole, importing nobody.
    pub fail_import_job: Option<usize>,
    jobs: Vec<ServerJob>,
}

/// A role of the tenant.
#[derive(Debug, Clone, Default)]
pub struct FakeRole {
    /// `rol_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its users, in the order they were given it.
    pub users: Vec<String>,
}

/// An organization of the tenant.
#[derive(Debug, Clone, Default)]
pub struct FakeOrganization {
    /// `org_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its display name.
    pub display_name: Option<String>,
    /// Its members with their role ids there.
    pub members: Vec<(String, Vec<String>)>,
}

/// A running server.
pub struct Server {
    /// Its base URL.
    pub url: String,
    /// Its state.
    pub state: Arc<Mutex<Tenant>>,
}

impl Server {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start() -> Server {
        let state = Arc::new(Mutex::new(Tenant::default()));
        let shared = state.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(handle).with_state(shared);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        state.lock().unwrap().base = format!("http://{addr}");
        Server {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// Adds a fault.
    pub fn fault(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Writes the tenant's users to `path` as an export on disk (NDJSON, as stored).
    pub fn write_users(&self, path: &std::path::Path) {
        let text: String = self
            .state
            .lock()
            .unwrap()
            .users
            .values()
            .map(|u| format!("{u}\n"))
            .collect();
        std::fs::write(path, text).unwrap();
    }

    /// Runs `userport ARGS` against this tenant: exit code, stdout, stderr.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.userport().args(args).output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// A `userport` command with this tenant and client credentials in its environment.
    pub fn userport(&self) -> std::process::Command {
        let mut cmd = super::userport();
        cmd.env("AUTH0_DOMAIN", &self.url)
            .env("AUTH0_CLIENT_ID", "test-client-id")
            .env("AUTH0_CLIENT_SECRET", "test-client-secret-s3cr3t")
            .env_remove("AUTH0_TOKEN")
            .env("USERPORT_BACKOFF_MS", "5")
            .env("USERPORT_POLL_MS", "5");
        cmd
    }
}

impl Tenant {
    /// How many import jobs were created.
    pub fn jobs_created(&self) -> usize {
        self.jobs.len()
    }
}

type Shared = Arc<Mutex<Tenant>>;

fn json_response(status: u16, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response.headers_mut().insert(
        "content-type",
        "application/json; charset=utf-8".parse().unwrap(),
    );
    response
}

fn error(status: u16, error: &str, message: &str, code: &str) -> Response {
    json_response(
        status,
        &json!({"statusCode": status, "error": error, "message": message, "errorCode": code}),
    )
}

async fn handle(State(state): State<Shared>, request: Request) -> Response {
    let response = answer(State(state.clone()), request).await;
    let mut tenant = state.lock().unwrap();
    if let Some(last) = tenant.requests.last_mut() {
        last.status = response.status().as_u16();
    }
    let last = tenant.requests.last().cloned();
    if response.status().is_success()
        && let (Some((method, prefix, left)), Some(last)) = (tenant.down_after.as_mut(), last)
        && last.method == *method
        && last.path.starts_with(*prefix)
    {
        *left -= 1;
        if *left == 0 {
            tenant.down_after = None;
            tenant.down = true;
        }
    }
    response
}

async fn answer(State(state): State<Shared>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let headers: HeaderMap = request.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type");
    let mut parts = Vec::new();
    let mut body = String::new();
    if content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("multipart/"))
    {
        let mut multipart = Multipart::from_request(request, &()).await.unwrap();
        while let Some(field) = multipart.next_field().await.unwrap() {
            let name = field.name().unwrap_or_default().to_string();
            let file = field.file_name().map(str::to_string);
            let ctype = field.content_type().map(str::to_string);
            let data = String::from_utf8(field.bytes().await.unwrap().to_vec()).unwrap();
            parts.push((name, file, ctype, data));
        }
    } else {
        let bytes = axum::body::to_bytes(request.into_body(), 1 << 24)
            .await
            .unwrap();
        body = String::from_utf8_lossy(&bytes).into_owned();
    }
    let mut tenant = state.lock().unwrap();
    tenant.requests.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        authorization: header("authorization"),
        content_type,
        body: body.clone(),
        parts: parts.clone(),
        status: 0,
    });
    if tenant.down {
        return error(500, "Internal Server Error", "the tenant is down", "down");
    }
    if let Some(i) = tenant
        .faults
        .iter()
        .position(|f| f.method == method.as_str() && path.starts_with(f.path))
    {
        let fault = tenant.faults[i].clone();
        if fault.times <= 1 {
            tenant.faults.remove(i);
        } else if fault.times != u32::MAX {
            tenant.faults[i].times -= 1;
        }
        let mut response = Response::new(Body::from(fault.body.clone()));
        *response.status_mut() = StatusCode::from_u16(fault.status).unwrap();
        for (name, value) in &fault.headers {
            response.headers_mut().insert(*name, value.parse().unwrap());
        }
        return response;
    }
    if let Some(i) = tenant
        .replay
        .iter()
        .position(|(m, p, _, _)| *m == method.as_str() && *p == path)
    {
        let (_, _, status, body) = tenant.replay.remove(i);
        if status == 204 {
            return StatusCode::NO_CONTENT.into_response();
        }
        return json_response(status, &body);
    }
    if method == Method::GET && path.starts_with("/downloads/") {
        // A signed link on another host: it takes no token.
        if headers.contains_key("authorization") {
            return error(
                400,
                "Bad Request",
                "a token was sent to the download host",
                "token_leak",
            );
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let job = path["/downloads/".len()..]
            .split('.')
            .next()
            .unwrap_or_default();
        let connection = tenant
            .export_connections
            .get(job)
            .map(|id| connection_name(id).to_string());
        let body = if tenant.export_body.is_empty() {
            // The tenant's own users (of the job's connection), in email order, without
            // password hashes (Auth0's exports carry none).
            let mut emails: Vec<&String> = tenant.users.keys().collect();
            emails.sort();
            let mut text = Vec::new();
            for email in emails {
                let mut user = tenant.users[email].clone();
                if let Some(connection) = &connection
                    && user["identities"][0]["connection"].as_str() != Some(connection)
                {
                    continue;
                }
                let object = user.as_object_mut().unwrap();
                object.remove("password_hash");
                object.remove("custom_password_hash");
                serde_json::to_writer(&mut text, &user).unwrap();
                text.push(b'\n');
            }
            text
        } else {
            tenant.export_body.clone()
        };
        std::io::Write::write_all(&mut gz, &body).unwrap();
        let mut bytes = gz.finish().unwrap();
        if tenant.truncate_download {
            bytes.truncate(bytes.len() / 2);
        }
        let mut response = Response::new(Body::from(bytes));
        response
            .headers_mut()
            .insert("content-type", "application/gzip".parse().unwrap());
        return response;
    }
    if path == "/oauth/token" && method == Method::POST {
        tenant.tokens += 1;
        let token = format!("token-{}", tenant.tokens);
        tenant.valid_token = Some(token.clone());
        return json_response(
            200,
            &json!({"access_token": token, "expires_in": 86400, "token_type": "Bearer"}),
        );
    }
    let bearer =
        header("authorization").and_then(|a| a.strip_prefix("Bearer ").map(str::to_string));
    if let Some(valid) = &tenant.valid_token
        && bearer.as_deref() != Some(valid.as_str())
    {
        return error(401, "Unauthorized", "Invalid token", "invalid_token");
    }
    if method == Method::POST && path == "/api/v2/jobs/users-exports" {
        let id = format!("job_export{:06}", tenant.exports.len() + 1);
        tenant.exports.push((id.clone(), 0));
        let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if let Some(connection) = request["connection_id"].as_str() {
            tenant
                .export_connections
                .insert(id.clone(), connection.to_string());
        }
        let mut job = json!({"type": "users_export", "status": "pending", "format": "json", "id": id, "created_at": "2026-11-28T00:00:00.000Z"});
        for key in ["connection_id", "fields", "limit"] {
            if let Some(v) = request.get(key) {
                job[key] = v.clone();
            }
        }
        return json_response(201, &job);
    }
    if method == Method::GET
        && let Some(i) = tenant
            .exports
            .iter()
            .position(|(id, _)| path == format!("/api/v2/jobs/{id}"))
    {
        tenant.exports[i].1 += 1;
        let (id, polls) = tenant.exports[i].clone();
        let mut job = json!({"type": "users_export", "format": "json", "id": id});
        if polls < 2 {
            job["status"] = json!("processing");
            job["percentage_done"] = json!(40);
            job["time_left_seconds"] = json!(2);
        } else if let Some(details) = tenant.fail_exports.clone() {
            job["status"] = json!("failed");
            job["status_details"] = details;
        } else {
            tenant.links += 1;
            job["status"] = json!("completed");
            job["location"] = json!(format!(
                "{}/downloads/{id}.json.gz?Expires=1&Signature=sig{}",
                tenant.base, tenant.links
            ));
        }
        return json_response(200, &job);
    }
    if let Some(response) = access(&mut tenant, method.as_str(), &path, query.as_deref(), &body) {
        return response;
    }
    match (method.as_str(), path.as_str()) {
        ("GET", "/api/v2/connections") => {
            let name = query
                .as_deref()
                .unwrap_or_default()
                .split('&')
                .find_map(|kv| kv.strip_prefix("name="))
                .unwrap_or_default()
                .to_string();
            let connections: Vec<Value> = [
                ("con_0000000000000001", "Username-Password-Authentication"),
                ("con_0000000000000002", "Other-DB"),
            ]
            .iter()
            .filter(|(_, n)| *n == name)
            .map(|(id, n)| json!({"id": id, "name": n, "strategy": "auth0"}))
            .collect();
            json_response(
                200,
                &json!({"total": connections.len(), "start": 0, "limit": 50, "connections": connections}),
            )
        }
        ("POST", "/api/v2/jobs/users-imports") => {
            let active = tenant.jobs.iter().filter(|j| j.result.is_none()).count();
            if active >= 2 {
                return json_response(
                    429,
                    &json!({"statusCode": 429, "error": "Too Many Requests", "message": "There are 2 active import users jobs, please wait until some of them are finished and try again"}),
                );
            }
            let part = |name: &str| parts.iter().find(|p| p.0 == name).map(|p| p.3.clone());
            let Some(users) = part("users") else {
                return error(400, "Bad Request", "Missing users file", "invalid_body");
            };
            let users: Vec<Value> = serde_json::from_str(&users).unwrap_or_default();
            let id = format!("job_{:016}", tenant.jobs.len() + 1);
            let connection_id = part("connection_id").unwrap_or_default();
            tenant.jobs.push(ServerJob {
                id: id.clone(),
                connection_id: connection_id.clone(),
                upsert: part("upsert").as_deref() == Some("true"),
                users,
                polls: 0,
                result: None,
            });
            let active = tenant.jobs.iter().filter(|j| j.result.is_none()).count();
            tenant.max_active = tenant.max_active.max(active);
            json_response(
                202,
                &json!({"type": "users_import", "status": "pending", "connection_id": connection_id, "created_at": "2026-11-28T00:00:00.000Z", "id": id}),
            )
        }
        ("GET", p) if p.starts_with("/api/v2/jobs/") => {
            let rest = &p["/api/v2/jobs/".len()..];
            let (id, errors) = match rest.strip_suffix("/errors") {
                Some(id) => (id.to_string(), true),
                None => (rest.to_string(), false),
            };
            let Some(i) = tenant.jobs.iter().position(|j| j.id == id) else {
                return error(404, "Not Found", "The job does not exist", "inexistent_job");
            };
            if errors {
                let found = tenant.jobs[i]
                    .result
                    .as_ref()
                    .map(|r| r.1.clone())
                    .unwrap_or_default();
                return if found.is_empty() {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    json_response(200, &Value::Array(found))
                };
            }
            tenant.jobs[i].polls += 1;
            let job = tenant.jobs[i].clone();
            if job.result.is_none() && job.polls >= 2 {
                let result = if tenant.fail_import_job == Some(i + 1) {
                    (json!("failed"), Vec::new())
                } else {
                    run_import(&mut tenant, &job)
                };
                tenant.jobs[i].result = Some(result);
            }
            let job = tenant.jobs[i].clone();
            let mut body = json!({"type": "users_import", "connection_id": job.connection_id, "id": job.id, "created_at": "2026-11-28T00:00:00.000Z"});
            match &job.result {
                None => {
                    body["status"] = json!("processing");
                    body["percentage_done"] = json!(50);
                    body["time_left_seconds"] = json!(1);
                }
                Some((failed, _)) if *failed == "failed" => {
                    body["status"] = json!("failed");
                    body["status_details"] = json!({"error": "the file could not be processed"});
                }
                Some((summary, _)) => {
                    body["status"] = json!("completed");
                    body["summary"] = summary.clone();
                }
            }
            json_response(200, &body)
        }
        _ => error(404, "Not Found", "Not found", "not_found"),
    }
}

/// Applies an import as Auth0 documents it: a new email is inserted; an existing one fails
/// with DUPLICATED_USER, or with upsert replaces the given fields (metadata objects whole,
/// `email_verified` false unless given).
fn run_import(tenant: &mut Tenant, job: &ServerJob) -> (Value, Vec<Value>) {
    let (mut inserted, mut updated, mut errors) = (0, 0, Vec::new());
    for user in &job.users {
        let email = user["email"].as_str().unwrap_or_default().to_lowercase();
        match tenant.users.get_mut(&email) {
            Some(existing) if job.upsert => {
                for (k, v) in user.as_object().unwrap() {
                    existing[k] = v.clone();
                }
                if user.get("email_verified").is_none() {
                    existing["email_verified"] = json!(false);
                }
                updated += 1;
            }
            Some(_) => errors.push(json!({
                "user": {"email": user["email"], "email_verified": user.get("email_verified")},
                "errors": [{"code": "DUPLICATED_USER", "message": "The user already exist and upsert parameter is false"}],
            })),
            None => {
                // Stored as Auth0 would hand it back: with the prefix and an identity.
                let mut stored = user.clone();
                let id = user["user_id"]
                    .as_str()
                    .map_or_else(|| format!("{:024x}", tenant.users.len() + 1), str::to_string);
                let connection = connection_name(&job.connection_id);
                stored["user_id"] = json!(format!("auth0|{id}"));
                stored["identities"] = json!([{"connection": connection, "user_id": id, "provider": "auth0", "isSocial": false}]);
                tenant.users.insert(email, stored);
                inserted += 1;
            }
        }
    }
    let failed = errors.len();
    (
        json!({"failed": failed, "updated": updated, "inserted": inserted, "total": job.users.len()}),
        errors,
    )
}

/// The name of a connection of the fake tenant.
fn connection_name(id: &str) -> &'static str {
    if id == "con_0000000000000002" {
        "Other-DB"
    } else {
        "Username-Password-Authentication"
    }
}

/// A query parameter's value.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// One page of `items` by checkpoints: `take` items from the offset `from` names.
fn checkpoint(query: Option<&str>, key: &str, items: Vec<Value>) -> Response {
    let take: usize = param(query, "take")
        .and_then(|t| t.parse().ok())
        .unwrap_or(50);
    let from: usize = param(query, "from")
        .and_then(|f| f.strip_prefix("ck").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let end = (from + take).min(items.len());
    let mut body = json!({ key: items[from.min(end)..end].to_vec() });
    if end < items.len() {
        body["next"] = json!(format!("ck{end}"));
    }
    json_response(200, &body)
}

/// The roles and organizations endpoints.
fn access(
    tenant: &mut Tenant,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &str,
) -> Option<Response> {
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let segments: Vec<String> = path
        .trim_start_matches("/api/v2/")
        .split('/')
        .map(|s| s.replace("%7C", "|"))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let ids: std::collections::HashSet<String> =
        if method == "POST" && (path.ends_with("/users") || path.ends_with("/members")) {
            tenant
                .users
                .values()
                .filter_map(|u| u["user_id"].as_str().map(str::to_string))
                .collect()
        } else {
            Default::default()
        };
    Some(match (method, segments.as_slice()) {
        ("GET", ["roles"]) => {
            let page: usize = param(query, "page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let per: usize = param(query, "per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(50);
            let all: Vec<Value> = tenant
                .roles
                .iter()
                .map(|r| json!({"id": r.id, "name": r.name, "description": r.description}))
                .collect();
            let start = (page * per).min(all.len());
            let end = (start + per).min(all.len());
            json_response(
                200,
                &json!({"roles": all[start..end].to_vec(), "start": start, "limit": per, "total": all.len()}),
            )
        }
        ("POST", ["roles"]) => {
            let name = body["name"].as_str().unwrap_or_default().to_string();
            if tenant.roles.iter().any(|r| r.name == name) {
                return Some(error(
                    409,
                    "Conflict",
                    "A role with this name already exists",
                    "conflict",
                ));
            }
            let role = FakeRole {
                id: format!("rol_created{:05}", tenant.roles.len()),
                name,
                description: body["description"].as_str().map(str::to_string),
                users: Vec::new(),
            };
            let answer = json!({"id": role.id, "name": role.name, "description": role.description});
            tenant.roles.push(role);
            json_response(200, &answer)
        }
        ("GET", ["roles", id, "users"]) => {
            let Some(role) = tenant.roles.iter().find(|r| r.id == *id) else {
                return Some(error(
                    404,
                    "Not Found",
                    "The role does not exist.",
                    "inexistent_role",
                ));
            };
            let emails: HashMap<&str, &Value> = tenant
                .users
                .values()
                .filter_map(|u| Some((u["user_id"].as_str()?, &u["email"])))
                .collect();
            let users = role
                .users
                .iter()
                .map(|u| json!({"user_id": u, "email": emails.get(u.as_str())}))
                .collect();
            checkpoint(query, "users", users)
        }
        ("POST", ["roles", id, "users"]) => {
            let users: Vec<String> =
                serde_json::from_value(body["users"].clone()).unwrap_or_default();
            if users.is_empty() || users.iter().any(|u| !ids.contains(u)) {
                return Some(error(
                    400,
                    "Bad Request",
                    "One or more users do not exist",
                    "invalid_body",
                ));
            }
            let Some(role) = tenant.roles.iter_mut().find(|r| r.id == *id) else {
                return Some(error(
                    404,
                    "Not Found",
                    "The role does not exist.",
                    "inexistent_role",
                ));
            };
            for user in users {
                if !role.users.contains(&user) {
                    role.users.push(user);
                }
            }
            json_response(200, &json!({}))
        }
        ("GET", ["organizations"]) => {
            let all = tenant
                .organizations
                .iter()
                .map(|o| json!({"id": o.id, "name": o.name, "display_name": o.display_name}))
                .collect();
            checkpoint(query, "organizations", all)
        }
        ("POST", ["organizations"]) => {
            let name = body["name"].as_str().unwrap_or_default().to_string();
            if tenant.organizations.iter().any(|o| o.name == name) {
                return Some(error(
                    409,
                    "Conflict",
                    "An organization with this name already exists",
                    "conflict",
                ));
            }
            let org = FakeOrganization {
                id: format!("org_created{:05}", tenant.organizations.len()),
                name,
                display_name: body["display_name"].as_str().map(str::to_string),
                members: Vec::new(),
            };
            let answer = json!({"id": org.id, "name": org.name, "display_name": org.display_name});
            tenant.organizations.push(org);
            json_response(201, &answer)
        }
        ("GET", ["organizations", id, "members"]) => {
            let roles: HashMap<String, String> = tenant
                .roles
                .iter()
                .map(|r| (r.id.clone(), r.name.clone()))
                .collect();
            let Some(org) = tenant.organizations.iter().find(|o| o.id == *id) else {
                return Some(error(
                    404,
                    "Not Found",
                    "No organization found by that id",
                    "inexistent_organization",
                ));
            };
            let with_roles = param(query, "fields").is_some_and(|f| f.contains("roles"));
            let members = org
                .members
                .iter()
                .map(|(user, held)| {
                    let mut member = json!({"user_id": user});
                    if with_roles {
                        member["roles"] = held
                            .iter()
                            .map(|r| json!({"id": r, "name": roles.get(r)}))
                            .collect();
                    }
                    member
                })
                .collect();
            checkpoint(query, "members", members)
        }
        ("POST", ["organizations", id, "members"]) => {
            let members: Vec<String> =
                serde_json::from_value(body["members"].clone()).unwrap_or_default();
            if members.is_empty() || members.iter().any(|u| !ids.contains(u)) {
                return Some(error(
                    400,
                    "Bad Request",
                    "One or more users do not exist",
                    "invalid_body",
                ));
            }
            let Some(org) = tenant.organizations.iter_mut().find(|o| o.id == *id) else {
                return Some(error(
                    404,
                    "Not Found",
                    "No organization found by that id",
                    "inexistent_organization",
                ));
            };
            for member in members {
                if !org.members.iter().any(|(m, _)| *m == member) {
                    org.members.push((member, Vec::new()));
                }
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["organizations", id, "members", user, "roles"]) => {
            let roles: Vec<String> =
                serde_json::from_value(body["roles"].clone()).unwrap_or_default();
            let known: Vec<String> = tenant.roles.iter().map(|r| r.id.clone()).collect();
            if roles.is_empty() || roles.iter().any(|r| !known.contains(r)) {
                return Some(error(
                    400,
                    "Bad Request",
                    "One or more roles do not exist",
                    "invalid_body",
                ));
            }
            let Some(org) = tenant.organizations.iter_mut().find(|o| o.id == *id) else {
                return Some(error(
                    404,
                    "Not Found",
                    "No organization found by that id",
                    "inexistent_organization",
                ));
            };
            let Some((_, held)) = org.members.iter_mut().find(|(m, _)| m == user) else {
                return Some(error(
                    400,
                    "Bad Request",
                    "The user is not a member of the organization",
                    "invalid_body",
                ));
            };
            for role in roles {
                if !held.contains(&role) {
                    held.push(role);
                }
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => return None,
    })
}
