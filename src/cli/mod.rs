//! The command line: one file a subcommand, each with its `Args` and one `run`.

pub mod diff;
pub mod export;
pub mod import;
pub mod jobs;
pub mod migrate;
pub mod prepare;
pub mod progress;
pub mod sql;
pub mod validate;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Error;
use crate::pipeline::{Condition, Target};
use crate::sink::{Format, Options, Shape};

/// Move Auth0 users in bulk: exports to reports and import files.
#[derive(Debug, Parser)]
#[command(name = "userport", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read user exports and write a report or whole users (CSV, JSON, NDJSON, Parquet).
    Export(export::Args),
    /// Run SQL over user exports (the table `users`) and write the result.
    Sql(sql::Args),
    /// Turn users into Auth0 bulk-import files that Auth0 accepts the first time.
    Prepare(prepare::Args),
    /// Check Auth0 import files as Auth0's server does, before anything is sent.
    Validate(validate::Args),
    /// Import files into a tenant: users-imports jobs, a report, the failed users.
    Import(import::Args),
    /// Show a job of the tenant, its errors, or wait for it to end.
    Jobs(jobs::Args),
    /// Compare two user sets (exports, import files, prepared folders) user by user.
    Diff(diff::Args),
    /// Move a connection's users to another tenant with their passwords, roles and
    /// organizations, and prove they arrived.
    Migrate(migrate::Args),
}

/// Runs the command; the exit code says how it went (0 ok, 1 problems found).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Export(args) => export::run(args).await,
        Command::Sql(args) => sql::run(args).await,
        Command::Prepare(args) => prepare::run(args).await,
        Command::Validate(args) => validate::run(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Jobs(args) => jobs::run(args).await,
        Command::Diff(args) => diff::run(args).await,
        Command::Migrate(args) => migrate::run(args).await,
    }
}

/// How the commands that talk to a tenant find it (credentials come from the environment:
/// `AUTH0_CLIENT_ID` and `AUTH0_CLIENT_SECRET`, or `AUTH0_TOKEN`).
#[derive(Debug, clap::Args)]
pub struct TenantArgs {
    /// The tenant: TENANT.auth0.com, or a full URL (plain http only on loopback)
    /// [default: $AUTH0_DOMAIN].
    #[arg(long, value_name = "DOMAIN", global = true)]
    pub domain: Option<String>,

    /// Trace each call to the tenant on stderr (method, path, status, time).
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

impl TenantArgs {
    /// A client of the tenant these arguments name.
    pub fn client(&self) -> Result<crate::auth0::Client, Error> {
        let trace: Option<crate::auth0::Trace> = self
            .verbose
            .then(|| std::sync::Arc::new(|line: &str| eprintln!("{line}")) as crate::auth0::Trace);
        crate::auth0::Client::with_trace(
            crate::auth0::Tenant::from_env(self.domain.as_deref())?,
            trace,
        )
    }
}

/// What a command may hold: memory before sorts spill, and the longest line of an input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Memory that sorts, joins and aggregations may hold before they spill.
    pub memory: usize,
    /// The longest line (one user) of an input, in bytes.
    pub max_line: usize,
}

/// How many times a command reads its inputs (for the progress bar's total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Once: the bar shows the share of the inputs' size read.
    Once,
    /// More than once: the bar shows bytes and throughput only.
    Several,
}

/// The users of a command's inputs: a session with them registered as the table `users`,
/// the source, and a progress bar of the bytes read (on a terminal, unless `quiet`).
pub struct Opened {
    /// The session.
    pub ctx: datafusion::prelude::SessionContext,
    /// The inputs.
    pub source: crate::source::Source,
    /// Shown while it lives.
    pub progress: progress::Progress,
}

/// Opens `inputs` (see [`Opened`]) and registers the foreign tables of `tables` beside
/// them; with no input there is no table `users` (unless a `--table` names one so).
pub async fn open_users(
    inputs: Vec<crate::source::Input>,
    tables: &TableArgs,
    limits: Limits,
    quiet: bool,
    reads: Reads,
) -> Result<Opened, Error> {
    let exports = !inputs.is_empty();
    let source = crate::source::open(inputs)?.with_max_line(limits.max_line);
    let total = match reads {
        Reads::Once => source.total_bytes(),
        Reads::Several => None,
    };
    let progress = progress::watch(source.bytes_read(), total, quiet || !exports);
    let ctx = crate::pipeline::session(limits.memory)?;
    if exports {
        crate::pipeline::register(&ctx, source.clone())?;
    }
    tables.register(&ctx, exports).await?;
    Ok(Opened {
        ctx,
        source,
        progress,
    })
}

/// `--table NAME=SOURCE` and `--table-schema NAME=FILE`: foreign tables beside the users.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TableArgs {
    /// A table to query beside (or instead of) the exports: NAME=SOURCE, where SOURCE is a
    /// CSV/TSV file with a header, NDJSON, a JSON array, FILE.json#/pointer (the array of
    /// records inside a document) — each maybe gzipped —, Parquet, sqlite://PATH#TABLE or
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DB#TABLE (password also from PGPASSWORD).
    /// Repeatable.
    #[arg(long = "table", value_name = "NAME=SOURCE")]
    pub tables: Vec<String>,

    /// Column types of a CSV or JSON table, instead of those guessed from its values: FILE is
    /// a JSON object such as {"zip": "text", "age": "integer"} (text, integer, float,
    /// boolean, json). Repeatable.
    #[arg(long = "table-schema", value_name = "NAME=FILE")]
    pub schemas: Vec<String>,
}

impl TableArgs {
    /// Whether any table is given.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Registers the tables in `ctx` (`exports`: whether the table `users` is taken).
    pub async fn register(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        exports: bool,
    ) -> Result<(), Error> {
        let mut types = std::collections::BTreeMap::new();
        for arg in &self.schemas {
            let Some((name, file)) = arg.split_once('=') else {
                return Err(Error::usage(
                    format!("--table-schema {arg}"),
                    "expected NAME=FILE",
                ));
            };
            types.insert(
                name.to_string(),
                crate::tables::Types::read(Path::new(file))?,
            );
        }
        let mut names = Vec::new();
        for arg in &self.tables {
            let spec = crate::tables::Spec::parse(arg)?;
            let context = || format!("--table {}={}", spec.name, spec.location);
            if names.contains(&spec.name) {
                return Err(Error::usage(context(), "a second table of that name"));
            }
            if exports && spec.name == crate::pipeline::TABLE {
                return Err(Error::usage(
                    context(),
                    "`users` is the table of the exports given as inputs: name this one otherwise",
                ));
            }
            let schema = types.remove(&spec.name).unwrap_or_default();
            crate::tables::register(ctx, &spec, &schema).await?;
            names.push(spec.name);
        }
        if let Some(name) = types.keys().next() {
            return Err(Error::usage(
                format!("--table-schema {name}=…"),
                "no --table of that name",
            ));
        }
        Ok(())
    }
}

/// The conditions of `--query` and `--where`, named by their options in errors.
pub fn conditions(query: Option<&str>, where_sql: Option<&str>) -> Vec<Condition> {
    let search = query.map(|text| Condition::Search {
        text: text.to_string(),
        context: format!("--query {text}"),
    });
    let sql = where_sql.map(|text| Condition::Sql {
        text: text.to_string(),
        context: format!("--where {text}"),
    });
    search.into_iter().chain(sql).collect()
}

/// The query given as text (by the option `label`) or in a file, with how the user named it (for messages).
pub fn query_text(
    label: &str,
    sql: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<Option<(String, String)>, Error> {
    Ok(match (sql, file) {
        (Some(sql), _) => Some((sql.to_string(), label.to_string())),
        (None, Some(path)) => Some((
            std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.display().to_string(),
                source,
            })?,
            format!("--file {}", path.display()),
        )),
        (None, None) => None,
    })
}

/// Writes `text` on stdout; a failure is an error naming `-` (a closed pipe is then taken
/// as success by `main`, a full disk is exit 2), never a panic.
pub fn print(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| Error::Write {
            path: "-".into(),
            source,
        })
}

/// How often running jobs are polled (`USERPORT_POLL_MS` overrides it, for tests).
pub fn poll_interval() -> std::time::Duration {
    import::default_poll()
}

/// The output options that `export` and `sql` share.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Output format [default: from the extension of -o; on stdout, csv for columns and
    /// ndjson for whole users].
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Output file (`-` is stdout); `.gz` gzips it. Written whole or not at all.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<std::path::PathBuf>,

    /// Do not neutralize CSV cells that a spreadsheet would run as formulas.
    #[arg(long)]
    pub no_csv_guard: bool,

    /// Memory that sorts, joins and aggregations may hold before they spill to disk
    /// (e.g. 256M, 2G) [default: 512M; for diff 128M].
    #[arg(long, value_name = "SIZE", value_parser = crate::pipeline::parse_size)]
    pub memory_limit: Option<usize>,

    /// The longest line (one user) of an input; a longer one is an error naming it
    /// (e.g. 256M).
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = crate::pipeline::parse_size)]
    pub max_line_bytes: usize,

    /// No progress bars on stderr (they show only on a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,

    /// Show the plan instead of running it (see `Explain`).
    #[command(flatten)]
    pub plan: ExplainArgs,
}

/// `--explain [analyze]`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Show the filter, the sort keys and each column's expression as parsed and as SQL, then
    /// the logical plan and the physical plan that runs, and read no user; `--explain
    /// analyze` runs the plan (writing nothing) and shows each node's rows, time and memory.
    #[arg(long, value_enum, value_name = "analyze", num_args = 0..=1, default_missing_value = "plan")]
    pub explain: Option<Explain>,
}

/// What `--explain` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Explain {
    /// The plans, without reading a user.
    Plan,
    /// The plan run, with each node's metrics.
    Analyze,
}

/// Prints what `--explain` shows of `planned` (from `request`, when one).
pub async fn explain(
    request: Option<&crate::pipeline::Request>,
    planned: crate::pipeline::request::Planned,
    mode: Explain,
) -> anyhow::Result<std::process::ExitCode> {
    let text =
        crate::pipeline::explain::explain(request, planned, mode == Explain::Analyze).await?;
    print(&text)?;
    Ok(std::process::ExitCode::SUCCESS)
}

impl OutputArgs {
    /// The memory limit, or `default` when none was given.
    pub fn memory(&self, default: usize) -> usize {
        self.memory_limit.unwrap_or(default)
    }

    /// The limits, with `default` memory when no limit was given.
    pub fn limits(&self, default: usize) -> Limits {
        Limits {
            memory: self.memory(default),
            max_line: self.max_line_bytes,
        }
    }

    /// The output target for rows of `shape`.
    pub fn target(&self, shape: Shape) -> Result<Target, Error> {
        target(
            self.format,
            self.output.as_deref(),
            shape,
            !self.no_csv_guard,
        )
    }
}

/// The output of a command: path (`None` or `-` is stdout), format (explicit, or from the
/// extension; on stdout CSV for columns and NDJSON for whole users), gzip.
pub fn target(
    format: Option<Format>,
    output: Option<&Path>,
    shape: Shape,
    csv_guard: bool,
) -> Result<Target, Error> {
    let path = output
        .filter(|p| p.as_os_str() != "-")
        .map(Path::to_path_buf);
    let inferred = path.as_deref().and_then(Format::from_path);
    let (format, gzip) = match (format, inferred, &path) {
        (Some(format), Some((_, gzip)), _) => (format, gzip),
        (Some(format), None, _) => (format, false),
        (None, Some(inferred), _) => inferred,
        (None, None, Some(path)) => {
            return Err(Error::usage(
                format!("-o {}", path.display()),
                "unknown output format: use a .csv, .json, .ndjson or .parquet name \
                 (optionally .gz), or --format",
            ));
        }
        (None, None, None) => match shape {
            Shape::Columns => (Format::Csv, false),
            Shape::Users => (Format::Ndjson, false),
        },
    };
    Ok(Target {
        path,
        format,
        gzip,
        shape,
        options: Options { csv_guard },
    })
}
