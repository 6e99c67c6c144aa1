//! The cells that `js_*` functions hand to each other and to the sinks, defined here and
//! nowhere else. A cell is a value's JSON text (numbers may also be `NaN`, `Infinity`,
//! `-Infinity`, `-0`), or [`THROW`] when the expression threw; an object or an array read
//! from the user carries before it the place it was read from, as `#LEN:ORIGIN`, which is
//! its identity for `===`. [`encode`] writes cells, [`decode`] and [`text`] read them.

use super::value::Value;

/// The cell of an expression that threw (no JSON text starts with `!`).
pub const THROW: &str = "!";

/// A cell read back: where its object came from, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell<'a> {
    /// The place in the user an object or array was read from (its identity).
    pub origin: Option<&'a str>,
    /// The value.
    pub value: Value<'a>,
}

/// The cell of `value` (`None` for undefined), with the `origin` of an object or array.
pub fn encode(value: &Value<'_>, origin: Option<&str>) -> Option<String> {
    let json = value.to_json()?;
    Some(match (origin, value) {
        (Some(origin), Value::Object(_) | Value::Array(_)) => {
            format!("#{}:{origin}{json}", origin.len())
        }
        _ => json,
    })
}

/// Reads a cell.
pub fn decode(cell: &str) -> Cell<'_> {
    let (origin, text) = split(cell);
    Cell {
        origin,
        value: Value::from_json(text),
    }
}

/// The JSON text of a cell, without its origin.
pub fn text(cell: &str) -> &str {
    split(cell).1
}

/// Whether a cell writes as an empty report cell: `null`, or an expression that threw.
pub fn is_blank(cell: &str) -> bool {
    matches!(text(cell), "null" | THROW)
}

/// Splits the `#LEN:ORIGIN` prefix off a cell.
fn split(cell: &str) -> (Option<&str>, &str) {
    let Some(rest) = cell.strip_prefix('#') else {
        return (None, cell);
    };
    let Some((len, rest)) = rest.split_once(':') else {
        return (None, cell);
    };
    match len.parse::<usize>() {
        Ok(len) if len <= rest.len() && rest.is_char_boundary(len) => {
            (Some(&rest[..len]), &rest[len..])
        }
        _ => (None, cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_carry_origins_and_throws() {
        let object = Value::Object("{\"a\":1}".into());
        let cell = encode(&object, Some("user_metadata")).unwrap();
        assert_eq!(cell, "#13:user_metadata{\"a\":1}");
        assert_eq!(
            decode(&cell),
            Cell {
                origin: Some("user_metadata"),
                value: object
            }
        );
        assert_eq!(text(&cell), "{\"a\":1}");
        // Only objects and arrays carry an origin.
        assert_eq!(encode(&Value::Num(2.0), Some("x")).as_deref(), Some("2"));
        assert_eq!(encode(&Value::Undefined, None), None);
        assert_eq!(encode(&Value::Throw, None).as_deref(), Some(THROW));
        assert!(is_blank(THROW) && is_blank("null") && !is_blank("0"));
        // A text that only looks like a prefix is read as it is.
        assert_eq!(text("#99:x"), "#99:x");
    }
}
