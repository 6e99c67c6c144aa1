//! Auth0 to Auth0: a connection's users moved to another tenant (or connection) with their
//! password hashes, roles and organizations, and the proof that they arrived.
//!
//! One run goes through steps, each recorded in the work folder's `state.json` when it is
//! done, so that a run cut short anywhere resumes where it stopped and a run after success
//! does nothing:
//!
//! 1. the source's users: an export job of the source connection (or `--from-file`);
//! 2. the source's roles and organizations with their members ([`access::read`]);
//! 3. the target connection's users, exported before anything is sent;
//! 4. the routing ([`route`]): each user converted with its hash, looked up on the target,
//!    and written to `create/` or `update/` or refused — the plan;
//! 5. the import jobs (`import::upload`, with its own state files: a file is never sent
//!    twice);
//! 6. roles and organizations given in batches ([`access::give`], with its own state file);
//! 7. the target connection's users, exported again;
//! 8. the proof: what was meant compared with what arrived ([`crate::diff`]), the roles and
//!    organizations read back ([`access::check`]), `report.json` and `summary.txt`.

pub mod access;
pub mod route;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth0::Client;
use crate::auth0::jobs::ImportOptions;
use crate::error::{Error, Result};
use crate::import::upload;
use crate::pipeline::Condition;
use crate::source::Input;

/// What to move and how.
pub struct Settings {
    /// The work folder: state, exports, import files, reports.
    pub work: PathBuf,
    /// The source tenant (none: `--from-file` without `--from`; then no roles or
    /// organizations travel).
    pub source: Option<Arc<Client>>,
    /// The target tenant.
    pub target: Arc<Client>,
    /// The source's database connection.
    pub connection: String,
    /// The target's database connection.
    pub to_connection: String,
    /// Exports on disk to start from instead of an export job.
    pub from_files: Vec<PathBuf>,
    /// An export of the target connection on disk, instead of an export job before the plan.
    pub to_file: Option<PathBuf>,
    /// Auth0's password-hash exports.
    pub hashes: Vec<PathBuf>,
    /// Only the users these conditions keep.
    pub conditions: Vec<Condition>,
    /// Update the users that exist on the target (else they are left as they are).
    pub upsert: bool,
    /// Create the roles and organizations the target lacks.
    pub create_missing: bool,
    /// Stop after the plan.
    pub plan_only: bool,
    /// How often jobs are polled.
    pub poll: Duration,
    /// Memory sorts may hold before they spill.
    pub memory_limit: usize,
    /// The longest line of an export.
    pub max_line: usize,
    /// Users a role call gives the role to.
    pub role_batch: usize,
    /// Members an organization call adds.
    pub member_batch: usize,
    /// Told a line about each step.
    pub notes: Option<crate::auth0::Trace>,
    /// Told how exports come along.
    pub progress: Option<crate::auth0::export::OnProgress>,
}

impl Settings {
    fn say(&self, text: String) {
        if let Some(notes) = &self.notes {
            notes(&text);
        }
    }

    /// What makes two runs the same migration (a work folder serves one).
    fn identity(&self) -> Value {
        let conditions: Vec<String> = self
            .conditions
            .iter()
            .map(|c| match c {
                Condition::Search { text, .. } => format!("query {text}"),
                Condition::Sql { text, .. } => format!("where {text}"),
            })
            .collect();
        let paths =
            |p: &[PathBuf]| -> Vec<String> { p.iter().map(|p| p.display().to_string()).collect() };
        json!({
            "source": self.source.as_ref().map(|c| c.base().to_string()),
            "target": self.target.base(),
            "connection": self.connection,
            "to_connection": self.to_connection,
            "from_files": paths(&self.from_files),
            "to_file": self.to_file.as_ref().map(|p| p.display().to_string()),
            "hashes": paths(&self.hashes),
            "conditions": conditions,
            "upsert": self.upsert,
        })
    }
}

/// The steps, in order.
const STEPS: &[&str] = &[
    "source users",
    "source roles and organizations",
    "target users before",
    "plan",
    "imports",
    "roles and organizations",
    "target users after",
    "proof",
];

/// `state.json`: the migration and the steps done.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    migration: Value,
    done: Vec<String>,
    /// The source's users (the export taken, or the files given).
    source_files: Vec<String>,
    /// The exit code the proof gave.
    exit: Option<u8>,
}

impl State {
    fn load(path: &Path) -> Result<Option<State>> {
        crate::sink::output::read_json(path, "a userport migration state")
    }

    fn save(&self, path: &Path) -> Result<()> {
        crate::sink::output::write_json(path, self)
    }

    fn done(&self, step: &str) -> bool {
        self.done.iter().any(|d| d == step)
    }
}

/// How a run ended.
pub struct Ended {
    /// The plan's text (counts), when the run made or read one.
    pub plan: Option<String>,
    /// The report's summary, once the proof is made.
    pub summary: Option<String>,
    /// 0: everything meant to move arrived; 1: something did not.
    pub exit: u8,
    /// Whether the run found everything done already and did nothing.
    pub already_done: bool,
}

/// Runs (or resumes) the migration.
pub async fn run(settings: &Settings) -> Result<Ended> {
    let work = &settings.work;
    std::fs::create_dir_all(work).map_err(|source| Error::Write {
        path: work.display().to_string(),
        source,
    })?;
    let state_path = work.join("state.json");
    let identity = settings.identity();
    let mut state = match State::load(&state_path)? {
        Some(state) if state.migration != identity => {
            return Err(Error::usage(
                format!("--work {}", work.display()),
                format!(
                    "this folder holds another migration ({}): use another --work folder",
                    state.migration
                ),
            ));
        }
        Some(state) => state,
        None => State {
            migration: identity,
            ..State::default()
        },
    };
    if state.done("proof") {
        let summary = read_text(&work.join("summary.txt"))?;
        return Ok(Ended {
            plan: None,
            summary: Some(summary),
            exit: state.exit.unwrap_or(1),
            already_done: true,
        });
    }
    if !state.done.is_empty() {
        settings.say(format!(
            "resuming the migration in {}: done already: {}",
            work.display(),
            state.done.join(", ")
        ));
    }
    let step = |state: &mut State, name: &str| -> Result<()> {
        debug_assert!(STEPS.contains(&name));
        state.done.push(name.to_string());
        state.save(&state_path)
    };

    // 1. The source's users.
    if !state.done("source users") {
        state.source_files = if settings.from_files.is_empty() {
            let source = settings.source.clone().ok_or_else(|| {
                Error::usage(
                    "--from",
                    "no source: give --from TENANT or --from-file EXPORT",
                )
            })?;
            let connection_id = source.connection_id(&settings.connection).await?;
            let path = work.join("source.ndjson.gz");
            settings.say(format!(
                "exporting the users of {} from {}",
                settings.connection,
                source.base()
            ));
            upload::keep_export(
                source,
                Some(connection_id),
                settings.poll,
                settings.progress.clone(),
                &path,
            )
            .await?;
            vec![path.display().to_string()]
        } else {
            settings
                .from_files
                .iter()
                .map(|p| p.display().to_string())
                .collect()
        };
        step(&mut state, "source users")?;
    }

    // 2. The source's roles and organizations.
    let listing_path = work.join("source-access.json");
    if !state.done("source roles and organizations") {
        let listing = match &settings.source {
            Some(source) => access::read(source, &|line| settings.say(line)).await?,
            None => {
                settings.say(
                    "no --from: roles and organizations are not read (only the users move)".into(),
                );
                access::Listing::default()
            }
        };
        write_json(&listing_path, &listing)?;
        step(&mut state, "source roles and organizations")?;
    }

    // 3. The target's users before (an export on disk, or an export job).
    let before = match &settings.to_file {
        Some(path) => path.clone(),
        None => work.join("target-before.ndjson.gz"),
    };
    if !state.done("target users before") {
        if settings.to_file.is_none() {
            let id = settings
                .target
                .connection_id(&settings.to_connection)
                .await?;
            export_target(settings, &id, &before, "to find who is there already").await?;
        }
        step(&mut state, "target users before")?;
    }

    // 4. The plan.
    let plan_path = work.join("plan.json");
    let routed: route::Routed = if state.done("plan") {
        read_json(&plan_path)?
    } else {
        let routed = plan(settings, &state, &before).await?;
        write_json(&plan_path, &routed)?;
        step(&mut state, "plan")?;
        routed
    };
    let listing: access::Listing = read_json(&listing_path)?;
    let plan_text = plan_text(settings, &routed, &listing);
    if settings.plan_only {
        return Ok(Ended {
            plan: Some(plan_text),
            summary: None,
            exit: 0,
            already_done: false,
        });
    }

    // 5. The imports.
    let to_connection_id = settings
        .target
        .connection_id(&settings.to_connection)
        .await?;
    let mut outcomes = Vec::new();
    for (folder, upsert) in [("create", false), ("update", true)] {
        let dir = work.join(folder);
        if !dir.join(crate::import::prepare::MANIFEST).is_file() {
            continue;
        }
        let files: Vec<PathBuf> = crate::import::files::resolve(&dir)?
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        if files.is_empty() {
            continue;
        }
        let plan = upload::Plan {
            files,
            options: ImportOptions {
                connection_id: to_connection_id.clone(),
                upsert,
                external_id: None,
                send_completion_email: false,
            },
            state: work.join(format!("{folder}-state.json")),
            poll: settings.poll,
            concurrency: 2,
            notes: settings.notes.clone(),
            progress: None,
        };
        outcomes.extend(upload::run(&settings.target, &plan).await?);
    }
    if !state.done("imports") {
        step(&mut state, "imports")?;
    }
    // Users that failed on the target, by email (lower case), with Auth0's error.
    let failed = failed_users(&outcomes)?;

    // 6. Roles and organizations.
    let ids = target_ids(&work.join("users.ndjson"), &listing, &failed)?;
    let sizes = listing.sizes();
    let meant = access::Meant::new(listing, &ids);
    let access_state = work.join("access-state.json");
    if !state.done("roles and organizations") {
        access::give(
            &settings.target,
            &meant,
            &access::Options {
                create_missing: settings.create_missing,
                role_batch: settings.role_batch,
                member_batch: settings.member_batch,
                state: &access_state,
                say: &|line| settings.say(line),
            },
        )
        .await?;
        step(&mut state, "roles and organizations")?;
    }

    // 7. The target's users after.
    let after = work.join("target-after.ndjson.gz");
    if !state.done("target users after") {
        export_target(settings, &to_connection_id, &after, "for the proof").await?;
        step(&mut state, "target users after")?;
    }

    // 8. The proof.
    let mut differ: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let summary = crate::diff::compare(
        vec![Input::Path(after.clone())],
        vec![Input::Path(work.join("meant.ndjson"))],
        crate::diff::Options {
            key: crate::diff::Key::Email,
            partial: true,
            memory_limit: settings.memory_limit,
            max_line: settings.max_line,
            old_connections: vec![settings.to_connection.clone()],
        },
        |change| {
            let entry = differ.entry(change.key.clone()).or_default();
            entry.push(match change.kind {
                crate::diff::Kind::Added => "not on the target".to_string(),
                _ => change.path.clone(),
            });
            Ok(())
        },
    )
    .await?;
    let (roles, organizations) = access::check(
        &settings.target,
        &meant,
        (&sizes.0, &sizes.1),
        &access_state,
    )
    .await?;
    let report = report::write(
        work,
        &routed,
        &outcomes,
        &failed,
        &differ,
        &summary,
        &roles,
        &organizations,
        settings,
    )?;
    state.exit = Some(report.exit);
    step(&mut state, "proof")?;
    Ok(Ended {
        plan: Some(plan_text),
        summary: Some(report.text),
        exit: report.exit,
        already_done: false,
    })
}

mod report;

/// An export job of the target connection, kept at `path`.
async fn export_target(
    settings: &Settings,
    connection_id: &str,
    path: &Path,
    why: &str,
) -> Result<()> {
    settings.say(format!(
        "exporting the users of {} from {} ({why})",
        settings.to_connection,
        settings.target.base()
    ));
    upload::keep_export(
        settings.target.clone(),
        Some(connection_id.to_string()),
        settings.poll,
        settings.progress.clone(),
        path,
    )
    .await
}

/// Step 4: the source's users routed against the target's.
async fn plan(settings: &Settings, state: &State, before: &Path) -> Result<route::Routed> {
    let inputs: Vec<Input> = state
        .source_files
        .iter()
        .map(|p| Input::Path(PathBuf::from(p)))
        .collect();
    let source = crate::source::open(inputs)?.with_max_line(settings.max_line);
    let ctx = crate::pipeline::session(settings.memory_limit)?;
    crate::pipeline::register(&ctx, source.clone())?;
    let request = crate::import::prepare::request(settings.conditions.clone());
    let planned = request.plan(&ctx, &source).await?;
    let target = route::Target::open(before, &settings.to_connection)?;
    let hashes = crate::import::hashes::Hashes::open_all(&settings.hashes)?;
    route::route(
        planned.frame,
        &settings.work,
        &target,
        hashes,
        &settings.connection,
        settings.upsert,
    )
    .await
}

/// The plan as people read it.
fn plan_text(settings: &Settings, r: &route::Routed, listing: &access::Listing) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan: {} users of {} read; {} go to {} on {}",
        r.read,
        settings.connection,
        r.create + r.update,
        settings.to_connection,
        settings.target.base()
    );
    let _ = writeln!(out, "  to create:            {:>9}", r.create);
    if settings.upsert {
        let _ = writeln!(out, "  to update (upsert):   {:>9}", r.update);
        let _ = writeln!(out, "  there, unchanged:     {:>9}", r.unchanged);
    } else {
        let _ = writeln!(
            out,
            "  there already:        {:>9}  (by email or id; left as they are: --upsert updates them)",
            r.exists
        );
    }
    let _ = writeln!(
        out,
        "  refused:              {:>9}{}",
        r.refused_users,
        if r.refused_users > 0 {
            "  (each with its reasons in create/rejected.json and users.ndjson)"
        } else {
            ""
        }
    );
    for (code, n) in &r.refused {
        let _ = writeln!(out, "    {code:<28} {n}");
    }
    if r.other_connections > 0 {
        let _ = writeln!(
            out,
            "  of other connections: {:>9}  (not moved)",
            r.other_connections
        );
    }
    if !r.update_paths.is_empty() {
        let _ = writeln!(out, "  the update changes (users):");
        for (path, n) in &r.update_paths {
            let _ = writeln!(out, "    {path:<28} {n}");
        }
    }
    if let Some(h) = &r.hashes {
        let unmatched = h.hashes_without_profile + h.hashes_of_other_connections + h.duplicates;
        let _ = writeln!(
            out,
            "  password hashes: {} of {} go with the users created; {} belong to users there \
             already or refused; {} match no user of the export (unmatched-hashes.json)",
            h.matched,
            h.hashes,
            h.hashes - h.matched - unmatched,
            unmatched
        );
        if h.profiles_without_hash > 0 {
            let _ = writeln!(
                out,
                "  without a hash:       {:>9}  database users created without a password \
                 (without-hash.json: send them a password reset)",
                h.profiles_without_hash
            );
        }
    } else {
        let _ = writeln!(
            out,
            "  password hashes: none given (--hashes): the created users will need a \
             password reset"
        );
    }
    if !r.left_behind.is_empty() {
        let _ = writeln!(out, "  what the target will not have (users):");
        for (field, n) in &r.left_behind {
            let _ = writeln!(out, "    {field:<28} {n}  {}", why_left(field));
        }
    }
    let members: usize = listing.roles.iter().map(|r| r.members.len()).sum();
    let org_members: usize = listing.organizations.iter().map(|o| o.members.len()).sum();
    let _ = writeln!(
        out,
        "  roles: {} on the source with {} users; organizations: {} with {} members \
         (matched on the target by name{})",
        listing.roles.len(),
        members,
        listing.organizations.len(),
        org_members,
        if settings.create_missing {
            "; missing ones created"
        } else {
            "; missing ones reported"
        }
    );
    out
}

/// Why the target will not have a field.
pub fn why_left(field: &str) -> &'static str {
    match field {
        "created_at" | "updated_at" => "(the target sets its own)",
        "logins_count" | "last_login" | "last_ip" | "last_password_reset" => {
            "(sign-in history stays on the source)"
        }
        "multifactor" | "guardian_authenticators" => {
            "(MFA enrolments: users enrol again, unless given as mfa_factors)"
        }
        "linked identities" => "(bulk import creates the primary identity only)",
        _ => "(not a field bulk import takes)",
    }
}

/// The users the import jobs failed, by lower-case email, with Auth0's errors; every user of
/// a file whose job failed as a whole, with why.
fn failed_users(outcomes: &[upload::Outcome]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for outcome in outcomes {
        if let Some(failure) = &outcome.failure {
            let users: Vec<Value> = read_json(Path::new(&outcome.file))?;
            for user in users {
                let email = user["email"].as_str().unwrap_or_default().to_lowercase();
                out.insert(email, format!("the import job failed: {failure}"));
            }
        }
        for error in &outcome.errors {
            let email = error["user"]["email"].as_str().unwrap_or_default();
            let messages: Vec<String> = error["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["code"].as_str().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            out.insert(email.to_lowercase(), messages.join("; "));
        }
    }
    Ok(out)
}

/// Source id → target id of the members of `listing` that are on the target after the run.
fn target_ids(
    users: &Path,
    listing: &access::Listing,
    failed: &HashMap<String, String>,
) -> Result<HashMap<String, String>> {
    let wanted = listing.member_ids();
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    each_fate(users, |fate| {
        let (Some(source), Some(target)) = (&fate.source_user_id, &fate.target_user_id) else {
            return Ok(());
        };
        let failed_there = fate
            .email
            .as_ref()
            .is_some_and(|e| failed.contains_key(&e.to_lowercase()));
        if wanted.contains(source) && fate.outcome != "refused" && !failed_there {
            out.insert(source.clone(), target.clone());
        }
        Ok(())
    })?;
    Ok(out)
}

/// Calls `each` with every line of `users.ndjson`.
fn each_fate(path: &Path, mut each: impl FnMut(route::Fate) -> Result<()>) -> Result<()> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        let fate = serde_json::from_str(&line).map_err(|e| Error::Input {
            path: path.display().to_string(),
            line: i as u64 + 1,
            column: e.column() as u64,
            message: e.to_string(),
        })?;
        each(fate)?;
    }
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    crate::sink::output::write_json(path, value)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    crate::sink::output::read_json(path, "what userport wrote there")?.ok_or_else(|| Error::Read {
        path: path.display().to_string(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })
}
