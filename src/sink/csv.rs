//! CSV: a header row of the column names, then one row a record, quoted as RFC 4180 says
//! (and as the `csv` crate writes it: a field in quotes when it holds a comma, a quote or a
//! line break, a quote doubled, a record of one empty field written `""`), values rendered
//! by [`super::render`], formulas neutralized.
//!
//! Rows are put together in a buffer of userport's own rather than through the `csv`
//! crate's writer, whose test of each field for quoting looks at one byte at a time: here a
//! field is looked at eight bytes at a time (see [`needs_quotes`]), and a unit test holds the
//! output to the crate's, byte for byte.

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::render::{cells, is_formula, normalize_batch};
use super::{Options, Sink};
use crate::error::{Error, Result};

/// Bytes of rows gathered before they are handed to the writer.
const BUFFER: usize = 1 << 16;

/// Writes batches as CSV.
pub struct CsvSink<W: Write> {
    out: W,
    /// Rows not yet handed to `out`.
    buf: Vec<u8>,
    schema: SchemaRef,
    name: String,
    options: Options,
    cell: String,
}

impl<W: Write> CsvSink<W> {
    /// A CSV sink; the header row is written at once.
    pub fn new(writer: W, schema: SchemaRef, name: &str, options: Options) -> Result<Self> {
        let mut sink = CsvSink {
            out: writer,
            buf: Vec::with_capacity(BUFFER + (BUFFER >> 2)),
            schema,
            name: name.to_string(),
            options,
            cell: String::new(),
        };
        let fields = sink.schema.fields().clone();
        let start = sink.buf.len();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                sink.buf.push(b',');
            }
            push_field(&mut sink.buf, field.name().as_bytes());
        }
        end_record(&mut sink.buf, start);
        sink.spill()?;
        Ok(sink)
    }

    fn error(&self, source: std::io::Error) -> Error {
        Error::Write {
            path: self.name.clone(),
            source,
        }
    }

    /// Hands the buffered rows to the writer once there are enough of them.
    fn spill(&mut self) -> Result<()> {
        if self.buf.len() >= BUFFER {
            self.out.write_all(&self.buf).map_err(|e| self.error(e))?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl<W: Write> Sink<W> for CsvSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let arrays = normalize_batch(batch)?;
        let columns = cells(&self.schema, &arrays)?;
        let guard = self.options.csv_guard;
        for row in 0..batch.num_rows() {
            let start = self.buf.len();
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    self.buf.push(b',');
                }
                match column.text(row) {
                    // Text written from where it is, without a copy.
                    Some(text) if !(guard && is_formula(text)) => {
                        push_field(&mut self.buf, text.as_bytes())
                    }
                    _ => {
                        self.cell.clear();
                        column.cell(row, &mut self.cell);
                        if guard && is_formula(&self.cell) {
                            self.cell.insert(0, '\'');
                        }
                        push_field(&mut self.buf, self.cell.as_bytes());
                    }
                }
            }
            end_record(&mut self.buf, start);
            self.spill()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<W> {
        let written = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        written.map_err(|e| self.error(e))?;
        Ok(self.out)
    }
}

/// Appends `field` to `buf`, in quotes (each quote doubled) when it needs them.
fn push_field(buf: &mut Vec<u8>, field: &[u8]) {
    if !needs_quotes(field) {
        buf.extend_from_slice(field);
        return;
    }
    buf.push(b'"');
    let mut rest = field;
    while let Some(at) = memchr::memchr(b'"', rest) {
        buf.extend_from_slice(&rest[..=at]);
        buf.push(b'"');
        rest = &rest[at + 1..];
    }
    buf.extend_from_slice(rest);
    buf.push(b'"');
}

/// Ends the record that started at `start` of `buf`: a record with nothing written (one
/// empty field) is written `""`, so that it is not read as no record at all.
fn end_record(buf: &mut Vec<u8>, start: usize) {
    if buf.len() == start {
        buf.extend_from_slice(b"\"\"");
    }
    buf.push(b'\n');
}

/// Whether a field holds a comma, a quote, a carriage return or a line feed. All four are
/// below `-`, so a field is read eight bytes at a time and only a word holding a byte below
/// `-` (a space, say) is looked at byte by byte.
fn needs_quotes(field: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let special = |b: &u8| matches!(b, b',' | b'"' | b'\r' | b'\n');
    let mut words = field.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let w = u64::from_le_bytes(bytes);
        // Some byte of `w` is below `-` (the test gives no false negatives).
        let low = w.wrapping_sub(ONES * u64::from(b'-')) & !w & HIGHS != 0;
        if low && word.iter().any(special) {
            return true;
        }
    }
    words.remainder().iter().any(special)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows as the `csv` crate's writer writes them.
    fn by_the_crate(rows: &[Vec<&str>]) -> Vec<u8> {
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::new());
        for row in rows {
            writer.write_record(row).unwrap();
        }
        writer.into_inner().unwrap()
    }

    fn by_us(rows: &[Vec<&str>]) -> Vec<u8> {
        let mut buf = Vec::new();
        for row in rows {
            let start = buf.len();
            for (i, field) in row.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                push_field(&mut buf, field.as_bytes());
            }
            end_record(&mut buf, start);
        }
        buf
    }

    #[test]
    fn fields_are_quoted_as_the_csv_crate_quotes_them() {
        let tricky = [
            "",
            "plain",
            "Zoë López",
            "a,b",
            "say \"hi\"",
            "\"",
            "\"\"",
            "line\nbreak",
            "carriage\rreturn",
            "crlf\r\n",
            "exactly8",
            "sixteen bytes!!!",
            "seventeen, bytes!",
            "long text without any of them, until the end\"",
            "  spaces  ",
            "'=1+2",
            "tab\there",
            "#hash",
            "é,",
        ];
        let mut rows: Vec<Vec<&str>> = tricky.iter().map(|f| vec![*f]).collect();
        rows.push(vec!["", ""]);
        rows.push(vec!["", "", ""]);
        rows.push(tricky.to_vec());
        for a in tricky {
            for b in tricky {
                rows.push(vec![a, b]);
            }
        }
        assert_eq!(
            String::from_utf8(by_us(&rows)).unwrap(),
            String::from_utf8(by_the_crate(&rows)).unwrap()
        );
        // Every byte below `-` at every place of a field of every length up to 20.
        let mut rows = Vec::new();
        let mut texts = Vec::new();
        for len in 1..=20 {
            for at in 0..len {
                for b in 0u8..b'-' {
                    let mut text = vec![b'x'; len];
                    text[at] = b;
                    texts.push(String::from_utf8(text).unwrap());
                }
            }
        }
        for text in &texts {
            rows.push(vec![text.as_str(), "after"]);
        }
        assert_eq!(by_us(&rows), by_the_crate(&rows));
    }
}
