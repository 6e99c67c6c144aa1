//! Two user sets compared user by user: the users added, removed and changed, and each
//! changed field as a JSON path with its old and new value.
//!
//! Each side is scanned for two columns only, the key (`user_id` without its `auth0|`
//! prefix, or the email in lower case) and the user's ordinal (where its text starts in its
//! input), sorted by key with DataFusion's external sort (each side in a memory pool of its
//! own, spilling to disk past it), and the two sorted streams are merged. A user's text is
//! read back from its input by its place only when the merge reaches it: two exports of
//! millions of users are compared in the memory of their keys, not of their users. Paired
//! users whose texts have the same digest (XXH3, 128 bits, computed as they are decoded)
//! are equal without being read again; others are read, parsed and compared member by
//! member (objects recursively; arrays and other values whole).
//!
//! In `partial` mode the new side is an update (upsert rows): only its users are compared,
//! and only the fields it holds, the way Auth0 applies it — metadata objects replaced whole,
//! `email_verified` false unless given.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Schema;

use datafusion::common::Column;
use datafusion::logical_expr::{Expr, col, lit, when};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::json::Value;
use crate::pipeline::UsersTable;
use crate::source::batches::read_error;
use crate::source::input::Plain;
use crate::source::{self, Input, schema};

/// The memory limit of a diff when none is given: the sorts of the keys hold half of it
/// each. Two 1M-user exports then spill a little, and the run peaks near 210 MB (the
/// scans' buffers come on top of the limit); at 192M the sorts keep everything in memory
/// and it peaks past 300 MB, no faster (`benches/compare.sh`, job f).
pub const MEMORY_LIMIT: usize = 128 << 20;

/// What identifies a user on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Key {
    /// `user_id`, with the `auth0|` prefix of exports reconciled with import files.
    #[value(name = "user_id", alias = "user-id")]
    UserId,
    /// The email address, without regard to case.
    Email,
}

/// What happened to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only in the new set.
    Added,
    /// Only in the old set.
    Removed,
    /// In both, with different values.
    Changed,
}

impl Kind {
    /// `added`, `removed` or `changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Added => "added",
            Kind::Removed => "removed",
            Kind::Changed => "changed",
        }
    }
}

/// One difference: a user added or removed (path empty, the whole user as the value), or a
/// field changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The user's key.
    pub key: String,
    /// What happened.
    pub kind: Kind,
    /// The field's JSON path (`user_metadata.plan`, `app_metadata["a b"]`); empty for a whole
    /// user.
    pub path: String,
    /// The old value (absent: the field was not there).
    pub old: Option<Value>,
    /// The new value (absent: the field is gone).
    pub new: Option<Value>,
}

/// How two sets are compared.
#[derive(Debug, Clone)]
pub struct Options {
    /// The key.
    pub key: Key,
    /// The new side is an update: compare only its users and the fields it holds.
    pub partial: bool,
    /// Memory the sorts of the keys may hold before they spill (half for each side).
    pub memory_limit: usize,
    /// The longest line (one user) of an input.
    pub max_line: usize,
    /// Compare only the old users of these connections (`identities[0].connection`), as an
    /// update to one connection touches only its users.
    pub old_connections: Vec<String>,
}

/// The counts of a comparison.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Users on the old side.
    pub old_users: u64,
    /// Users on the new side.
    pub new_users: u64,
    /// Users only on the new side.
    pub added: u64,
    /// Users only on the old side (not counted in partial mode).
    pub removed: u64,
    /// Users on both sides with differences.
    pub changed: u64,
    /// Users on both sides without differences.
    pub unchanged: u64,
    /// Per changed field path, how many users.
    pub paths: BTreeMap<String, u64>,
}

impl Summary {
    /// Whether the sets are equal.
    pub fn equal(&self) -> bool {
        self.added == 0 && self.removed == 0 && self.changed == 0
    }
}

/// Compares `old` with `new`, handing each change to `each` in key order (users without a
/// key last). Each side is sorted by its key (an external sort that spills past the memory
/// limit) and the two sorted streams are merged; a key held by several users of one side
/// pairs them in order.
///
/// The sorts hold only each user's key and place (its ordinal: which input, how many bytes
/// in), never the user: each user's text is read back from its input by its place when the
/// merge reaches it (a gzipped input, or one that can be read only once, is inflated into
/// the run's temporary folder first). Two users whose texts have the same digest are equal
/// without being read.
pub async fn compare(
    old: Vec<Input>,
    new: Vec<Input>,
    options: Options,
    mut each: impl FnMut(&Change) -> Result<()>,
) -> Result<Summary> {
    // Each side sorts in a pool of its own, half the limit: the side sorted first keeps
    // what it sorted until the merge ends, and in a pool shared with the other side it
    // could leave that side's sorts nothing to start with.
    let old_ctx = crate::pipeline::session(options.memory_limit / 2)?;
    let new_ctx = crate::pipeline::session(options.memory_limit / 2)?;
    let only = (!options.old_connections.is_empty()).then(|| {
        let connection = datafusion_functions_json::udfs::json_get_str_udf().call(vec![
            col("identities"),
            lit(0i64),
            lit("connection"),
        ]);
        connection.in_list(options.old_connections.iter().map(lit).collect(), false)
    });
    // Both sides are made plain at once (a gzipped side is inflated on a thread of its own).
    let (old_plain, new_plain) = std::thread::scope(|scope| {
        let old = scope.spawn(|| Texts::open(&old, "old", options.max_line));
        let new = Texts::open(&new, "new", options.max_line);
        let old = old
            .join()
            .unwrap_or_else(|_| Err(Error::usage("diff", "the old side's copy failed")));
        (old, new)
    });
    let (old_texts, old_inputs) = old_plain?;
    let (new_texts, new_inputs) = new_plain?;
    let old_users = source::open(old_inputs)?.with_max_line(options.max_line);
    let new_users = source::open(new_inputs)?.with_max_line(options.max_line);
    let mut old = Cursor::new(sorted(&old_ctx, old_users, options.key, only)?, old_texts).await?;
    let mut new = Cursor::new(sorted(&new_ctx, new_users, options.key, None)?, new_texts).await?;
    let mut summary = Summary::default();
    // Both sides are scanned and sorted at once; each waits for the other at the merge.
    futures::try_join!(old.key(), new.key())?;
    loop {
        let (a, b) = (old.key().await?, new.key().await?);
        let order = match (&a, &b) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            // Users without a key match nobody.
            (Some(None), Some(_)) => std::cmp::Ordering::Less,
            (Some(Some(_)), Some(None)) => std::cmp::Ordering::Greater,
            (Some(Some(x)), Some(Some(y))) => x.cmp(y),
        };
        match order {
            std::cmp::Ordering::Less => {
                if options.partial {
                    old.advance();
                    continue;
                }
                let user = old.user(&a)?;
                old.advance();
                summary.old_users += 1;
                summary.removed += 1;
                each(&Change {
                    key: a.flatten().unwrap_or_default(),
                    kind: Kind::Removed,
                    path: String::new(),
                    old: Some(user),
                    new: None,
                })?;
            }
            std::cmp::Ordering::Greater => {
                let user = new.user(&b)?;
                new.advance();
                summary.new_users += 1;
                summary.added += 1;
                each(&Change {
                    key: b.flatten().unwrap_or_default(),
                    kind: Kind::Added,
                    path: String::new(),
                    old: None,
                    new: Some(user),
                })?;
            }
            std::cmp::Ordering::Equal => {
                summary.old_users += 1;
                summary.new_users += 1;
                // The same text is the same user (not so for an update, which changes
                // `email_verified` when it leaves it out): told by the digests, without
                // reading either.
                if !options.partial && old.digest() == new.digest() {
                    old.advance();
                    new.advance();
                    summary.unchanged += 1;
                    continue;
                }
                let (old_user, new_user) = (old.user(&a)?, new.user(&b)?);
                old.advance();
                new.advance();
                let mut found = Vec::new();
                if options.partial {
                    partial_fields(&old_user, &new_user, &mut found);
                } else {
                    fields("", Some(&old_user), Some(&new_user), &mut found);
                }
                if found.is_empty() {
                    summary.unchanged += 1;
                    continue;
                }
                summary.changed += 1;
                let key = b.flatten().unwrap_or_default();
                for (path, old, new) in found {
                    *summary.paths.entry(path.clone()).or_default() += 1;
                    each(&Change {
                        key: key.clone(),
                        kind: Kind::Changed,
                        path,
                        old,
                        new,
                    })?;
                }
            }
        }
    }
    Ok(summary)
}

/// The users of `source` that pass `filter`, as their key, their ordinal (the place of the
/// user's text in its input) and the digest of their text, sorted by key (users without one
/// last). Users that share a key stay in input order, however far the sort spills: the
/// ordinal breaks ties.
fn sorted(
    ctx: &SessionContext,
    source: source::Source,
    key: Key,
    filter: Option<Expr>,
) -> Result<DataFrame> {
    use datafusion::functions::expr_fn::{lower, starts_with, substr};
    let table = UsersTable::with_ordinal(source, ORDINAL)
        .with_digest(DIGEST)
        .ok_or_else(|| Error::Internal("a digest needs an ordinal".into()))?;
    let mut frame = table.frame(ctx)?;
    if let Some(filter) = filter {
        frame = frame.filter(filter)?;
    }
    let key = match key {
        Key::UserId => when(
            starts_with(col("user_id"), lit("auth0|")),
            substr(col("user_id"), lit(7i64)),
        )
        .otherwise(col("user_id"))?,
        Key::Email => lower(col("email")),
    };
    let ordinal = col(Column::from_name(ORDINAL));
    let digest = col(Column::from_name(DIGEST));
    let frame = frame
        .select(vec![key.alias(KEY), ordinal.clone(), digest])?
        .sort(vec![
            col(Column::from_name(KEY)).sort(true, false),
            ordinal.sort(true, false),
        ])?;
    Ok(frame)
}

/// The name of the sorted key column.
const KEY: &str = "key";

/// The name of the ordinal column (the place of a user's text).
const ORDINAL: &str = "input order";

/// The name of the digest column (of a user's text).
const DIGEST: &str = "digest";

/// The texts of one side's users, read back by their places.
struct Texts {
    /// The side, as messages name it (`old`, `new`).
    side: &'static str,
    /// Per input: its bytes in a plain file.
    inputs: Vec<Plain>,
    /// The longest user accepted.
    max_line: usize,
    /// The text read last.
    buffer: Vec<u8>,
    /// Bytes to read first for a user: about half again the longest of the last users.
    guess: usize,
}

impl Texts {
    /// The inputs of one side as plain files, and the inputs to scan for the same users at
    /// the same places.
    fn open(inputs: &[Input], side: &'static str, max_line: usize) -> Result<(Texts, Vec<Input>)> {
        let mut plains = Vec::new();
        let mut scans = Vec::new();
        for input in inputs {
            let plain = Plain::open(input)?;
            scans.push(plain.input(input).map_err(read_error(plain.name()))?);
            plains.push(plain);
        }
        let texts = Texts {
            side,
            inputs: plains,
            max_line,
            buffer: Vec::new(),
            guess: 1024,
        };
        Ok((texts, scans))
    }

    /// The text of the user whose ordinal is `ordinal`: its line, or its object in an array.
    fn read(&mut self, ordinal: u64) -> Result<&[u8]> {
        let (input, position) = source::batches::place(ordinal);
        let plain = self
            .inputs
            .get(input)
            .ok_or_else(|| Error::usage("diff", format!("no input number {input}")))?;
        let mut want = self.guess;
        self.buffer.clear();
        let end = loop {
            let have = self.buffer.len();
            self.buffer.resize(want, 0);
            let n = plain
                .read_at(&mut self.buffer[have..], position + have as u64)
                .map_err(read_error(plain.name()))?;
            self.buffer.truncate(have + n);
            let whole = self.buffer.len() < want;
            let end = if plain.is_array() {
                value_end(&self.buffer, whole)
            } else {
                memchr::memchr(b'\n', &self.buffer[have..])
                    .map(|e| have + e)
                    .or(whole.then_some(self.buffer.len()))
            };
            if let Some(end) = end {
                break end;
            }
            if want > self.max_line {
                return Err(Error::usage(
                    format!("diff: {} side, {}", self.side, plain.name()),
                    format!(
                        "the user at byte {position} is longer than {} bytes",
                        self.max_line
                    ),
                ));
            }
            want *= 4;
        };
        self.guess = (end + end / 2).clamp(512, 1 << 16);
        Ok(&self.buffer[..end])
    }
}

/// Where the JSON value at the start of `bytes` ends; `None` when it may go on past them
/// (`whole`: the input ends there).
fn value_end(bytes: &[u8], whole: bool) -> Option<usize> {
    let mut jiter = jiter::Jiter::new(bytes);
    match jiter.next_skip() {
        Ok(_) => Some(jiter.current_index()),
        // A value cut short, or one that is not JSON (which the scan read whole before):
        // the rest of the input says which.
        Err(_) if !whole => None,
        Err(_) => Some(bytes.len()),
    }
}

/// One side, sorted by key, read user by user.
struct Cursor {
    stream: datafusion::execution::SendableRecordBatchStream,
    /// The keys, the ordinals and the digests of the current batch.
    keys: Vec<Option<String>>,
    ordinals: Vec<u64>,
    digests: Option<datafusion::arrow::array::FixedSizeBinaryArray>,
    row: usize,
    texts: Texts,
}

impl Cursor {
    async fn new(frame: DataFrame, texts: Texts) -> Result<Cursor> {
        let stream = frame
            .execute_stream()
            .await
            .map_err(Error::from_datafusion)?;
        Ok(Cursor {
            stream,
            keys: Vec::new(),
            ordinals: Vec::new(),
            digests: None,
            row: 0,
            texts,
        })
    }

    /// The current user's key: `None` at the end, `Some(None)` for a user without one.
    async fn key(&mut self) -> Result<Option<Option<String>>> {
        while self.row == self.keys.len() {
            let Some(batch) = self.stream.next().await else {
                return Ok(None);
            };
            let batch = batch.map_err(Error::from_datafusion)?;
            let keys = batch.column(0).as_string::<i32>();
            self.keys = (0..batch.num_rows())
                .map(|i| keys.is_valid(i).then(|| keys.value(i).to_string()))
                .collect();
            let ordinals = batch
                .column(1)
                .as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
            self.ordinals = ordinals.values().to_vec();
            self.digests = Some(batch.column(2).as_fixed_size_binary().clone());
            self.row = 0;
        }
        Ok(Some(self.keys[self.row].clone()))
    }

    /// The digest of the current user's text.
    fn digest(&self) -> Option<&[u8]> {
        self.digests.as_ref().map(|d| d.value(self.row))
    }

    /// The current user's text, as its input holds it.
    fn text(&mut self) -> Result<&[u8]> {
        self.texts.read(self.ordinals[self.row])
    }

    /// The current user as JSON, its `auth0|` prefix reconciled with a bare id; a user that
    /// cannot be compared (nested too deep) is an error naming it.
    fn user(&mut self, key: &Option<Option<String>>) -> Result<Value> {
        let side = self.texts.side;
        let mut user = Value::parse(self.text()?).map_err(|why| {
            let who = key.clone().flatten().unwrap_or_else(|| "(no key)".into());
            Error::usage(
                format!("diff: {side} user {who}"),
                format!("cannot be compared: {why}"),
            )
        })?;
        if let Value::Object(members) = &mut user
            && let Some(Value::String(id)) = members.get_mut("user_id")
            && let Some(bare) = id.strip_prefix("auth0|")
        {
            *id = bare.to_string();
        }
        Ok(user)
    }

    fn advance(&mut self) {
        self.row += 1;
    }
}

type Found = Vec<(String, Option<Value>, Option<Value>)>;

/// The differences between two values at `path`: objects member by member, others whole.
fn fields(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Found) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                fields(&child(path, key), a.get(key), b.get(key), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push((path.to_string(), a.cloned(), b.cloned())),
    }
}

/// An update's differences: the fields it holds, as Auth0 applies them (objects replaced
/// whole, so keys they leave out show as removed; `email_verified` false unless given).
/// The paths of the fields that the update row `new` would change in the user `old`, as
/// Auth0 applies an upsert (see the partial mode of [`compare`]).
pub fn update_paths(old: &Value, new: &Value) -> Vec<String> {
    let mut found = Vec::new();
    partial_fields(old, new, &mut found);
    found.into_iter().map(|(path, _, _)| path).collect()
}

fn partial_fields(old: &Value, new: &Value, out: &mut Found) {
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        return fields("", Some(old), Some(new), out);
    };
    let mut keys: Vec<&String> = new.keys().collect();
    keys.sort();
    for key in keys {
        fields(key, old.get(key), new.get(key), out);
    }
    if !new.contains_key("email_verified") {
        fields(
            "email_verified",
            old.get("email_verified"),
            Some(&Value::Bool(false)),
            out,
        );
    }
}

/// `path.key`, or `path["key"]` when the key is not an identifier.
fn child(path: &str, key: &str) -> String {
    let identifier = key
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    match (path.is_empty(), identifier) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", serde_json::Value::from(key)),
    }
}

/// The schema of a diff report: key, change, path, old, new (the values as JSON).
pub fn report_schema() -> Arc<Schema> {
    use datafusion::arrow::datatypes::{DataType, Field};
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, true),
        Field::new("change", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        schema::json_field("old"),
        schema::json_field("new"),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value written with serde_json's macro.
    use crate::json::MAX_DEPTH;

    fn json(value: serde_json::Value) -> Value {
        Value::parse(value.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn objects_are_compared_member_by_member() {
        let mut out = Vec::new();
        fields(
            "",
            Some(&json(
                serde_json::json!({"a": 1, "m": {"x": [1], "y": "k", "odd key": 1}, "gone": true}),
            )),
            Some(&json(
                serde_json::json!({"a": 1, "m": {"x": [1, 2], "odd key": 2}, "new": null}),
            )),
            &mut out,
        );
        let paths: Vec<&str> = out.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(paths, ["gone", "m[\"odd key\"]", "m.x", "m.y", "new"]);
        let mut out = Vec::new();
        partial_fields(
            &json(
                serde_json::json!({"email": "a@b.co", "email_verified": true, "user_metadata": {"a": 1, "b": 2}, "name": "A"}),
            ),
            &json(serde_json::json!({"email": "a@b.co", "user_metadata": {"a": 1}})),
            &mut out,
        );
        let paths: Vec<&str> = out.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(paths, ["user_metadata.b", "email_verified"]);
    }

    #[test]
    fn numbers_compare_by_their_text_and_deep_values_are_refused() {
        let a = Value::parse(b"{\"n\": 12345678901234567890123, \"z\": -0}").unwrap();
        let b = Value::parse(b"{\"n\": 12345678901234567890124, \"z\": 0}").unwrap();
        let mut out = Vec::new();
        fields("", Some(&a), Some(&b), &mut out);
        let paths: Vec<&str> = out.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(paths, ["n", "z"]);
        assert_eq!(a.to_string(), "{\"n\":12345678901234567890123,\"z\":-0}");
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 2),
            "]".repeat(MAX_DEPTH + 2)
        );
        // A user's object around values of MAX_DEPTH levels.
        assert!(Value::parse(&deep.as_bytes()[1..deep.len() - 1]).is_ok());
        let deeper = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 3),
            "]".repeat(MAX_DEPTH + 3)
        );
        assert!(Value::parse(deeper.as_bytes()).is_err());
        assert!(
            Value::parse(deep.as_bytes())
                .unwrap_err()
                .contains("deeper")
        );
        let twice = Value::parse(b"{\"a\": 1, \"a\": 2}").unwrap();
        assert_eq!(twice.get("a"), Some(&Value::Number("2".into())));
    }
}
