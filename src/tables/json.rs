//! JSON files as tables: NDJSON (one record a line, read as a stream), a JSON array of
//! records, or a document whose array of records sits at a JSON pointer (`realm.json#/users`;
//! a document is read whole). Columns are the records' keys in the order first seen; a key
//! whose values are objects or arrays is a JSON column (`->>` and the JSON functions read
//! it), a key with scalars of mixed kinds is text.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::columns::{Batcher, Guess};
use super::csv::cell_error;
use super::{Emit, Types, open_file};
use crate::error::{Error, Result};

/// A JSON file as a table.
#[derive(Debug)]
pub struct JsonFile {
    path: PathBuf,
    pointer: Option<String>,
    lines: bool,
    schema: SchemaRef,
}

impl JsonFile {
    /// Reads every record of `path` (at `pointer`, when given) to find the columns and guess
    /// the types that `types` does not set.
    pub fn open(path: &Path, pointer: Option<&str>, types: &Types) -> Result<JsonFile> {
        let lines = pointer.is_none() && first_byte(path)? != Some(b'[');
        let mut names: Vec<String> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        let mut guesses: Vec<Guess> = Vec::new();
        each(path, pointer, lines, &mut |_, record| {
            for (key, value) in &record.0 {
                let i = *index.entry(key.clone()).or_insert_with(|| {
                    names.push(key.clone());
                    guesses.push(Guess::Nothing);
                    names.len() - 1
                });
                guesses[i] = guesses[i].json(value);
            }
            Ok(true)
        })?;
        if names.is_empty() {
            return Err(input(
                path,
                1,
                "no records: the table would have no columns".into(),
            ));
        }
        let fields = types.fields(path, &names, |i| guesses[i].decided())?;
        Ok(JsonFile {
            path: path.to_path_buf(),
            pointer: pointer.map(str::to_string),
            lines,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The table's columns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Reads the records: see [`super::csv::CsvFile::read`].
    pub fn read(
        &self,
        columns: &[usize],
        limit: Option<usize>,
        batch_rows: usize,
        emit: Emit<'_>,
    ) -> Result<()> {
        let names: Vec<&str> = columns
            .iter()
            .map(|&i| self.schema.field(i).name().as_str())
            .collect();
        let mut batcher = Batcher::new(Arc::new(self.schema.project(columns)?), batch_rows);
        let mut total = 0usize;
        let mut stopped = false;
        let lines = self.lines;
        each(
            &self.path,
            self.pointer.as_deref(),
            lines,
            &mut |at, record| {
                if limit.is_some_and(|l| total >= l) {
                    return Ok(false);
                }
                for (builder, name) in batcher.builders.iter_mut().zip(&names) {
                    let value = record.get(name).unwrap_or(&Value::Null);
                    if let Err(why) = builder.json(value) {
                        let cell = value.to_string();
                        return Err(if lines {
                            cell_error(&self.path, at, name, &cell, &why)
                        } else {
                            let mut e = cell_error(&self.path, 1, name, &cell, &why);
                            if let Error::Input { message, .. } = &mut e {
                                *message = format!("record {at}: {message}");
                            }
                            e
                        });
                    }
                }
                total += 1;
                stopped = !batcher.row(emit)?;
                Ok(!stopped)
            },
        )?;
        if stopped {
            return Ok(());
        }
        batcher.finish(emit)
    }
}

fn input(path: &Path, line: u64, message: String) -> Error {
    Error::Input {
        path: path.display().to_string(),
        line,
        column: 1,
        message,
    }
}

/// The first byte that is not white space.
fn first_byte(path: &Path) -> Result<Option<u8>> {
    let mut reader = open_file(path)?;
    loop {
        let buf = reader.fill_buf().map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        if buf.is_empty() {
            return Ok(None);
        }
        if let Some(b) = buf.iter().find(|b| !b.is_ascii_whitespace()) {
            return Ok(Some(*b));
        }
        let n = buf.len();
        reader.consume(n);
    }
}

/// Calls `f` with each record (its line for NDJSON, its index + 1 in a document) until it
/// says stop.
fn each(
    path: &Path,
    pointer: Option<&str>,
    lines: bool,
    f: &mut dyn FnMut(u64, &Record) -> Result<bool>,
) -> Result<()> {
    let read_error = |source| Error::Read {
        path: path.display().to_string(),
        source,
    };
    let mut reader = open_file(path)?;
    if lines {
        let mut line = String::new();
        let mut number = 0;
        loop {
            line.clear();
            number += 1;
            if reader.read_line(&mut line).map_err(read_error)? == 0 {
                return Ok(());
            }
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = serde_json::from_str(&line).map_err(|e| {
                let hint = if number == 1 && e.is_eof() {
                    " (a JSON document over several lines: name the array of records inside \
                     it with FILE#/pointer, e.g. realm.json#/users)"
                } else {
                    ""
                };
                input(path, number, format!("not a JSON object a line: {e}{hint}"))
            })?;
            if !f(number, &record)? {
                return Ok(());
            }
        }
    }
    let document: Box<RawValue> = serde_json::from_reader(reader)
        .map_err(|e| input(path, e.line() as u64, format!("not JSON: {e}")))?;
    let mut at: &RawValue = &document;
    let mut holder;
    for segment in pointer.unwrap_or("").split('/').skip(1) {
        let key = segment.replace("~1", "/").replace("~0", "~");
        let next = match serde_json::from_str::<std::collections::HashMap<String, Box<RawValue>>>(
            at.get(),
        ) {
            Ok(mut object) => object.remove(&key),
            Err(_) => serde_json::from_str::<Vec<Box<RawValue>>>(at.get())
                .ok()
                .and_then(|mut items| {
                    key.parse::<usize>()
                        .ok()
                        .filter(|&i| i < items.len())
                        .map(|i| items.swap_remove(i))
                }),
        };
        holder = next.ok_or_else(|| {
            input(
                path,
                1,
                format!(
                    "the document has nothing at the JSON pointer {}",
                    pointer.unwrap_or("")
                ),
            )
        })?;
        at = &holder;
    }
    let records: Vec<Box<RawValue>> = serde_json::from_str(at.get()).map_err(|_| {
        input(
            path,
            1,
            format!(
                "{} is not an array of records",
                pointer.map_or("the document".to_string(), |p| format!("the value at {p}"))
            ),
        )
    })?;
    for (i, record) in records.iter().enumerate() {
        let record: Record = serde_json::from_str(record.get()).map_err(|_| {
            input(
                path,
                1,
                format!(
                    "record {} {}is not an object",
                    i + 1,
                    pointer.map_or(String::new(), |p| format!("at {p} "))
                ),
            )
        })?;
        if !f(i as u64 + 1, &record)? {
            break;
        }
    }
    Ok(())
}

/// One record: its members in the order written (the last of a repeated key wins).
struct Record(Vec<(String, Value)>);

impl Record {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Record;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Record, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Record(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}
