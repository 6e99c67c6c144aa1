//! Text → [`Query`]: the only module that sees the Lucene grammar's types
//! (`tantivy-query-grammar`). Forms that Auth0's user search rejects are refused here.

use tantivy_query_grammar::{
    Delimiter, Occur, UserInputAst, UserInputBound, UserInputLeaf, parse_query_lenient,
};

use super::ast::{Leaf, Piece, Query, Test};

/// Why a query was refused, with the byte offset it points at when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// Where, in bytes, when known.
    pub offset: Option<usize>,
}

fn refuse(message: impl Into<String>) -> ParseError {
    ParseError {
        message: message.into(),
        offset: None,
    }
}

/// How deeply a query may nest: parentheses and runs of `NOT`, `!`, `-`, `+`.
pub const MAX_DEPTH: usize = 100;

/// Parses an Auth0 user-search query.
pub fn parse(text: &str) -> Result<Query, ParseError> {
    if text.trim().is_empty() {
        return Err(refuse("the query is empty"));
    }
    nesting(text)?;
    let (ast, errors) = parse_query_lenient(text);
    if let Some(error) = errors.first() {
        return Err(ParseError {
            message: error.message.clone(),
            offset: Some(error.pos),
        });
    }
    lower(&ast)
}

/// Refuses a query that nests deeper than [`MAX_DEPTH`] before the grammar (which recurses)
/// sees it.
fn nesting(text: &str) -> Result<(), ParseError> {
    let bytes = text.as_bytes();
    let (mut parens, mut prefix) = (0usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        let at = i;
        match bytes[i] {
            b'\\' => i += 1,
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                prefix = 0;
            }
            b'(' => parens += 1,
            b')' => {
                parens = parens.saturating_sub(1);
                prefix = 0;
            }
            b'!' | b'-' | b'+' => prefix += 1,
            b'N' if bytes[i..].starts_with(b"NOT")
                && bytes
                    .get(i + 3)
                    .is_none_or(|b| b.is_ascii_whitespace() || *b == b'(')
                && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\n' | b'\r' | b'(')) =>
            {
                prefix += 1;
                i += 2;
            }
            b if b.is_ascii_whitespace() => {}
            _ => prefix = 0,
        }
        if parens + prefix > MAX_DEPTH {
            return Err(ParseError {
                message: format!("the query nests deeper than {MAX_DEPTH} levels"),
                offset: Some(at),
            });
        }
        i += 1;
    }
    Ok(())
}

fn lower(ast: &UserInputAst) -> Result<Query, ParseError> {
    match ast {
        UserInputAst::Boost(..) => Err(refuse("boosts (^) are not part of Auth0's user search")),
        UserInputAst::Leaf(leaf) => lower_leaf(leaf),
        UserInputAst::Clause(clauses) => {
            if clauses.is_empty() {
                return Err(refuse("an empty group"));
            }
            let (mut must, mut should, mut not) = (Vec::new(), Vec::new(), Vec::new());
            for (occur, clause) in clauses {
                let q = lower(clause)?;
                match occur {
                    Some(Occur::Must) => must.push(q),
                    Some(Occur::MustNot) => not.push(Query::Not(Box::new(q))),
                    _ => should.push(q),
                }
            }
            // Lucene: with required clauses, optional ones do not restrict; without, at
            // least one optional clause must hold.
            if must.is_empty() && !should.is_empty() {
                must.push(if should.len() == 1 {
                    should.remove(0)
                } else {
                    Query::Or(should)
                });
            }
            if must.is_empty() {
                must.push(Query::All);
            }
            must.extend(not);
            Ok(if must.len() == 1 {
                must.remove(0)
            } else {
                Query::And(must)
            })
        }
    }
}

fn lower_leaf(leaf: &UserInputLeaf) -> Result<Query, ParseError> {
    let field = |f: &Option<String>| -> Result<String, ParseError> {
        f.clone()
            .ok_or_else(|| refuse("name a field, as in email:jane@example.com"))
    };
    Ok(match leaf {
        UserInputLeaf::All => Query::All,
        UserInputLeaf::Exists { field } => Query::Leaf(Leaf {
            field: field.clone(),
            test: Test::Exists,
        }),
        UserInputLeaf::Regex { .. } => {
            return Err(refuse(
                "regular expressions are not part of Auth0's user search",
            ));
        }
        UserInputLeaf::Set { .. } => {
            return Err(refuse(
                "sets (IN [...]) are not part of Auth0's user search",
            ));
        }
        UserInputLeaf::Range {
            field: f,
            lower,
            upper,
        } => {
            let bound = |b: &UserInputBound| match b {
                UserInputBound::Inclusive(v) if v != "*" => Some((unescape(v), true)),
                UserInputBound::Exclusive(v) if v != "*" => Some((unescape(v), false)),
                _ => None,
            };
            Query::Leaf(Leaf {
                field: field(f)?,
                test: Test::Range {
                    lower: bound(lower),
                    upper: bound(upper),
                },
            })
        }
        UserInputLeaf::Literal(literal) => {
            let name = field(&literal.field_name)?;
            if name == "_exists_" {
                return Ok(Query::Leaf(Leaf {
                    field: unescape(&literal.phrase),
                    test: Test::Exists,
                }));
            }
            if literal.slop > 0 {
                return Err(refuse("proximity (~) is not part of Auth0's user search"));
            }
            let test = match literal.delimiter {
                Delimiter::None => term(&literal.phrase, literal.prefix),
                _ if literal.prefix => {
                    Test::Wildcard(vec![Piece::Text(literal.phrase.clone()), Piece::Any])
                }
                _ => Test::Equals(literal.phrase.clone()),
            };
            if test == Test::Wildcard(vec![Piece::Any]) {
                return Ok(Query::Leaf(Leaf {
                    field: name,
                    test: Test::Exists,
                }));
            }
            Query::Leaf(Leaf { field: name, test })
        }
    })
}

/// An unquoted term: escapes removed, `*` and `?` (unescaped) are wildcards.
fn term(text: &str, prefix: bool) -> Test {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut wild = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => literal.extend(chars.next()),
            '*' | '?' => {
                wild = true;
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(if c == '*' { Piece::Any } else { Piece::One });
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    if prefix {
        wild = true;
        pieces.push(Piece::Any);
    }
    if wild {
        Test::Wildcard(pieces)
    } else {
        Test::Equals(
            pieces
                .into_iter()
                .map(|p| match p {
                    Piece::Text(t) => t,
                    _ => String::new(),
                })
                .collect(),
        )
    }
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}
