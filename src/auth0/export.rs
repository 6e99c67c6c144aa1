//! A tenant's users as an input: a users-exports job is created and polled (with a progress
//! bar from `percentage_done`), its download link is fetched again when it has lapsed, and
//! the gzipped NDJSON is streamed into the pipeline as it arrives, exactly as a local file
//! would be read. A download that stops short is an error, never a short export.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::json;

use super::jobs::Job;
use super::{Client, read_json, redact};
use crate::error::{Error, Result};
use crate::source::Input;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Only the users of this connection (`con_…`).
    pub connection_id: Option<String>,
    /// Only these attributes (Auth0's field names), when every column asks for one.
    pub fields: Option<Vec<String>>,
    /// Keep the download (gzipped NDJSON, as Auth0 serves it) in this file.
    pub save_raw: Option<PathBuf>,
    /// Show progress bars (on a terminal).
    pub progress: bool,
    /// How often the job is polled.
    pub poll: Duration,
}

/// How many times a lapsed download link is fetched again.
const LINK_REFRESHES: u32 = 3;

impl Client {
    /// `POST /api/v2/jobs/users-exports` (format json).
    pub async fn create_export(&self, request: &Request) -> Result<Job> {
        let mut body = json!({"format": "json"});
        if let Some(id) = &request.connection_id {
            body["connection_id"] = json!(id);
        }
        if let Some(fields) = &request.fields {
            body["fields"] = json!(
                fields
                    .iter()
                    .map(|f| json!({"name": f}))
                    .collect::<Vec<_>>()
            );
        }
        let text = body.to_string();
        let response = self
            .call(Method::POST, "/api/v2/jobs/users-exports", |r| {
                r.header("content-type", "application/json")
                    .body(text.clone())
            })
            .await?;
        read_json("POST /api/v2/jobs/users-exports", response).await
    }
}

/// Runs an export job on the tenant and returns its users as an input, streaming.
pub async fn export(client: Arc<Client>, request: Request) -> Result<Input> {
    let job = client.create_export(&request).await?;
    let bar = job_bar(request.progress);
    bar.set_message(format!("export {}", job.id));
    let job = client
        .wait(&job.id, request.poll, |job| show_job(&bar, job))
        .await?;
    bar.finish_and_clear();
    if job.failed() {
        return Err(job.error());
    }
    let mut location = job.location.clone().ok_or_else(|| Error::Http {
        what: format!("GET /api/v2/jobs/{}", job.id),
        message: "the export completed without a download location".into(),
    })?;
    let mut refreshes = 0;
    let response = loop {
        match client.download(&location).await {
            Ok(response) => break response,
            // A lapsed link (Auth0's links last about a minute): ask the job for a new one.
            Err(Error::Api { status, .. })
                if matches!(status, 400 | 403 | 404 | 410) && refreshes < LINK_REFRESHES =>
            {
                refreshes += 1;
                let fresh = client.job(&job.id).await?;
                location = fresh.location.ok_or_else(|| Error::Http {
                    what: format!("GET /api/v2/jobs/{}", job.id),
                    message: "the job no longer has a download location".into(),
                })?;
            }
            Err(e) => return Err(e),
        }
    };
    let name = format!("the export of job {}", job.id);
    let expected = response.content_length();
    let bytes_bar = bytes_bar(request.progress, expected);
    let mut raw = match &request.save_raw {
        Some(path) => Some(
            tempfile::NamedTempFile::new_in(
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new(".")),
            )
            .map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })?,
        ),
        None => None,
    };
    let save_raw = request.save_raw.clone();
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(16);
    let what = format!("GET {}", redact(&location));
    tokio::spawn(async move {
        let mut body = response.bytes_stream();
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = tx.send(Err(io::Error::other(format!(
                        "{what}: the download broke off after {received} bytes: {e}"
                    ))));
                    return;
                }
            };
            received += chunk.len() as u64;
            bytes_bar.set_position(received);
            if let Some(file) = raw.as_mut()
                && let Err(e) = file.write_all(&chunk)
            {
                let _ = tx.send(Err(e));
                return;
            }
            if tx.send(Ok(chunk.to_vec())).is_err() {
                return;
            }
        }
        bytes_bar.finish_and_clear();
        if let Some(expected) = expected
            && received != expected
        {
            let _ = tx.send(Err(io::Error::other(format!(
                "{what}: the download ended after {received} of {expected} bytes"
            ))));
            return;
        }
        if let (Some(file), Some(path)) = (raw, save_raw)
            && let Err(e) = file.persist(&path)
        {
            let _ = tx.send(Err(e.error));
        }
    });
    Ok(Input::reader(
        name,
        Box::new(ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        }),
    ))
}

impl Client {
    /// Downloads a job's result: no token is sent (the link is signed, and on another host).
    pub async fn download(&self, url: &str) -> Result<reqwest::Response> {
        let what = format!("GET {}", redact(url));
        self.send_with_retries(&what, || self.http.get(url)).await
    }
}

/// The bytes of a download, read as they arrive.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.buf = chunk?;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The job's progress: a bar from `percentage_done`, a spinner while Auth0 gives none.
fn job_bar(show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(100), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}% {prefix}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn show_job(bar: &ProgressBar, job: &Job) {
    if let Some(done) = job.percentage_done {
        bar.set_position(done.clamp(0.0, 100.0) as u64);
    }
    bar.set_prefix(match job.time_left_seconds {
        Some(left) => format!("{} ({left:.0} s left)", job.status),
        None => job.status.clone(),
    });
}

/// The download's progress in bytes.
fn bytes_bar(show: bool, len: Option<u64>) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "download [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}
