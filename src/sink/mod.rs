//! Record batches → files: the end of the flow. One closed [`Format`] enum, each format a
//! writer over any `Write`, sharing the value-rendering rules of [`render`]. Outputs appear
//! whole or not at all ([`output`]).

pub mod csv;
pub mod json;
pub mod output;
pub mod parquet;
pub mod render;

use std::io::Write;
use std::path::Path;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::Result;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row (RFC 4180 quoting).
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object a line.
    Ndjson,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// The format an output path asks for by its extension (`.csv`, `.json`, `.ndjson`,
    /// `.jsonl`, `.parquet`, each also with `.gz`), and whether it is gzipped.
    pub fn from_path(path: &Path) -> Option<(Format, bool)> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let (name, gzip) = match name.strip_suffix(".gz") {
            Some(stem) => (stem.to_string(), true),
            None => (name, false),
        };
        let format = match name.rsplit_once('.')?.1 {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "parquet" => Format::Parquet,
            _ => return None,
        };
        Some((format, gzip))
    }
}

/// What the rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Whole users of the canonical schema: JSON outputs leave absent values out and merge
    /// `_extra` back in, so that each object is the user as it was read.
    Users,
    /// Chosen columns: every column in every row, null as `null`.
    Columns,
}

/// Options that change how values are written.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Neutralize CSV cells that a spreadsheet would run as formulas (on by default).
    pub csv_guard: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { csv_guard: true }
    }
}

/// A writer of record batches in one format.
pub trait Sink<W: Write> {
    /// Writes one batch.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Writes what the format needs at the end and gives the writer back.
    fn finish(self: Box<Self>) -> Result<W>;
}

/// A sink of `format` for batches of `schema`, writing to `writer`. `name` names the output
/// in error messages.
pub fn create<W: Write + Send + 'static>(
    format: Format,
    shape: Shape,
    schema: SchemaRef,
    writer: W,
    name: &str,
    options: Options,
) -> Result<Box<dyn Sink<W>>> {
    Ok(match format {
        Format::Csv => Box::new(csv::CsvSink::new(writer, schema, name, options)?),
        Format::Json => Box::new(json::JsonSink::new(writer, schema, shape, true, name)),
        Format::Ndjson => Box::new(json::JsonSink::new(writer, schema, shape, false, name)),
        Format::Parquet => Box::new(parquet::ParquetSink::new(writer, schema, shape)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_extensions() {
        let f = |p: &str| Format::from_path(Path::new(p));
        assert_eq!(f("a.csv"), Some((Format::Csv, false)));
        assert_eq!(f("dir/a.CSV.gz"), Some((Format::Csv, true)));
        assert_eq!(f("a.json"), Some((Format::Json, false)));
        assert_eq!(f("a.ndjson.gz"), Some((Format::Ndjson, true)));
        assert_eq!(f("a.parquet"), Some((Format::Parquet, false)));
        assert_eq!(f("a.txt"), None);
        assert_eq!(f("csv"), None);
    }
}
