//! `userport export`: users from export files → a report of chosen columns, or whole users.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::auth0::export::FieldPath;
use crate::error::Error;
use crate::expr::{self, Field};
use crate::pipeline::{self, OutputColumn, Request, SortKey};
use crate::sink::Shape;
use crate::source::Input;

/// Arguments of `userport export`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Columns: --default-fields first, then the entries of --fields, then each --field in order. \
With none of them, each row is the whole user.

Examples:
  userport export users.ndjson --default-fields -o users.csv
  userport export tenant.json.gz --field email --field 'Plan=user_metadata.plan' -o report.csv
  userport export tenant.ndjson -o tenant.parquet
  cat tenant.ndjson | userport export - --fields fields.json --format json
  userport export tenant.ndjson --where 'logins_count = 0' --sort created_at:desc --limit 100")]
pub struct Args {
    /// Export files: NDJSON (one user a line) or a JSON array, gzipped or not; `-` is stdin.
    /// None: run an export job on the tenant (--domain) and read its result.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Foreign tables beside the users, for conditions such as
    /// `--where "email IN (SELECT email FROM blocklist)"`.
    #[command(flatten)]
    pub tables: super::TableArgs,

    /// With no INPUT: export only the users of this connection.
    #[arg(long, value_name = "NAME")]
    pub connection: Option<String>,

    /// With no INPUT: keep the tenant's download (gzipped NDJSON) in this file too.
    #[arg(long, value_name = "FILE")]
    pub save_raw: Option<PathBuf>,

    /// The tenant, with no INPUT.
    #[command(flatten)]
    pub tenant: super::TenantArgs,

    /// A column: `[COLUMN=]PATH`, e.g. `email`, `Plan=user_metadata.plan`,
    /// `identities[0].connection` (`user.` prefix optional). Repeatable, in order.
    #[arg(long = "field", value_name = "[COLUMN=]EXPR")]
    pub fields: Vec<String>,

    /// Columns from a JSON file in Auth0's export format:
    /// `[{"name": "user_metadata.plan", "export_as": "Plan"}]`.
    #[arg(long = "fields", value_name = "FILE")]
    pub fields_file: Option<PathBuf>,

    /// The eleven default columns of the retired User Import / Export extension.
    #[arg(long)]
    pub default_fields: bool,

    /// Where and how the result is written.
    #[command(flatten)]
    pub out: super::OutputArgs,

    /// Keep the users that match an Auth0 user-search query (Lucene syntax), e.g.
    /// `email.domain:example.com AND logins_count:[5 TO *]`.
    #[arg(long, value_name = "LUCENE")]
    pub query: Option<String>,

    /// Keep the users for whom this SQL condition over the `users` table holds, e.g.
    /// `logins_count > 10 AND user_metadata->>'plan' = 'pro'`.
    #[arg(long = "where", value_name = "SQL")]
    pub where_sql: Option<String>,

    /// Sort by a path or expression, ascending unless `:desc`; repeatable (the first is the
    /// main key). Absent values sort last; ties keep the input order.
    #[arg(long, value_name = "FIELD[:asc|desc]")]
    pub sort: Vec<String>,

    /// At most N users (after the condition and the sort).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// Runs `userport export`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let fields = columns(&args)?;
    check_unique(&fields)?;
    let mut request = Request {
        columns: fields
            .iter()
            .map(|(field, context)| {
                Ok(OutputColumn {
                    name: field.name.clone(),
                    compiled: expr::compile(&field.text, context)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?,
        conditions: super::conditions(args.query.as_deref(), args.where_sql.as_deref()),
        limit: args.limit,
        ..Request::default()
    };
    for arg in &args.sort {
        request
            .sort
            .push(SortKey::parse(arg, &format!("--sort {arg}"))?);
    }
    let shape = if request.columns.is_empty() {
        Shape::Users
    } else {
        Shape::Columns
    };
    let target = args.out.target(shape)?;

    let inputs = if args.inputs.is_empty() {
        if args.out.plan.explain.is_some() {
            return Err(Error::usage("--explain", "needs an INPUT (it reads no user)").into());
        }
        vec![tenant_export(&args, tenant_fields(&request)).await?]
    } else {
        if args.connection.is_some() || args.save_raw.is_some() {
            return Err(Error::usage(
                "--connection / --save-raw",
                "only for an export from the tenant (no INPUT)",
            )
            .into());
        }
        args.inputs.iter().map(|a| Input::parse(a)).collect()
    };
    let users = super::open_users(
        inputs,
        &args.tables,
        args.out.limits(pipeline::DEFAULT_MEMORY_LIMIT),
        args.out.quiet || args.out.plan.explain == Some(super::Explain::Plan),
        super::Reads::Once,
    )
    .await?;
    let planned = request.plan(&users.ctx, &users.source).await?;
    if let Some(mode) = args.out.plan.explain {
        return super::explain(Some(&request), planned, mode).await;
    }
    pipeline::write(planned.frame, &target).await?;
    Ok(ExitCode::SUCCESS)
}

/// The fields to ask of the tenant's export job: just the columns, when each is an
/// attribute path Auth0 can name and nothing else (a condition, a sort) needs the rest of
/// the user; `None` for whole users.
fn tenant_fields(request: &Request) -> Option<Vec<FieldPath>> {
    if request.columns.is_empty() || !request.conditions.is_empty() || !request.sort.is_empty() {
        return None;
    }
    let mut fields: Vec<FieldPath> = Vec::new();
    for column in &request.columns {
        let path = column.compiled.attribute_path()?;
        let field = FieldPath::new(path.to_string(), &path.root, &path.steps)?;
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    Some(fields)
}

/// Runs an export job on the tenant; its download is the input.
async fn tenant_export(args: &Args, fields: Option<Vec<FieldPath>>) -> Result<Input, Error> {
    let client = std::sync::Arc::new(args.tenant.client()?);
    let connection_id = match &args.connection {
        Some(name) => Some(client.connection_id(name).await?),
        None => None,
    };
    let request = crate::auth0::export::Request {
        connection_id,
        fields: fields.clone(),
        progress: super::progress::export_bars(!args.out.quiet),
        poll: super::poll_interval(),
    };
    let download = crate::auth0::export::export(client, request).await?;
    // The download as served, kept whole or not at all.
    let body: Box<dyn std::io::Read + Send> = match &args.save_raw {
        Some(path) => Box::new(crate::sink::output::Tee::new(download.body, path)?),
        None => download.body,
    };
    let fields = fields.unwrap_or_default();
    let users = if fields.iter().any(|f| !f.steps.is_empty()) {
        let plain = crate::source::input::inflated(body).map_err(|source| Error::Read {
            path: download.name.clone(),
            source,
        })?;
        crate::auth0::export::users(plain, &fields)
    } else {
        body
    };
    Ok(Input::reader(download.name, users))
}

/// Every requested column with the argument it came from (for messages).
fn columns(args: &Args) -> Result<Vec<(Field, String)>, Error> {
    let mut columns = Vec::new();
    if args.default_fields {
        for field in expr::default_fields() {
            columns.push((field, "--default-fields".to_string()));
        }
    }
    if let Some(path) = &args.fields_file {
        let context = format!("--fields {}", path.display());
        for field in expr::read_fields_file(path)? {
            let context = format!("{context}: {}", field.text);
            columns.push((field, context));
        }
    }
    for arg in &args.fields {
        let field = Field::from_arg(arg);
        if field.name.is_empty() || field.text.is_empty() {
            return Err(Error::usage(
                format!("--field {arg}"),
                "expected [COLUMN=]EXPR with a non-empty column name and expression",
            ));
        }
        columns.push((field, format!("--field {arg}")));
    }
    Ok(columns)
}

/// Two columns with the same name would make an ambiguous report.
fn check_unique(columns: &[(Field, String)]) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    for (field, context) in columns {
        if !seen.insert(field.name.as_str()) {
            return Err(Error::usage(
                context,
                format!(
                    "the column name \"{}\" is used twice; name one of them with COLUMN=",
                    field.name
                ),
            ));
        }
    }
    Ok(())
}
