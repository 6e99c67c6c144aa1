//! The proof: `report.json` (per user: moved, already there, refused, failed on the target
//! with Auth0's error, or arrived different; per role and organization: members meant and
//! present; the comparison of what was meant with what arrived; what could not travel) and
//! `summary.txt`, the same for people.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::access::Outcome;
use super::route::{Fate, Routed};
use super::{Settings, each_fate, why_left};
use crate::error::{Error, Result};
use crate::import::upload;

/// The report as written.
pub struct Written {
    /// `summary.txt`.
    pub text: String,
    /// 0 when everything meant to move arrived, else 1.
    pub exit: u8,
}

/// Counts of the users' outcomes.
#[derive(Default)]
struct Counts {
    moved: u64,
    updated: u64,
    there: u64,
    refused: u64,
    failed: u64,
    differ: u64,
    whole: u64,
}

/// Writes `report.json` and `summary.txt` into `work`.
#[allow(clippy::too_many_arguments)]
pub fn write(
    work: &Path,
    routed: &Routed,
    imports: &[upload::Outcome],
    failed: &HashMap<String, String>,
    differ: &BTreeMap<String, Vec<String>>,
    diff: &crate::diff::Summary,
    roles: &[Outcome],
    organizations: &[Outcome],
    settings: &Settings,
) -> Result<Written> {
    let incomplete: HashSet<&str> = roles
        .iter()
        .chain(organizations)
        .flat_map(|o| {
            o.missing.iter().map(String::as_str).chain(
                o.missing_roles
                    .iter()
                    .filter_map(|m| m.split_once(": ").map(|(user, _)| user)),
            )
        })
        .collect();
    let path = work.join("report.json");
    let (destination, mut out) = crate::sink::output::Destination::create(Some(&path), false)?;
    let io = |source| Error::Write {
        path: path.display().to_string(),
        source,
    };
    out.write_all(b"{\"users\":[").map_err(io)?;
    let mut counts = Counts::default();
    let mut first = true;
    each_fate(&work.join("users.ndjson"), |fate: Fate| {
        let email = fate.email.clone().unwrap_or_default().to_lowercase();
        let mut entry = json!({
            "source_user_id": fate.source_user_id,
            "email": fate.email,
            "target_user_id": fate.target_user_id,
        });
        let status = match fate.outcome.as_str() {
            "create" | "update" => {
                if let Some(error) = failed.get(&email) {
                    counts.failed += 1;
                    entry["error"] = json!(error);
                    "failed on the target"
                } else if let Some(paths) = differ.get(&email) {
                    counts.differ += 1;
                    entry["differences"] = json!(paths);
                    "arrived different"
                } else if fate.outcome == "create" {
                    counts.moved += 1;
                    "moved"
                } else {
                    counts.updated += 1;
                    entry["changes"] = json!(fate.changes);
                    "updated"
                }
            }
            "refused" => {
                counts.refused += 1;
                entry["reasons"] = json!(fate.problems);
                "refused"
            }
            _ => {
                counts.there += 1;
                if fate.outcome == "unchanged" {
                    "already there (unchanged)"
                } else {
                    "already there (left as it is)"
                }
            }
        };
        entry["status"] = json!(status);
        if !fate.left_behind.is_empty() {
            entry["left_behind"] = json!(fate.left_behind);
        }
        if let Some(password) = &fate.password {
            entry["password"] = json!(password);
        }
        let arrived = matches!(status, "moved" | "updated");
        let memberships = fate
            .target_user_id
            .as_deref()
            .is_none_or(|id| !incomplete.contains(id));
        let lost = fate
            .left_behind
            .iter()
            .any(|f| matches!(f.as_str(), "linked identities" | "multifactor"));
        let password = fate.password.as_deref() != Some("none");
        let whole = arrived && memberships && !lost && password;
        counts.whole += u64::from(whole);
        entry["whole"] = json!(whole);
        out.write_all(if first { b"\n" } else { b",\n" })
            .and_then(|()| serde_json::to_writer(&mut out, &entry).map_err(Into::into))
            .map_err(io)?;
        first = false;
        Ok(())
    })?;
    let jobs_failed: Vec<&upload::Outcome> =
        imports.iter().filter(|o| o.failure.is_some()).collect();
    let access_ok = roles
        .iter()
        .chain(organizations)
        .all(|o| o.missing.is_empty() && o.missing_roles.is_empty() && o.problem.is_none());
    let arrived = diff.added == 0 && diff.changed == 0;
    let exit = u8::from(!(failed.is_empty() && jobs_failed.is_empty() && arrived && access_ok));
    let cannot_travel: BTreeMap<&String, Value> = routed
        .left_behind
        .iter()
        .map(|(field, n)| (field, json!({"users": n, "why": why_left(field)})))
        .collect();
    let rest = json!({
        "migration": settings.identity(),
        "summary": {
            "read": routed.read,
            "moved": counts.moved,
            "updated": counts.updated,
            "already_there": counts.there,
            "refused": counts.refused,
            "failed_on_target": counts.failed,
            "arrived_different": counts.differ,
            "moved_whole": counts.whole,
            "other_connections": routed.other_connections,
            "everything_arrived": exit == 0,
        },
        "plan": routed,
        "imports": imports.iter().map(|o| json!({
            "file": o.file, "job": o.job, "status": o.status, "summary": o.summary,
            "failure": o.failure, "failed_users": o.errors.len(),
        })).collect::<Vec<_>>(),
        "proof": {
            "meant": diff.new_users,
            "arrived_equal": diff.unchanged,
            "arrived_different": diff.changed,
            "not_on_target": diff.added,
            "paths": diff.paths,
        },
        "roles": roles,
        "organizations": organizations,
        "cannot_travel": cannot_travel,
    });
    let rest = rest.to_string();
    out.write_all(b"\n],")
        .and_then(|()| out.write_all(&rest.as_bytes()[1..]))
        .and_then(|()| out.write_all(b"\n"))
        .map_err(io)?;
    destination.commit(out)?;

    let text = summary(
        &counts,
        routed,
        diff,
        roles,
        organizations,
        &jobs_failed,
        exit,
    );
    crate::sink::output::write_whole(&work.join("summary.txt"), text.as_bytes())?;
    Ok(Written { text, exit })
}

fn summary(
    c: &Counts,
    routed: &Routed,
    diff: &crate::diff::Summary,
    roles: &[Outcome],
    organizations: &[Outcome],
    jobs_failed: &[&upload::Outcome],
    exit: u8,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} of {} users moved whole (profile, password hash, roles and organizations); {} \
         created, {} updated, {} already there, {} refused, {} failed on the target, {} \
         arrived different",
        c.whole,
        routed.read - routed.other_connections,
        c.moved,
        c.updated,
        c.there,
        c.refused,
        c.failed,
        c.differ
    );
    let _ = writeln!(
        out,
        "proof: {} of {} users meant to arrive are on the target as meant{}",
        diff.unchanged,
        diff.new_users,
        if diff.added > 0 {
            format!("; {} are not there", diff.added)
        } else {
            String::new()
        }
    );
    for (path, n) in &diff.paths {
        let _ = writeln!(out, "  differs: {path:<30} {n} users");
    }
    for (kind, list) in [("role", roles), ("organization", organizations)] {
        for o in list {
            let status = match (&o.problem, o.missing.len(), o.missing_roles.len()) {
                (Some(problem), _, _) => problem.clone(),
                (None, 0, 0) => "complete".to_string(),
                (None, m, r) => format!("{m} members missing, {r} member roles missing"),
            };
            let _ = writeln!(
                out,
                "{kind} {}: {} of {} meant members present{}; {}",
                o.name,
                o.present,
                o.meant,
                if o.created { " (created)" } else { "" },
                status
            );
        }
    }
    for job in jobs_failed {
        let _ = writeln!(
            out,
            "import of {}: {}",
            job.file,
            job.failure.as_deref().unwrap_or_default()
        );
    }
    if !routed.left_behind.is_empty() {
        let fields: Vec<String> = routed
            .left_behind
            .iter()
            .map(|(f, n)| format!("{f} ({n})"))
            .collect();
        let _ = writeln!(out, "left behind: {}", fields.join(", "));
    }
    let _ = writeln!(
        out,
        "{}",
        if exit == 0 {
            "everything meant to move arrived"
        } else {
            "NOT everything meant to move arrived: see report.json"
        }
    );
    out
}
