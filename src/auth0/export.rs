//! A tenant's users as bytes: a users-exports job is created and polled (its progress told
//! to a callback), its download link is fetched again when it has lapsed, and the gzipped
//! NDJSON is handed on as a reader, read as it arrives. A download that stops short is an
//! error, never a short export. Nothing here prints, draws or writes files.

use std::io::{self, BufRead as _, Read};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::jobs::Job;
use super::{Client, read_json, redact};
use crate::error::{Error, Result};
use crate::json::Step;

/// How far an export has come, told to [`Request::progress`].
#[derive(Debug)]
pub enum Progress<'a> {
    /// The job, as last polled.
    Job(&'a Job),
    /// The job ended.
    JobDone,
    /// Bytes of the download received so far, of `total` when Auth0 said.
    Downloaded {
        /// Received so far.
        received: u64,
        /// The whole download.
        total: Option<u64>,
    },
    /// The download is complete.
    DownloadDone,
}

/// A callback that is told how an export is coming along.
pub type OnProgress = Arc<dyn Fn(Progress<'_>) + Send + Sync>;

/// What to export.
#[derive(Clone, Default)]
pub struct Request {
    /// Only the users of this connection (`con_…`).
    pub connection_id: Option<String>,
    /// Only these attributes, when every column asks for one.
    pub fields: Option<Vec<FieldPath>>,
    /// Told how the job and the download come along.
    pub progress: Option<OnProgress>,
    /// How often the job is polled.
    pub poll: Duration,
}

/// The download of an export job: gzipped NDJSON as Auth0 serves it, read as it arrives.
pub struct Download {
    /// How messages name it (the job).
    pub name: String,
    /// The bytes.
    pub body: Box<dyn Read + Send>,
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

/// Runs an export job on the tenant and returns its download, streaming.
pub async fn export(client: Arc<Client>, request: Request) -> Result<Download> {
    let job = client.create_export(&request).await?;
    let tell = |progress: Progress<'_>| {
        if let Some(callback) = &request.progress {
            callback(progress);
        }
    };
    let job = client
        .wait(&job.id, request.poll, |job| tell(Progress::Job(job)))
        .await?;
    tell(Progress::JobDone);
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
    let progress = request.progress.clone();
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
            if let Some(progress) = &progress {
                progress(Progress::Downloaded {
                    received,
                    total: expected,
                });
            }
            if tx.send(Ok(chunk.to_vec())).is_err() {
                return;
            }
        }
        if let Some(progress) = &progress {
            progress(Progress::DownloadDone);
        }
        if let Some(expected) = expected
            && received != expected
        {
            let _ = tx.send(Err(io::Error::other(format!(
                "{what}: the download ended after {received} of {expected} bytes"
            ))));
        }
    });
    let body = ChannelReader {
        rx,
        buf: Vec::new(),
        pos: 0,
    };
    Ok(Download {
        name,
        body: Box::new(body),
    })
}

/// The users of a download's NDJSON (decompressed) of the `fields` asked for: the flat
/// keys Auth0 gives nested fields are put back where their paths say (the rest is handed
/// on as it is).
pub fn users(plain: Box<dyn io::BufRead + Send>, fields: &[FieldPath]) -> Box<dyn Read + Send> {
    let nested: Vec<FieldPath> = fields
        .iter()
        .filter(|f| !f.steps.is_empty())
        .cloned()
        .collect();
    if nested.is_empty() {
        return Box::new(plain);
    }
    // Exported with `fields`, nested attributes may come as flat keys
    // ("user_metadata.plan"): they are put back where the path says, so that the
    // pipeline reads them as it reads any user.
    Box::new(Unflatten {
        inner: plain,
        fields: nested,
        line: Vec::new(),
        out: Vec::new(),
        pos: 0,
    })
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
        let quoted = serde_json::to_string(&f.name).unwrap_or_default();
        memchr::memmem::find(line, quoted.as_bytes()).is_some()
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
    match serde_json::to_vec(&user) {
        Ok(text) => {
            out.extend_from_slice(&text);
            out.push(b'\n');
        }
        Err(_) => out.extend_from_slice(line),
    }
}

/// The place `steps` below `value` lead to, made (objects and arrays) where missing.
fn place<'v>(mut value: &'v mut Value, steps: &[Step]) -> &'v mut Value {
    for step in steps {
        value = match step {
            Step::Key(key) => {
                if !value.is_object() {
                    *value = Value::Object(serde_json::Map::new());
                }
                match value {
                    Value::Object(map) => map.entry(key.clone()).or_insert(Value::Null),
                    other => other,
                }
            }
            Step::Index(index) => {
                if !value.is_array() {
                    *value = Value::Array(Vec::new());
                }
                match value {
                    Value::Array(items) => {
                        if items.len() <= *index {
                            items.resize(*index + 1, Value::Null);
                        }
                        &mut items[*index]
                    }
                    other => other,
                }
            }
        };
    }
    value
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
