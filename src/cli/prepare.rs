//! `userport prepare`: users → a folder of Auth0 bulk-import files, with a manifest and the
//! list of users Auth0 would refuse.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::Error;
use crate::import::convert::Conversion;
use crate::import::prepare::{self, DEFAULT_MAX_BYTES, Manifest, REJECTED, Settings};
use crate::pipeline;
use crate::source::Input;

/// Arguments of `userport prepare`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes DIR/users-0001.json, … (JSON arrays under --max-bytes, input order, a user never \
split), DIR/manifest.json (per file: users, bytes, sha256; totals; what was left out) and \
DIR/rejected.json (each refused user with its reasons). The folder appears whole or not at \
all. Every file passes `userport validate`.

Examples:
  userport prepare tenant.ndjson.gz -o import/
  userport prepare tenant.ndjson --connection Username-Password-Authentication -o import/
  userport prepare tenant.ndjson --query 'email.domain:example.com' -o import/
  userport prepare tenant.ndjson --upsert --sql \"SELECT email, user_metadata FROM users\" -o update/")]
pub struct Args {
    /// Users: exports (NDJSON or a JSON array, gzipped or not); `-` is stdin.
    #[arg(required_unless_present_any = ["base", "tables"], value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Foreign tables: the users of another system, mapped by --sql/--file.
    #[command(flatten)]
    pub tables: super::TableArgs,

    /// With --upsert and --sql/--file: the export whose users the query's changes are merged
    /// into (the query runs over it as the table `users`).
    #[arg(long, value_name = "EXPORT", conflicts_with_all = ["inputs", "query", "where_sql"])]
    pub base: Option<String>,

    /// With --base: metadata objects the change touches hold only what the change gives
    /// (instead of the current keys merged with the change's).
    #[arg(long, requires = "base")]
    pub replace_metadata: bool,

    /// The folder to write (it must be missing or empty, unless --force).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,

    /// Prepare an update: only what an upsert changes (email as the key, email_verified,
    /// names, nickname, picture, user_metadata, app_metadata, custom_password_hash).
    #[arg(long)]
    pub upsert: bool,

    /// The largest file to write (Auth0 refuses files over 512000 bytes).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BYTES,
          value_parser = crate::pipeline::parse_size)]
    pub max_bytes: usize,

    /// Keep only the users of this database connection (from identities[0].connection).
    #[arg(long, value_name = "NAME")]
    pub connection: Option<String>,

    /// Keep the users that match an Auth0 user-search query (Lucene syntax).
    #[arg(long, value_name = "LUCENE", conflicts_with_all = ["sql", "file"])]
    pub query: Option<String>,

    /// Keep the users for whom this SQL condition over the `users` table holds.
    #[arg(long = "where", value_name = "SQL", conflicts_with_all = ["sql", "file"])]
    pub where_sql: Option<String>,

    /// The users are the rows of this query over the table `users` (columns named as
    /// the import properties).
    #[arg(long, value_name = "SQL", conflicts_with = "file")]
    pub sql: Option<String>,

    /// A file with the query of --sql.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Replace the content of a folder that is not empty.
    #[arg(long)]
    pub force: bool,

    /// No progress bar on stderr (it shows only on a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,

    /// Memory that sorts, joins and aggregations may hold before they spill to disk.
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = crate::pipeline::parse_size)]
    pub memory_limit: usize,

    /// Show the plan of the users instead of preparing them.
    #[command(flatten)]
    pub plan: super::ExplainArgs,

    /// Users whose password hash Auth0 cannot verify (Firebase scrypt, phpass, …, as the
    /// password functions mark them): refuse them (listed in rejected.json), or import them
    /// without a password (listed in without-password.json, for a password reset).
    #[arg(long, value_enum, value_name = "WHAT", default_value = "refuse")]
    pub unconvertible: Unconvertible,

    /// Prove a converted hash before anything is written: the user with this email must
    /// be among the prepared users and its hash must match PASSWORD as Auth0 computes it
    /// (else exit 1, nothing written). Repeatable.
    #[arg(long, value_name = "EMAIL=PASSWORD")]
    pub check_password: Vec<String>,

    /// --check-password for each row of a CSV file with the columns email and password.
    #[arg(long, value_name = "FILE")]
    pub check_passwords: Vec<PathBuf>,

    /// Auth0's password-hash export (NDJSON from Auth0 support, decrypted; gzipped or not):
    /// each profile gets its bcrypt hash as password_hash, found by connection and user id
    /// (alt_id, else _id.$oid). Repeatable.
    #[arg(long, value_name = "FILE", conflicts_with = "upsert")]
    pub hashes: Vec<PathBuf>,

    /// The longest line (one user) of an input; a longer one is an error naming it.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = crate::pipeline::parse_size)]
    pub max_line_bytes: usize,
}

/// What becomes of users whose password hash Auth0 cannot verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Unconvertible {
    /// Refuse them (rejected.json says why and what to do).
    Refuse,
    /// Import them without a password (without-password.json lists them).
    NoPassword,
}

impl Args {
    fn limits(&self) -> super::Limits {
        super::Limits {
            memory: self.memory_limit,
            max_line: self.max_line_bytes,
        }
    }
}

/// Runs `userport prepare`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let settings = Settings {
        dir: args.output.clone(),
        max_bytes: args.max_bytes,
        conversion: Conversion {
            upsert: args.upsert,
            connection: args.connection.clone(),
            unconvertible_without_password: args.unconvertible == Unconvertible::NoPassword,
            hashes: crate::import::hashes::Hashes::open_all(&args.hashes)?,
        },
        mapped: None,
        force: args.force,
        inputs: args
            .inputs
            .iter()
            .chain(&args.base)
            .filter(|a| a.as_str() != "-")
            .map(PathBuf::from)
            .chain(args.file.clone())
            .chain(args.hashes.iter().cloned())
            .collect(),
    };
    if let Some(base) = &args.base {
        if args.plan.explain.is_some() {
            return Err(Error::usage("--explain", "not with --base (two plans run)").into());
        }
        return update(&args, base, settings).await;
    }
    if args.inputs.is_empty() && args.connection.is_some() {
        return Err(Error::usage(
            "--connection",
            "keeps the exported users of one connection; the rows of --table have none (the \
             connection users go to is chosen at import: userport import --connection NAME)",
        )
        .into());
    }
    let inputs = args.inputs.iter().map(|a| Input::parse(a)).collect();
    let quiet = args.quiet || args.plan.explain == Some(super::Explain::Plan);
    let users = super::open_users(
        inputs,
        &args.tables,
        args.limits(),
        quiet,
        super::Reads::Once,
    )
    .await?;
    let mut mapped = None;
    let (request, planned) =
        match super::query_text("--sql", args.sql.as_deref(), args.file.as_deref())? {
            Some((text, context)) => {
                let frame = pipeline::query(&users.ctx, &text, &context).await?;
                mapped = Some(context);
                (
                    None,
                    pipeline::request::Planned {
                        frame,
                        filter: None,
                    },
                )
            }
            None => {
                // Users are converted from their text as the input holds it.
                let request = prepare::request(super::conditions(
                    args.query.as_deref(),
                    args.where_sql.as_deref(),
                ));
                let planned = request.plan(&users.ctx, &users.source).await?;
                (Some(request), planned)
            }
        };
    if let Some(mode) = args.plan.explain {
        return super::explain(request.as_ref(), planned, mode).await;
    }
    let frame = planned.frame;
    let settings = Settings { mapped, ..settings };
    let checks = crate::import::checks::Checks::new(&args.check_password, &args.check_passwords)?;
    let manifest = prepare::run(frame, &settings, checks).await?;
    eprint!("{}", summary(&manifest, &args.output));
    Ok(ExitCode::SUCCESS)
}

/// `prepare --upsert --base EXPORT --sql …`: the query's changes merged into the base.
async fn update(args: &Args, base: &str, settings: Settings) -> anyhow::Result<ExitCode> {
    if !args.upsert {
        return Err(Error::usage("--base", "prepares an update: add --upsert").into());
    }
    if base == "-" {
        return Err(Error::usage("--base -", "the base is read twice: give a file").into());
    }
    let Some((text, context)) =
        super::query_text("--sql", args.sql.as_deref(), args.file.as_deref())?
    else {
        return Err(Error::usage(
            "--base",
            "needs the changes: --sql 'SELECT user_id, … FROM users …' or --file FILE",
        )
        .into());
    };
    // The base is read twice: by the query, then while the changes are merged.
    let users = super::open_users(
        vec![Input::parse(base)],
        &args.tables,
        args.limits(),
        args.quiet,
        super::Reads::Several,
    )
    .await?;
    let frame = pipeline::query(&users.ctx, &text, &context).await?;
    let changes = crate::import::update::changes(frame, &context).await?;
    let base_users = users.ctx.table(pipeline::TABLE).await?;
    let (manifest, unmatched) =
        crate::import::update::prepare(base_users, changes, args.replace_metadata, &settings)
            .await?;
    eprint!("{}", summary(&manifest, &args.output));
    if !unmatched.is_empty() {
        let shown: Vec<&str> = unmatched.iter().take(5).map(String::as_str).collect();
        eprintln!(
            "warning: {} changed keys match no user of {base} ({}{}); listed in {}",
            unmatched.len(),
            shown.join(", "),
            if unmatched.len() > 5 { ", …" } else { "" },
            args.output.join("unmatched.json").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary printed on stderr.
fn summary(m: &Manifest, dir: &std::path::Path) -> String {
    use std::fmt::Write as _;
    let t = &m.totals;
    let mut out = String::new();
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let _ = writeln!(
        out,
        "prepared {} of {} read into {} ({} bytes) in {}",
        plural(t.users, "user", "users"),
        t.read,
        plural(t.files, "file", "files"),
        t.bytes,
        dir.display()
    );
    if t.skipped > 0 {
        let _ = writeln!(
            out,
            "skipped {} of other connections",
            plural(t.skipped, "user", "users")
        );
    }
    if t.rejected > 0 {
        let _ = writeln!(
            out,
            "refused {} ({}):",
            plural(t.rejected, "user", "users"),
            dir.join(REJECTED).display()
        );
        for (code, n) in &m.rejected {
            let _ = writeln!(out, "  {code:<30} {n}");
        }
    }
    if !m.dropped.is_empty() {
        let fields: Vec<String> = m
            .dropped
            .iter()
            .map(|(f, n)| format!("{f} ({n})"))
            .collect();
        let _ = writeln!(out, "left out: {}", fields.join(", "));
    }
    if m.linked_identities_dropped > 0 {
        let _ = writeln!(
            out,
            "left behind {} (bulk import creates the primary identity only)",
            plural(
                m.linked_identities_dropped,
                "linked identity",
                "linked identities"
            )
        );
    }
    for (format, n) in &m.without_password {
        let _ = writeln!(
            out,
            "wrote {} without a password: {format} hashes cannot be verified by Auth0 \
             (listed in {}; send them a password reset)",
            plural(*n, "user", "users"),
            dir.join(crate::import::prepare::WITHOUT_PASSWORD).display()
        );
    }
    if let Some(h) = &m.hashes {
        let _ = writeln!(
            out,
            "password hashes: {} of {} went to their users",
            h.matched, h.hashes
        );
        if h.profiles_without_hash > 0 {
            let _ = writeln!(
                out,
                "  {} without a hash (listed in {}): they will need a password reset",
                plural(h.profiles_without_hash, "database user", "database users"),
                dir.join(crate::import::hashes::WITHOUT_HASH).display()
            );
        }
        let unmatched = h.hashes_without_profile + h.hashes_of_other_connections + h.duplicates;
        if unmatched > 0 {
            let _ = writeln!(
                out,
                "  {} matched no user: {} without a profile, {} of another connection, {} \
                 second hashes of a user (listed in {})",
                plural(unmatched, "hash", "hashes"),
                h.hashes_without_profile,
                h.hashes_of_other_connections,
                h.duplicates,
                dir.join(crate::import::hashes::UNMATCHED_HASHES).display()
            );
        }
    }
    if let Some(checked) = &m.checked_passwords {
        let _ = writeln!(out, "{checked}");
    }
    if m.email_verified_added > 0 {
        let _ = writeln!(
            out,
            "wrote email_verified: false for {} that had none",
            plural(m.email_verified_added, "user", "users")
        );
    }
    let known: Vec<_> = m
        .connections
        .iter()
        .filter(|(c, _)| *c != "(unknown)")
        .collect();
    if known.len() > 1 {
        let list: Vec<String> = known.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        let _ = writeln!(
            out,
            "warning: the users come from {} connections ({}); an import job goes to one \
             connection: prepare each with --connection NAME",
            known.len(),
            list.join(", ")
        );
    }
    out
}
