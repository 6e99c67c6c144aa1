//! Users → a folder of Auth0 import files that Auth0 accepts the first time.
//!
//! Each user is converted ([`convert`]), checked against every rule and against the users
//! before it (duplicates by email without regard to case, `user_id`, `username`; the same
//! id in two connections), and appended to the current file; a file is closed before it
//! would pass `max_bytes`. A user is never split and the input order is kept. A file is put
//! together in memory; once closed it is written, read back, hashed and checked by the
//! [`Validator`] on a thread of its own, for what writing can get wrong (its framing, its
//! size, each user whole and once); the rules ran on each row's very bytes before it was
//! written. The folder is built beside
//! the target and renamed into place at the end, with `manifest.json` (per file: users,
//! bytes, SHA-256) and `rejected.json` (every refused user with its reasons): it appears
//! whole or not at all.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::DataFrame;
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::checks::Checks;
use super::convert::{Conversion, Dropped, Outcome, Row, convert, convert_text};
use super::hashes::{HashTotals, UNMATCHED_HASHES, WITHOUT_HASH};
use super::mapping::Mapping;
use super::rules::{Code, Options, Origin, Problem};
use super::seen::{Key, Seen};
use super::validate::{MAX_FILE_BYTES, Validator};
use crate::error::{Error, Result};
use crate::json::skim::Skim;
use crate::pipeline::request::{Condition, Layout, Request};
use crate::sink::Shape;
use crate::sink::json::ObjectWriter;

/// The file size `prepare` aims under by default (Auth0 refuses files over 512000 bytes).
pub const DEFAULT_MAX_BYTES: usize = 500_000;

pub use super::manifest::{
    FileEntry, MANIFEST, Manifest, REJECTED, Totals, UNMATCHED, read_manifest,
};

/// How a folder of import files is prepared.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The folder to create.
    pub dir: PathBuf,
    /// The largest file to write, in bytes (at most [`MAX_FILE_BYTES`]).
    pub max_bytes: usize,
    /// How users are converted.
    pub conversion: Conversion,
    /// Replace the folder when it is not empty (only a folder that prepare made, holding
    /// nothing else and none of `inputs`).
    pub force: bool,
    /// The files the run reads: a folder that holds one of them is never replaced.
    pub inputs: Vec<PathBuf>,
    /// When the users are the rows of a query: how the user named it. Its columns are then
    /// mapped to import attributes by name ([`Mapping`]).
    pub mapped: Option<String>,
}

/// Runs `frame` and prepares its users (one a row) into the folder of `settings`.
pub async fn run(frame: DataFrame, settings: &Settings, checks: Checks) -> Result<Manifest> {
    let mut preparer = Preparer::new(settings)?.with_checks(checks);
    each_user(
        frame,
        settings.mapped.as_deref(),
        &settings.conversion,
        |object, outcome, ahead| {
            if let Some(ahead) = ahead {
                preparer.ahead(ahead);
            }
            preparer.take(object, outcome).map(drop)
        },
    )
    .await?;
    preparer.finish()
}

/// The name of the column of each user's JSON text, when a request asks for whole users as
/// their text (see [`crate::pipeline::Request::text`]): conversion reads them as written.
pub const USER_TEXT: &str = "user text";

/// The name of the column of each user's layout, after its text (see
/// [`crate::pipeline::Request::layout`]): conversion finds the members there.
pub const USER_LAYOUT: &str = "user layout";

/// The request for the users to prepare that meet `conditions`: each user's text as the
/// input holds it, and its layout, whose records look for repeated and marked keys in the
/// values conversion may write into a row (the others are left out of the rows).
pub fn request(conditions: Vec<Condition>) -> Request {
    let mut written: Vec<String> = super::rules::PROPERTIES
        .iter()
        .chain(super::rules::UPSERTABLE)
        .map(|name| name.to_string())
        .collect();
    written.sort_unstable();
    written.dedup();
    Request {
        conditions,
        text: Some(USER_TEXT.to_string()),
        layout: Some(Layout {
            name: USER_LAYOUT.to_string(),
            checked: written,
        }),
        ..Request::default()
    }
}

/// Runs `frame` and hands each user (one a row: its JSON text in a [`USER_TEXT`] column,
/// maybe followed by its [`USER_LAYOUT`], or
/// its columns rendered as a JSON object; with `mapped`, the row's columns mapped to import
/// attributes) to `each` in order, with its conversion, and the conversion of the user
/// [`AHEAD`] users later when it is ready (for [`Preparer::ahead`]).
pub async fn each_user(
    frame: DataFrame,
    mapped: Option<&str>,
    conversion: &Conversion,
    mut each: impl FnMut(&[u8], Outcome, Option<&Outcome>) -> Result<()>,
) -> Result<()> {
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let fields = schema.fields();
    let texts = fields
        .first()
        .is_some_and(|f| f.name() == USER_TEXT && f.data_type() == &DataType::Utf8View)
        && match fields.get(1) {
            None => true,
            Some(f) => {
                fields.len() == 2 && f.name() == USER_LAYOUT && f.data_type() == &DataType::Binary
            }
        };
    let render = Arc::new(match mapped {
        Some(context) => Render::Mapped(Mapping::new(&schema, conversion.upsert, context)?),
        None if texts => Render::Texts,
        None => Render::Users(ObjectWriter::new(&schema, Shape::Users)),
    });
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(Error::from_datafusion)?;
    // A batch is converted by the workers while the users of the batch before it are taken
    // in order here (the duplicate checks and the files), so conversion, decoding and
    // writing overlap. (Two batches ahead measured no faster, and held another batch.)
    let workers = Workers::start(&schema, &render, conversion)?;
    let mut pending: Option<Converting> = None;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(Error::from_datafusion)?;
        let next = workers.convert(batch)?;
        if let Some(converting) = pending.replace(next) {
            converting.take(&render, &mut each)?;
        }
    }
    if let Some(converting) = pending {
        converting.take(&render, &mut each)?;
    }
    Ok(())
}

/// How many users ahead of the one taken [`each_user`] shows: far enough for what its
/// checks look up to arrive from memory meanwhile.
pub const AHEAD: usize = 8;

/// Rows of a batch for a worker to convert, and where the result goes.
struct Job {
    batch: RecordBatch,
    rows: std::ops::Range<usize>,
    done: std::sync::mpsc::SyncSender<Result<Converted>>,
}

/// The conversion threads, two for the whole run (rendering, conversion and the rules):
/// each takes the next half batch there is.
struct Workers {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Workers {
    fn start(schema: &Arc<Schema>, render: &Arc<Render>, conversion: &Conversion) -> Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for _ in 0..2 {
            let (schema, render, conversion) = (schema.clone(), render.clone(), conversion.clone());
            let queue = queue.clone();
            std::thread::Builder::new()
                .name("userport-convert".into())
                .spawn(move || {
                    loop {
                        // The lock is held only to take a job; the queue ends with `jobs`.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let converted =
                            convert_rows(&schema, &job.batch, &render, job.rows, &conversion);
                        // The run may have stopped waiting (an error); nothing to do then.
                        let _ = job.done.send(converted);
                    }
                })
                .map_err(|e| Error::Internal(format!("no conversion thread: {e}")))?;
        }
        Ok(Workers { jobs })
    }

    /// Hands `batch` to the workers, in two halves.
    fn convert(&self, batch: RecordBatch) -> Result<Converting> {
        let rows = batch.num_rows();
        let mid = if rows >= 1024 { rows / 2 } else { rows };
        let mut halves = Vec::with_capacity(2);
        for range in [0..mid, mid..rows] {
            if range.is_empty() {
                continue;
            }
            let (done, result) = std::sync::mpsc::sync_channel(1);
            let job = Job {
                batch: batch.clone(),
                rows: range.clone(),
                done,
            };
            self.jobs
                .send(job)
                .map_err(|_| Error::Internal("the conversion threads stopped".into()))?;
            halves.push((range.start, result));
        }
        Ok(Converting { batch, halves })
    }
}

/// A batch being converted: its halves' starts and results to come.
struct Converting {
    batch: RecordBatch,
    halves: Vec<(usize, std::sync::mpsc::Receiver<Result<Converted>>)>,
}

impl Converting {
    /// Waits for the conversion and hands each user to `each`, in order, with the user
    /// [`AHEAD`] later in the same half.
    fn take(
        self,
        render: &Render,
        each: &mut impl FnMut(&[u8], Outcome, Option<&Outcome>) -> Result<()>,
    ) -> Result<()> {
        let texts = match render {
            Render::Texts => Some(self.batch.column(0).as_string_view()),
            _ => None,
        };
        for (start, result) in self.halves {
            let Converted { objects, outcomes } = result
                .recv()
                .unwrap_or_else(|_| Err(Error::Internal("a conversion thread stopped".into())))?;
            let mut outcomes = outcomes;
            for i in 0..outcomes.len() {
                let object = match texts {
                    Some(texts) => texts.value(start + i).as_bytes(),
                    None => objects[i].as_slice(),
                };
                let outcome = std::mem::replace(&mut outcomes[i], Outcome::Skipped);
                each(object, outcome, outcomes.get(i + AHEAD))?;
            }
        }
        Ok(())
    }
}

/// Rows of a batch converted: each one's outcome, and its JSON object when it was rendered
/// (users read as their text are not copied).
struct Converted {
    objects: Vec<Vec<u8>>,
    outcomes: Vec<Outcome>,
}

/// How a row becomes a user object: users as their text, whole users rendered from their
/// columns, a query's rows mapped.
enum Render {
    Texts,
    Users(ObjectWriter),
    Mapped(Mapping),
}

fn convert_rows(
    schema: &Schema,
    batch: &RecordBatch,
    render: &Render,
    rows: std::ops::Range<usize>,
    conversion: &Conversion,
) -> Result<Converted> {
    let objects = match render {
        Render::Texts => {
            let texts = batch.column(0).as_string_view();
            let layouts = (batch.num_columns() == 2).then(|| batch.column(1).as_binary::<i32>());
            let mut scan = Skim::default();
            let outcomes = rows
                .map(|i| {
                    let layout = layouts.and_then(|l| l.is_valid(i).then(|| l.value(i)));
                    convert_text(texts.value(i), layout, conversion, &mut scan)
                })
                .collect();
            return Ok(Converted {
                objects: Vec::new(),
                outcomes,
            });
        }
        Render::Users(w) => w.rows(schema, batch, rows)?,
        Render::Mapped(m) => m.rows(schema, batch, rows)?,
    };
    let mut scan = Skim::default();
    let outcomes = objects
        .iter()
        .map(|o| convert(o, conversion, &mut scan))
        .collect();
    Ok(Converted { objects, outcomes })
}

/// Prepares users one at a time into a staging folder, then puts it in place.
pub struct Preparer {
    /// First, so that it is dropped first: its thread is done with the staging folder before
    /// the folder is removed.
    checker: FileChecker,
    settings: Settings,
    staging: tempfile::TempDir,
    /// The staging folder's entry in the register of what a signal removes.
    _tracked: crate::temp::Tracked,
    seen: Seen,
    connections: Vec<String>,
    current: Option<Open>,
    files: Vec<FileEntry>,
    rejected: ListFile,
    /// The entry of `rejected.json` being written, its room kept from one to the next.
    entry: Vec<u8>,
    rejected_by_code: BTreeMap<String, u64>,
    /// Rows written by connection number (see [`Preparer::connection_number`]).
    per_connection: Vec<u64>,
    dropped: Dropped,
    totals: Totals,
    checks: Checks,
    /// Users written without their password (a hash Auth0 cannot verify), listed in
    /// [`WITHOUT_PASSWORD`] as they come.
    without_password: Option<ListFile>,
    without_password_by_format: BTreeMap<String, u64>,
    /// With `--hashes`: database users written without a hash, listed as they come.
    without_hash: Option<ListFile>,
    hash_totals: HashTotals,
}

/// What [`Preparer::take`] did with a user.
#[derive(Debug)]
pub enum Taken {
    /// Written to an import file.
    Written,
    /// Refused (listed in `rejected.json`), for these reasons.
    Refused(Vec<Problem>),
    /// Of another connection than the one asked for.
    Skipped,
}

/// The list of users written without a password, with why (for the password resets).
pub const WITHOUT_PASSWORD: &str = "without-password.json";

/// The file being put together, in memory until it is closed (the checking thread writes
/// it).
struct Open {
    name: String,
    content: Vec<u8>,
    users: u64,
}

impl Open {
    fn put(&mut self, bytes: &[u8]) {
        self.content.extend_from_slice(bytes);
    }
}

fn write_error(dir: &Path, name: &str, source: std::io::Error) -> Error {
    Error::Write {
        path: dir.join(name).display().to_string(),
        source,
    }
}

/// A JSON array written into the staging folder an entry at a time, one a line
/// (`rejected.json`, `without-password.json`); errors name the file in the target folder.
struct ListFile {
    name: &'static str,
    writer: BufWriter<File>,
    entries: u64,
}

impl ListFile {
    fn create(staging: &Path, dir: &Path, name: &'static str) -> Result<ListFile> {
        let file = File::create(staging.join(name)).map_err(|e| write_error(dir, name, e))?;
        // A megabyte a write: the rejected users of an export can be most of it (147 MB for
        // a million hostile users), written by the thread that takes every user in order.
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        writer
            .write_all(b"[")
            .map_err(|e| write_error(dir, name, e))?;
        Ok(ListFile {
            name,
            writer,
            entries: 0,
        })
    }

    fn push(&mut self, entry: &impl Serialize, dir: &Path) -> Result<()> {
        let text = serde_json::to_vec(entry)
            .map_err(|e| Error::Internal(format!("an entry does not serialize: {e}")))?;
        self.push_raw(&text, dir)
    }

    /// Appends an entry already written as compact JSON.
    fn push_raw(&mut self, entry: &[u8], dir: &Path) -> Result<()> {
        let separator: &[u8] = if self.entries == 0 { b"\n" } else { b",\n" };
        self.entries += 1;
        self.writer
            .write_all(separator)
            .and_then(|()| self.writer.write_all(entry))
            .map_err(|e| write_error(dir, self.name, e))
    }

    fn finish(mut self, dir: &Path) -> Result<()> {
        let end: &[u8] = if self.entries == 0 { b"]\n" } else { b"\n]\n" };
        self.writer
            .write_all(end)
            .and_then(|()| self.writer.flush())
            .map_err(|e| write_error(dir, self.name, e))
    }
}

impl Preparer {
    /// Checks the target folder and opens a staging folder beside it.
    pub fn new(settings: &Settings) -> Result<Self> {
        let dir = &settings.dir;
        let context = format!("-o {}", dir.display());
        if settings.max_bytes > MAX_FILE_BYTES || settings.max_bytes < 1024 {
            return Err(Error::usage(
                format!("--max-bytes {}", settings.max_bytes),
                format!("must be between 1024 and {MAX_FILE_BYTES} (Auth0's limit)"),
            ));
        }
        if dir.exists() {
            let Ok(mut entries) = std::fs::read_dir(dir) else {
                return Err(Error::usage(context, "exists and is not a folder"));
            };
            if entries.next().is_some() {
                if !settings.force {
                    return Err(Error::usage(
                        context,
                        "the folder is not empty; prepare writes a fresh folder: remove it, \
                         name another, or use --force to replace a folder that prepare made",
                    ));
                }
                replaceable(dir, &settings.inputs).map_err(|why| Error::usage(&context, why))?;
            }
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|source| Error::Write {
            path: parent.display().to_string(),
            source,
        })?;
        // The folder gets 0777 less the umask, as `mkdir` would make it.
        let builder = crate::temp::builder(&parent, 0o777);
        let (staging, tracked) = crate::temp::Tracked::create(
            || builder.tempdir_in(&parent),
            |staging: &tempfile::TempDir| staging.path(),
        )
        .map_err(|source| Error::Write {
            path: parent.display().to_string(),
            source,
        })?;
        let rejected = ListFile::create(staging.path(), dir, REJECTED)?;
        Ok(Preparer {
            checker: FileChecker::start(
                Options {
                    upsert: settings.conversion.upsert,
                },
                staging.path(),
                dir,
            )?,
            settings: settings.clone(),
            staging,
            _tracked: tracked,
            seen: Seen::default(),
            connections: Vec::new(),
            current: None,
            files: Vec::new(),
            rejected,
            entry: Vec::new(),
            rejected_by_code: BTreeMap::new(),
            per_connection: Vec::new(),
            dropped: Dropped::default(),
            totals: Totals::default(),
            checks: Checks::default(),
            without_password: None,
            without_password_by_format: BTreeMap::new(),
            without_hash: None,
            hash_totals: HashTotals::default(),
        })
    }

    /// Checks these passwords against the rows written (see [`Checks`]).
    pub fn with_checks(mut self, checks: Checks) -> Self {
        self.checks = checks;
        self
    }

    /// Takes the next user of the input (one JSON object).
    pub fn user(&mut self, object: &[u8]) -> Result<()> {
        let outcome = convert(object, &self.settings.conversion, &mut Skim::default());
        self.take(object, outcome).map(drop)
    }

    /// A user to be taken a few users from now: what its duplicate checks will look up is
    /// fetched into the cache meanwhile (a hint; nothing is recorded).
    pub fn ahead(&self, outcome: &Outcome) {
        if let Outcome::Row(row) = outcome {
            for &print in row.prints.iter().filter(|&&p| p != 0) {
                self.seen.prefetch(print);
            }
        }
    }

    /// Takes the next user of the input, already converted, and says what became of it.
    pub fn take(&mut self, object: &[u8], outcome: Outcome) -> Result<Taken> {
        self.totals.read += 1;
        let input = self.totals.read;
        match outcome {
            Outcome::Skipped => {
                self.totals.skipped += 1;
                Ok(Taken::Skipped)
            }
            Outcome::Refused { problems, row, who } => {
                self.refuse(input, object, problems, row, who)
            }
            Outcome::Failed(error) => Err(error),
            Outcome::Row(row) => {
                let too_large = row.json.len() + 5 > self.settings.max_bytes;
                let number = self.connection_number(row.connection());
                // Notes keep 23 bits for it: no tenant has that many connections.
                let connection = (number as u64).min((1 << 23) - 1);
                let values = [Some(row.email()), row.user_id(), row.username()];
                let (mut keys, mut prints) = ([(Key::Email, ""); 3], [(Key::Email, 0); 3]);
                let mut len = 0;
                for ((key, value), print) in Key::ALL.into_iter().zip(values).zip(row.prints) {
                    if let Some(value) = value {
                        (prints[len], keys[len]) = ((key, print), (key, value));
                        len += 1;
                    }
                }
                let (keys, prints) = (&keys[..len], &prints[..len]);
                // A user's keys are recorded when it is written, and only then.
                let firsts = if too_large {
                    prints
                        .iter()
                        .filter_map(|&(key, print)| Some((key, self.seen.get_print(print)?)))
                        .collect()
                } else {
                    self.seen.insert_prints(prints, input | (connection << 40))
                };
                let mut problems = self.duplicates(keys, &firsts, connection);
                if too_large {
                    problems.push(Problem {
                        pointer: String::new(),
                        code: Code::UserTooLarge,
                        origin: Origin::Auth0,
                        message: format!(
                            "the user is {} bytes as JSON; a file may hold {} (--max-bytes)",
                            row.json.len(),
                            self.settings.max_bytes
                        ),
                    });
                }
                if !problems.is_empty() {
                    return self.refuse(input, object, problems, Some(row.json), None);
                }
                self.append(row, number).map(|()| Taken::Written)
            }
        }
    }

    /// The number of a user's connection: 0 when unknown, else its place among the
    /// connections seen so far, from 1 (for duplicate notes and the counts a connection).
    fn connection_number(&mut self, connection: Option<&str>) -> usize {
        let Some(name) = connection else { return 0 };
        match self.connections.iter().position(|c| c == name) {
            Some(i) => i + 1,
            None => {
                self.connections.push(name.to_string());
                self.connections.len()
            }
        }
    }

    /// How many users were written, by connection (`(unknown)` when the input did not say).
    fn per_connection(&self) -> BTreeMap<String, u64> {
        let names = std::iter::once("(unknown)").chain(self.connections.iter().map(String::as_str));
        names
            .zip(&self.per_connection)
            .filter(|(_, count)| **count > 0)
            .map(|(name, count)| (name.to_string(), *count))
            .collect()
    }

    /// The problems of a user of `connection` whose `keys` earlier users have (`firsts`:
    /// each such key and the note of the user that had it first).
    fn duplicates(
        &self,
        keys: &[(Key, &str)],
        firsts: &[(Key, u64)],
        connection: u64,
    ) -> Vec<Problem> {
        let mut problems = Vec::new();
        for &(key, note) in firsts {
            let Some(&(_, value)) = keys.iter().find(|(k, _)| *k == key) else {
                continue;
            };
            let (first, first_connection) = (note & ((1 << 40) - 1), note >> 40);
            let name = |no: u64| self.connections[(no - 1) as usize].clone();
            let message = if key == Key::UserId
                && first_connection != 0
                && connection != 0
                && first_connection != connection
            {
                format!(
                    "user_id {value:?} is in connection {} (input user {first}) and in \
                     connection {}: the id must have a unique connection|id",
                    name(first_connection),
                    name(connection)
                )
            } else {
                let case = if key == Key::Email {
                    " (without regard to case)"
                } else {
                    ""
                };
                format!(
                    "{} {value:?} is already used{case} by input user {first}",
                    key.name()
                )
            };
            problems.push(Problem {
                pointer: super::rules::pointer("", key.name()),
                code: Code::DuplicatedUser,
                origin: Origin::Auth0,
                message,
            });
        }
        problems
    }

    fn refuse(
        &mut self,
        input: u64,
        object: &[u8],
        problems: Vec<Problem>,
        row: Option<Vec<u8>>,
        who: Option<Vec<u8>>,
    ) -> Result<Taken> {
        self.totals.rejected += 1;
        // Each code once a user.
        for (i, problem) in problems.iter().enumerate() {
            let code = problem.code.as_str();
            if !problems[..i].iter().any(|p| p.code.as_str() == code) {
                super::convert::tally(&mut self.rejected_by_code, code);
            }
        }
        // The entry: the input number, the user's own user_id and email (as written), the
        // reasons, and the row as far as it was built.
        // The user's members are read here only when conversion did not read them, or for
        // the password checks.
        let members = (who.is_none() || !self.checks.is_empty()).then(|| {
            let text = std::str::from_utf8(object).unwrap_or_default();
            crate::json::Raw(text).members().unwrap_or_default()
        });
        let members = members.as_deref().unwrap_or_default();
        if !self.checks.is_empty()
            && let Some(email) = crate::json::last(members, "email").and_then(|e| e.string())
        {
            self.checks.refused(&email);
        }
        let mut entry = std::mem::take(&mut self.entry);
        entry.clear();
        entry.extend_from_slice(b"{\"input\":");
        // Written to a vector, which cannot fail.
        let _ = write!(entry, "{input}");
        entry.extend_from_slice(&who.unwrap_or_else(|| super::convert::who(members)));
        entry.extend_from_slice(b",\"problems\":[");
        for (i, p) in problems.iter().enumerate() {
            if i > 0 {
                entry.push(b',');
            }
            for (name, value) in [
                ("{\"pointer\":", p.pointer.as_str()),
                (",\"code\":", p.code.as_str()),
                (",\"rule\":", p.origin.as_str()),
                (",\"message\":", p.message.as_str()),
            ] {
                entry.extend_from_slice(name.as_bytes());
                crate::json::quote_into(value, &mut entry);
            }
            entry.push(b'}');
        }
        entry.push(b']');
        entry.extend_from_slice(b",\"row\":");
        entry.extend_from_slice(row.as_deref().unwrap_or(b"null"));
        entry.push(b'}');
        self.rejected.push_raw(&entry, &self.settings.dir)?;
        self.entry = entry;
        Ok(Taken::Refused(problems))
    }

    /// Writes `row`, of the connection numbered `connection` ([`Self::connection_number`]).
    fn append(&mut self, row: Row, connection: usize) -> Result<()> {
        let len = row.json.len() as u64;
        let fits = self.current.as_ref().is_some_and(|open| {
            open.content.len() as u64 + 2 + len + 3 <= self.settings.max_bytes as u64
        });
        if !fits {
            self.close()?;
            let mut open = Open {
                name: format!("users-{:04}.json", self.files.len() + 1),
                content: Vec::with_capacity(self.settings.max_bytes),
                users: 0,
            };
            open.put(b"[\n");
            self.current = Some(open);
        }
        let Some(open) = self.current.as_mut() else {
            return Err(Error::Internal("no import file is open".into()));
        };
        if open.users > 0 {
            open.put(b",\n");
        }
        open.put(&row.json);
        open.users += 1;
        self.totals.users += 1;
        if !self.checks.is_empty() {
            self.checks.row(row.email(), &row.json);
        }
        if let Some((format, reason)) = &row.without_password {
            self.note_without_password(&row, format, reason)?;
        }
        match row.hash_found {
            Some(true) => self.hash_totals.matched += 1,
            Some(false) => self.note_without_hash(&row)?,
            None => {}
        }
        self.dropped.count(&row);
        if self.per_connection.len() <= connection {
            self.per_connection.resize(connection + 1, 0);
        }
        self.per_connection[connection] += 1;
        Ok(())
    }

    /// Lists a user written without the password hash Auth0 could not verify.
    fn note_without_password(&mut self, row: &Row, format: &str, reason: &str) -> Result<()> {
        let dir = &self.settings.dir;
        if self.without_password.is_none() {
            self.without_password = Some(ListFile::create(
                self.staging.path(),
                dir,
                WITHOUT_PASSWORD,
            )?);
        }
        *self
            .without_password_by_format
            .entry(format.to_string())
            .or_default() += 1;
        let entry = serde_json::json!({
            "input": self.totals.read,
            "email": row.email(),
            "user_id": row.user_id(),
            "format": format,
            "reason": reason,
        });
        let list = self.without_password.as_mut().expect("created above");
        list.push(&entry, dir)
    }

    /// Lists a database user written without a hash (`--hashes` has none for it).
    fn note_without_hash(&mut self, row: &Row) -> Result<()> {
        let dir = &self.settings.dir;
        if self.without_hash.is_none() {
            self.without_hash = Some(ListFile::create(self.staging.path(), dir, WITHOUT_HASH)?);
        }
        self.hash_totals.profiles_without_hash += 1;
        let entry = serde_json::json!({
            "input": self.totals.read,
            "email": row.email(),
            "user_id": row.user_id(),
            "connection": row.connection(),
        });
        let list = self.without_hash.as_mut().expect("created above");
        list.push(&entry, dir)
    }

    /// With `--hashes`: lists the hashes that went to no profile and counts them.
    fn finish_hashes(&mut self) -> Result<Option<HashTotals>> {
        let Some(hashes) = self.settings.conversion.hashes.clone() else {
            return Ok(None);
        };
        let dir = self.settings.dir.clone();
        if let Some(list) = self.without_hash.take() {
            list.finish(&dir)?;
        }
        let connections: Vec<String> = match &self.settings.conversion.connection {
            Some(c) => vec![c.clone()],
            None => self
                .per_connection()
                .into_keys()
                .filter(|c| c != "(unknown)")
                .collect(),
        };
        let mut totals = std::mem::take(&mut self.hash_totals);
        totals.hashes = hashes.len() as u64;
        let file = File::create(self.staging.path().join(UNMATCHED_HASHES))
            .map_err(|e| write_error(&dir, UNMATCHED_HASHES, e))?;
        let mut out = BufWriter::new(file);
        hashes
            .write_unmatched(&connections, &mut out, &mut totals)
            .and_then(|()| {
                out.flush()
                    .map_err(|e| write_error(&dir, UNMATCHED_HASHES, e))
            })?;
        Ok(Some(totals))
    }

    /// Ends the open file, and has it checked as `validate` would.
    fn close(&mut self) -> Result<()> {
        let Some(mut open) = self.current.take() else {
            return Ok(());
        };
        open.put(b"\n]\n");
        let bytes = open.content.len() as u64;
        self.totals.files += 1;
        self.totals.bytes += bytes;
        self.files.push(FileEntry {
            file: open.name.clone(),
            users: open.users,
            bytes,
            // Filled in by the checking thread from the file it wrote.
            sha256: String::new(),
        });
        self.checker.check(open.name, open.content);
        Ok(())
    }

    /// Writes another file into the folder (beside the import files).
    pub fn add_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        std::fs::write(self.staging.path().join(name), bytes)
            .map_err(|source| write_error(&self.settings.dir, name, source))
    }

    /// Closes the last file, writes the manifest and the refused users, and puts the folder
    /// in place.
    pub fn finish(mut self) -> Result<Manifest> {
        self.close()?;
        let (validator, hashes) = self.checker.finish()?;
        for (entry, sha256) in self.files.iter_mut().zip(hashes) {
            entry.sha256 = sha256;
        }
        if let Some(finding) = validator.findings.first() {
            return Err(Error::usage(
                "prepare",
                format!(
                    "internal error: a file it wrote does not pass validate: {}: user [{}]: \
                     {} {}: {}",
                    finding.file,
                    finding.index.map_or("-".into(), |i| i.to_string()),
                    finding.problem.pointer,
                    finding.problem.code,
                    finding.problem.message
                ),
            ));
        }
        let dir = self.settings.dir.clone();
        // A password that does not match fails the run: the folder is never put in place.
        let checked = if self.checks.is_empty() {
            None
        } else {
            Some(self.checks.finish()?)
        };
        if let Some(list) = self.without_password.take() {
            list.finish(&dir)?;
        }
        let hashes = self.finish_hashes()?;
        let connections = self.per_connection();
        self.rejected.finish(&dir)?;
        let manifest = Manifest {
            userport: env!("CARGO_PKG_VERSION").to_string(),
            kind: if self.settings.conversion.upsert {
                "upsert"
            } else {
                "insert"
            }
            .to_string(),
            max_bytes: self.settings.max_bytes,
            files: self.files,
            totals: self.totals,
            rejected: self.rejected_by_code,
            dropped: self.dropped.fields(),
            linked_identities_dropped: self.dropped.linked_identities,
            email_verified_added: self.dropped.email_verified_added,
            connections,
            without_password: self.without_password_by_format,
            checked_passwords: checked,
            hashes,
        };
        let mut text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::Internal(format!("the manifest does not serialize: {e}")))?;
        text.push(b'\n');
        std::fs::write(self.staging.path().join(MANIFEST), text)
            .map_err(|source| write_error(&dir, MANIFEST, source))?;
        commit(self.staging, &dir)?;
        Ok(manifest)
    }
}

/// Writes each closed file and checks it on a thread of its own ([`Validator::for_writer`]):
/// the file is written into the staging folder, read back, hashed (SHA-256, for the
/// manifest) and checked: one JSON array of users, each valid JSON, none sharing a key within
/// the file, under the size limit. Across files the preparer's own keys rule duplicates
/// out, and the rules ran on each row before it was written.
struct FileChecker {
    files: Option<std::sync::mpsc::SyncSender<(String, Vec<u8>)>>,
    thread: Option<std::thread::JoinHandle<Result<Checked>>>,
}

/// What the checking thread found: the checks, and each file's SHA-256 in hex.
type Checked = (Validator, Vec<String>);

impl FileChecker {
    /// Starts the thread that writes files into `staging`; errors name them in `dir`.
    fn start(options: Options, staging: &Path, dir: &Path) -> Result<Self> {
        // Eight files wait at most (a file is at most half a megabyte): with fewer, the
        // thread that fills them waited for this one now and then while the other core
        // had nothing to do.
        let (files, received) = std::sync::mpsc::sync_channel::<(String, Vec<u8>)>(8);
        let (staging, dir) = (staging.to_path_buf(), dir.to_path_buf());
        let thread = std::thread::Builder::new()
            .name("userport-check".into())
            .spawn(move || {
                let mut validator = Validator::for_writer(options);
                let mut hashes = Vec::new();
                // Each file is read back into the same buffer (a file is at most half a
                // megabyte): a new one a file costs its pages' first touch every time.
                let mut bytes = Vec::new();
                for (name, content) in received {
                    let path = staging.join(&name);
                    let read_error = |source| Error::Read {
                        path: dir.join(&name).display().to_string(),
                        source,
                    };
                    // Written, then read back through the same handle (one open a file).
                    let mut file = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&path)
                        .and_then(|mut file| file.write_all(&content).map(|()| file))
                        .map_err(|e| write_error(&dir, &name, e))?;
                    drop(content);
                    bytes.clear();
                    std::io::Seek::rewind(&mut file)
                        .and_then(|()| std::io::Read::read_to_end(&mut file, &mut bytes))
                        .map_err(read_error)?;
                    hashes.push(hex::encode(Sha256::digest(&bytes)));
                    validator.file(&name, &bytes);
                }
                Ok((validator, hashes))
            })
            .map_err(|source| Error::Write {
                path: "a checking thread".into(),
                source,
            })?;
        Ok(FileChecker {
            files: Some(files),
            thread: Some(thread),
        })
    }

    /// Has the file `name` holding `content` written and checked.
    fn check(&self, name: String, content: Vec<u8>) {
        if let Some(files) = &self.files {
            // A send fails only when the thread ended on an error, which finish reports.
            let _ = files.send((name, content));
        }
    }

    /// Waits for the files to be written and checked: the checks, and each file's SHA-256
    /// (in hex) in the order they were given.
    fn finish(&mut self) -> Result<Checked> {
        drop(self.files.take());
        let thread = self
            .thread
            .take()
            .ok_or_else(|| Error::Internal("the checks were finished twice".into()))?;
        thread
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("the checking thread panicked".into())))
    }
}

impl Drop for FileChecker {
    /// A run that stops early waits for the thread, which stops at the next file.
    fn drop(&mut self) {
        drop(self.files.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether `--force` may replace the folder `dir`: prepare made it (its manifest reads), it
/// holds only what prepare writes, and none of the run's `inputs` is inside it.
fn replaceable(dir: &Path, inputs: &[PathBuf]) -> std::result::Result<(), String> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| e.to_string())?;
    for input in inputs {
        if let Ok(input) = std::fs::canonicalize(input)
            && input.starts_with(&canonical)
        {
            return Err(format!(
                "holds {}, an input of this run: --force never replaces a folder that holds \
                 an input; write to another folder",
                input.display()
            ));
        }
    }
    let not_prepared = "is not a folder that userport prepare made (it has no readable \
                        manifest.json): --force replaces only such folders; remove it or \
                        name another";
    let manifest = read_manifest(&dir.join(MANIFEST)).map_err(|_| not_prepared.to_string())?;
    let mut ours: std::collections::BTreeSet<String> =
        manifest.files.into_iter().map(|f| f.file).collect();
    ours.extend(
        [
            MANIFEST,
            REJECTED,
            UNMATCHED,
            WITHOUT_PASSWORD,
            WITHOUT_HASH,
            UNMATCHED_HASHES,
        ]
        .map(String::from),
    );
    let entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let plain = entry.file_type().is_ok_and(|t| t.is_file());
        if !plain || !ours.contains(&name) {
            return Err(format!(
                "holds {name}, which prepare did not write: --force replaces only a folder \
                 that prepare made and that holds nothing else; move it away or name \
                 another folder"
            ));
        }
    }
    Ok(())
}

/// Renames the staging folder to `dir`, replacing what is there.
fn commit(staging: tempfile::TempDir, dir: &Path) -> Result<()> {
    let failed = |source| Error::Write {
        path: dir.display().to_string(),
        source,
    };
    if dir.exists() {
        // Moved aside first, so that a failure leaves the old content whole.
        let parent = staging.path().parent().unwrap_or(Path::new("."));
        let aside = tempfile::Builder::new()
            .prefix(".userport-old-")
            .tempdir_in(parent)
            .map_err(failed)?;
        let old = aside.path().join("old");
        std::fs::rename(dir, &old).map_err(failed)?;
        if let Err(e) = std::fs::rename(staging.path(), dir) {
            let _ = std::fs::rename(&old, dir);
            return Err(failed(e));
        }
        let _ = staging.keep();
        drop(aside);
    } else {
        std::fs::rename(staging.path(), dir).map_err(failed)?;
        let _ = staging.keep();
    }
    Ok(())
}
