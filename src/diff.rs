//! Two user sets compared user by user: the users added, removed and changed, and each
//! changed field as a JSON path with its old and new value.
//!
//! Both sides are read by the source into the canonical schema, sorted by the key (`user_id`
//! without its `auth0|` prefix, or the email in lower case) with DataFusion's external sort,
//! which spills to disk past the memory limit, and merged as two sorted streams: two exports
//! of millions of users are compared in bounded memory. Each user is rendered back into its
//! JSON object; paired users are compared member by member (objects recursively; arrays and
//! other values whole).
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
use crate::sink::Shape;
use crate::sink::json::ObjectWriter;
use crate::source::{self, Input, schema};

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
    /// Memory the join's sorts may hold before they spill.
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
pub async fn compare(
    old: Vec<Input>,
    new: Vec<Input>,
    options: Options,
    mut each: impl FnMut(&Change) -> Result<()>,
) -> Result<Summary> {
    let ctx = crate::pipeline::session(options.memory_limit)?;
    let old_users = source::open(old)?.with_max_line(options.max_line);
    let new_users = source::open(new)?.with_max_line(options.max_line);
    let only = (!options.old_connections.is_empty()).then(|| {
        let connection = datafusion_functions_json::udfs::json_get_str_udf().call(vec![
            col("identities"),
            lit(0i64),
            lit("connection"),
        ]);
        connection.in_list(options.old_connections.iter().map(lit).collect(), false)
    });
    let mut old = Cursor::new(sorted(&ctx, old_users, options.key, only)?).await?;
    let mut new = Cursor::new(sorted(&ctx, new_users, options.key, None)?).await?;
    let mut summary = Summary::default();
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
                let user = old.user("old", &a)?;
                old.advance();
                if options.partial {
                    continue;
                }
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
                let user = new.user("new", &b)?;
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
                let (old_user, new_user) = (old.user("old", &a)?, new.user("new", &b)?);
                old.advance();
                new.advance();
                summary.old_users += 1;
                summary.new_users += 1;
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

/// The users of `source` that pass `filter`, as the key then the user's columns, sorted by
/// key (users without one last). Users that share a key stay in input order, however far
/// the sort spills: the scan's ordinal breaks ties.
fn sorted(
    ctx: &SessionContext,
    source: source::Source,
    key: Key,
    filter: Option<Expr>,
) -> Result<DataFrame> {
    use datafusion::functions::expr_fn::{lower, starts_with, substr};
    let names: Vec<String> = schema::user_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let ordinal = "input order";
    let mut frame = UsersTable::with_ordinal(source, ordinal).frame(ctx)?;
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
    let key_name = "key";
    let columns = std::iter::once(key.alias(key_name))
        .chain(names.iter().map(|n| col(Column::from_name(n))))
        .chain(std::iter::once(col(Column::from_name(ordinal))));
    let frame = frame.select(columns)?.sort(vec![
        col(Column::from_name(key_name)).sort(true, false),
        col(Column::from_name(ordinal)).sort(true, false),
    ])?;
    let out = std::iter::once(col(Column::from_name(key_name)))
        .chain(names.iter().map(|n| col(Column::from_name(n))));
    Ok(frame.select(out)?)
}

/// One side, sorted by key, read user by user.
struct Cursor {
    stream: datafusion::execution::SendableRecordBatchStream,
    /// The keys and the users (as JSON) of the current batch.
    keys: Vec<Option<String>>,
    users: Vec<Vec<u8>>,
    row: usize,
    objects: ObjectWriter,
}

impl Cursor {
    async fn new(frame: DataFrame) -> Result<Cursor> {
        let stream = frame
            .execute_stream()
            .await
            .map_err(Error::from_datafusion)?;
        Ok(Cursor {
            stream,
            keys: Vec::new(),
            users: Vec::new(),
            row: 0,
            objects: ObjectWriter::new(&schema::user_schema(), Shape::Users),
        })
    }

    /// The current user's key: `None` at the end, `Some(None)` for a user without one.
    async fn key(&mut self) -> Result<Option<Option<String>>> {
        while self.row == self.keys.len() {
            let Some(batch) = self.stream.next().await else {
                return Ok(None);
            };
            let batch = batch.map_err(Error::from_datafusion)?;
            let user = schema::user_schema();
            let keys = batch.column(0).as_string::<i32>();
            self.keys = (0..batch.num_rows())
                .map(|i| keys.is_valid(i).then(|| keys.value(i).to_string()))
                .collect();
            // The key, then the user's columns.
            let users = batch.project(&(1..=user.fields().len()).collect::<Vec<_>>())?;
            self.users = self.objects.rows(&user, &users, 0..batch.num_rows())?;
            self.row = 0;
        }
        Ok(Some(self.keys[self.row].clone()))
    }

    /// The current user as JSON, its `auth0|` prefix reconciled with a bare id; a user that
    /// cannot be compared (nested too deep) is an error naming it.
    fn user(&self, side: &str, key: &Option<Option<String>>) -> Result<Value> {
        let mut user = Value::parse(&self.users[self.row]).map_err(|why| {
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
