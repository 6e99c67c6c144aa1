//! A sort that moves each row twice at most: `GatherSortExec` reads every partition of its
//! input at once, each on a task of its own that sorts each batch as it arrives (a local
//! gather, within the batch), holds the sorted batches, merges them at the end (a heap of
//! the batches by their next rows' keys, converted to Arrow's row format a window of rows at
//! a time) and gathers each output batch from the held batches in that order: one output
//! partition, with no merge of sorted partitions after it (which would move every row once
//! more). DataFusion's `SortExec` holds each batch twice at the end (as it came and sorted)
//! before it merges them; here a batch is sorted as it arrives and dropped, and columns
//! that are the same array (a sort key that is also a column) stay one array.
//!
//! Rows of equal keys come out in the order of the input's batches when its partitions are
//! dealt batches in turn, as the scan of users deals them (batch `i` to partition
//! `i % parts`): held batches are merged in that order, and ties go to the earlier batch.
//!
//! It reserves what it holds from the session's memory pool (twice each batch, as
//! DataFusion's sort does: the batch and room to sort it, which covers the index and the
//! keys sorted at the end), and when the pool refuses, it gives way to DataFusion's
//! `SortExec`, which gets the batches held so far and then the rest of the input, and
//! spills as it needs (`--explain analyze` counts it as `gave_way`).

use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{Row, RowConverter, Rows, SortField};
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{LexOrdering, PhysicalExpr};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, Time,
};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::{RecordBatchReceiverStream, RecordBatchStreamAdapter};
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{StreamExt, TryStreamExt};

/// Sorts the rows of every partition of its input into one partition, as a `SortExec`
/// over their union would; see the module's documentation.
#[derive(Debug)]
pub struct GatherSortExec {
    expr: LexOrdering,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl GatherSortExec {
    /// The rows of every partition of `input` sorted by `expr`, in one partition.
    pub fn new(expr: LexOrdering, input: Arc<dyn ExecutionPlan>) -> GatherSortExec {
        // The same properties as the sort it stands for.
        let properties = SortExec::new(expr.clone(), Arc::clone(&input))
            .properties()
            .clone();
        GatherSortExec {
            expr,
            input,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for GatherSortExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "GatherSortExec: expr=[{}]", self.expr)
    }
}

impl ExecutionPlan for GatherSortExec {
    fn name(&self) -> &str {
        "GatherSortExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut recursion = TreeNodeRecursion::Continue;
        for sort in self.expr.iter() {
            recursion = f(&sort.expr)?;
            if recursion == TreeNodeRecursion::Stop {
                break;
            }
        }
        Ok(recursion)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(GatherSortExec::new(self.expr.clone(), input))),
            _ => Err(DataFusionError::Internal(
                "GatherSortExec has one child".into(),
            )),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "GatherSortExec has one partition, not {partition}"
            )));
        }
        let parts = self
            .input
            .properties()
            .output_partitioning()
            .partition_count();
        let inputs = (0..parts)
            .map(|p| self.input.execute(p, Arc::clone(&context)))
            .collect::<Result<Vec<_>>>()?;
        let schema = self.input.schema();
        let expr = self.expr.clone();
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let gave_way = MetricBuilder::new(&self.metrics).counter("gave_way", partition);
        let reservation = MemoryConsumer::new("GatherSortExec")
            .with_can_spill(true)
            .register(context.memory_pool());
        let batch_rows = context.session_config().batch_size();
        let keys = Arc::new(Keys::new(&self.expr, &schema)?);
        let time = baseline.elapsed_compute().clone();
        // Each partition is read, and its batches sorted, on a task of its own; the sorted
        // batches come here, each with its place in its partition and the partition's
        // number. A few wait at most, so that what is held is what is reserved.
        let (sender, mut sorted_batches) = tokio::sync::mpsc::channel(2 * parts.max(1));
        let tasks: Vec<SpawnedTask<()>> = inputs
            .into_iter()
            .enumerate()
            .map(|(part, input)| {
                let sender = sender.clone();
                let (keys, schema, time) = (Arc::clone(&keys), Arc::clone(&schema), time.clone());
                SpawnedTask::spawn(sort_part(part, input, sender, keys, schema, time))
            })
            .collect();
        drop(sender);
        let out_schema = Arc::clone(&schema);
        let sorted = futures::stream::once(async move {
            let mut held: Vec<((usize, usize), RecordBatch)> = Vec::new();
            while let Some(next) = sorted_batches.recv().await {
                let (place, sorted) = next?;
                // Twice the batch, as DataFusion's sort reserves (the batch and room to
                // sort it): when the pool refuses and the sort gives way, the batches held
                // then are at most half the pool, which the sort that takes them over
                // reserves again as it goes.
                if reservation.try_grow(2 * held_size(&sorted)).is_err() {
                    drop(reservation);
                    let held = held.into_iter().map(|(_, batch)| batch);
                    let rest = Rest {
                        batches: sorted_batches,
                        tasks,
                    };
                    return give_way(
                        expr,
                        held,
                        sorted,
                        rest.stream(),
                        schema,
                        context,
                        &gave_way,
                    );
                }
                held.push((place, sorted));
            }
            joined(tasks).await?;
            // Each batch is a run for the merge at the end (whose gathers then read each
            // batch in order, not at random), the runs in the order the batches were dealt.
            held.sort_by_key(|&((seq, part), _)| (seq, part));
            let held = held.into_iter().map(|(_, batch)| batch).collect();
            let gather = {
                let _timer = time.timer();
                Gather::new(
                    held,
                    keys,
                    batch_rows,
                    reservation,
                    out_schema,
                    time.clone(),
                )?
            };
            // The output batches are gathered on a thread of their own, a couple ahead of
            // whoever reads them (a report's sink, on another core).
            let mut gathered = RecordBatchReceiverStream::builder(Arc::clone(&schema), 2);
            let sender = gathered.tx();
            gathered.spawn_blocking(move || {
                for batch in gather {
                    if let Ok(batch) = &batch {
                        baseline.record_output(batch.num_rows());
                    }
                    let failed = batch.is_err();
                    if sender.blocking_send(batch).is_err() || failed {
                        break;
                    }
                }
                Ok(())
            });
            Ok(gathered.build())
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            sorted,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// The memory a held batch takes: each distinct array once (a column that is another
/// column's array again costs nothing more).
fn held_size(batch: &RecordBatch) -> usize {
    let one = std::slice::from_ref(batch);
    twins(one)
        .iter()
        .zip(batch.columns())
        .filter(|(twin, _)| twin.is_none())
        .map(|(_, column)| column.get_array_memory_size())
        .sum()
}

/// Whether two columns are the same array (or the same slice of one).
fn same_array(a: &ArrayRef, b: &ArrayRef) -> bool {
    Arc::ptr_eq(a, b) || a.to_data().ptr_eq(&b.to_data())
}

/// A batch of a partition, sorted, with its place: its number in the partition's order,
/// and the partition's.
type Placed = Result<((usize, usize), RecordBatch)>;

/// Reads partition `part` of the input, sorting each batch by `keys` and sending it on, until
/// the input ends, fails (the error sent on), or nobody receives.
async fn sort_part(
    part: usize,
    mut input: SendableRecordBatchStream,
    sender: tokio::sync::mpsc::Sender<Placed>,
    keys: Arc<Keys>,
    schema: SchemaRef,
    time: Time,
) {
    let mut seq = 0;
    while let Some(batch) = input.next().await {
        let sorted = batch.and_then(|batch| {
            let _timer = time.timer();
            keys.sort(batch, &schema)
        });
        let failed = sorted.is_err();
        if sender.send(sorted.map(|b| ((seq, part), b))).await.is_err() || failed {
            return;
        }
        seq += 1;
    }
}

/// Waits for the tasks that read the partitions: a task that panicked panics here too,
/// rather than its partition's rows going missing.
async fn joined(tasks: Vec<SpawnedTask<()>>) -> Result<()> {
    for task in tasks {
        task.join_unwind()
            .await
            .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))?;
    }
    Ok(())
}

/// The sorted batches still to come when the sort gives way, with the tasks that send them
/// (which run as long as this is read).
struct Rest {
    batches: tokio::sync::mpsc::Receiver<Placed>,
    tasks: Vec<SpawnedTask<()>>,
}

impl Rest {
    /// The batches, then the end once every task is done.
    fn stream(self) -> impl futures::Stream<Item = Result<RecordBatch>> + Send {
        futures::stream::unfold(Some(self), |rest| async move {
            let mut rest = rest?;
            match rest.batches.recv().await {
                Some(next) => Some((next.map(|(_, batch)| batch), Some(rest))),
                None => match joined(rest.tasks).await {
                    Ok(()) => None,
                    Err(e) => Some((Err(e), None)),
                },
            }
        })
    }
}

/// DataFusion's sort over the batches held so far, then `next`, then the rest of the input.
fn give_way(
    expr: LexOrdering,
    held: impl Iterator<Item = RecordBatch> + Send + 'static,
    next: RecordBatch,
    rest: impl futures::Stream<Item = Result<RecordBatch>> + Send + 'static,
    schema: SchemaRef,
    context: Arc<TaskContext>,
    gave_way: &Count,
) -> Result<SendableRecordBatchStream> {
    gave_way.add(1);
    let replayed = futures::stream::iter(held.chain([next]).map(Ok)).chain(rest);
    let stream = Once {
        schema: Arc::clone(&schema),
        stream: Mutex::new(Some(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&schema),
            replayed,
        )))),
    };
    let table = StreamingTableExec::try_new(schema, vec![Arc::new(stream)], None, [], false, None)?;
    SortExec::new(expr, Arc::new(table)).execute(0, context)
}

/// A stream handed on once, as the one partition of a `StreamingTableExec`.
struct Once {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Once")
    }
}

impl PartitionStream for Once {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().ok().and_then(|mut s| s.take());
        taken.unwrap_or_else(|| {
            let failed = DataFusionError::Internal("a held sort's input was read twice".into());
            Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                futures::stream::once(async move { Err(failed) }),
            ))
        })
    }
}

/// The first sixteen bytes of a row in the row format, as a number that orders as they do
/// (a shorter row padded with zeros, which orders it no later than any row it begins).
fn prefix(row: &[u8]) -> u128 {
    let mut bytes = [0u8; 16];
    let n = row.len().min(16);
    bytes[..n].copy_from_slice(&row[..n]);
    u128::from_be_bytes(bytes)
}

/// The held batches, each sorted, merged; yields the output batches.
struct Gather {
    batches: Vec<RecordBatch>,
    merge: Merge,
    /// The rows of the next output batch, as (batch, row).
    rows: Vec<(usize, usize)>,
    batch_rows: usize,
    /// Per column: an earlier column holding the same array in every batch.
    twins: Vec<Option<usize>>,
    schema: SchemaRef,
    /// Released when the last batch is gathered.
    reservation: Option<MemoryReservation>,
    /// The sort's compute time, which merging and gathering add to.
    time: Time,
}

impl Gather {
    /// The rows of `batches` (each sorted by `keys`) in order, ties in the order they came.
    fn new(
        batches: Vec<RecordBatch>,
        keys: Arc<Keys>,
        batch_rows: usize,
        reservation: MemoryReservation,
        schema: SchemaRef,
        time: Time,
    ) -> Result<Gather> {
        let merge = Merge::new(&batches, keys)?;
        let twins = twins(&batches);
        Ok(Gather {
            batches,
            merge,
            rows: Vec::with_capacity(batch_rows.max(1)),
            batch_rows: batch_rows.max(1),
            twins,
            schema,
            reservation: Some(reservation),
            time,
        })
    }

    /// The next output batch, `None` after the last.
    fn gather(&mut self) -> Result<Option<RecordBatch>> {
        let _timer = self.time.timer();
        self.rows.clear();
        self.merge.take(self.batch_rows, &mut self.rows)?;
        if self.rows.is_empty() {
            return Ok(None);
        }
        gather(&self.batches, &self.rows, &self.twins, &self.schema).map(Some)
    }
}

/// Rows of a run's keys converted at a time: the merge holds this many rows' keys per run,
/// not every row's.
const WINDOW: usize = 256;

/// One sorted batch in the merge: its sort keys, and those of a window of rows from the
/// next one on in the row format.
struct Run {
    /// The batch's place among the held batches.
    batch: usize,
    /// The batch's sort keys, evaluated once.
    keys: Vec<ArrayRef>,
    len: usize,
    /// The keys of the rows from `start` on.
    window: Rows,
    start: usize,
    /// The next row to give.
    next: usize,
}

impl Run {
    /// The next row's keys.
    fn head(&self) -> Row<'_> {
        self.window.row(self.next - self.start)
    }

    /// Converts the keys of the rows from `next` on.
    fn fill(&mut self, converter: &RowConverter) -> Result<()> {
        let n = WINDOW.min(self.len - self.next);
        let columns: Vec<ArrayRef> = self.keys.iter().map(|k| k.slice(self.next, n)).collect();
        self.window.clear();
        converter.append(&mut self.window, &columns)?;
        self.start = self.next;
        Ok(())
    }

    /// Moves past the next row; `false` when there is none left.
    fn advance(&mut self, converter: &RowConverter) -> Result<bool> {
        self.next += 1;
        if self.next == self.len {
            return Ok(false);
        }
        if self.next - self.start == self.window.num_rows() {
            self.fill(converter)?;
        }
        Ok(true)
    }
}

/// A merge of sorted runs: a binary heap of the runs by their next rows' keys (ties go to
/// the run that came first, so that rows of equal keys keep the order they came in).
struct Merge {
    keys: Arc<Keys>,
    runs: Vec<Run>,
    /// Runs with rows left, as a heap: the first one holds the least next row.
    heap: Vec<usize>,
}

impl Merge {
    fn new(batches: &[RecordBatch], keys: Arc<Keys>) -> Result<Merge> {
        let mut runs = Vec::with_capacity(batches.len());
        for (b, batch) in batches.iter().enumerate() {
            if batch.num_rows() == 0 {
                continue;
            }
            let mut run = Run {
                batch: b,
                keys: keys.columns(batch)?,
                len: batch.num_rows(),
                window: keys.converter.empty_rows(WINDOW, WINDOW * 32),
                start: 0,
                next: 0,
            };
            run.fill(&keys.converter)?;
            runs.push(run);
        }
        let heap = (0..runs.len()).collect();
        let mut merge = Merge { keys, runs, heap };
        for i in (0..merge.heap.len() / 2).rev() {
            merge.sift_down(i);
        }
        Ok(merge)
    }

    /// Whether run `a`'s next row goes before run `b`'s.
    fn before(&self, a: usize, b: usize) -> bool {
        match self.runs[a].head().cmp(&self.runs[b].head()) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => a < b,
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * i + 1;
            if left >= len {
                return;
            }
            let right = left + 1;
            let least = if right < len && self.before(self.heap[right], self.heap[left]) {
                right
            } else {
                left
            };
            if !self.before(self.heap[least], self.heap[i]) {
                return;
            }
            self.heap.swap(i, least);
            i = least;
        }
    }

    /// Appends the next (up to) `n` rows to `out`, as (batch, row).
    fn take(&mut self, n: usize, out: &mut Vec<(usize, usize)>) -> Result<()> {
        while out.len() < n {
            let Some(&top) = self.heap.first() else {
                return Ok(());
            };
            let run = &mut self.runs[top];
            out.push((run.batch, run.next));
            if !run.advance(&self.keys.converter)? {
                let last = self.heap.pop().unwrap_or(top);
                if self.heap.is_empty() {
                    return Ok(());
                }
                self.heap[0] = last;
            }
            self.sift_down(0);
        }
        Ok(())
    }
}

/// The sort keys of a plan's rows, in Arrow's row format.
struct Keys {
    expr: LexOrdering,
    converter: RowConverter,
}

impl Keys {
    /// The keys `expr` over rows of `schema`.
    fn new(expr: &LexOrdering, schema: &SchemaRef) -> Result<Keys> {
        let fields = expr
            .iter()
            .map(|sort| {
                Ok(SortField::new_with_options(
                    sort.expr.data_type(schema)?,
                    sort.options,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Keys {
            expr: expr.clone(),
            converter: RowConverter::new(fields)?,
        })
    }

    /// The sort keys of `batch`.
    fn columns(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        self.expr
            .iter()
            .map(|sort| sort.expr.evaluate(batch)?.into_array(batch.num_rows()))
            .collect()
    }

    /// `batch` sorted (ties in the order they came); a column that is another's array
    /// again stays so.
    fn sort(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        let mut keys = self.converter.empty_rows(rows, rows * 16);
        self.converter.append(&mut keys, &self.columns(&batch)?)?;
        // Rows are sorted by their first sixteen bytes held beside them, and compared whole
        // only where those are equal: fewer reads of rows scattered in memory. (Sixteen
        // bytes of the row format hold about fourteen characters of a text key: the date
        // and hour of a timestamp.)
        let mut index: Vec<(u128, u32)> = (0..rows)
            .map(|i| (prefix(keys.row(i).as_ref()), i as u32))
            .collect();
        index.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| keys.row(a.1 as usize).cmp(&keys.row(b.1 as usize)))
                .then(a.1.cmp(&b.1))
        });
        let order: Vec<(usize, usize)> = index.iter().map(|&(_, i)| (0, i as usize)).collect();
        let one = [batch];
        gather(&one, &order, &twins(&one), schema)
    }
}

/// Per column of `batches`: an earlier column holding the same array in every batch.
fn twins(batches: &[RecordBatch]) -> Vec<Option<usize>> {
    let width = batches.first().map_or(0, RecordBatch::num_columns);
    (0..width)
        .map(|c| (0..c).find(|&e| batches.iter().all(|b| same_array(b.column(e), b.column(c)))))
        .collect()
}

/// The rows `rows` (batch, row) of `batches` as one batch of `schema`; a column that is
/// the twin of an earlier one is that column's array again.
fn gather(
    batches: &[RecordBatch],
    rows: &[(usize, usize)],
    twins: &[Option<usize>],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(twins.len());
    for (c, twin) in twins.iter().enumerate() {
        if let Some(e) = twin {
            columns.push(Arc::clone(&columns[*e]));
            continue;
        }
        let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
        columns.push(interleave(&arrays, rows)?);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &options,
    )?)
}

impl Iterator for Gather {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        let gathered = self.gather().transpose();
        if gathered.is_none() {
            // Everything is out: the held batches go, and their memory back to the pool.
            self.batches.clear();
            self.reservation.take();
        }
        gathered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::compute::SortOptions;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::physical_expr::PhysicalSortExpr;
    use datafusion::physical_plan::collect_partitioned;
    use datafusion::physical_plan::expressions::col;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Two partitions of batches of uneven sizes: a text key with nulls and many ties, a
    /// number, a payload, and the key again as the same array (a sort key that is also a
    /// column).
    fn partitions() -> (SchemaRef, Vec<Vec<RecordBatch>>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
            Field::new("payload", DataType::Utf8, false),
            Field::new("key again", DataType::Utf8, true),
        ]));
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parts = vec![Vec::new(), Vec::new()];
        let mut n = 0i64;
        for (i, rows) in [1, 700, 0, 2048, 333, 1500, 17, 1200, 900, 1400, 5, 1600]
            .into_iter()
            .enumerate()
        {
            let keys: StringArray = (0..rows)
                .map(|_| {
                    let r = next();
                    (r % 9 != 0).then(|| format!("k{}", r % 50))
                })
                .collect();
            let numbers: Int64Array = (0..rows)
                .map(|_| {
                    // Unique, but not in input order.
                    n += 1;
                    (n * 7919) % 100_003
                })
                .collect();
            let payload: StringArray = (0..rows).map(|r| Some(format!("row {i}.{r}"))).collect();
            let keys: ArrayRef = Arc::new(keys);
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::clone(&keys),
                    Arc::new(numbers),
                    Arc::new(payload),
                    keys,
                ],
            )
            .unwrap();
            parts[i % 2].push(batch);
        }
        (schema, parts)
    }

    fn ordering(schema: &SchemaRef) -> LexOrdering {
        let key = |name: &str, descending: bool| PhysicalSortExpr {
            expr: col(name, schema).unwrap(),
            options: SortOptions {
                descending,
                nulls_first: false,
            },
        };
        LexOrdering::new([key("key", true), key("n", false)]).unwrap()
    }

    async fn run(
        plan: Arc<dyn ExecutionPlan>,
        memory: usize,
    ) -> (Vec<Vec<RecordBatch>>, Arc<dyn ExecutionPlan>) {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(memory, 1.0)
            .build_arc()
            .unwrap();
        let mut config = SessionConfig::new().with_batch_size(1000);
        // As the session sets it: an eighth of the pool for merging spilled runs.
        config.options_mut().execution.sort_spill_reservation_bytes = memory / 8;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let out = collect_partitioned(Arc::clone(&plan), ctx.task_ctx())
            .await
            .unwrap();
        (out, plan)
    }

    fn rows(batches: &[RecordBatch]) -> Vec<String> {
        let mut out = Vec::new();
        for batch in batches {
            for r in 0..batch.num_rows() {
                let cells: Vec<String> = batch
                    .columns()
                    .iter()
                    .map(|c| datafusion::arrow::util::display::array_value_to_string(c, r).unwrap())
                    .collect();
                out.push(cells.join("|"));
            }
        }
        out
    }

    fn gave_way(plan: &Arc<dyn ExecutionPlan>) -> usize {
        plan.metrics()
            .and_then(|m| m.sum_by_name("gave_way"))
            .map_or(0, |v| v.as_usize())
    }

    /// The rows of the input dealt to the parts in turn, as they came.
    fn dealt(parts: &[Vec<RecordBatch>]) -> Vec<RecordBatch> {
        let most = parts.iter().map(Vec::len).max().unwrap_or(0);
        (0..most)
            .flat_map(|seq| parts.iter().filter_map(move |part| part.get(seq).cloned()))
            .collect()
    }

    /// The partitions come out as one, as DataFusion's sort of their union gives it,
    /// whether the rows fit in the pool or the sort gives way to DataFusion's (which
    /// spills) part way.
    #[tokio::test]
    async fn sorts_every_partition_into_one_as_datafusion_does() {
        let (schema, parts) = partitions();
        let input = || MemorySourceConfig::try_new_exec(&parts, Arc::clone(&schema), None).unwrap();
        let one =
            MemorySourceConfig::try_new_exec(&[dealt(&parts)], Arc::clone(&schema), None).unwrap();
        let reference = SortExec::new(ordering(&schema), one);
        let (expected, _) = run(Arc::new(reference), 64 << 20).await;
        assert_eq!(expected.len(), 1);
        // A pool that holds most of the rows, but not all of them.
        let all: usize = parts.iter().flatten().map(held_size).sum();
        for (memory, gives_way) in [(64 << 20, false), (all * 3 / 4, true)] {
            let plan = GatherSortExec::new(ordering(&schema), input());
            let (got, plan) = run(Arc::new(plan), memory).await;
            assert_eq!(gave_way(&plan) > 0, gives_way, "{memory} bytes");
            assert_eq!(got.len(), 1);
            assert!(
                rows(&got[0]) == rows(&expected[0]),
                "{memory} bytes: rows differ"
            );
            assert!(got[0].iter().all(|b| b.num_rows() <= 1000));
            if !gives_way {
                // The key and its twin stay one array.
                assert!(got[0].iter().all(|b| Arc::ptr_eq(b.column(0), b.column(3))));
            }
            let total: usize = got[0].iter().map(RecordBatch::num_rows).sum();
            assert_eq!(total, 9704);
        }
    }

    /// Rows of equal keys come out in the order they came in (within a batch, across
    /// batches and across the parts they were dealt to), the text key descending, nulls
    /// last.
    #[tokio::test]
    async fn ties_keep_the_order_they_came_in() {
        let (schema, parts) = partitions();
        // Batches of at most the session's batch size (a larger one reaches the sort in
        // pieces, each a batch of its own), dealt again in turn.
        let came: Vec<RecordBatch> = dealt(&parts)
            .iter()
            .flat_map(|b| {
                (0..b.num_rows())
                    .step_by(1000)
                    .map(|at| b.slice(at, 1000.min(b.num_rows() - at)))
            })
            .collect();
        let mut parts = vec![Vec::new(), Vec::new()];
        for (i, batch) in came.iter().enumerate() {
            parts[i % 2].push(batch.clone());
        }
        let input = MemorySourceConfig::try_new_exec(&parts, Arc::clone(&schema), None).unwrap();
        let by_key = LexOrdering::new([ordering(&schema).first().clone()]).unwrap();
        let (got, _) = run(Arc::new(GatherSortExec::new(by_key, input)), 64 << 20).await;
        let came = rows(&came);
        let went = rows(&got[0]);
        assert_eq!(went.len(), came.len());
        let key = |row: &String| row.split('|').next().unwrap_or_default().to_string();
        // Keys descending, empty (null) last.
        let keys: Vec<String> = went.iter().map(key).collect();
        let mut expected_keys = keys.clone();
        expected_keys.sort_by(|a, b| match (a.is_empty(), b.is_empty()) {
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => b.cmp(a),
        });
        assert_eq!(keys, expected_keys);
        // Within each key, the rows as they came.
        let mut seen = std::collections::HashSet::new();
        for k in &keys {
            if seen.insert(k.clone()) {
                let came_k: Vec<&String> = came.iter().filter(|r| &key(r) == k).collect();
                let went_k: Vec<&String> = went.iter().filter(|r| &key(r) == k).collect();
                assert_eq!(came_k, went_k, "key {k}");
            }
        }
    }
}
