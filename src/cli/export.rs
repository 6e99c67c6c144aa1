//! `userport export`: users from export files → a report of chosen columns, or whole users.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::Error;
use crate::expr::{self, Field};
use crate::pipeline;
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

    /// Show each column's expression as parsed and as the SQL that runs, then the logical
    /// and physical plans; read no user.
    #[arg(long)]
    pub explain: bool,
}

/// Runs `userport export`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let fields = columns(&args)?;
    let compiled = fields
        .iter()
        .map(|(field, context)| expr::compile(&field.text, context))
        .collect::<Result<Vec<_>, Error>>()?;
    check_unique(&fields)?;
    let shape = if compiled.is_empty() {
        Shape::Users
    } else {
        Shape::Columns
    };
    let target = args.out.target(shape)?;

    let inputs = if args.inputs.is_empty() {
        if args.explain {
            return Err(Error::usage("--explain", "needs an INPUT (it reads no user)").into());
        }
        // Auth0 can export just the columns asked for when each is an attribute path (with
        // keys it can name) and nothing else (a condition, a sort) needs the rest of the user.
        let paths: Vec<Option<crate::auth0::export::FieldPath>> = compiled
            .iter()
            .map(|c| match &c.node {
                expr::ast::Node::Path(p)
                    if p.steps.iter().all(|s| match s {
                        crate::json::Step::Key(k) => {
                            !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_')
                        }
                        crate::json::Step::Index(_) => true,
                    }) =>
                {
                    Some(crate::auth0::export::FieldPath {
                        name: p.to_string(),
                        root: p.root.clone(),
                        steps: p.steps.clone(),
                    })
                }
                _ => None,
            })
            .collect();
        let plain = shape == Shape::Columns
            && args.query.is_none()
            && args.where_sql.is_none()
            && args.sort.is_empty()
            && paths.iter().all(Option::is_some);
        let fields = plain.then(|| {
            let mut fields: Vec<crate::auth0::export::FieldPath> = Vec::new();
            for path in paths.into_iter().flatten() {
                if !fields.contains(&path) {
                    fields.push(path);
                }
            }
            fields
        });
        vec![tenant_export(&args, fields).await?]
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
    let (ctx, _progress) = super::open_users(
        inputs,
        args.out.limits(pipeline::DEFAULT_MEMORY_LIMIT),
        args.out.quiet || args.explain,
        super::Reads::Once,
    )?;
    let (mut frame, filter) =
        pipeline::filtered(&ctx, args.query.as_deref(), args.where_sql.as_deref()).await?;
    let sorts = args
        .sort
        .iter()
        .map(|arg| pipeline::SortKey::parse(arg))
        .collect::<Result<Vec<_>, Error>>()?;
    let columns: Option<Vec<(String, datafusion::logical_expr::Expr)>> = (shape == Shape::Columns)
        .then(|| {
            fields
                .iter()
                .zip(&compiled)
                .map(|((field, _), c)| (field.name.clone(), c.expr.clone()))
                .collect()
        });
    frame = pipeline::order(frame, &sorts, args.limit, columns)?;
    if args.explain {
        let columns: Vec<(&str, &expr::Compiled)> = fields
            .iter()
            .zip(&compiled)
            .map(|((field, _), c)| (field.name.as_str(), c))
            .collect();
        let text = pipeline::explain(&columns, filter.as_ref(), &sorts, frame).await?;
        super::print(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    pipeline::write(frame, &target).await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs an export job on the tenant; its download is the input.
async fn tenant_export(
    args: &Args,
    fields: Option<Vec<crate::auth0::export::FieldPath>>,
) -> Result<Input, Error> {
    let client = std::sync::Arc::new(args.tenant.client()?);
    let connection_id = match &args.connection {
        Some(name) => Some(client.connection_id(name).await?),
        None => None,
    };
    let request = crate::auth0::export::Request {
        connection_id,
        fields,
        save_raw: args.save_raw.clone(),
        progress: !args.out.quiet,
        poll: super::poll_interval(),
    };
    crate::auth0::export::export(client, request).await
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
