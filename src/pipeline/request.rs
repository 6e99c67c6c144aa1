//! One request for users, compiled once: the columns (or whole users), the conditions, the
//! sort keys and a limit, planned as one DataFrame over the scan of the users. The command
//! line turns its options into a [`Request`]; `export`, `prepare` and `--explain` plan it
//! the same way.

use datafusion::common::Column;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{DataFrame, SessionContext};

use super::scan::UsersTable;
use crate::error::{Error, Result};
use crate::expr::Compiled;
use crate::source::Source;

/// A condition on users, with how the user gave it (named in errors).
#[derive(Debug, Clone)]
pub enum Condition {
    /// An Auth0 user-search query (Lucene syntax).
    Search {
        /// The query.
        text: String,
        /// Where it came from.
        context: String,
    },
    /// A SQL condition over the table of users.
    Sql {
        /// The condition.
        text: String,
        /// Where it came from.
        context: String,
    },
}

/// One output column: its name and its compiled expression.
#[derive(Debug, Clone)]
pub struct OutputColumn {
    /// The column's name.
    pub name: String,
    /// What it holds.
    pub compiled: Compiled,
}

/// A sort key: a path or expression, ascending or descending.
#[derive(Debug, Clone)]
pub struct SortKey {
    /// The path or expression, compiled.
    pub compiled: Compiled,
    /// Descending?
    pub descending: bool,
}

impl SortKey {
    /// Reads `FIELD[:asc|desc]`; `context` names it in errors.
    pub fn parse(arg: &str, context: &str) -> Result<SortKey> {
        let (text, descending) = match arg.rsplit_once(':') {
            Some((field, dir)) if dir.trim().eq_ignore_ascii_case("desc") => (field, true),
            Some((field, dir)) if dir.trim().eq_ignore_ascii_case("asc") => (field, false),
            _ => (arg, false),
        };
        let compiled = crate::expr::compile(text.trim(), context)?;
        Ok(SortKey {
            compiled,
            descending,
        })
    }

    /// The expression to sort by: a typed column itself, any other value by its
    /// `js_sort_key` (numbers, then strings, then booleans, then objects).
    pub fn key(&self) -> Expr {
        if self.compiled.typed_column().is_some() {
            self.compiled.expr.clone()
        } else {
            crate::functions::sort_key_udf().call(vec![self.compiled.expr.clone()])
        }
    }
}

/// What to read from the users and how to hand it on.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The output columns, in order; none: whole users.
    pub columns: Vec<OutputColumn>,
    /// Users must meet all of them.
    pub conditions: Vec<Condition>,
    /// Sort keys, the first the main one; absent values sort last, ties keep input order.
    pub sort: Vec<SortKey>,
    /// At most this many users (after the conditions and the sort).
    pub limit: Option<usize>,
    /// With no columns: each user as one column of this name, its JSON text as the input
    /// holds it (no column of the user is decoded for it), instead of the canonical columns.
    pub text: Option<String>,
    /// With `text`: each user's layout as one more column, after the text (its members as
    /// the scan's checking pass found them, see [`crate::json::skim::Laid`]).
    pub layout: Option<Layout>,
}

/// The layout a [`Request`] asks for with each user's text.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The column's name.
    pub name: String,
    /// The members whose values are looked at for repeated and marked keys (the records of
    /// the others say nothing of keys).
    pub checked: Vec<String>,
}

/// A planned request: the DataFrame and the filter compiled from its conditions.
pub struct Planned {
    /// The plan.
    pub frame: DataFrame,
    /// The conditions as one expression.
    pub filter: Option<Expr>,
}

/// A name for an internal column that is none of `taken`.
fn fresh(base: &str, taken: &[String]) -> String {
    (1..)
        .map(|i| {
            if i == 1 {
                base.to_string()
            } else {
                format!("{base} {i}")
            }
        })
        .find(|name| !taken.contains(name))
        .unwrap_or_else(|| base.to_string())
}

/// A `--where` condition over `frame`'s users. One without a subquery is parsed as an
/// expression; one with a subquery (`email IN (SELECT email FROM blocklist)`) is planned as
/// the filter of `SELECT * FROM users WHERE condition` (an AST built around the parsed
/// condition), so that its subqueries see the session's tables, which an expression parsed
/// alone does not.
async fn sql_condition(frame: &DataFrame, text: &str) -> datafusion::error::Result<Expr> {
    use std::ops::ControlFlow;

    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::error::DataFusionError;
    use datafusion::logical_expr::LogicalPlan;
    use datafusion::sql::sqlparser::{ast, dialect::PostgreSqlDialect, parser::Parser};
    let dialect = PostgreSqlDialect {};
    let sql_error = |e: datafusion::sql::sqlparser::parser::ParserError| {
        DataFusionError::SQL(Box::new(e), None)
    };
    // Parsed here only to look for a subquery; any other condition, or a text that does not
    // parse, goes through DataFusion's own expression parser (and its messages).
    let parsed = Parser::new(&dialect)
        .try_with_sql(text)
        .and_then(|mut parser| {
            let expr = parser.parse_expr()?;
            parser.expect_token(&datafusion::sql::sqlparser::tokenizer::Token::EOF)?;
            Ok(expr)
        });
    let has_subquery = |condition: &ast::Expr| {
        ast::visit_expressions(condition, |e| match e {
            ast::Expr::Subquery(_) | ast::Expr::InSubquery { .. } | ast::Expr::Exists { .. } => {
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        })
        .is_break()
    };
    let Some(condition) = parsed.ok().filter(has_subquery) else {
        return frame.parse_sql_expr(text);
    };
    let mut statements = Parser::parse_sql(&dialect, "SELECT * FROM users").map_err(sql_error)?;
    let mut statement = statements.remove(0);
    if let ast::Statement::Query(query) = &mut statement
        && let ast::SetExpr::Select(select) = query.body.as_mut()
    {
        select.selection = Some(condition);
    }
    let (state, _) = frame.clone().into_parts();
    let plan = state
        .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
            statement,
        )))
        .await?;
    let mut predicate = None;
    plan.apply(|node| {
        Ok(match node {
            LogicalPlan::Filter(filter) => {
                predicate = Some(filter.predicate.clone());
                TreeNodeRecursion::Stop
            }
            _ => TreeNodeRecursion::Continue,
        })
    })?;
    predicate.ok_or_else(|| DataFusionError::Plan("the condition planned to no filter".into()))
}

impl Request {
    /// Plans the request over the users of `source`, in `ctx`.
    pub async fn plan(&self, ctx: &SessionContext, source: &Source) -> Result<Planned> {
        let names: Vec<String> = self.columns.iter().map(|c| c.name.clone()).collect();
        let ordinal = fresh("input order", &names);
        let mut table = if self.sort.is_empty() {
            UsersTable::new(source.clone())
        } else {
            UsersTable::with_ordinal(source.clone(), &ordinal)
        };
        if let Some(text) = self.text.as_deref().filter(|_| self.columns.is_empty()) {
            table = table.with_text(text);
            if let Some(layout) = &self.layout {
                table = table
                    .with_layout(&layout.name, &layout.checked)
                    .ok_or_else(|| {
                        Error::Internal("a layout asked for without the text before it".into())
                    })?;
            }
        }
        let mut frame = table.frame(ctx)?;
        let filter = self.filter(&frame).await?;
        if let Some(filter) = &filter {
            frame = frame.filter(filter.clone())?;
        }
        let frame = self.order(frame, &ordinal)?;
        Ok(Planned { frame, filter })
    }

    /// The conditions as one expression over `frame`'s users.
    async fn filter(&self, frame: &DataFrame) -> Result<Option<Expr>> {
        let mut filter: Option<Expr> = None;
        for condition in &self.conditions {
            let expr = match condition {
                Condition::Search { text, context } => crate::search::compile(text, context)?.expr,
                Condition::Sql { text, context } => sql_condition(frame, text)
                    .await
                    .map_err(|e| Error::usage(context, e.strip_backtrace()))?,
            };
            filter = Some(match filter {
                Some(before) => before.and(expr),
                None => expr,
            });
        }
        Ok(filter)
    }

    /// Sorts `frame` by the keys (absent values last, ties by the column `ordinal`), keeps
    /// the first rows, and projects onto the columns (whole users without). With columns,
    /// the projection comes before the sort, so that only the output and the keys are
    /// sorted (and spilled), and it runs in the scan's decoding threads.
    fn order(&self, frame: DataFrame, ordinal: &str) -> Result<DataFrame> {
        let by_name = |name: &str| Expr::Column(Column::from_name(name));
        let text = self.text.as_ref().filter(|_| self.columns.is_empty());
        let mut output: Vec<(String, Expr)> = if let Some(text) = text {
            std::iter::once(text)
                .chain(self.layout.as_ref().map(|layout| &layout.name))
                .map(|name| (name.clone(), by_name(name)))
                .collect()
        } else if self.columns.is_empty() {
            frame
                .schema()
                .fields()
                .iter()
                .filter(|f| f.name() != ordinal)
                .map(|f| (f.name().clone(), by_name(f.name())))
                .collect()
        } else {
            self.columns
                .iter()
                .map(|c| (c.name.clone(), c.compiled.expr.clone()))
                .collect()
        };
        if self.sort.is_empty() {
            let frame = match self.limit {
                Some(n) => frame.limit(0, Some(n))?,
                None => frame,
            };
            if self.columns.is_empty() && text.is_none() {
                return Ok(frame);
            }
            return Ok(frame.select(output.into_iter().map(|(n, e)| e.alias(n)))?);
        }
        let names: Vec<String> = output.iter().map(|(n, _)| n.clone()).collect();
        let mut taken = names.clone();
        taken.push(ordinal.to_string());
        let mut keys = Vec::new();
        for (i, key) in self.sort.iter().enumerate() {
            let name = fresh(&format!("sort key {}", i + 1), &taken);
            taken.push(name.clone());
            output.push((name.clone(), key.key()));
            keys.push(by_name(&name).sort(!key.descending, false));
        }
        output.push((ordinal.to_string(), by_name(ordinal)));
        keys.push(by_name(ordinal).sort(true, false));
        let frame = frame.select(output.into_iter().map(|(n, e)| e.alias(n)))?;
        let mut frame = frame.sort(keys)?;
        if let Some(n) = self.limit {
            // The optimizer turns a limit over a sort into a top-N sort.
            frame = frame.limit(0, Some(n))?;
        }
        Ok(frame.select(names.iter().map(|n| by_name(n)))?)
    }
}
