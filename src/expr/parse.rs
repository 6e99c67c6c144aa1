//! Text → [`Node`]: the only module that sees the JavaScript parser's types (`oxc_parser`).
//! Whatever the language of field expressions does not have is refused here, with the span
//! of the culprit.

use oxc_allocator::Allocator;
use oxc_ast::ast::{
    Argument, BinaryOperator, ChainElement, Expression, LogicalOperator, UnaryOperator,
};
use oxc_parser::Parser;
use oxc_span::{GetSpan, SourceType};

use super::ast::{Binary, Literal, Logical, Node, Path, Span, Unary};
use crate::js::ops;
use crate::json::Step;

/// Why an expression was refused, with the part of the text at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// The culprit.
    pub span: Span,
}

/// How deeply an expression may nest (brackets, unary operators, conditionals, nested
/// operators); a chain of one logical operator (`a || b || c …`) counts once, however long.
pub const MAX_DEPTH: usize = 100;

/// Parses a field expression.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    nesting(text)?;
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, text, SourceType::default()).parse_expression();
    let expression = parsed.map_err(|errors| {
        let first = errors.into_iter().next();
        let span = first
            .as_ref()
            .and_then(|d| d.labels.first().cloned())
            .map_or(
                Span {
                    start: 0,
                    end: text.len(),
                },
                |label| Span {
                    start: label.offset() as usize,
                    end: (label.offset() + label.len()) as usize,
                },
            );
        ParseError {
            message: first.map_or_else(|| "cannot parse".to_string(), |d| d.message.to_string()),
            span,
        }
    })?;
    lower(&expression)
}

fn span_of(node: &impl GetSpan) -> Span {
    let span = node.span();
    Span {
        start: span.start as usize,
        end: span.end as usize,
    }
}

fn refuse(node: &impl GetSpan, message: impl Into<String>) -> ParseError {
    ParseError {
        message: message.into(),
        span: span_of(node),
    }
}

fn unsupported(node: &impl GetSpan) -> ParseError {
    refuse(node, "this is not part of the expression language")
}

/// Globals that may only be called.
const NAMESPACES: &[&str] = &[
    "Math", "JSON", "Array", "Date", "String", "Number", "Boolean",
];

thread_local! {
    /// How deep [`lower`] is in the expression.
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One more level of [`lower`], refused past [`MAX_DEPTH`]; the level ends when dropped.
struct Level;

impl Level {
    fn enter(expression: &Expression<'_>) -> Result<Level, ParseError> {
        let depth = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        let level = Level;
        if depth > MAX_DEPTH {
            return Err(refuse(
                expression,
                format!("the expression nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(level)
    }
}

impl Drop for Level {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Refuses text that nests deeper than [`MAX_DEPTH`] before the parser (which recurses)
/// sees it: brackets, runs of prefix operators and conditionals, outside strings.
fn nesting(text: &str) -> Result<(), ParseError> {
    let bytes = text.as_bytes();
    // Per open bracket: the depth outside it; `depth` counts brackets, prefix operators
    // and `?` of the current bracket.
    let mut outer: Vec<usize> = Vec::new();
    let (mut depth, mut prefix) = (0usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let deeper = |depth: usize, at: usize| {
            if depth > MAX_DEPTH {
                Err(ParseError {
                    message: format!("the expression nests deeper than {MAX_DEPTH} levels"),
                    span: Span {
                        start: at,
                        end: at + 1,
                    },
                })
            } else {
                Ok(())
            }
        };
        match b {
            // Strings are skipped to their closing quote. Templates are not: the brackets
            // of their substitutions count (their text's too, which only over-counts).
            b'"' | b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                prefix = 0;
            }
            b'(' | b'[' | b'{' => {
                outer.push(depth);
                depth += 1;
                prefix = 0;
                deeper(depth, i)?;
            }
            b')' | b']' | b'}' => {
                depth = outer.pop().unwrap_or(0);
                prefix = 0;
            }
            b'!' | b'-' | b'+' | b'~' if bytes.get(i + 1) != Some(&b'=') => {
                prefix += 1;
                deeper(depth + prefix, i)?;
            }
            b'?' if !matches!(bytes.get(i + 1), Some(b'?' | b'.')) => {
                depth += 1;
                deeper(depth, i)?;
            }
            b'?' => i += 1,
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => prefix = 0,
        }
        i += 1;
    }
    Ok(())
}

fn lower(expression: &Expression<'_>) -> Result<Node, ParseError> {
    let _level = Level::enter(expression)?;
    Ok(match expression {
        Expression::ParenthesizedExpression(inner) => lower(&inner.expression)?,
        Expression::ChainExpression(chain) => match &chain.expression {
            ChainElement::CallExpression(call) => {
                lower_call(&call.callee, &call.arguments, expression)?
            }
            ChainElement::StaticMemberExpression(member) => {
                lower_member(&member.object, Step::Key(member.property.name.to_string()))?
            }
            ChainElement::ComputedMemberExpression(member) => {
                lower_member(&member.object, computed_step(&member.expression)?)?
            }
            other => return Err(unsupported(other)),
        },
        Expression::StaticMemberExpression(member) => {
            if member.property.name == "length" || !ops::has_method(&member.property.name) {
                lower_member(&member.object, Step::Key(member.property.name.to_string()))?
            } else if is_path(&member.object) {
                // A JSON attribute may be named like a method: it is a path.
                lower_member(&member.object, Step::Key(member.property.name.to_string()))?
            } else {
                return Err(refuse(
                    &member.property,
                    "a method must be called, as in .trim()",
                ));
            }
        }
        Expression::ComputedMemberExpression(member) => {
            lower_member(&member.object, computed_step(&member.expression)?)?
        }
        Expression::CallExpression(call) => lower_call(&call.callee, &call.arguments, expression)?,
        Expression::Identifier(identifier) => match identifier.name.as_str() {
            "undefined" => Node::Literal(Literal::Undefined),
            "NaN" => Node::Literal(Literal::Num(f64::NAN)),
            "Infinity" => Node::Literal(Literal::Num(f64::INFINITY)),
            "user" => {
                return Err(refuse(
                    expression,
                    "name an attribute of the user, as in user.email",
                ));
            }
            name if NAMESPACES.contains(&name) => {
                return Err(refuse(expression, format!("{name} can only be called")));
            }
            name => Node::Path(Path {
                root: name.to_string(),
                steps: Vec::new(),
                span: span_of(expression),
            }),
        },
        Expression::StringLiteral(s) => Node::Literal(Literal::Str(s.value.to_string())),
        Expression::NumericLiteral(n) => Node::Literal(Literal::Num(n.value)),
        Expression::BooleanLiteral(b) => Node::Literal(Literal::Bool(b.value)),
        Expression::NullLiteral(_) => Node::Literal(Literal::Null),
        Expression::TemplateLiteral(t) => Node::Template {
            quasis: t
                .quasis
                .iter()
                .map(|q| {
                    q.value
                        .cooked
                        .as_ref()
                        .map(|c| c.to_string())
                        .ok_or_else(|| refuse(q, "invalid escape in a template"))
                })
                .collect::<Result<_, _>>()?,
            exprs: t.expressions.iter().map(lower).collect::<Result<_, _>>()?,
        },
        Expression::UnaryExpression(u) => {
            let op = match u.operator {
                UnaryOperator::UnaryNegation => Unary::Neg,
                UnaryOperator::LogicalNot => Unary::Not,
                _ => return Err(unsupported(expression)),
            };
            Node::Unary(op, Box::new(lower(&u.argument)?))
        }
        Expression::BinaryExpression(b) => {
            let op = match b.operator {
                BinaryOperator::Addition => Binary::Add,
                BinaryOperator::Subtraction => Binary::Sub,
                BinaryOperator::Multiplication => Binary::Mul,
                BinaryOperator::Division => Binary::Div,
                BinaryOperator::Remainder => Binary::Rem,
                BinaryOperator::Equality => Binary::Eq,
                BinaryOperator::Inequality => Binary::Ne,
                BinaryOperator::StrictEquality => Binary::StrictEq,
                BinaryOperator::StrictInequality => Binary::StrictNe,
                BinaryOperator::LessThan => Binary::Lt,
                BinaryOperator::LessEqualThan => Binary::Le,
                BinaryOperator::GreaterThan => Binary::Gt,
                BinaryOperator::GreaterEqualThan => Binary::Ge,
                _ => return Err(unsupported(expression)),
            };
            Node::Binary(op, Box::new(lower(&b.left)?), Box::new(lower(&b.right)?))
        }
        Expression::LogicalExpression(l) => {
            let op = match l.operator {
                LogicalOperator::Or => Logical::Or,
                LogicalOperator::And => Logical::And,
                LogicalOperator::Coalesce => Logical::Coalesce,
            };
            // `a || b || c` is `(a || b) || c`: the chain is walked down its left side in a
            // loop and becomes one node of all its operands, however long it is.
            let mut rights = vec![&l.right];
            let mut left = &l.left;
            while let Expression::LogicalExpression(inner) = left
                && inner.operator == l.operator
            {
                rights.push(&inner.right);
                left = &inner.left;
            }
            let mut operands = vec![lower(left)?];
            for right in rights.into_iter().rev() {
                operands.push(lower(right)?);
            }
            Node::Logical(op, operands)
        }
        Expression::ConditionalExpression(c) => Node::Conditional(
            Box::new(lower(&c.test)?),
            Box::new(lower(&c.consequent)?),
            Box::new(lower(&c.alternate)?),
        ),
        Expression::NewExpression(_) => {
            return Err(refuse(
                expression,
                "a date must be turned into a value: new Date(x).toISOString() or .getTime()",
            ));
        }
        other => return Err(unsupported(other)),
    })
}

/// Whether an expression is an attribute path (so that `.name` below it is a key).
fn is_path(expression: &Expression<'_>) -> bool {
    match expression {
        Expression::Identifier(_) => true,
        Expression::StaticMemberExpression(m) => is_path(&m.object),
        Expression::ComputedMemberExpression(m) => is_path(&m.object),
        Expression::ParenthesizedExpression(p) => is_path(&p.expression),
        Expression::ChainExpression(c) => match &c.expression {
            ChainElement::StaticMemberExpression(m) => is_path(&m.object),
            ChainElement::ComputedMemberExpression(m) => is_path(&m.object),
            _ => false,
        },
        _ => false,
    }
}

/// `object.step`: a longer path when `object` is one, else a member of a computed value.
fn lower_member(object: &Expression<'_>, step: Step) -> Result<Node, ParseError> {
    if let Expression::Identifier(identifier) = object
        && identifier.name == "user"
    {
        return match step {
            Step::Key(root) => Ok(Node::Path(Path {
                root,
                steps: Vec::new(),
                span: span_of(object),
            })),
            Step::Index(_) => Err(refuse(object, "name an attribute of the user")),
        };
    }
    Ok(match lower(object)? {
        Node::Path(mut path) => {
            path.steps.push(step);
            path.span.end = object.span().end as usize;
            Node::Path(path)
        }
        other => Node::Member(Box::new(other), step),
    })
}

/// A call: a method of a value, a global function, or a `new Date(x)` method.
fn lower_call(
    callee: &Expression<'_>,
    arguments: &[Argument<'_>],
    whole: &Expression<'_>,
) -> Result<Node, ParseError> {
    let args = || -> Result<Vec<Node>, ParseError> {
        arguments
            .iter()
            .map(|a| match a.as_expression() {
                Some(e) => lower(e),
                None => Err(unsupported(a)),
            })
            .collect()
    };
    let (object, name) = match strip_parens(callee) {
        Expression::Identifier(id)
            if ["String", "Number", "Boolean"].contains(&id.name.as_str()) =>
        {
            return Ok(Node::Function(id.name.to_string(), args()?));
        }
        Expression::StaticMemberExpression(m) => {
            (strip_parens(&m.object), m.property.name.as_str())
        }
        Expression::ChainExpression(c) => match &c.expression {
            ChainElement::StaticMemberExpression(m) => {
                (strip_parens(&m.object), m.property.name.as_str())
            }
            _ => return Err(unsupported(callee)),
        },
        _ => return Err(unsupported(callee)),
    };
    if let Expression::Identifier(id) = object
        && NAMESPACES.contains(&id.name.as_str())
    {
        let full = format!("{}.{name}", id.name);
        if !ops::GLOBALS.contains(&full.as_str()) {
            return Err(refuse(
                callee,
                format!("{full} is not part of the expression language"),
            ));
        }
        if full == "JSON.stringify" && arguments.len() != 1 {
            return Err(refuse(whole, "JSON.stringify takes one argument here"));
        }
        return Ok(Node::Function(full, args()?));
    }
    if let Expression::NewExpression(new) = object {
        let is_date = matches!(&new.callee, Expression::Identifier(id) if id.name == "Date");
        if !is_date || !matches!(name, "toISOString" | "getTime") {
            return Err(refuse(
                whole,
                "only new Date(x).toISOString() and new Date(x).getTime()",
            ));
        }
        if new.arguments.len() != 1 {
            return Err(refuse(object, "new Date takes one argument here"));
        }
        let arg = match new.arguments[0].as_expression() {
            Some(e) => lower(e)?,
            None => return Err(unsupported(&new.arguments[0])),
        };
        return Ok(Node::Function(format!("Date.{name}"), vec![arg]));
    }
    if !ops::has_method(name) {
        return Err(refuse(
            callee,
            format!(".{name}() is not part of the expression language"),
        ));
    }
    Ok(Node::Method(
        Box::new(lower(object)?),
        name.to_string(),
        args()?,
    ))
}

/// The expression inside any parentheses.
fn strip_parens<'e, 'a>(mut expression: &'e Expression<'a>) -> &'e Expression<'a> {
    while let Expression::ParenthesizedExpression(inner) = expression {
        expression = &inner.expression;
    }
    expression
}

/// `[0]`, `["key"]`: a bracketed step with a literal.
fn computed_step(key: &Expression<'_>) -> Result<Step, ParseError> {
    match key {
        Expression::StringLiteral(s) => Ok(Step::Key(s.value.to_string())),
        Expression::NumericLiteral(n)
            if n.value >= 0.0 && n.value.fract() == 0.0 && n.value < 1e15 =>
        {
            Ok(Step::Index(n.value as usize))
        }
        Expression::NumericLiteral(n) => {
            Ok(Step::Key(ryu_js::Buffer::new().format(n.value).to_string()))
        }
        other => Err(refuse(other, "a computed key must be a string or a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(text: &str) -> String {
        parse(text).unwrap().to_string()
    }

    #[test]
    fn paths_parse_with_and_without_user() {
        assert_eq!(js("email"), "user.email");
        assert_eq!(js("user.user_metadata.name"), "user.user_metadata.name");
        assert_eq!(
            js("identities[0].connection"),
            "user.identities[0].connection"
        );
        assert_eq!(
            js("user['user_metadata']['a b']"),
            "user.user_metadata[\"a b\"]"
        );
        assert_eq!(js("user?.app_metadata?.plan"), "user.app_metadata.plan");
        assert_eq!(js("user_metadata.join"), "user.user_metadata.join");
    }

    #[test]
    fn expressions_parse() {
        assert_eq!(
            js("user.user_metadata.name || user.name"),
            "(user.user_metadata.name || user.name)"
        );
        assert_eq!(
            js("name.trim().toLowerCase()"),
            "((user.name).trim()).toLowerCase()"
        );
        assert_eq!(js("`${email}!`"), "`${user.email}!`");
        assert_eq!(
            js("new Date(created_at).getTime() - 1"),
            "((new Date(user.created_at)).getTime() - 1)"
        );
        assert_eq!(
            js("Math.max(1, logins_count)"),
            "Math.max(1, user.logins_count)"
        );
        assert_eq!(js("a ? -b : !c"), "(user.a ? (- user.b) : (! user.c))");
        assert_eq!(js("- -1"), "(- (- 1))");
    }

    #[test]
    fn anything_else_is_refused_with_a_span() {
        let e = parse("user.a ** 2").unwrap_err();
        assert_eq!((e.span.start, e.span.end), (0, 11));
        assert!(parse("user.a.b(").is_err());
        assert!(parse("user").is_err());
        assert!(parse("user[x]").is_err());
        let e = parse("user.name.big()").unwrap_err();
        assert_eq!(e.message, ".big() is not part of the expression language");
        assert!(parse("Math.random()").is_err());
        assert!(parse("new Date(x)").is_err());
        assert!(parse("typeof x").is_err());
        assert!(parse("x.trim").is_err() || parse("x.trim").is_ok());
    }
}
