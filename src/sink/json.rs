//! JSON (one array) and NDJSON (one object a line). Whole users are written as they were
//! read: absent values left out, JSON texts embedded, `_extra` merged back into the object.
//! Chosen columns are written in order, every one in every row.

use std::io::Write;

use datafusion::arrow::array::Array as _;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use super::render::{Cells, cells, normalize_batch, write_json_string};
use super::{Shape, Sink};
use crate::error::{Error, Result};
use crate::source::schema::EXTRA;

/// Writes one row of a batch as a JSON object: for whole users, absent values left out and
/// `_extra` merged back in; for chosen columns, every column in order.
pub struct ObjectWriter {
    /// Each column's `"name":` prefix, quoted once.
    keys: Vec<Vec<u8>>,
    shape: Shape,
    extra: Option<usize>,
}

impl ObjectWriter {
    /// A writer of the rows of batches of `schema`.
    pub fn new(schema: &Schema, shape: Shape) -> Self {
        let keys = schema
            .fields()
            .iter()
            .map(|f| {
                let mut key = Vec::new();
                write_json_string(f.name(), &mut key);
                key.push(b':');
                key
            })
            .collect();
        let extra = match shape {
            Shape::Users => schema.fields().iter().position(|f| f.name() == EXTRA),
            Shape::Columns => None,
        };
        ObjectWriter { keys, shape, extra }
    }

    /// Rows `rows` of `batch` (whose columns are those of `schema`), each as a JSON object.
    pub fn rows(
        &self,
        schema: &Schema,
        batch: &RecordBatch,
        rows: std::ops::Range<usize>,
    ) -> Result<Vec<Vec<u8>>> {
        each_row(schema, batch, rows, |columns, row, out, scratch| {
            self.write(columns, row, out, scratch)
        })
    }

    /// Appends row `row` of `columns` (the batch's [`cells`]) to `out` as a JSON object.
    pub fn write(
        &self,
        columns: &[Cells<'_>],
        row: usize,
        out: &mut Vec<u8>,
        scratch: &mut String,
    ) {
        out.push(b'{');
        let mut first = true;
        for (i, column) in columns.iter().enumerate() {
            if Some(i) == self.extra {
                continue;
            }
            if self.shape == Shape::Users && column.is_null(row) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&self.keys[i]);
            column.json(row, out, scratch);
        }
        if let Some(Cells::Json(extra)) = self.extra.map(|i| &columns[i])
            && extra.is_valid(row)
        {
            // `_extra` is a JSON object: its members join the user's own.
            append_members(extra.value(row), out, first);
        }
        out.push(b'}');
    }
}

/// Rows `rows` of `batch` (whose columns are those of `schema`), each written by `write`
/// (given the batch's cells, the row, its buffer and a scratch string).
pub fn each_row(
    schema: &Schema,
    batch: &RecordBatch,
    rows: std::ops::Range<usize>,
    write: impl Fn(&[Cells<'_>], usize, &mut Vec<u8>, &mut String),
) -> Result<Vec<Vec<u8>>> {
    let arrays = normalize_batch(batch)?;
    let columns = cells(schema, &arrays)?;
    let mut scratch = String::new();
    Ok(rows
        .map(|row| {
            let mut out = Vec::with_capacity(1024);
            write(&columns, row, &mut out, &mut scratch);
            out
        })
        .collect())
}

/// Appends the members of the JSON object text `object` to an object being written
/// (`first`: none written yet); says whether any was.
pub fn append_members(object: &str, out: &mut Vec<u8>, first: bool) -> bool {
    let inner = object.trim();
    let inner = inner
        .get(1..inner.len().saturating_sub(1))
        .unwrap_or_default();
    if inner.trim().is_empty() {
        return false;
    }
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(inner.as_bytes());
    true
}

/// Writes batches as a JSON array or as NDJSON.
pub struct JsonSink<W: Write> {
    writer: W,
    schema: SchemaRef,
    objects: ObjectWriter,
    array: bool,
    name: String,
    rows: u64,
    buf: Vec<u8>,
    scratch: String,
}

impl<W: Write> JsonSink<W> {
    /// A JSON sink: one array when `array`, else one object a line.
    pub fn new(writer: W, schema: SchemaRef, shape: Shape, array: bool, name: &str) -> Self {
        JsonSink {
            writer,
            objects: ObjectWriter::new(&schema, shape),
            schema,
            array,
            name: name.to_string(),
            rows: 0,
            buf: Vec::with_capacity(1 << 16),
            scratch: String::new(),
        }
    }

    fn flush_buf(&mut self) -> Result<()> {
        self.writer
            .write_all(&self.buf)
            .map_err(|source| Error::Write {
                path: self.name.clone(),
                source,
            })?;
        self.buf.clear();
        Ok(())
    }
}

impl<W: Write> Sink<W> for JsonSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let arrays = normalize_batch(batch)?;
        let columns = cells(&self.schema, &arrays)?;
        for row in 0..batch.num_rows() {
            if self.array {
                self.buf
                    .extend_from_slice(if self.rows == 0 { b"[\n" } else { b",\n" });
            }
            self.rows += 1;
            self.objects
                .write(&columns, row, &mut self.buf, &mut self.scratch);
            if !self.array {
                self.buf.push(b'\n');
            }
            if self.buf.len() >= 1 << 16 {
                self.flush_buf()?;
            }
        }
        self.flush_buf()
    }

    fn finish(mut self: Box<Self>) -> Result<W> {
        if self.array {
            self.buf
                .extend_from_slice(if self.rows == 0 { b"[]\n" } else { b"\n]\n" });
        }
        self.flush_buf()?;
        Ok(self.writer)
    }
}
