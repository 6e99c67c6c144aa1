//! A tenant's users as an input: a users-exports job is created and polled (with a progress
//! bar from `percentage_done`), its download link is fetched again when it has lapsed, and
//! the gzipped NDJSON is streamed into the pipeline as it arrives, exactly as a local file
//! would be read. A download that stops short is an error, never a short export.

use std::io::{self, BufRead as _, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};

use super::jobs::Job;
use super::{Client, read_json, redact};
use crate::error::{Error, Result};
use crate::json::Step;
use crate::sink::output::Destination;
use crate::source::Input;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Only the users of this connection (`con_…`).
    pub connection_id: Option<String>,
    /// Only these attributes, when every column asks for one.
    pub fields: Option<Vec<FieldPath>>,
    /// Keep the download (gzipped NDJSON, as Auth0 serves it) in this file.
    pub save_raw: Option<PathBuf>,
    /// Show progress bars (on a terminal).
    pub progress: bool,
    /// How often the job is polled.
    pub poll: Duration,
}

/// An attribute asked of Auth0: the name Auth0 knows it by (`user_metadata.plan`,
/// `identities[0].connection`) and the path it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPath {
    /// The field's name in the export request.
    pub name: String,
    /// The top-level attribute.
    pub root: String,
    /// Keys and indexes below it.
    pub steps: Vec<Step>,
}

impl FieldPath {
    /// The field `name` for the path `root` + `steps`, when Auth0 can name it: keys of
    /// letters, digits and `_`, and indexes.
    pub fn new(name: String, root: &str, steps: &[Step]) -> Option<FieldPath> {
        let nameable = steps.iter().all(|s| match s {
            Step::Key(k) => !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_'),
            Step::Index(_) => true,
        });
        nameable.then(|| FieldPath {
            name,
            root: root.to_string(),
            steps: steps.to_vec(),
        })
    }
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
                    .map(|f| json!({"name": f.name}))
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
    // The download as served, kept whole or not at all.
    let mut raw = match &request.save_raw {
        Some(path) => Some(Destination::create(Some(path), false)?),
        None => None,
    };
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
            if let Some((_, file)) = raw.as_mut()
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
        if let Some((destination, file)) = raw
            && let Err(e) = destination.commit(file)
        {
            let _ = tx.send(Err(io::Error::other(e.to_string())));
        }
    });
    let download = ChannelReader {
        rx,
        buf: Vec::new(),
        pos: 0,
    };
    let nested: Vec<FieldPath> = request
        .fields
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !f.steps.is_empty())
        .collect();
    if nested.is_empty() {
        return Ok(Input::reader(name, Box::new(download)));
    }
    // Exported with `fields`, nested attributes may come as flat keys
    // ("user_metadata.plan"): they are put back where the path says, so that the
    // pipeline reads them as it reads any user.
    let mut raw = io::BufReader::with_capacity(1 << 20, download);
    let gzip = raw
        .fill_buf()
        .map(|b| b.starts_with(&[0x1f, 0x8b]))
        .unwrap_or(false);
    let plain: Box<dyn io::BufRead + Send> = if gzip {
        Box::new(io::BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(raw)
    };
    Ok(Input::reader(
        name,
        Box::new(Unflatten {
            inner: plain,
            fields: nested,
            line: Vec::new(),
            out: Vec::new(),
            pos: 0,
        }),
    ))
}

impl Client {
    /// Downloads a job's result: no token is sent (the link is signed, and on another host).
    pub async fn download(&self, url: &str) -> Result<reqwest::Response> {
        let what = format!("GET {}", redact(url));
        let parsed = reqwest::Url::parse(url).map_err(|e| Error::Http {
            what: what.clone(),
            message: format!("not a URL: {e}"),
        })?;
        super::allowed(&parsed).map_err(|message| Error::Http {
            what: what.clone(),
            message,
        })?;
        self.send_with_retries(&what, || self.downloads.get(url))
            .await
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

/// NDJSON lines with the flat keys of nested fields put back in place.
struct Unflatten {
    inner: Box<dyn io::BufRead + Send>,
    fields: Vec<FieldPath>,
    line: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
}

impl Read for Unflatten {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            self.line.clear();
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            self.out.clear();
            self.pos = 0;
            unflatten_line(&self.line, &self.fields, &mut self.out);
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Appends `line` to `out`, its flat field keys moved to their paths; a line without any
/// (or not an object: the source reports it) is kept byte for byte.
fn unflatten_line(line: &[u8], fields: &[FieldPath], out: &mut Vec<u8>) {
    let flat = fields.iter().any(|f| {
        let mut quoted = Vec::with_capacity(f.name.len() + 2);
        crate::sink::render::write_json_string(&f.name, &mut quoted);
        memchr::memmem::find(line, &quoted).is_some()
    });
    let parsed = if flat {
        serde_json::from_slice::<serde_json::Map<String, Value>>(line.trim_ascii()).ok()
    } else {
        None
    };
    let Some(mut user) = parsed else {
        out.extend_from_slice(line);
        return;
    };
    for field in fields {
        if let Some(value) = user.remove(&field.name) {
            let slot = user.entry(field.root.clone()).or_insert(Value::Null);
            *place(slot, &field.steps) = value;
        }
    }
    serde_json::to_writer(&mut *out, &user).expect("writing to a Vec cannot fail");
    out.push(b'\n');
}

/// The place `steps` below `value` lead to, made (objects and arrays) where missing.
fn place<'v>(mut value: &'v mut Value, steps: &[Step]) -> &'v mut Value {
    for step in steps {
        value = match step {
            Step::Key(key) => {
                if !value.is_object() {
                    *value = Value::Object(serde_json::Map::new());
                }
                value
                    .as_object_mut()
                    .expect("an object")
                    .entry(key.clone())
                    .or_insert(Value::Null)
            }
            Step::Index(index) => {
                if !value.is_array() {
                    *value = Value::Array(Vec::new());
                }
                let items = value.as_array_mut().expect("an array");
                if items.len() <= *index {
                    items.resize(*index + 1, Value::Null);
                }
                &mut items[*index]
            }
        };
    }
    value
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keys_go_back_to_their_paths() {
        let fields = vec![
            FieldPath {
                name: "user_metadata.plan".into(),
                root: "user_metadata".into(),
                steps: vec![Step::Key("plan".into())],
            },
            FieldPath {
                name: "identities[0].connection".into(),
                root: "identities".into(),
                steps: vec![Step::Index(0), Step::Key("connection".into())],
            },
        ];
        let mut out = Vec::new();
        unflatten_line(
            br#"{"email":"a@x.io","user_metadata.plan":"pro","identities[0].connection":"db"}"#,
            &fields,
            &mut out,
        );
        let user: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            user,
            json!({"email": "a@x.io", "user_metadata": {"plan": "pro"},
                   "identities": [{"connection": "db"}]})
        );
        // Nested already: kept byte for byte.
        let line = b"{\"user_metadata\":{\"plan\":1.0}}\n";
        out.clear();
        unflatten_line(line, &fields, &mut out);
        assert_eq!(out, line);
    }
}
