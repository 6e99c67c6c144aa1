//! The project's own syntax tree for field expressions, with byte spans into the source text.
//! Nothing here depends on the JavaScript parser.

use crate::json::Step;

/// A byte range in the expression's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A parsed field expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An attribute path from the user: `user.user_metadata.name`, `identities[0].connection`.
    Path(Path),
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

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.root)?;
        for step in &self.steps {
            match step {
                Step::Key(key) if is_identifier(key) => write!(f, ".{key}")?,
                Step::Key(key) => write!(f, "[{}]", serde_json::Value::from(key.as_str()))?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
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
