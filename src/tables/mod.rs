//! Foreign tables: users that live somewhere else than an Auth0 export, as more DataFusion
//! tables beside `users` (`--table NAME=SOURCE`). A SOURCE is a CSV/TSV file ([`csv`]), an
//! NDJSON file, a JSON array or a document's array at a JSON pointer ([`json`]) — gzipped or
//! not —, a Parquet file (DataFusion's own reader), a SQLite database ([`sqlite`]) or a live
//! PostgreSQL database ([`postgres`]). Each is a [`ForeignTable`] whose scan, a
//! [`ForeignExec`], reads only the columns the plan uses and streams its batches; databases
//! also run the simple filters and the limit themselves (shown by `--explain`).

pub mod columns;
pub mod csv;
pub mod json;
pub mod postgres;
pub mod sqlite;

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::expr_rewriter::unnormalize_cols;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use futures::StreamExt;

use crate::error::{Error, Result};
use columns::Type;

/// Takes one batch of rows; says whether to go on.
pub type Emit<'a> = &'a mut dyn FnMut(RecordBatch) -> bool;

/// One `--table NAME=SOURCE`.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The table's name in SQL.
    pub name: String,
    /// Where its rows are.
    pub location: Location,
}

/// Where a foreign table's rows are.
#[derive(Clone)]
pub enum Location {
    /// A file (the format from its name or its first bytes), and the JSON pointer of its
    /// array of records when given (`FILE#/pointer`).
    File {
        /// The file.
        path: PathBuf,
        /// `#/users` and the like.
        pointer: Option<String>,
    },
    /// `sqlite://PATH#TABLE`.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The table or view.
        table: String,
    },
    /// `postgres://…#TABLE` (or `postgresql://`).
    Postgres {
        /// The URL, password included (never shown).
        url: String,
        /// The table (`name` or `schema.name`).
        table: String,
    },
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path, pointer } => {
                write!(
                    f,
                    "{}{}",
                    path.display(),
                    pointer
                        .as_deref()
                        .map_or(String::new(), |p| format!("#{p}"))
                )
            }
            Location::Sqlite { path, table } => write!(f, "sqlite://{}#{table}", path.display()),
            Location::Postgres { url, table } => write!(f, "{}#{table}", postgres::redact(url)),
        }
    }
}

impl Spec {
    /// Reads `NAME=SOURCE`.
    pub fn parse(arg: &str) -> Result<Spec> {
        let context = || format!("--table {}", postgres::redact(arg));
        let Some((name, source)) = arg.split_once('=') else {
            return Err(Error::usage(
                context(),
                "expected NAME=SOURCE, e.g. auth_user=users.csv",
            ));
        };
        let name = name.trim();
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::usage(
                context(),
                format!("{name:?} is not a table name (letters, digits and _, not first a digit)"),
            ));
        }
        let database = |rest: &str, what: &str| -> Result<(String, String)> {
            match rest.rsplit_once('#') {
                Some((db, table)) if !table.is_empty() && !db.is_empty() => {
                    Ok((db.to_string(), table.to_string()))
                }
                _ => Err(Error::usage(
                    context(),
                    format!("name the table after #: {what}#TABLE"),
                )),
            }
        };
        let location = if let Some(rest) = source.strip_prefix("sqlite://") {
            let (path, table) = database(rest, "sqlite://PATH")?;
            Location::Sqlite {
                path: PathBuf::from(path),
                table,
            }
        } else if source.starts_with("postgres://") || source.starts_with("postgresql://") {
            let (url, table) = database(source, "postgres://USER@HOST/DB")?;
            Location::Postgres { url, table }
        } else {
            match source.split_once("#/") {
                Some((path, pointer)) => Location::File {
                    path: PathBuf::from(path),
                    pointer: Some(format!("/{pointer}")),
                },
                None => Location::File {
                    path: PathBuf::from(source),
                    pointer: None,
                },
            }
        };
        Ok(Spec {
            name: name.to_string(),
            location,
        })
    }
}

/// Column types set by `--table-schema NAME=FILE` (a JSON object of column → type).
#[derive(Debug, Clone, Default)]
pub struct Types {
    file: Option<PathBuf>,
    types: BTreeMap<String, Type>,
}

impl Types {
    /// Reads a `--table-schema` file: `{"column": "text" | "integer" | "float" | "boolean" |
    /// "json", …}`.
    pub fn read(path: &Path) -> Result<Types> {
        let context = format!("--table-schema {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        let object: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|e| {
            Error::usage(
                &context,
                format!("expected {{\"column\": \"text\", …}}: {e}"),
            )
        })?;
        let mut types = BTreeMap::new();
        for (column, name) in object {
            let t = Type::parse(&name).ok_or_else(|| {
                Error::usage(
                    &context,
                    format!("column {column}: unknown type {name:?} (text, integer, float, boolean or json)"),
                )
            })?;
            types.insert(column, t);
        }
        Ok(Types {
            file: Some(path.to_path_buf()),
            types,
        })
    }

    /// The fields of columns `names`: the type this file sets, else `guessed(index)`; a
    /// column the file names that the table lacks is an error.
    fn fields(
        &self,
        path: &Path,
        names: &[String],
        guessed: impl Fn(usize) -> Type,
    ) -> Result<Vec<Field>> {
        if let Some(missing) = self.types.keys().find(|k| !names.contains(k)) {
            return Err(Error::usage(
                format!(
                    "--table-schema {}",
                    self.file.as_deref().unwrap_or(path).display()
                ),
                format!(
                    "{} has no column {missing} (it has: {})",
                    path.display(),
                    names.join(", ")
                ),
            ));
        }
        Ok(names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                self.types
                    .get(name)
                    .copied()
                    .unwrap_or_else(|| guessed(i))
                    .field(name)
            })
            .collect())
    }

    /// Whether the file sets any type.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

/// A file's bytes: buffered, inflated when gzip, without a UTF-8 byte-order mark.
pub(crate) fn open_file(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let read_error = |source| Error::Read {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut reader = crate::source::input::inflated(Box::new(file)).map_err(read_error)?;
    let head = reader.fill_buf().map_err(read_error)?;
    let bom = head.len() - crate::source::input::without_bom(head).len();
    reader.consume(bom);
    Ok(reader)
}

/// A SQL identifier, double-quoted (as SQLite and PostgreSQL read it).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `SELECT columns FROM table [WHERE filter] [LIMIT n]`.
pub(crate) fn select(
    schema: &SchemaRef,
    columns: &[usize],
    table: &str,
    filter: Option<&str>,
    limit: Option<usize>,
) -> String {
    select_with(
        schema,
        columns,
        &vec![None; columns.len()],
        table,
        filter,
        limit,
    )
}

/// [`select`], with some columns selected as an expression (`cast[i]`).
pub(crate) fn select_with(
    schema: &SchemaRef,
    columns: &[usize],
    cast: &[Option<String>],
    table: &str,
    filter: Option<&str>,
    limit: Option<usize>,
) -> String {
    let list: Vec<String> = columns
        .iter()
        .zip(cast)
        .map(|(&i, cast)| {
            cast.clone()
                .unwrap_or_else(|| quote_ident(schema.field(i).name()))
        })
        .collect();
    // No column asked (count(*)): one constant per row.
    let list = if list.is_empty() {
        "1".to_string()
    } else {
        list.join(", ")
    };
    let mut sql = format!("SELECT {list} FROM {table}");
    if let Some(filter) = filter {
        sql.push_str(&format!(" WHERE {filter}"));
    }
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    sql
}

/// What a foreign table reads.
#[derive(Debug)]
enum Origin {
    Csv(csv::CsvFile),
    Json(json::JsonFile),
    Sqlite(sqlite::SqliteTable),
    Postgres(Box<postgres::PostgresTable>),
}

/// A foreign table: see the module's documentation.
#[derive(Debug)]
pub struct ForeignTable {
    location: Location,
    origin: Arc<Origin>,
    schema: SchemaRef,
}

/// Registers the table `spec` names in `ctx`, with the column types of `types` (files only).
pub async fn register(ctx: &SessionContext, spec: &Spec, types: &Types) -> Result<()> {
    let origin = match &spec.location {
        Location::File { path, pointer } => {
            if !path.is_file() {
                return Err(Error::usage(
                    format!("--table {}={}", spec.name, spec.location),
                    "no such file",
                ));
            }
            match (format(path)?, pointer) {
                (Format::Parquet, None) => {
                    if path.to_string_lossy().to_ascii_lowercase().ends_with(".gz") {
                        return Err(Error::usage(
                            format!("--table {}={}", spec.name, spec.location),
                            "a gzipped Parquet file: gunzip it first (Parquet compresses its own pages)",
                        ));
                    }
                    if !types.is_empty() {
                        return Err(Error::usage(
                            format!("--table-schema {}", spec.name),
                            "a Parquet file has its own column types",
                        ));
                    }
                    let extension = path
                        .extension()
                        .map(|e| format!(".{}", e.to_string_lossy()))
                        .unwrap_or_default();
                    let options = datafusion::prelude::ParquetReadOptions::default()
                        .file_extension(&extension);
                    ctx.register_parquet(
                        datafusion::common::TableReference::bare(spec.name.as_str()),
                        &path.to_string_lossy(),
                        options,
                    )
                    .await?;
                    return Ok(());
                }
                (Format::Parquet, Some(_)) => {
                    return Err(Error::usage(
                        format!("--table {}={}", spec.name, spec.location),
                        "a JSON pointer names records in a JSON document, not in Parquet",
                    ));
                }
                (Format::Csv, None) => Origin::Csv(csv::CsvFile::open(path, types)?),
                (Format::Csv, Some(_)) | (Format::Json, _) => {
                    Origin::Json(json::JsonFile::open(path, pointer.as_deref(), types)?)
                }
            }
        }
        Location::Sqlite { path, table } => {
            refuse_types(spec, types)?;
            Origin::Sqlite(sqlite::SqliteTable::open(path, table)?)
        }
        Location::Postgres { url, table } => {
            refuse_types(spec, types)?;
            Origin::Postgres(Box::new(postgres::PostgresTable::open(url, table).await?))
        }
    };
    let schema = match &origin {
        Origin::Csv(t) => t.schema(),
        Origin::Json(t) => t.schema(),
        Origin::Sqlite(t) => t.schema(),
        Origin::Postgres(t) => t.schema(),
    };
    let table = ForeignTable {
        location: spec.location.clone(),
        origin: Arc::new(origin),
        schema,
    };
    // The name as written: a mixed-case name is quoted in SQL, as in PostgreSQL.
    ctx.register_table(
        datafusion::common::TableReference::bare(spec.name.as_str()),
        Arc::new(table),
    )?;
    Ok(())
}

fn refuse_types(spec: &Spec, types: &Types) -> Result<()> {
    if types.is_empty() {
        Ok(())
    } else {
        Err(Error::usage(
            format!("--table-schema {}", spec.name),
            "a database table has its own column types (cast in the query instead)",
        ))
    }
}

/// The formats of table files.
enum Format {
    Csv,
    Json,
    Parquet,
}

/// The format of a file: by its name (`.csv`, `.tsv`, `.json`, `.ndjson`, `.jsonl`,
/// `.parquet`, each maybe `.gz`), else by its first bytes.
fn format(path: &Path) -> Result<Format> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let name = name.trim_end_matches(".gz");
    let by_name = [
        (".csv", Format::Csv),
        (".tsv", Format::Csv),
        (".tab", Format::Csv),
        (".json", Format::Json),
        (".ndjson", Format::Json),
        (".jsonl", Format::Json),
        (".parquet", Format::Parquet),
    ];
    if let Some((_, f)) = by_name.into_iter().find(|(ext, _)| name.ends_with(ext)) {
        return Ok(f);
    }
    let mut reader = open_file(path)?;
    let head = reader.fill_buf().map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(if head.starts_with(b"PAR1") {
        Format::Parquet
    } else if matches!(
        head.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    ) {
        Format::Json
    } else {
        Format::Csv
    })
}

#[async_trait::async_trait]
impl TableProvider for ForeignTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Databases take the filters they can run ([`pushable`]) as `Inexact`: the database
    /// narrows the rows, DataFusion checks them again.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        let database = matches!(*self.origin, Origin::Sqlite(_) | Origin::Postgres(_));
        Ok(filters
            .iter()
            .map(|f| {
                if database && pushable(f, &self.schema) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let columns: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let filter = match &*self.origin {
            Origin::Sqlite(_) => where_clause(
                filters,
                &datafusion::sql::unparser::dialect::SqliteDialect {},
            ),
            Origin::Postgres(_) => where_clause(
                filters,
                &datafusion::sql::unparser::dialect::PostgreSqlDialect {},
            ),
            _ => None,
        };
        // A limit arrives only when no filter stays above the scan (DataFusion does not
        // move a limit below a filter), so the database may stop at it.
        let schema = Arc::new(self.schema.project(&columns)?);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Arc::new(ForeignExec {
            location: self.location.clone(),
            origin: self.origin.clone(),
            columns,
            schema,
            filter,
            limit,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
}

/// The filters as one SQL condition in a database's dialect (those it can run; `None` when
/// none).
fn where_clause(
    filters: &[Expr],
    dialect: &dyn datafusion::sql::unparser::dialect::Dialect,
) -> Option<String> {
    let unparser = datafusion::sql::unparser::Unparser::new(dialect);
    let parts: Vec<String> = unnormalize_cols(filters.iter().cloned())
        .iter()
        .filter_map(|f| unparser.expr_to_sql(f).ok())
        .map(|sql| format!("({sql})"))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

/// Whether a database runs `filter` as DataFusion would: comparisons of a column with a
/// literal of the column's own type, `IS [NOT] NULL`, `IN (…)` lists, joined by AND, OR, NOT.
fn pushable(filter: &Expr, schema: &SchemaRef) -> bool {
    let column_type = |e: &Expr| match e {
        Expr::Column(c) => schema
            .field_with_name(&c.name)
            .ok()
            .map(|f| f.data_type().clone())
            .filter(|t| {
                matches!(
                    t,
                    DataType::Utf8 | DataType::Int64 | DataType::Float64 | DataType::Boolean
                )
            }),
        _ => None,
    };
    let literal_of = |e: &Expr, t: &DataType| match e {
        Expr::Literal(v, _) if !v.is_null() => matches!(
            (v, t),
            (ScalarValue::Utf8(_), DataType::Utf8)
                | (ScalarValue::Int64(_), DataType::Int64)
                | (ScalarValue::Float64(_), DataType::Float64)
                | (ScalarValue::Boolean(_), DataType::Boolean)
        ),
        _ => false,
    };
    match filter {
        Expr::BinaryExpr(b) => match b.op {
            Operator::And | Operator::Or => pushable(&b.left, schema) && pushable(&b.right, schema),
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq => match (column_type(&b.left), column_type(&b.right)) {
                (Some(t), None) => literal_of(&b.right, &t),
                (None, Some(t)) => literal_of(&b.left, &t),
                _ => false,
            },
            _ => false,
        },
        Expr::Not(e) => pushable(e, schema),
        Expr::IsNull(e) | Expr::IsNotNull(e) => column_type(e).is_some(),
        Expr::InList(list) => column_type(&list.expr)
            .is_some_and(|t| !list.list.is_empty() && list.list.iter().all(|v| literal_of(v, &t))),
        _ => false,
    }
}

/// The scan of a [`ForeignTable`]: reads the columns of the plan from the file or database
/// (with the filter and limit pushed into a database's own query), on its own thread (files
/// and SQLite) or task (PostgreSQL), a bounded number of batches ahead.
pub struct ForeignExec {
    location: Location,
    origin: Arc<Origin>,
    columns: Vec<usize>,
    schema: SchemaRef,
    filter: Option<String>,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for ForeignExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForeignExec")
            .field("location", &self.location)
            .field("filter", &self.filter)
            .field("limit", &self.limit)
            .finish()
    }
}

impl DisplayAs for ForeignExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(
            f,
            "ForeignExec: source={}, columns=[{}]",
            self.location,
            names.join(", ")
        )?;
        match &*self.origin {
            Origin::Sqlite(t) => write!(
                f,
                ", query=\"{}\"",
                t.statement(&self.columns, self.filter.as_deref(), self.limit)
            ),
            Origin::Postgres(t) => write!(
                f,
                ", query=\"{}\"",
                t.statement(&self.columns, self.filter.as_deref(), self.limit)
            ),
            _ => Ok(()),
        }
    }
}

/// How many batches a reader may hold ready ahead of the plan.
const AHEAD: usize = 2;

impl ExecutionPlan for ForeignExec {
    fn name(&self) -> &str {
        "ForeignExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "ForeignExec has no children".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        let batch_rows = context.session_config().batch_size();
        let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
        let origin = self.origin.clone();
        let columns = self.columns.clone();
        let filter = self.filter.clone();
        let limit = self.limit;
        let failed = |e: Error| DataFusionError::External(Box::new(e));
        if let Origin::Postgres(_) = &*origin {
            tokio::spawn(async move {
                let Origin::Postgres(table) = &*origin else {
                    return;
                };
                if let Err(e) = table
                    .read(&columns, filter.as_deref(), limit, batch_rows, tx.clone())
                    .await
                {
                    let _ = tx.send(Err(failed(e))).await;
                }
            });
        } else {
            std::thread::Builder::new()
                .name("userport-table".into())
                .spawn(move || {
                    let mut emit = |batch: RecordBatch| tx.blocking_send(Ok(batch)).is_ok();
                    let result = match &*origin {
                        Origin::Csv(t) => t.read(&columns, limit, batch_rows, &mut emit),
                        Origin::Json(t) => t.read(&columns, limit, batch_rows, &mut emit),
                        Origin::Sqlite(t) => {
                            t.read(&columns, filter.as_deref(), limit, batch_rows, &mut emit)
                        }
                        Origin::Postgres(_) => Ok(()),
                    };
                    if let Err(e) = result {
                        let _ = tx.blocking_send(Err(failed(e)));
                    }
                })
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
        }
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
                .map(move |batch| {
                    if let Ok(batch) = &batch {
                        baseline.record_output(batch.num_rows());
                    }
                    batch
                });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
