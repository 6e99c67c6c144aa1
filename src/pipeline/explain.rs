//! `--explain`: a request's filter, sort keys and columns as parsed and as SQL (when the
//! plan comes from a request), then the logical plan and the physical plan that runs. With `analyze`, the plan is run (its output
//! dropped) and printed with each node's metrics, as `EXPLAIN ANALYZE` does.

use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::logical_expr::Expr;
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use futures::StreamExt;

use super::request::{Planned, Request};
use crate::error::{Error, Result};

/// What `--explain` prints for `planned` (planned from `request`, when one); `analyze` runs
/// the plan.
pub async fn explain(request: Option<&Request>, planned: Planned, analyze: bool) -> Result<String> {
    let empty = Request::default();
    let request = request.unwrap_or(&empty);
    let to_sql = |e: &Expr| {
        datafusion::sql::unparser::expr_to_sql(e)
            .map_or_else(|e| format!("(no SQL form: {e})"), |sql| sql.to_string())
    };
    let mut out = String::new();
    if let Some(filter) = &planned.filter {
        let _ = writeln!(out, "Filter:\n  sql: {}", to_sql(filter));
    }
    if !request.sort.is_empty() {
        out.push_str("Sort (then input order):\n");
    }
    for key in &request.sort {
        let _ = writeln!(
            out,
            "  {} {}\n    sql: {} {} NULLS LAST",
            key.compiled.node,
            if key.descending { "desc" } else { "asc" },
            to_sql(&key.key()),
            if key.descending { "DESC" } else { "ASC" },
        );
    }
    if !request.columns.is_empty() {
        out.push_str("Columns:\n");
    }
    for column in &request.columns {
        let _ = writeln!(
            out,
            "  {}\n    expression: {}\n    sql:        {}",
            column.name,
            column.compiled.node,
            to_sql(&column.compiled.expr)
        );
    }
    let frame = planned.frame;
    let logical = frame.clone().into_optimized_plan()?;
    let _ = writeln!(
        out,
        "Logical plan:\n{}",
        indent(&logical.display_indent().to_string())
    );
    let task = Arc::new(frame.task_ctx());
    let physical = frame.create_physical_plan().await?;
    if analyze {
        run(&physical, task).await?;
        let display = DisplayableExecutionPlan::with_metrics(physical.as_ref()).indent(true);
        let _ = writeln!(out, "Physical plan, run:\n{}", indent(&display.to_string()));
    } else {
        let display = displayable(physical.as_ref()).indent(true);
        let _ = writeln!(out, "Physical plan:\n{}", indent(&display.to_string()));
    }
    Ok(out)
}

/// Runs every partition of `plan` to its end, dropping the batches.
async fn run(
    plan: &Arc<dyn ExecutionPlan>,
    task: Arc<datafusion::execution::TaskContext>,
) -> Result<()> {
    let mut stream = datafusion::physical_plan::execute_stream(plan.clone(), task)
        .map_err(Error::from_datafusion)?;
    while let Some(batch) = stream.next().await {
        batch.map_err(Error::from_datafusion)?;
    }
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
}
