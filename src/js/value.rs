//! JavaScript values as userport sees them, and the conversions the language defines
//! between them (ToBoolean, ToNumber, ToString, ToPrimitive), on values read from JSON.
//!
//! Objects and arrays stay JSON text until an operation needs their members.

use std::borrow::Cow;

use jiter::Jiter;

/// A JavaScript value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `undefined` (an absent attribute).
    Undefined,
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Num(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// An object, as compact JSON text.
    Object(Cow<'a, str>),
    /// An array, as compact JSON text.
    Array(Cow<'a, str>),
    /// What an expression that threw evaluates to: it makes the whole expression throw
    /// (an empty cell), except where JavaScript would not have evaluated it.
    Throw,
}

impl<'a> Value<'a> {
    /// Reads a value from JSON text (`NaN`, `Infinity` and `-Infinity` are accepted too:
    /// they carry those numbers between functions).
    pub fn from_json(text: &'a str) -> Value<'a> {
        let text = text.trim_ascii();
        match text.as_bytes().first() {
            None => Value::Undefined,
            Some(b'n') => Value::Null,
            Some(b'!') => Value::Throw,
            Some(b't') => Value::Bool(true),
            Some(b'f') => Value::Bool(false),
            Some(b'"') => Value::Str(unquote(text)),
            Some(b'{') => Value::Object(Cow::Borrowed(text)),
            Some(b'[') => Value::Array(Cow::Borrowed(text)),
            Some(b'N') => Value::Num(f64::NAN),
            Some(b'I') => Value::Num(f64::INFINITY),
            Some(b'-') if text == "-Infinity" => Value::Num(f64::NEG_INFINITY),
            Some(_) => Value::Num(text.parse().unwrap_or(f64::NAN)),
        }
    }

    /// Writes the value as JSON text (`None` for undefined); numbers keep `-0`, `NaN`,
    /// `Infinity` so that they survive the trip to the next function.
    pub fn to_json(&self) -> Option<String> {
        Some(match self {
            Value::Undefined => return None,
            Value::Throw => super::cell::THROW.to_string(),
            Value::Null => "null".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Num(n) if *n == 0.0 && n.is_sign_negative() => "-0".to_string(),
            Value::Num(n) => number_to_string(*n),
            Value::Str(s) => quote(s),
            Value::Object(t) | Value::Array(t) => t.to_string(),
        })
    }

    /// Takes ownership of borrowed text.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Undefined => Value::Undefined,
            Value::Throw => Value::Throw,
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Num(n) => Value::Num(n),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Object(t) => Value::Object(Cow::Owned(t.into_owned())),
            Value::Array(t) => Value::Array(Cow::Owned(t.into_owned())),
        }
    }

    /// ToBoolean.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Undefined | Value::Null | Value::Throw => false,
            Value::Bool(b) => *b,
            Value::Num(n) => !(*n == 0.0 || n.is_nan()),
            Value::Str(s) => !s.is_empty(),
            Value::Object(_) | Value::Array(_) => true,
        }
    }

    /// `undefined` or `null`.
    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Undefined | Value::Null)
    }

    /// ToPrimitive (hint "default" / "number" / "string" give the same for these values):
    /// arrays become their `join(",")`, objects `"[object Object]"`.
    pub fn to_primitive(&self) -> Value<'a> {
        match self {
            Value::Object(_) => Value::Str(Cow::Borrowed("[object Object]")),
            Value::Array(text) => Value::Str(Cow::Owned(join_array(text, ","))),
            other => other.clone(),
        }
    }

    /// ToNumber.
    pub fn to_number(&self) -> f64 {
        match self {
            Value::Undefined | Value::Throw => f64::NAN,
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Num(n) => *n,
            Value::Str(s) => string_to_number(s),
            Value::Object(_) | Value::Array(_) => self.to_primitive().to_number(),
        }
    }

    /// ToString.
    pub fn to_js_string(&self) -> Cow<'a, str> {
        match self {
            Value::Undefined | Value::Throw => Cow::Borrowed("undefined"),
            Value::Null => Cow::Borrowed("null"),
            Value::Bool(true) => Cow::Borrowed("true"),
            Value::Bool(false) => Cow::Borrowed("false"),
            Value::Num(n) => Cow::Owned(number_to_string(*n)),
            Value::Str(s) => s.clone(),
            Value::Object(_) => Cow::Borrowed("[object Object]"),
            Value::Array(text) => Cow::Owned(join_array(text, ",")),
        }
    }

    /// The elements of an array value (empty for anything else).
    pub fn elements(&self) -> Vec<Value<'_>> {
        match self {
            Value::Array(text) => array_elements(text),
            _ => Vec::new(),
        }
    }
}

/// Number::toString, as JavaScript prints numbers.
pub fn number_to_string(n: f64) -> String {
    ryu_js::Buffer::new().format(n).to_string()
}

/// A JSON string literal for `s`, escaped as `JSON.stringify` does.
pub fn quote(s: &str) -> String {
    crate::json::quote(s)
}

/// The characters of a JSON string literal.
pub fn unquote(text: &str) -> Cow<'_, str> {
    let inner = &text[1..text.len().saturating_sub(1).max(1)];
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    match crate::json::skim::unescape_into(inner, &mut out) {
        Ok(()) => Cow::Owned(out),
        Err(_) => Cow::Borrowed(inner),
    }
}

/// JavaScript's white space and line terminators (what `trim` removes, what ToNumber skips).
pub fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// StringToNumber: white space trimmed; empty is 0; decimal literals, `Infinity`, and
/// `0x` / `0o` / `0b` integers; anything else is NaN.
pub fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_space);
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = t.strip_prefix(prefix) {
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return f64::NAN;
            }
            return digits.chars().fold(0.0, |acc, c| {
                acc * radix as f64 + c.to_digit(radix).unwrap_or(0) as f64
            });
        }
    }
    let (sign, body) = match t.as_bytes()[0] {
        b'+' => (1.0, &t[1..]),
        b'-' => (-1.0, &t[1..]),
        _ => (1.0, t),
    };
    if body == "Infinity" {
        return sign * f64::INFINITY;
    }
    if !is_decimal_literal(body) {
        return f64::NAN;
    }
    sign * body.parse::<f64>().unwrap_or(f64::NAN)
}

/// `digits[.digits][e[+-]digits]` or `.digits[e…]`, digits on at least one side of the dot.
pub fn is_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let count = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut digits = count(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        digits += count(&mut i);
    }
    if digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if count(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// The elements of a JSON array text.
pub fn array_elements(text: &str) -> Vec<Value<'_>> {
    let bytes = text.as_bytes();
    let mut jiter = Jiter::new(bytes).with_allow_inf_nan();
    let mut out = Vec::new();
    let Ok(Some(mut peek)) = jiter.next_array() else {
        return out;
    };
    loop {
        let start = jiter.current_index();
        if jiter.known_skip(peek).is_err() {
            return out;
        }
        out.push(Value::from_json(&text[start..jiter.current_index()]));
        match jiter.array_step() {
            Ok(Some(p)) => peek = p,
            _ => return out,
        }
    }
}

/// The members of a JSON object text, in JavaScript's property order: integer keys
/// ascending first, then the others in the order they were written; a repeated key keeps
/// its first place and its last value.
pub fn object_members(text: &str) -> Vec<(String, Value<'_>)> {
    let bytes = text.as_bytes();
    let mut jiter = Jiter::new(bytes).with_allow_inf_nan();
    let mut members: Vec<(String, Value<'_>)> = Vec::new();
    let mut key = match jiter.next_object() {
        Ok(k) => k.map(str::to_string),
        Err(_) => return members,
    };
    while let Some(k) = key {
        let Ok(peek) = jiter.peek() else { break };
        let start = jiter.current_index();
        if jiter.known_skip(peek).is_err() {
            break;
        }
        let value = Value::from_json(&text[start..jiter.current_index()]);
        match members.iter_mut().find(|(name, _)| *name == k) {
            Some(member) => member.1 = value,
            None => members.push((k, value)),
        }
        key = match jiter.next_key() {
            Ok(k) => k.map(str::to_string),
            Err(_) => break,
        };
    }
    // Array indexes are the integer keys below 2^32 - 1.
    let index = |k: &str| -> Option<u32> {
        crate::json::array_index(k)
            .and_then(|i| u32::try_from(i).ok())
            .filter(|&i| i < u32::MAX)
    };
    let mut integers: Vec<(u32, (String, Value<'_>))> = Vec::new();
    let mut others = Vec::new();
    for member in members {
        match index(&member.0) {
            Some(i) => integers.push((i, member)),
            None => others.push(member),
        }
    }
    integers.sort_by_key(|(i, _)| *i);
    integers.into_iter().map(|(_, m)| m).chain(others).collect()
}

/// `JSON.stringify(value)`: `None` for undefined; objects and arrays re-serialized as
/// JavaScript would (property order, number and string forms).
pub fn stringify(value: &Value<'_>) -> Option<String> {
    let mut out = String::new();
    if !write_json(value, &mut out) {
        return None;
    }
    Some(out)
}

/// Writes `value` as `JSON.stringify` would; `false` for undefined.
fn write_json(value: &Value<'_>, out: &mut String) -> bool {
    match value {
        Value::Undefined | Value::Throw => return false,
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Num(n) if n.is_finite() => out.push_str(&number_to_string(*n)),
        Value::Num(_) => out.push_str("null"),
        Value::Str(s) => out.push_str(&quote(s)),
        Value::Array(text) => {
            out.push('[');
            for (i, element) in array_elements(text).iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !write_json(element, out) {
                    out.push_str("null");
                }
            }
            out.push(']');
        }
        Value::Object(text) => {
            out.push('{');
            let mut first = true;
            for (key, member) in object_members(text) {
                let mark = out.len();
                if !first {
                    out.push(',');
                }
                out.push_str(&quote(&key));
                out.push(':');
                if write_json(&member, out) {
                    first = false;
                } else {
                    out.truncate(mark);
                }
            }
            out.push('}');
        }
    }
    true
}

/// `Array.prototype.join` over a JSON array text: null and undefined elements are empty,
/// nested arrays joined with commas, objects `[object Object]`.
pub fn join_array(text: &str, separator: &str) -> String {
    let mut out = String::new();
    for (i, element) in array_elements(text).iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        if !element.is_nullish() {
            out.push_str(&element.to_js_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_follow_the_language() {
        assert_eq!(string_to_number("  12.5e1 "), 125.0);
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("0x1F"), 31.0);
        assert!(string_to_number("1_000").is_nan());
        assert!(string_to_number("inf").is_nan());
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert_eq!(string_to_number(".5"), 0.5);
        assert!(string_to_number("5.").eq(&5.0));
        assert!(string_to_number("-0x10").is_nan());
        assert_eq!(Value::from_json("[1,[2,3],null]").to_js_string(), "1,2,3,");
        assert!(Value::from_json(r#"{"a":1}"#).to_number().is_nan());
        assert_eq!(Value::from_json("[5]").to_number(), 5.0);
        assert_eq!(Value::from_json("[]").to_number(), 0.0);
    }

    #[test]
    fn stringify_matches_javascript() {
        let v = Value::from_json(r#"{"b":1.0,"2":"\/x","1":[1e21,-0],"b":2,"u":null}"#);
        assert_eq!(
            stringify(&v).unwrap(),
            r#"{"1":[1e+21,0],"2":"/x","b":2,"u":null}"#
        );
        assert_eq!(stringify(&Value::Num(f64::NAN)).unwrap(), "null");
        assert_eq!(stringify(&Value::Undefined), None);
    }
}
