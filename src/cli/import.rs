//! `userport import`: import files → users-imports jobs on the tenant, with a report, the
//! failed users ready for a corrected re-run, and a state file to resume from.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::auth0::jobs::ImportOptions;
use crate::import::rules::Options;
use crate::import::upload::{self, Plan};
use crate::import::validate::Validator;

/// Arguments of `userport import`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Every file is validated first; nothing is sent when anything is invalid. Each file becomes \
one users-imports job, at most two at a time; each job is polled until it ends and its \
errors are read. The state file (by default import-state.json beside the files) records \
every job as it goes: run the same command again after an interruption and only the files \
without a finished job are submitted. report.json and failed-users.json are written beside \
the state file. Exit 1 when any user failed.

Examples:
  userport import import/ --connection Username-Password-Authentication
  userport import update/manifest.json --connection-id con_ABC --upsert")]
pub struct Args {
    /// Import files, prepared folders, or manifest.json files.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,

    /// The database connection to import into, by name.
    #[arg(long, value_name = "NAME", required_unless_present = "connection_id")]
    pub connection: Option<String>,

    /// The database connection to import into, by id (con_…).
    #[arg(long, value_name = "ID", conflicts_with = "connection")]
    pub connection_id: Option<String>,

    /// Update users that exist (matched by email) instead of failing them.
    #[arg(long)]
    pub upsert: bool,

    /// An id of yours, kept with each job.
    #[arg(long, value_name = "ID")]
    pub external_id: Option<String>,

    /// Have Auth0 email the tenant's owners when each job completes.
    #[arg(long)]
    pub send_completion_email: bool,

    /// With --upsert: do not export the connection first as a backup.
    #[arg(long)]
    pub no_backup: bool,

    /// The state file [default: import-state.json beside the files].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// The tenant.
    #[command(flatten)]
    pub tenant: super::TenantArgs,

    /// No progress on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// Runs `userport import`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut validator = Validator::new(Options {
        upsert: args.upsert,
    });
    let paths = super::validate::check_files(&args.files, &mut validator)?;
    if !validator.findings.is_empty() {
        super::print(&super::validate::text_report(&validator.findings))?;
        eprintln!(
            "{} problems in the import files: nothing was sent (see userport validate)",
            validator.findings.len()
        );
        return Ok(ExitCode::from(1));
    }
    let state = args.state.clone().unwrap_or_else(|| {
        let first = &args.files[0];
        let dir = if first.is_dir() {
            first.clone()
        } else {
            first.parent().map(PathBuf::from).unwrap_or_default()
        };
        dir.join("import-state.json")
    });
    let client = std::sync::Arc::new(args.tenant.client()?);
    let connection_id = match (&args.connection_id, &args.connection) {
        (Some(id), _) => id.clone(),
        (None, Some(name)) => client.connection_id(name).await?,
        (None, None) => unreachable!("clap requires one"),
    };
    let plan = Plan {
        files: paths,
        options: ImportOptions {
            connection_id,
            upsert: args.upsert,
            external_id: args.external_id.clone(),
            send_completion_email: args.send_completion_email,
        },
        state: state.clone(),
        poll: super::poll_interval(),
        concurrency: 2,
        notes: (!args.quiet)
            .then(|| std::sync::Arc::new(|line: &str| eprintln!("{line}")) as crate::auth0::Trace),
        progress: super::progress::export_bars(!args.quiet),
    };
    let dir = state.parent().map(PathBuf::from).unwrap_or_default();
    let backup = if plan.options.upsert && !args.no_backup {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let path = dir.join(format!(
            "backup-{}-{stamp}.json.gz",
            plan.options.connection_id
        ));
        let kept = upload::backup(client.clone(), &plan, &path).await?;
        if !args.quiet {
            eprintln!(
                "backup of {}: {}",
                plan.options.connection_id,
                kept.display()
            );
        }
        Some(kept)
    } else {
        None
    };
    let outcomes = upload::run(&client, &plan).await?;
    let failed = upload::failed_users(&outcomes)?;
    let totals = outcomes.iter().fold([0u64; 4], |t, o| {
        [
            t[0] + o.summary.inserted,
            t[1] + o.summary.updated,
            t[2] + o.summary.failed,
            t[3] + o.summary.total,
        ]
    });
    let report = serde_json::json!({
        "connection_id": plan.options.connection_id,
        "upsert": plan.options.upsert,
        "files": outcomes,
        "totals": {"inserted": totals[0], "updated": totals[1], "failed": totals[2], "total": totals[3]},
        "failed_users": failed.len(),
        "backup": backup.as_ref().map(|b| b.display().to_string()),
    });
    crate::sink::output::write_whole(
        &dir.join("report.json"),
        &serde_json::to_vec_pretty(&report).expect("a report serializes"),
    )?;
    crate::sink::output::write_whole(
        &dir.join("failed-users.json"),
        &serde_json::to_vec_pretty(&failed).expect("users serialize"),
    )?;
    eprint!("{}", table(&outcomes, totals));
    if let Some(backup) = &backup {
        eprintln!("backup taken before the upsert: {}", backup.display());
    }
    let jobs_failed = outcomes.iter().any(|o| o.failure.is_some());
    if !failed.is_empty() || jobs_failed {
        eprintln!(
            "{} failed users in {} (import-ready); details in {}",
            failed.len(),
            dir.join("failed-users.json").display(),
            dir.join("report.json").display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary table: one row a file, then the totals.
fn table(outcomes: &[upload::Outcome], totals: [u64; 4]) -> String {
    use std::fmt::Write as _;
    let width = outcomes
        .iter()
        .map(|o| o.file.len())
        .max()
        .unwrap_or(4)
        .max(5);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:<22} {:<10} {:>9} {:>9} {:>9} {:>9}",
        "file", "job", "status", "inserted", "updated", "failed", "total"
    );
    for o in outcomes {
        let _ = writeln!(
            out,
            "{:<width$}  {:<22} {:<10} {:>9} {:>9} {:>9} {:>9}",
            o.file,
            o.job.as_deref().unwrap_or("-"),
            o.status,
            o.summary.inserted,
            o.summary.updated,
            o.summary.failed,
            o.summary.total
        );
    }
    let _ = writeln!(
        out,
        "{:<width$}  {:<22} {:<10} {:>9} {:>9} {:>9} {:>9}",
        "total", "", "", totals[0], totals[1], totals[2], totals[3]
    );
    out
}

/// How often jobs are polled (USERPORT_POLL_MS overrides it, for tests).
pub fn default_poll() -> Duration {
    Duration::from_millis(
        std::env::var("USERPORT_POLL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    )
}
