//! Where each source user goes: converted as `prepare` converts it (password hash merged),
//! looked up on the target (its export, indexed by email and user id), and written to
//! `create/` (a new user), `update/` (one that exists, with `--upsert`, when the upsert
//! changes something), or nowhere (refused, already there). Every user's fate is a line of
//! `users.ndjson`; what is meant to arrive is a line of `meant.ndjson` (the row as the target
//! will export it: no hash, the `auth0|` prefix on the id), which the proof compares with the
//! target at the end.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use datafusion::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::import::convert::{Conversion, Outcome, convert};
use crate::import::hashes::{HashTotals, Hashes};
use crate::import::lookup::Lines;
use crate::import::prepare::{self, DEFAULT_MAX_BYTES, Manifest, Preparer, Settings, Taken};
use crate::json::skim::Skim;
use crate::sink::output::{Destination, Writer};

/// The users of the target connection, found by email (without regard to case) or user id.
pub struct Target {
    lines: Lines,
}

/// Key kinds of [`Target`].
const EMAIL: u8 = 0;
const USER_ID: u8 = 1;

/// A user that exists on the target.
pub struct Existing {
    /// Its id there.
    pub user_id: String,
    /// The user's line of the target's export.
    pub line: Vec<u8>,
}

impl Target {
    /// Indexes the users of `connection` in the target's export `path`.
    pub fn open(path: &Path, connection: &str) -> Result<Target> {
        let lines = Lines::index(&[path.to_path_buf()], |line, keys| {
            let user: Value = serde_json::from_slice(line)
                .map_err(|e| format!("not a user of an export: {e}"))?;
            if user["identities"][0]["connection"].as_str() != Some(connection) {
                return Ok(());
            }
            if let Some(email) = user["email"].as_str() {
                keys.push((EMAIL, email.to_lowercase()));
            }
            if let Some(id) = user["user_id"].as_str() {
                keys.push((USER_ID, id.to_string()));
            }
            Ok(())
        })?;
        Ok(Target { lines })
    }

    /// The target's user with the id `auth0|user_id`, else with `email`.
    pub fn find(&self, email: &str, user_id: Option<&str>) -> Result<Option<Existing>> {
        let mut wanted = Vec::new();
        if let Some(id) = user_id {
            wanted.push((USER_ID, format!("auth0|{id}")));
        }
        wanted.push((EMAIL, email.to_lowercase()));
        for (kind, key) in wanted {
            for entry in self.lines.candidates(kind, &key) {
                let line = self.lines.read(entry)?;
                let user: Value = serde_json::from_slice(&line.bytes).unwrap_or_default();
                let held = match kind {
                    USER_ID => user["user_id"].as_str().map(str::to_string),
                    _ => user["email"].as_str().map(str::to_lowercase),
                };
                if held.as_deref() == Some(key.as_str()) {
                    let user_id = user["user_id"].as_str().unwrap_or_default().to_string();
                    return Ok(Some(Existing {
                        user_id,
                        line: line.bytes,
                    }));
                }
            }
        }
        Ok(None)
    }
}

/// What became of one source user (a line of `users.ndjson`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Fate {
    /// The user's id on the source.
    pub source_user_id: Option<String>,
    /// Its email.
    pub email: Option<String>,
    /// `create`, `update`, `unchanged` (exists; the upsert would change nothing), `exists`
    /// (exists; not updated without --upsert) or `refused`.
    pub outcome: String,
    /// Its id on the target (known, or as the import will make it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_user_id: Option<String>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// For an update: the fields it changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// What the target will not have of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_behind: Vec<String>,
    /// `hash` (its password hash travels), `none` (a database user without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The plan: counts of where the users go (`plan.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Routed {
    /// Users read from the source's export.
    pub read: u64,
    /// Users of other connections in the export (not moved).
    pub other_connections: u64,
    /// Users to create on the target.
    pub create: u64,
    /// Users that exist on the target and that the upsert changes.
    pub update: u64,
    /// Users that exist on the target and that the upsert would not change.
    pub unchanged: u64,
    /// Users that exist on the target, left as they are (no --upsert).
    pub exists: u64,
    /// Users refused, per error code.
    pub refused: BTreeMap<String, u64>,
    /// All users refused.
    pub refused_users: u64,
    /// Per field an update changes, how many users.
    pub update_paths: BTreeMap<String, u64>,
    /// Per field the target will not have, how many users had it.
    pub left_behind: BTreeMap<String, u64>,
    /// With hashes: how they went to the users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<HashTotals>,
    /// The import files: to create, to update.
    pub create_files: u64,
    /// The files of the update.
    pub update_files: u64,
}

/// Fields the target makes for itself or keeps per tenant: never in an import.
const OWN_FIELDS: &[&str] = &["identities", "user_id"];

/// Routes the users of `frame` (the source's users of `connection`) into `work/create` and
/// `work/update`, writing `users.ndjson`, `meant.ndjson` and `plan.json`.
pub async fn route(
    frame: DataFrame,
    work: &Path,
    target: &Target,
    hashes: Option<Arc<Hashes>>,
    connection: &str,
    upsert: bool,
) -> Result<Routed> {
    let settings = |dir: &str, upsert: bool, hashes: Option<Arc<Hashes>>| Settings {
        dir: work.join(dir),
        max_bytes: DEFAULT_MAX_BYTES,
        conversion: Conversion {
            upsert,
            connection: Some(connection.to_string()),
            unconvertible_without_password: false,
            hashes,
        },
        force: true,
        inputs: Vec::new(),
        mapped: None,
    };
    let create_settings = settings("create", false, hashes);
    let update_settings = settings("update", true, None);
    let mut create = Preparer::new(&create_settings)?;
    let mut update = if upsert {
        Some(Preparer::new(&update_settings)?)
    } else {
        None
    };
    let mut fates = Partial::create(&work.join("users.ndjson"))?;
    let mut meant = Partial::create(&work.join("meant.ndjson"))?;
    let mut routed = Routed::default();
    prepare::each_user(
        frame,
        None,
        &create_settings.conversion,
        |object, outcome, _| {
            routed.read += 1;
            let text = std::str::from_utf8(object).unwrap_or_default();
            let field = |key: &str| {
                crate::json::get_path(text, &[crate::json::Step::Key(key.to_string())])
                    .and_then(|raw| serde_json::from_str::<String>(raw).ok())
            };
            let mut fate = Fate {
                source_user_id: field("user_id"),
                email: field("email"),
                ..Fate::default()
            };
            let row = match outcome {
                Outcome::Row(row) => row,
                other => {
                    return match create.take(object, other)? {
                        Taken::Skipped => {
                            routed.other_connections += 1;
                            Ok(())
                        }
                        Taken::Refused(problems) => {
                            refuse(&mut routed, &mut fates, fate, &problems)
                        }
                        Taken::Written => Err(Error::Internal("a refused user was written".into())),
                    };
                }
            };
            match target.find(row.email(), row.user_id())? {
                None => {
                    let mut left: Vec<String> = row
                        .dropped
                        .given()
                        .filter(|f| !OWN_FIELDS.contains(f))
                        .map(str::to_string)
                        .collect();
                    if row.linked_identities > 0 {
                        left.push("linked identities".to_string());
                    }
                    let password = row
                        .hash_found
                        .map(|found| if found { "hash" } else { "none" }.to_string());
                    let json = row.json.clone();
                    let id = row.user_id().map(str::to_string);
                    match create.take(object, Outcome::Row(row))? {
                        Taken::Written => {
                            routed.create += 1;
                            for field in &left {
                                *routed.left_behind.entry(field.clone()).or_default() += 1;
                            }
                            meant.line(&meant_row(&json, true)?)?;
                            fate.outcome = "create".into();
                            fate.target_user_id = id.map(|id| format!("auth0|{id}"));
                            fate.left_behind = left;
                            fate.password = password;
                            fates.line(&fate)
                        }
                        Taken::Refused(problems) => {
                            refuse(&mut routed, &mut fates, fate, &problems)
                        }
                        Taken::Skipped => Ok(()),
                    }
                }
                Some(existing) => {
                    fate.target_user_id = Some(existing.user_id.clone());
                    let Some(update) = update.as_mut() else {
                        routed.exists += 1;
                        fate.outcome = "exists".into();
                        return fates.line(&fate);
                    };
                    let change = convert(object, &update_settings.conversion, &mut Skim::default());
                    if let Outcome::Row(up) = &change {
                        let old =
                            crate::json::Value::parse(&existing.line).map_err(Error::Internal)?;
                        let new = crate::json::Value::parse(&up.json).map_err(Error::Internal)?;
                        let paths = crate::diff::update_paths(&old, &new);
                        if paths.is_empty() {
                            routed.unchanged += 1;
                            fate.outcome = "unchanged".into();
                            return fates.line(&fate);
                        }
                        fate.changes = paths;
                    }
                    let json = match &change {
                        Outcome::Row(up) => Some(up.json.clone()),
                        _ => None,
                    };
                    match update.take(object, change)? {
                        Taken::Written => {
                            routed.update += 1;
                            for path in &fate.changes {
                                *routed.update_paths.entry(path.clone()).or_default() += 1;
                            }
                            if let Some(json) = json {
                                meant.line(&meant_row(&json, false)?)?;
                            }
                            fate.outcome = "update".into();
                            fates.line(&fate)
                        }
                        Taken::Refused(problems) => {
                            refuse(&mut routed, &mut fates, fate, &problems)
                        }
                        Taken::Skipped => Ok(()),
                    }
                }
            }
        },
    )
    .await?;
    let created: Manifest = create.finish()?;
    routed.create_files = created.totals.files;
    routed.hashes = created.hashes;
    if let Some(update) = update {
        routed.update_files = update.finish()?.totals.files;
    }
    fates.finish()?;
    meant.finish()?;
    Ok(routed)
}

fn refuse(
    routed: &mut Routed,
    fates: &mut Partial,
    mut fate: Fate,
    problems: &[crate::import::rules::Problem],
) -> Result<()> {
    routed.refused_users += 1;
    let codes: std::collections::BTreeSet<&str> =
        problems.iter().map(|p| p.code.as_str()).collect();
    for code in codes {
        *routed.refused.entry(code.to_string()).or_default() += 1;
    }
    fate.outcome = "refused".into();
    fate.problems = problems
        .iter()
        .map(|p| format!("{} {}: {}", p.code.as_str(), p.pointer, p.message))
        .collect();
    fates.line(&fate)
}

/// An import row as the target will export it: without the password hashes (exports carry
/// none), with the `auth0|` prefix on the id of a new user.
fn meant_row(json: &[u8], created: bool) -> Result<Value> {
    let mut row: Value = serde_json::from_slice(json)
        .map_err(|e| Error::Internal(format!("an import row does not parse: {e}")))?;
    if let Some(object) = row.as_object_mut() {
        object.remove("password_hash");
        object.remove("custom_password_hash");
        if created && let Some(Value::String(id)) = object.get("user_id").cloned() {
            object.insert("user_id".into(), json!(format!("auth0|{id}")));
        }
    }
    Ok(row)
}

/// An NDJSON file that appears whole or not at all (a [`Destination`] renamed into place).
pub struct Partial {
    destination: Destination,
    writer: Writer,
}

impl Partial {
    /// Starts `path`.
    pub fn create(path: &Path) -> Result<Partial> {
        let (destination, writer) = Destination::create(Some(path), false)?;
        Ok(Partial {
            destination,
            writer,
        })
    }

    /// Writes one line.
    pub fn line(&mut self, value: &impl Serialize) -> Result<()> {
        serde_json::to_writer(&mut self.writer, value)
            .map_err(std::io::Error::from)
            .and_then(|()| self.writer.write_all(b"\n"))
            .map_err(|source| Error::Write {
                path: self.destination.name(),
                source,
            })
    }

    /// Puts the file in place.
    pub fn finish(self) -> Result<()> {
        self.destination.commit(self.writer)
    }
}
