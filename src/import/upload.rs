//! Import files → a tenant: one users-imports job per file, at most two at a time (Auth0's
//! limit per tenant), each polled until it ends and its errors read; a state file records
//! every job as it goes, so that a run after an interruption submits only what has no job
//! and resumes polling the jobs still running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::auth0::Client;
use crate::auth0::jobs::{ImportOptions, Job, Summary};
use crate::error::{Error, Result};

/// What the state file records of one file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FileState {
    /// The file's SHA-256 when it was submitted (a changed file is not resumed).
    pub sha256: String,
    /// The job, once submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The job's last known status.
    #[serde(default)]
    pub status: String,
    /// The job's summary, once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// The job's errors, once read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Value>>,
    /// Why the job failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl FileState {
    /// Whether the job ended and its errors were read: nothing left to do.
    pub fn done(&self) -> bool {
        self.job.is_some()
            && self.errors.is_some()
            && !matches!(self.status.as_str(), "pending" | "processing" | "")
    }
}

/// The state file: per file (as named on the command line), its job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// The connection the jobs import into.
    pub connection_id: String,
    /// Whether they upsert.
    pub upsert: bool,
    /// The export of the connection taken before the first upsert job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Per file.
    pub files: BTreeMap<String, FileState>,
}

impl State {
    /// Reads a state file, or an empty state when there is none.
    pub fn load(path: &Path) -> Result<State> {
        crate::sink::output::read_json(path, "a userport import state")
            .map(Option::unwrap_or_default)
    }

    /// Writes the state whole (a temporary file renamed over the old one).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::sink::output::write_json(path, self)
    }
}

/// How the files are imported.
#[derive(Clone)]
pub struct Plan {
    /// The files, in order, each with its content's SHA-256.
    pub files: Vec<PathBuf>,
    /// The job options (the connection among them).
    pub options: ImportOptions,
    /// The state file.
    pub state: PathBuf,
    /// How often running jobs are polled.
    pub poll: Duration,
    /// Jobs at a time (Auth0 allows two import jobs per tenant).
    pub concurrency: usize,
    /// Told a line about each step (a job submitted, resumed, done).
    pub notes: Option<crate::auth0::Trace>,
    /// Told how the backup's export comes along.
    pub progress: Option<crate::auth0::export::OnProgress>,
}

/// One file's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The file.
    pub file: String,
    /// Its job.
    pub job: Option<String>,
    /// The job's final status.
    pub status: String,
    /// What the job did.
    pub summary: Summary,
    /// Why the job failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The failed users with their errors, as Auth0 reported them.
    pub errors: Vec<Value>,
}

/// Takes a backup of the connection before an upsert ([`keep_export`]). Recorded in the
/// state file; a run that resumes finds it there and takes none.
pub async fn backup(client: std::sync::Arc<Client>, plan: &Plan, path: &Path) -> Result<PathBuf> {
    let mut state = State::load(&plan.state)?;
    if let Some(done) = &state.backup {
        return Ok(PathBuf::from(done));
    }
    keep_export(
        client,
        Some(plan.options.connection_id.clone()),
        plan.poll,
        plan.progress.clone(),
        path,
    )
    .await?;
    state.connection_id = plan.options.connection_id.clone();
    state.upsert = plan.options.upsert;
    state.backup = Some(path.display().to_string());
    state.save(&plan.state)?;
    Ok(path.to_path_buf())
}

/// Exports the users of a connection (a users-exports job) into `path`: the download
/// (gzipped NDJSON) kept as served, and read to the end through gzip first — a download that
/// does not decompress whole is not kept.
pub async fn keep_export(
    client: std::sync::Arc<Client>,
    connection_id: Option<String>,
    poll: Duration,
    progress: Option<crate::auth0::export::OnProgress>,
    path: &Path,
) -> Result<()> {
    let request = crate::auth0::export::Request {
        connection_id,
        fields: None,
        progress,
        poll,
    };
    let download = crate::auth0::export::export(client, request).await?;
    let name = download.name;
    let kept = crate::sink::output::Tee::new(download.body, path)?;
    tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut kept = std::io::BufReader::new(kept);
        let mut users = flate2::bufread::MultiGzDecoder::new(&mut kept);
        std::io::copy(&mut users, &mut std::io::sink())?;
        // Whatever follows the gzip stream is read too, so that the file is put in place.
        std::io::copy(&mut kept, &mut std::io::sink())
    })
    .await
    .map_err(|e| Error::Read {
        path: name.clone(),
        source: std::io::Error::other(format!("the export reader failed: {e}")),
    })?
    .map_err(|source| Error::Read { path: name, source })?;
    Ok(())
}

/// Runs the plan: submits each file that has no job yet, waits for every job, reads its
/// errors; the state file follows every step.
pub async fn run(client: &Client, plan: &Plan) -> Result<Vec<Outcome>> {
    let mut state = State::load(&plan.state)?;
    if !state.files.is_empty()
        && (state.connection_id != plan.options.connection_id
            || state.upsert != plan.options.upsert)
    {
        return Err(Error::usage(
            format!("--state {}", plan.state.display()),
            format!(
                "the state is of another import (connection {}, upsert {}): use another \
                 --state file",
                state.connection_id, state.upsert
            ),
        ));
    }
    state.connection_id = plan.options.connection_id.clone();
    state.upsert = plan.options.upsert;
    let state = Arc::new(Mutex::new(state));
    let results = futures::stream::iter(plan.files.iter())
        .map(|path| {
            let state = state.clone();
            async move { one_file(client, plan, &state, path).await }
        })
        .buffered(plan.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    results.into_iter().collect()
}

async fn one_file(
    client: &Client,
    plan: &Plan,
    state: &Mutex<State>,
    path: &Path,
) -> Result<Outcome> {
    let name = path.display().to_string();
    let bytes = tokio::fs::read(path).await.map_err(|source| Error::Read {
        path: name.clone(),
        source,
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let known = state.lock().await.files.get(&name).cloned();
    let mut file_state = match known {
        Some(known) if known.sha256 != sha256 && known.job.is_some() => {
            return Err(Error::usage(
                name,
                "the file changed after it was submitted (its job is in the state file): \
                 restore it or use another --state",
            ));
        }
        Some(known) => known,
        None => FileState {
            sha256,
            ..FileState::default()
        },
    };
    let say = |text: String| {
        if let Some(notes) = &plan.notes {
            notes(&text);
        }
    };
    if !file_state.done() {
        let job_id = match &file_state.job {
            Some(id) => {
                say(format!("{name}: resuming job {id}"));
                id.clone()
            }
            None => {
                let file_name = path
                    .file_name()
                    .map_or("users.json".into(), |n| n.to_string_lossy().into_owned());
                // Sent as validate checked it: without a byte-order mark.
                let users = crate::source::input::without_bom(&bytes);
                let job = client.import(&file_name, users, &plan.options).await?;
                say(format!("{name}: submitted as job {}", job.id));
                file_state.job = Some(job.id.clone());
                file_state.status = job.status.clone();
                record(state, plan, &name, &file_state).await?;
                job.id
            }
        };
        let job: Job = client.wait(&job_id, plan.poll, |_| {}).await?;
        file_state.status = job.status.clone();
        file_state.summary = job.summary;
        if job.failed() {
            file_state.failure = Some(job.error().to_string());
        }
        record(state, plan, &name, &file_state).await?;
        let errors = if job.failed() || job.summary.is_none_or(|s| s.failed > 0) {
            client.job_errors(&job_id).await?
        } else {
            Vec::new()
        };
        file_state.errors = Some(errors);
        record(state, plan, &name, &file_state).await?;
        say(format!("{name}: job {job_id} {}", job.status));
    }
    Ok(Outcome {
        file: name,
        job: file_state.job.clone(),
        status: file_state.status.clone(),
        summary: file_state.summary.unwrap_or_default(),
        failure: file_state.failure.clone(),
        errors: file_state.errors.clone().unwrap_or_default(),
    })
}

async fn record(state: &Mutex<State>, plan: &Plan, name: &str, file: &FileState) -> Result<()> {
    let mut state = state.lock().await;
    state.files.insert(name.to_string(), file.clone());
    state.save(&plan.state)
}

/// The users of `files` that the jobs' errors name, import-ready: found in the files by
/// email (without regard to case), else by `user_id`; as the error gives it otherwise.
pub fn failed_users(outcomes: &[Outcome]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for outcome in outcomes.iter().filter(|o| !o.errors.is_empty()) {
        let bytes = std::fs::read(&outcome.file).map_err(|source| Error::Read {
            path: outcome.file.clone(),
            source,
        })?;
        let users: Vec<Value> = serde_json::from_slice(&bytes).unwrap_or_default();
        let key = |user: &Value, name: &str| {
            user.get(name).and_then(Value::as_str).map(|s| {
                if name == "email" {
                    s.to_lowercase()
                } else {
                    s.to_string()
                }
            })
        };
        for error in &outcome.errors {
            let reported = error.get("user").cloned().unwrap_or(Value::Null);
            let found = ["email", "user_id"].iter().find_map(|name| {
                let wanted = key(&reported, name)?;
                users
                    .iter()
                    .find(|u| key(u, name).as_deref() == Some(wanted.as_str()))
            });
            out.push(found.cloned().unwrap_or(reported));
        }
    }
    Ok(out)
}
