//! Known passwords checked against import rows before anything is uploaded
//! (`--check-password EMAIL=PASSWORD`, `--check-passwords FILE`): each named user's final
//! row has its hash recomputed from the password ([`crate::password::verify`]); a mismatch,
//! a row without a hash or a user who is not there fails the run.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::password::verify;

/// The passwords to check, by email (without regard to case), and what was found.
#[derive(Debug, Default)]
pub struct Checks {
    wanted: BTreeMap<String, (String, String)>,
    /// Per email (as given): the algorithm checked, or what failed.
    found: BTreeMap<String, std::result::Result<String, String>>,
}

impl Checks {
    /// The checks of `EMAIL=PASSWORD` arguments and `email,password` CSV files.
    pub fn new(pairs: &[String], files: &[std::path::PathBuf]) -> Result<Checks> {
        let mut checks = Checks::default();
        for pair in pairs {
            let Some((email, password)) = pair.split_once('=') else {
                return Err(Error::usage(
                    "--check-password",
                    "expected EMAIL=PASSWORD (the password is never printed)",
                ));
            };
            checks.add(email, password);
        }
        for file in files {
            checks.read(file)?;
        }
        Ok(checks)
    }

    fn add(&mut self, email: &str, password: &str) {
        self.wanted.insert(
            email.trim().to_lowercase(),
            (email.trim().to_string(), password.to_string()),
        );
    }

    /// Reads a CSV file with the columns `email` and `password` (a header row).
    fn read(&mut self, path: &Path) -> Result<()> {
        let context = format!("--check-passwords {}", path.display());
        let mut reader =
            csv::Reader::from_path(path).map_err(|e| Error::usage(&context, e.to_string()))?;
        let headers = reader
            .headers()
            .map_err(|e| Error::usage(&context, e.to_string()))?
            .clone();
        let at = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        let (Some(email), Some(password)) = (at("email"), at("password")) else {
            return Err(Error::usage(
                &context,
                "expected a header row with the columns email and password",
            ));
        };
        for (i, record) in reader.records().enumerate() {
            let record =
                record.map_err(|e| Error::usage(&context, format!("row {}: {e}", i + 2)))?;
            let (Some(e), Some(p)) = (record.get(email), record.get(password)) else {
                return Err(Error::usage(
                    &context,
                    format!("row {}: missing email or password", i + 2),
                ));
            };
            self.add(e, p);
        }
        Ok(())
    }

    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty()
    }

    /// Checks the import row `row` (JSON text) when its email is named.
    pub fn row(&mut self, email: &str, row: &[u8]) {
        let Some((given, password)) = self.wanted.get(&email.to_lowercase()) else {
            return;
        };
        let outcome = match serde_json::from_slice::<Value>(row) {
            Ok(value) => verify::check(&value, password).map_err(|f| f.to_string()),
            Err(e) => Err(format!("the row is not JSON: {e}")),
        };
        self.found.insert(given.clone(), outcome);
    }

    /// A named user who was refused (so never imported with this password).
    pub fn refused(&mut self, email: &str) {
        if let Some((given, _)) = self.wanted.get(&email.to_lowercase()) {
            self.found
                .entry(given.clone())
                .or_insert_with(|| Err("the user was refused (see rejected.json)".into()));
        }
    }

    /// The outcome: `Ok(summary)` when every named user was found and matched, else an
    /// error listing every failure (a [`Error::Failed`]: exit 1).
    pub fn finish(&self) -> Result<String> {
        let mut failures = Vec::new();
        let mut algorithms: BTreeMap<&str, u64> = BTreeMap::new();
        for (given, _) in self.wanted.values() {
            match self.found.get(given) {
                Some(Ok(algorithm)) => *algorithms.entry(algorithm).or_default() += 1,
                Some(Err(why)) => failures.push(format!("{given}: {why}")),
                None => failures.push(format!("{given}: no such user among the users read")),
            }
        }
        if !failures.is_empty() {
            return Err(Error::Failed(format!(
                "password check failed for {} of {} users:\n  {}",
                failures.len(),
                self.wanted.len(),
                failures.join("\n  ")
            )));
        }
        let by: Vec<String> = algorithms.iter().map(|(a, n)| format!("{a} {n}")).collect();
        Ok(format!(
            "checked {} passwords against their users' hashes: all match ({})",
            self.wanted.len(),
            by.join(", ")
        ))
    }
}
