//! Auth0 user-search queries (`--query`, Lucene syntax) → a DataFusion filter `Expr`.
//!
//! Text is parsed by [`parse`] (the one module that sees the grammar's types) into the
//! project's own [`ast`], then lowered: boolean structure to `AND` / `OR` / `NOT`, each field
//! test to a `search_match(value, spec)` call. Auth0's rules apply: `email`, `name`,
//! `given_name`, `family_name`, `nickname` (and `email.domain`) compare without regard to
//! case, other fields exactly; a test on an array holds when any element passes; ranges
//! compare numbers as numbers and dates as dates.

pub mod ast;
pub mod parse;

use std::sync::Arc;

use datafusion::arrow::array::BooleanBuilder;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, col,
    lit,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::js::{Value, date, ops};
use crate::json::Step;
use crate::source::schema::{self, EXTRA};
use ast::{Leaf, Piece, Query, Test};

/// Fields whose values Auth0 compares without regard to case.
const CASE_INSENSITIVE: &[&str] = &["email", "name", "given_name", "family_name", "nickname"];

/// A query parsed and lowered.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The parsed query.
    pub query: Query,
    /// The filter.
    pub expr: Expr,
}

/// Parses `text` and lowers it to a filter; `context` names the argument in errors.
///
/// ```
/// let q = userport::search::compile("logins_count:>10 AND NOT blocked:true", "--query").unwrap();
/// let sql = datafusion::sql::unparser::expr_to_sql(&q.expr).unwrap().to_string();
/// assert!(sql.starts_with("(search_match(logins_count, "), "{sql}");
/// ```
pub fn compile(text: &str, context: &str) -> Result<Compiled> {
    let query = parse::parse(text).map_err(|e| {
        let message = match e.offset {
            Some(at) => format!(
                "{} (at character {})\n  {text}\n  {}^",
                e.message,
                at + 1,
                " ".repeat(text.get(..at).map_or(0, |s| s.chars().count()))
            ),
            None => format!("{}\n  {text}", e.message),
        };
        Error::usage(context, message)
    })?;
    let expr = lower(&query);
    Ok(Compiled { query, expr })
}

fn lower(query: &Query) -> Expr {
    match query {
        Query::All => lit(true),
        Query::Leaf(leaf) => lower_leaf(leaf),
        Query::And(qs) => balanced(qs, Expr::and).unwrap_or(lit(true)),
        Query::Or(qs) => balanced(qs, Expr::or).unwrap_or(lit(false)),
        Query::Not(q) => datafusion::logical_expr::not(lower(q)),
    }
}

/// The queries joined by `join` as a balanced tree: a chain of thousands of terms stays a
/// few levels deep for DataFusion's recursive passes.
fn balanced(queries: &[Query], join: fn(Expr, Expr) -> Expr) -> Option<Expr> {
    match queries {
        [] => None,
        [one] => Some(lower(one)),
        _ => {
            let (left, right) = queries.split_at(queries.len() / 2);
            Some(join(balanced(left, join)?, balanced(right, join)?))
        }
    }
}

/// What `search_match` is told about one field test.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Spec {
    /// Steps below the column (arrays are entered element by element).
    path: Vec<String>,
    test: Test,
    /// Compare without regard to case.
    #[serde(default)]
    ci: bool,
    /// The domain of an email address (`email.domain`).
    #[serde(default)]
    domain: bool,
}

fn lower_leaf(leaf: &Leaf) -> Expr {
    let mut parts: Vec<&str> = leaf.field.split('.').collect();
    let (root, domain) = match parts.as_slice() {
        ["email", "domain"] => {
            parts.truncate(1);
            (col("email"), true)
        }
        [first, ..] if schema::column(first).is_some() => (col(*first), false),
        _ => (col(EXTRA), false),
    };
    let path: Vec<String> = if schema::column(parts[0]).is_some() {
        parts[1..].iter().map(|s| s.to_string()).collect()
    } else {
        parts.iter().map(|s| s.to_string()).collect()
    };
    let spec = Spec {
        path,
        test: leaf.test.clone(),
        ci: domain || CASE_INSENSITIVE.contains(&parts[0]),
        domain,
    };
    // A spec of strings, booleans and numbers always serializes.
    let spec = serde_json::to_string(&spec).unwrap_or_default();
    search_match_udf().call(vec![root, lit(spec)])
}

/// The `search_match(value, spec)` UDF.
pub fn search_match_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(SearchMatch {
        signature: Signature::any(2, Volatility::Immutable),
    }))
}

/// `search_match(value, spec)`: whether a user's field passes one test of a query.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SearchMatch {
    signature: Signature,
}

impl ScalarUDFImpl for SearchMatch {
    fn name(&self) -> &str {
        "search_match"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn return_field_from_args(
        &self,
        _args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> DfResult<FieldRef> {
        Ok(Arc::new(datafusion::arrow::datatypes::Field::new(
            self.name(),
            DataType::Boolean,
            false,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let spec: Spec = match &args.args[1] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(s))) => match serde_json::from_str(s) {
                Ok(spec) => spec,
                Err(e) => return exec_err!("search_match: bad spec: {e}"),
            },
            _ => return exec_err!("search_match: the spec must be a constant"),
        };
        let column = crate::functions::ValueColumn::new(&args.args[0], &args.arg_fields[0])?;
        let mut out = BooleanBuilder::with_capacity(args.number_rows);
        let mut values = Vec::new();
        for row in 0..args.number_rows {
            values.clear();
            collect(&column.value(row), &spec.path, &mut values);
            out.append_value(passes(&spec, &values));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// The values at `path` below `value`, entering arrays element by element.
fn collect<'a>(value: &Value<'a>, path: &[String], out: &mut Vec<Value<'static>>) {
    match (value, path.split_first()) {
        (Value::Array(_), _) => {
            for element in value.elements() {
                collect(&element.into_owned(), path, out);
            }
        }
        (Value::Undefined | Value::Null, _) => {}
        (_, None) => out.push(value.clone().into_owned()),
        (Value::Object(_), Some((key, rest))) => {
            let member = ops::member(value, &Step::Key(key.clone())).into_owned();
            collect(&member, rest, out);
        }
        _ => {}
    }
}

/// A value's text for comparisons (strings, numbers, booleans; `None` for objects).
fn text(value: &Value<'_>, spec: &Spec) -> Option<String> {
    let t = match value {
        Value::Str(s) => s.to_string(),
        Value::Num(_) | Value::Bool(_) => value.to_js_string().into_owned(),
        _ => return None,
    };
    let t = if spec.domain {
        t.rsplit_once('@')?.1.to_string()
    } else {
        t
    };
    Some(if spec.ci { t.to_lowercase() } else { t })
}

fn passes(spec: &Spec, values: &[Value<'_>]) -> bool {
    let fold = |s: &str| {
        if spec.ci {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    match &spec.test {
        Test::Exists => !values.is_empty(),
        Test::Equals(term) => {
            let term = fold(term);
            values
                .iter()
                .any(|v| text(v, spec).is_some_and(|t| t == term))
        }
        Test::Wildcard(pieces) => {
            let pieces: Vec<Piece> = pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => Piece::Text(fold(t)),
                    other => other.clone(),
                })
                .collect();
            values.iter().any(|v| {
                text(v, spec).is_some_and(|t| glob(&pieces, &t.chars().collect::<Vec<_>>()))
            })
        }
        Test::Range { lower, upper } => values.iter().any(|v| in_range(v, spec, lower, upper)),
    }
}

/// Whether `text` matches the pattern, in time proportional to the text's length times the
/// pattern's (never exponential: a `*` is retried only from the last one seen, since a
/// later `*` can absorb whatever an earlier one would have).
fn glob(pieces: &[Piece], text: &[char]) -> bool {
    // The pattern as single characters: Some(c), None for `?`; `*` cuts it into segments.
    let mut pattern: Vec<Option<Option<char>>> = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => pattern.extend(t.chars().map(|c| Some(Some(c)))),
            Piece::One => pattern.push(Some(None)),
            Piece::Any => pattern.push(None),
        }
    }
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it now covers up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Some(expected)) if expected.is_none_or(|c| c == text[t]) => {
                p += 1;
                t += 1;
            }
            Some(None) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                // The last `*` takes one more character, and the rest is tried again.
                Some((at, covered)) => {
                    star = Some((at, covered + 1));
                    p = at + 1;
                    t = covered + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(Option::is_none)
}

/// Numbers compare as numbers, dates as dates, anything else as text.
fn in_range(
    value: &Value<'_>,
    spec: &Spec,
    lower: &Option<(String, bool)>,
    upper: &Option<(String, bool)>,
) -> bool {
    let bounds = [lower, upper];
    let key: Option<(f64, Vec<f64>)> = match value {
        Value::Num(n) => {
            let b: Option<Vec<f64>> = bounds
                .iter()
                .filter_map(|b| b.as_ref())
                .map(|(t, _)| t.trim().parse::<f64>().ok())
                .collect();
            b.map(|b| (*n, b))
        }
        Value::Str(s) if !date::parse(s).is_nan() => {
            let b: Option<Vec<f64>> = bounds
                .iter()
                .filter_map(|b| b.as_ref())
                .map(|(t, _)| Some(date::parse(t.trim())).filter(|d| !d.is_nan()))
                .collect();
            b.map(|b| (date::parse(s), b))
        }
        _ => None,
    };
    let ordering = |x: &f64, y: &f64| x.partial_cmp(y);
    let check = |cmp: Option<std::cmp::Ordering>, inclusive: bool, want: std::cmp::Ordering| {
        cmp == Some(want) || (inclusive && cmp == Some(std::cmp::Ordering::Equal))
    };
    let mut bound_values = key.as_ref().map(|(_, b)| b.iter());
    let mut ok = true;
    for (bound, want) in [
        (lower, std::cmp::Ordering::Greater),
        (upper, std::cmp::Ordering::Less),
    ] {
        let Some((bound_text, inclusive)) = bound else {
            continue;
        };
        let cmp = match (&key, bound_values.as_mut()) {
            (Some((v, _)), Some(it)) => it.next().and_then(|b| ordering(v, b)),
            _ => {
                let Some(t) = text(value, spec) else {
                    return false;
                };
                let b = if spec.ci {
                    bound_text.to_lowercase()
                } else {
                    bound_text.clone()
                };
                Some(t.cmp(&b))
            }
        };
        ok &= check(cmp, *inclusive, want);
    }
    ok
}
