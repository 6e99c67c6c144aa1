//! JSON text helpers shared by the source, the path function and the sinks: compacting a raw
//! value, walking a path into a JSON text, and rendering a JSON value as a report cell.

use jiter::{Jiter, Peek};

/// One step of a path into a JSON value: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub enum Step {
    /// An object key (on an array, a key that is a canonical index selects that element).
    Key(String),
    /// An array index.
    Index(usize),
}

/// Appends `raw` (valid JSON) to `out` without the white space between tokens.
pub fn compact_into(raw: &[u8], out: &mut Vec<u8>) {
    let mut in_string = false;
    let mut escaped = false;
    for &b in raw {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
        }
    }
}

/// Finds the value at `path` inside the JSON text `text` and returns its text.
///
/// Member access never fails: a step into something that is not an object (or array), or a
/// key that is absent, gives `None` (JavaScript's `undefined`). When an object repeats a key,
/// the last one wins, as in JavaScript.
pub fn get_path<'t>(text: &'t str, path: &[Step]) -> Option<&'t str> {
    let (mut start, mut end) = (0usize, text.len());
    for step in path {
        // NaN and Infinity can stand in arrays that expressions build.
        let mut jiter = Jiter::new(&text.as_bytes()[start..end]).with_allow_inf_nan();
        let peek = jiter.peek().ok()?;
        let (s, e) = match step {
            Step::Key(key) if peek == Peek::Object => find_key(&mut jiter, key)?,
            Step::Key(key) if peek == Peek::Array => find_index(&mut jiter, array_index(key)?)?,
            Step::Index(index) if peek == Peek::Array => find_index(&mut jiter, *index)?,
            Step::Index(index) if peek == Peek::Object => find_key(&mut jiter, &index.to_string())?,
            _ => return None,
        };
        (start, end) = (start + s, start + e);
    }
    Some(text[start..end].trim_ascii())
}

/// The members of the JSON object `text` in their order, each key with the byte range of its
/// value; `None` when `text` is not one valid object.
pub fn members(text: &[u8]) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    let mut jiter = Jiter::new(text);
    let mut out = Vec::new();
    let mut key = jiter.next_object().ok()?.map(str::to_string);
    while let Some(k) = key {
        let peek = jiter.peek().ok()?;
        let start = jiter.current_index();
        jiter.known_skip(peek).ok()?;
        out.push((k, start..jiter.current_index()));
        key = jiter.next_key().ok()?.map(str::to_string);
    }
    jiter.finish().ok()?;
    Some(out)
}

/// A key that is the canonical text of an array index ("0", "12", not "01").
pub fn array_index(key: &str) -> Option<usize> {
    if key == "0" || (!key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit())) {
        key.parse().ok()
    } else {
        None
    }
}

/// Scans the object the parser is on for `key`; returns the byte range of its last value.
fn find_key(jiter: &mut Jiter<'_>, key: &str) -> Option<(usize, usize)> {
    let mut found = None;
    let mut next = jiter.known_object().ok()?.map(|k| k == key);
    while let Some(matched) = next {
        let peek = jiter.peek().ok()?;
        let start = jiter.current_index();
        jiter.known_skip(peek).ok()?;
        if matched {
            found = Some((start, jiter.current_index()));
        }
        next = jiter.next_key().ok()?.map(|k| k == key);
    }
    found
}

/// Steps through the array the parser is on to element `index`; returns its byte range.
fn find_index(jiter: &mut Jiter<'_>, index: usize) -> Option<(usize, usize)> {
    let mut peek = jiter.known_array().ok()??;
    for _ in 0..index {
        jiter.known_skip(peek).ok()?;
        peek = jiter.array_step().ok()??;
    }
    let start = jiter.current_index();
    jiter.known_skip(peek).ok()?;
    Some((start, jiter.current_index()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Step {
        Step::Key(k.to_string())
    }

    #[test]
    fn paths_find_values_and_never_fail() {
        let doc = r#"{"a": {"b": [10, {"c": "x"}, null]}, "d": "text", "a2": 1, "a": {"b": [20]}}"#;
        // A repeated key: the last one wins.
        assert_eq!(
            get_path(doc, &[key("a"), key("b"), Step::Index(0)]),
            Some("20")
        );
        let doc = r#"{"a": {"b": [10, {"c": "x"}, null]}, "d": "text"}"#;
        assert_eq!(
            get_path(doc, &[key("a"), key("b"), Step::Index(1), key("c")]),
            Some(r#""x""#)
        );
        assert_eq!(
            get_path(doc, &[key("a"), key("b"), Step::Index(2)]),
            Some("null")
        );
        assert_eq!(
            get_path(doc, &[key("a"), key("b"), key("1")]),
            Some(r#"{"c": "x"}"#)
        );
        assert_eq!(get_path(doc, &[key("a"), key("b"), key("01")]), None);
        assert_eq!(get_path(doc, &[key("a"), key("b"), Step::Index(3)]), None);
        assert_eq!(get_path(doc, &[key("d"), key("x")]), None);
        assert_eq!(get_path(doc, &[key("zz"), key("x")]), None);
        assert_eq!(get_path(doc, &[]), Some(doc));
        assert_eq!(get_path(r#"{"1": true}"#, &[Step::Index(1)]), Some("true"));
    }

    #[test]
    fn members_keep_their_order() {
        let text = br#" {"b": [1, 2], "a": {"x": null}, "b": "again"} "#;
        let found = members(text).unwrap();
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert_eq!(&text[found[1].1.clone()], br#"{"x": null}"#);
        assert!(members(b"[1]").is_none());
        assert!(members(br#"{"a": 1} x"#).is_none());
    }

    #[test]
    fn compacting_keeps_strings() {
        let mut out = Vec::new();
        compact_into(br#"{ "a b" : [ 1 , "x\" y" ] }"#, &mut out);
        assert_eq!(out, br#"{"a b":[1,"x\" y"]}"#);
    }
}
