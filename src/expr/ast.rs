//! The project's own syntax tree for field expressions, with byte spans into the source text.
//! Nothing here depends on the JavaScript parser.

use std::fmt;

use crate::json::Step;

/// A byte range in the expression's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A string.
    Str(String),
    /// A number.
    Num(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
}

pub use crate::js::op::{Binary, Logical, Unary};

/// A parsed field expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An attribute path from the user: `user.user_metadata.name`, `identities[0].connection`.
    Path(Path),
    /// A literal.
    Literal(Literal),
    /// A template literal: `quasis` around `exprs` (one more quasi than expressions).
    Template {
        /// The text parts.
        quasis: Vec<String>,
        /// The substitutions.
        exprs: Vec<Node>,
    },
    /// `-x`, `!x`.
    Unary(Unary, Box<Node>),
    /// `a op b`.
    Binary(Binary, Box<Node>, Box<Node>),
    /// `a || b || …`, `a && b && …`, `a ?? b ?? …`: a chain of one operator, two operands
    /// or more, evaluated from the left.
    Logical(Logical, Vec<Node>),
    /// `test ? then : otherwise`.
    Conditional(Box<Node>, Box<Node>, Box<Node>),
    /// A member of a computed value: `(a || b).length`, `x.trim()[0]`.
    Member(Box<Node>, Step),
    /// A method call on a value: `x.toLowerCase()`.
    Method(Box<Node>, String, Vec<Node>),
    /// A global function: `Math.max(…)`, `String(x)`, `Date.parse(x)`, and
    /// `new Date(x).toISOString()` / `.getTime()` as `Date.toISOString` / `Date.getTime`.
    Function(String, Vec<Node>),
}

/// An attribute path: a top-level attribute of the user and steps into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The top-level attribute (`email`, `user_metadata`, …).
    pub root: String,
    /// Keys and indexes below it.
    pub steps: Vec<Step>,
    /// Where the path stands in the expression.
    pub span: Span,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.root)?;
        write_steps(f, &self.steps, "")
    }
}

fn write_steps(f: &mut fmt::Formatter<'_>, steps: &[Step], optional: &str) -> fmt::Result {
    for step in steps {
        write_step(f, step, optional)?;
    }
    Ok(())
}

fn write_step(f: &mut fmt::Formatter<'_>, step: &Step, optional: &str) -> fmt::Result {
    match step {
        Step::Key(key) if is_identifier(key) => {
            write!(f, "{}.{key}", optional.trim_end_matches('.'))
        }
        Step::Key(key) => write!(f, "{optional}[{}]", serde_json::Value::from(key.as_str())),
        Step::Index(index) => write!(f, "{optional}[{index}]"),
    }
}

/// Whether `key` can be written after a dot.
fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// Prints a node as JavaScript over `user`; with `optional`, every member access and call
/// is optional (`?.`), which is how userport evaluates them.
pub struct Js<'a> {
    /// The node.
    pub node: &'a Node,
    /// Write `?.` for every member access and call.
    pub optional: bool,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Js {
            node: self,
            optional: false,
        }
        .fmt(f)
    }
}

impl Js<'_> {
    fn with<'b>(&self, node: &'b Node) -> Js<'b> {
        Js {
            node,
            optional: self.optional,
        }
    }
}

impl fmt::Display for Js<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = if self.optional { "?." } else { "" };
        let dot = if self.optional { "?." } else { "." };
        let sub = |node| self.with(node);
        match self.node {
            Node::Path(path) => {
                write!(f, "user{dot}{}", path.root)?;
                write_steps(f, &path.steps, q)
            }
            Node::Literal(Literal::Str(s)) => write!(f, "{}", serde_json::Value::from(s.as_str())),
            Node::Literal(Literal::Num(n)) if n.is_nan() => f.write_str("NaN"),
            Node::Literal(Literal::Num(n)) if n.is_infinite() => {
                f.write_str(if *n > 0.0 { "Infinity" } else { "(-Infinity)" })
            }
            Node::Literal(Literal::Num(n)) => write!(f, "{}", ryu_js::Buffer::new().format(*n)),
            Node::Literal(Literal::Bool(b)) => write!(f, "{b}"),
            Node::Literal(Literal::Null) => f.write_str("null"),
            Node::Literal(Literal::Undefined) => f.write_str("undefined"),
            Node::Template { quasis, exprs } => {
                f.write_str("`")?;
                for (i, quasi) in quasis.iter().enumerate() {
                    for c in quasi.chars() {
                        match c {
                            '`' | '\\' | '$' => write!(f, "\\{c}")?,
                            c => write!(f, "{c}")?,
                        }
                    }
                    if let Some(e) = exprs.get(i) {
                        write!(f, "${{{}}}", sub(e))?;
                    }
                }
                f.write_str("`")
            }
            Node::Unary(Unary::Neg, a) => write!(f, "(- {})", sub(a)),
            Node::Unary(Unary::Not, a) => write!(f, "(! {})", sub(a)),
            Node::Binary(op, a, b) => write!(f, "({} {} {})", sub(a), op.symbol(), sub(b)),
            Node::Logical(op, operands) => {
                f.write_str("(")?;
                for (i, operand) in operands.iter().enumerate() {
                    if i > 0 {
                        write!(f, " {} ", op.symbol())?;
                    }
                    write!(f, "{}", sub(operand))?;
                }
                f.write_str(")")
            }
            Node::Conditional(t, a, b) => write!(f, "({} ? {} : {})", sub(t), sub(a), sub(b)),
            Node::Member(object, step) => {
                write!(f, "({})", sub(object))?;
                write_step(f, step, q)
            }
            Node::Method(receiver, name, args) => {
                write!(f, "({}){dot}{name}{q}(", sub(receiver))?;
                write_args(f, args, self.optional)?;
                f.write_str(")")
            }
            Node::Function(name, args) => {
                let (callee, method) = match name.as_str() {
                    "Date.toISOString" => ("new Date", Some("toISOString")),
                    "Date.getTime" => ("new Date", Some("getTime")),
                    other => (other, None),
                };
                if method.is_some() {
                    f.write_str("(")?;
                }
                write!(f, "{callee}(")?;
                write_args(f, args, self.optional)?;
                f.write_str(")")?;
                if let Some(m) = method {
                    write!(f, "){dot}{m}()")?;
                }
                Ok(())
            }
        }
    }
}

fn write_args(f: &mut fmt::Formatter<'_>, args: &[Node], optional: bool) -> fmt::Result {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", Js { node: a, optional })?;
    }
    Ok(())
}
