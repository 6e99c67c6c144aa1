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
    jobs: Vec<ServerJob>,
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
    });
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
        let body = if tenant.export_body.is_empty() {
            // The tenant's own users, in email order.
            let mut emails: Vec<&String> = tenant.users.keys().collect();
            emails.sort();
            let mut text = Vec::new();
            for email in emails {
                serde_json::to_writer(&mut text, &tenant.users[email]).unwrap();
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
                let result = run_import(&mut tenant, &job);
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
                let connection = if job.connection_id == "con_0000000000000002" {
                    "Other-DB"
                } else {
                    "Username-Password-Authentication"
                };
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
