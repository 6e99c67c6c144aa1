//! `userport validate`: Auth0 import files checked as Auth0's server checks them, before
//! anything is sent.

use std::path::PathBuf;
use std::process::ExitCode;

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::import::files;
use crate::import::rules::{Code, Options};
use crate::import::validate::{Finding, MAX_CHECKED_BYTES, Validator};

/// Arguments of `userport validate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks: a JSON array; at most 512000 bytes; each user against Auth0's bulk-import schema \
(email required, no other properties, types, patterns, formats) and the rules Auth0 applies \
beside it (custom_password_hash per algorithm, mfa_factors, metadata keys, reserved \
app_metadata keys, no auth0| prefix on user_id); no duplicate email, user_id or username \
across all the files. A folder is read through its manifest.json (sizes and SHA-256 checked) \
or, without one, as its *.json files.

Exit status: 0 when all is well, 1 when anything is wrong, 2 when a file cannot be read.

Examples:
  userport validate users.json
  userport validate import/ --format json > problems.json")]
pub struct Args {
    /// Import files, prepared folders, or manifest.json files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The files are upsert rows: only what an upsert changes may be in them.
    #[arg(long)]
    pub upsert: bool,

    /// How problems are written on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,

    /// Prove a user's hash: the user with this email must be in the files and its
    /// password_hash or custom_password_hash must match PASSWORD as Auth0 computes it
    /// (else exit 1). Repeatable.
    #[arg(long, value_name = "EMAIL=PASSWORD")]
    pub check_password: Vec<String>,

    /// --check-password for each row of a CSV file with the columns email and password.
    #[arg(long, value_name = "FILE")]
    pub check_passwords: Vec<PathBuf>,
}

/// How `validate` writes its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// One line a problem: `FILE:LINE: user [INDEX] <EMAIL> at POINTER: CODE: message`.
    Text,
    /// One JSON document: `{"valid", "users", "files": [...], "problems": [...]}`.
    Json,
}

/// Runs `userport validate`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut validator = Validator::new(Options {
        upsert: args.upsert,
    });
    let mut checks =
        crate::import::checks::Checks::new(&args.check_password, &args.check_passwords)?;
    let paths = check_files(&args.files, &mut validator)?;
    let checked = if checks.is_empty() {
        None
    } else {
        Some(check_passwords(&paths, &mut checks))
    };
    let problems = validator.findings.len();
    match args.format {
        ReportFormat::Text => super::print(&text_report(&validator.findings))?,
        ReportFormat::Json => super::print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json_report(&validator)).expect("a report serializes")
        ))?,
    }
    let users_with_problems = validator
        .findings
        .iter()
        .filter_map(|f| f.index.map(|i| (&f.file, i)))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let files = validator.files.len();
    eprintln!(
        "{} {}, {} {}: {}",
        files,
        if files == 1 { "file" } else { "files" },
        validator.users(),
        if validator.users() == 1 {
            "user"
        } else {
            "users"
        },
        if problems == 0 {
            "all valid".to_string()
        } else {
            format!(
                "{problems} {}{}",
                if problems == 1 { "problem" } else { "problems" },
                match users_with_problems {
                    0 => String::new(),
                    1 => " in 1 user".to_string(),
                    n => format!(" in {n} users"),
                }
            )
        }
    );
    match checked {
        Some(Ok(summary)) => eprintln!("{summary}"),
        Some(Err(failure)) => {
            eprintln!("{failure}");
            return Ok(ExitCode::from(1));
        }
        None => {}
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Checks the known passwords against the users of the files.
fn check_passwords(
    paths: &[PathBuf],
    checks: &mut crate::import::checks::Checks,
) -> Result<String, Error> {
    for path in paths {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let Ok(users) = serde_json::from_slice::<Vec<serde_json::Value>>(&bytes) else {
            continue;
        };
        for user in &users {
            if let Some(email) = user.get("email").and_then(|e| e.as_str()) {
                checks.row(email, user.to_string().as_bytes());
            }
        }
    }
    checks.finish()
}

/// Checks the import files that `args` name (files, prepared folders, manifests) with
/// `validator`, each against its manifest's size and SHA-256 when it has one; returns the
/// files in order.
pub fn check_files(args: &[PathBuf], validator: &mut Validator) -> Result<Vec<PathBuf>, Error> {
    let mut paths = Vec::new();
    for arg in args {
        for (path, expected) in files::resolve(arg)? {
            let name = path.display().to_string();
            let Some(bytes) = read_bounded(&path)? else {
                let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                validator.oversized(&name, size);
                if let Some((expected, _)) = expected.filter(|(bytes, _)| *bytes != size) {
                    validator.whole_file(
                        &name,
                        Code::ManifestMismatch,
                        format!(
                            "the file changed since prepare wrote it: {size} bytes; the \
                             manifest says {expected} bytes"
                        ),
                    );
                }
                paths.push(path);
                continue;
            };
            validator.file(&name, &bytes);
            if let Some((size, sha256)) = expected {
                let actual = hex::encode(Sha256::digest(&bytes));
                if size != bytes.len() as u64 || sha256 != actual {
                    validator.whole_file(
                        &name,
                        Code::ManifestMismatch,
                        format!(
                            "the file changed since prepare wrote it: {} bytes, sha256 \
                             {actual}; the manifest says {size} bytes, sha256 {sha256}",
                            bytes.len()
                        ),
                    );
                }
            }
            paths.push(path);
        }
    }
    Ok(paths)
}

/// The content of `path`, or `None` when it holds more than [`MAX_CHECKED_BYTES`] (told by
/// its size, or by reading no further than that for a pipe or a device).
fn read_bounded(path: &std::path::Path) -> Result<Option<Vec<u8>>, Error> {
    use std::io::Read;
    let read_error = |source| Error::Read {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if meta.is_dir() {
        return Err(read_error(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a directory",
        )));
    }
    if meta.is_file() && meta.len() > MAX_CHECKED_BYTES {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(MAX_CHECKED_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    Ok((bytes.len() as u64 <= MAX_CHECKED_BYTES).then_some(bytes))
}

/// One line a problem.
pub fn text_report(findings: &[Finding]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for f in findings {
        let _ = write!(out, "{}:{}", f.file, f.line);
        if let Some(column) = f.column {
            let _ = write!(out, ":{column}");
        }
        out.push_str(": ");
        if let Some(index) = f.index {
            let _ = write!(out, "user [{index}] ");
            if let Some(email) = &f.email {
                let _ = write!(out, "<{email}> ");
            }
        }
        if !f.problem.pointer.is_empty() {
            let _ = write!(out, "at {} ", f.problem.pointer);
        }
        let _ = writeln!(out, "{}: {}", f.problem.code, f.problem.message);
    }
    out
}

/// The machine-readable report.
fn json_report(v: &Validator) -> serde_json::Value {
    serde_json::json!({
        "valid": v.findings.is_empty(),
        "users": v.users(),
        "files": v.files.iter().map(|f| serde_json::json!({
            "file": f.file, "bytes": f.bytes, "users": f.users, "problems": f.problems,
        })).collect::<Vec<_>>(),
        "problems": v.findings.iter().map(|f| serde_json::json!({
            "file": f.file,
            "index": f.index,
            "line": f.line,
            "column": f.column,
            "email": f.email,
            "pointer": f.problem.pointer,
            "code": f.problem.code.as_str(),
            "rule": f.problem.origin.as_str(),
            "message": f.problem.message,
        })).collect::<Vec<_>>(),
    })
}
