//! `userport jobs`: one job of the tenant: its status, its errors, or a wait until it ends.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `userport jobs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,

    /// The tenant.
    #[command(flatten)]
    pub tenant: super::TenantArgs,

    /// No progress on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// What `jobs` does.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Print the job (GET /api/v2/jobs/ID) as JSON.
    Show {
        /// The job id (job_…).
        id: String,
    },
    /// Print the job's failed users with their errors as JSON (an empty array when none).
    Errors {
        /// The job id (job_…).
        id: String,
        /// Write them to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Poll the job until it ends, then print it; exit 1 when it failed or expired.
    Wait {
        /// The job id (job_…).
        id: String,
    },
}

/// Runs `userport jobs`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.tenant.client()?;
    match args.action {
        Action::Show { id } => {
            let job = client.job(&id).await?;
            super::print(&format!("{}\n", pretty(&job)))?;
        }
        Action::Errors { id, output } => {
            let errors = client.job_errors(&id).await?;
            let text = pretty(&errors);
            match output {
                Some(path) => {
                    crate::sink::output::write_whole(&path, format!("{text}\n").as_bytes())?
                }
                None => super::print(&format!("{text}\n"))?,
            }
        }
        Action::Wait { id } => {
            let quiet = args.quiet;
            let job = client
                .wait(&id, super::poll_interval(), |job| {
                    if !quiet {
                        let done = job
                            .percentage_done
                            .map_or(String::new(), |p| format!(" {p}%"));
                        eprintln!("{}: {}{done}", job.id, job.status);
                    }
                })
                .await?;
            super::print(&format!("{}\n", pretty(&job)))?;
            if job.failed() {
                eprintln!("{}", job.error());
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Pretty JSON of a value.
fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("JSON values serialize")
}
