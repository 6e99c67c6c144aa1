//! JSON text helpers shared by the source, the path function and the sinks: compacting a raw
//! value, walking a path into a JSON text, and rendering a JSON value as a report cell.

use std::collections::BTreeMap;

use jiter::{Jiter, Peek};

pub mod skim;

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
    match reach(text, path) {
        Reached::Found(value) => Some(value),
        Reached::Stopped { .. } => None,
    }
}

/// How far a walk along a path into a JSON text went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached<'t> {
    /// The value at the whole path.
    Found(&'t str),
    /// The value reached by the first `step` steps, which has nothing at the next one (as
    /// a member or an item: a string's `length` is for JavaScript's rules to say).
    Stopped {
        /// The last value reached.
        value: &'t str,
        /// How many steps led to it.
        step: usize,
    },
}

/// Walks `path` into the JSON text `text` as [`get_path`] does, and says where it stopped.
pub fn reach<'t>(text: &'t str, path: &[Step]) -> Reached<'t> {
    let mut value = Raw(text.trim_ascii());
    for (n, step) in path.iter().enumerate() {
        match value.step(step) {
            Some(next) => value = next,
            None => {
                return Reached::Stopped {
                    value: value.0,
                    step: n,
                };
            }
        }
    }
    Reached::Found(value.0)
}

/// [`reach`] for several paths into the same text in one walk: the members and items on
/// the way are read once, whatever the number of paths through them. `reached[i]` is
/// where `paths[i]` led.
///
/// With `unique` (no object in the text has a key twice), an object is read only up to the
/// last member that a path goes through.
pub fn reach_all<'t>(
    text: &'t str,
    paths: &[Vec<Step>],
    unique: bool,
    reached: &mut Vec<Reached<'t>>,
) {
    let root = Raw(text.trim_ascii());
    reached.clear();
    reached.extend(paths.iter().map(|path| match path.is_empty() {
        true => Reached::Found(root.0),
        false => Reached::Stopped {
            value: root.0,
            step: 0,
        },
    }));
    let all: Vec<usize> = (0..paths.len()).filter(|&p| !paths[p].is_empty()).collect();
    walk_paths(root, 0, paths, &all, unique, reached);
}

/// Reads `value`, reached by `depth` steps of each of the paths `which`, once: a member or
/// item that is the next step of some of them is where they go on (a repeated key's last
/// value, as everywhere; with `unique`, no key is repeated and the walk stops at the last
/// member needed).
fn walk_paths<'t>(
    value: Raw<'t>,
    depth: usize,
    paths: &[Vec<Step>],
    which: &[usize],
    unique: bool,
    reached: &mut [Reached<'t>],
) {
    // How many of `which` went on through `found`.
    let mut go_on = |found: Raw<'t>, matched: &mut dyn Iterator<Item = usize>| {
        let mut deeper = Vec::new();
        let mut count = 0;
        for p in matched {
            count += 1;
            if paths[p].len() == depth + 1 {
                reached[p] = Reached::Found(found.0);
            } else {
                reached[p] = Reached::Stopped {
                    value: found.0,
                    step: depth + 1,
                };
                deeper.push(p);
            }
        }
        if !deeper.is_empty() {
            walk_paths(found, depth + 1, paths, &deeper, unique, reached);
        }
        count
    };
    match value.0.as_bytes().first() {
        Some(b'{') => {
            let mut unescaped = String::new();
            let mut left = which.len();
            value.each_member(|written, member| {
                let inner = &written[1..written.len() - 1];
                // A key whose escapes name no characters is one no path names.
                let Some(key) = skim::chars(inner, inner.contains('\\'), &mut unescaped) else {
                    return Some(true);
                };
                let mut matched = which
                    .iter()
                    .copied()
                    .filter(|&p| paths[p][depth].is_key(key));
                left = left.saturating_sub(go_on(member, &mut matched));
                Some(!(unique && left == 0))
            });
        }
        Some(b'[') => {
            let last = which.iter().filter_map(|&p| paths[p][depth].index()).max();
            let Some(last) = last else { return };
            let mut n = 0;
            value.each_item(|item| {
                let mut matched = which
                    .iter()
                    .copied()
                    .filter(|&p| paths[p][depth].index() == Some(n));
                go_on(item, &mut matched);
                n += 1;
                n <= last
            });
        }
        _ => {}
    }
}

impl Step {
    /// Whether this step, on an object, names the member `key` (an index names the key
    /// that is its text).
    pub(crate) fn is_key(&self, key: &str) -> bool {
        match self {
            Step::Key(k) => k == key,
            Step::Index(i) => array_index(key) == Some(*i),
        }
    }

    /// The item this step names on an array (a key that is a canonical index names it).
    pub(crate) fn index(&self) -> Option<usize> {
        match self {
            Step::Key(k) => array_index(k),
            Step::Index(i) => Some(*i),
        }
    }
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

/// A JSON parser's `message` about the text at byte `at` of `bytes`, made plain where the
/// parser says little: a lone UTF-16 surrogate escape (`\ud800` without its pair) is named
/// as such.
pub fn explain(bytes: &[u8], at: usize, message: &str) -> String {
    let window = &bytes[at.saturating_sub(12).min(bytes.len())..(at + 6).min(bytes.len())];
    let lone = memchr::memmem::find_iter(window, b"\\u").find_map(|i| {
        let hex = std::str::from_utf8(window.get(i + 2..i + 6)?).ok()?;
        let unit = u16::from_str_radix(hex, 16).ok()?;
        (0xD800..=0xDFFF).contains(&unit).then(|| hex.to_string())
    });
    if message.contains("recursion limit") {
        return format!("a value nests deeper than {MAX_DEPTH} levels, the most userport reads");
    }
    match lone {
        Some(hex) if message.contains("escape") || message.contains("surrogate") => format!(
            "a lone UTF-16 surrogate escape (\\u{hex}) is not a character: a high surrogate \
             (\\uD800-\\uDBFF) must be followed by a low one (\\uDC00-\\uDFFF)"
        ),
        _ => message.to_string(),
    }
}

/// How deep [`dedupe`] looks for repeated keys (deeper values are kept as written).
const DEDUPE_DEPTH: usize = MAX_DEPTH;

/// The JSON text `raw` (valid JSON) with every object's repeated keys resolved as
/// `JSON.parse` resolves them: a key keeps the place of its first occurrence and the value
/// of its last. Numbers, strings and literals keep their exact text; the result is compact.
pub fn dedupe(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut jiter = Jiter::new(raw);
    match jiter.peek() {
        Ok(peek) if rewrite(&mut jiter, raw, peek, &mut out, 0) => out,
        _ => {
            out.clear();
            compact_into(raw, &mut out);
            out
        }
    }
}

/// Writes the value that `peek` starts into `out`, objects without repeated keys; `false`
/// when the text is not valid JSON.
fn rewrite(jiter: &mut Jiter<'_>, raw: &[u8], peek: Peek, out: &mut Vec<u8>, depth: usize) -> bool {
    match peek {
        Peek::Array if depth < DEDUPE_DEPTH => {
            out.push(b'[');
            let mut next = jiter.known_array();
            let mut first = true;
            while let Ok(Some(peek)) = next {
                if !first {
                    out.push(b',');
                }
                first = false;
                if !rewrite(jiter, raw, peek, out, depth + 1) {
                    return false;
                }
                next = jiter.array_step();
            }
            out.push(b']');
            next.is_ok()
        }
        Peek::Object if depth < DEDUPE_DEPTH => {
            let mut members: Vec<(String, Vec<u8>)> = Vec::new();
            let mut key = jiter.next_object().map(|k| k.map(str::to_string));
            while let Ok(Some(k)) = key {
                let Ok(peek) = jiter.peek() else { return false };
                let mut value = Vec::new();
                if !rewrite(jiter, raw, peek, &mut value, depth + 1) {
                    return false;
                }
                match members.iter_mut().find(|(name, _)| *name == k) {
                    Some(member) => member.1 = value,
                    None => members.push((k, value)),
                }
                key = jiter.next_key().map(|k| k.map(str::to_string));
            }
            if key.is_err() {
                return false;
            }
            out.push(b'{');
            for (i, (name, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if serde_json::to_writer(&mut *out, name).is_err() {
                    return false;
                }
                out.push(b':');
                out.extend_from_slice(value);
            }
            out.push(b'}');
            true
        }
        _ => {
            let start = jiter.current_index();
            if jiter.known_skip(peek).is_err() {
                return false;
            }
            compact_into(&raw[start..jiter.current_index()], out);
            true
        }
    }
}

/// A key that is the canonical text of an array index ("0", "12", not "01").
pub fn array_index(key: &str) -> Option<usize> {
    if key == "0" || (!key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit())) {
        key.parse().ok()
    } else {
        None
    }
}

/// How deeply a JSON value may nest (the reader of users, jiter, stops there too); a deeper
/// one is refused with a reason, never taken for null.
pub const MAX_DEPTH: usize = 200;

/// A JSON value that keeps what matters to compare and rewrite users: numbers by their exact text (`12345678901234567890123`
/// is not `…124`, `-0` is not `0`), strings by their characters, objects member by member
/// (a key given twice counts once, with its last value, as JSON.parse takes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as its text.
    Number(String),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, by key.
    Object(BTreeMap<String, Value>),
}

impl Value {
    /// Reads one JSON value; `Err` with the reason when it is not JSON or nests deeper than
    /// [`MAX_DEPTH`]. Containers are kept on a stack of their own, not the call stack.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Value, String> {
        /// A container being read: its items, or its members and the key of the next.
        enum Open {
            Array(Vec<Value>),
            Object(BTreeMap<String, Value>, String),
        }
        let failed = |e: jiter::JiterError| e.to_string();
        let mut jiter = Jiter::new(bytes);
        let mut open: Vec<Open> = Vec::new();
        let mut peek = jiter.peek().map_err(failed)?;
        loop {
            // The user's own object holds values of up to MAX_DEPTH levels.
            if open.len() > MAX_DEPTH + 1 {
                return Err(format!("a value nests deeper than {MAX_DEPTH} levels"));
            }
            let mut value = match peek {
                Peek::Null => {
                    jiter.known_null().map_err(failed)?;
                    Value::Null
                }
                Peek::True | Peek::False => Value::Bool(jiter.known_bool(peek).map_err(failed)?),
                Peek::String => Value::String(jiter.known_str().map_err(failed)?.to_string()),
                Peek::Array => match jiter.known_array().map_err(failed)? {
                    Some(first) => {
                        open.push(Open::Array(Vec::new()));
                        peek = first;
                        continue;
                    }
                    None => Value::Array(Vec::new()),
                },
                Peek::Object => match jiter.known_object().map_err(failed)? {
                    Some(key) => {
                        open.push(Open::Object(BTreeMap::new(), key.to_string()));
                        peek = jiter.peek().map_err(failed)?;
                        continue;
                    }
                    None => Value::Object(BTreeMap::new()),
                },
                _ => {
                    let text = jiter.known_number_bytes(peek).map_err(failed)?;
                    Value::Number(String::from_utf8_lossy(text).into_owned())
                }
            };
            // The value is whole: it goes into its container, which may be whole too.
            loop {
                match open.last_mut() {
                    None => {
                        jiter.finish().map_err(failed)?;
                        return Ok(value);
                    }
                    Some(Open::Array(items)) => {
                        items.push(value);
                        if let Some(next) = jiter.array_step().map_err(failed)? {
                            peek = next;
                            break;
                        }
                    }
                    Some(Open::Object(members, key)) => {
                        // A key given twice keeps its last value.
                        members.insert(std::mem::take(key), value);
                        if let Some(next) = jiter.next_key().map_err(failed)? {
                            *key = next.to_string();
                            peek = jiter.peek().map_err(failed)?;
                            break;
                        }
                    }
                }
                value = match open.pop() {
                    Some(Open::Array(items)) => Value::Array(items),
                    Some(Open::Object(members, _)) => Value::Object(members),
                    None => return Err("invalid JSON: a container closed that was not open".into()),
                };
            }
        }
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.get(key),
            _ => None,
        }
    }

    /// Whether it is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl std::fmt::Display for Value {
    /// Compact JSON, numbers with their exact text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => f.write_str(n),
            Value::String(s) => write!(f, "{}", serde_json::Value::from(s.as_str())),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Object(members) => {
                f.write_str("{")?;
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{value}", serde_json::Value::from(key.as_str()))?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Appends `s` as a JSON string literal, escaped as `JSON.stringify` (and serde_json) do:
/// `"`, `\\`, and control characters (`\n`, `\t`, … or `\u00XX`).
pub fn quote_into(s: &str, out: &mut Vec<u8>) {
    quoted(s, |piece| out.extend_from_slice(piece.as_bytes()));
}

/// `s` as a JSON string literal (see [`quote_into`]).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quoted(s, |piece| out.push_str(piece));
    out
}

/// Hands the pieces of `s` as a JSON string literal to `out`, in order.
fn quoted(s: &str, mut out: impl FnMut(&str)) {
    out("\"");
    let mut rest = s;
    loop {
        // The characters up to the next one to escape (most strings: all of them) at once.
        let plain = skim::plain(rest.as_bytes());
        out(&rest[..plain]);
        let Some(c) = rest[plain..].chars().next() else {
            break;
        };
        match c {
            '"' => out("\\\""),
            '\\' => out("\\\\"),
            '\u{8}' => out("\\b"),
            '\u{c}' => out("\\f"),
            '\n' => out("\\n"),
            '\r' => out("\\r"),
            '\t' => out("\\t"),
            c => out(&format!("\\u{:04x}", c as u32)),
        }
        rest = &rest[plain + 1..];
    }
    out("\"");
}

/// Appends the value `raw` (valid JSON) to `out` as the decoder stores JSON values: compact,
/// and with an object's repeated keys resolved as `JSON.parse` does ([`dedupe`]).
pub fn clean_into(raw: &[u8], out: &mut Vec<u8>) {
    if !matches!(raw.first(), Some(b'{' | b'[')) {
        out.extend_from_slice(raw);
        return;
    }
    // What the decoder's scan tells of a value, found the same way; text that does not scan
    // (it nests too deep) is left to `dedupe`.
    let scanned = std::str::from_utf8(raw)
        .ok()
        .and_then(|text| skim::whole(text, true).ok());
    let shape = scanned.unwrap_or(skim::Shape {
        repeated: true,
        ..Default::default()
    });
    out.extend_from_slice(&cleaned(raw, shape));
}

/// The value `raw` (valid JSON) whose [`skim::Shape`] is `shape`, as [`clean_into`] writes
/// it: as it is when it is clean already (no copy).
pub fn cleaned(raw: &[u8], shape: skim::Shape) -> std::borrow::Cow<'_, [u8]> {
    if shape.repeated {
        std::borrow::Cow::Owned(dedupe(raw))
    } else if shape.spaced {
        let mut out = Vec::with_capacity(raw.len());
        compact_into(raw, &mut out);
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

/// The text of one JSON value, valid JSON (a member of a user the reader has checked, a
/// row userport wrote), read where it is without building a tree: its type, its string,
/// its members and items, each again a [`Raw`] viewing the same text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(pub &'a str);

impl<'a> Raw<'a> {
    /// The value's JSON type as messages name it (`integer` for a number without a fraction
    /// or exponent that fits 64 bits, as serde_json reads it).
    pub fn type_name(self) -> &'static str {
        match self.0.as_bytes().first() {
            Some(b'n') => "null",
            Some(b't' | b'f') => "boolean",
            Some(b'"') => "string",
            Some(b'[') => "array",
            Some(b'{') => "object",
            _ if self.is_integer_text() => "integer",
            _ => "number",
        }
    }

    /// Whether a number written as an integer that fits 64 bits.
    fn is_integer_text(self) -> bool {
        !self.0.contains(['.', 'e', 'E'])
            && (self.0.parse::<i64>().is_ok() || self.0.parse::<u64>().is_ok())
    }

    /// Whether `true` or `false`.
    pub fn is_bool(self) -> bool {
        matches!(self.0, "true" | "false")
    }

    /// Whether a string.
    pub fn is_string(self) -> bool {
        self.0.starts_with('"')
    }

    /// Whether an object.
    pub fn is_object(self) -> bool {
        self.0.starts_with('{')
    }

    /// Whether `null`.
    pub fn is_null(self) -> bool {
        self.0 == "null"
    }

    /// The characters of a string (borrowed when it holds no escape); `None` for another
    /// type.
    pub fn string(self) -> Option<std::borrow::Cow<'a, str>> {
        decoded(self.0)
    }

    /// The members of an object in their order (a repeated key as often as it is written);
    /// `None` for another type.
    pub fn members(self) -> Option<Vec<(std::borrow::Cow<'a, str>, Raw<'a>)>> {
        let mut out = Vec::with_capacity(16);
        self.each_member(|key, value| {
            out.push((decoded(key)?, value));
            Some(true)
        })?;
        Some(out)
    }

    /// Calls `f` with each member of an object in order, its key as written (quoted, escapes
    /// as they are) and its value, until `f` gives `false`. `None` for another type, or when
    /// `f` gives `None`.
    fn each_member(self, mut f: impl FnMut(&'a str, Raw<'a>) -> Option<bool>) -> Option<()> {
        self.each_entry(true, |key, value| f(key?, value))
    }

    /// Calls `f` with each item of an array in order until it gives `false`. `None` for
    /// another type.
    fn each_item(self, mut f: impl FnMut(Raw<'a>) -> bool) -> Option<()> {
        self.each_entry(false, |_, value| Some(f(value)))
    }

    /// The loop of [`Raw::each_member`] (`object`: keys before values) and
    /// [`Raw::each_item`].
    fn each_entry(
        self,
        object: bool,
        mut f: impl FnMut(Option<&'a str>, Raw<'a>) -> Option<bool>,
    ) -> Option<()> {
        let text = self.0;
        let b = text.as_bytes();
        let (open, close) = if object { (b'{', b'}') } else { (b'[', b']') };
        if b.first() != Some(&open) {
            return None;
        }
        let mut i = skim::space(b, 1);
        if b.get(i) == Some(&close) {
            return Some(());
        }
        loop {
            let key = if object {
                let key_end = string_end(b, i)?;
                let key = text.get(i..key_end)?;
                i = skim::space(b, key_end);
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i = skim::space(b, i + 1);
                Some(key)
            } else {
                None
            };
            let end = value_end(b, i)?;
            if !f(key, Raw(text.get(i..end)?))? {
                return Some(());
            }
            i = skim::space(b, end);
            match b.get(i) {
                Some(b',') => i = skim::space(b, i + 1),
                Some(&c) if c == close => return Some(()),
                _ => return None,
            }
        }
    }

    /// The member `key` of an object, its last value when repeated, found without a copy.
    fn member(self, key: &str) -> Option<Raw<'a>> {
        let mut found = None;
        self.each_member(|written, value| {
            let inner = &written[1..written.len() - 1];
            let same = if inner.contains('\\') {
                decoded(written)? == key
            } else {
                inner == key
            };
            if same {
                found = Some(value);
            }
            Some(true)
        })?;
        found
    }

    /// What one step of a path reaches from this value: a member of an object, an item of
    /// an array (see [`Step::is_key`] and [`Step::index`]).
    fn step(self, step: &Step) -> Option<Raw<'a>> {
        match (step, self.0.as_bytes().first()?) {
            (Step::Key(key), b'{') => self.member(key),
            (Step::Index(index), b'{') => self.member(&index.to_string()),
            (_, b'[') => self.item(step.index()?),
            _ => None,
        }
    }

    /// Item `index` of an array (the items after it not read).
    pub fn item(self, index: usize) -> Option<Raw<'a>> {
        let mut n = 0;
        let mut found = None;
        self.each_item(|value| {
            if n == index {
                found = Some(value);
                return false;
            }
            n += 1;
            true
        })?;
        found
    }

    /// The characters of the last value of each of `keys` among an object's members, as
    /// [`last`] and [`Raw::string`] read them (`None` where the key is missing or its value
    /// is not a string), in one pass that makes no vector of the members; `None` for another
    /// type.
    pub fn strings<const N: usize>(
        self,
        keys: [&str; N],
    ) -> Option<[Option<std::borrow::Cow<'a, str>>; N]> {
        let mut found: [Option<Raw<'a>>; N] = [None; N];
        self.each_member(|key, value| {
            let name = decoded(key)?;
            if let Some(i) = keys.iter().position(|k| *k == name) {
                found[i] = Some(value);
            }
            Some(true)
        })?;
        Some(found.map(|value| value.and_then(Raw::string)))
    }

    /// The members of an object by key, as a map reads them: sorted by key, a repeated key
    /// once with its last value; `None` for another type.
    pub fn map(self) -> Option<Vec<(std::borrow::Cow<'a, str>, Raw<'a>)>> {
        Some(as_map(self.members()?))
    }

    /// The member `key` of an object (its last value when repeated).
    pub fn get(self, key: &str) -> Option<Raw<'a>> {
        last(&self.members()?, key)
    }

    /// The items of an array; `None` for another type.
    pub fn items(self) -> Option<Vec<Raw<'a>>> {
        let mut out = Vec::new();
        self.each_item(|value| {
            out.push(value);
            true
        })?;
        Some(out)
    }

    /// Whether some object key inside the value, at any depth, holds one of `chars`. In
    /// valid JSON a string followed by `:` is a key, wherever it stands: the text is read
    /// once, string by string, without following its nesting.
    pub fn any_key_with(self, chars: &[char]) -> bool {
        let text = self.0;
        let b = text.as_bytes();
        let mut i = 0;
        // The characters of the escaped keys, one at a time.
        let mut scratch = String::new();
        while let Some(at) = memchr::memchr(b'"', &b[i.min(b.len())..]) {
            let start = i + at;
            let Some(end) = string_end(b, start) else {
                return true;
            };
            i = skim::space(b, end);
            if b.get(i) == Some(&b':') {
                let inner = &text[start + 1..end - 1];
                match skim::chars(inner, inner.contains('\\'), &mut scratch) {
                    Some(key) if !key.contains(chars) => {}
                    _ => return true,
                }
            }
        }
        false
    }
}

/// An object's `members` in their written order (see [`Raw::members`]) as a map reads them:
/// sorted by key, a repeated key once with its last value.
pub fn as_map<'k, 'a>(
    mut members: Vec<(std::borrow::Cow<'k, str>, Raw<'a>)>,
) -> Vec<(std::borrow::Cow<'k, str>, Raw<'a>)> {
    members.reverse();
    // Stable: of a repeated key, the last written comes first and is kept. Keys are
    // compared by their first eight bytes as one number, their characters only where those
    // agree (the keys of a user nearly always differ in them).
    members.sort_by(|a, b| {
        let (x, y) = (a.0.as_bytes(), b.0.as_bytes());
        skim::prefix(x).cmp(&skim::prefix(y)).then_with(|| x.cmp(y))
    });
    members.dedup_by(|later, kept| later.0 == kept.0);
    members
}

/// The value of `key` among an object's `members` (see [`Raw::members`]): its last, when
/// the key is repeated, as `JSON.parse` reads it.
pub fn last<'a>(members: &[(std::borrow::Cow<'_, str>, Raw<'a>)], key: &str) -> Option<Raw<'a>> {
    members
        .iter()
        .rev()
        .find_map(|(k, v)| (k == key).then_some(*v))
}

/// The end (one past the closing quote) of the string whose opening quote is at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        // No control character stands in a valid string: only quotes and escapes stop it.
        j += skim::plain(&b[j.min(b.len())..]);
        match *b.get(j)? {
            b'"' => return Some(j + 1),
            // An escape: the character after the backslash is never the end.
            _ => j += 2,
        }
    }
}

/// The end of the value (valid JSON) that starts at `i`: a string to its closing quote, a
/// container to its closing bracket (strings inside skipped whole), a number or literal to
/// the first byte that cannot continue it.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let rest = &b[i..];
            let len = rest
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                .unwrap_or(rest.len());
            (len > 0).then_some(i + len)
        }
    }
}

/// The members of an object and the [`skim::Shape`] of each value.
pub type ShapedMembers<'a> = (Vec<(std::borrow::Cow<'a, str>, Raw<'a>)>, Vec<skim::Shape>);

/// The members of the JSON object `text` (white space around it allowed), in their order,
/// found in one checking pass of [`skim`]: each key's characters, each value's text and its
/// shape (with `check`, repeated keys looked for inside it), so a value can be written clean
/// ([`cleaned`]) without being scanned again. `Ok(None)` when `text` is JSON but not an
/// object; the fault when it is not JSON.
pub fn shaped_members<'t>(
    scan: &mut skim::Skim,
    text: &'t str,
    check: bool,
) -> Result<Option<ShapedMembers<'t>>, skim::Fault> {
    let b = text.as_bytes();
    let start = skim::space(b, 0);
    if b.get(start) != Some(&b'{') {
        return skim::whole(text, false).map(|_| None);
    }
    let (found, end) = shaped_members_at(scan, text, start, check)?;
    let after = skim::space(b, end);
    if after != b.len() {
        return Err(skim::Fault {
            offset: after,
            what: "trailing characters",
        });
    }
    Ok(Some(found))
}

/// [`shaped_members`] of the object whose opening brace is at `start` of `text`, with
/// where it ends (one past its closing brace); what follows it is not looked at. `scan` is
/// the scanner (its buffers kept from one user to the next).
pub fn shaped_members_at<'t>(
    scan: &mut skim::Skim,
    text: &'t str,
    start: usize,
    check: bool,
) -> Result<(ShapedMembers<'t>, usize), skim::Fault> {
    let b = text.as_bytes();
    let mut members = skim::Members::new(start);
    let (mut out, mut shapes) = (Vec::with_capacity(16), Vec::with_capacity(16));
    while let Some(key) = members.next(b)? {
        let (end, shape) = scan.value(text, key.value, 1, check)?;
        out.push((key_name(text, &key)?, Raw(&text[key.value..end])));
        shapes.push(shape);
        members.read(end);
    }
    Ok(((out, shapes), members.end()))
}

/// [`shaped_members`] of an object whose members a checking scan laid out already
/// ([`skim::Laid`]): read from the layout, the text not scanned again. `None` when the
/// layout does not fit the text (a record out of its bounds or off its characters' edges).
pub fn laid_members<'t>(text: &'t str, layout: &[u8]) -> Option<ShapedMembers<'t>> {
    let records = skim::Laid::read_all(text, layout)?;
    let capacity = layout.len() / skim::Laid::BYTES;
    let (mut out, mut shapes) = (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
    for laid in records {
        let laid = laid?;
        let value = text.get(laid.key.value..laid.end)?;
        out.push((key_name(text, &laid.key).ok()?, Raw(value)));
        shapes.push(laid.shape);
    }
    Some((out, shapes))
}

/// The characters of `key` of `text`: borrowed without an escape, decoded with one (a
/// fault, at its place in `text`, when its escapes name no characters).
pub fn key_name<'t>(
    text: &'t str,
    key: &skim::Key,
) -> Result<std::borrow::Cow<'t, str>, skim::Fault> {
    let raw = text.get(key.raw.clone()).ok_or(skim::Fault {
        offset: key.raw.start.min(text.len()),
        what: "a key out of the text",
    })?;
    if !key.escaped {
        return Ok(std::borrow::Cow::Borrowed(raw));
    }
    let mut name = String::with_capacity(raw.len());
    skim::unescape_into(raw, &mut name).map_err(|f| skim::Fault {
        offset: key.raw.start + f.offset,
        what: f.what,
    })?;
    Ok(std::borrow::Cow::Owned(name))
}

/// The characters of a string given as its quoted text: borrowed without an escape,
/// decoded with one.
fn decoded(quoted: &str) -> Option<std::borrow::Cow<'_, str>> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(std::borrow::Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    skim::unescape_into(inner, &mut out).ok()?;
    Some(std::borrow::Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_is_sorted_by_characters_the_last_of_a_key_kept() {
        let keys = [
            "email_verified",
            "a\u{0}",
            "abcdefgh",
            "",
            "é",
            "a",
            "abcdefghi",
            "email",
            "abcdefgg",
            "ab",
            "z",
            "a",
            "abcdefgh\u{0}",
            "ABC",
            "abcdefgh",
            "e",
            "\u{0}",
        ];
        let members: Vec<(std::borrow::Cow<str>, Raw)> = keys
            .iter()
            .enumerate()
            .map(|(n, k)| (std::borrow::Cow::Borrowed(*k), Raw(["0", "1", "2"][n % 3])))
            .collect();
        let mut expected = members.clone();
        expected.reverse();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        expected.dedup_by(|later, kept| later.0 == kept.0);
        let map = as_map(members);
        let pairs = |m: &[(std::borrow::Cow<str>, Raw)]| -> Vec<(String, String)> {
            m.iter()
                .map(|(k, v)| (k.to_string(), v.0.to_string()))
                .collect()
        };
        assert_eq!(pairs(&map), pairs(&expected));
        // The last "a" (place 11) and the last "abcdefgh" (place 14) are kept.
        assert!(map.iter().any(|(k, v)| k == "a" && v.0 == "2"));
        assert!(map.iter().any(|(k, v)| k == "abcdefgh" && v.0 == "2"));
    }

    #[test]
    fn shaped_members_are_found_in_one_checking_pass() {
        let text = r#" {"a": 1,"b\u0041":{"x":1,"x":2},"c":[1, 2],"d":"\n","b\u0041":{}} "#;
        let (members, shapes) = shaped_members(&mut skim::Skim::default(), text, true)
            .unwrap()
            .unwrap();
        let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["a", "bA", "c", "d", "bA"]);
        let values: Vec<&str> = members.iter().map(|(_, v)| v.0).collect();
        assert_eq!(values, ["1", r#"{"x":1,"x":2}"#, "[1, 2]", r#""\n""#, "{}"]);
        assert!(shapes[1].repeated && !shapes[1].spaced);
        assert!(shapes[2].spaced && !shapes[2].repeated);
        assert!(shapes[3].escaped);
        assert_eq!(shapes[0], skim::Shape::default());
        // Without `check`, repeated keys are not looked for.
        assert!(
            !shaped_members(&mut skim::Skim::default(), text, false)
                .unwrap()
                .unwrap()
                .1[1]
                .repeated
        );
        assert_eq!(
            shaped_members(&mut skim::Skim::default(), "[1]", true),
            Ok(None)
        );
        assert_eq!(
            shaped_members(&mut skim::Skim::default(), r#"{"a":1} x"#, true)
                .unwrap_err()
                .what,
            "trailing characters"
        );
        assert_eq!(
            shaped_members(&mut skim::Skim::default(), r#"{"a":1,}"#, true)
                .unwrap_err()
                .what,
            "trailing comma"
        );
        assert_eq!(
            shaped_members(&mut skim::Skim::default(), r#"{"\ud800":1}"#, true)
                .unwrap_err()
                .offset,
            2
        );
        assert!(shaped_members(&mut skim::Skim::default(), "[1,", true).is_err());
    }

    /// Whether some object inside `raw` repeats a key.
    fn has_duplicate_keys(raw: &[u8]) -> bool {
        let text = std::str::from_utf8(raw).unwrap();
        skim::Skim::default()
            .value(text, 0, 0, true)
            .unwrap()
            .1
            .repeated
    }

    #[test]
    fn repeated_keys_resolve_as_json_parse_does() {
        let raw = br#"{"plan":"a","n":-0,"x":{"k":1,"\u006b":2},"plan":"b","big":12345678901234567890123}"#;
        assert!(has_duplicate_keys(raw));
        assert_eq!(
            String::from_utf8(dedupe(raw)).unwrap(),
            r#"{"plan":"b","n":-0,"x":{"k":2},"big":12345678901234567890123}"#
        );
        assert!(!has_duplicate_keys(
            br#"{"a":{"b":1},"b":{"a":1},"c":[{"a":1},{"a":2}]}"#
        ));
        assert!(has_duplicate_keys(br#"[{"a":1},{"b":1,"b":2}]"#));
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let error = skim::Skim::default().value(&deep, 0, 0, true);
        assert!(error.unwrap_err().to_string().contains("recursion limit"));
    }

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

    #[test]
    fn raw_values_are_read_where_they_are() {
        let user = Raw(r#"{"b":1,"a\u002e":"x\"y","b":[true,{"k.$":null}],"n":-1.5e3,"i":7}"#);
        let members = user.members().unwrap();
        let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a.", "b", "n", "i"]);
        assert!(matches!(members[0].0, std::borrow::Cow::Borrowed(_)));
        assert!(matches!(members[1].0, std::borrow::Cow::Owned(_)));
        // As a map: by key, the last value of a repeated key.
        let map = user.map().unwrap();
        let keys: Vec<(&str, &str)> = map.iter().map(|(k, v)| (k.as_ref(), v.0)).collect();
        assert_eq!(
            keys,
            [
                ("a.", r#""x\"y""#),
                ("b", r#"[true,{"k.$":null}]"#),
                ("i", "7"),
                ("n", "-1.5e3")
            ]
        );
        assert_eq!(user.get("a.").unwrap().string().unwrap(), "x\"y");
        assert_eq!(user.get("b").unwrap().items().unwrap().len(), 2);
        let types: Vec<&str> = map.iter().map(|(_, v)| v.type_name()).collect();
        assert_eq!(types, ["string", "array", "integer", "number"]);
        assert!(user.get("b").unwrap().any_key_with(&['$']));
        assert!(!Raw(r#"{"a":"x.y$","b":[1,{"c":2}]}"#).any_key_with(&['.', '$']));
        assert!(Raw("3").members().is_none() && Raw("{}").items().is_none());
    }

    #[test]
    fn clean_values_are_compact_and_keep_the_last_of_a_repeated_key() {
        let clean = |raw: &str| {
            let mut out = Vec::new();
            clean_into(raw.as_bytes(), &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            clean(r#"{ "a" : [1, 2] , "b": "x y" }"#),
            r#"{"a":[1,2],"b":"x y"}"#
        );
        assert_eq!(
            clean(r#"{"a":1,"b":{"c":1,"c":2},"a":3}"#),
            r#"{"a":3,"b":{"c":2}}"#
        );
        assert_eq!(clean(r#""a  b""#), r#""a  b""#);
    }

    #[test]
    fn strings_end_at_their_closing_quote_wherever_escapes_fall() {
        // Escaped quotes and backslashes at every place around the eight-byte steps.
        for len in 0..40 {
            for at in 0..=len {
                for escape in [r#"\""#, r"\\", r"\u0022", "é"] {
                    let mut inner = "x".repeat(len);
                    inner.insert_str(at, escape);
                    let text = format!(r#"{{"k{inner}":"{inner}","n":[1,"{inner}"]}}"#);
                    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let members = Raw(&text).members().unwrap();
                    assert_eq!(members.len(), 2, "{text}");
                    let (key, value) = &members[0];
                    let decoded: String = serde_json::from_str(value.0).unwrap();
                    assert_eq!(
                        expected[key.as_ref()].as_str(),
                        Some(decoded.as_str()),
                        "{text}"
                    );
                    assert_eq!(members[1].1.items().unwrap().len(), 2, "{text}");
                }
            }
        }
    }
}
