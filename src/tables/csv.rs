//! CSV and TSV files with a header row, gzipped or not: the delimiter (comma, tab or
//! semicolon) is read from the header, each column's type is guessed from every cell (or set
//! by `--table-schema`), and the rows are read as a stream, only the asked columns built.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};

use super::columns::{Batcher, Guess};
use super::{Emit, Types, open_file};
use crate::error::{Error, Result};

/// A CSV file as a table.
#[derive(Debug)]
pub struct CsvFile {
    path: PathBuf,
    delimiter: u8,
    schema: SchemaRef,
}

impl CsvFile {
    /// Reads the header of `path`, then every row to guess the column types that `types`
    /// does not set.
    pub fn open(path: &Path, types: &Types) -> Result<CsvFile> {
        let delimiter = delimiter(path)?;
        let mut reader = reader(path, delimiter)?;
        let names = header(path, &mut reader)?;
        let mut guesses = vec![Guess::Nothing; names.len()];
        let mut record = csv::StringRecord::new();
        while next(path, &mut reader, &mut record)? {
            for (guess, cell) in guesses.iter_mut().zip(record.iter()) {
                *guess = guess.text(cell);
            }
        }
        let fields = types.fields(path, &names, |i| guesses[i].decided())?;
        Ok(CsvFile {
            path: path.to_path_buf(),
            delimiter,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The table's columns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Reads the rows: columns `columns` (indices into the schema), at most `limit` rows,
    /// batches of `batch_rows`, each handed to `emit` (which says whether to go on).
    pub fn read(
        &self,
        columns: &[usize],
        limit: Option<usize>,
        batch_rows: usize,
        emit: Emit<'_>,
    ) -> Result<()> {
        let mut reader = reader(&self.path, self.delimiter)?;
        header(&self.path, &mut reader)?;
        let mut batcher = Batcher::new(Arc::new(self.schema.project(columns)?), batch_rows);
        let mut record = csv::StringRecord::new();
        let mut total = 0;
        while limit.is_none_or(|l| total < l) && next(&self.path, &mut reader, &mut record)? {
            for (builder, &i) in batcher.builders.iter_mut().zip(columns) {
                if let Err(why) = builder.text(&record[i]) {
                    let line = record.position().map_or(0, |p| p.line());
                    let name = self.schema.field(i).name();
                    return Err(cell_error(&self.path, line, name, &record[i], &why));
                }
            }
            total += 1;
            if !batcher.row(emit)? {
                return Ok(());
            }
        }
        batcher.finish(emit)
    }
}

/// An error about one cell: file, line, column, the cell (shortened) and why.
pub(super) fn cell_error(path: &Path, line: u64, column: &str, cell: &str, why: &str) -> Error {
    let shown: String = cell.chars().take(40).collect();
    let more = if shown.len() < cell.len() { "…" } else { "" };
    Error::Input {
        path: path.display().to_string(),
        line,
        column: 1,
        message: format!(
            "column {column}: {shown:?}{more} {why} (the column's type was guessed from the \
             other rows; set it with --table-schema)"
        ),
    }
}

/// The delimiter: a tab for `.tsv`/`.tab`, else the most frequent of `,` `\t` `;` in the
/// header line.
fn delimiter(path: &Path) -> Result<u8> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let name = name.trim_end_matches(".gz");
    if name.ends_with(".tsv") || name.ends_with(".tab") {
        return Ok(b'\t');
    }
    let mut first = String::new();
    std::io::BufRead::read_line(&mut open_file(path)?, &mut first).map_err(|source| {
        Error::Read {
            path: path.display().to_string(),
            source,
        }
    })?;
    let count = |c: char| first.matches(c).count();
    Ok([b',', b'\t', b';']
        .into_iter()
        .max_by_key(|&d| (count(d as char), d == b','))
        .unwrap_or(b','))
}

fn reader(path: &Path, delimiter: u8) -> Result<csv::Reader<Box<dyn std::io::BufRead + Send>>> {
    Ok(csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .from_reader(open_file(path)?))
}

/// The header row: every column named, no name twice.
fn header(
    path: &Path,
    reader: &mut csv::Reader<Box<dyn std::io::BufRead + Send>>,
) -> Result<Vec<String>> {
    let mut record = csv::StringRecord::new();
    if !next(path, reader, &mut record)? {
        return Err(Error::Input {
            path: path.display().to_string(),
            line: 1,
            column: 1,
            message: "the file is empty: a CSV table needs a header row".into(),
        });
    }
    let names: Vec<String> = record.iter().map(|n| n.trim().to_string()).collect();
    for (i, name) in names.iter().enumerate() {
        let problem = if name.is_empty() {
            Some(format!("column {} of the header has no name", i + 1))
        } else if names[..i].contains(name) {
            Some(format!("the header names {name:?} twice"))
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(Error::Input {
                path: path.display().to_string(),
                line: 1,
                column: 1,
                message,
            });
        }
    }
    Ok(names)
}

/// The next record, or an error naming the line (bad UTF-8, a row of the wrong length).
fn next(
    path: &Path,
    reader: &mut csv::Reader<Box<dyn std::io::BufRead + Send>>,
    record: &mut csv::StringRecord,
) -> Result<bool> {
    reader.read_record(record).map_err(|e| {
        let line = e.position().map_or(0, |p| p.line());
        let message = match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("the row has {len} fields, the header {expected_len}"),
            csv::ErrorKind::Utf8 { .. } => "the row is not UTF-8 text".into(),
            csv::ErrorKind::Io(io) => format!("cannot read: {io}"),
            _ => e.to_string(),
        };
        Error::Input {
            path: path.display().to_string(),
            line,
            column: 1,
            message,
        }
    })
}
