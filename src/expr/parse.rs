//! Text → [`Node`]: the only module that sees the JavaScript parser's types (`oxc_parser`).

use oxc_allocator::Allocator;
use oxc_ast::ast::{ChainElement, Expression};
use oxc_parser::Parser;
use oxc_span::{GetSpan, SourceType};

use super::ast::{Node, Path, Span};
use crate::json::Step;

/// Why an expression was refused, with the part of the text at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// The culprit.
    pub span: Span,
}

/// Parses a field expression.
pub fn parse(text: &str) -> Result<Node, ParseError> {
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
    lower(&expression).map(Node::Path)
}

fn span_of(node: &impl GetSpan) -> Span {
    let span = node.span();
    Span {
        start: span.start as usize,
        end: span.end as usize,
    }
}

fn unsupported(node: &impl GetSpan, what: &str) -> ParseError {
    ParseError {
        message: format!("{what} is not supported here: a field is an attribute path"),
        span: span_of(node),
    }
}

/// Turns a member chain (`user.a.b[0]`, `a?.b`) into a path.
fn lower(expression: &Expression<'_>) -> Result<Path, ParseError> {
    let mut steps = Vec::new();
    let mut current = expression;
    loop {
        match current {
            Expression::ParenthesizedExpression(inner) => current = &inner.expression,
            Expression::ChainExpression(chain) => match &chain.expression {
                ChainElement::StaticMemberExpression(member) => {
                    steps.push(Step::Key(member.property.name.to_string()));
                    current = &member.object;
                }
                ChainElement::ComputedMemberExpression(member) => {
                    steps.push(computed_step(&member.expression)?);
                    current = &member.object;
                }
                other => return Err(unsupported(other, "this expression")),
            },
            Expression::StaticMemberExpression(member) => {
                steps.push(Step::Key(member.property.name.to_string()));
                current = &member.object;
            }
            Expression::ComputedMemberExpression(member) => {
                steps.push(computed_step(&member.expression)?);
                current = &member.object;
            }
            Expression::Identifier(identifier) => {
                steps.reverse();
                let name = identifier.name.to_string();
                let (root, steps) = if name == "user" {
                    match steps.split_first() {
                        Some((Step::Key(root), rest)) => (root.clone(), rest.to_vec()),
                        _ => {
                            return Err(ParseError {
                                message: "name an attribute of the user, as in user.email".into(),
                                span: span_of(expression),
                            });
                        }
                    }
                } else {
                    (name, steps)
                };
                return Ok(Path {
                    root,
                    steps,
                    span: span_of(expression),
                });
            }
            other => return Err(unsupported(other, "this expression")),
        }
    }
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
        other => Err(unsupported(other, "a computed key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> String {
        match parse(text).unwrap() {
            Node::Path(p) => p.to_string(),
        }
    }

    #[test]
    fn paths_parse_with_and_without_user() {
        assert_eq!(path("email"), "email");
        assert_eq!(path("user.user_metadata.name"), "user_metadata.name");
        assert_eq!(path("identities[0].connection"), "identities[0].connection");
        assert_eq!(path("app_metadata.roles[1]"), "app_metadata.roles[1]");
        assert_eq!(
            path("user['user_metadata']['a b']"),
            "user_metadata[\"a b\"]"
        );
        assert_eq!(path("user?.app_metadata?.plan"), "app_metadata.plan");
    }

    #[test]
    fn anything_else_is_refused_with_a_span() {
        let e = parse("user.a + 1").unwrap_err();
        assert_eq!((e.span.start, e.span.end), (0, 10));
        let e = parse("user.a.b(").unwrap_err();
        assert!(!e.message.is_empty());
        assert!(parse("user").is_err());
        assert!(parse("user[x]").is_err());
    }
}
