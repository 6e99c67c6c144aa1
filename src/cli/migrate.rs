//! `userport migrate`: a connection's users moved from one tenant to another (or to another
//! connection), with their password hashes, roles and organizations; a plan first, the proof
//! at the end, resumable at every step.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::auth0::{Client, Tenant};
use crate::error::Error;

/// Arguments of `userport migrate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Steps, each recorded in WORK/state.json when done (run the same command again after an \
interruption and it resumes; after success it does nothing): export the source connection \
(or read --from-file) → read the source's roles and organizations with their members → \
export the target connection → the plan: each user converted with its password hash (--hashes), \
looked up on the target by email and id, and written to WORK/create/ (new users) or \
WORK/update/ (existing users, with --upsert) or refused → import jobs on the target (two at \
a time; a file is never sent twice) → role users and organization members given in batches \
→ export the target again → the proof: what was meant compared with what arrived, roles and \
organizations read back. WORK/report.json has every user's outcome; WORK/summary.txt the \
same for people. Exit 0 only when everything meant to move arrived, 1 when something did \
not, 2 on error.

Credentials: AUTH0_FROM_CLIENT_ID + AUTH0_FROM_CLIENT_SECRET (or AUTH0_FROM_TOKEN) for the \
source, AUTH0_TO_CLIENT_ID + AUTH0_TO_CLIENT_SECRET (or AUTH0_TO_TOKEN) for the target; the \
tenants may also come from AUTH0_FROM_DOMAIN and AUTH0_TO_DOMAIN. The source needs read:users, \
read:roles, read:organizations, read:organization_members, read:organization_member_roles and \
read:connections; the target also create:users, create:role_members, \
create:organization_members, create:organization_member_roles (and create:roles, \
create:organizations with --create-missing).

Examples:
  userport migrate --from old.eu.auth0.com --to new.us.auth0.com \\
      --connection Username-Password-Authentication --hashes hashes.ndjson --plan
  userport migrate --from old.eu.auth0.com --to new.us.auth0.com \\
      --connection Username-Password-Authentication --hashes hashes.ndjson --create-missing")]
pub struct Args {
    /// The source tenant: TENANT.auth0.com or a full URL [default: $AUTH0_FROM_DOMAIN].
    #[arg(long, value_name = "DOMAIN|URL")]
    pub from: Option<String>,

    /// The target tenant: TENANT.auth0.com or a full URL [default: $AUTH0_TO_DOMAIN].
    #[arg(long, value_name = "DOMAIN|URL")]
    pub to: Option<String>,

    /// The source's database connection.
    #[arg(long, value_name = "NAME")]
    pub connection: String,

    /// The target's database connection [default: the same name].
    #[arg(long, value_name = "NAME")]
    pub to_connection: Option<String>,

    /// Start from exports on disk instead of an export job on the source (roles and
    /// organizations still come from --from when it is given).
    #[arg(long, value_name = "EXPORT")]
    pub from_file: Vec<PathBuf>,

    /// An export of the target connection already on disk (gzipped or not), instead of an
    /// export job on the target before the plan: with --plan, nothing at all is sent to
    /// the target.
    #[arg(long, value_name = "EXPORT")]
    pub to_file: Option<PathBuf>,

    /// Auth0's password-hash export of the source (NDJSON, decrypted; gzipped or not).
    /// Repeatable.
    #[arg(long, value_name = "FILE")]
    pub hashes: Vec<PathBuf>,

    /// Move only the users that match this Auth0 user-search query.
    #[arg(long, value_name = "LUCENE")]
    pub query: Option<String>,

    /// Move only the users for whom this SQL condition over `users` holds.
    #[arg(long = "where", value_name = "SQL")]
    pub where_sql: Option<String>,

    /// Update the users that exist on the target (by email or id) with the source's
    /// profile; without it they are left as they are.
    #[arg(long)]
    pub upsert: bool,

    /// Create the roles and organizations the target lacks (matched by name).
    #[arg(long)]
    pub create_missing: bool,

    /// Stop after the plan: nothing is imported or given on the target.
    #[arg(long)]
    pub plan: bool,

    /// The work folder (state, exports, import files, report); the same folder resumes.
    #[arg(long, value_name = "DIR", default_value = "userport-migration")]
    pub work: PathBuf,

    /// Users given a role per call.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub role_batch: usize,

    /// Members added to an organization per call.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub member_batch: usize,

    /// Memory that the proof's sorts (a diff of what was meant against what arrived) may
    /// hold before they spill to disk; the default is `diff`'s.
    #[arg(long, value_name = "SIZE", default_value = "128M", value_parser = crate::pipeline::parse_size)]
    pub memory_limit: usize,

    /// The longest line (one user) of an export.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = crate::pipeline::parse_size)]
    pub max_line_bytes: usize,

    /// Trace each call to the tenants on stderr (method, path, status, time).
    #[arg(long, short)]
    pub verbose: bool,

    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// A client of one side.
fn client(
    domain: Option<&str>,
    prefix: &str,
    flag: &str,
    verbose: bool,
    side: &'static str,
) -> Result<Client, Error> {
    let trace: Option<crate::auth0::Trace> = verbose
        .then(|| Arc::new(move |line: &str| eprintln!("{side}: {line}")) as crate::auth0::Trace);
    Client::with_trace(Tenant::from_vars(domain, prefix, flag)?, trace)
}

/// Runs `userport migrate`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.role_batch == 0 || args.member_batch == 0 {
        return Err(Error::usage("--role-batch/--member-batch", "must be at least 1").into());
    }
    let from_given = args.from.is_some() || std::env::var_os("AUTH0_FROM_DOMAIN").is_some();
    let source = if from_given || args.from_file.is_empty() {
        Some(Arc::new(client(
            args.from.as_deref(),
            "AUTH0_FROM_",
            "--from",
            args.verbose,
            "source",
        )?))
    } else {
        None
    };
    let target = Arc::new(client(
        args.to.as_deref(),
        "AUTH0_TO_",
        "--to",
        args.verbose,
        "target",
    )?);
    if let Some(source) = &source
        && source.base() == target.base()
        && args
            .to_connection
            .as_deref()
            .is_none_or(|c| c == args.connection)
    {
        return Err(Error::usage(
            "--to",
            "the target is the source tenant and connection: give another tenant, or \
             --to-connection NAME",
        )
        .into());
    }
    let settings = crate::migrate::Settings {
        work: args.work.clone(),
        source,
        target,
        to_connection: args
            .to_connection
            .clone()
            .unwrap_or(args.connection.clone()),
        connection: args.connection.clone(),
        from_files: args.from_file.clone(),
        to_file: args.to_file.clone(),
        hashes: args.hashes.clone(),
        conditions: super::conditions(args.query.as_deref(), args.where_sql.as_deref()),
        upsert: args.upsert,
        create_missing: args.create_missing,
        plan_only: args.plan,
        poll: super::poll_interval(),
        memory_limit: args.memory_limit,
        max_line: args.max_line_bytes,
        role_batch: args.role_batch,
        member_batch: args.member_batch,
        notes: (!args.quiet)
            .then(|| Arc::new(|line: &str| eprintln!("{line}")) as crate::auth0::Trace),
        progress: super::progress::export_bars(!args.quiet),
    };
    let ended = crate::migrate::run(&settings).await?;
    if ended.already_done {
        eprintln!(
            "the migration in {} is done already; nothing was sent",
            args.work.display()
        );
    }
    if let Some(plan) = &ended.plan {
        eprint!("{plan}");
    }
    if args.plan {
        eprintln!(
            "--plan: nothing was imported or given on the target; the files are in {}",
            args.work.display()
        );
    }
    if let Some(summary) = &ended.summary {
        eprint!("{summary}");
        eprintln!("report: {}", args.work.join("report.json").display());
    }
    Ok(ExitCode::from(ended.exit))
}
