//! One user's JSON object → one row of the canonical schema, appended to column builders.
//!
//! One validating pass of `json::skim` over the line's bytes finds each member without
//! building a JSON tree: typed values go straight into their builders (a string's escapes
//! decoded once), nested values are copied as compact JSON text.

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanBuilder, GenericByteArray, GenericByteBuilder, Int64Builder,
    StringBuilder, new_null_array,
};
use datafusion::arrow::datatypes::ByteArrayType;
use datafusion::arrow::record_batch::RecordBatch;

use super::schema::{self, COLUMNS, Kind};
use crate::json::skim::{self, Fault, Items, Key, Laid, Members, Shape, Skim};
use crate::json::{MAX_DEPTH, Reached, Step, clean_into, cleaned, compact_into};

/// Why a line could not be decoded, with the byte offset in the line where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the decoded text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl From<Fault> for DecodeError {
    fn from(f: Fault) -> Self {
        invalid(f.offset, f.what)
    }
}

/// The error of text that is not JSON at `offset`.
fn invalid(offset: usize, what: &str) -> DecodeError {
    DecodeError {
        offset,
        message: format!("invalid JSON: {what}"),
    }
}

/// Where one column's value is in the user's text, and what the scanner saw of it.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    shape: Shape,
    /// A string's characters when it holds escapes, as a range of the decoded buffer.
    decoded: Option<(usize, usize)>,
}

impl DecodeError {
    /// The error of a parser that started `by` bytes into the text.
    fn shifted(mut self, by: usize) -> Self {
        self.offset += by;
        self
    }
}

enum ColumnBuilder {
    Text(StringBuilder),
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Json(StringBuilder),
}

/// What JavaScript's rules make of the rest of a path where a plain walk stopped (a
/// string's `length`, …): given by the pipeline, which knows those rules.
pub type RestFn = dyn Fn(&str, &[Step]) -> Option<String> + Send + Sync;

/// A path into a JSON column that the scan reads out of each user while it decodes it
/// (`json_path(column, steps…)` with constant steps, lifted into the scan): the value there
/// as JSON text (compact, a repeated key's last value), or null. The paths into one column
/// are all found in one walk over its value.
#[derive(Clone)]
pub struct Path {
    /// The JSON column (its index in the canonical schema).
    pub column: usize,
    /// The steps into its value.
    pub steps: Vec<Step>,
    /// Where a plain walk stops, what the rest of the steps give.
    pub rest: std::sync::Arc<RestFn>,
}

/// The bit of `_extra` in a column mask.
pub const EXTRA_BIT: u32 = 63;

/// A mask of every column.
pub const ALL_COLUMNS: u64 = u64::MAX;

/// The bit of a column in a mask: bit `i` for column `i` of the canonical schema, bit
/// [`EXTRA_BIT`] for `_extra` (`None`: the members outside the canonical schema).
pub fn column_bit(column: Option<usize>) -> u64 {
    column.map_or(1 << EXTRA_BIT, |i| 1 << i)
}

/// Builds record batches of the canonical schema, one user at a time.
pub struct BatchBuilder {
    columns: Vec<ColumnBuilder>,
    /// Which columns are filled (bit `i` for column `i`, bit [`EXTRA_BIT`] for `_extra`);
    /// the others are left null, their values skipped.
    mask: u64,
    /// The typed columns of the mask, in schema order.
    wanted: Vec<usize>,
    extra: StringBuilder,
    rows: usize,
    extra_buf: Vec<u8>,
    raw_buf: Vec<u8>,
    key_buf: String,
    /// The characters of an escaped key of an object on the way of a path.
    member_key: String,
    /// Per path group, per path in it: where the value it led to is in the user being read,
    /// and how many of its steps led there (see [`Follow`]).
    led: Vec<Vec<(Range<usize>, usize)>>,
    /// The paths being followed, per level of a [`Follow`].
    trail: Vec<usize>,
    /// The characters of this user's escaped strings, one after the other.
    decoded: String,
    skim: Skim,
    paths: Vec<Path>,
    /// The paths of each column that has some: the column, the paths' numbers, their steps.
    groups: Vec<(usize, Vec<usize>, Vec<Vec<Step>>)>,
    /// One builder a path.
    path_columns: Vec<StringBuilder>,
    /// When each user's members are laid out (see [`BatchBuilder::with_layout`]): the
    /// columns whose values are looked at for repeated and marked keys.
    laying: Option<u64>,
    /// The layout of the user appended last.
    layout: Vec<u8>,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        let columns = COLUMNS
            .iter()
            .map(|&(_, kind)| match kind {
                Kind::Text => ColumnBuilder::Text(StringBuilder::new()),
                Kind::Bool => ColumnBuilder::Bool(BooleanBuilder::new()),
                Kind::Int => ColumnBuilder::Int(Int64Builder::new()),
                Kind::Json => ColumnBuilder::Json(StringBuilder::new()),
            })
            .collect();
        BatchBuilder {
            columns,
            mask: ALL_COLUMNS,
            wanted: (0..COLUMNS.len()).collect(),
            extra: StringBuilder::new(),
            rows: 0,
            extra_buf: Vec::new(),
            raw_buf: Vec::new(),
            key_buf: String::new(),
            member_key: String::new(),
            led: Vec::new(),
            trail: Vec::new(),
            decoded: String::new(),
            skim: Skim::default(),
            paths: Vec::new(),
            groups: Vec::new(),
            path_columns: Vec::new(),
            laying: None,
            layout: Vec::new(),
        }
    }

    /// A builder that fills only the columns of `mask` (see [`BatchBuilder::mask`]); the
    /// others stay null, their values skipped rather than decoded.
    pub fn with_mask(mask: u64) -> Self {
        BatchBuilder {
            mask,
            wanted: (0..COLUMNS.len())
                .filter(|i| mask & (1 << i) != 0)
                .collect(),
            ..Self::new()
        }
    }

    /// The builder with `paths` read out of each user too (see [`BatchBuilder::finish_paths`]).
    pub fn with_paths(mut self, paths: Vec<Path>) -> Self {
        self.groups.clear();
        for (n, path) in paths.iter().enumerate() {
            match self.groups.iter_mut().find(|(c, ..)| *c == path.column) {
                Some((_, numbers, steps)) => {
                    numbers.push(n);
                    steps.push(path.steps.clone());
                }
                None => self
                    .groups
                    .push((path.column, vec![n], vec![path.steps.clone()])),
            }
        }
        self.path_columns = paths.iter().map(|_| StringBuilder::new()).collect();
        self.led = self
            .groups
            .iter()
            .map(|(_, n, _)| vec![(0..0, 0); n.len()])
            .collect();
        self.paths = paths;
        self
    }

    /// The builder with each user's members laid out as they are checked ([`skim::Laid`]):
    /// the values of the columns of `checked` (a mask as [`BatchBuilder::with_mask`] takes,
    /// `_extra`'s bit for every member outside the canonical schema) are looked at for
    /// repeated and marked keys, so that their records say so; the shapes of the others say
    /// nothing of keys. Values are read whole (paths are found in them afterwards rather
    /// than followed while they are checked). See [`BatchBuilder::layout`].
    pub fn with_layout(mut self, checked: u64) -> Self {
        self.laying = Some(checked);
        self
    }

    /// The layout of the user appended last, when the builder lays users out and the user's
    /// text is short enough ([`skim::Laid::MAX_TEXT`]).
    pub fn layout(&self, text: &str) -> Option<&[u8]> {
        (self.laying.is_some() && text.len() <= skim::Laid::MAX_TEXT)
            .then_some(self.layout.as_slice())
    }

    /// Number of users appended since the last [`BatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no user was appended since the last [`BatchBuilder::finish`].
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends the user whose JSON object text is `text`. On error nothing is appended.
    pub fn append(&mut self, text: &str) -> Result<(), DecodeError> {
        let bytes = text.as_bytes();
        let at = skim::space(bytes, 0);
        match bytes.get(at) {
            Some(b'{') => {}
            Some(&first) => {
                let found = describe(first).ok_or_else(|| invalid(at, "expected value"))?;
                return Err(DecodeError {
                    offset: at,
                    message: format!("expected a JSON object (one user), found {found}"),
                });
            }
            None => return Err(invalid(at, "EOF while parsing a value")),
        }
        // Values are first located (and checked, escapes decoded), then appended, so that an
        // error leaves the builders as they were: `spans[i]` is where column i's value is.
        let mut spans: [Option<Span>; COLUMNS.len()] = [None; COLUMNS.len()];
        let extra = self.mask & (1 << EXTRA_BIT) != 0;
        self.extra_buf.clear();
        self.decoded.clear();
        self.layout.clear();
        let mut members = Members::new(at);
        // The path groups followed while reading (bit `g` for group `g`).
        let mut followed: u64 = 0;
        while let Some(key) = members.next(bytes)? {
            let column = classify(text, &key, &mut self.key_buf)?;
            let wanted = match column {
                Some(i) => self.mask & (1 << i) != 0,
                None => extra,
            };
            // Objects of a wanted JSON column are looked at for repeated keys on the way (they
            // are stored with a repeated key's last value). A column read only for its paths
            // is not: the walk to a path then reads each object it passes whole (the last of
            // a repeated key wins), which costs less than keeping every key of every object
            // to compare.
            let check = self
                .laying
                .is_some_and(|checked| checked & column_bit(column) != 0)
                || (wanted && column.is_some_and(|i| COLUMNS[i].1 == Kind::Json));
            let start = key.value;
            // An object or array read only for its paths is checked member by member and
            // item by item, and the paths are followed on the way.
            let group = match column {
                Some(i)
                    if !wanted && self.laying.is_none() && matches!(bytes[start], b'{' | b'[') =>
                {
                    self.groups.iter().position(|(c, ..)| *c == i)
                }
                _ => None,
            };
            let (end, shape) = match group {
                Some(g) => {
                    followed |= 1 << g;
                    (self.follow(text, g, start)?, Shape::default())
                }
                None => self.skim.value(text, start, 1, check)?,
            };
            members.read(end);
            match column {
                Some(i) => {
                    if spans[i].is_some() {
                        return Err(DecodeError {
                            offset: key.raw.start - 1,
                            message: format!("duplicate key \"{}\"", COLUMNS[i].0),
                        });
                    }
                    let text_value = wanted && COLUMNS[i].1 == Kind::Text && bytes[start] == b'"';
                    let decoded = if text_value && shape.escaped {
                        let from = self.decoded.len();
                        skim::unescape_into(&text[start + 1..end - 1], &mut self.decoded)
                            .map_err(|f| DecodeError::from(f).shifted(start + 1))?;
                        Some((from, self.decoded.len()))
                    } else {
                        None
                    };
                    spans[i] = Some(Span {
                        start,
                        end,
                        shape,
                        decoded,
                    });
                }
                None if extra => {
                    push_extra(
                        &mut self.extra_buf,
                        &self.key_buf,
                        &bytes[start..end],
                        shape.spaced,
                    );
                }
                None => {}
            }
            if self.laying.is_some() {
                Laid { key, end, shape }.write(&mut self.layout);
            }
        }
        let after = skim::space(bytes, members.end());
        if after != bytes.len() {
            return Err(invalid(after, "trailing characters"));
        }

        // Columns outside the mask are not touched: `finish` makes them all null at once.
        for &i in &self.wanted {
            let builder = &mut self.columns[i];
            let Some(span) = spans[i] else {
                append_null(builder);
                continue;
            };
            let raw = &text[span.start..span.end];
            let first = bytes[span.start];
            let stored = match builder {
                ColumnBuilder::Text(b) if first == b'"' => {
                    match span.decoded {
                        Some((from, to)) => b.append_value(&self.decoded[from..to]),
                        None => b.append_value(&raw[1..raw.len() - 1]),
                    }
                    true
                }
                ColumnBuilder::Bool(b) if first == b't' || first == b'f' => {
                    b.append_value(first == b't');
                    true
                }
                // Only integers written as they print: `-0` keeps its text in `_extra`.
                ColumnBuilder::Int(b) if first == b'-' || first.is_ascii_digit() => {
                    match raw.parse::<i64>() {
                        Ok(v) if v != 0 || first != b'-' => {
                            b.append_value(v);
                            true
                        }
                        _ => false,
                    }
                }
                ColumnBuilder::Json(b) if first != b'n' => {
                    // Compact (as Auth0 writes its exports, kept without a copy), and with a
                    // repeated key's last value, as JSON.parse gives it: one rule everywhere
                    // (SQL's JSON functions, expressions, searches).
                    b.append_value(as_str(&cleaned(raw.as_bytes(), span.shape)));
                    true
                }
                _ => false,
            };
            if !stored {
                // A null, or a value of another type: kept under its key in `_extra`.
                append_null(builder);
                if extra {
                    push_extra(
                        &mut self.extra_buf,
                        COLUMNS[i].0,
                        raw.as_bytes(),
                        span.shape.spaced,
                    );
                }
            }
        }
        let mut reached = Vec::new();
        for (g, (column, numbers, steps)) in self.groups.iter().enumerate() {
            let Some(span) = spans[*column].filter(|span| bytes[span.start] != b'n') else {
                for &n in numbers {
                    self.path_columns[n].append_null();
                }
                continue;
            };
            if followed & (1 << g) != 0 {
                reached.clear();
                reached.extend(self.led[g].iter().zip(steps).map(|((at, step), steps)| {
                    let value = &text[at.clone()];
                    match *step == steps.len() {
                        true => Reached::Found(value),
                        false => Reached::Stopped { value, step: *step },
                    }
                }));
            } else {
                // Checked for repeated keys (see above) only when the column itself is wanted.
                let unique = self.mask & (1 << *column) != 0 && !span.shape.repeated;
                let value = &text[span.start..span.end];
                crate::json::reach_all(value, steps, unique, &mut reached);
            }
            for (&n, reached) in numbers.iter().zip(&reached) {
                let out = &mut self.path_columns[n];
                match *reached {
                    Reached::Found(found) if matches!(found.as_bytes()[0], b'{' | b'[') => {
                        self.raw_buf.clear();
                        clean_into(found.as_bytes(), &mut self.raw_buf);
                        out.append_value(as_str(&self.raw_buf));
                    }
                    Reached::Found(found) => out.append_value(found),
                    Reached::Stopped { value, step } => {
                        let path = &self.paths[n];
                        out.append_option((path.rest)(value, &path.steps[step..]));
                    }
                }
            }
        }
        // Outside the mask, `_extra` is left to `finish`, like the other columns.
        if extra {
            if self.extra_buf.is_empty() {
                self.extra.append_null();
            } else {
                let mut object = Vec::with_capacity(self.extra_buf.len() + 2);
                object.push(b'{');
                object.extend_from_slice(&self.extra_buf);
                object.push(b'}');
                self.extra.append_value(as_str(&object));
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Checks the value at `start` (the value of the column of path group `g`, read only
    /// for its paths), following the group's paths through it (see [`Follow`]); where the
    /// value ends.
    fn follow(&mut self, text: &str, g: usize, start: usize) -> Result<usize, DecodeError> {
        let steps = &self.groups[g].2;
        self.trail.clear();
        self.trail.extend(0..steps.len());
        let mut follow = Follow {
            skim: &mut self.skim,
            key: &mut self.member_key,
            trail: &mut self.trail,
            steps,
            led: &mut self.led[g],
        };
        follow.enter(text, 0..steps.len(), 0, start)
    }

    /// The values of the paths (see [`BatchBuilder::with_paths`]) of the users taken by the
    /// last [`BatchBuilder::finish`], a column a path.
    pub fn finish_paths(&mut self) -> Vec<ArrayRef> {
        self.path_columns
            .iter_mut()
            .map(|b| Arc::new(renew(b)) as ArrayRef)
            .collect()
    }

    /// Takes the users appended so far as one record batch and starts a new one.
    pub fn finish(&mut self) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
        let rows = self.rows;
        let schema = schema::user_schema();
        let mask = self.mask;
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .enumerate()
            .map(|(i, builder)| -> ArrayRef {
                if mask & (1 << i) == 0 {
                    return new_null_array(schema.field(i).data_type(), rows);
                }
                match builder {
                    ColumnBuilder::Text(b) | ColumnBuilder::Json(b) => Arc::new(renew(b)),
                    ColumnBuilder::Bool(b) => {
                        let array = b.finish();
                        *b = BooleanBuilder::with_capacity(rows);
                        Arc::new(array)
                    }
                    ColumnBuilder::Int(b) => {
                        let array = b.finish();
                        *b = Int64Builder::with_capacity(rows);
                        Arc::new(array)
                    }
                }
            })
            .collect();
        arrays.push(if mask & (1 << EXTRA_BIT) == 0 {
            new_null_array(schema.field(COLUMNS.len()).data_type(), rows)
        } else {
            Arc::new(renew(&mut self.extra))
        });
        self.rows = 0;
        RecordBatch::try_new(schema, arrays)
    }
}

/// Finishes `builder` into its array and starts it again with room for a quarter more
/// values and bytes than the array holds: a builder that grows by doubling copies its bytes
/// again and again (a twentieth of an export's time went to that), and holds up to twice
/// as many.
pub fn renew<T: ByteArrayType>(builder: &mut GenericByteBuilder<T>) -> GenericByteArray<T> {
    let array = builder.finish();
    let room = |n: usize| n + n / 4;
    *builder = GenericByteBuilder::with_capacity(room(array.len()), room(array.values().len()));
    array
}

/// A walk of paths into a JSON value that checks the value as [`Skim::value`] does, in the
/// same pass: the members and items the paths name are followed, the others only checked.
/// A repeated key's last value is where a path goes on, as everywhere (a later member
/// starts the path again from there).
struct Follow<'b> {
    skim: &'b mut Skim,
    /// The characters of an escaped key.
    key: &'b mut String,
    /// The numbers of the paths being followed, each level's after its caller's.
    trail: &'b mut Vec<usize>,
    steps: &'b [Vec<Step>],
    /// Per path: the value it led to (a range of the text) and how many steps led there.
    led: &'b mut [(Range<usize>, usize)],
}

impl Follow<'_> {
    /// Checks the value at `at`, which the paths `self.trail[which]` reached after `depth`
    /// steps, and follows those that go on into its members or items; where it ends.
    fn enter(
        &mut self,
        text: &str,
        which: Range<usize>,
        depth: usize,
        at: usize,
    ) -> Result<usize, DecodeError> {
        for k in which.clone() {
            self.led[self.trail[k]] = (at..at, depth);
        }
        let from = self.trail.len();
        for k in which.clone() {
            let p = self.trail[k];
            if self.steps[p].len() > depth {
                self.trail.push(p);
            }
        }
        let to = self.trail.len();
        // Containers open around the value: the user's object, and `depth` on the way.
        let outside = 1 + depth;
        let end = match text.as_bytes().get(at) {
            Some(&open @ (b'{' | b'[')) if from < to => {
                if outside >= MAX_DEPTH {
                    return Err(Fault {
                        offset: at,
                        what: "recursion limit exceeded",
                    }
                    .into());
                }
                self.inside(text, open == b'{', from..to, depth, at)?
            }
            _ => self.skim.value(text, at, outside, false)?.0,
        };
        self.trail.truncate(from);
        for k in which {
            let (value, step) = &mut self.led[self.trail[k]];
            if *step == depth {
                value.end = end;
            }
        }
        Ok(end)
    }

    /// The members (`object`) or items of the container at `at`, `depth` steps down the
    /// paths `self.trail[which]`, each followed by the paths whose next step names it and
    /// checked; where the container ends.
    fn inside(
        &mut self,
        text: &str,
        object: bool,
        which: Range<usize>,
        depth: usize,
        at: usize,
    ) -> Result<usize, DecodeError> {
        let b = text.as_bytes();
        let mut members = Members::new(at);
        let mut items = Items::new(at);
        let mut n = 0;
        loop {
            let from = self.trail.len();
            let start = if object {
                let Some(key) = members.next(b)? else {
                    return Ok(members.end());
                };
                // A key whose escapes name no characters is one no path names.
                let name = skim::chars(&text[key.raw.clone()], key.escaped, self.key);
                if let Some(name) = name {
                    for k in which.clone() {
                        let p = self.trail[k];
                        if self.steps[p][depth].is_key(name) {
                            self.trail.push(p);
                        }
                    }
                }
                key.value
            } else {
                let Some(item) = items.next(b)? else {
                    return Ok(items.end());
                };
                for k in which.clone() {
                    let p = self.trail[k];
                    if self.steps[p][depth].index() == Some(n) {
                        self.trail.push(p);
                    }
                }
                n += 1;
                item
            };
            let to = self.trail.len();
            let end = match from < to {
                true => self.enter(text, from..to, depth + 1, start)?,
                false => self.skim.value(text, start, depth + 2, false)?.0,
            };
            self.trail.truncate(from);
            match object {
                true => members.read(end),
                false => items.read(end),
            }
        }
    }
}

/// The typed column of `key`, or `None` after copying its characters into `unknown` (for
/// `_extra`).
fn classify(text: &str, key: &Key, unknown: &mut String) -> Result<Option<usize>, DecodeError> {
    let raw = &text[key.raw.clone()];
    if !key.escaped {
        let column = schema::index(raw.as_bytes());
        if column.is_none() {
            unknown.clear();
            unknown.push_str(raw);
        }
        return Ok(column);
    }
    unknown.clear();
    skim::unescape_into(raw, unknown).map_err(|f| DecodeError::from(f).shifted(key.raw.start))?;
    let column = schema::index(unknown.as_bytes());
    Ok(column)
}

/// Appends `"key":raw` to the extra buffer, the key quoted as JSON and the value compacted
/// (when `spaced`: white space stands between its tokens).
fn push_extra(buf: &mut Vec<u8>, key: &str, raw: &[u8], spaced: bool) {
    if !buf.is_empty() {
        buf.push(b',');
    }
    crate::json::quote_into(key, buf);
    buf.push(b':');
    if spaced {
        compact_into(raw, buf);
    } else {
        buf.extend_from_slice(raw);
    }
}

fn append_null(builder: &mut ColumnBuilder) {
    match builder {
        ColumnBuilder::Text(b) | ColumnBuilder::Json(b) => b.append_null(),
        ColumnBuilder::Bool(b) => b.append_null(),
        ColumnBuilder::Int(b) => b.append_null(),
    }
}

/// Text built from UTF-8 input and JSON's own characters (never anything else: an empty
/// text if it ever were).
fn as_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// What a value starting with `first` is, as a message names it (`None`: not JSON).
fn describe(first: u8) -> Option<&'static str> {
    Some(match first {
        b'[' => "an array",
        b'"' => "a string",
        b'n' => "null",
        b't' | b'f' => "a boolean",
        b'-' | b'0'..=b'9' => "a number",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;

    fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a dyn Array {
        batch.column_by_name(name).unwrap().as_ref()
    }

    #[test]
    fn typed_values_go_to_columns_and_the_rest_to_extra() {
        let mut builder = BatchBuilder::new();
        builder
            .append(r#"{"user_id":"auth0|1","logins_count":3,"email_verified":true,"user_metadata":{ "a" : [1, 2] },"x":1}"#)
            .unwrap();
        builder
            .append(
                r#"{"user_id":"auth0|2","logins_count":2.5,"name":null,"email_verified":"yes"}"#,
            )
            .unwrap();
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let logins = column(&batch, "logins_count").as_primitive::<Int64Type>();
        assert_eq!((logins.value(0), logins.is_null(1)), (3, true));
        let meta = column(&batch, "user_metadata").as_string::<i32>();
        assert_eq!(meta.value(0), r#"{"a":[1,2]}"#);
        assert!(meta.is_null(1));
        let extra = column(&batch, EXTRA_NAME).as_string::<i32>();
        assert_eq!(extra.value(0), r#"{"x":1}"#);
        assert_eq!(
            extra.value(1),
            r#"{"email_verified":"yes","name":null,"logins_count":2.5}"#
        );
    }

    #[test]
    fn errors_leave_the_builder_unchanged() {
        let mut builder = BatchBuilder::new();
        builder.append(r#"{"user_id":"a"}"#).unwrap();
        let e = builder
            .append(r#"{"user_id":"b","email":"x","email":"y"}"#)
            .unwrap_err();
        assert_eq!(e.message, "duplicate key \"email\"");
        let e = builder.append(r#"{"user_id":"c"} trailing"#).unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{}", e.message);
        assert_eq!(e.offset, 16);
        let e = builder.append("42").unwrap_err();
        assert_eq!(
            e.message,
            "expected a JSON object (one user), found a number"
        );
        assert_eq!(builder.finish().unwrap().num_rows(), 1);
    }

    #[test]
    fn escaped_keys_and_values_are_decoded_and_checked() {
        let mut builder = BatchBuilder::new();
        builder
            .append(r#"{"user\u005fid":"a\"b","x\u0041":1,"identities":[ {"a": "b c"} ]}"#)
            .unwrap();
        let e = builder
            .append(r#"{"user_id":"c","email":"\x"}"#)
            .unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{}", e.message);
        assert_eq!(e.offset, 25);
        let e = builder.append(r#"{"user_id":"c","e\q":1}"#).unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{}", e.message);
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        let ids = column(&batch, "user_id").as_string::<i32>();
        assert_eq!(ids.value(0), "a\"b");
        let extra = column(&batch, EXTRA_NAME).as_string::<i32>();
        assert_eq!(extra.value(0), r#"{"xA":1}"#);
        let identities = column(&batch, "identities").as_string::<i32>();
        assert_eq!(identities.value(0), r#"[{"a":"b c"}]"#);
    }

    #[test]
    fn compact_values_are_kept_as_they_are_and_others_compacted() {
        for (raw, spaced) in [
            (r#"{"name":"Zoë López","tags":["a b"]}"#, false),
            // White space inside a string is not between tokens.
            (r#"{"city":"Paris, France"}"#, false),
            (r#"{"a": 1}"#, true),
            (r#"[1 ,2]"#, true),
            (r#"{"a":[ ]}"#, true),
            (r#"{"a":"x" }"#, true),
            ("{\"a\":\n1}", true),
            ("{\"a\":1\t}", true),
            (r#"[true,false,null]"#, false),
        ] {
            let (_, shape) = Skim::default().value(raw, 0, 1, true).unwrap();
            assert_eq!(shape.spaced, spaced, "{raw}");
            let mut compacted = Vec::new();
            compact_into(raw.as_bytes(), &mut compacted);
            // What is not compacted is compact already; what is, changes.
            assert_eq!(compacted == raw.as_bytes(), !spaced, "{raw}");
            let mut builder = BatchBuilder::new();
            builder
                .append(&format!(r#"{{"user_metadata":{raw}}}"#))
                .unwrap();
            let batch = builder.finish().unwrap();
            let stored = column(&batch, "user_metadata").as_string::<i32>().value(0);
            assert_eq!(stored.as_bytes(), compacted, "{raw}");
        }
    }

    /// The path columns of one user whose `column` holds `value`, read with the column
    /// itself wanted or not (followed while checked, or walked after).
    fn path_values(
        value: &str,
        paths: &[Vec<Step>],
        wanted: bool,
    ) -> Result<Vec<Option<String>>, DecodeError> {
        let column = schema::index(b"user_metadata").unwrap();
        let mask = match wanted {
            true => ALL_COLUMNS,
            false => ALL_COLUMNS & !(1 << column),
        };
        let rest: Arc<RestFn> = Arc::new(|value: &str, steps: &[Step]| {
            Some(format!("rest of {} at {value}", steps.len()))
        });
        let paths = paths
            .iter()
            .map(|steps| Path {
                column,
                steps: steps.clone(),
                rest: rest.clone(),
            })
            .collect();
        let mut builder = BatchBuilder::with_mask(mask).with_paths(paths);
        builder.append(&format!(
            r#"{{"user_id":"a","user_metadata":{value},"x":[1]}}"#
        ))?;
        builder.finish().unwrap();
        Ok(builder
            .finish_paths()
            .iter()
            .map(|a| {
                let a = a.as_string::<i32>();
                (!a.is_null(0)).then(|| a.value(0).to_string())
            })
            .collect())
    }

    #[test]
    fn paths_followed_while_checking_lead_where_a_walk_after_leads() {
        let key = |k: &str| Step::Key(k.to_string());
        let paths = vec![
            vec![],
            vec![key("a")],
            vec![key("a"), key("b")],
            vec![key("a"), key("b"), Step::Index(1)],
            vec![key("a"), key("b"), key("1"), key("c")],
            vec![key("a"), key("length")],
            vec![Step::Index(0), key("connection")],
            vec![key("0"), key("connection")],
            vec![Step::Index(2)],
            vec![key("é"), key("x")],
            vec![key("2")],
        ];
        for value in [
            r#"{"a":{"b":[1,{"c":2}]}}"#,
            r#"{"a":{"b":[1,{"c":2}]},"a":"text"}"#,
            r#"{"a":"text","a":{"b":[0,{"c":[3, 4]}],"b":{"1":{"c":{"d" : 5}}}}}"#,
            r#"{ "a" : { "b" : [ 7 , { "c" : null } ] } , "\u00e9" : {"x":"\"y\""} }"#,
            r#"{"\u00e9":{"x":1},"\ud800":{"x":3},"é":{"x":2},"2":true}"#,
            r#"[{"connection":"db","user_id":"1"},{"connection":"social"},[1,2]]"#,
            r#"[{"connection":"db","connection":"again"}]"#,
            r#"[]"#,
            r#"{}"#,
            r#"[[{"a":1}],{"b":2},{"c":[{"d":3}]}]"#,
        ] {
            let followed = path_values(value, &paths, false).unwrap();
            let walked = path_values(value, &paths, true).unwrap();
            assert_eq!(followed, walked, "{value}");
        }
        // The value is checked as a whole all the same, with the same faults.
        for value in [
            r#"{"a":{"b":[1,]}}"#,
            r#"{"a":{"b":[1 2]}}"#,
            r#"{"a":{"b" 1}}"#,
            r#"{"a":{"b":1,}}"#,
            r#"[{"connection":"db"},]"#,
            r#"[{"connection":"db"} {"x":1}]"#,
            r#"[{"connection":tru}]"#,
            r#"{"a":{"b":[1,{"c":"\x"}]}}"#,
            r#"{"z":[1,]}"#,
            r#"{"a":{"b":[1,{"c":2}]"#,
        ] {
            let paths_followed = path_values(value, &paths, false).unwrap_err();
            let no_paths = path_values(value, &[], false).unwrap_err();
            assert_eq!(paths_followed, no_paths, "{value}");
        }
        let deep = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let deep_paths = vec![vec![Step::Index(0); MAX_DEPTH + 1]];
        let fault = path_values(&deep, &deep_paths, false).unwrap_err();
        assert_eq!(fault, path_values(&deep, &[], false).unwrap_err());
        assert!(
            fault.message.contains("recursion limit"),
            "{}",
            fault.message
        );
    }

    #[test]
    fn a_layout_gives_what_a_second_checking_scan_finds() {
        let users = [
            r#"{"user_id":"auth0|1","email":"a@b.co","user_metadata":{"k":[1,{"x":2}]}}"#,
            r#" { "email" : "a@b.co" , "user_metadata" : { "a" : [ 1 , 2 ] } } "#,
            r#"{"app_metadata":{"a":1,"b":{"c":1,"c":2}},"identities":[{"x":1,"x":2}]}"#,
            r#"{"user_metadata":{"a.b":1},"app_metadata":{"\u0024x":2},"x":{"\u00e9":3}}"#,
            r#"{"n\u0061me":"\u00e9\n","nick":"x","blocked":true,"logins_count":-0}"#,
            r#"{"user_metadata":{"k\u00e9y":{"k\u00e9y":1,"ké\u0079":2}}}"#,
            "{}",
        ];
        let paths = vec![Path {
            column: schema::index(b"user_metadata").unwrap(),
            steps: vec![Step::Key("a".into())],
            rest: Arc::new(|_: &str, _: &[Step]| None),
        }];
        for mask in [0, ALL_COLUMNS] {
            let mut builder = BatchBuilder::with_mask(mask)
                .with_paths(paths.clone())
                .with_layout(ALL_COLUMNS);
            for user in users {
                builder.append(user).unwrap();
                let layout = builder.layout(user).unwrap();
                let laid = crate::json::laid_members(user, layout).unwrap();
                let scanned = crate::json::shaped_members(&mut Skim::default(), user, true)
                    .unwrap()
                    .unwrap();
                assert_eq!(laid, scanned, "{user}");
            }
            // After a refused user, the next user's layout is its own alone.
            assert!(builder.append(r#"{"a":1,"b":[2,}"#).is_err());
            builder.append(users[2]).unwrap();
            let laid = crate::json::laid_members(users[2], builder.layout(users[2]).unwrap());
            let scanned = crate::json::shaped_members(&mut Skim::default(), users[2], true);
            assert_eq!(laid, scanned.unwrap());
        }
    }

    const EXTRA_NAME: &str = schema::EXTRA;
}
