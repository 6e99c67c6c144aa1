//! Field expressions: `[COLUMN=]EXPR` arguments and `--fields` files → DataFusion `Expr`.
//!
//! Text is parsed into the project's own [`ast`] (by [`parse`], the one module that sees the
//! JavaScript parser), bound against the canonical user schema and lowered to an `Expr`:
//! a typed column, or `json_path(…)` into a JSON text column.

pub mod ast;
pub mod parse;

use std::path::Path as FsPath;

use datafusion::common::ScalarValue;
use datafusion::common::metadata::FieldMetadata;
use datafusion::logical_expr::{Expr, col, lit, lit_with_metadata};

use crate::error::{Error, Result};
use crate::functions::{JsOp, js, json_path};
use crate::json::Step;
use crate::source::schema::{self, EXTRA, JSON_MARKER, Kind};
use ast::{Literal, Node, Path, Span};

/// One output column: its name and the expression that computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The column's name in the output.
    pub name: String,
    /// The expression's text (an attribute path or a JavaScript-like expression).
    pub text: String,
}

impl Field {
    /// Reads `[COLUMN=]EXPR`: the split is at the first `=` that is not part of an operator
    /// (`==`, `===`, `!=`, `<=`, `>=`, `=>`); without one, the column is named after the text.
    pub fn from_arg(arg: &str) -> Field {
        match split_at_assignment(arg) {
            Some(at) => Field {
                name: arg[..at].trim().to_string(),
                text: arg[at + 1..].trim().to_string(),
            },
            None => Field {
                name: arg.trim().to_string(),
                text: arg.trim().to_string(),
            },
        }
    }
}

/// The byte offset of the first `=` that is not part of a comparison or arrow operator.
fn split_at_assignment(arg: &str) -> Option<usize> {
    let bytes = arg.as_bytes();
    (0..bytes.len()).find(|&i| {
        bytes[i] == b'='
            && !matches!(bytes.get(i + 1), Some(b'=' | b'>'))
            && !(i > 0 && matches!(bytes[i - 1], b'=' | b'!' | b'<' | b'>'))
    })
}

/// The eleven default columns of the retired User Import / Export extension, in its order.
pub fn default_fields() -> Vec<Field> {
    [
        ("user_id", "Id"),
        ("given_name", "Given Name"),
        ("family_name", "Family Name"),
        ("nickname", "Nickname"),
        ("name", "Name"),
        ("email", "Email"),
        ("email_verified", "Email Verified"),
        ("picture", "Picture"),
        ("identities[0].connection", "Connection"),
        ("created_at", "Created At"),
        ("updated_at", "Updated At"),
    ]
    .into_iter()
    .map(|(text, name)| Field {
        name: name.to_string(),
        text: text.to_string(),
    })
    .collect()
}

/// Reads Auth0's export `fields` JSON: `[{"name": "...", "export_as": "..."}]`.
pub fn read_fields_file(path: &FsPath) -> Result<Vec<Field>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        name: String,
        export_as: Option<String>,
    }
    let context = format!("--fields {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    let entries: Vec<Entry> = serde_json::from_str(&text).map_err(|e| {
        Error::usage(
            &context,
            format!("expected a JSON array of {{\"name\": \"…\", \"export_as\": \"…\"}}: {e}"),
        )
    })?;
    if entries.is_empty() {
        return Err(Error::usage(&context, "the list of fields is empty"));
    }
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            if entry.name.trim().is_empty() {
                return Err(Error::usage(
                    &context,
                    format!("entry {i}: \"name\" is empty"),
                ));
            }
            Ok(Field {
                name: entry.export_as.unwrap_or_else(|| entry.name.clone()),
                text: entry.name,
            })
        })
        .collect()
}

/// A field expression parsed and lowered to DataFusion.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The parsed expression.
    pub node: Node,
    /// The DataFusion expression, without the column alias.
    pub expr: Expr,
}

impl Compiled {
    /// The attribute path the expression is, when it is nothing but one
    /// (`user_metadata.plan`, `identities[0].connection`).
    pub fn attribute_path(&self) -> Option<&ast::Path> {
        match &self.node {
            Node::Path(path) => Some(path),
            _ => None,
        }
    }

    /// The typed column (text, boolean or integer, not JSON) the expression is, when it is
    /// nothing but one: its values sort as they are.
    pub fn typed_column(&self) -> Option<usize> {
        let path = self.attribute_path()?;
        match schema::column(&path.root) {
            Some((index, kind)) if path.steps.is_empty() && kind != Kind::Json => Some(index),
            _ => None,
        }
    }
}

/// Parses `text` and lowers it over the canonical user schema. `context` names the argument
/// in error messages (for example `--field Plan=user_metadata.plan`).
///
/// ```
/// let plain = userport::expr::compile("user.identities[0].connection", "--field").unwrap();
/// let sql = datafusion::sql::unparser::expr_to_sql(&plain.expr).unwrap();
/// assert_eq!(sql.to_string(), "json_path(identities, 0, 'connection')");
///
/// let js = userport::expr::compile("user.user_metadata.name || user.name", "--field").unwrap();
/// let sql = datafusion::sql::unparser::expr_to_sql(&js.expr).unwrap();
/// assert_eq!(
///     sql.to_string(),
///     "js_or(json_path(user_metadata, 'name'), js_defined(\"name\", json_path(_extra, 'name')))"
/// );
/// ```
pub fn compile(text: &str, context: &str) -> Result<Compiled> {
    let node = parse::parse(text).map_err(|e| located(context, text, e.span, &e.message))?;
    let expr = match &node {
        // A plain path keeps its column's type (and its speed).
        Node::Path(path) => lower_path(path),
        other => lower(other),
    };
    Ok(Compiled { node, expr })
}

/// Lowers a node to a DataFusion expression.
fn lower(node: &Node) -> Expr {
    let boxed = |op: JsOp, args: &[&Node]| js(op, args.iter().map(|n| lower(n)).collect());
    match node {
        Node::Path(path) => match schema::column(&path.root) {
            // Inside an expression a typed attribute must tell null from absent: an explicit
            // null (or a value of another type) is kept in `_extra`.
            Some((_, kind)) if kind != Kind::Json && path.steps.is_empty() => js(
                JsOp::Defined,
                vec![
                    col(path.root.as_str()),
                    json_path(col(EXTRA), &[Step::Key(path.root.clone())]),
                ],
            ),
            _ => lower_path(path),
        },
        Node::Literal(Literal::Str(s)) => lit(s.as_str()),
        Node::Literal(Literal::Num(n)) => lit(*n),
        Node::Literal(Literal::Bool(b)) => lit(*b),
        Node::Literal(Literal::Null) => json_lit(Some("null")),
        Node::Literal(Literal::Undefined) => json_lit(None),
        Node::Template { quasis, exprs } => {
            let mut args = Vec::new();
            for (i, quasi) in quasis.iter().enumerate() {
                if !quasi.is_empty() {
                    args.push(lit(quasi.as_str()));
                }
                if let Some(e) = exprs.get(i) {
                    args.push(lower(e));
                }
            }
            js(JsOp::Concat, args)
        }
        Node::Unary(op, a) => boxed(JsOp::Unary(*op), &[a]),
        Node::Binary(op, a, b) => boxed(JsOp::Binary(*op), &[a, b]),
        Node::Logical(op, operands) => js(JsOp::Logical(*op), operands.iter().map(lower).collect()),
        Node::Conditional(t, a, b) => boxed(JsOp::Cond, &[t, a, b]),
        Node::Member(object, step) => js(JsOp::Get, vec![lower(object), step_lit(step)]),
        Node::Method(receiver, name, args) => {
            let mut all = vec![lower(receiver), lit(name.as_str())];
            all.extend(args.iter().map(lower));
            js(JsOp::Call, all)
        }
        Node::Function(name, args) => {
            let mut all = vec![lit(name.as_str())];
            all.extend(args.iter().map(lower));
            js(JsOp::Fn, all)
        }
    }
}

/// A step as a constant argument.
fn step_lit(step: &Step) -> Expr {
    match step {
        Step::Key(key) => lit(key.as_str()),
        Step::Index(index) => lit(*index as i64),
    }
}

/// A JSON-text literal (`None` is undefined).
fn json_lit(text: Option<&str>) -> Expr {
    let metadata = FieldMetadata::from(std::collections::BTreeMap::from([(
        JSON_MARKER.to_string(),
        "true".to_string(),
    )]));
    lit_with_metadata(ScalarValue::Utf8(text.map(str::to_string)), Some(metadata))
}

/// Lowers an attribute path to a column, a `json_path` call into a JSON column, or a
/// `js_get` below a typed column.
fn lower_path(path: &Path) -> Expr {
    match schema::column(&path.root) {
        Some(_) if path.steps.is_empty() => col(path.root.as_str()),
        Some((_, Kind::Json)) => json_path(col(path.root.as_str()), &path.steps),
        Some(_) => {
            let mut args = vec![col(path.root.as_str())];
            args.extend(path.steps.iter().map(step_lit));
            js(JsOp::Get, args)
        }
        None => {
            let mut steps = vec![Step::Key(path.root.clone())];
            steps.extend(path.steps.iter().cloned());
            json_path(col(EXTRA), &steps)
        }
    }
}

/// An error that quotes `text` with a caret under `span`.
fn located(context: &str, text: &str, span: Span, message: &str) -> Error {
    let start = text.get(..span.start).map_or(0, |s| s.chars().count());
    let width = text
        .get(span.start..span.end.max(span.start))
        .map_or(1, |s| s.chars().count().max(1));
    Error::usage(
        context,
        format!(
            "{message}\n  {text}\n  {}{}",
            " ".repeat(start),
            "^".repeat(width)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_at_the_first_assignment() {
        assert_eq!(Field::from_arg("email").name, "email");
        let f = Field::from_arg("Plan=user_metadata.plan");
        assert_eq!(
            (f.name.as_str(), f.text.as_str()),
            ("Plan", "user_metadata.plan")
        );
        let f = Field::from_arg("user.a === 'x'");
        assert_eq!(f.name, "user.a === 'x'");
        let f = Field::from_arg("Big=user.logins_count >= 10");
        assert_eq!(
            (f.name.as_str(), f.text.as_str()),
            ("Big", "user.logins_count >= 10")
        );
        assert_eq!(Field::from_arg("a != b").text, "a != b");
        assert_eq!(Field::from_arg("a <= b").text, "a <= b");
    }

    #[test]
    fn paths_lower_to_columns_or_json_path() {
        let c = compile("user.email", "--field").unwrap();
        assert_eq!(c.expr.to_string(), "email");
        let c = compile("identities[0].connection", "--field").unwrap();
        assert_eq!(
            c.expr.to_string(),
            "json_path(identities, Int64(0), Utf8(\"connection\"))"
        );
        let c = compile("favorite_color", "--field").unwrap();
        assert_eq!(
            c.expr.to_string(),
            "json_path(_extra, Utf8(\"favorite_color\"))"
        );
    }

    #[test]
    fn errors_quote_the_text_with_a_caret() {
        let e = compile("user.email ** 2", "--field E=user.email ** 2").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("--field E=user.email ** 2: this is not part of the expression"),
            "{text}"
        );
        assert!(
            text.ends_with("  user.email ** 2\n  ^^^^^^^^^^^^^^^"),
            "{text}"
        );
    }
}
