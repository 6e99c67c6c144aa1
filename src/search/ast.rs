//! The project's own tree for Auth0 user-search (Lucene syntax) queries.

use serde::{Deserialize, Serialize};

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Every user (`*`, `*:*`).
    All,
    /// One test on one field.
    Leaf(Leaf),
    /// All of these.
    And(Vec<Query>),
    /// Any of these.
    Or(Vec<Query>),
    /// Not this.
    Not(Box<Query>),
}

/// A test on a field: a term, a range or an existence check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leaf {
    /// The field as written (`email`, `user_metadata.plan`, `identities.connection`, …).
    pub field: String,
    /// What the field's values must satisfy.
    pub test: Test,
}

/// What a field's value must satisfy (any element, for arrays).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// Equal to the text (a term or a phrase).
    Equals(String),
    /// Matching a pattern with `*` (any run) and `?` (one character).
    Wildcard(Vec<Piece>),
    /// Within bounds; `None` is open.
    Range {
        /// The lower bound and whether it is included.
        lower: Option<(String, bool)>,
        /// The upper bound and whether it is included.
        upper: Option<(String, bool)>,
    },
    /// The field has a value (`_exists_:field`).
    Exists,
}

/// A part of a wildcard pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// `*`.
    Any,
    /// `?`.
    One,
}
