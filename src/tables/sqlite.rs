//! A table of a SQLite database file (`sqlite://PATH#TABLE`), opened read-only: column types
//! from the declared types (SQLite's affinity rules), only the asked columns selected, simple
//! filters and the limit run by SQLite.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::columns::{Batcher, Type};
use super::{Emit, quote_ident};
use crate::error::{Error, Result};

/// A table of a SQLite database.
#[derive(Debug)]
pub struct SqliteTable {
    path: PathBuf,
    table: String,
    schema: SchemaRef,
}

impl SqliteTable {
    /// Opens `path` read-only and reads the columns of `table`.
    pub fn open(path: &Path, table: &str) -> Result<SqliteTable> {
        let connection = connect(path, table)?;
        let fail = |e: rusqlite::Error| failure(path, table, &e);
        let exists: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(fail)?;
        if exists == 0 {
            let mut list = connection
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name",
                )
                .map_err(fail)?;
            let names: Vec<String> = list
                .query_map([], |r| r.get(0))
                .map_err(fail)?
                .collect::<std::result::Result<_, _>>()
                .map_err(fail)?;
            return Err(Error::usage(
                location(path, table),
                format!(
                    "no table {table} in the database (it has: {})",
                    names.join(", ")
                ),
            ));
        }
        let mut info = connection
            .prepare(&format!("PRAGMA table_info({})", quote_ident(table)))
            .map_err(fail)?;
        let fields = info
            .query_map([], |r| {
                let name: String = r.get(1)?;
                let declared: String = r.get(2)?;
                Ok(affinity(&declared).field(&name))
            })
            .map_err(fail)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(fail)?;
        Ok(SqliteTable {
            path: path.to_path_buf(),
            table: table.to_string(),
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The table's columns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The statement that [`SqliteTable::read`] runs.
    pub fn statement(
        &self,
        columns: &[usize],
        filter: Option<&str>,
        limit: Option<usize>,
    ) -> String {
        super::select(
            &self.schema,
            columns,
            &quote_ident(&self.table),
            filter,
            limit,
        )
    }

    /// Runs [`SqliteTable::statement`] and hands its rows to `emit` in batches.
    pub fn read(
        &self,
        columns: &[usize],
        filter: Option<&str>,
        limit: Option<usize>,
        batch_rows: usize,
        emit: Emit<'_>,
    ) -> Result<()> {
        let connection = connect(&self.path, &self.table)?;
        let fail = |e: rusqlite::Error| failure(&self.path, &self.table, &e);
        let sql = self.statement(columns, filter, limit);
        let mut statement = connection.prepare(&sql).map_err(fail)?;
        let schema = Arc::new(self.schema.project(columns)?);
        let mut batcher = Batcher::new(schema.clone(), batch_rows);
        let mut rows = statement.query([]).map_err(fail)?;
        let mut number = 0u64;
        while let Some(row) = rows.next().map_err(fail)? {
            number += 1;
            for (i, builder) in batcher.builders.iter_mut().enumerate() {
                let value = row.get_ref(i).map_err(fail)?;
                let fits = match value {
                    ValueRef::Null => {
                        builder.null();
                        Ok(())
                    }
                    ValueRef::Integer(v) => {
                        builder.integer(v);
                        Ok(())
                    }
                    ValueRef::Real(v) => builder.float(v),
                    ValueRef::Text(t) => match std::str::from_utf8(t) {
                        Ok(t) => builder.text(t),
                        Err(_) => Err("is not UTF-8 text".into()),
                    },
                    ValueRef::Blob(_) => Err("is a blob".into()),
                };
                if let Err(why) = fits {
                    return Err(Error::usage(
                        location(&self.path, &self.table),
                        format!(
                            "row {number}, column {}: the value {why} (declared type: {:?})",
                            schema.field(i).name(),
                            Type::of(schema.field(i))
                        ),
                    ));
                }
            }
            if !batcher.row(emit)? {
                return Ok(());
            }
        }
        batcher.finish(emit)
    }
}

/// How the table is named in messages.
fn location(path: &Path, table: &str) -> String {
    format!("sqlite://{}#{table}", path.display())
}

fn failure(path: &Path, table: &str, e: &rusqlite::Error) -> Error {
    Error::usage(location(path, table), format!("SQLite: {e}"))
}

fn connect(path: &Path, table: &str) -> Result<Connection> {
    if !path.is_file() {
        return Err(Error::usage(location(path, table), "no such database file"));
    }
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| failure(path, table, &e))
}

/// The column type of a declared SQLite type, by SQLite's affinity rules (booleans and JSON
/// by name, as SQLite applications declare them).
fn affinity(declared: &str) -> Type {
    let d = declared.to_ascii_uppercase();
    if d.contains("BOOL") {
        Type::Boolean
    } else if d.contains("JSON") {
        Type::Json
    } else if d.contains("INT") {
        Type::Integer
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        Type::Text
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        Type::Float
    } else {
        // NUMERIC, DATE, BLOB, none: values of any kind, kept as their text.
        Type::Text
    }
}
