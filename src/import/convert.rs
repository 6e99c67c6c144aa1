//! One exported user → one Auth0 import row, or the reasons it cannot be one.
//!
//! What Auth0's import documentation asks for, done per user: the `auth0|` prefix comes off
//! `user_id` (Auth0 adds it back; left on, the user becomes `auth0|auth0|…`); the fields an
//! export has and an import does not take (`created_at`, `logins_count`, `identities`, …) are
//! dropped and counted; `email_verified` is always written (Auth0 resets it to false when it
//! is absent); password hashes are kept. Users that bulk import cannot create (social,
//! enterprise and passwordless identities) are refused, and every row is checked by the
//! [`rules`](super::rules) before it is accepted.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use super::hashes::Hashes;
use super::rules::{self, Code, Options, Origin, PROPERTIES, Problem, UPSERTABLE};
use super::seen::{Key, fingerprint};
use crate::json::skim::{Shape, Skim};
use crate::json::{Raw, clean_into, cleaned, laid_members, last, shaped_members};
use crate::sink::render::write_json_string;

/// How users are converted.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    /// Write upsert rows: only the fields an upsert changes, `email` as the key.
    pub upsert: bool,
    /// Keep only the users of this database connection (others are skipped, not refused).
    pub connection: Option<String>,
    /// Import users whose password hash Auth0 cannot verify without a password (instead of
    /// refusing them).
    pub unconvertible_without_password: bool,
    /// Password hashes from Auth0's hash export, written into the rows of the users they
    /// belong to (`prepare --hashes`).
    pub hashes: Option<std::sync::Arc<Hashes>>,
}

/// An import row ready to be written.
#[derive(Debug, Clone)]
pub struct Row {
    /// The row as compact JSON.
    pub json: Vec<u8>,
    /// Its email, `user_id` (as written, no prefix), `username` and database connection, one
    /// after the other: one allocation for the four, made on a conversion thread and freed
    /// on the thread that writes the row. Read by [`Row::email`] and the like.
    keys: String,
    /// Where each of the four ends in `keys` (each starts where the one before it ends);
    /// `None` for one the row does not have.
    ends: [Option<u32>; 4],
    /// The fingerprints ([`super::seen::fingerprint`]) of its email, `user_id` and
    /// `username`, 0 for a key it does not have: made where the row is, so that the
    /// duplicate checks, which take the users in order, only look them up.
    pub prints: [u64; 3],
    /// The top-level fields left out.
    pub dropped: Left,
    /// How many linked identities were left behind.
    pub linked_identities: u64,
    /// Whether `email_verified: false` was written because the user had none.
    pub email_verified_added: bool,
    /// The format of a password hash Auth0 cannot verify, left out of the row, and why.
    pub without_password: Option<(String, String)>,
    /// With hashes to merge: whether this database user's hash was found (`Some(false)`: it
    /// has none in the hash export).
    pub hash_found: Option<bool>,
}

impl Row {
    /// Its email.
    pub fn email(&self) -> &str {
        self.key(0).unwrap_or_default()
    }

    /// Its `user_id` as written (no prefix), when it has one.
    pub fn user_id(&self) -> Option<&str> {
        self.key(1)
    }

    /// Its `username`, when it has one.
    pub fn username(&self) -> Option<&str> {
        self.key(2)
    }

    /// The database connection it came from, when the input says.
    pub fn connection(&self) -> Option<&str> {
        self.key(3)
    }

    fn key(&self, i: usize) -> Option<&str> {
        let end = self.ends[i]? as usize;
        let start = self.ends[..i].iter().rev().find_map(|&e| e).unwrap_or(0) as usize;
        self.keys.get(start..end)
    }
}

/// The top-level fields left out of one row: those of the export schema
/// ([`crate::source::schema::COLUMNS`], nearly all of them) by their column's bit, the others
/// by name.
#[derive(Debug, Clone, Default)]
pub struct Left {
    /// Bit `i`: column `i` was left out (its value not null).
    columns: u64,
    /// Bit `i`: column `i` was left out, its value null.
    nulls: u64,
    /// The other fields, each with whether its value was null.
    others: Vec<(String, bool)>,
}

impl Left {
    /// Notes the top-level field `key` (of the schema's `column`, if any) left out (`null`:
    /// its value was null).
    fn add(&mut self, key: &str, column: Option<usize>, null: bool) {
        match (column, null) {
            (Some(i), false) => self.columns |= 1 << i,
            (Some(i), true) => self.nulls |= 1 << i,
            (None, null) => self.others.push((key.to_string(), null)),
        }
    }

    /// The fields left out that had a value (not null): those of the schema in its order,
    /// then the others in the user's.
    pub fn given(&self) -> impl Iterator<Item = &str> {
        let columns = crate::source::schema::COLUMNS.iter().enumerate();
        let known = columns.filter(|(i, _)| self.columns & (1 << i) != 0);
        let others = self.others.iter().filter(|(_, null)| !null);
        known
            .map(|(_, (name, _))| *name)
            .chain(others.map(|(name, _)| name.as_str()))
    }
}

/// What became of one user.
#[derive(Debug)]
pub enum Outcome {
    /// An import row.
    Row(Row),
    /// A user of another connection than the one asked for.
    Skipped,
    /// A user Auth0 would refuse, with every reason; the row as far as it was built.
    Refused {
        /// The reasons.
        problems: Vec<Problem>,
        /// The import row as prepared, when conversion got that far.
        row: Option<Vec<u8>>,
        /// The user's own `user_id` and email as [`who`] writes them, when conversion read
        /// its members.
        who: Option<Vec<u8>>,
    },
    /// The conversion could not be made (a hash file that cannot be read back).
    Failed(crate::error::Error),
}

/// Counts of what conversion left out, for the summary.
#[derive(Debug, Clone, Default)]
pub struct Dropped {
    /// Per column of the export schema, how many written users had it left out: with a
    /// value, then null. See [`Dropped::fields`].
    columns: [[u64; 2]; crate::source::schema::COLUMNS.len()],
    /// The same for the other fields, by name (`FIELD (null)` for null values).
    others: BTreeMap<String, u64>,
    /// How many linked (secondary) identities were left behind.
    pub linked_identities: u64,
    /// How many users got `email_verified: false` written because they had none.
    pub email_verified_added: u64,
}

impl Dropped {
    /// Counts what was left out of a row that is written.
    pub fn count(&mut self, row: &Row) {
        let left = &row.dropped;
        for (null, mut bits) in [(0, left.columns), (1, left.nulls)] {
            while bits != 0 {
                self.columns[bits.trailing_zeros() as usize][null] += 1;
                bits &= bits - 1;
            }
        }
        for (name, null) in &left.others {
            match null {
                false => tally(&mut self.others, name),
                true => tally(&mut self.others, &format!("{name} (null)")),
            }
        }
        self.linked_identities += row.linked_identities;
        self.email_verified_added += u64::from(row.email_verified_added);
    }

    /// Per top-level field, how many written users had it left out (`FIELD (null)` for null
    /// values).
    pub fn fields(&self) -> BTreeMap<String, u64> {
        let mut fields = self.others.clone();
        let columns = crate::source::schema::COLUMNS.iter().zip(&self.columns);
        for ((name, _), &[given, null]) in columns {
            if given > 0 {
                *fields.entry(name.to_string()).or_default() += given;
            }
            if null > 0 {
                *fields.entry(format!("{name} (null)")).or_default() += null;
            }
        }
        fields
    }
}

/// Counts one more `key` in `counts` (the key is copied only the first time).
pub fn tally(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            counts.insert(key.to_string(), 1);
        }
    }
}

/// The primary identity of an exported user, and how many linked identities follow it.
#[derive(Default)]
struct Identity<'t> {
    provider: Option<Cow<'t, str>>,
    connection: Option<Cow<'t, str>>,
    linked: u64,
}

/// For each member, its column of the canonical schema, if it has one, and whether its key
/// comes again later (the last one wins). The keys of the schema (most of a user's) are told
/// apart by their column; the others are compared with the later ones.
fn columns_and_repeats(members: &[(Cow<'_, str>, Raw<'_>)]) -> Vec<(Option<usize>, bool)> {
    let mut found = vec![(None, false); members.len()];
    let mut columns: u64 = 0;
    for (i, (key, _)) in members.iter().enumerate().rev() {
        let column = crate::source::schema::index(key.as_bytes());
        let again = match column {
            Some(column) => {
                let bit = 1u64 << column;
                let again = columns & bit != 0;
                columns |= bit;
                again
            }
            None => members[i + 1..].iter().any(|(k, _)| k == key),
        };
        found[i] = (column, again);
    }
    found
}

/// Converts the exported user `object` (one JSON object text) into an import row. The
/// user's members are copied as they are written (compacted, a repeated key inside a value
/// resolved as the reader resolves it), and the row is checked by the rules where it is.
/// `scan` is the scanner (its buffers kept from one user to the next).
pub fn convert(object: &[u8], conversion: &Conversion, scan: &mut Skim) -> Outcome {
    match simdutf8::basic::from_utf8(object) {
        Ok(text) => convert_text(text, None, conversion, scan),
        Err(_) => refused(Code::InvalidJson, "", "not valid UTF-8".into()),
    }
}

/// [`convert`] of a user whose text is known to be UTF-8 (a text column of the scan), with
/// its layout when the scan's checking pass laid its members out
/// ([`crate::json::skim::Laid`]): the text is then not scanned again.
pub fn convert_text(
    object: &str,
    layout: Option<&[u8]>,
    conversion: &Conversion,
    scan: &mut Skim,
) -> Outcome {
    // One checking pass finds the members and how each value is written: a value written
    // clean (no white space, no repeated key) is copied as it is.
    let found = match layout.and_then(|layout| laid_members(object, layout)) {
        Some(laid) => Ok(Some(laid)),
        None => shaped_members(scan, object, true),
    };
    let (members, shapes) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            return refused(
                Code::InvalidType,
                "",
                "the user is not a JSON object".into(),
            );
        }
        Err(f) => {
            return refused(
                Code::InvalidJson,
                "",
                format!("not valid JSON: {f} at byte {}", f.offset + 1),
            );
        }
    };
    fn raw<'a>(value: &Raw<'a>) -> &'a [u8] {
        value.0.as_bytes()
    }
    // The user's own strings are borrowed from its text (copied only to decode an escape).
    let identity = identity(&members, &shapes);
    let user_id = last(&members, "user_id").and_then(|id| id.string());
    let provider = identity.provider.as_deref().or_else(|| {
        user_id
            .as_deref()
            .and_then(|id| id.split_once('|'))
            .map(|(p, _)| p)
    });
    if let Some(wanted) = &conversion.connection
        && identity.connection.as_deref() != Some(wanted.as_str())
    {
        return Outcome::Skipped;
    }
    let mut problems = Vec::new();
    if let Some(provider) = provider.filter(|p| *p != "auth0") {
        let connection = identity.connection.as_deref().unwrap_or(provider);
        // Put together without formatting: a large share of an export can be such users.
        let message = if matches!(provider, "sms" | "email") {
            [
                "a passwordless (",
                provider,
                ") user: bulk import does not support passwordless connections; such users \
                 are created when they first sign in",
            ]
            .concat()
        } else {
            [
                "a ",
                provider,
                " identity (connection ",
                connection,
                "): bulk import creates users of database connections only; this user is \
                 created when they first sign in",
            ]
            .concat()
        };
        problems.push(Problem {
            pointer: "/identities/0/provider".into(),
            code: Code::UnsupportedIdentity,
            origin: Origin::Auth0,
            message,
        });
    }

    if !problems.is_empty() {
        // Not importable whatever its fields hold; a missing email is still worth naming.
        if !members
            .iter()
            .any(|(k, r)| k == "email" && raw(r) != b"null")
        {
            problems.push(Problem {
                pointer: "/email".into(),
                code: Code::ObjectRequired,
                origin: Origin::Schema,
                message: "email is required".into(),
            });
        }
        return Outcome::Refused {
            problems,
            row: None,
            who: Some(who(&members)),
        };
    }

    // The row, in the input's order of members; the last of a repeated key wins.
    let mut out = Vec::with_capacity(object.len());
    out.push(b'{');
    let mut first = true;
    let mut has_verified = false;
    let mut verified_added = false;
    let mut dropped = Left::default();
    let mut without_password = None;
    // Each member written: its key and where its value stands in `out`, for the rules.
    let mut written: Vec<(&str, std::ops::Range<usize>)> = Vec::with_capacity(members.len() + 1);
    // A value written clean already, or characters to write as a JSON string.
    let mut put = writer(|out: &mut Vec<u8>, key, value: Piece<'_>| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_string(key, out);
        out.push(b':');
        let start = out.len();
        match value {
            Piece::Json(value) => out.extend_from_slice(value),
            Piece::Text(text) => write_json_string(text, out),
        }
        written.push((key, start..out.len()));
    });
    let (mut email, mut written_id, mut username) = (None, None, None);
    let columns = columns_and_repeats(&members);
    let (allowed_columns, allowed_others) = &TAKEN[usize::from(conversion.upsert)];
    for (i, (key, member)) in members.iter().enumerate() {
        let (column, repeated) = columns[i];
        if repeated {
            continue;
        }
        let value = raw(member);
        if value == b"null" {
            dropped.add(key, column, true);
            continue;
        }
        if key == "custom_password_hash"
            && let Some((format, reason)) = unconvertible(value)
        {
            if conversion.unconvertible_without_password {
                without_password = Some((format, reason));
            } else {
                problems.push(Problem {
                    pointer: "/custom_password_hash".into(),
                    code: Code::UnconvertibleHash,
                    origin: Origin::Auth0,
                    message: format!("{format}: {reason}"),
                });
            }
            continue;
        }
        match key.as_ref() {
            "user_id" if !conversion.upsert => {
                let id = user_id.as_deref().unwrap_or_default();
                let id = match provider {
                    Some("auth0") | None => id.strip_prefix("auth0|").unwrap_or(id),
                    Some(_) => id,
                };
                if user_id.is_some() {
                    put(&mut out, key, Piece::Text(id));
                    written_id = Some(id);
                } else {
                    // Not a string: kept as it is, for the rules to name.
                    put(&mut out, key, Piece::Json(&cleaned(value, shapes[i])));
                }
            }
            "blocked" if conversion.upsert => {
                if value == b"true" {
                    problems.push(Problem {
                        pointer: "/blocked".into(),
                        code: Code::NotUpsertable,
                        origin: Origin::Auth0,
                        message: "a blocked user: an upsert cannot block users, so the block \
                                  would be lost; set blocked with the Management API (PATCH \
                                  /api/v2/users/{id} with {\"blocked\": true})"
                            .into(),
                    });
                } else {
                    dropped.add(key, column, false);
                }
            }
            k if column.map_or_else(
                || allowed_others.contains(&k),
                |c| allowed_columns & (1 << c) != 0,
            ) =>
            {
                put(&mut out, key, Piece::Json(&cleaned(value, shapes[i])));
                match k {
                    "email" => email = member.string(),
                    "username" => username = member.string(),
                    _ => {}
                }
                if k == "email" && !members.iter().any(|(k, _)| k == "email_verified") {
                    put(&mut out, "email_verified", Piece::Json(b"false"));
                    has_verified = true;
                    verified_added = true;
                }
                has_verified |= k == "email_verified";
            }
            _ => dropped.add(key, column, false),
        }
    }
    if !has_verified {
        put(&mut out, "email_verified", Piece::Json(b"false"));
        verified_added = true;
    }
    let mut hash_found = None;
    if let Some(hashes) = &conversion.hashes
        && !conversion.upsert
        && let Some(id) = user_id.as_deref()
        && !members
            .iter()
            .any(|(k, _)| k == "password_hash" || k == "custom_password_hash")
    {
        let id = if id.starts_with("auth0|") {
            id.to_string()
        } else {
            format!("auth0|{id}")
        };
        match hashes.find(&id, identity.connection.as_deref()) {
            Ok(Some(found)) => {
                put(&mut out, "password_hash", Piece::Text(&found.password_hash));
                hash_found = Some(true);
            }
            Ok(None) => hash_found = Some(false),
            Err(e) => return Outcome::Failed(e),
        }
    }
    out.push(b'}');

    // Made of the user's own (valid) values: the rules read the row where it is, member by
    // member as it was written.
    let Ok(row) = simdutf8::basic::from_utf8(&out) else {
        return refused(Code::InvalidJson, "", "not valid UTF-8".into());
    };
    let row_members = written
        .into_iter()
        .map(|(key, range)| (Cow::Borrowed(key), Raw(&row[range])))
        .collect();
    // The metadata is written with the keys it was read with (a repeated one once).
    let plain_keys = !shapes.iter().any(|shape| shape.marked);
    problems.extend(rules::check_row(
        row_members,
        Options {
            upsert: conversion.upsert,
        },
        plain_keys,
    ));
    if !problems.is_empty() {
        return Outcome::Refused {
            problems,
            row: Some(out),
            who: Some(who(&members)),
        };
    }
    let email = email.unwrap_or_default();
    let print = |key: Key, value: Option<&str>| value.map_or(0, |v| fingerprint(key, v));
    let prints = [
        print(Key::Email, Some(&email)),
        print(Key::UserId, written_id),
        print(Key::Username, username.as_deref()),
    ];
    let strings = [
        Some(email.as_ref()),
        written_id,
        username.as_deref(),
        identity.connection.as_deref(),
    ];
    let mut keys = String::with_capacity(strings.iter().flatten().map(|s| s.len()).sum());
    let ends = strings.map(|string| {
        keys.push_str(string?);
        u32::try_from(keys.len()).ok()
    });
    Outcome::Row(Row {
        json: out,
        keys,
        ends,
        prints,
        dropped,
        linked_identities: identity.linked,
        email_verified_added: verified_added,
        without_password,
        hash_found,
    })
}

/// `put`, with the lifetime of the keys it is given named (they outlive the call).
fn writer<'k, F: FnMut(&mut Vec<u8>, &'k str, Piece<'_>)>(put: F) -> F {
    put
}

/// A value of an import row as it is handed to be written: JSON text written clean, or
/// characters written as a JSON string (straight into the row).
enum Piece<'a> {
    Json(&'a [u8]),
    Text(&'a str),
}

/// The properties an import row takes ([`PROPERTIES`], then those of an upsert,
/// [`UPSERTABLE`]): the columns of the export schema among them as bits of their indices, and
/// the others by name. A member's key is found among them by its column (one look-up that
/// the conversion makes anyway), not by comparing it with every name.
static TAKEN: std::sync::LazyLock<[(u64, Vec<&'static str>); 2]> = std::sync::LazyLock::new(|| {
    [PROPERTIES, UPSERTABLE].map(|names| {
        let mut columns = 0u64;
        let mut others = Vec::new();
        for &name in names {
            match crate::source::schema::index(name.as_bytes()) {
                Some(i) => columns |= 1 << i,
                None => others.push(name),
            }
        }
        (columns, others)
    })
});

/// The format and reason of a hash marked as one Auth0 cannot verify (see
/// [`crate::password`]).
fn unconvertible(value: &[u8]) -> Option<(String, String)> {
    // Every hash passes here: only one that names the marker is parsed.
    let key = crate::password::UNCONVERTIBLE.as_bytes();
    if !value.starts_with(b"{") || memchr::memmem::find(value, key).is_none() {
        return None;
    }
    let object: Value = serde_json::from_slice(value).ok()?;
    let marker = object.get(crate::password::UNCONVERTIBLE)?;
    let text = |k: &str| {
        marker
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some((text("format"), text("reason")))
}

/// A refusal for one problem.
fn refused(code: Code, pointer: &str, message: String) -> Outcome {
    Outcome::Refused {
        problems: vec![Problem {
            pointer: pointer.into(),
            code,
            origin: Origin::Auth0,
            message,
        }],
        row: None,
        who: None,
    }
}

/// The members `user_id` and `email` of a user (`members`, a repeated key's last value) as
/// JSON members, each led by a comma: `,"user_id":…,"email":…` (`null` when absent), their
/// values as written, compact.
pub fn who(members: &[(Cow<'_, str>, Raw<'_>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    for name in ["user_id", "email"] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match last(members, name) {
            Some(value) => clean_into(value.0.as_bytes(), &mut out),
            None => out.extend_from_slice(b"null"),
        }
    }
    out
}

/// The primary identity (`identities[0]`); linked identities after it are counted.
fn identity<'t>(members: &[(Cow<'_, str>, Raw<'t>)], shapes: &[Shape]) -> Identity<'t> {
    // The last `identities`, as a repeated key's last value is read.
    let Some(at) = members.iter().rposition(|(key, _)| key == "identities") else {
        return Identity::default();
    };
    let (identities, shape) = (members[at].1, shapes[at]);
    if !identities.0.starts_with('[') {
        return Identity::default();
    }
    let primary = identities
        .item(0)
        .and_then(|primary| primary.strings(["provider", "connection"]));
    let [provider, connection] = primary.unwrap_or_default();
    Identity {
        provider,
        connection,
        linked: u64::from(shape.entries.saturating_sub(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: &str, upsert: bool) -> (Outcome, Dropped) {
        let conversion = Conversion {
            upsert,
            ..Conversion::default()
        };
        let outcome = convert(user.as_bytes(), &conversion, &mut Skim::default());
        let mut dropped = Dropped::default();
        if let Outcome::Row(row) = &outcome {
            dropped.count(row);
        }
        (outcome, dropped)
    }

    /// The row of an outcome that must be one.
    fn row_of(outcome: Outcome) -> Row {
        match outcome {
            Outcome::Row(row) => row,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_export_user_becomes_an_import_row() {
        let (outcome, dropped) = row(
            r#"{"user_id":"auth0|abc","email":"a@b.co","created_at":"2020","name":null,
               "identities":[{"provider":"auth0","connection":"db","user_id":"abc"},
                             {"provider":"github","connection":"github"}],
               "user_metadata":{"k":[1,2]}}"#,
            false,
        );
        let row = row_of(outcome);
        assert_eq!(
            String::from_utf8(row.json.clone()).unwrap(),
            r#"{"user_id":"abc","email":"a@b.co","email_verified":false,"user_metadata":{"k":[1,2]}}"#
        );
        assert_eq!(
            (row.email(), row.user_id(), row.username(), row.connection()),
            ("a@b.co", Some("abc"), None, Some("db"))
        );
        assert_eq!(dropped.linked_identities, 1);
        assert_eq!(
            dropped.fields().keys().collect::<Vec<_>>(),
            ["created_at", "identities", "name (null)"]
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_where_it_stands() {
        let (outcome, _) = row(
            r#"{"email":"old@b.co","user_id":"auth0|abc","x":1,"email":"a@b.co","x":2,
               "user_metadata":{"k":1},"user_metadata":{"k":2}}"#,
            false,
        );
        assert_eq!(
            String::from_utf8(row_of(outcome).json).unwrap(),
            r#"{"user_id":"abc","email":"a@b.co","email_verified":false,"user_metadata":{"k":2}}"#
        );
    }

    #[test]
    fn a_dropped_field_is_counted_under_its_name() {
        let mut dropped = Dropped::default();
        let mut left = Left::default();
        for (name, _) in crate::source::schema::COLUMNS {
            let column = crate::source::schema::index(name.as_bytes());
            left.add(name, column, false);
            left.add(name, column, true);
        }
        left.add("zz", None, false);
        left.add("zz", None, true);
        let (outcome, _) = row(r#"{"user_id":"auth0|1","email":"a@b.co"}"#, false);
        let mut row = row_of(outcome);
        row.dropped = left;
        dropped.count(&row);
        dropped.count(&row);
        let fields = dropped.fields();
        assert_eq!(fields.len(), 2 * crate::source::schema::COLUMNS.len() + 2);
        for (name, _) in crate::source::schema::COLUMNS {
            assert_eq!(fields[*name], 2);
            assert_eq!(fields[&format!("{name} (null)")], 2);
        }
        assert_eq!((fields["zz"], fields["zz (null)"]), (2, 2));
    }

    #[test]
    fn the_properties_taken_are_found_by_column_as_by_name() {
        let columns = crate::source::schema::COLUMNS.iter().map(|(name, _)| *name);
        let names: Vec<&str> = columns
            .chain(PROPERTIES.iter().copied())
            .chain(["password_hash", "mfa_factors", "zz", ""])
            .collect();
        for (upsert, list) in [(false, PROPERTIES), (true, UPSERTABLE)] {
            let (columns, others) = &TAKEN[usize::from(upsert)];
            for name in &names {
                let taken = match crate::source::schema::index(name.as_bytes()) {
                    Some(c) => columns & (1 << c) != 0,
                    None => others.contains(name),
                };
                assert_eq!(taken, list.contains(name), "{name} (upsert: {upsert})");
            }
        }
    }

    #[test]
    fn social_users_and_blocked_upserts_are_refused() {
        let (outcome, _) = row(
            r#"{"user_id":"google-oauth2|1","email":"a@b.co","identities":[{"provider":"google-oauth2","connection":"google-oauth2"}]}"#,
            false,
        );
        assert!(matches!(outcome, Outcome::Refused { .. }), "{outcome:?}");
        let (outcome, _) = row(
            r#"{"user_id":"auth0|1","email":"a@b.co","blocked":true,"logins_count":3}"#,
            true,
        );
        let Outcome::Refused { problems, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(problems[0].code, Code::NotUpsertable);
        let (outcome, dropped) = row(
            r#"{"user_id":"auth0|1","email":"a@b.co","email_verified":true,"blocked":false,"username":"u"}"#,
            true,
        );
        let Outcome::Row(row) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(row.json, br#"{"email":"a@b.co","email_verified":true}"#);
        assert_eq!(
            dropped.fields().keys().collect::<Vec<_>>(),
            ["blocked", "user_id", "username"]
        );
    }
}
