//! The column types of foreign tables, how they are guessed from text and JSON values, and
//! the builders that turn values into Arrow arrays (one for every origin: CSV, JSON, SQLite,
//! PostgreSQL), with errors that name the value's column and why it does not fit.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde_json::Value;

use crate::source::schema::{is_json, json_field};

/// The type of a foreign table's column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Text (Utf8).
    Text,
    /// 64-bit integers.
    Integer,
    /// 64-bit floats.
    Float,
    /// true / false.
    Boolean,
    /// JSON texts (Utf8 marked as JSON: readable with `->>` and written back as JSON).
    Json,
    /// Instants, in microseconds (from databases; `tz` when with time zone).
    Timestamp {
        /// Whether the instant is in UTC (`timestamptz`).
        tz: bool,
    },
}

impl Type {
    /// The type a `--table-schema` file names (`text`, `integer`, `float`, `boolean`, `json`).
    pub fn parse(name: &str) -> Option<Type> {
        Some(match name.to_ascii_lowercase().as_str() {
            "text" | "string" | "varchar" => Type::Text,
            "integer" | "int" | "bigint" => Type::Integer,
            "float" | "double" | "real" | "number" => Type::Float,
            "boolean" | "bool" => Type::Boolean,
            "json" => Type::Json,
            _ => return None,
        })
    }

    /// The Arrow field of a column `name` of this type.
    pub fn field(self, name: &str) -> Field {
        match self {
            Type::Text => Field::new(name, DataType::Utf8, true),
            Type::Integer => Field::new(name, DataType::Int64, true),
            Type::Float => Field::new(name, DataType::Float64, true),
            Type::Boolean => Field::new(name, DataType::Boolean, true),
            Type::Json => json_field(name),
            Type::Timestamp { tz } => Field::new(
                name,
                DataType::Timestamp(TimeUnit::Microsecond, tz.then(|| "UTC".into())),
                true,
            ),
        }
    }

    /// The type of an Arrow field made by [`Type::field`].
    pub fn of(field: &Field) -> Type {
        match field.data_type() {
            DataType::Int64 => Type::Integer,
            DataType::Float64 => Type::Float,
            DataType::Boolean => Type::Boolean,
            DataType::Timestamp(_, tz) => Type::Timestamp { tz: tz.is_some() },
            _ if is_json(field) => Type::Json,
            _ => Type::Text,
        }
    }
}

/// What the values of a column seen so far allow (for guessing its type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Guess {
    /// Only empty cells or nulls so far.
    #[default]
    Nothing,
    /// A type all values so far fit.
    Is(Type),
}

impl Guess {
    /// The type guessed (text when every value was empty).
    pub fn decided(self) -> Type {
        match self {
            Guess::Nothing => Type::Text,
            Guess::Is(t) => t,
        }
    }

    fn join(self, seen: Type) -> Guess {
        Guess::Is(match self {
            Guess::Nothing => seen,
            Guess::Is(t) if t == seen => t,
            Guess::Is(Type::Json) => Type::Json,
            Guess::Is(Type::Integer | Type::Float)
                if matches!(seen, Type::Integer | Type::Float) =>
            {
                Type::Float
            }
            Guess::Is(_) if seen == Type::Json => Type::Json,
            Guess::Is(_) => Type::Text,
        })
    }

    /// Takes one CSV cell into account: integers written as they print (no leading zero, no
    /// sign but `-`), decimals, `true`/`false` (or `t`/`f`, as PostgreSQL writes them);
    /// anything else is text.
    pub fn text(self, cell: &str) -> Guess {
        if cell.is_empty() {
            return self;
        }
        if matches!(self, Guess::Is(Type::Text)) {
            return self;
        }
        self.join(text_type(cell))
    }

    /// Takes one JSON value into account: objects and arrays make the column JSON; scalars of
    /// mixed kinds make it text.
    pub fn json(self, value: &Value) -> Guess {
        match value {
            Value::Null => self,
            Value::Bool(_) => self.join(Type::Boolean),
            Value::Number(n) if n.is_i64() => self.join(Type::Integer),
            Value::Number(_) => self.join(Type::Float),
            Value::String(_) => self.join(Type::Text),
            Value::Array(_) | Value::Object(_) => self.join(Type::Json),
        }
    }
}

/// The type a CSV cell looks like.
fn text_type(cell: &str) -> Type {
    // true/false, and t/f as PostgreSQL's COPY writes booleans.
    if ["true", "false", "t", "f"]
        .iter()
        .any(|b| cell.eq_ignore_ascii_case(b))
    {
        return Type::Boolean;
    }
    if integer(cell).is_some() {
        return Type::Integer;
    }
    if decimal(cell).is_some() {
        return Type::Float;
    }
    Type::Text
}

/// An integer written as it prints: `0`, `-12`, never `012`, `+1` or ` 1`.
fn integer(cell: &str) -> Option<i64> {
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && cell != "-0";
    canonical.then(|| cell.parse().ok()).flatten()
}

/// A decimal number written plainly: `1.5`, `-0.25`, `1e3`; never `01.5`, `.5`, `nan`, `inf`.
fn decimal(cell: &str) -> Option<f64> {
    let body = cell.strip_prefix('-').unwrap_or(cell);
    let first = body.bytes().next()?;
    let leading_zero = body.len() > 1 && first == b'0' && body.as_bytes()[1].is_ascii_digit();
    let plain = first.is_ascii_digit()
        && !leading_zero
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    plain.then(|| cell.parse().ok()).flatten()
}

/// One column being built.
pub enum Builder {
    /// Text.
    Text(StringBuilder),
    /// JSON texts.
    Json(StringBuilder),
    /// Integers.
    Integer(Int64Builder),
    /// Floats.
    Float(Float64Builder),
    /// Booleans.
    Boolean(BooleanBuilder),
    /// Instants.
    Timestamp(TimestampMicrosecondBuilder, bool),
}

impl Builder {
    /// An empty builder for a column of type `t`.
    pub fn new(t: Type) -> Builder {
        match t {
            Type::Text => Builder::Text(StringBuilder::new()),
            Type::Json => Builder::Json(StringBuilder::new()),
            Type::Integer => Builder::Integer(Int64Builder::new()),
            Type::Float => Builder::Float(Float64Builder::new()),
            Type::Boolean => Builder::Boolean(BooleanBuilder::new()),
            Type::Timestamp { tz } => Builder::Timestamp(TimestampMicrosecondBuilder::new(), tz),
        }
    }

    /// Appends a null.
    pub fn null(&mut self) {
        match self {
            Builder::Text(b) | Builder::Json(b) => b.append_null(),
            Builder::Integer(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Boolean(b) => b.append_null(),
            Builder::Timestamp(b, _) => b.append_null(),
        }
    }

    /// Appends a CSV cell (empty is null), or says why it does not fit the column's type.
    pub fn text(&mut self, cell: &str) -> Result<(), String> {
        if cell.is_empty() {
            self.null();
            return Ok(());
        }
        match self {
            Builder::Text(b) => b.append_value(cell),
            Builder::Json(b) => {
                if serde_json::from_str::<serde::de::IgnoredAny>(cell).is_err() {
                    return Err("is not JSON".into());
                }
                b.append_value(cell)
            }
            Builder::Integer(b) => b.append_value(
                cell.trim()
                    .parse()
                    .map_err(|_| "is not an integer".to_string())?,
            ),
            Builder::Float(b) => b.append_value(
                cell.trim()
                    .parse()
                    .map_err(|_| "is not a number".to_string())?,
            ),
            Builder::Boolean(b) => {
                b.append_value(match cell.trim().to_ascii_lowercase().as_str() {
                    "true" | "t" | "1" | "yes" => true,
                    "false" | "f" | "0" | "no" => false,
                    _ => return Err("is not true or false".into()),
                })
            }
            Builder::Timestamp(..) => return Err("cannot be read as an instant".into()),
        }
        Ok(())
    }

    /// Appends a JSON value, or says why it does not fit the column's type.
    pub fn json(&mut self, value: &Value) -> Result<(), String> {
        match (self, value) {
            (b, Value::Null) => b.null(),
            (Builder::Json(b), v) => b.append_value(v.to_string()),
            (Builder::Text(b), Value::String(s)) => b.append_value(s),
            (Builder::Text(b), v @ (Value::Number(_) | Value::Bool(_))) => {
                b.append_value(v.to_string())
            }
            (Builder::Integer(b), Value::Number(n)) if n.is_i64() => {
                b.append_value(n.as_i64().unwrap_or_default())
            }
            (Builder::Float(b), Value::Number(n)) => b.append_value(n.as_f64().unwrap_or(f64::NAN)),
            (Builder::Boolean(b), Value::Bool(v)) => b.append_value(*v),
            (_, Value::Object(_) | Value::Array(_)) => {
                return Err("is an object or array where the column holds scalars".into());
            }
            (b, Value::String(s)) => return b.text(s),
            (b, _) => return Err(format!("does not fit a column of {}", b.name())),
        }
        Ok(())
    }

    /// Appends an integer (from a database).
    pub fn integer(&mut self, v: i64) {
        match self {
            Builder::Integer(b) => b.append_value(v),
            Builder::Float(b) => b.append_value(v as f64),
            Builder::Text(b) | Builder::Json(b) => b.append_value(v.to_string()),
            Builder::Boolean(b) => b.append_value(v != 0),
            Builder::Timestamp(b, _) => b.append_value(v),
        }
    }

    /// Appends a float (from a database), or says why it does not fit.
    pub fn float(&mut self, v: f64) -> Result<(), String> {
        match self {
            Builder::Float(b) => b.append_value(v),
            Builder::Text(b) | Builder::Json(b) => b.append_value(v.to_string()),
            _ => return Err(format!("is a float in a column of {}", self.name())),
        }
        Ok(())
    }

    /// Appends a boolean (from a database).
    pub fn boolean(&mut self, v: bool) {
        match self {
            Builder::Boolean(b) => b.append_value(v),
            Builder::Integer(b) => b.append_value(i64::from(v)),
            Builder::Float(b) => b.append_value(f64::from(u8::from(v))),
            Builder::Text(b) | Builder::Json(b) => b.append_value(if v { "true" } else { "false" }),
            Builder::Timestamp(b, _) => b.append_null(),
        }
    }

    /// The column's type, in words.
    fn name(&self) -> &'static str {
        match self {
            Builder::Text(_) => "text",
            Builder::Json(_) => "JSON",
            Builder::Integer(_) => "integers",
            Builder::Float(_) => "numbers",
            Builder::Boolean(_) => "booleans",
            Builder::Timestamp(..) => "instants",
        }
    }

    /// The array built so far (the builder starts again empty).
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(b) | Builder::Json(b) => Arc::new(b.finish()),
            Builder::Integer(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Boolean(b) => Arc::new(b.finish()),
            Builder::Timestamp(b, tz) => {
                let array = b.finish();
                if *tz {
                    Arc::new(array.with_timezone("UTC"))
                } else {
                    Arc::new(array)
                }
            }
        }
    }
}

/// The builders of a projection's columns, cut into batches of `batch_rows` rows.
pub struct Batcher {
    schema: SchemaRef,
    /// One builder a column, in the projection's order.
    pub builders: Vec<Builder>,
    rows: usize,
    batch_rows: usize,
}

impl Batcher {
    /// Builders for the columns of `schema` (a projection of a table's schema).
    pub fn new(schema: SchemaRef, batch_rows: usize) -> Batcher {
        let builders = schema
            .fields()
            .iter()
            .map(|f| Builder::new(Type::of(f)))
            .collect();
        Batcher {
            schema,
            builders,
            rows: 0,
            batch_rows: batch_rows.max(1),
        }
    }

    /// Counts a row whose columns were appended; hands a full batch to `emit` and says
    /// whether to go on.
    pub fn row(&mut self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> crate::error::Result<bool> {
        self.push();
        if self.rows < self.batch_rows {
            return Ok(true);
        }
        Ok(emit(self.batch()?))
    }

    /// Counts a row whose columns were appended (the caller takes the batches).
    pub fn push(&mut self) {
        self.rows += 1;
    }

    /// Hands the rows not yet sent to `emit`.
    pub fn finish(mut self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> crate::error::Result<()> {
        if self.rows > 0 {
            emit(self.batch()?);
        }
        Ok(())
    }

    /// The rows appended since the last batch, as a batch.
    pub fn batch(&mut self) -> crate::error::Result<RecordBatch> {
        let arrays = self.builders.iter_mut().map(Builder::finish).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &options,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_keep_their_text_unless_they_print_the_same() {
        let guess = |cells: &[&str]| {
            cells
                .iter()
                .fold(Guess::Nothing, |g, c| g.text(c))
                .decided()
        };
        assert_eq!(guess(&["1", "-2", ""]), Type::Integer);
        assert_eq!(guess(&["1", "2.5"]), Type::Float);
        assert_eq!(guess(&["007", "1"]), Type::Text);
        assert_eq!(guess(&["+15550100"]), Type::Text);
        assert_eq!(guess(&["TRUE", "false"]), Type::Boolean);
        assert_eq!(guess(&["t", "f", ""]), Type::Boolean);
        assert_eq!(guess(&["f", "m"]), Type::Text);
        assert_eq!(guess(&["true", "1"]), Type::Text);
        assert_eq!(guess(&["", ""]), Type::Text);
        assert_eq!(guess(&["nan"]), Type::Text);
        assert_eq!(guess(&["1e3", "0.5"]), Type::Float);
    }

    #[test]
    fn json_values_nest_or_mix_into_json_or_text() {
        let guess = |values: &str| {
            let values: Vec<Value> = serde_json::from_str(values).unwrap();
            values
                .iter()
                .fold(Guess::Nothing, |g, v| g.json(v))
                .decided()
        };
        assert_eq!(guess("[1, null, 2]"), Type::Integer);
        assert_eq!(guess("[1, 2.5]"), Type::Float);
        assert_eq!(guess("[\"a\", 1]"), Type::Text);
        assert_eq!(guess("[{\"a\":1}, \"x\"]"), Type::Json);
        assert_eq!(guess("[[1], null]"), Type::Json);
    }

    #[test]
    fn cells_that_do_not_fit_say_why() {
        let mut b = Builder::new(Type::Integer);
        assert_eq!(b.text("x").unwrap_err(), "is not an integer");
        b.text("12").unwrap();
        b.text("").unwrap();
        assert_eq!(b.finish().len(), 2);
        let mut b = Builder::new(Type::Json);
        assert_eq!(b.text("{oops").unwrap_err(), "is not JSON");
    }
}
