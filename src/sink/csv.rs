//! CSV: a header row of the column names, then one row a record, quoted as RFC 4180 says
//! (by the `csv` crate), values rendered by [`super::render`], formulas neutralized.

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::render::{cells, is_formula, normalize_batch};
use super::{Options, Sink};
use crate::error::{Error, Result};

/// Writes batches as CSV.
pub struct CsvSink<W: Write> {
    writer: csv::Writer<W>,
    schema: SchemaRef,
    name: String,
    options: Options,
    cell: String,
}

impl<W: Write> CsvSink<W> {
    /// A CSV sink; the header row is written at once.
    pub fn new(writer: W, schema: SchemaRef, name: &str, options: Options) -> Result<Self> {
        let mut sink = CsvSink {
            writer: csv::WriterBuilder::new().from_writer(writer),
            schema,
            name: name.to_string(),
            options,
            cell: String::new(),
        };
        let header: Vec<String> = sink
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        sink.writer
            .write_record(&header)
            .map_err(|e| sink.error(e))?;
        Ok(sink)
    }

    fn error(&self, e: csv::Error) -> Error {
        // The I/O error itself, so that its kind (a closed pipe, a full disk) is kept.
        let source = match e.into_kind() {
            csv::ErrorKind::Io(io) => io,
            other => std::io::Error::other(format!("{other:?}")),
        };
        Error::Write {
            path: self.name.clone(),
            source,
        }
    }
}

impl<W: Write> Sink<W> for CsvSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let arrays = normalize_batch(batch)?;
        let columns = cells(&self.schema, &arrays)?;
        for row in 0..batch.num_rows() {
            for column in &columns {
                let guard = self.options.csv_guard;
                let result = match column.text(row) {
                    // Text written from where it is, without a copy.
                    Some(text) if !(guard && is_formula(text)) => self.writer.write_field(text),
                    _ => {
                        self.cell.clear();
                        column.cell(row, &mut self.cell);
                        if guard && is_formula(&self.cell) {
                            self.cell.insert(0, '\'');
                        }
                        self.writer.write_field(&self.cell)
                    }
                };
                result.map_err(|e| self.error(e))?;
            }
            self.writer
                .write_record(None::<&[u8]>)
                .map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<W> {
        let name = self.name.clone();
        self.writer.into_inner().map_err(|e| Error::Write {
            path: name,
            source: e.into_error(),
        })
    }
}
