//! Auth0's password-hash export (`prepare --hashes FILE`): the NDJSON file Auth0 support
//! delivers (decrypted), one user a line with `_id.$oid`, maybe `alt_id`, `email` (or only
//! an `identifiers` entry of type email), `passwordHash` (bcrypt), `password_set_date`,
//! `tenant` and `connection`. The user's id is `auth0|ALT_ID` when `alt_id` is there, else
//! `auth0|OID`.
//!
//! The files are indexed by user id ([`Lines`]: a fingerprint and a place a line, the hashes
//! stay on disk), each profile finds its hash by connection and user id as it is converted,
//! and what matched nothing is told apart afterwards: hashes of another connection, hashes
//! without a profile.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::lookup::Lines;
use crate::error::{Error, Result};

/// The name of the list of hashes that matched no profile, in a prepared folder.
pub const UNMATCHED_HASHES: &str = "unmatched-hashes.json";

/// The name of the list of database users written without a hash, in a prepared folder.
pub const WITHOUT_HASH: &str = "without-hash.json";

/// One line of the export, as far as userport reads it.
#[derive(Deserialize)]
struct Exported {
    #[serde(rename = "_id")]
    id: Option<Oid>,
    alt_id: Option<String>,
    email: Option<String>,
    email_verified: Option<bool>,
    #[serde(rename = "passwordHash")]
    password_hash: Option<String>,
    connection: Option<String>,
    #[serde(default)]
    identifiers: Vec<Identifier>,
}

#[derive(Deserialize)]
struct Oid {
    #[serde(rename = "$oid")]
    oid: Option<String>,
}

#[derive(Deserialize)]
struct Identifier {
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<String>,
    verified: Option<bool>,
}

/// One user's hash, as the export gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hash {
    /// The user id it belongs to (`auth0|…`).
    pub user_id: String,
    /// The user's email, from the root or the email identifier.
    pub email: Option<String>,
    /// Whether the email was verified, from the root or the email identifier.
    pub email_verified: Option<bool>,
    /// The connection, when the export names it.
    pub connection: Option<String>,
    /// The bcrypt hash.
    #[serde(skip)]
    pub password_hash: String,
}

impl Exported {
    /// The line read as a hash, or what is wrong with it.
    fn read(line: &[u8]) -> std::result::Result<Hash, String> {
        let exported: Exported = serde_json::from_slice(line).map_err(|e| {
            format!("not a line of a password-hash export (one JSON object a line): {e}")
        })?;
        let oid = exported.id.and_then(|id| id.oid);
        let id = exported
            .alt_id
            .filter(|a| !a.is_empty())
            .or(oid)
            .ok_or("no user id: the line has neither _id.$oid nor alt_id")?;
        let password_hash = exported
            .password_hash
            .filter(|h| !h.is_empty())
            .ok_or("no passwordHash")?;
        let identifier = exported
            .identifiers
            .into_iter()
            .find(|i| i.kind.as_deref() == Some("email"));
        let (identified, verified) = identifier.map_or((None, None), |i| (i.value, i.verified));
        Ok(Hash {
            user_id: format!("auth0|{id}"),
            email: exported.email.or(identified),
            email_verified: exported.email_verified.or(verified),
            connection: exported.connection,
            password_hash,
        })
    }
}

/// The hashes of one or more export files, found by user id.
pub struct Hashes {
    lines: Lines,
    /// One bit an entry: its hash went to a profile.
    used: Vec<AtomicU64>,
}

impl std::fmt::Debug for Hashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hashes({} users)", self.lines.len())
    }
}

/// A profile's hash, found.
#[derive(Debug, Clone)]
pub struct Found {
    /// The bcrypt hash.
    pub password_hash: String,
}

/// What became of the hashes that went to no profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashTotals {
    /// Hashes in the files.
    pub hashes: u64,
    /// Profiles written with their hash.
    pub matched: u64,
    /// Database users written without a hash (listed in `without-hash.json`).
    pub profiles_without_hash: u64,
    /// Hashes of users that are not among the profiles (listed in `unmatched-hashes.json`).
    pub hashes_without_profile: u64,
    /// Hashes of another connection than the profiles' (listed in `unmatched-hashes.json`).
    pub hashes_of_other_connections: u64,
    /// Second hashes of a user whose first hash went to the profile (listed in
    /// `unmatched-hashes.json`).
    #[serde(default)]
    pub duplicates: u64,
}

/// Why a hash went to no profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unused {
    /// No profile has its user id.
    NoProfile,
    /// Its connection is not the profiles'.
    OtherConnection,
    /// Another line of the same user went to the profile (this 1-based line).
    Duplicate(u32),
}

/// One entry of `unmatched-hashes.json`.
#[derive(Serialize)]
struct Unmatched<'a> {
    file: &'a str,
    line: u32,
    #[serde(flatten)]
    hash: &'a Hash,
    reason: String,
}

impl Hashes {
    /// Reads and indexes the export files; a line that is not a hash is an error naming it.
    pub fn open(paths: &[PathBuf]) -> Result<Hashes> {
        let lines = Lines::index(paths, |line, keys| {
            keys.push((0, Exported::read(line)?.user_id));
            Ok(())
        })?;
        let used = (0..lines.len().div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        Ok(Hashes { lines, used })
    }

    /// The exports of `paths` indexed and shared, or none when no path is given.
    pub fn open_all(paths: &[PathBuf]) -> Result<Option<std::sync::Arc<Hashes>>> {
        if paths.is_empty() {
            return Ok(None);
        }
        Hashes::open(paths).map(|h| Some(std::sync::Arc::new(h)))
    }

    /// How many hashes there are.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The hash of the user `user_id` (`auth0|…`) of `connection`: a hash whose line names
    /// another connection is not this user's.
    pub fn find(&self, user_id: &str, connection: Option<&str>) -> Result<Option<Found>> {
        for entry in self.lines.candidates(0, user_id) {
            let (hash, _) = self.hash(entry)?;
            let same_connection = match (&hash.connection, connection) {
                (Some(theirs), Some(ours)) => theirs == ours,
                _ => true,
            };
            if hash.user_id == user_id && same_connection {
                self.used[entry as usize / 64].fetch_or(1 << (entry % 64), Ordering::Relaxed);
                return Ok(Some(Found {
                    password_hash: hash.password_hash,
                }));
            }
        }
        Ok(None)
    }

    fn used(&self, entry: u32) -> bool {
        self.used[entry as usize / 64].load(Ordering::Relaxed) & (1 << (entry % 64)) != 0
    }

    /// Entry `entry` read back as a hash.
    fn hash(&self, entry: u32) -> Result<(Hash, super::lookup::Line)> {
        let line = self.lines.read(entry)?;
        let hash = Exported::read(&line.bytes).map_err(|message| Error::Input {
            path: line.file.clone(),
            line: u64::from(line.line),
            column: 1,
            message,
        })?;
        Ok((hash, line))
    }

    /// Calls `each` with every hash that went to no profile, with why (another connection:
    /// its connection is not among `connections`, the profiles' connections), its file and
    /// line.
    pub fn unmatched(
        &self,
        connections: &[String],
        mut each: impl FnMut(&Hash, Unused, &str, u32) -> Result<()>,
    ) -> Result<()> {
        for entry in 0..self.lines.len() as u32 {
            if self.used(entry) {
                continue;
            }
            let (hash, line) = self.hash(entry)?;
            let mut why = if hash
                .connection
                .as_ref()
                .is_some_and(|c| !connections.is_empty() && !connections.contains(c))
            {
                Unused::OtherConnection
            } else {
                Unused::NoProfile
            };
            for other in self.lines.candidates(0, &hash.user_id) {
                if other != entry && self.used(other) {
                    let (first, first_line) = self.hash(other)?;
                    if first.user_id == hash.user_id && first.connection == hash.connection {
                        why = Unused::Duplicate(first_line.line);
                    }
                }
            }
            each(&hash, why, &line.file, line.line)?;
        }
        Ok(())
    }

    /// Writes `unmatched-hashes.json` (an array, one entry a line) with [`Hashes::unmatched`],
    /// and counts them into `totals`.
    pub fn write_unmatched(
        &self,
        connections: &[String],
        out: &mut impl std::io::Write,
        totals: &mut HashTotals,
    ) -> Result<()> {
        let mut first = true;
        let io = |e: std::io::Error| Error::Write {
            path: UNMATCHED_HASHES.into(),
            source: e,
        };
        out.write_all(b"[").map_err(io)?;
        self.unmatched(connections, |hash, why, file, line| {
            let reason = match why {
                Unused::OtherConnection => {
                    totals.hashes_of_other_connections += 1;
                    format!(
                        "of connection {}, not {}",
                        hash.connection.as_deref().unwrap_or_default(),
                        connections.join(", ")
                    )
                }
                Unused::NoProfile => {
                    totals.hashes_without_profile += 1;
                    "no profile has this user id".to_string()
                }
                Unused::Duplicate(first) => {
                    totals.duplicates += 1;
                    format!("a second hash of this user: the hash of line {first} went to it")
                }
            };
            let entry = Unmatched {
                file,
                line,
                hash,
                reason,
            };
            out.write_all(if first { b"\n" } else { b",\n" })
                .and_then(|()| serde_json::to_writer(&mut *out, &entry).map_err(Into::into))
                .map_err(io)?;
            first = false;
            Ok(())
        })?;
        out.write_all(if first { b"]\n" } else { b"\n]\n" })
            .map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_alt_id_or_oid_and_emails_from_identifiers() {
        let hash = Exported::read(
            br#"{"_id":{"$oid":"5dea"},"passwordHash":"$2b$10$x","identifiers":[{"type":"email","value":"a@b.co","verified":true}],"connection":"db"}"#,
        )
        .unwrap();
        assert_eq!(hash.user_id, "auth0|5dea");
        assert_eq!(hash.email.as_deref(), Some("a@b.co"));
        assert_eq!(hash.email_verified, Some(true));
        let hash = Exported::read(
            br#"{"_id":{"$oid":"5dea"},"alt_id":"euclid","email":"x@y.z","email_verified":false,"passwordHash":"h"}"#,
        )
        .unwrap();
        assert_eq!(hash.user_id, "auth0|euclid");
        assert_eq!(hash.email_verified, Some(false));
        assert!(
            Exported::read(br#"{"_id":{"$oid":"1"}}"#)
                .unwrap_err()
                .contains("passwordHash")
        );
        assert!(Exported::read(br#"{"passwordHash":"h"}"#).is_err());
    }
}
