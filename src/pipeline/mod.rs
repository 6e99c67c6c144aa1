//! The middle of the flow: one DataFusion session with userport's functions and rules, the
//! users as a table ([`scan`]), a request or a query planned over it ([`request`]), and the
//! plan's batches streamed into a sink ([`write`]) or explained ([`explain`]).

pub mod explain;
pub mod gather;
pub mod parts;
pub mod request;
pub mod scan;

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::sink::{self, Format, Options, Shape, output::Destination};
use crate::source::Source;
pub use request::{Condition, OutputColumn, Request, SortKey};
pub use scan::{UsersExec, UsersTable};

/// Name of the table that holds the users.
pub const TABLE: &str = "users";

/// The memory DataFusion's operators may hold before sorts spill to disk, by default.
pub const DEFAULT_MEMORY_LIMIT: usize = 512 << 20;

/// A session with userport's functions and the JSON functions of
/// `datafusion-functions-json` (`json_get_str`, `->`, `->>`, …) registered; SQL is read in
/// the PostgreSQL dialect. Plans keep the input order: nothing is repartitioned
/// round-robin, and a sort over a scan of users runs in parts on all cores ([`parts`]).
/// Sorts spill to the system's temporary folder beyond `memory_limit` bytes.
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
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(parts::SortInParts::new(
            crate::source::cores(),
            Some(memory_limit),
        )))
        .build();
    let mut ctx = SessionContext::new_with_state(state);
    let search = crate::search::search_match_udf();
    for udf in crate::functions::all().into_iter().chain([search]) {
        ctx.register_udf(udf.as_ref().clone());
    }
    for udf in crate::password::udfs() {
        ctx.register_udf(udf);
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

/// Registers the users of `source` as the table [`TABLE`] of `ctx`.
pub fn register(ctx: &SessionContext, source: Source) -> Result<()> {
    register_as(ctx, TABLE, source)
}

/// Registers the users of `source` as the table `name` of `ctx`.
pub fn register_as(ctx: &SessionContext, name: &str, source: Source) -> Result<()> {
    ctx.register_table(name, Arc::new(UsersTable::new(source)))?;
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
