//! `userport sql`: SQL over the users of export files (the table `users`) → any format.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::pipeline;
use crate::sink::Shape;
use crate::source::Input;

/// Arguments of `userport sql`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The table `users` has the columns of the canonical user (see the README); user_metadata, \
app_metadata, identities and multifactor are JSON text: use ->> / -> or json_get_str(...), \
json_get_int(...), json_get_array(...), json_length(...).

Examples:
  userport sql users.ndjson -e \"SELECT email FROM users WHERE logins_count = 0\"
  userport sql users.ndjson --file queries/signups-per-month.sql -o signups.csv")]
pub struct Args {
    /// Export files: NDJSON (one user a line) or a JSON array, gzipped or not; `-` is stdin.
    #[arg(required_unless_present = "tables", value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Foreign tables.
    #[command(flatten)]
    pub tables: super::TableArgs,

    /// The SQL query.
    #[arg(
        short = 'e',
        long = "execute",
        value_name = "SQL",
        conflicts_with = "file"
    )]
    pub execute: Option<String>,

    /// A file with the SQL query.
    #[arg(long, value_name = "FILE", required_unless_present = "execute")]
    pub file: Option<PathBuf>,

    /// Where and how the result is written.
    #[command(flatten)]
    pub out: super::OutputArgs,
}

/// Runs `userport sql`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (text, context) = super::query_text("-e", args.execute.as_deref(), args.file.as_deref())?
        .expect("clap requires -e or --file");
    let target = args.out.target(Shape::Columns)?;
    let inputs = args.inputs.iter().map(|a| Input::parse(a)).collect();
    let users = super::open_users(
        inputs,
        &args.tables,
        args.out.limits(pipeline::DEFAULT_MEMORY_LIMIT),
        args.out.quiet || args.out.plan.explain == Some(super::Explain::Plan),
        super::Reads::Once,
    )
    .await?;
    let frame = pipeline::query(&users.ctx, &text, &context).await?;
    if let Some(mode) = args.out.plan.explain {
        let planned = pipeline::request::Planned {
            frame,
            filter: None,
        };
        return super::explain(None, planned, mode).await;
    }
    pipeline::write(frame, &target).await?;
    Ok(ExitCode::SUCCESS)
}
