//! `userport diff`: two user sets (exports, import files, prepared folders) compared user by
//! user; a report of every difference, and a summary on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::record_batch::RecordBatch;

use crate::diff::{self, Change, Key, Options, Summary};
use crate::error::Error;
use crate::import::{files, prepare};
use crate::sink::output::Destination;
use crate::sink::{self, Shape};
use crate::source::Input;

/// Arguments of `userport diff`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each side is an export (NDJSON or a JSON array, gzipped or not), an import file, or a \
prepared folder (its manifest's files). Users are matched by --key: user_id (auth0| prefixes \
reconciled) or email (without regard to case). The report has one row per difference: key, \
change (added, removed, changed), path (a JSON path; empty for a whole user), old, new.

When NEW is a folder prepared with --upsert (or with --partial), NEW is an update: only its \
users and the fields it holds are compared, as Auth0 applies them (metadata objects replaced \
whole, email_verified false unless given), by email unless --key says otherwise. That is \
the preview of an update: nothing may differ that the change did not ask for.

Exit status: 0 when the sets are equal, 1 when they differ, 2 on error.

Examples:
  userport diff before.ndjson.gz after.ndjson.gz -o changes.csv
  userport diff tenant.ndjson update/ --format json")]
pub struct Args {
    /// The old users.
    #[arg(value_name = "OLD")]
    pub old: String,

    /// The new users.
    #[arg(value_name = "NEW")]
    pub new: String,

    /// What matches users [default: user_id; email for an update].
    #[arg(long, value_enum)]
    pub key: Option<Key>,

    /// NEW is an update (upsert rows): compare only its users and fields.
    #[arg(long)]
    pub partial: bool,

    /// Where and how the report is written (csv on stdout by default).
    #[command(flatten)]
    pub out: super::OutputArgs,
}

/// Runs `userport diff`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (old, _) = side(&args.old)?;
    let (new, manifest) = side(&args.new)?;
    let update = args.partial || manifest.as_ref().is_some_and(|m| m.kind == "upsert");
    // An update prepared for one connection touches only that connection's users.
    let old_connections = match &manifest {
        Some(m) if update => m
            .connections
            .keys()
            .filter(|c| *c != "(unknown)")
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let options = Options {
        key: args
            .key
            .unwrap_or(if update { Key::Email } else { Key::UserId }),
        partial: update,
        memory_limit: args.out.memory(diff::MEMORY_LIMIT),
        max_line: args.out.max_line_bytes,
        old_connections,
    };
    let target = args.out.target(Shape::Columns)?;
    let (destination, writer) = Destination::create(target.path.as_deref(), target.gzip)?;
    let name = destination.name();
    let schema = diff::report_schema();
    let mut sink = sink::create(
        target.format,
        Shape::Columns,
        schema.clone(),
        writer,
        &name,
        target.options,
    )?;
    let mut rows = Rows::default();
    let summary = diff::compare(old, new, options, |change| {
        rows.push(change);
        if rows.len >= 4096 {
            sink.write(&rows.take(&schema)?)?;
        }
        Ok(())
    })
    .await?;
    if rows.len > 0 {
        sink.write(&rows.take(&schema)?)?;
    }
    destination.commit(sink.finish()?)?;
    eprint!("{}", summary_text(&summary, update));
    Ok(if summary.equal() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The inputs of one side, and the manifest of a prepared folder.
fn side(arg: &str) -> Result<(Vec<Input>, Option<prepare::Manifest>), Error> {
    let path = Path::new(arg);
    let manifest = if path.is_dir() {
        Some(path.join(prepare::MANIFEST)).filter(|m| m.is_file())
    } else if path.file_name().is_some_and(|n| n == prepare::MANIFEST) {
        Some(PathBuf::from(path))
    } else {
        None
    };
    if path.is_dir() || manifest.is_some() {
        let kind = match &manifest {
            Some(m) => Some(prepare::read_manifest(m)?),
            None => None,
        };
        let inputs = files::resolve(path)?
            .into_iter()
            .map(|(p, _)| Input::Path(p))
            .collect();
        return Ok((inputs, kind));
    }
    Ok((vec![Input::parse(arg)], None))
}

/// Changes waiting to be written, as columns.
#[derive(Default)]
struct Rows {
    key: StringBuilder,
    change: StringBuilder,
    path: StringBuilder,
    old: StringBuilder,
    new: StringBuilder,
    len: usize,
}

impl Rows {
    fn push(&mut self, change: &Change) {
        self.key.append_value(&change.key);
        self.change.append_value(change.kind.as_str());
        self.path.append_value(&change.path);
        self.old
            .append_option(change.old.as_ref().map(|v| v.to_string()));
        self.new
            .append_option(change.new.as_ref().map(|v| v.to_string()));
        self.len += 1;
    }

    fn take(
        &mut self,
        schema: &Arc<datafusion::arrow::datatypes::Schema>,
    ) -> Result<RecordBatch, Error> {
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.key.finish()),
            Arc::new(self.change.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.old.finish()),
            Arc::new(self.new.finish()),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// The summary printed on stderr.
fn summary_text(s: &Summary, update: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if update {
        let _ = writeln!(
            out,
            "update of {} users: {} would change, {} unchanged, {} not in OLD",
            s.new_users, s.changed, s.unchanged, s.added
        );
    } else {
        let _ = writeln!(
            out,
            "old: {} users, new: {} users; added {}, removed {}, changed {}, unchanged {}",
            s.old_users, s.new_users, s.added, s.removed, s.changed, s.unchanged
        );
    }
    if !s.paths.is_empty() {
        let _ = writeln!(out, "changed fields (users):");
        let mut paths: Vec<(&String, &u64)> = s.paths.iter().collect();
        paths.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (path, n) in paths.iter().take(30) {
            let _ = writeln!(out, "  {path:<40} {n}");
        }
        if paths.len() > 30 {
            let _ = writeln!(out, "  … and {} more paths", paths.len() - 30);
        }
    }
    out
}
