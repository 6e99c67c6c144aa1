//! The users as a DataFusion table and its scan: [`UsersTable`] plans a [`UsersExec`], the
//! leaf of every plan over users. The scan decodes only the columns the plan reads, runs the
//! filters pushed into it and the projections swapped into it in the decoding threads (on
//! all cores), stops at a pushed limit, and can feed several partitions (see
//! [`super::parts`]). What `--explain` prints of it is what runs.

use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::expr_rewriter::unnormalize_cols;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, EvaluationType, SchedulingType,
};
use datafusion::physical_plan::expressions::{Column as ColumnExpr, Literal};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::{StreamExt, TryStreamExt};

use crate::json::Step;
use crate::source::decode::{Path, column_bit};
use crate::source::{Decoding, Meters, Scan, Source, schema};

/// The users of a source as a table. With an ordinal, the table has one more column: a
/// number that grows with the input order (the position of each user in its input), and
/// its scans declare that they give the users in that order; a digest of each user's text
/// may follow it, and the text itself may come last, or the text and its layout. None of
/// these is decoded.
#[derive(Debug, Clone)]
pub struct UsersTable {
    source: Source,
    schema: SchemaRef,
    ordinal: Option<usize>,
    digest: Option<usize>,
    text: Option<usize>,
    /// The layout's column, and the columns whose values it looks at for repeated and
    /// marked keys (a mask of [`crate::source::Decoding::layout`]).
    layout: Option<(usize, u64)>,
}

impl UsersTable {
    /// The users of `source`, with the columns of the canonical schema.
    pub fn new(source: Source) -> UsersTable {
        UsersTable {
            source,
            schema: schema::user_schema(),
            ordinal: None,
            digest: None,
            text: None,
            layout: None,
        }
    }

    /// The users of `source` with their ordinal as a last column named `name`.
    pub fn with_ordinal(source: Source, name: &str) -> UsersTable {
        let (schema, ordinal) = UsersTable::new(source.clone()).extended(name, DataType::UInt64);
        UsersTable {
            source,
            schema,
            ordinal: Some(ordinal),
            digest: None,
            text: None,
            layout: None,
        }
    }

    /// The same table with each user's digest (see [`crate::source::Decoding::digest`]) as
    /// one more column, after the ordinal, named `name`; `None` without an ordinal or after
    /// the text.
    pub fn with_digest(self, name: &str) -> Option<UsersTable> {
        self.ordinal?;
        if self.text.is_some() {
            return None;
        }
        let (schema, digest) = self.extended(name, DataType::FixedSizeBinary(16));
        Some(UsersTable {
            schema,
            digest: Some(digest),
            ..self
        })
    }

    /// The same table with each user's JSON text, as its input holds it, as a last column
    /// named `name` (see [`crate::source::Decoding::text`]).
    pub fn with_text(self, name: &str) -> UsersTable {
        let (schema, text) = self.extended(name, DataType::Utf8View);
        UsersTable {
            schema,
            text: Some(text),
            ..self
        }
    }

    /// The same table with each user's layout (see [`crate::source::Decoding::layout`]) as
    /// one more column, after the text, named `name`: the values of the members named
    /// `checked` are looked at for repeated and marked keys. `None` unless the text comes
    /// last.
    pub fn with_layout(self, name: &str, checked: &[String]) -> Option<UsersTable> {
        if self.text != Some(self.schema.fields().len() - 1) {
            return None;
        }
        let (schema, layout) = self.extended(name, DataType::Binary);
        let checked = checked.iter().fold(0u64, |mask, name| {
            mask | column_bit(schema::index(name.as_bytes()))
        });
        Some(UsersTable {
            schema,
            layout: Some((layout, checked)),
            ..self
        })
    }

    /// This table's schema with one more column, and that column's index.
    fn extended(&self, name: &str, data_type: DataType) -> (SchemaRef, usize) {
        let mut fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(name, data_type, false));
        (Arc::new(Schema::new(fields)), self.schema.fields().len())
    }

    /// Whether column `index` is one about each user (ordinal, digest, text, layout), not
    /// decoded.
    fn is_about(&self, index: usize) -> bool {
        [
            self.ordinal,
            self.digest,
            self.text,
            self.layout.map(|(i, _)| i),
        ]
        .contains(&Some(index))
    }

    /// The source of the users.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// A DataFrame of the users in `ctx`, as the table `users`.
    pub fn frame(self, ctx: &SessionContext) -> Result<DataFrame> {
        let scan =
            LogicalPlanBuilder::scan(super::TABLE, provider_as_source(Arc::new(self)), None)?
                .build()?;
        Ok(DataFrame::new(ctx.state(), scan))
    }
}

#[async_trait::async_trait]
impl TableProvider for UsersTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Every deterministic condition without a subquery is run by the scan itself.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                let subquery = f
                    .exists(|e| {
                        Ok(matches!(
                            e,
                            Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
                        ))
                    })
                    .unwrap_or(true);
                if subquery || f.is_volatile() {
                    TableProviderFilterPushDown::Unsupported
                } else {
                    TableProviderFilterPushDown::Exact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Columns unqualified: the scan compiles the filter against the table's own schema.
        let filter = match conjunction(unnormalize_cols(filters.iter().cloned())) {
            Some(expr) => {
                let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
                Some(state.create_physical_expr(expr, &df_schema)?)
            }
            None => None,
        };
        let columns: Vec<usize> = match projection {
            Some(columns) => columns.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let projection = ProjectionExprs::from_indices(&columns, &self.schema);
        let exec = UsersExec::try_new(
            self.clone(),
            filter,
            projection,
            limit,
            1,
            state.config().batch_size(),
        )?;
        Ok(Arc::new(exec))
    }
}

/// The scan of a [`UsersTable`]: see the module's documentation.
pub struct UsersExec {
    table: UsersTable,
    /// Rows failing it are dropped by the decoding threads (over the table's schema).
    filter: Option<Arc<dyn PhysicalExpr>>,
    /// The output columns (over the table's schema), computed by the decoding threads.
    projection: ProjectionExprs,
    limit: Option<usize>,
    partitions: usize,
    batch_rows: usize,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    /// The run, shared by the partitions.
    run: Arc<Lazy>,
}

impl fmt::Debug for UsersExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsersExec")
            .field("inputs", &self.table.source.inputs())
            .field("filter", &self.filter)
            .field("projection", &self.projection.to_string())
            .field("limit", &self.limit)
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl UsersExec {
    /// A scan of `table` keeping the rows `filter` accepts, giving the columns of
    /// `projection` (both over the table's schema), at most `limit` rows, as `partitions`
    /// streams of batches of `batch_rows` rows.
    pub fn try_new(
        table: UsersTable,
        filter: Option<Arc<dyn PhysicalExpr>>,
        projection: ProjectionExprs,
        limit: Option<usize>,
        partitions: usize,
        batch_rows: usize,
    ) -> Result<UsersExec> {
        let schema = Arc::new(projection.project_schema(&table.schema)?);
        // The ordinal, when given as it is, orders each partition.
        let orderings = table.ordinal.and_then(|ordinal| {
            projection.iter().position(|p| {
                p.expr
                    .downcast_ref::<ColumnExpr>()
                    .is_some_and(|c| c.index() == ordinal)
            })
        });
        let mut equivalences = EquivalenceProperties::new(schema.clone());
        if let Some(at) = orderings {
            let name = schema.field(at).name();
            let sort = PhysicalSortExpr::new_default(Arc::new(ColumnExpr::new(name, at)));
            if let Some(ordering) = LexOrdering::new([sort]) {
                equivalences =
                    EquivalenceProperties::new_with_orderings(schema.clone(), [ordering]);
            }
        }
        let properties = PlanProperties::new(
            equivalences,
            Partitioning::UnknownPartitioning(partitions.max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        )
        .with_evaluation_type(EvaluationType::Eager)
        .with_scheduling_type(SchedulingType::Cooperative);
        Ok(UsersExec {
            filter,
            projection,
            limit,
            partitions: partitions.max(1),
            batch_rows,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
            run: Arc::new(Lazy {
                source: table.source.clone(),
                partitions: partitions.max(1),
                run: Mutex::new(None),
            }),
            table,
        })
    }

    /// The source scanned.
    pub fn source(&self) -> &Source {
        &self.table.source
    }

    /// How many partitions the scan feeds.
    pub fn partitions(&self) -> usize {
        self.partitions
    }

    /// The same scan feeding `partitions` streams: batch `i`, in input order, goes to
    /// partition `i % partitions`.
    pub fn with_partitions(&self, partitions: usize) -> Result<UsersExec> {
        self.rebuilt(self.projection.clone(), self.limit, partitions)
    }

    /// The same scan (a new one, not yet run) with another projection, limit or partitions.
    fn rebuilt(
        &self,
        projection: ProjectionExprs,
        limit: Option<usize>,
        partitions: usize,
    ) -> Result<UsersExec> {
        UsersExec::try_new(
            self.table.clone(),
            self.filter.clone(),
            projection,
            limit,
            partitions,
            self.batch_rows,
        )
    }

    /// The scan's filter and projection as the decoding threads run them: each
    /// `json_path(column, constant steps…)` into a JSON column is a column of its own that
    /// they read out of each user as they decode it (after the table's columns, in the
    /// order of `paths`), the column itself decoded only when read otherwise.
    fn lifted(&self) -> Result<Lifted> {
        let table = &self.table.schema;
        let mut paths = Vec::new();
        let filter = match &self.filter {
            Some(filter) => Some(lift(filter.clone(), table, &mut paths)?),
            None => None,
        };
        let projection = self
            .projection
            .clone()
            .try_map_exprs(|expr| lift(expr, table, &mut paths))?;
        Ok(Lifted {
            filter,
            projection,
            paths,
        })
    }

    /// The columns the decoding threads fill (indices in the table's schema, in order): those
    /// the `lifted` filter and projection read, the ordinal (numbered, not decoded) and the
    /// paths aside.
    fn decoded(&self, lifted: &Lifted) -> Vec<usize> {
        let base = self.table.schema.fields().len();
        let filtered = lifted
            .filter
            .iter()
            .flat_map(datafusion::physical_expr::utils::collect_columns)
            .map(|c| c.index());
        let mut columns: Vec<usize> = lifted
            .projection
            .column_indices()
            .into_iter()
            .chain(filtered)
            .filter(|&i| i < base && !self.table.is_about(i))
            .collect();
        columns.sort_unstable();
        columns.dedup();
        columns
    }

    /// [`UsersExec::decoded`] as the decoder's mask. With no column (`count(*)`), every user
    /// is still parsed and checked.
    fn mask(&self, lifted: &Lifted) -> u64 {
        let extra = schema::COLUMNS.len();
        self.decoded(lifted).into_iter().fold(0u64, |mask, index| {
            mask | column_bit((index != extra).then_some(index))
        })
    }

    /// What the scan's reader is told to do, made once for all partitions.
    fn scan(&self, context: &Arc<TaskContext>) -> Result<Scan> {
        let table = self.table.schema.clone();
        let lifted = self.lifted()?;
        let mask = self.mask(&lifted);
        let Lifted {
            filter,
            projection,
            paths,
        } = lifted;
        // The batches the decoding threads make: the table's columns, then the paths'.
        let input = if paths.is_empty() {
            table.clone()
        } else {
            let mut fields = table.fields().to_vec();
            fields.extend(paths.iter().map(|(_, _, field)| field.clone()));
            Arc::new(Schema::new(fields))
        };
        let projector = projection.make_projector(&input)?;
        let work = move |batch| {
            let batch = match &filter {
                Some(filter) => datafusion::physical_plan::filter::batch_filter(&batch, filter)?,
                None => batch,
            };
            projector.project_batch(&batch)
        };
        let pool = context.memory_pool();
        let reservation = MemoryConsumer::new("UsersExec").register(pool);
        Ok(Scan {
            decoding: Decoding {
                mask,
                extended: (!paths.is_empty() || self.table.is_about(table.fields().len() - 1))
                    .then(|| input.clone()),
                paths: paths
                    .into_iter()
                    .map(|(column, steps, _)| Path {
                        column,
                        steps,
                        rest: Arc::new(crate::functions::path_rest),
                    })
                    .collect(),
                ordinal: self.table.ordinal.is_some(),
                digest: self.table.digest.is_some(),
                text: self.table.text.is_some(),
                layout: self.table.layout.map(|(_, checked)| checked),
                work: Some(Arc::new(work)),
                batch_rows: self.batch_rows,
                max_line: self.table.source.max_line(),
            },
            output: self.schema(),
            coalesce: self.filter.is_some(),
            limit: self.limit,
            meters: Meters {
                decode_time: Some(MetricBuilder::new(&self.metrics).subset_time("decode_time", 0)),
                reservation: Some(Arc::new(reservation)),
                // Chunks are reserved while the pool is at most half full.
                room: match pool.memory_limit() {
                    MemoryLimit::Finite(bytes) => Some((pool.clone(), bytes / 2)),
                    _ => None,
                },
            },
            bytes: Some(MetricBuilder::new(&self.metrics).counter("bytes_read", 0)),
        })
    }
}

/// A scan's filter and projection with the paths into JSON columns lifted out of them
/// (see [`UsersExec::lifted`]).
struct Lifted {
    filter: Option<Arc<dyn PhysicalExpr>>,
    projection: ProjectionExprs,
    /// Each path: its JSON column (an index in the canonical schema), its steps and the
    /// field `json_path` gives it.
    paths: Vec<(usize, Vec<Step>, FieldRef)>,
}

/// `expr` (over `table`) with each `json_path` into a JSON column with constant steps
/// replaced by the column of path `n` of `paths` (added when new), after `table`'s.
fn lift(
    expr: Arc<dyn PhysicalExpr>,
    table: &Schema,
    paths: &mut Vec<(usize, Vec<Step>, FieldRef)>,
) -> Result<Arc<dyn PhysicalExpr>> {
    expr.transform_down(|e| {
        let Some((column, steps, field)) = path_of(&e, table) else {
            return Ok(Transformed::no(e));
        };
        let n = match paths
            .iter()
            .position(|(c, s, _)| *c == column && *s == steps)
        {
            Some(n) => n,
            None => {
                paths.push((column, steps, field));
                paths.len() - 1
            }
        };
        let lifted: Arc<dyn PhysicalExpr> =
            Arc::new(ColumnExpr::new(paths[n].2.name(), table.fields().len() + n));
        Ok(Transformed::new(lifted, true, TreeNodeRecursion::Jump))
    })
    .map(|t| t.data)
}

/// The JSON column, the steps and the field of `expr` (over `table`) when it is
/// `json_path(column, constant steps…)` into a JSON column of the canonical schema.
fn path_of(expr: &Arc<dyn PhysicalExpr>, table: &Schema) -> Option<(usize, Vec<Step>, FieldRef)> {
    let call = expr.downcast_ref::<ScalarFunctionExpr>()?;
    if call.name() != "json_path" {
        return None;
    }
    let (json, steps) = call.args().split_first()?;
    let column = json.downcast_ref::<ColumnExpr>()?.index();
    if !matches!(schema::COLUMNS.get(column), Some((_, schema::Kind::Json))) || steps.is_empty() {
        return None;
    }
    let steps = steps
        .iter()
        .map(|step| crate::functions::path_step(step.downcast_ref::<Literal>()?.value()).ok())
        .collect::<Option<Vec<_>>>()?;
    Some((column, steps, call.return_field(table).ok()?))
}

/// Where a scan's run stands: waiting for the first poll of a partition, or started.
enum Run {
    Waiting(Box<Scan>),
    Started(Vec<Option<SendableRecordBatchStream>>),
}

/// The run of a scan, shared by its partitions: the reader starts when the first of them is
/// polled (not when it is executed: a plan executes all its inputs before it reads them).
struct Lazy {
    source: Source,
    partitions: usize,
    run: Mutex<Option<Run>>,
}

impl Lazy {
    /// Gets the scan ready, once.
    fn prepare(&self, scan: impl FnOnce() -> Result<Scan>) -> Result<()> {
        let mut run = self.lock()?;
        if run.is_none() {
            *run = Some(Run::Waiting(Box::new(scan()?)));
        }
        Ok(())
    }

    /// Starts the reader (once) and takes partition `partition`'s stream.
    fn take(&self, partition: usize) -> Result<SendableRecordBatchStream> {
        let mut run = self.lock()?;
        if let Some(Run::Waiting(_)) = &*run
            && let Some(Run::Waiting(scan)) = run.take()
        {
            let streams = self.source.start(*scan, self.partitions);
            *run = Some(Run::Started(streams.into_iter().map(Some).collect()));
        }
        match &mut *run {
            Some(Run::Started(streams)) => streams.get_mut(partition).and_then(Option::take),
            _ => None,
        }
        .ok_or_else(|| {
            DataFusionError::Internal(format!(
                "partition {partition} of the users was read twice or does not exist"
            ))
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<Run>>> {
        self.run
            .lock()
            .map_err(|_| DataFusionError::Internal("the scan's run was poisoned".into()))
    }
}

impl DisplayAs for UsersExec {
    fn fmt_as(&self, format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let inputs: Vec<String> = self
            .table
            .source
            .inputs()
            .iter()
            .map(|i| i.to_string())
            .collect();
        let Ok(lifted) = self.lifted() else {
            return write!(f, "UsersExec: inputs=[{}], invalid", inputs.join(", "));
        };
        let decoded: Vec<&str> = self
            .decoded(&lifted)
            .into_iter()
            .map(|i| self.table.schema.field(i).name().as_str())
            .collect();
        write!(
            f,
            "UsersExec: inputs=[{}], decoded=[{}]",
            inputs.join(", "),
            decoded.join(", ")
        )?;
        if !lifted.paths.is_empty() {
            let paths: Vec<&str> = lifted
                .paths
                .iter()
                .map(|(_, _, field)| field.name().as_str())
                .collect();
            write!(f, ", paths=[{}]", paths.join(", "))?;
        }
        if self.table.ordinal.is_some() {
            f.write_str(", ordinal")?;
        }
        if self.table.digest.is_some() {
            f.write_str(", digest")?;
        }
        if self.table.text.is_some() {
            f.write_str(", text")?;
        }
        if self.table.layout.is_some() {
            f.write_str(", layout")?;
        }
        if let Some(filter) = &lifted.filter {
            write!(f, ", filter={filter}")?;
        }
        match format {
            DisplayFormatType::TreeRender => {}
            _ => write!(f, ", projection={}", lifted.projection)?,
        }
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        if self.partitions > 1 {
            write!(f, ", partitions={}", self.partitions)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for UsersExec {
    fn name(&self) -> &str {
        "UsersExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut recursion = TreeNodeRecursion::Continue;
        for expr in self
            .filter
            .iter()
            .chain(self.projection.iter().map(|p| &p.expr))
        {
            recursion = f(expr)?;
            if recursion == TreeNodeRecursion::Stop {
                break;
            }
        }
        Ok(recursion)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "UsersExec has no children".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.run.prepare(|| self.scan(&context))?;
        let run = Arc::clone(&self.run);
        let stream = futures::stream::once(async move { run.take(partition) }).try_flatten();
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let schema = self.schema();
        let counted = stream.map(move |batch| {
            if let Ok(batch) = &batch {
                baseline.record_output(batch.num_rows());
                baseline.output_batches().add(1);
            }
            batch
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, counted)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn fetch(&self) -> Option<usize> {
        self.limit
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        let limit = match (self.limit, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.rebuilt(self.projection.clone(), limit, self.partitions)
            .ok()
            .map(|exec| Arc::new(exec) as Arc<dyn ExecutionPlan>)
    }

    /// A projection over the scan is computed by the scan (in its decoding threads).
    fn try_swapping_with_projection(
        &self,
        projection: &ProjectionExec,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let merged = self.projection.try_merge(projection.projection_expr())?;
        Ok(Some(Arc::new(self.rebuilt(
            merged,
            self.limit,
            self.partitions,
        )?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{self, Input};
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;

    /// A userport session over the fixture users (twice, so that sorts have ties).
    fn users(memory: usize) -> SessionContext {
        let ctx = crate::pipeline::session(memory).unwrap();
        let input = Input::parse("fixtures/users.ndjson");
        let users = source::open(vec![input.clone(), input]).unwrap();
        crate::pipeline::register(&ctx, users).unwrap();
        ctx
    }

    /// The rows of `sql` in `ctx`, with the physical plan that gave them.
    async fn run(ctx: &SessionContext, sql: &str) -> (RecordBatch, String) {
        let frame = ctx.sql(sql).await.unwrap();
        let plan = frame.clone().create_physical_plan().await.unwrap();
        let text = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.unwrap();
        (concat_batches(&schema, &batches).unwrap(), text)
    }

    #[tokio::test]
    async fn the_scan_gives_what_datafusion_gives_over_the_same_rows() {
        let ctx = users(crate::pipeline::DEFAULT_MEMORY_LIMIT);
        // The same users held in memory: DataFusion's own operators over them.
        let (all, _) = run(&ctx, "SELECT * FROM users").await;
        let plain = SessionContext::new();
        for udf in crate::functions::all()
            .into_iter()
            .chain([crate::search::search_match_udf()])
        {
            plain.register_udf(udf.as_ref().clone());
        }
        let table = MemTable::try_new(all.schema(), vec![vec![all.clone()]]).unwrap();
        plain.register_table("users", Arc::new(table)).unwrap();
        for (sql, pushed) in [
            ("SELECT email FROM users", "decoded=[email]"),
            (
                "SELECT upper(email) AS e, logins_count + 1 AS n FROM users WHERE logins_count > 3",
                "filter=logins_count@17 > 3",
            ),
            (
                "SELECT * FROM users WHERE email_verified",
                "filter=email_verified@2",
            ),
            (
                "SELECT user_id FROM users WHERE logins_count > 1 LIMIT 4",
                "limit=4",
            ),
            ("SELECT user_id, email FROM users LIMIT 3", "limit=3"),
            ("SELECT count(*) AS n FROM users", "decoded=[]"),
            (
                "SELECT email_verified, count(*) AS n FROM users GROUP BY email_verified \
                 ORDER BY email_verified",
                "decoded=[email_verified]",
            ),
            (
                "SELECT user_id FROM users WHERE js_sort_key(json_path(user_metadata, 'plan')) \
                 IS NOT NULL ORDER BY user_id DESC",
                "filter=js_sort_key(",
            ),
        ] {
            let (got, plan) = run(&ctx, sql).await;
            let (expected, _) = run(&plain, sql).await;
            assert!(got.num_rows() > 0, "{sql}");
            assert_eq!(got.columns(), expected.columns(), "{sql}\n{plan}");
            assert!(
                plan.contains("UsersExec: ") && plan.contains(pushed),
                "{sql}\n{plan}"
            );
            // What the scan does itself is not done again above it.
            assert!(!plan.contains("FilterExec"), "{sql}\n{plan}");
        }
    }

    #[tokio::test]
    async fn paths_read_in_the_scan_give_what_json_path_gives() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("paths.ndjson");
        let users = [
            r#"{"user_id":"a","user_metadata":{"name":"x","tags":["t1","t2"],"address":{"city":"P","geo":{"lat":1}},"0":"zero"}}"#,
            r#"{"user_id":"b","user_metadata":{ "name" : "y" , "address" : { "city" : "Q" , "geo" : [ 1 , 2 ] } , "name" : "z" }}"#,
            r#"{"user_id":"c","user_metadata":"a string"}"#,
            r#"{"user_id":"d","user_metadata":null}"#,
            r#"{"user_id":"e"}"#,
            r#"{"user_id":"f","user_metadata":{"n\u0061me":"esc\"aped","address":{"city":"R"},"address":{"zip":"1"}}}"#,
            r#"{"user_id":"g","user_metadata":{"tags":[{"a":1,"a":3},{"a":2}],"name":["x","y"]}}"#,
            r#"{"user_id":"h","user_metadata":[1,2,3],"app_metadata":{"roles":["r"]}}"#,
            r#"{"user_id":"i","identities":[{"connection":"c1","profileData":{ "k" : [1, 2] }}],"app_metadata":{"roles":"admin"}}"#,
        ];
        std::fs::write(&file, users.join("\n")).unwrap();
        let ctx = crate::pipeline::session(crate::pipeline::DEFAULT_MEMORY_LIMIT).unwrap();
        let input = Input::parse(file.to_str().unwrap());
        crate::pipeline::register(&ctx, source::open(vec![input]).unwrap()).unwrap();
        let (all, _) = run(&ctx, "SELECT * FROM users").await;
        let plain = SessionContext::new();
        for udf in crate::functions::all() {
            plain.register_udf(udf.as_ref().clone());
        }
        let table = MemTable::try_new(all.schema(), vec![vec![all.clone()]]).unwrap();
        plain.register_table("users", Arc::new(table)).unwrap();
        let paths = [
            "user_metadata, 'name'",
            "user_metadata, 'address', 'city'",
            "user_metadata, 'address', 'geo'",
            "user_metadata, 'address'",
            "user_metadata, 'tags', 0",
            "user_metadata, 'tags', '1'",
            "user_metadata, 'tags', 5",
            "user_metadata, 'tags', 'length'",
            "user_metadata, 'tags', 0, 'a'",
            "user_metadata, 'name', 'length'",
            "user_metadata, 'name', 0",
            "user_metadata, 'length'",
            "user_metadata, 0",
            "user_metadata, '0'",
            "identities, 0, 'connection'",
            "identities, 0, 'profileData'",
            "app_metadata, 'roles', 0",
        ];
        let columns: Vec<String> = paths
            .iter()
            .enumerate()
            .map(|(n, p)| format!("json_path({p}) AS p{n}"))
            .collect();
        let sql = format!("SELECT user_id, {} FROM users", columns.join(", "));
        let (got, plan) = run(&ctx, &sql).await;
        let (expected, _) = run(&plain, &sql).await;
        assert_eq!(got.num_rows(), users.len());
        for (n, path) in paths.iter().enumerate() {
            assert_eq!(got.column(n + 1), expected.column(n + 1), "{path}\n{plan}");
            // The same field (its JSON mark, its name that the js_* functions read).
            assert_eq!(
                got.schema().field(n + 1),
                expected.schema().field(n + 1),
                "{path}"
            );
        }
        let sql = "SELECT js_or(json_path(user_metadata, 'name'), user_id) AS n FROM users";
        let (got_or, plan_or) = run(&ctx, sql).await;
        let (expected_or, _) = run(&plain, sql).await;
        assert_eq!(got_or.columns(), expected_or.columns(), "{plan_or}");
        assert!(plan_or.contains("js_or(user_metadata.name@"), "{plan_or}");
        // Read in the scan, the metadata itself not decoded: no json_path call is left.
        assert!(
            plan.contains("decoded=[user_id], paths=[user_metadata.name, "),
            "{plan}"
        );
        assert!(!plan.contains("json_path"), "{plan}");
        // A filter on a path, and a path read alongside its column.
        let sql = "SELECT user_id, user_metadata FROM users \
                   WHERE json_path(user_metadata, 'address', 'city') IS NOT NULL";
        let (got, plan) = run(&ctx, sql).await;
        let (expected, _) = run(&plain, sql).await;
        assert_eq!(got.columns(), expected.columns(), "{plan}");
        assert_eq!(got.num_rows(), 2, "{plan}");
        assert!(
            plan.contains("paths=[user_metadata.address.city]"),
            "{plan}"
        );
    }

    #[tokio::test]
    async fn sorts_run_in_parts_and_keep_ties_in_input_order() {
        let request = crate::pipeline::Request {
            columns: vec![crate::pipeline::OutputColumn {
                name: "id".into(),
                compiled: crate::expr::compile("user_id", "t").unwrap(),
            }],
            sort: vec![crate::pipeline::SortKey::parse("email_verified:desc", "t").unwrap()],
            ..Default::default()
        };
        let mut results = Vec::new();
        // 512M sorts in parts (one per core, here two); under 128M in one.
        for (memory, parts) in [(512 << 20, 2), (64 << 20, 1)] {
            let ctx = users(memory);
            let input = Input::parse("fixtures/users.ndjson");
            let source = source::open(vec![input.clone(), input]).unwrap();
            let frame = request.plan(&ctx, &source).await.unwrap().frame;
            let plan = frame.clone().create_physical_plan().await.unwrap();
            let text = datafusion::physical_plan::displayable(plan.as_ref())
                .indent(true)
                .to_string();
            let split = crate::source::cores() > 1 && parts > 1;
            // One sort over the parts, with no merge after it.
            assert!(!text.contains("SortPreservingMergeExec"), "{text}");
            assert_eq!(text.contains("partitions=2"), split, "{text}");
            assert!(text.contains("ordinal"), "{text}");
            let schema = Arc::new(frame.schema().as_arrow().clone());
            let batches = frame.collect().await.unwrap();
            results.push(concat_batches(&schema, &batches).unwrap());
        }
        assert!(results[0].num_rows() > 10);
        assert_eq!(results[0], results[1]);
        // Ties keep input order: within each key, the fixture's users in order, then
        // the same users of its second copy.
        let once = crate::pipeline::session(64 << 20).unwrap();
        let fixture = source::open(vec![Input::parse("fixtures/users.ndjson")]).unwrap();
        crate::pipeline::register(&once, fixture).unwrap();
        let (read, _) = run(&once, "SELECT user_id, email_verified FROM users").await;
        let ids = read.column(0).as_string::<i32>();
        let keys = read.column(1).as_boolean();
        let mut expected = Vec::new();
        for key in [Some(true), Some(false), None] {
            let group: Vec<&str> = (0..read.num_rows())
                .filter(|&i| keys.is_valid(i).then(|| keys.value(i)) == key)
                .map(|i| ids.value(i))
                .collect();
            expected.extend(group.iter().chain(&group).copied());
        }
        let sorted = results[0].column(0).as_string::<i32>();
        let got: Vec<&str> = (0..sorted.len()).map(|i| sorted.value(i)).collect();
        assert_eq!(got, expected);
    }
}
