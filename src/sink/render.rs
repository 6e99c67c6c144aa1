//! How values look in reports: the rules every sink shares.
//!
//! Strings are written as they are; numbers as JavaScript prints them; booleans `true` /
//! `false`; null and absent values as nothing (an empty CSV cell, `null` in mapped JSON);
//! objects and arrays as compact JSON text. Columns that hold JSON texts (marked in their
//! field metadata) are rendered by the same rules, value by value.

use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray, UnionArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::Result;
use crate::js::Value;
use crate::js::value::stringify;
use crate::source::schema::is_json;

/// Appends `value` as JavaScript's `String(value)` prints it.
pub fn number(value: f64, out: &mut String) {
    out.push_str(ryu_js::Buffer::new().format(value));
}

/// Appends the report cell of the JSON text `json`: a string's characters, a number as
/// JavaScript prints it, `true` / `false`, nothing for `null`, objects and arrays as they are.
pub fn json_cell(json: &str, out: &mut String) {
    let json = crate::js::cell::text(json);
    if json == crate::js::cell::THROW {
        return;
    }
    match json.as_bytes().first() {
        Some(b'"') => match unquote(json) {
            Some(text) => out.push_str(text),
            None => out.push_str(
                &serde_json::from_str::<String>(json).unwrap_or_else(|_| json.to_string()),
            ),
        },
        // null: an empty cell.
        Some(b'n') | None => {}
        Some(b'-' | b'0'..=b'9') => match json.parse::<f64>() {
            Ok(value) => number(value, out),
            Err(_) => out.push_str(json),
        },
        // Objects and arrays as `JSON.stringify` writes them (property order, numbers).
        Some(b'{' | b'[') => match stringify(&Value::from_json(json)) {
            Some(text) => out.push_str(&text),
            None => out.push_str(json),
        },
        // NaN, Infinity: JavaScript's own words.
        _ => out.push_str(json),
    }
}

/// The characters of a JSON string literal that has no escapes.
fn unquote(json: &str) -> Option<&str> {
    let inner = json.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// Whether a spreadsheet would run `cell` as a formula: it starts with `=`, `+`, `-`, `@`, a
/// tab or a carriage return, and is not a plain number (OWASP's CSV injection advice).
pub fn is_formula(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    ) && !is_plain_number(cell)
}

/// `[+-]digits[.digits][e[+-]digits]` (or `.digits`).
fn is_plain_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    crate::js::value::is_decimal_literal(unsigned)
}

/// One column of a batch, ready to be rendered row by row.
pub enum Cells<'a> {
    /// Text.
    Text(&'a StringArray),
    /// JSON texts.
    Json(&'a StringArray),
    /// Booleans.
    Bool(&'a BooleanArray),
    /// Integers.
    Int(&'a Int64Array),
    /// Floating-point numbers.
    Float(&'a Float64Array),
    /// Lists, structs, maps and unions (as SQL's JSON functions return them): JSON.
    Nested(&'a dyn Array),
    /// Anything else, through Arrow's display.
    Other(&'a dyn Array, ArrayFormatter<'a>),
}

/// A batch column converted to one of the few physical types the renderers handle.
pub fn normalize(array: &ArrayRef) -> Result<ArrayRef> {
    let target = match array.data_type() {
        DataType::Utf8 | DataType::Boolean | DataType::Int64 | DataType::Float64 => {
            return Ok(array.clone());
        }
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        t if t.is_integer() => DataType::Int64,
        t if t.is_floating() => DataType::Float64,
        _ => return Ok(array.clone()),
    };
    Ok(Arc::new(cast(array, &target)?))
}

/// Every column of a batch, normalized (see [`normalize`]).
pub fn normalize_batch(batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    batch.columns().iter().map(normalize).collect()
}

/// Views normalized columns of a batch of `schema` as cells.
pub fn cells<'a>(schema: &Schema, arrays: &'a [ArrayRef]) -> Result<Vec<Cells<'a>>> {
    schema
        .fields()
        .iter()
        .zip(arrays)
        .map(|(field, array)| Cells::new(field, array))
        .collect()
}

impl<'a> Cells<'a> {
    /// Views a normalized column (see [`normalize`]).
    pub fn new(field: &Field, array: &'a ArrayRef) -> Result<Cells<'a>> {
        Ok(match array.data_type() {
            DataType::Utf8 if is_json(field) => Cells::Json(array.as_string::<i32>()),
            DataType::Utf8 => Cells::Text(array.as_string::<i32>()),
            DataType::Boolean => Cells::Bool(array.as_boolean()),
            DataType::Int64 => Cells::Int(array.as_primitive::<Int64Type>()),
            DataType::Float64 => Cells::Float(array.as_primitive::<Float64Type>()),
            DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::Struct(_)
            | DataType::Map(..)
            | DataType::Union(..) => Cells::Nested(array.as_ref()),
            _ => Cells::Other(
                array.as_ref(),
                ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?,
            ),
        })
    }

    /// Whether row `i` is null.
    pub fn is_null(&self, i: usize) -> bool {
        match self {
            Cells::Text(a) | Cells::Json(a) => a.is_null(i),
            Cells::Bool(a) => a.is_null(i),
            Cells::Int(a) => a.is_null(i),
            Cells::Float(a) => a.is_null(i),
            Cells::Other(a, _) | Cells::Nested(a) => nested_is_null(*a, i),
        }
    }

    /// Row `i` of a text column as it is (what [`Cells::cell`] would copy); `None` for a
    /// null or a cell of another type.
    pub fn text(&self, i: usize) -> Option<&str> {
        match self {
            Cells::Text(a) if a.is_valid(i) => Some(a.value(i)),
            _ => None,
        }
    }

    /// Appends the cell text of row `i` (nothing when null).
    pub fn cell(&self, i: usize, out: &mut String) {
        if self.is_null(i) {
            return;
        }
        match self {
            Cells::Text(a) => out.push_str(a.value(i)),
            Cells::Json(a) => json_cell(a.value(i), out),
            Cells::Bool(a) => out.push_str(if a.value(i) { "true" } else { "false" }),
            Cells::Int(a) => {
                let _ = write!(out, "{}", a.value(i));
            }
            Cells::Float(a) => number(a.value(i), out),
            Cells::Nested(a) => {
                let mut json = Vec::new();
                nested_json(*a, i, &mut json);
                json_cell(&String::from_utf8_lossy(&json), out);
            }
            Cells::Other(_, f) => {
                let _ = write!(out, "{}", f.value(i));
            }
        }
    }

    /// Appends row `i` as a JSON value (`null` when null).
    pub fn json(&self, i: usize, out: &mut Vec<u8>, scratch: &mut String) {
        if self.is_null(i) {
            out.extend_from_slice(b"null");
            return;
        }
        match self {
            Cells::Json(a) => {
                let text = crate::js::cell::text(a.value(i));
                match text.as_bytes().first() {
                    // What a throwing expression gives is null.
                    _ if text == crate::js::cell::THROW => out.extend_from_slice(b"null"),
                    // Numbers JSON cannot hold are null, as JSON.stringify writes them.
                    Some(b'N' | b'I') => out.extend_from_slice(b"null"),
                    Some(b'-') if text == "-Infinity" => out.extend_from_slice(b"null"),
                    Some(b'[' | b'{') if text.contains("NaN") || text.contains("Infinity") => {
                        let json = stringify(&Value::from_json(text));
                        out.extend_from_slice(json.as_deref().unwrap_or("null").as_bytes());
                    }
                    _ => out.extend_from_slice(text.as_bytes()),
                }
            }
            Cells::Bool(a) => out.extend_from_slice(if a.value(i) { b"true" } else { b"false" }),
            Cells::Int(a) => out.extend_from_slice(a.value(i).to_string().as_bytes()),
            Cells::Float(a) if a.value(i).is_finite() => {
                scratch.clear();
                number(a.value(i), scratch);
                out.extend_from_slice(scratch.as_bytes());
            }
            Cells::Float(_) => out.extend_from_slice(b"null"),
            Cells::Text(a) => write_json_string(a.value(i), out),
            Cells::Nested(a) => nested_json(*a, i, out),
            Cells::Other(..) => {
                scratch.clear();
                self.cell(i, scratch);
                write_json_string(scratch, out);
            }
        }
    }
}

/// Whether row `i` is null (a union is null when its chosen value is).
fn nested_is_null(array: &dyn Array, i: usize) -> bool {
    match array.as_any().downcast_ref::<UnionArray>() {
        Some(union) => {
            let child = union.value(i);
            child.data_type() == &DataType::Null || nested_is_null(child.as_ref(), 0)
        }
        None => array.data_type() == &DataType::Null || array.is_null(i),
    }
}

/// Appends row `i` of any array as JSON: lists as arrays, structs and maps as objects,
/// unions as their chosen value (the `object` and `array` members of the JSON functions'
/// union hold JSON text), other leaves by their type.
fn nested_json(array: &dyn Array, i: usize, out: &mut Vec<u8>) {
    let null = array.data_type() == &DataType::Null || array.is_null(i);
    if null && !matches!(array.data_type(), DataType::Union(..)) {
        out.extend_from_slice(b"null");
        return;
    }
    match array.data_type() {
        DataType::Union(fields, _) => {
            let Some(union) = array.as_any().downcast_ref::<UnionArray>() else {
                out.extend_from_slice(b"null");
                return;
            };
            let type_id = union.type_id(i);
            let child = union.value(i);
            let raw = fields
                .iter()
                .find(|(id, _)| *id == type_id)
                .is_some_and(|(_, f)| matches!(f.name().as_str(), "object" | "array"));
            match child.as_string_opt::<i32>() {
                Some(text) if raw && text.is_valid(0) => {
                    out.extend_from_slice(text.value(0).as_bytes())
                }
                _ => nested_json(child.as_ref(), 0, out),
            }
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let values = match array.data_type() {
                DataType::List(_) => array.as_list::<i32>().value(i),
                DataType::LargeList(_) => array.as_list::<i64>().value(i),
                _ => array.as_fixed_size_list().value(i),
            };
            out.push(b'[');
            for j in 0..values.len() {
                if j > 0 {
                    out.push(b',');
                }
                nested_json(values.as_ref(), j, out);
            }
            out.push(b']');
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            out.push(b'{');
            for (k, (field, column)) in fields.iter().zip(s.columns()).enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_json_string(field.name(), out);
                out.push(b':');
                nested_json(column.as_ref(), i, out);
            }
            out.push(b'}');
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(i);
            out.push(b'{');
            for j in 0..entries.len() {
                if j > 0 {
                    out.push(b',');
                }
                let mut key = String::new();
                if let Ok(cells) = Cells::new(
                    &Field::new("k", entries.column(0).data_type().clone(), true),
                    entries.column(0),
                ) {
                    cells.cell(j, &mut key);
                }
                write_json_string(&key, out);
                out.push(b':');
                nested_json(entries.column(1).as_ref(), j, out);
            }
            out.push(b'}');
        }
        _ => {
            let leaf = array.slice(i, 1);
            let field = Field::new("v", leaf.data_type().clone(), true);
            let mut scratch = String::new();
            match normalize(&leaf).and_then(|n| {
                let cells = Cells::new(&field, &n)?;
                cells.json(0, out, &mut scratch);
                Ok(())
            }) {
                Ok(()) => {}
                Err(_) => out.extend_from_slice(b"null"),
            }
        }
    }
}

/// Appends `text` as a JSON string literal.
pub fn write_json_string(text: &str, out: &mut Vec<u8>) {
    crate::json::quote_into(text, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(json: &str) -> String {
        let mut out = String::new();
        json_cell(json, &mut out);
        out
    }

    #[test]
    fn json_values_render_as_javascript_prints_them() {
        assert_eq!(cell(r#""Pro""#), "Pro");
        assert_eq!(cell(r#""a\"b\u00e9""#), "a\"bé");
        assert_eq!(cell("null"), "");
        assert_eq!(cell("true"), "true");
        assert_eq!(cell("1.0"), "1");
        assert_eq!(cell("1e21"), "1e+21");
        assert_eq!(cell("-0"), "0");
        assert_eq!(cell("0.1"), "0.1");
        assert_eq!(cell("0.000001"), "0.000001");
        assert_eq!(cell("1e-7"), "1e-7");
        assert_eq!(cell("12345678901234567890"), "12345678901234567000");
        assert_eq!(cell(r#"{"a":[1,2]}"#), r#"{"a":[1,2]}"#);
    }

    #[test]
    fn formulas_are_recognized_but_numbers_are_not() {
        for f in [
            "=1+2", "+A1", "-2+3", "@SUM(A1)", "\tx", "\rx", "-", "=", "+e5",
        ] {
            assert!(is_formula(f), "{f:?}");
        }
        for n in ["-5", "+1.5", "-0.25e-3", "-.5", "abc", "", "1=1"] {
            assert!(!is_formula(n), "{n:?}");
        }
    }
}
