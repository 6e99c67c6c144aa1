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

/// The writer's memory (the row group's encoded column chunks and the pages and dictionaries
/// being filled) past which the row group is closed and written out: the writer holds a row
/// group until it closes, so this bounds its memory on wide users, where the row counts
/// alone would let it hold tens of megabytes.
const ROW_GROUP_MEMORY: usize = 4 << 20;

/// Bytes of values in one data page, and most bytes of a column's dictionary (past which
/// the column falls back to plain values). Small pages and dictionaries keep each of the
/// two dozen columns' buffers small; a column of unique values (ids, emails, dates) gives
/// its dictionary up early instead of filling a megabyte first (measured on 1M users: the
/// parquet crate's 1 MB defaults took 1.7 s and 148 MB, these 1.4 s and 113 MB, for a file
/// within 1% of the size).
const PAGE_BYTES: usize = 128 << 10;

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
        // Row groups are bounded (in rows, and in the writer's memory after each batch) so
        // that memory stays flat however many users there are and however wide they are.
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_data_page_size_limit(PAGE_BYTES)
            .set_dictionary_page_size_limit(PAGE_BYTES)
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
        if self.writer.memory_size() > ROW_GROUP_MEMORY {
            self.writer.flush()?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{StringArray, UInt64Array};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// Wide users close their row groups by the writer's memory long before the row count
    /// does, and every row comes back in order.
    #[test]
    fn wide_rows_close_row_groups_by_memory() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::UInt64, false),
            Field::new("text", DataType::Utf8, false),
        ]));
        let mut sink =
            Box::new(ParquetSink::new(Vec::new(), schema.clone(), Shape::Users).unwrap());
        let rows = 24_000u64;
        for start in (0..rows).step_by(1000) {
            let n: Vec<u64> = (start..start + 1000).collect();
            // A kilobyte of text that does not repeat (no dictionary, little compression).
            let text: Vec<String> = n
                .iter()
                .map(|i| {
                    (0..64)
                        .map(|k| {
                            format!("{:016x}", (i * 64 + k).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                        })
                        .collect()
                })
                .collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(UInt64Array::from(n)),
                    Arc::new(StringArray::from(text)),
                ],
            )
            .unwrap();
            sink.write(&batch).unwrap();
        }
        let bytes = sink.finish().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let groups = reader.metadata().num_row_groups();
        assert!(groups >= 2, "{groups} row group(s) for 24 MB of text");
        assert!((groups as u64) < rows / 1000, "{groups} row groups");
        let mut next = 0u64;
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            let n = batch
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
            for v in n.values() {
                assert_eq!(*v, next);
                next += 1;
            }
        }
        assert_eq!(next, rows);
    }
}
