//! A table of a live PostgreSQL database (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB#TABLE`,
//! the password also from `PGPASSWORD`): column types from the database's own types, only
//! the asked columns selected, simple filters and the limit run by the server, and the rows
//! fetched through a cursor a batch at a time (bounded memory however large the table).
//! The password is never printed: the table is named by its URL without it.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use tokio_postgres::types::{FromSql, Type as PgType};
use tokio_postgres::{Client, Config, NoTls};

use super::columns::{Batcher, Builder, Type};
use super::quote_ident;
use crate::error::{Error, Result};

/// A table of a PostgreSQL database.
pub struct PostgresTable {
    config: Config,
    /// The URL without its password, and the table (for messages and `--explain`).
    shown: String,
    /// The table, quoted (`"schema"."table"` when a schema is named).
    quoted: String,
    /// Per column: selected as it is, or cast to text.
    native: Vec<bool>,
    schema: SchemaRef,
}

impl std::fmt::Debug for PostgresTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTable")
            .field("table", &self.shown)
            .finish()
    }
}

/// `url` without the password of its user part.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

impl PostgresTable {
    /// Connects to `url` and reads the columns of `table` (`name` or `schema.name`).
    pub async fn open(url: &str, table: &str) -> Result<PostgresTable> {
        let shown = format!("{}#{table}", redact(url));
        let mut config: Config = url
            .parse()
            .map_err(|e| Error::usage(&shown, format!("not a PostgreSQL URL: {e}")))?;
        if config.get_password().is_none()
            && let Ok(password) = std::env::var("PGPASSWORD")
        {
            config.password(password);
        }
        let quoted = table
            .split('.')
            .map(quote_ident)
            .collect::<Vec<_>>()
            .join(".");
        let client = connect(&config, &shown).await?;
        let statement = client
            .prepare(&format!("SELECT * FROM {quoted} LIMIT 0"))
            .await
            .map_err(|e| failure(&shown, &e))?;
        let mut fields = Vec::new();
        let mut native = Vec::new();
        for column in statement.columns() {
            let (t, as_is) = match *column.type_() {
                PgType::BOOL => (Type::Boolean, true),
                PgType::INT2 | PgType::INT4 | PgType::INT8 => (Type::Integer, true),
                PgType::FLOAT4 | PgType::FLOAT8 => (Type::Float, true),
                PgType::TEXT | PgType::VARCHAR | PgType::BPCHAR | PgType::NAME => {
                    (Type::Text, true)
                }
                PgType::TIMESTAMP => (Type::Timestamp { tz: false }, true),
                PgType::TIMESTAMPTZ => (Type::Timestamp { tz: true }, true),
                PgType::JSON | PgType::JSONB => (Type::Json, false),
                // uuid, numeric, date, citext, arrays, …: their text as PostgreSQL prints it.
                _ => (Type::Text, false),
            };
            fields.push(t.field(column.name()));
            native.push(as_is);
        }
        Ok(PostgresTable {
            config,
            shown,
            quoted,
            native,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The table's columns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// How the table is named in messages (no password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The statement [`PostgresTable::read`] runs.
    pub fn statement(
        &self,
        columns: &[usize],
        filter: Option<&str>,
        limit: Option<usize>,
    ) -> String {
        let cast: Vec<Option<String>> = columns
            .iter()
            .map(|&i| {
                (!self.native[i])
                    .then(|| format!("{}::text", quote_ident(self.schema.field(i).name())))
            })
            .collect();
        super::select_with(&self.schema, columns, &cast, &self.quoted, filter, limit)
    }

    /// Runs [`PostgresTable::statement`] in a read-only transaction and sends its rows, a
    /// cursor's fetch of `batch_rows` at a time, to `sink` until it is closed.
    pub async fn read(
        &self,
        columns: &[usize],
        filter: Option<&str>,
        limit: Option<usize>,
        batch_rows: usize,
        sink: tokio::sync::mpsc::Sender<datafusion::error::Result<RecordBatch>>,
    ) -> Result<()> {
        let mut client = connect(&self.config, &self.shown).await?;
        let fail = |e: tokio_postgres::Error| failure(&self.shown, &e);
        let sql = self.statement(columns, filter, limit);
        let transaction = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(fail)?;
        let statement = transaction.prepare(&sql).await.map_err(fail)?;
        let portal = transaction.bind(&statement, &[]).await.map_err(fail)?;
        let schema = Arc::new(self.schema.project(columns)?);
        let mut batcher = Batcher::new(schema.clone(), batch_rows);
        loop {
            let rows = transaction
                .query_portal(&portal, batch_rows.max(1) as i32)
                .await
                .map_err(fail)?;
            if rows.is_empty() {
                return Ok(());
            }
            for row in &rows {
                for (i, builder) in batcher.builders.iter_mut().enumerate() {
                    put(row, i, builder).map_err(|e| {
                        Error::usage(
                            &self.shown,
                            format!("column {}: {e}", schema.field(i).name()),
                        )
                    })?;
                }
                batcher.push();
            }
            let done = rows.len() < batch_rows;
            if sink.send(Ok(batcher.batch()?)).await.is_err() || done {
                return Ok(());
            }
        }
    }
}

/// Appends column `i` of `row` to `builder`.
fn put(
    row: &tokio_postgres::Row,
    i: usize,
    builder: &mut Builder,
) -> std::result::Result<(), tokio_postgres::Error> {
    let t = row.columns()[i].type_().clone();
    match t {
        PgType::BOOL => match row.try_get::<_, Option<bool>>(i)? {
            Some(v) => builder.boolean(v),
            None => builder.null(),
        },
        PgType::INT2 => opt(builder, row.try_get::<_, Option<i16>>(i)?.map(i64::from)),
        PgType::INT4 => opt(builder, row.try_get::<_, Option<i32>>(i)?.map(i64::from)),
        PgType::INT8 => opt(builder, row.try_get::<_, Option<i64>>(i)?),
        PgType::FLOAT4 | PgType::FLOAT8 => {
            let v = if t == PgType::FLOAT4 {
                row.try_get::<_, Option<f32>>(i)?.map(f64::from)
            } else {
                row.try_get::<_, Option<f64>>(i)?
            };
            match v {
                Some(v) => {
                    let _ = builder.float(v);
                }
                None => builder.null(),
            }
        }
        PgType::TIMESTAMP | PgType::TIMESTAMPTZ => {
            opt(builder, row.try_get::<_, Option<Micros>>(i)?.map(|m| m.0))
        }
        _ => match row.try_get::<_, Option<&str>>(i)? {
            Some(text) => match builder {
                Builder::Text(b) | Builder::Json(b) => b.append_value(text),
                other => {
                    let _ = other.text(text);
                }
            },
            None => builder.null(),
        },
    }
    Ok(())
}

fn opt(builder: &mut Builder, v: Option<i64>) {
    match v {
        Some(v) => builder.integer(v),
        None => builder.null(),
    }
}

/// A PostgreSQL timestamp as microseconds since the Unix epoch.
struct Micros(i64);

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const POSTGRES_EPOCH: i64 = 946_684_800_000_000;

impl<'a> FromSql<'a> for Micros {
    fn from_sql(
        _: &PgType,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let bytes: [u8; 8] = raw.try_into()?;
        Ok(Micros(
            i64::from_be_bytes(bytes).saturating_add(POSTGRES_EPOCH),
        ))
    }

    fn accepts(t: &PgType) -> bool {
        matches!(*t, PgType::TIMESTAMP | PgType::TIMESTAMPTZ)
    }
}

/// A connection, its driver spawned on the runtime.
async fn connect(config: &Config, shown: &str) -> Result<Client> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| failure(shown, &e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn failure(shown: &str, e: &tokio_postgres::Error) -> Error {
    use std::error::Error as _;
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        message = format!("{message}: {c}");
        cause = c.source();
    }
    Error::usage(shown, format!("PostgreSQL: {message}"))
}
