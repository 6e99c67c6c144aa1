//! The command line: one file a subcommand, each with its `Args` and one `run`.

pub mod export;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

/// Runs the command; the exit code says how it went (0 ok, 1 problems found).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Export(args) => export::run(args).await,
    }
}
