//! What a prepared folder says about itself: `manifest.json` (the files with their users,
//! bytes and SHA-256, the totals, what was refused or left out) and the names of the
//! folder's other files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The name of the manifest in a prepared folder.
pub const MANIFEST: &str = "manifest.json";

/// The name of the list of refused users in a prepared folder.
pub const REJECTED: &str = "rejected.json";

/// The name of the list of keys that matched no user, in a folder prepared with `--base`.
pub const UNMATCHED: &str = "unmatched.json";

/// One import file of a prepared folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// The file's name inside the folder.
    pub file: String,
    /// How many users it holds.
    pub users: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, in hex.
    pub sha256: String,
}

/// The totals of a prepared folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Users read from the input.
    pub read: u64,
    /// Users written to the files.
    pub users: u64,
    /// Files written.
    pub files: u64,
    /// Bytes written to the files.
    pub bytes: u64,
    /// Users refused.
    pub rejected: u64,
    /// Users of other connections, left out by `--connection`.
    pub skipped: u64,
}

/// `manifest.json`: what a prepared folder holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The userport version that wrote it.
    pub userport: String,
    /// `insert` or `upsert`.
    pub kind: String,
    /// The size limit the files were cut at.
    pub max_bytes: usize,
    /// The files, in order.
    pub files: Vec<FileEntry>,
    /// The totals.
    pub totals: Totals,
    /// Refused users per error code (the users are in `rejected.json`).
    pub rejected: BTreeMap<String, u64>,
    /// Fields left out of the written users, per field: how many had them.
    pub dropped: BTreeMap<String, u64>,
    /// Linked identities left behind (bulk import creates the primary identity only).
    pub linked_identities_dropped: u64,
    /// Users that had no `email_verified` and got `false` written.
    pub email_verified_added: u64,
    /// Users written per database connection (from `identities[0].connection`).
    pub connections: BTreeMap<String, u64>,
    /// Users written without a password because Auth0 cannot verify their hash, per hash
    /// format (the users are in `without-password.json`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub without_password: BTreeMap<String, u64>,
    /// What `--check-password(s)` proved, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_passwords: Option<String>,
    /// With `--hashes`: how the hashes went to the profiles (the ones that did not are in
    /// `unmatched-hashes.json`, the profiles without one in `without-hash.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<crate::import::hashes::HashTotals>,
}

/// Reads a prepared folder's manifest.
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let text = std::fs::read(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|e| Error::Input {
        path: path.display().to_string(),
        line: e.line() as u64,
        column: e.column() as u64,
        message: format!("not a userport manifest: {e}"),
    })
}
