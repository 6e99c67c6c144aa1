//! The canonical Arrow schema of an Auth0 user: the first thing every input is turned into.
//!
//! Profile attributes that Auth0 documents get typed columns (text, boolean, integer).
//! Objects and arrays whose shape varies from user to user (`identities`, `user_metadata`,
//! `app_metadata`, `multifactor`) are kept as compact JSON text, so every value of every user
//! survives whatever its type. Whatever does not fit a typed column (a top-level key the schema
//! does not know, an explicit `null`, a value of an unexpected type) is kept in [`EXTRA`], a
//! JSON object of those keys, so that writing a user back gives the same JSON value.
//!
//! Timestamps (`created_at`, …) are text columns: Auth0 writes them as ISO 8601 in UTC, which
//! sorts and compares correctly as text and is written back with its exact characters.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// Name of the column that holds the keys that have no typed column, as a JSON object text.
pub const EXTRA: &str = "_extra";

/// Field-metadata key that marks a text column whose values are JSON texts.
pub const JSON_MARKER: &str = "userport.json";

/// How the values of a canonical column are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON string, stored as Utf8.
    Text,
    /// A JSON boolean.
    Bool,
    /// A JSON integer that fits 64 bits.
    Int,
    /// Any JSON value, stored as compact JSON text (Utf8 with the JSON marker).
    Json,
}

/// The profile attributes with typed columns, in schema order (`_extra` comes last).
pub const COLUMNS: &[(&str, Kind)] = &[
    ("user_id", Kind::Text),
    ("email", Kind::Text),
    ("email_verified", Kind::Bool),
    ("username", Kind::Text),
    ("phone_number", Kind::Text),
    ("phone_verified", Kind::Bool),
    ("name", Kind::Text),
    ("given_name", Kind::Text),
    ("family_name", Kind::Text),
    ("nickname", Kind::Text),
    ("picture", Kind::Text),
    ("locale", Kind::Text),
    ("created_at", Kind::Text),
    ("updated_at", Kind::Text),
    ("last_login", Kind::Text),
    ("last_ip", Kind::Text),
    ("last_password_reset", Kind::Text),
    ("logins_count", Kind::Int),
    ("blocked", Kind::Bool),
    ("identities", Kind::Json),
    ("user_metadata", Kind::Json),
    ("app_metadata", Kind::Json),
    ("multifactor", Kind::Json),
    ("multifactor_last_modified", Kind::Text),
];

/// A field whose Utf8 values are JSON texts (marked so that sinks render them as JSON).
pub fn json_field(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true).with_metadata(HashMap::from([(
        JSON_MARKER.to_string(),
        "true".to_string(),
    )]))
}

/// Whether a field holds JSON texts.
pub fn is_json(field: &Field) -> bool {
    field
        .metadata()
        .get(JSON_MARKER)
        .is_some_and(|v| v == "true")
}

/// The canonical schema: the typed columns of [`COLUMNS`], then [`EXTRA`].
pub fn user_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields: Vec<Field> = COLUMNS
            .iter()
            .map(|&(name, kind)| match kind {
                Kind::Text => Field::new(name, DataType::Utf8, true),
                Kind::Bool => Field::new(name, DataType::Boolean, true),
                Kind::Int => Field::new(name, DataType::Int64, true),
                Kind::Json => json_field(name),
            })
            .collect();
        fields.push(json_field(EXTRA));
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// The index and kind of a typed column, by its name.
pub fn column(name: &str) -> Option<(usize, Kind)> {
    index(name.as_bytes()).map(|i| (i, COLUMNS[i].1))
}

/// The index of a typed column in [`COLUMNS`], by the bytes of its name. Called for every
/// key of every user, so it is a `match` (compiled to a switch on the length, then a
/// comparison) rather than a search of the list; a test keeps the two in step.
pub fn index(name: &[u8]) -> Option<usize> {
    Some(match name {
        b"user_id" => 0,
        b"email" => 1,
        b"email_verified" => 2,
        b"username" => 3,
        b"phone_number" => 4,
        b"phone_verified" => 5,
        b"name" => 6,
        b"given_name" => 7,
        b"family_name" => 8,
        b"nickname" => 9,
        b"picture" => 10,
        b"locale" => 11,
        b"created_at" => 12,
        b"updated_at" => 13,
        b"last_login" => 14,
        b"last_ip" => 15,
        b"last_password_reset" => 16,
        b"logins_count" => 17,
        b"blocked" => 18,
        b"identities" => 19,
        b"user_metadata" => 20,
        b"app_metadata" => 21,
        b"multifactor" => 22,
        b"multifactor_last_modified" => 23,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_every_column_then_extra() {
        let schema = user_schema();
        assert_eq!(schema.fields().len(), COLUMNS.len() + 1);
        assert_eq!(schema.field(COLUMNS.len()).name(), EXTRA);
        assert!(is_json(schema.field_with_name("user_metadata").unwrap()));
        assert!(!is_json(schema.field_with_name("email").unwrap()));
        assert_eq!(column("logins_count"), Some((17, Kind::Int)));
        for (i, (name, _)) in COLUMNS.iter().enumerate() {
            assert_eq!(index(name.as_bytes()), Some(i), "{name}");
        }
        assert_eq!(index(b"user_ID"), None);
        assert_eq!(index(b""), None);
        assert!(
            COLUMNS.len() < 64,
            "the decoder keeps a 64-bit mask of columns"
        );
    }
}
