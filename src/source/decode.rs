//! One user's JSON object → one row of the canonical schema, appended to column builders.
//!
//! Parsing uses `jiter` over the line's bytes without building a JSON tree: typed values go
//! straight into their builders, nested values are copied as compact JSON text.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, StringBuilder, new_null_array,
};
use datafusion::arrow::record_batch::RecordBatch;
use jiter::{Jiter, JiterError, Peek};

use super::schema::{self, COLUMNS, Kind};
use crate::json::compact_into;

/// Why a line could not be decoded, with the byte offset in the line where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the decoded text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl From<JiterError> for DecodeError {
    fn from(e: JiterError) -> Self {
        DecodeError {
            offset: e.index,
            message: format!("invalid JSON: {}", e.error_type),
        }
    }
}

impl DecodeError {
    /// The error of a parser that started `by` bytes into the text.
    fn shifted(mut self, by: usize) -> Self {
        self.offset += by;
        self
    }
}

enum ColumnBuilder {
    Text(StringBuilder),
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Json(StringBuilder),
}

/// The bit of `_extra` in a column mask.
pub const EXTRA_BIT: u32 = 63;

/// A mask of every column.
pub const ALL_COLUMNS: u64 = u64::MAX;

/// Builds record batches of the canonical schema, one user at a time.
pub struct BatchBuilder {
    columns: Vec<ColumnBuilder>,
    /// Which columns are filled (bit `i` for column `i`, bit [`EXTRA_BIT`] for `_extra`);
    /// the others are left null, their values skipped.
    mask: u64,
    /// The typed columns of the mask, in schema order.
    wanted: Vec<usize>,
    extra: StringBuilder,
    rows: usize,
    extra_buf: Vec<u8>,
    raw_buf: Vec<u8>,
    key_buf: String,
    tape: Vec<u8>,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        let columns = COLUMNS
            .iter()
            .map(|&(_, kind)| match kind {
                Kind::Text => ColumnBuilder::Text(StringBuilder::new()),
                Kind::Bool => ColumnBuilder::Bool(BooleanBuilder::new()),
                Kind::Int => ColumnBuilder::Int(Int64Builder::new()),
                Kind::Json => ColumnBuilder::Json(StringBuilder::new()),
            })
            .collect();
        BatchBuilder {
            columns,
            mask: ALL_COLUMNS,
            wanted: (0..COLUMNS.len()).collect(),
            extra: StringBuilder::new(),
            rows: 0,
            extra_buf: Vec::new(),
            raw_buf: Vec::new(),
            key_buf: String::new(),
            tape: Vec::new(),
        }
    }

    /// A builder that fills only the columns of `mask` (see [`BatchBuilder::mask`]); the
    /// others stay null, their values skipped rather than decoded.
    pub fn with_mask(mask: u64) -> Self {
        BatchBuilder {
            mask,
            wanted: (0..COLUMNS.len())
                .filter(|i| mask & (1 << i) != 0)
                .collect(),
            ..Self::new()
        }
    }

    /// Number of users appended since the last [`BatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no user was appended since the last [`BatchBuilder::finish`].
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends the user whose JSON object text is `text`. On error nothing is appended.
    pub fn append(&mut self, text: &str) -> Result<(), DecodeError> {
        self.append_text(text, memchr::memchr(b'\\', text.as_bytes()).is_some())
    }

    /// [`BatchBuilder::append`] when the caller knows whether `text` holds a backslash
    /// (`escapes`; when false, no string is searched for escapes).
    pub fn append_text(&mut self, text: &str, escapes: bool) -> Result<(), DecodeError> {
        let bytes = text.as_bytes();
        let mut jiter = Jiter::new(bytes);
        let peek = jiter.peek()?;
        if peek != Peek::Object {
            return Err(DecodeError {
                offset: jiter.current_index(),
                message: format!(
                    "expected a JSON object (one user), found {}",
                    describe(peek)
                ),
            });
        }
        // Values are first located, then appended, so that an error leaves the builders as
        // they were: `spans[i]` is the byte range of column i's value (and, for JSON
        // values, whether an object inside repeats a key).
        let mut spans: [Option<(usize, usize, Peek, bool)>; COLUMNS.len()] = [None; COLUMNS.len()];
        let mut keys = Vec::new();
        let extra = self.mask & (1 << EXTRA_BIT) != 0;
        self.extra_buf.clear();
        let unknown_key = &mut self.key_buf;
        let first = jiter.next_object_bytes()?;
        let mut key = match first {
            Some(raw) => Some(classify(raw, escapes, offset_in(bytes, raw), unknown_key)?),
            None => None,
        };
        while let Some(column) = key {
            let key_offset = jiter.current_index();
            let peek = jiter.peek()?;
            let start = jiter.current_index();
            let wanted = match column {
                Some(i) => self.mask & (1 << i) != 0,
                None => extra,
            };
            let repeated = if peek == Peek::String && wanted {
                // The line is valid UTF-8 already: only escapes need decoding, and they are
                // checked now so that appending below cannot fail half-way through a row.
                let raw = jiter.known_bytes()?;
                if escapes && memchr::memchr(b'\\', raw).is_some() {
                    let quoted = &bytes[start..jiter.current_index()];
                    let mut check = Jiter::with_tape(quoted, std::mem::take(&mut self.tape));
                    let checked = check
                        .next_str()
                        .map(|_| ())
                        .map_err(|e| DecodeError::from(e).shifted(start));
                    self.tape = check.into_tape();
                    checked?;
                }
                false
            } else if wanted && column.is_some_and(|i| COLUMNS[i].1 == Kind::Json) {
                // A JSON value is walked once: skipped, and looked at for repeated keys.
                crate::json::skip_checking(&mut jiter, bytes, peek, &mut keys)?
            } else {
                jiter.known_skip(peek)?;
                false
            };
            let end = jiter.current_index();
            match column {
                Some(i) => {
                    if spans[i].is_some() {
                        return Err(DecodeError {
                            offset: key_offset,
                            message: format!("duplicate key \"{}\"", COLUMNS[i].0),
                        });
                    }
                    spans[i] = Some((start, end, peek, repeated));
                }
                None if extra => {
                    push_extra(&mut self.extra_buf, unknown_key, &bytes[start..end]);
                }
                None => {}
            }
            key = match jiter.next_key_bytes()? {
                Some(raw) => Some(classify(raw, escapes, offset_in(bytes, raw), unknown_key)?),
                None => None,
            };
        }
        jiter.finish()?;

        // Columns outside the mask are not touched: `finish` makes them all null at once.
        for &i in &self.wanted {
            let builder = &mut self.columns[i];
            let Some((start, end, peek, repeated)) = spans[i] else {
                append_null(builder);
                continue;
            };
            let raw = &text[start..end];
            let stored = match builder {
                ColumnBuilder::Text(b) if peek == Peek::String => {
                    append_str(b, raw, escapes, &mut self.tape);
                    true
                }
                ColumnBuilder::Bool(b) if peek == Peek::True || peek == Peek::False => {
                    b.append_value(peek == Peek::True);
                    true
                }
                // Only integers written as they print: `-0` keeps its text in `_extra`.
                ColumnBuilder::Int(b) if peek.is_num() => match raw.parse::<i64>() {
                    Ok(v) if v != 0 || !raw.starts_with('-') => {
                        b.append_value(v);
                        true
                    }
                    _ => false,
                },
                ColumnBuilder::Json(b) if peek != Peek::Null => {
                    if repeated {
                        // One rule everywhere (SQL's JSON functions, expressions, searches):
                        // a repeated key has its last value, as JSON.parse gives it.
                        self.raw_buf = crate::json::dedupe(raw.as_bytes());
                        b.append_value(as_str(&self.raw_buf));
                    } else if crate::json::has_space(raw.as_bytes()) {
                        self.raw_buf.clear();
                        compact_into(raw.as_bytes(), &mut self.raw_buf);
                        b.append_value(as_str(&self.raw_buf));
                    } else {
                        // Compact already, as Auth0 writes its exports.
                        b.append_value(raw);
                    }
                    true
                }
                _ => false,
            };
            if !stored {
                // A null, or a value of another type: kept under its key in `_extra`.
                append_null(builder);
                if extra {
                    push_extra(&mut self.extra_buf, COLUMNS[i].0, raw.as_bytes());
                }
            }
        }
        // Outside the mask, `_extra` is left to `finish`, like the other columns.
        if extra {
            if self.extra_buf.is_empty() {
                self.extra.append_null();
            } else {
                let mut object = Vec::with_capacity(self.extra_buf.len() + 2);
                object.push(b'{');
                object.extend_from_slice(&self.extra_buf);
                object.push(b'}');
                self.extra.append_value(as_str(&object));
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Takes the users appended so far as one record batch and starts a new one.
    pub fn finish(&mut self) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
        let rows = self.rows;
        let schema = schema::user_schema();
        let mask = self.mask;
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .enumerate()
            .map(|(i, builder)| -> ArrayRef {
                if mask & (1 << i) == 0 {
                    return new_null_array(schema.field(i).data_type(), rows);
                }
                match builder {
                    ColumnBuilder::Text(b) | ColumnBuilder::Json(b) => Arc::new(b.finish()),
                    ColumnBuilder::Bool(b) => Arc::new(b.finish()),
                    ColumnBuilder::Int(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        arrays.push(if mask & (1 << EXTRA_BIT) == 0 {
            new_null_array(schema.field(COLUMNS.len()).data_type(), rows)
        } else {
            Arc::new(self.extra.finish())
        });
        self.rows = 0;
        RecordBatch::try_new(schema, arrays)
    }
}

/// The typed column of the key whose raw text (between the quotes, escapes as written) is
/// `raw`, or `None` after copying the decoded key into `unknown` (the key's text borrows the
/// parser, so it is kept before the parser reads on).
fn classify(
    raw: &[u8],
    escapes: bool,
    at: usize,
    unknown: &mut String,
) -> Result<Option<usize>, DecodeError> {
    let decoded;
    let key = if !escapes || memchr::memchr(b'\\', raw).is_none() {
        raw
    } else {
        let mut quoted = Vec::with_capacity(raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(raw);
        quoted.push(b'"');
        // `quoted` starts one byte (its quote) before `raw`.
        decoded = Jiter::new(&quoted)
            .next_str()
            .map_err(|e| DecodeError::from(e).shifted(at.saturating_sub(1)))?
            .to_string();
        decoded.as_bytes()
    };
    let column = schema::index(key);
    if column.is_none() {
        unknown.clear();
        // The line was checked as UTF-8 before it was parsed.
        unknown.push_str(&String::from_utf8_lossy(key));
    }
    Ok(column)
}

/// Where `part` (a slice of `whole`) starts in `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// Appends `"key":raw` to the extra buffer, the key quoted as JSON and the value compacted.
fn push_extra(buf: &mut Vec<u8>, key: &str, raw: &[u8]) {
    if !buf.is_empty() {
        buf.push(b',');
    }
    crate::json::quote_into(key, buf);
    buf.push(b':');
    compact_into(raw, buf);
}

fn append_null(builder: &mut ColumnBuilder) {
    match builder {
        ColumnBuilder::Text(b) | ColumnBuilder::Json(b) => b.append_null(),
        ColumnBuilder::Bool(b) => b.append_null(),
        ColumnBuilder::Int(b) => b.append_null(),
    }
}

/// Appends the JSON string literal `raw` (already checked by the parser) to `builder`,
/// decoding escapes only when there are some (`escapes`: whether its line has any).
fn append_str(builder: &mut StringBuilder, raw: &str, escapes: bool, tape: &mut Vec<u8>) {
    let inner = &raw[1..raw.len() - 1];
    if !escapes || memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        builder.append_value(inner);
        return;
    }
    let mut jiter = Jiter::with_tape(raw.as_bytes(), std::mem::take(tape));
    match jiter.next_str() {
        Ok(value) => builder.append_value(value),
        // Unreachable: the same parser accepted this string a moment ago.
        Err(_) => builder.append_value(inner),
    }
    *tape = jiter.into_tape();
}

/// Text built from UTF-8 input and JSON's own characters (never anything else: an empty
/// text if it ever were).
fn as_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn describe(peek: Peek) -> &'static str {
    match peek {
        Peek::Array => "an array",
        Peek::String => "a string",
        Peek::Null => "null",
        Peek::True | Peek::False => "a boolean",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;

    fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a dyn Array {
        batch.column_by_name(name).unwrap().as_ref()
    }

    #[test]
    fn typed_values_go_to_columns_and_the_rest_to_extra() {
        let mut builder = BatchBuilder::new();
        builder
            .append(r#"{"user_id":"auth0|1","logins_count":3,"email_verified":true,"user_metadata":{ "a" : [1, 2] },"x":1}"#)
            .unwrap();
        builder
            .append(
                r#"{"user_id":"auth0|2","logins_count":2.5,"name":null,"email_verified":"yes"}"#,
            )
            .unwrap();
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let logins = column(&batch, "logins_count").as_primitive::<Int64Type>();
        assert_eq!((logins.value(0), logins.is_null(1)), (3, true));
        let meta = column(&batch, "user_metadata").as_string::<i32>();
        assert_eq!(meta.value(0), r#"{"a":[1,2]}"#);
        assert!(meta.is_null(1));
        let extra = column(&batch, EXTRA_NAME).as_string::<i32>();
        assert_eq!(extra.value(0), r#"{"x":1}"#);
        assert_eq!(
            extra.value(1),
            r#"{"email_verified":"yes","name":null,"logins_count":2.5}"#
        );
    }

    #[test]
    fn errors_leave_the_builder_unchanged() {
        let mut builder = BatchBuilder::new();
        builder.append(r#"{"user_id":"a"}"#).unwrap();
        let e = builder
            .append(r#"{"user_id":"b","email":"x","email":"y"}"#)
            .unwrap_err();
        assert_eq!(e.message, "duplicate key \"email\"");
        let e = builder.append(r#"{"user_id":"c"} trailing"#).unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{}", e.message);
        assert_eq!(e.offset, 16);
        let e = builder.append("42").unwrap_err();
        assert_eq!(
            e.message,
            "expected a JSON object (one user), found a number"
        );
        assert_eq!(builder.finish().unwrap().num_rows(), 1);
    }

    #[test]
    fn escaped_keys_and_values_are_decoded_and_checked() {
        let mut builder = BatchBuilder::new();
        builder
            .append(r#"{"user\u005fid":"a\"b","x\u0041":1,"identities":[ {"a": "b c"} ]}"#)
            .unwrap();
        let e = builder
            .append(r#"{"user_id":"c","email":"\x"}"#)
            .unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{}", e.message);
        assert_eq!(e.offset, 25);
        let e = builder.append(r#"{"user_id":"c","e\q":1}"#).unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{}", e.message);
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        let ids = column(&batch, "user_id").as_string::<i32>();
        assert_eq!(ids.value(0), "a\"b");
        let extra = column(&batch, EXTRA_NAME).as_string::<i32>();
        assert_eq!(extra.value(0), r#"{"xA":1}"#);
        let identities = column(&batch, "identities").as_string::<i32>();
        assert_eq!(identities.value(0), r#"[{"a":"b c"}]"#);
    }

    #[test]
    fn compact_values_are_kept_as_they_are_and_others_compacted() {
        for (raw, spaced) in [
            (r#"{"name":"Zoë López","tags":["a b"]}"#, false),
            (r#"{"city":"Paris, France"}"#, true),
            (r#"{"a": 1}"#, true),
            (r#"[1 ,2]"#, true),
            (r#"{"a":[ ]}"#, true),
            (r#"{"a":"x" }"#, true),
            ("{\"a\":\n1}", true),
            ("{\"a\":1\t}", true),
            (r#"[true,false,null]"#, false),
        ] {
            assert_eq!(crate::json::has_space(raw.as_bytes()), spaced, "{raw}");
            if !crate::json::has_space(raw.as_bytes()) {
                // What is not compacted is compact already.
                let mut compacted = Vec::new();
                compact_into(raw.as_bytes(), &mut compacted);
                assert_eq!(compacted, raw.as_bytes(), "{raw}");
            }
        }
    }

    const EXTRA_NAME: &str = schema::EXTRA;
}
