//! Auth0's jobs: users-imports (multipart uploads), users-exports, their status
//! (`GET /api/v2/jobs/{id}`) and their errors (`GET /api/v2/jobs/{id}/errors`), and the
//! connection lookup they need.

use std::time::Duration;

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Client, read_json};
use crate::error::{Error, Result};

/// A job as `GET /api/v2/jobs/{id}` describes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Job {
    /// The job id (`job_…`).
    pub id: String,
    /// `pending`, `processing`, `completed`, `failed` or `expired`.
    pub status: String,
    /// `users_import`, `users_export`, …
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The connection's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// The connection's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// When the job was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Progress, 0–100, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_done: Option<f64>,
    /// Auth0's estimate of the time left, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_left_seconds: Option<f64>,
    /// For imports: what happened to the users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// For exports: the download link (it lapses after about 60 seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Why a job failed, when Auth0 says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<Value>,
    /// The caller's id for an import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// What an import job did with its users.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    /// Users that could not be imported.
    #[serde(default)]
    pub failed: u64,
    /// Users that existed and were updated (upsert).
    #[serde(default)]
    pub updated: u64,
    /// Users created.
    #[serde(default)]
    pub inserted: u64,
    /// All users of the file.
    #[serde(default)]
    pub total: u64,
}

impl Job {
    /// Whether the job is still running (`pending` or `processing`).
    pub fn running(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "processing")
    }

    /// Whether the job ended badly (`failed` or `expired`).
    pub fn failed(&self) -> bool {
        matches!(self.status.as_str(), "failed" | "expired")
    }

    /// The error of a job that ended badly, with its `status_details`.
    pub fn error(&self) -> Error {
        Error::Job {
            id: self.id.clone(),
            status: self.status.clone(),
            details: self
                .status_details
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default(),
        }
    }
}

/// The options of a users-imports job.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The database connection's id (`con_…`).
    pub connection_id: String,
    /// Update users that exist (by email) instead of failing them.
    pub upsert: bool,
    /// An id of the caller's, kept with the job.
    pub external_id: Option<String>,
    /// Email the tenant's owners when the job completes.
    pub send_completion_email: bool,
}

/// A job id that is safe in a URL path (`job_` and letters and digits).
pub fn check_id(id: &str) -> Result<&str> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(Error::usage(id, "not a job id (job_…)"))
    }
}

impl Client {
    /// `GET /api/v2/jobs/{id}`.
    pub async fn job(&self, id: &str) -> Result<Job> {
        let path = format!("/api/v2/jobs/{}", check_id(id)?);
        let response = self.call(Method::GET, &path, |r| r).await?;
        read_json("GET /api/v2/jobs/{id}", response).await
    }

    /// `GET /api/v2/jobs/{id}/errors`: each failed user with its errors (none on 204).
    pub async fn job_errors(&self, id: &str) -> Result<Vec<Value>> {
        let path = format!("/api/v2/jobs/{}/errors", check_id(id)?);
        let response = self.call(Method::GET, &path, |r| r).await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Vec::new());
        }
        let value: Value = read_json("GET /api/v2/jobs/{id}/errors", response).await?;
        Ok(match value {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            other => vec![other],
        })
    }

    /// Polls a job every `interval` until it ends; `progress` sees each state. A job that
    /// ends `failed` or `expired` is an error carrying its `status_details`.
    pub async fn wait(
        &self,
        id: &str,
        interval: Duration,
        mut progress: impl FnMut(&Job),
    ) -> Result<Job> {
        loop {
            let job = self.job(id).await?;
            progress(&job);
            if !job.running() {
                return Ok(job);
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// `POST /api/v2/jobs/users-imports`: uploads `users` (one import file, named
    /// `file_name`) as Auth0's SDKs send it.
    pub async fn import(
        &self,
        file_name: &str,
        users: &[u8],
        options: &ImportOptions,
    ) -> Result<Job> {
        let response = self
            .call(Method::POST, "/api/v2/jobs/users-imports", |request| {
                let part = || Part::bytes(users.to_vec()).file_name(file_name.to_string());
                // `application/json` always parses; without it the part is still sent.
                let file = part()
                    .mime_str("application/json")
                    .unwrap_or_else(|_| part());
                let form = Form::new()
                    .text("connection_id", options.connection_id.clone())
                    .text("upsert", options.upsert.to_string())
                    .text(
                        "external_id",
                        options.external_id.clone().unwrap_or_default(),
                    )
                    .text(
                        "send_completion_email",
                        options.send_completion_email.to_string(),
                    )
                    .part("users", file);
                request.multipart(form)
            })
            .await?;
        read_json("POST /api/v2/jobs/users-imports", response).await
    }

    /// The id of the connection named `name` (`GET /api/v2/connections?name=…`).
    pub async fn connection_id(&self, name: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct Connection {
            id: String,
            name: String,
        }
        #[derive(Deserialize)]
        struct Page {
            connections: Vec<Connection>,
        }
        let response = self
            .call(Method::GET, "/api/v2/connections", |r| {
                r.query(&[
                    ("include_totals", "true"),
                    ("name", name),
                    ("per_page", "50"),
                ])
            })
            .await?;
        let page: Page = read_json("GET /api/v2/connections", response).await?;
        page.connections
            .into_iter()
            .find(|c| c.name == name)
            .map(|c| c.id)
            .ok_or_else(|| {
                Error::usage(
                    format!("--connection {name}"),
                    "the tenant has no connection of that name",
                )
            })
    }
}
