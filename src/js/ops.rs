//! The operators, methods and global functions of the expression language, with
//! JavaScript's semantics, over [`Value`]s. Where JavaScript would throw (a method that the
//! value does not have, an invalid date's `toISOString`), the result is `undefined`.

use std::borrow::Cow;

use super::date;
use super::value::{Value, array_elements, is_js_space, join_array, stringify};
use crate::json::{Step, array_index, get_path};

/// The longest string JavaScript engines build (V8: 2^29 - 24 code units).
const MAX_STRING_LENGTH: f64 = 536_870_888.0;

/// The length of `s` in UTF-16 code units, as JavaScript counts it.
fn units_of(s: &str) -> usize {
    // A UTF-8 byte is at most one code unit: count only when that bound is too high.
    if s.len() as f64 <= MAX_STRING_LENGTH {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// The strings `parts` joined, or JavaScript's RangeError (a throw) when the result would
/// be longer than engines allow: measured before anything is built, so memory stays
/// bounded.
pub fn joined<'a, S: AsRef<str>>(parts: &[S]) -> Value<'a> {
    let bytes: usize = parts.iter().map(|p| p.as_ref().len()).sum();
    if bytes as f64 > MAX_STRING_LENGTH {
        let units: usize = parts.iter().map(|p| units_of(p.as_ref())).sum();
        if units as f64 > MAX_STRING_LENGTH {
            return Value::Throw;
        }
    }
    let mut out = String::with_capacity(bytes);
    for p in parts {
        out.push_str(p.as_ref());
    }
    Value::Str(Cow::Owned(out))
}

/// `a + b`.
pub fn add<'a>(a: &Value<'a>, b: &Value<'a>) -> Value<'a> {
    let (pa, pb) = (a.to_primitive(), b.to_primitive());
    if matches!(pa, Value::Str(_)) || matches!(pb, Value::Str(_)) {
        joined(&[pa.to_js_string(), pb.to_js_string()])
    } else {
        Value::Num(pa.to_number() + pb.to_number())
    }
}

/// An arithmetic operator other than `+`.
pub fn arithmetic(op: char, a: &Value<'_>, b: &Value<'_>) -> Value<'static> {
    let (x, y) = (a.to_number(), b.to_number());
    Value::Num(match op {
        '-' => x - y,
        '*' => x * y,
        '/' => x / y,
        _ => x % y,
    })
}

/// `a === b` (objects and arrays are never equal: each is its own reference).
pub fn strict_equals(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Num(x), Value::Num(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        _ => false,
    }
}

/// `a == b`.
pub fn loose_equals(a: &Value<'_>, b: &Value<'_>) -> bool {
    use Value::*;
    match (a, b) {
        (Undefined | Null, Undefined | Null) => true,
        (Undefined | Null, _) | (_, Undefined | Null) => false,
        (Num(_), Str(_)) | (Str(_), Num(_)) => a.to_number() == b.to_number(),
        (Bool(_), _) => loose_equals(&Num(a.to_number()), b),
        (_, Bool(_)) => loose_equals(a, &Num(b.to_number())),
        (Object(_) | Array(_), Num(_) | Str(_)) => loose_equals(&a.to_primitive(), b),
        (Num(_) | Str(_), Object(_) | Array(_)) => loose_equals(a, &b.to_primitive()),
        _ => strict_equals(a, b),
    }
}

/// `a < b` (`None` when a number comparison meets NaN).
fn less_than(a: &Value<'_>, b: &Value<'_>) -> Option<bool> {
    let (pa, pb) = (a.to_primitive(), b.to_primitive());
    if let (Value::Str(x), Value::Str(y)) = (&pa, &pb) {
        return Some(x.encode_utf16().lt(y.encode_utf16()));
    }
    let (x, y) = (pa.to_number(), pb.to_number());
    if x.is_nan() || y.is_nan() {
        None
    } else {
        Some(x < y)
    }
}

/// A relational operator: `<`, `<=`, `>`, `>=`.
pub fn compare(op: &str, a: &Value<'_>, b: &Value<'_>) -> bool {
    match op {
        "<" => less_than(a, b) == Some(true),
        ">" => less_than(b, a) == Some(true),
        "<=" => less_than(b, a) == Some(false),
        _ => less_than(a, b) == Some(false),
    }
}

/// `value[key]` / `value.key`: members of objects and arrays, `length` and code units of
/// strings; anything else is undefined.
pub fn member<'a>(value: &Value<'a>, step: &Step) -> Value<'a> {
    match value {
        Value::Object(text) | Value::Array(text) => match text {
            Cow::Borrowed(t) => {
                get_path(t, std::slice::from_ref(step)).map_or(Value::Undefined, Value::from_json)
            }
            Cow::Owned(t) => get_path(t, std::slice::from_ref(step))
                .map_or(Value::Undefined, |v| Value::from_json(v).into_owned()),
        }
        .or_length(value, step),
        Value::Str(s) => {
            let units: Vec<u16> = s.encode_utf16().collect();
            match step {
                Step::Key(k) if k == "length" => Value::Num(units.len() as f64),
                Step::Index(i) => unit_at(&units, *i as f64),
                Step::Key(k) => match array_index(k) {
                    Some(i) => unit_at(&units, i as f64),
                    None => Value::Undefined,
                },
            }
        }
        _ => Value::Undefined,
    }
}

trait OrLength<'a> {
    fn or_length(self, value: &Value<'a>, step: &Step) -> Value<'a>;
}

impl<'a> OrLength<'a> for Value<'a> {
    /// An array's `length`, when its text has no such member.
    fn or_length(self, value: &Value<'a>, step: &Step) -> Value<'a> {
        match (&self, value, step) {
            (Value::Undefined, Value::Array(text), Step::Key(k)) if k == "length" => {
                Value::Num(array_elements(text).len() as f64)
            }
            _ => self,
        }
    }
}

/// The code unit at `index` as a one-unit string, or undefined.
fn unit_at(units: &[u16], index: f64) -> Value<'static> {
    if index >= 0.0 && (index as usize) < units.len() {
        let i = index as usize;
        Value::Str(Cow::Owned(String::from_utf16_lossy(&units[i..=i])))
    } else {
        Value::Undefined
    }
}

/// ToIntegerOrInfinity.
fn to_integer(value: &Value<'_>) -> f64 {
    let n = value.to_number();
    if n.is_nan() { 0.0 } else { n.trunc() }
}

/// A relative index (negative counts from the end) clamped to `0..=len`.
fn relative(value: &Value<'_>, len: usize, default: f64) -> usize {
    let n = if matches!(value, Value::Undefined) {
        default
    } else {
        to_integer(value)
    };
    let len = len as f64;
    (if n < 0.0 {
        (len + n).max(0.0)
    } else {
        n.min(len)
    }) as usize
}

/// An absolute index clamped to `0..=len`.
fn clamped(value: &Value<'_>, len: usize, default: f64) -> usize {
    let n = if matches!(value, Value::Undefined) {
        default
    } else {
        to_integer(value)
    };
    n.max(0.0).min(len as f64) as usize
}

fn string(units: &[u16]) -> Value<'static> {
    Value::Str(Cow::Owned(String::from_utf16_lossy(units)))
}

fn find(haystack: &[u16], needle: &[u16], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return (from <= haystack.len()).then_some(from);
    }
    (from..=haystack.len().saturating_sub(needle.len()))
        .find(|&i| haystack.len() >= needle.len() && haystack[i..i + needle.len()] == *needle)
}

/// The methods that strings and arrays have, by name.
pub fn has_method(name: &str) -> bool {
    STRING_METHODS.contains(&name) || ARRAY_METHODS.contains(&name)
}

/// Methods of strings.
pub const STRING_METHODS: &[&str] = &[
    "toLowerCase",
    "toUpperCase",
    "trim",
    "trimStart",
    "trimEnd",
    "startsWith",
    "endsWith",
    "includes",
    "indexOf",
    "slice",
    "substring",
    "split",
    "replace",
    "replaceAll",
    "padStart",
    "padEnd",
    "concat",
    "at",
];

/// Methods of arrays.
pub const ARRAY_METHODS: &[&str] = &["join", "includes", "indexOf", "slice", "at", "concat"];

/// Whether `receiver` has the method `name` (strings and arrays have some).
pub fn has_method_for(receiver: &Value<'_>, name: &str) -> bool {
    match receiver {
        Value::Str(_) => STRING_METHODS.contains(&name),
        Value::Array(_) => ARRAY_METHODS.contains(&name),
        _ => false,
    }
}

/// `receiver.name(args…)`; undefined when the receiver has no such method.
pub fn call<'a>(receiver: &Value<'a>, name: &str, args: &[Value<'a>]) -> Value<'a> {
    match receiver {
        Value::Str(s) => string_method(s, name, args),
        Value::Array(text) => array_method(text, name, args),
        _ => Value::Undefined,
    }
}

fn string_method<'a>(s: &str, name: &str, args: &[Value<'a>]) -> Value<'a> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Undefined);
    let units: Vec<u16> = s.encode_utf16().collect();
    let len = units.len();
    let text_arg = |i: usize| -> Vec<u16> { arg(i).to_js_string().encode_utf16().collect() };
    match name {
        "toLowerCase" => Value::Str(Cow::Owned(s.to_lowercase())),
        "toUpperCase" => Value::Str(Cow::Owned(s.to_uppercase())),
        "trim" => Value::Str(Cow::Owned(s.trim_matches(is_js_space).to_string())),
        "trimStart" => Value::Str(Cow::Owned(s.trim_start_matches(is_js_space).to_string())),
        "trimEnd" => Value::Str(Cow::Owned(s.trim_end_matches(is_js_space).to_string())),
        "startsWith" => {
            let search = text_arg(0);
            let start = clamped(&arg(1), len, 0.0);
            Value::Bool(units[start..].starts_with(&search))
        }
        "endsWith" => {
            let search = text_arg(0);
            let end = clamped(&arg(1), len, len as f64);
            Value::Bool(units[..end].ends_with(&search))
        }
        "includes" => {
            let search = text_arg(0);
            Value::Bool(find(&units, &search, clamped(&arg(1), len, 0.0)).is_some())
        }
        "indexOf" => {
            let search = text_arg(0);
            Value::Num(find(&units, &search, clamped(&arg(1), len, 0.0)).map_or(-1.0, |i| i as f64))
        }
        "slice" => {
            let start = relative(&arg(0), len, 0.0);
            let end = relative(&arg(1), len, len as f64);
            string(&units[start..end.max(start)])
        }
        "substring" => {
            let a = clamped(&arg(0), len, 0.0);
            let b = clamped(&arg(1), len, len as f64);
            string(&units[a.min(b)..a.max(b)])
        }
        "split" => split(&units, &arg(0), &arg(1)),
        "replace" | "replaceAll" => {
            let pattern = text_arg(0);
            let replacement = text_arg(1);
            replace(&units, &pattern, &replacement, name == "replaceAll")
        }
        "padStart" | "padEnd" => {
            let target = to_integer(&arg(0));
            let fill: Vec<u16> = match arg(1) {
                Value::Undefined => vec![b' ' as u16],
                other => other.to_js_string().encode_utf16().collect(),
            };
            if target <= len as f64 || fill.is_empty() {
                return string(&units);
            }
            if target > MAX_STRING_LENGTH {
                // JavaScript throws a RangeError (invalid string length).
                return Value::Throw;
            }
            let pad: Vec<u16> = fill
                .iter()
                .copied()
                .cycle()
                .take(target as usize - len)
                .collect();
            if name == "padStart" {
                string(&[pad, units].concat())
            } else {
                string(&[units, pad].concat())
            }
        }
        "concat" => {
            let mut parts = vec![Cow::Borrowed(s)];
            parts.extend(args.iter().map(|v| v.to_js_string()));
            joined(&parts)
        }
        "at" => {
            let i = to_integer(&arg(0));
            let i = if i < 0.0 { len as f64 + i } else { i };
            unit_at(&units, i)
        }
        _ => Value::Undefined,
    }
}

fn split(units: &[u16], separator: &Value<'_>, limit: &Value<'_>) -> Value<'static> {
    let limit = match limit {
        Value::Undefined => u32::MAX as usize,
        other => {
            let n = other.to_number();
            if n.is_nan() || n.is_infinite() {
                0
            } else {
                (n.trunc() as i64).rem_euclid(1 << 32) as usize
            }
        }
    };
    let mut parts: Vec<Value<'static>> = Vec::new();
    if limit == 0 {
        return array_of(&parts);
    }
    if matches!(separator, Value::Undefined) {
        parts.push(string(units));
        return array_of(&parts);
    }
    let sep: Vec<u16> = separator.to_js_string().encode_utf16().collect();
    if sep.is_empty() {
        parts.extend(
            units
                .iter()
                .take(limit)
                .map(|u| string(std::slice::from_ref(u))),
        );
        return array_of(&parts);
    }
    let mut start = 0;
    while let Some(at) = find(units, &sep, start) {
        if at + sep.len() > units.len() {
            break;
        }
        parts.push(string(&units[start..at]));
        if parts.len() >= limit {
            return array_of(&parts);
        }
        start = at + sep.len();
    }
    parts.push(string(&units[start..]));
    parts.truncate(limit);
    array_of(&parts)
}

/// `replace` / `replaceAll` with a string pattern, `$$`, `$&`, `` $` `` and `$'` honoured.
fn replace(units: &[u16], pattern: &[u16], replacement: &[u16], all: bool) -> Value<'static> {
    let mut positions = Vec::new();
    let mut from = 0;
    while let Some(at) = find(units, pattern, from) {
        positions.push(at);
        if !all {
            break;
        }
        from = at + pattern.len().max(1);
        if from > units.len() {
            break;
        }
    }
    // Without `$` patterns the result's length is known before it is built.
    if !replacement.contains(&(b'$' as u16)) {
        let length = units.len() as f64
            + positions.len() as f64 * (replacement.len() as f64 - pattern.len() as f64);
        if length > MAX_STRING_LENGTH {
            return Value::Throw;
        }
    }
    let mut out: Vec<u16> = Vec::with_capacity(units.len());
    let mut last = 0;
    for at in positions {
        out.extend_from_slice(&units[last..at]);
        substitute(units, at, pattern.len(), replacement, &mut out);
        last = at + pattern.len();
        if out.len() as f64 > MAX_STRING_LENGTH {
            // JavaScript's RangeError: the result would be too long.
            return Value::Throw;
        }
    }
    out.extend_from_slice(&units[last..]);
    string(&out)
}

/// GetSubstitution for a match at `at` of length `len` (no capture groups).
fn substitute(units: &[u16], at: usize, len: usize, replacement: &[u16], out: &mut Vec<u16>) {
    let dollar = b'$' as u16;
    let mut i = 0;
    while i < replacement.len() {
        let c = replacement[i];
        if c == dollar && i + 1 < replacement.len() {
            let next = replacement[i + 1];
            if next == dollar {
                out.push(dollar);
                i += 2;
                continue;
            } else if next == b'&' as u16 {
                out.extend_from_slice(&units[at..at + len]);
                i += 2;
                continue;
            } else if next == b'`' as u16 {
                out.extend_from_slice(&units[..at]);
                i += 2;
                continue;
            } else if next == b'\'' as u16 {
                out.extend_from_slice(&units[(at + len).min(units.len())..]);
                i += 2;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
}

/// A JSON array text of `values`.
pub fn array_of(values: &[Value<'_>]) -> Value<'static> {
    let mut out = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(v.to_json().as_deref().unwrap_or("null"));
    }
    out.push(']');
    Value::Array(Cow::Owned(out))
}

/// SameValueZero.
fn same_value_zero(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) if x.is_nan() && y.is_nan() => true,
        _ => strict_equals(a, b),
    }
}

fn array_method<'a>(text: &str, name: &str, args: &[Value<'a>]) -> Value<'a> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Undefined);
    let elements = array_elements(text);
    let len = elements.len();
    match name {
        "join" => {
            let separator = match arg(0) {
                Value::Undefined => Cow::Borrowed(","),
                other => Cow::Owned(other.to_js_string().into_owned()),
            };
            let separators = len.saturating_sub(1) as f64 * units_of(&separator) as f64;
            if separators > MAX_STRING_LENGTH {
                return Value::Throw;
            }
            let out = join_array(text, &separator);
            if units_of(&out) as f64 > MAX_STRING_LENGTH {
                return Value::Throw;
            }
            Value::Str(Cow::Owned(out))
        }
        "includes" => {
            let target = arg(0);
            let from = relative(&arg(1), len, 0.0);
            Value::Bool(elements[from..].iter().any(|e| same_value_zero(e, &target)))
        }
        "indexOf" => {
            let target = arg(0);
            let from = relative(&arg(1), len, 0.0);
            Value::Num(
                elements[from..]
                    .iter()
                    .position(|e| strict_equals(e, &target))
                    .map_or(-1.0, |i| (i + from) as f64),
            )
        }
        "slice" => {
            let start = relative(&arg(0), len, 0.0);
            let end = relative(&arg(1), len, len as f64);
            array_of(&elements[start..end.max(start)])
        }
        "concat" => {
            // Arrays are spread, other values appended.
            let mut all: Vec<Value<'_>> = elements.clone();
            for a in args {
                match a {
                    Value::Array(t) => all.extend(array_elements(t)),
                    other => all.push(other.clone()),
                }
            }
            array_of(&all)
        }
        "at" => {
            let i = to_integer(&arg(0));
            let i = if i < 0.0 { len as f64 + i } else { i };
            if i >= 0.0 && (i as usize) < len {
                elements[i as usize].clone().into_owned()
            } else {
                Value::Undefined
            }
        }
        _ => Value::Undefined,
    }
}

/// A global function: `String`, `Number`, `Boolean`, `Array.isArray`, `JSON.stringify`,
/// `Math.*`, `Date.parse`, and the two `new Date(x)` methods (`Date.toISOString`,
/// `Date.getTime`).
pub fn global<'a>(name: &str, args: &[Value<'a>]) -> Value<'a> {
    let first = args.first().cloned().unwrap_or(Value::Undefined);
    match name {
        "String" if args.is_empty() => Value::Str(Cow::Borrowed("")),
        "String" => Value::Str(first.to_js_string()),
        "Number" if args.is_empty() => Value::Num(0.0),
        "Number" => Value::Num(first.to_number()),
        "Boolean" => Value::Bool(first.truthy()),
        "Array.isArray" => Value::Bool(matches!(first, Value::Array(_))),
        "JSON.stringify" => {
            stringify(&first).map_or(Value::Undefined, |s| Value::Str(Cow::Owned(s)))
        }
        "Math.min" | "Math.max" => {
            let max = name == "Math.max";
            let mut acc = if max {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            for a in args {
                let n = a.to_number();
                if n.is_nan() || acc.is_nan() {
                    acc = f64::NAN;
                } else if (max && (n > acc || (n == 0.0 && acc == 0.0 && acc.is_sign_negative())))
                    || (!max && (n < acc || (n == 0.0 && acc == 0.0 && n.is_sign_negative())))
                {
                    acc = n;
                }
            }
            Value::Num(acc)
        }
        "Math.round" => {
            let x = first.to_number();
            if !x.is_finite() || x == x.trunc() {
                return Value::Num(x);
            }
            let floor = x.floor();
            let r = if x - floor >= 0.5 { floor + 1.0 } else { floor };
            // Values in [-0.5, 0) round to -0.
            Value::Num(if r == 0.0 && x < 0.0 { -0.0 } else { r })
        }
        "Math.floor" => Value::Num(first.to_number().floor()),
        "Math.ceil" => Value::Num(first.to_number().ceil()),
        "Math.abs" => Value::Num(first.to_number().abs()),
        "Date.parse" => Value::Num(date::parse(&first.to_js_string())),
        "Date.getTime" => Value::Num(date::time_value(&first)),
        "Date.toISOString" => {
            let t = date::time_value(&first);
            match date::to_iso_string(t) {
                Some(s) => Value::Str(Cow::Owned(s)),
                // An invalid date: JavaScript throws a RangeError.
                None => Value::Throw,
            }
        }
        _ => Value::Undefined,
    }
}

/// The names [`global`] knows.
pub const GLOBALS: &[&str] = &[
    "String",
    "Number",
    "Boolean",
    "Array.isArray",
    "JSON.stringify",
    "Math.min",
    "Math.max",
    "Math.round",
    "Math.floor",
    "Math.ceil",
    "Math.abs",
    "Date.parse",
];
