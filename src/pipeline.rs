//! The middle of the flow: one DataFusion session with userport's functions, the source
//! registered as the table `users`, a plan over it, and its batches streamed into a sink.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::catalog::streaming::StreamingTable;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::sink::{self, Format, Options, Shape, output::Destination};
use crate::source::Source;

/// Name of the table that holds the users.
pub const TABLE: &str = "users";

/// A session with userport's functions registered. Plans keep the input order: nothing is
/// repartitioned round-robin.
pub fn session() -> SessionContext {
    let config = SessionConfig::new()
        .with_round_robin_repartition(false)
        .with_target_partitions(2)
        .with_batch_size(crate::source::BATCH_ROWS);
    let ctx = SessionContext::new_with_config(config);
    for udf in crate::functions::all() {
        ctx.register_udf(udf.as_ref().clone());
    }
    ctx
}

/// Registers `source` as the table [`TABLE`] of `ctx`.
pub fn register(ctx: &SessionContext, source: Source) -> Result<()> {
    let schema = source.schema_ref();
    let table = StreamingTable::try_new(schema, vec![Arc::new(source)])?;
    ctx.register_table(TABLE, Arc::new(table))?;
    Ok(())
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
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(Error::from_datafusion)?;
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
    frame: DataFrame,
) -> Result<String> {
    use std::fmt::Write as _;
    let mut out = String::new();
    if !columns.is_empty() {
        out.push_str("Columns:\n");
    }
    for (name, compiled) in columns {
        let sql = datafusion::sql::unparser::expr_to_sql(&compiled.expr)
            .map_or_else(|e| format!("(no SQL form: {e})"), |sql| sql.to_string());
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

/// Projects `frame` onto named columns, in order.
pub fn select(frame: DataFrame, columns: Vec<(String, Expr)>) -> Result<DataFrame> {
    let exprs: Vec<Expr> = columns
        .into_iter()
        .map(|(name, expr)| expr.alias(name))
        .collect();
    Ok(frame.select(exprs)?)
}
