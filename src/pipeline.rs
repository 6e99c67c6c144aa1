//! The middle of the flow: one DataFusion session with userport's functions, the source
//! registered as the table `users`, a plan over it, and its batches streamed into a sink.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::sink::{self, Format, Options, Shape, output::Destination};
use crate::source::Source;

/// Name of the table that holds the users.
pub const TABLE: &str = "users";

/// The memory DataFusion's operators may hold before sorts spill to disk, by default.
pub const DEFAULT_MEMORY_LIMIT: usize = 512 << 20;

/// A session with userport's functions and the JSON functions of
/// `datafusion-functions-json` (`json_get_str`, `->`, `->>`, …) registered; SQL is read in
/// the PostgreSQL dialect. Plans keep the input order: nothing is repartitioned
/// round-robin. Sorts spill to the system's temporary folder beyond `memory_limit` bytes.
pub fn session(memory_limit: usize) -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_round_robin_repartition(false)
        .with_target_partitions(2)
        .with_batch_size(crate::source::BATCH_ROWS);
    config.options_mut().sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
    // What a sort keeps back for merging its spilled runs: a share of a small limit.
    config.options_mut().execution.sort_spill_reservation_bytes = (memory_limit / 8).min(10 << 20);
    let mut runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_limit(memory_limit, 1.0);
    // Spill files go to this run's own folder, removed however the run ends.
    if let Some(dir) = crate::temp::spill_dir() {
        use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
        runtime = runtime.with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Directories(vec![dir])),
        );
    }
    let runtime = runtime.build_arc()?;
    let mut ctx = SessionContext::new_with_config_rt(config, runtime);
    for udf in crate::functions::all() {
        ctx.register_udf(udf.as_ref().clone());
    }
    datafusion_functions_json::register_all(&mut ctx)?;
    Ok(ctx)
}

/// Reads a memory size: bytes, or a number with K, M, G (powers of 1024), as in `256M`.
pub fn parse_size(text: &str) -> std::result::Result<usize, String> {
    let t = text.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("expected a size such as 512M or 2G, not {text:?}"))?;
    let factor = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("expected a size such as 512M or 2G, not {text:?}")),
    };
    match n.checked_mul(factor) {
        Some(0) | None => Err(format!("expected a size such as 512M or 2G, not {text:?}")),
        Some(bytes) => Ok(bytes),
    }
}

/// Registers `source` as the table [`TABLE`] of `ctx`.
pub fn register(ctx: &SessionContext, source: Source) -> Result<()> {
    register_as(ctx, TABLE, source)
}

/// Registers `source` as the table `name` of `ctx`. A scan decodes only the columns the
/// plan reads: the others are skipped in each line, not decoded.
pub fn register_as(ctx: &SessionContext, name: &str, source: Source) -> Result<()> {
    ctx.register_table(name, Arc::new(Users { source }))?;
    Ok(())
}

/// The users of a source as a table whose scans read only the columns they project.
#[derive(Debug)]
struct Users {
    source: Source,
}

#[async_trait::async_trait]
impl datafusion::catalog::TableProvider for Users {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.source.schema_ref()
    }

    fn table_type(&self) -> datafusion::logical_expr::TableType {
        datafusion::logical_expr::TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let source = Arc::new(match projection {
            Some(columns) => self.source.with_columns(columns),
            None => self.source.clone(),
        });
        remember(&source);
        let table = StreamingTable::try_new(source.schema_ref(), vec![source])?;
        table.scan(state, projection, filters, limit).await
    }
}

/// The sources of the scans planned so far (dropped ones are forgotten), so that [`fuse`]
/// can tell a scan of users in a physical plan.
static SCANS: std::sync::Mutex<Vec<std::sync::Weak<Source>>> = std::sync::Mutex::new(Vec::new());

fn remember(source: &Arc<Source>) {
    if let Ok(mut scans) = SCANS.lock() {
        scans.retain(|weak| weak.strong_count() > 0);
        scans.push(Arc::downgrade(source));
    }
}

/// The source behind a partition of a streaming scan, when it is one of [`SCANS`].
fn scanned(
    partition: &Arc<dyn datafusion::physical_plan::streaming::PartitionStream>,
) -> Option<Source> {
    let address = Arc::as_ptr(partition) as *const ();
    let scans = SCANS.lock().ok()?;
    scans
        .iter()
        .find(|weak| weak.as_ptr() as *const () == address)
        .and_then(|weak| weak.upgrade())
        .map(|source| source.as_ref().clone())
}

/// A plan that only filters and projects the users of one scan, as a source that does the
/// same work in its decoding threads, on all cores (DataFusion would run it on one, since
/// the scan is one ordered partition). `None` for any other plan (sorts, limits, joins,
/// aggregates), which DataFusion runs as it is.
fn fuse(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> Option<Source> {
    use datafusion::arrow::record_batch::RecordBatchOptions;
    use datafusion::physical_plan::filter::{FilterExec, batch_filter};
    use datafusion::physical_plan::projection::ProjectionExec;
    use datafusion::physical_plan::streaming::StreamingTableExec;
    if let Some(scan) = plan.downcast_ref::<StreamingTableExec>() {
        let [partition] = scan.partitions().as_slice() else {
            return None;
        };
        if scan.limit().is_some() {
            return None;
        }
        let source = scanned(partition)?;
        return Some(match scan.projection().clone() {
            Some(columns) => then(source, plan.schema(), move |batch| {
                Ok(batch.project(&columns)?)
            }),
            None => source,
        });
    }
    if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        let source = fuse(filter.input())?;
        let predicate = filter.predicate().clone();
        let projection = filter.projection().clone();
        return Some(then(source, plan.schema(), move |batch| {
            let kept = batch_filter(&batch, &predicate)?;
            Ok(match &projection {
                Some(columns) => kept.project(columns)?,
                None => kept,
            })
        }));
    }
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        let source = fuse(projection.input())?;
        let exprs: Vec<_> = projection.expr().iter().map(|e| e.expr.clone()).collect();
        let schema = plan.schema();
        let output = schema.clone();
        return Some(then(source, schema, move |batch| {
            let rows = batch.num_rows();
            let columns = exprs
                .iter()
                .map(|e| e.evaluate(&batch).and_then(|v| v.into_array(rows)))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let options = RecordBatchOptions::new().with_row_count(Some(rows));
            Ok(RecordBatch::try_new_with_options(
                output.clone(),
                columns,
                &options,
            )?)
        }));
    }
    None
}

/// `plan` with each part that only filters and projects a scan (see [`fuse`]) replaced by a
/// scan of a source that does that work in its decoding threads; the rest (a sort, a window,
/// a limit) runs in DataFusion over it, as before.
///
/// Sorts are split across cores as `parts` allows (see [`sort_in_parts`]).
fn fuse_below(
    plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    parts: SortParts,
) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
    use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
    use datafusion::physical_plan::streaming::StreamingTableExec;
    let rewritten = plan.transform_down(|node| {
        if let Some(sorted) = sort_in_parts(&node, parts)? {
            return Ok(Transformed::new(sorted, true, TreeNodeRecursion::Jump));
        }
        if node.downcast_ref::<StreamingTableExec>().is_none()
            && let Some(source) = fuse(&node)
        {
            let scan = scan_of(source.schema_ref(), vec![Arc::new(source.coalesced())])?;
            return Ok(Transformed::new(scan, true, TreeNodeRecursion::Jump));
        }
        Ok(Transformed::no(node))
    })?;
    Ok(rewritten.data)
}

/// How a sort may be split: into one part per core (at most four), when the memory limit
/// is at least 128M (each part and their merge hold memory that does not spill) and the
/// input files are at most twice the limit (a sort that spills is bound by the disk and by
/// merging its runs, and more parts make more runs).
#[derive(Debug, Clone, Copy)]
struct SortParts {
    cores: usize,
    memory_limit: Option<usize>,
}

impl SortParts {
    fn of(task: &datafusion::execution::TaskContext) -> SortParts {
        use datafusion::execution::memory_pool::MemoryLimit;
        let cores = crate::source::cores();
        let memory_limit = match task.runtime_env().memory_pool.memory_limit() {
            MemoryLimit::Finite(bytes) => Some(bytes),
            _ => None,
        };
        SortParts {
            cores,
            memory_limit,
        }
    }

    /// The parts for a sort of the users of `source`.
    fn for_source(self, source: &Source) -> usize {
        let fits = match (self.memory_limit, source.total_bytes()) {
            (Some(limit), Some(bytes)) => limit >= 128 << 20 && bytes <= 2 * limit as u64,
            (None, Some(_)) => true,
            _ => false,
        };
        if fits { self.cores } else { 1 }
    }
}

/// A sort of users numbered in input order (`--sort`: a filter and a projection, then
/// `row_number() OVER ()` to keep ties in input order) as one sort per core over a source
/// split into that many partitions, merged: the source numbers the rows itself, in order,
/// and both halves of the sorting run at once. `None` for any other plan.
fn sort_in_parts(
    node: &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    parts: SortParts,
) -> datafusion::error::Result<Option<Arc<dyn datafusion::physical_plan::ExecutionPlan>>> {
    use datafusion::physical_plan::sorts::sort::SortExec;
    use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
    use datafusion::physical_plan::windows::BoundedWindowAggExec;
    let Some(sort) = node.downcast_ref::<SortExec>() else {
        return Ok(None);
    };
    let Some(window) = sort.input().downcast_ref::<BoundedWindowAggExec>() else {
        return Ok(None);
    };
    let [numbering] = window.window_expr() else {
        return Ok(None);
    };
    let is_row_number = numbering.partition_by().is_empty()
        && numbering.order_by().is_empty()
        && numbering.field()?.name() == ROW
        && format!("{numbering:?}").contains("RowNumber");
    if sort.preserve_partitioning() || !is_row_number {
        return Ok(None);
    }
    let Some(source) = fuse(window.input()) else {
        return Ok(None);
    };
    let parts = parts.for_source(&source);
    if parts < 2 {
        return Ok(None);
    }
    let schema = sort.input().schema();
    let source = source.coalesced().numbered(schema.clone());
    let scan = scan_of(schema, source.split(parts))?;
    let sorted = SortExec::new(sort.expr().clone(), scan)
        .with_preserve_partitioning(true)
        .with_fetch(sort.fetch());
    let merged = SortPreservingMergeExec::new(sort.expr().clone(), Arc::new(sorted))
        .with_fetch(sort.fetch());
    Ok(Some(Arc::new(merged)))
}

/// A scan of `partitions` (sources of userport's), bounded, in no declared order.
fn scan_of(
    schema: datafusion::arrow::datatypes::SchemaRef,
    partitions: Vec<Arc<dyn datafusion::physical_plan::streaming::PartitionStream>>,
) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
    use datafusion::physical_expr::LexOrdering;
    use datafusion::physical_plan::streaming::StreamingTableExec;
    let scan = StreamingTableExec::try_new(
        schema,
        partitions,
        None,
        Vec::<LexOrdering>::new(),
        false,
        None,
    )?;
    Ok(Arc::new(scan))
}

/// `source` with `work` run after its transform (if any), giving batches of `schema`.
fn then(
    source: Source,
    schema: datafusion::arrow::datatypes::SchemaRef,
    work: impl Fn(RecordBatch) -> datafusion::error::Result<RecordBatch> + Send + Sync + 'static,
) -> Source {
    let run: Arc<crate::source::TransformFn> = match source.transform() {
        Some(before) => {
            let before = before.run.clone();
            Arc::new(move |batch| work(before(batch)?))
        }
        None => Arc::new(work),
    };
    source.with_transform(crate::source::Transform { run, schema })
}

/// The table [`TABLE`] of `ctx`, keeping the users that match the Auth0 search `query` and
/// the SQL condition `where_sql` (both when both are given); also returns the filter.
pub async fn filtered(
    ctx: &SessionContext,
    query: Option<&str>,
    where_sql: Option<&str>,
) -> Result<(DataFrame, Option<Expr>)> {
    let mut frame = ctx.table(TABLE).await?;
    let mut filter: Option<Expr> = None;
    if let Some(text) = query {
        filter = Some(crate::search::compile(text, &format!("--query {text}"))?.expr);
    }
    if let Some(sql) = where_sql {
        let predicate = frame
            .parse_sql_expr(sql)
            .map_err(|e| Error::usage(format!("--where {sql}"), e.to_string()))?;
        filter = Some(match filter {
            Some(query) => query.and(predicate),
            None => predicate,
        });
    }
    if let Some(predicate) = &filter {
        frame = frame.filter(predicate.clone())?;
    }
    Ok((frame, filter))
}

/// Where and how a result is written.
#[derive(Debug, Clone)]
pub struct Target {
    /// The output file; `None` (or `-`) is stdout.
    pub path: Option<PathBuf>,
    /// The format.
    pub format: Format,
    /// Whether the output is gzipped.
    pub gzip: bool,
    /// Whole users or chosen columns.
    pub shape: Shape,
    /// Rendering options.
    pub options: Options,
}

/// Runs `frame` and streams its batches into `target`. The output file appears only when
/// every batch was written; on error it is not there.
pub async fn write(frame: DataFrame, target: &Target) -> Result<u64> {
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let task = Arc::new(frame.task_ctx());
    let plan = frame
        .create_physical_plan()
        .await
        .map_err(Error::from_datafusion)?;
    let mut stream = match fuse(&plan) {
        Some(source) => source.stream(),
        None => {
            let parts = SortParts::of(&task);
            datafusion::physical_plan::execute_stream(fuse_below(plan, parts)?, task)
                .map_err(Error::from_datafusion)?
        }
    };
    let (destination, writer) = Destination::create(target.path.as_deref(), target.gzip)?;
    let name = destination.name();
    let mut sink = sink::create(
        target.format,
        target.shape,
        schema,
        writer,
        &name,
        target.options,
    )?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(Error::from_datafusion)?;
        rows += batch.num_rows() as u64;
        sink.write(&batch)?;
    }
    let writer = sink.finish()?;
    destination.commit(writer)?;
    Ok(rows)
}

/// What `--explain` prints: each column's expression as parsed and as SQL, then the logical
/// and physical plans of `frame`. Nothing is executed.
pub async fn explain(
    columns: &[(&str, &crate::expr::Compiled)],
    filter: Option<&Expr>,
    sorts: &[SortKey],
    frame: DataFrame,
) -> Result<String> {
    use std::fmt::Write as _;
    let to_sql = |e: &Expr| {
        datafusion::sql::unparser::expr_to_sql(e)
            .map_or_else(|e| format!("(no SQL form: {e})"), |sql| sql.to_string())
    };
    let mut out = String::new();
    if let Some(filter) = filter {
        let _ = writeln!(out, "Filter:\n  sql: {}", to_sql(filter));
    }
    if !sorts.is_empty() {
        out.push_str("Sort (then input order):\n");
    }
    for key in sorts {
        let _ = writeln!(
            out,
            "  {} {}\n    sql: {} {} NULLS LAST",
            key.compiled.node,
            if key.descending { "desc" } else { "asc" },
            to_sql(&key.key()),
            if key.descending { "DESC" } else { "ASC" },
        );
    }
    if !columns.is_empty() {
        out.push_str("Columns:\n");
    }
    for (name, compiled) in columns {
        let sql = to_sql(&compiled.expr);
        let _ = writeln!(
            out,
            "  {name}\n    expression: {}\n    sql:        {sql}",
            compiled.node
        );
    }
    let logical = frame.clone().into_optimized_plan()?;
    let _ = writeln!(
        out,
        "Logical plan:\n{}",
        indent(&logical.display_indent().to_string())
    );
    let physical = frame.create_physical_plan().await?;
    let display = datafusion::physical_plan::displayable(physical.as_ref()).indent(true);
    let _ = writeln!(out, "Physical plan:\n{}", indent(&display.to_string()));
    Ok(out)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// The column that numbers the users in input order, so that ties of a sort keep it.
pub const ROW: &str = "_row";

/// One `--sort FIELD[:asc|desc]` key.
#[derive(Debug, Clone)]
pub struct SortKey {
    /// The path or expression, compiled.
    pub compiled: crate::expr::Compiled,
    /// Descending?
    pub descending: bool,
}

impl SortKey {
    /// Reads `FIELD[:asc|desc]`.
    pub fn parse(arg: &str) -> Result<SortKey> {
        let (text, descending) = match arg.rsplit_once(':') {
            Some((field, dir)) if dir.trim().eq_ignore_ascii_case("desc") => (field, true),
            Some((field, dir)) if dir.trim().eq_ignore_ascii_case("asc") => (field, false),
            _ => (arg, false),
        };
        let compiled = crate::expr::compile(text.trim(), &format!("--sort {arg}"))?;
        Ok(SortKey {
            compiled,
            descending,
        })
    }

    /// The expression to sort by: a typed column itself, any other value by its
    /// `js_sort_key` (numbers, then strings, then booleans, then objects).
    fn key(&self) -> Expr {
        use crate::expr::ast::Node;
        use crate::source::schema::{self, Kind};
        match &self.compiled.node {
            Node::Path(p)
                if p.steps.is_empty()
                    && schema::column(&p.root).is_some_and(|(_, kind)| kind != Kind::Json) =>
            {
                self.compiled.expr.clone()
            }
            _ => crate::functions::sort_key_udf().call(vec![self.compiled.expr.clone()]),
        }
    }
}

/// Sorts `frame` by `keys` (absent values last, ties in input order), keeps the first
/// `limit` rows, and projects onto `columns` when given (whole users otherwise). With
/// columns, the projection runs before the sort, so that only the output and the keys are
/// sorted (and spilled).
pub fn order(
    frame: DataFrame,
    keys: &[SortKey],
    limit: Option<usize>,
    columns: Option<Vec<(String, Expr)>>,
) -> Result<DataFrame> {
    use datafusion::common::Column;
    use datafusion::functions_window::expr_fn::row_number;
    let by_name = |name: &str| Expr::Column(Column::from_name(name));
    if keys.is_empty() {
        let frame = match limit {
            Some(n) => frame.limit(0, Some(n))?,
            None => frame,
        };
        return match columns {
            Some(columns) => select(frame, columns),
            None => Ok(frame),
        };
    }
    let key_name = |i: usize| format!("_sort{i}");
    let (frame, output): (DataFrame, Vec<String>) = match columns {
        Some(columns) => {
            let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
            let mut exprs: Vec<Expr> = columns.into_iter().map(|(n, e)| e.alias(n)).collect();
            exprs.extend(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| k.key().alias(key_name(i))),
            );
            (frame.select(exprs)?, names)
        }
        None => {
            let names = frame
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let exprs: Vec<Expr> = frame
                .schema()
                .fields()
                .iter()
                .map(|f| by_name(f.name()))
                .chain(
                    keys.iter()
                        .enumerate()
                        .map(|(i, k)| k.key().alias(key_name(i))),
                )
                .collect();
            (frame.select(exprs)?, names)
        }
    };
    // Rows are numbered after the projection (which keeps their order), so that the filter
    // and the projection below can run in the decoding threads (see `fuse_below`).
    let frame = frame.window(vec![row_number().alias(ROW)])?;
    let mut sort: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| by_name(&key_name(i)).sort(!k.descending, false))
        .collect();
    sort.push(by_name(ROW).sort(true, false));
    let mut frame = frame.sort(sort)?;
    if let Some(n) = limit {
        // The optimizer turns a limit over a sort into a top-N sort.
        frame = frame.limit(0, Some(n))?;
    }
    Ok(frame.select(output.iter().map(|n| by_name(n)).collect::<Vec<_>>())?)
}

/// Plans the SQL `text` (`context` names where it came from in errors). Only queries are
/// accepted: no `COPY`, no DDL (`CREATE`, `DROP`, external tables), no DML, no `SET` or
/// other statements, so that a query can neither write nor read files of its own choosing.
pub async fn query(ctx: &SessionContext, text: &str, context: &str) -> Result<DataFrame> {
    let options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(text, options).await.map_err(|e| {
        let message = e.strip_backtrace();
        let refused = [
            "DDL not supported",
            "DML not supported",
            "Statement not supported",
        ];
        if refused.iter().any(|r| message.contains(r)) {
            Error::usage(
                context,
                format!(
                    "only queries are accepted (SELECT, WITH, VALUES): COPY, CREATE, DROP, \
                     INSERT, SET and other statements are refused ({message})"
                ),
            )
        } else {
            Error::usage(context, message)
        }
    })
}

/// Projects `frame` onto named columns, in order.
pub fn select(frame: DataFrame, columns: Vec<(String, Expr)>) -> Result<DataFrame> {
    let exprs: Vec<Expr> = columns
        .into_iter()
        .map(|(name, expr)| expr.alias(name))
        .collect();
    Ok(frame.select(exprs)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{self, Input};
    use datafusion::execution::TaskContext;

    /// The physical plan of `sql` over the bundled fixture users.
    async fn plan(sql: &str) -> Arc<dyn datafusion::physical_plan::ExecutionPlan> {
        let ctx = session(DEFAULT_MEMORY_LIMIT).unwrap();
        let users = source::open(vec![Input::parse("fixtures/users.ndjson")]).unwrap();
        register(&ctx, users).unwrap();
        ctx.sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn sorts_run_in_parts_and_keep_ties_in_input_order() {
        let ctx = session(DEFAULT_MEMORY_LIMIT).unwrap();
        // The fixture twice: every sort key ties with the same user of the other copy.
        let input = Input::parse("fixtures/users.ndjson");
        let users = source::open(vec![input.clone(), input]).unwrap();
        register(&ctx, users).unwrap();
        let (frame, _) = filtered(&ctx, Some("logins_count:[1 TO *]"), None)
            .await
            .unwrap();
        let keys = [SortKey::parse("email_verified:desc").unwrap()];
        let columns = vec![
            (
                "id".to_string(),
                crate::expr::compile("user_id", "t").unwrap().expr,
            ),
            (
                "n".to_string(),
                crate::expr::compile("logins_count", "t").unwrap().expr,
            ),
        ];
        let frame = order(frame, &keys, None, Some(columns)).unwrap();
        let plan = frame.create_physical_plan().await.unwrap();
        let parts = SortParts {
            cores: 2,
            memory_limit: Some(DEFAULT_MEMORY_LIMIT),
        };
        let parted = fuse_below(plan.clone(), parts).unwrap();
        let text = datafusion::physical_plan::displayable(parted.as_ref())
            .indent(true)
            .to_string();
        assert!(text.contains("SortPreservingMergeExec"), "{text}");
        assert!(!text.contains("BoundedWindowAggExec"), "{text}");
        let task = Arc::new(TaskContext::default());
        let whole = |batches: Vec<RecordBatch>| {
            datafusion::arrow::compute::concat_batches(&plan.schema(), &batches).unwrap()
        };
        let expected = whole(
            datafusion::physical_plan::collect(plan.clone(), task.clone())
                .await
                .unwrap(),
        );
        let got = whole(
            datafusion::physical_plan::collect(parted, task)
                .await
                .unwrap(),
        );
        assert!(got.num_rows() > 10);
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn filters_and_projections_run_in_the_decoding_threads() {
        for sql in [
            "SELECT email FROM users",
            "SELECT upper(email) AS e, logins_count + 1 AS n FROM users WHERE logins_count > 3",
            "SELECT * FROM users WHERE email_verified",
        ] {
            let plan = plan(sql).await;
            let fused = fuse(&plan).unwrap_or_else(|| panic!("{sql} is fused"));
            assert_eq!(fused.schema_ref(), plan.schema(), "{sql}");
            // The fused source gives the rows DataFusion gives, in the same order.
            let task = Arc::new(TaskContext::default());
            let expected = datafusion::physical_plan::collect(plan, task)
                .await
                .unwrap();
            let got: Vec<RecordBatch> =
                fused.stream().map(|b| b.unwrap()).collect::<Vec<_>>().await;
            let schema = fused.schema_ref();
            let rows = |batches: &[RecordBatch]| {
                datafusion::arrow::compute::concat_batches(&schema, batches).unwrap()
            };
            assert_eq!(rows(&got), rows(&expected), "{sql}");
            assert!(rows(&got).num_rows() > 0, "{sql}");
        }
        for sql in [
            "SELECT email FROM users ORDER BY email",
            "SELECT upper(email) AS e FROM users WHERE logins_count > 3 ORDER BY e DESC",
            "SELECT email FROM users LIMIT 3",
            "SELECT count(*) FROM users",
        ] {
            let plan = plan(sql).await;
            assert!(fuse(&plan).is_none(), "{sql} is left to DataFusion");
            // Its scan (and what filters and projects it) still runs in the decoding threads,
            // with the same rows coming out.
            let task = Arc::new(TaskContext::default());
            let expected = datafusion::physical_plan::collect(plan.clone(), task.clone()).await;
            let parts = SortParts {
                cores: 2,
                memory_limit: None,
            };
            let below = fuse_below(plan.clone(), parts).unwrap();
            let got = datafusion::physical_plan::collect(below, task).await;
            let whole = |batches: Vec<RecordBatch>| {
                datafusion::arrow::compute::concat_batches(&plan.schema(), &batches).unwrap()
            };
            assert_eq!(whole(got.unwrap()), whole(expected.unwrap()), "{sql}");
        }
    }
}
