//! The command line: one file a subcommand, each with its `Args` and one `run`.

pub mod export;
pub mod sql;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Error;
use crate::pipeline::Target;
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
}

/// Runs the command; the exit code says how it went (0 ok, 1 problems found).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Export(args) => export::run(args).await,
        Command::Sql(args) => sql::run(args).await,
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
