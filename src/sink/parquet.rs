//! Parquet through the `parquet` crate's Arrow writer. Whole users keep their typed columns
//! and JSON texts; chosen columns that hold JSON values are written as their report text
//! (strings as they are, numbers as JavaScript prints them, objects and arrays as JSON).

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::render::json_cell;
use super::{Shape, Sink};
use crate::error::Result;
use crate::source::schema::is_json;

/// Most rows in one row group.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Most (estimated, encoded) bytes in one row group.
const ROW_GROUP_BYTES: usize = 64 << 20;

/// Writes batches as one Parquet file.
pub struct ParquetSink<W: Write + Send> {
    writer: ArrowWriter<W>,
    /// Columns whose JSON values are rendered to text before writing.
    render: Vec<bool>,
    schema: SchemaRef,
}

impl<W: Write + Send> ParquetSink<W> {
    /// A Parquet sink (Snappy-compressed).
    pub fn new(writer: W, schema: SchemaRef, shape: Shape) -> Result<Self> {
        let render: Vec<bool> = schema
            .fields()
            .iter()
            .map(|f| shape == Shape::Columns && is_json(f) && f.data_type() == &DataType::Utf8)
            .collect();
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .zip(&render)
            .map(|(f, &r)| {
                if r {
                    Field::new(f.name(), DataType::Utf8, true)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        // Row groups are bounded so that memory stays flat however many users there are.
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .build();
        let writer = ArrowWriter::try_new(writer, schema.clone(), Some(properties))?;
        Ok(ParquetSink {
            writer,
            render,
            schema,
        })
    }
}

impl<W: Write + Send> Sink<W> for ParquetSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(&self.render)
            .map(|(array, &render)| {
                if render {
                    rendered(array)
                } else {
                    array.clone()
                }
            })
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.writer.write(&batch)?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<W> {
        Ok(self.writer.into_inner()?)
    }
}

/// A JSON text column as report text; JSON `null` becomes a null.
fn rendered(array: &ArrayRef) -> ArrayRef {
    let texts = array.as_string::<i32>();
    let mut out = StringBuilder::with_capacity(texts.len(), texts.value_data().len());
    let mut cell = String::new();
    for text in texts.iter() {
        match text {
            Some(t) if !crate::js::cell::is_blank(t) => {
                cell.clear();
                json_cell(t, &mut cell);
                out.append_value(&cell);
            }
            _ => out.append_null(),
        }
    }
    Arc::new(out.finish())
}
