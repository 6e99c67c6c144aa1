//! The rows of a query (`prepare --sql`/`--file`) → users, by their column names: a column
//! named after an import attribute is that attribute, a dotted name nests
//! (`user_metadata.plan`, `app_metadata.roles`), and values are read as the attribute needs
//! them — `email_verified`, `phone_verified` and `blocked` from `true`/`false`, `t`/`f`,
//! `yes`/`no`, `1`/`0`; `user_metadata`, `app_metadata`, `custom_password_hash` and
//! `mfa_factors` from JSON text; text attributes from numbers (`id AS user_id`). An empty
//! text is no value. A column that maps to nothing is refused before any row is read.

use datafusion::arrow::array::Array as _;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;

use super::rules::{PROPERTIES, UPSERTABLE};
use crate::error::{Error, Result};
use crate::sink::json::{append_members, each_row};
use crate::sink::render::{Cells, write_json_string};
use crate::source::schema::{COLUMNS, EXTRA, is_json};

/// Attributes that hold objects, which dotted column names fill.
const NESTED: &[&str] = &["user_metadata", "app_metadata", "custom_password_hash"];
/// Attributes read as booleans.
const BOOLEANS: &[&str] = &["email_verified", "phone_verified", "blocked"];
/// Attributes read from JSON text.
const JSON_TEXT: &[&str] = &[
    "user_metadata",
    "app_metadata",
    "custom_password_hash",
    "mfa_factors",
];

/// How a column's values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// As the column holds them.
    AsIs,
    /// As a boolean (`true`, `t`, `yes`, `y`, `1` and their opposites, any case).
    Boolean,
    /// As JSON text (kept as a string when it is not JSON, for the rules to name).
    Json,
    /// As text (numbers written as strings).
    Text,
}

#[derive(Debug)]
enum Node {
    Leaf(usize, Read),
    Object(Vec<(String, Node)>),
}

/// How the columns of a query's result become a user object.
#[derive(Debug)]
pub struct Mapping {
    root: Vec<(String, Node)>,
    extra: Option<usize>,
}

impl Mapping {
    /// The mapping of `schema`'s columns, or an error naming the column that maps to no
    /// import attribute (`context`: how the user named the query).
    pub fn new(schema: &Schema, upsert: bool, context: &str) -> Result<Mapping> {
        let mut root: Vec<(String, Node)> = Vec::new();
        let mut extra = None;
        let attributes = if upsert { UPSERTABLE } else { PROPERTIES };
        for (i, field) in schema.fields().iter().enumerate() {
            let name = field.name().as_str();
            if name == EXTRA && is_json(field) {
                extra = Some(i);
                continue;
            }
            let mut path = name.split('.');
            let top = path.next().unwrap_or_default();
            let rest: Vec<&str> = path.collect();
            if rest.is_empty() {
                let known = PROPERTIES.contains(&name) || COLUMNS.iter().any(|(c, _)| *c == name);
                if !known {
                    return Err(unmapped(context, name, attributes));
                }
                if root.iter().any(|(k, _)| k == name) {
                    return Err(Error::usage(
                        context,
                        format!("two columns are named {name:?}"),
                    ));
                }
                let read = if BOOLEANS.contains(&name) {
                    Read::Boolean
                } else if JSON_TEXT.contains(&name) {
                    Read::Json
                } else if PROPERTIES.contains(&name) {
                    Read::Text
                } else {
                    Read::AsIs
                };
                root.push((name.to_string(), Node::Leaf(i, read)));
                continue;
            }
            if !NESTED.contains(&top) || rest.iter().any(|k| k.is_empty()) {
                return Err(unmapped(context, name, attributes));
            }
            let mut level = &mut root;
            for key in std::iter::once(top).chain(rest[..rest.len() - 1].iter().copied()) {
                let at = match level.iter().position(|(k, _)| k == key) {
                    Some(at) => at,
                    None => {
                        level.push((key.to_string(), Node::Object(Vec::new())));
                        level.len() - 1
                    }
                };
                level = match &mut level[at].1 {
                    Node::Object(children) => children,
                    Node::Leaf(..) => {
                        return Err(Error::usage(
                            context,
                            format!(
                                "the column {name:?} nests into {key:?}, which another column gives whole: give one or the other"
                            ),
                        ));
                    }
                };
            }
            let last = rest[rest.len() - 1];
            if level.iter().any(|(k, _)| k == last) {
                return Err(Error::usage(
                    context,
                    format!("the column {name:?} is given twice (or also whole)"),
                ));
            }
            level.push((last.to_string(), Node::Leaf(i, Read::AsIs)));
        }
        Ok(Mapping { root, extra })
    }

    /// Rows `rows` of `batch`, each as a user object.
    pub fn rows(
        &self,
        schema: &Schema,
        batch: &RecordBatch,
        rows: std::ops::Range<usize>,
    ) -> Result<Vec<Vec<u8>>> {
        each_row(schema, batch, rows, |columns, row, out, scratch| {
            out.push(b'{');
            let mut first = true;
            write_members(&self.root, columns, row, out, scratch, &mut first);
            if let Some(Cells::Json(extra)) = self.extra.map(|i| &columns[i])
                && extra.is_valid(row)
            {
                append_members(extra.value(row), out, first);
            }
            out.push(b'}');
        })
    }
}

fn unmapped(context: &str, name: &str, attributes: &[&str]) -> Error {
    Error::usage(
        context,
        format!(
            "the column {name:?} maps to no import attribute: name it as one ({}), nest it \
             (AS \"user_metadata.{name}\" or \"app_metadata.{name}\"), or leave it out",
            attributes.join(", ")
        ),
    )
}

/// Writes the members of `nodes` that have a value in `row`; `first` says whether none was
/// written yet at this level.
fn write_members(
    nodes: &[(String, Node)],
    columns: &[Cells<'_>],
    row: usize,
    out: &mut Vec<u8>,
    scratch: &mut String,
    first: &mut bool,
) {
    for (key, node) in nodes {
        let start = out.len();
        if !*first {
            out.push(b',');
        }
        write_json_string(key, out);
        out.push(b':');
        let written = match node {
            Node::Leaf(i, read) => leaf(&columns[*i], row, *read, out, scratch),
            Node::Object(children) => {
                out.push(b'{');
                let mut inner_first = true;
                write_members(children, columns, row, out, scratch, &mut inner_first);
                out.push(b'}');
                !inner_first
            }
        };
        if written {
            *first = false;
        } else {
            out.truncate(start);
        }
    }
}

/// Writes one value; false when there is none (null or empty text).
fn leaf(
    cells: &Cells<'_>,
    row: usize,
    read: Read,
    out: &mut Vec<u8>,
    scratch: &mut String,
) -> bool {
    if cells.is_null(row) {
        return false;
    }
    match (read, cells) {
        (_, Cells::Text(a)) if a.value(row).is_empty() => return false,
        (Read::Boolean, Cells::Text(a)) => {
            let text = a.value(row).trim();
            match text.to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "1" => out.extend_from_slice(b"true"),
                "false" | "f" | "no" | "n" | "0" => out.extend_from_slice(b"false"),
                _ => write_json_string(text, out),
            }
        }
        (Read::Boolean, Cells::Int(a)) if matches!(a.value(row), 0 | 1) => {
            out.extend_from_slice(if a.value(row) == 1 { b"true" } else { b"false" })
        }
        (Read::Json, Cells::Text(a)) => {
            let text = a.value(row).trim();
            if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
                out.extend_from_slice(text.as_bytes());
            } else {
                write_json_string(text, out);
            }
        }
        (Read::Text, Cells::Int(a)) => write_json_string(&a.value(row).to_string(), out),
        _ => cells.json(row, out, scratch),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};
    use std::sync::Arc;

    #[test]
    fn columns_become_attributes_nested_and_coerced() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Int64, true),
            Field::new("email", DataType::Utf8, true),
            Field::new("email_verified", DataType::Utf8, true),
            Field::new("user_metadata.plan", DataType::Utf8, true),
            Field::new("app_metadata", DataType::Utf8, true),
            Field::new("given_name", DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![7])),
            Arc::new(StringArray::from(vec!["a@b.co"])),
            Arc::new(StringArray::from(vec!["Yes"])),
            Arc::new(StringArray::from(vec!["pro"])),
            Arc::new(StringArray::from(vec![r#"{"roles":["x"]}"#])),
            Arc::new(StringArray::from(vec![""])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let mapping = Mapping::new(&schema, false, "--sql").unwrap();
        let rows = mapping.rows(&schema, &batch, 0..1).unwrap();
        assert_eq!(
            String::from_utf8(rows[0].clone()).unwrap(),
            r#"{"user_id":"7","email":"a@b.co","email_verified":true,"user_metadata":{"plan":"pro"},"app_metadata":{"roles":["x"]}}"#
        );
    }

    #[test]
    fn a_column_that_maps_to_nothing_is_named() {
        let schema = Schema::new(vec![Field::new("first_name", DataType::Utf8, true)]);
        let e = Mapping::new(&schema, false, "--file q.sql")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--file q.sql: the column \"first_name\" maps to no import attribute"),
            "{e}"
        );
    }
}
