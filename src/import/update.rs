//! Updates that lose nothing: the rows of a query (a key and new values) merged into the
//! users of a base export, so that an upsert file carries every metadata key the change does
//! not name (Auth0 replaces metadata objects whole) and every other upsertable field as the
//! base has it.
//!
//! A change row holds the key (`user_id`, with or without `auth0|`, or `email`, without
//! regard to case) and new values: upsertable fields (`given_name`, …), whole metadata
//! objects (merged key by key into the current ones, or replacing them with
//! `replace_metadata`), or single keys named by a dotted column (`user_metadata.plan`,
//! `app_metadata.flags.beta`), which set that key — or remove it when the value is null;
//! a dotted column ending in `[+]` adds its value to the array there unless it holds it
//! already (`app_metadata.roles[+]`), one ending in `[-]` takes it out. Other null values
//! leave the field as it is.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::json::Value;
use datafusion::prelude::DataFrame;
use futures::StreamExt;

/// An object's members.
type Map = BTreeMap<String, Value>;

use super::prepare::{Manifest, Preparer, Settings};
use super::rules::UPSERTABLE;
use crate::diff::Key;
use crate::error::{Error, Result};
use crate::sink::Shape;
use crate::sink::json::ObjectWriter;

/// One value a change sets: a top-level field, or a key below a metadata object.
#[derive(Debug, Clone, PartialEq)]
struct Set {
    /// The top-level field (`user_metadata`, `given_name`, …).
    field: String,
    /// Keys below it (empty: the whole field).
    keys: Vec<String>,
    /// The value (`None`: SQL NULL).
    value: Option<Value>,
    /// What to do with it.
    op: Op,
}

/// How a change's value is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Set the value (remove the key when null).
    Set,
    /// Add the value to the array unless it holds it (`[+]`).
    Add,
    /// Take the value out of the array (`[-]`).
    Remove,
}

/// The changes of a query, by user key.
#[derive(Debug, Default)]
pub struct Changes {
    key: Option<Key>,
    by_key: HashMap<String, Vec<Set>>,
    order: Vec<String>,
}

impl Changes {
    /// How many users the changes name.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// The key of a value under `key`: `user_id` without `auth0|`, emails in lower case.
fn normalize(key: Key, value: &str) -> String {
    match key {
        Key::UserId => value.strip_prefix("auth0|").unwrap_or(value).to_string(),
        Key::Email => value.to_lowercase(),
    }
}

/// Runs the change query and collects its rows by key.
pub async fn changes(frame: DataFrame, context: &str) -> Result<Changes> {
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let key = if names.iter().any(|n| n == "user_id") {
        Key::UserId
    } else if names.iter().any(|n| n == "email") {
        Key::Email
    } else {
        return Err(Error::usage(
            context,
            "the query must return the users' key: a column user_id or email",
        ));
    };
    let key_name = match key {
        Key::UserId => "user_id",
        Key::Email => "email",
    };
    let mut sets = Vec::new();
    for name in &names {
        if name == key_name || (key == Key::UserId && name == "email") {
            continue;
        }
        let (path, op) = match (name.strip_suffix("[+]"), name.strip_suffix("[-]")) {
            (Some(p), _) => (p, Op::Add),
            (_, Some(p)) => (p, Op::Remove),
            _ => (name.as_str(), Op::Set),
        };
        let mut parts = path.split('.');
        let field = parts.next().unwrap_or_default().to_string();
        let keys: Vec<String> = parts.map(str::to_string).collect();
        let allowed = UPSERTABLE.contains(&field.as_str())
            && (keys.is_empty() || matches!(field.as_str(), "user_metadata" | "app_metadata"))
            && keys.iter().all(|k| !k.is_empty())
            && (op == Op::Set || !keys.is_empty());
        if !allowed {
            return Err(Error::usage(
                context,
                format!(
                    "the column {name:?} is not something an upsert changes: use {} or \
                     user_metadata.KEY / app_metadata.KEY (and KEY[+] / KEY[-] for arrays)",
                    UPSERTABLE[1..].join(", ")
                ),
            ));
        }
        sets.push((name.clone(), field, keys, op));
    }
    // Each value as JSON: rows rendered as objects of all their columns (nulls kept).
    let objects = ObjectWriter::new(&schema, Shape::Columns);
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(Error::from_datafusion)?;
    let mut changes = Changes {
        key: Some(key),
        ..Changes::default()
    };
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(Error::from_datafusion)?;
        for object in objects.rows(&schema, &batch, 0..batch.num_rows())? {
            let Ok(Value::Object(mut values)) = Value::parse(&object) else {
                continue;
            };
            let Some(Value::String(id)) = values.remove(key_name) else {
                return Err(Error::usage(
                    context,
                    format!("a row has no {key_name}: every change needs the user's key"),
                ));
            };
            let id = normalize(key, &id);
            let entry = changes.by_key.entry(id.clone()).or_insert_with(|| {
                changes.order.push(id.clone());
                Vec::new()
            });
            for (name, field, keys, op) in &sets {
                let value = values.remove(name).filter(|v| !v.is_null());
                entry.push(Set {
                    field: field.clone(),
                    keys: keys.clone(),
                    value,
                    op: *op,
                });
            }
        }
    }
    Ok(changes)
}

/// Applies `sets` to `user` (a whole user of the base).
fn apply(user: &mut Map, sets: &[Set], replace_metadata: bool) {
    let mut replaced: Vec<&str> = Vec::new();
    'sets: for set in sets {
        let metadata = matches!(set.field.as_str(), "user_metadata" | "app_metadata");
        if replace_metadata && metadata && !replaced.contains(&set.field.as_str()) {
            // Replaced: the change's keys are all the object will hold.
            replaced.push(&set.field);
            user.insert(set.field.clone(), Value::Object(Map::new()));
        }
        match (&set.value, set.keys.is_empty()) {
            (None, true) => {}
            (Some(Value::Object(new)), true) if metadata => {
                let Some(slot) = object_at(user, &set.field) else {
                    continue;
                };
                for (k, v) in new {
                    slot.insert(k.clone(), v.clone());
                }
            }
            (Some(value), true) => {
                user.insert(set.field.clone(), value.clone());
            }
            (value, false) => {
                let Some(mut slot) = object_at(user, &set.field) else {
                    continue;
                };
                for key in &set.keys[..set.keys.len() - 1] {
                    let Some(next) = object_at(slot, key) else {
                        continue 'sets;
                    };
                    slot = next;
                }
                let Some(last) = set.keys.last() else {
                    continue;
                };
                match (set.op, value) {
                    (Op::Set, Some(v)) => {
                        slot.insert(last.clone(), v.clone());
                    }
                    (Op::Set, None) => {
                        slot.remove(last);
                    }
                    (_, None) => {}
                    (op, Some(v)) => {
                        let slot = slot
                            .entry(last.clone())
                            .or_insert_with(|| Value::Array(Vec::new()));
                        if !matches!(slot, Value::Array(_)) {
                            // A single value becomes the first item of the array.
                            let single = std::mem::replace(slot, Value::Null);
                            *slot = Value::Array(if single.is_null() {
                                vec![]
                            } else {
                                vec![single]
                            });
                        }
                        let Value::Array(items) = slot else {
                            continue;
                        };
                        if op == Op::Add && !items.contains(v) {
                            items.push(v.clone());
                        } else if op == Op::Remove {
                            items.retain(|item| item != v);
                        }
                    }
                }
            }
        }
    }
}

/// The object under `key`, made when it is absent or not an object (always `Some`).
fn object_at<'m>(map: &'m mut Map, key: &str) -> Option<&'m mut Map> {
    let slot = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !matches!(slot, Value::Object(_)) {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(members) => Some(members),
        _ => None,
    }
}

/// Streams the users of `base`, merges the changes into the users they name, and prepares
/// the merged users as upsert rows; returns the manifest and the keys that named no user.
pub async fn prepare(
    base: DataFrame,
    mut changes: Changes,
    replace_metadata: bool,
    settings: &Settings,
) -> Result<(Manifest, Vec<String>)> {
    let key = changes.key.unwrap_or(Key::UserId);
    let key_name = match key {
        Key::UserId => "user_id",
        Key::Email => "email",
    };
    let schema = Arc::new(base.schema().as_arrow().clone());
    let objects = ObjectWriter::new(&schema, Shape::Users);
    let mut preparer = Preparer::new(settings)?;
    let mut stream = base
        .execute_stream()
        .await
        .map_err(Error::from_datafusion)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(Error::from_datafusion)?;
        for object in objects.rows(&schema, &batch, 0..batch.num_rows())? {
            let mut user = match Value::parse(&object) {
                Ok(Value::Object(user)) => user,
                Ok(_) => continue,
                Err(e) => {
                    return Err(Error::usage(
                        "--base",
                        format!("a user of the base cannot be read back as JSON: {e}"),
                    ));
                }
            };
            let Some(Value::String(id)) = user.get(key_name) else {
                continue;
            };
            let Some(sets) = changes.by_key.remove(&normalize(key, id)) else {
                continue;
            };
            apply(&mut user, &sets, replace_metadata);
            // An update leaves the block as the tenant has it: an upsert row cannot carry
            // `blocked` (a change cannot name it either).
            user.remove("blocked");
            // Numbers keep their exact text (a big integer, `-0`, `1e-07`).
            let merged = Value::Object(user).to_string().into_bytes();
            preparer.user(&merged)?;
        }
    }
    let unmatched: Vec<String> = changes
        .order
        .into_iter()
        .filter(|k| changes.by_key.contains_key(k))
        .collect();
    let mut text = serde_json::to_vec_pretty(&unmatched)
        .map_err(|e| Error::Internal(format!("the unmatched keys do not serialize: {e}")))?;
    text.push(b'\n');
    preparer.add_file(super::prepare::UNMATCHED, &text)?;
    Ok((preparer.finish()?, unmatched))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value written with serde_json's macro.
    macro_rules! json {
        ($($t:tt)+) => {
            Value::parse(serde_json::json!($($t)+).to_string().as_bytes()).unwrap()
        };
    }

    fn members(value: Value) -> Map {
        match value {
            Value::Object(members) => members,
            other => panic!("not an object: {other}"),
        }
    }

    fn set(field: &str, keys: &[&str], value: Option<Value>) -> Set {
        Set {
            field: field.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            value,
            op: Op::Set,
        }
    }

    #[test]
    fn changes_merge_into_the_current_metadata() {
        let mut user = members(
            json!({"email": "a@b.co", "user_metadata": {"plan": "free", "theme": "dark"},
                              "app_metadata": {"roles": ["a"], "tenant": 7}}),
        );
        apply(
            &mut user,
            &[
                set("user_metadata", &["plan"], Some(json!("pro"))),
                set("app_metadata", &[], Some(json!({"roles": ["a", "b"]}))),
                set("user_metadata", &["old"], None),
                set("app_metadata", &["flags", "beta"], Some(json!(true))),
                set("given_name", &[], None),
            ],
            false,
        );
        assert_eq!(
            Value::Object(user.clone()),
            json!({"email": "a@b.co", "user_metadata": {"plan": "pro", "theme": "dark"},
                   "app_metadata": {"roles": ["a", "b"], "tenant": 7, "flags": {"beta": true}}})
        );
        apply(
            &mut user,
            &[set("user_metadata", &["plan"], Some(json!("team")))],
            true,
        );
        assert_eq!(user["user_metadata"], json!({"plan": "team"}));
        let roles = |user: &Map| user["app_metadata"].get("roles").cloned();
        let add = |v: &str| Set {
            op: Op::Add,
            ..set("app_metadata", &["roles"], Some(json!(v)))
        };
        apply(&mut user, &[add("b"), add("c")], false);
        assert_eq!(roles(&user), Some(json!(["a", "b", "c"])));
        let remove = Set {
            op: Op::Remove,
            ..set("app_metadata", &["roles"], Some(json!("a")))
        };
        apply(&mut user, &[remove], false);
        assert_eq!(roles(&user), Some(json!(["b", "c"])));
        // Numbers keep their text through a merge.
        let mut user = members(
            Value::parse(br#"{"user_metadata":{"big":12345678901234567890123,"small":1e-07}}"#)
                .unwrap(),
        );
        apply(
            &mut user,
            &[set("user_metadata", &["plan"], Some(json!("pro")))],
            false,
        );
        assert_eq!(
            Value::Object(user).to_string(),
            r#"{"user_metadata":{"big":12345678901234567890123,"plan":"pro","small":1e-07}}"#
        );
    }
}
