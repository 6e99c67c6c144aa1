//! A validating scanner of JSON text: one pass that checks a value is JSON and says where it
//! ends, whether a string in it holds an escape, whether a container has white space between
//! its tokens and (when asked) whether an object inside repeats a key. Nothing is decoded and
//! no tree is built; strings are searched sixteen bytes at a time. The text is valid UTF-8
//! already (the reader checks each line first), so only JSON's own rules are checked here.

use std::ops::Range;

use super::MAX_DEPTH;

/// Why a text is not JSON: what is wrong, and the byte offset where it went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Byte offset in the scanned text.
    pub offset: usize,
    /// What is wrong (serde_json's words).
    pub what: &'static str,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what)
    }
}

fn fault<T>(offset: usize, what: &'static str) -> Result<T, Fault> {
    Err(Fault { offset, what })
}

const EOF_STRING: &str = "EOF while parsing a string";
const EOF_VALUE: &str = "EOF while parsing a value";
const EOF_OBJECT: &str = "EOF while parsing an object";
const EOF_LIST: &str = "EOF while parsing a list";

/// What the scanner found out about a value besides where it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// A string in the value (or the value, a string) holds a backslash escape.
    pub escaped: bool,
    /// White space stands between two tokens of the value.
    pub spaced: bool,
    /// An object inside the value has a key twice (looked for only when asked).
    pub repeated: bool,
    /// A key inside the value holds a `.` or a `$` (written as it is or as an escape), or
    /// an escape that names no characters: looked for only when asked, as repeated keys are.
    pub marked: bool,
    /// How many items (an array) or members (an object) the value holds; 0 for a string, a
    /// number or a literal.
    pub entries: u32,
}

/// The first byte at or after `i` that is not JSON white space.
#[inline]
pub fn space(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// The first of the JSON white space that stands right before `i` (`i` itself when none
/// does), going back no further than `floor`.
fn space_before(b: &[u8], floor: usize, mut i: usize) -> usize {
    while i > floor && matches!(b[i - 1], b' ' | b'\n' | b'\r' | b'\t') {
        i -= 1;
    }
    i
}

/// Checks the string whose opening quote is at `i`: its end (one past the closing quote),
/// and whether it holds an escape.
#[inline(always)]
pub fn string(b: &[u8], i: usize) -> Result<(usize, bool), Fault> {
    string_in::<false>(b, i).map(|(end, escaped, _)| (end, escaped))
}

/// [`string`], and with `KEY` whether a `.` or a `$` stands in the string as it is written
/// (found by the same sixteen-byte search that looks for its end).
#[inline(always)]
fn string_in<const KEY: bool>(b: &[u8], i: usize) -> Result<(usize, bool, bool), Fault> {
    let mut j = i + 1;
    let (mut escaped, mut marked) = (false, false);
    loop {
        j += plain_in::<KEY>(b.get(j..).unwrap_or_default());
        match b.get(j) {
            Some(b'"') => return Ok((j + 1, escaped, marked)),
            Some(b'\\') => {
                escaped = true;
                j = escape(b, j)?;
            }
            Some(b'.' | b'$') if KEY => {
                marked = true;
                j += 1;
            }
            Some(_) => {
                return fault(
                    j,
                    "control character (\\u0000-\\u001F) found while parsing a string",
                );
            }
            None => return fault(b.len(), EOF_STRING),
        }
    }
}

/// Checks the escape whose backslash is at `j`; where the string goes on after it. (Kept
/// out of [`string`], so that `string` stays small enough to be inlined into the scans.)
#[inline(never)]
fn escape(b: &[u8], j: usize) -> Result<usize, Fault> {
    match b.get(j + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(j + 2),
        Some(b'u') => match b.get(j + 2..j + 6) {
            Some(&[h0, h1, h2, h3])
                if (HEX[h0 as usize] | HEX[h1 as usize] | HEX[h2 as usize] | HEX[h3 as usize])
                    < 16 =>
            {
                Ok(j + 6)
            }
            Some(_) => fault(j + 2, "invalid escape"),
            None => fault(b.len(), EOF_STRING),
        },
        Some(_) => fault(j + 1, "invalid escape"),
        None => fault(b.len(), EOF_STRING),
    }
}

/// The value of each byte as a hexadecimal digit (of either case), by the byte's value;
/// 255 for a byte that is not one: one load a digit of a `\uXXXX` escape, where hostile text
/// holds many, and four digits are valid when their values together have no bit above the
/// lowest four.
const HEX: [u8; 256] = {
    let mut table = [255u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => 255,
        };
        c += 1;
    }
    table
};

/// How many bytes of `b` come before the first quote, backslash or control character (all
/// of them when there is none).
#[inline]
pub(crate) fn plain(b: &[u8]) -> usize {
    plain_in::<false>(b)
}

/// [`plain`], stopping with `KEY` at a `.` or a `$` too.
#[inline(always)]
fn plain_in<const KEY: bool>(b: &[u8]) -> usize {
    let mut at = 0;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    while let Some(chunk) = b.get(at..at + 16) {
        // SAFETY: SSE2 is enabled for this build (every x86-64 processor has it).
        let mask = unsafe { stops::<KEY>(chunk) };
        if mask != 0 {
            return at + mask.trailing_zeros() as usize;
        }
        at += 16;
    }
    at + b[at..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20 || (KEY && (c == b'.' || c == b'$')))
        .unwrap_or(b.len() - at)
}

/// A bit for each of the first 16 bytes of `chunk` that is a quote, a backslash or a
/// control character (or, with `KEY`, a `.` or a `$`).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn stops<const KEY: bool>(chunk: &[u8]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    assert!(chunk.len() >= 16);
    // SAFETY: the 16 bytes read are in `chunk` (asserted); the load needs no alignment.
    let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) };
    let controls = _mm_set1_epi8(0x1f);
    // A byte is a control character when the larger of it and 0x1f is 0x1f.
    let mut found = _mm_or_si128(
        _mm_or_si128(
            _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
            _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
        ),
        _mm_cmpeq_epi8(_mm_max_epu8(v, controls), controls),
    );
    if KEY {
        found = _mm_or_si128(
            found,
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'$' as i8)),
            ),
        );
    }
    _mm_movemask_epi8(found) as u32
}

/// Checks the number, `true`, `false` or `null` at `i`; where it ends.
fn scalar(b: &[u8], i: usize) -> Result<usize, Fault> {
    let word = |w: &[u8]| match b.get(i..i + w.len()) {
        Some(s) if s == w => Ok(i + w.len()),
        Some(_) => fault(i, "expected ident"),
        None => fault(b.len(), EOF_VALUE),
    };
    match b.get(i) {
        Some(b't') => word(b"true"),
        Some(b'f') => word(b"false"),
        Some(b'n') => word(b"null"),
        Some(b'-' | b'0'..=b'9') => number(b, i),
        Some(_) => fault(i, "expected value"),
        None => fault(b.len(), EOF_VALUE),
    }
}

/// Checks the number at `i` (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`).
fn number(b: &[u8], i: usize) -> Result<usize, Fault> {
    let digits = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let mut j = i + usize::from(b.get(i) == Some(&b'-'));
    j = match b.get(j) {
        Some(b'0') => j + 1,
        Some(b'1'..=b'9') => digits(j + 1),
        Some(_) => return fault(j, "invalid number"),
        None => return fault(b.len(), EOF_VALUE),
    };
    if b.get(j) == Some(&b'.') {
        let end = digits(j + 1);
        if end == j + 1 {
            return fault(end.min(b.len()), "invalid number");
        }
        j = end;
    }
    if let Some(b'e' | b'E') = b.get(j) {
        j += 1;
        if let Some(b'+' | b'-') = b.get(j) {
            j += 1;
        }
        let end = digits(j);
        if end == j {
            return fault(end.min(b.len()), "invalid number");
        }
        j = end;
    }
    Ok(j)
}

/// Checks that `text` is one JSON value, white space around it allowed (and counted as
/// [`Shape::spaced`]): its [`Shape`]. With `check`, its objects are looked at for repeated
/// keys.
pub fn whole(text: &str, check: bool) -> Result<Shape, Fault> {
    let b = text.as_bytes();
    let start = space(b, 0);
    let (end, mut shape) = Skim::default().value(text, start, 0, check)?;
    match space(b, end) {
        after if after == b.len() => {
            shape.spaced |= start != 0 || after != end;
            Ok(shape)
        }
        after => fault(after, "trailing characters"),
    }
}

/// The scanner's reusable space: the containers open and the keys of the objects open.
#[derive(Debug, Default)]
pub struct Skim {
    /// The closing byte of each container open, outermost first.
    open: Vec<u8>,
    /// The keys (byte ranges between the quotes, whether escaped) of the objects open.
    keys: Vec<(Range<usize>, bool)>,
    /// Where each open object's keys start in `keys`.
    firsts: Vec<usize>,
    /// The characters of the escaped keys of the object being closed.
    decoded: String,
    /// The tags of the keys of the object being closed.
    prints: Vec<u64>,
}

/// A summary of a key's characters (its first and last eight bytes, and its length): keys
/// with different tags differ, so that looking for a repeated key compares numbers, and
/// characters only where two agree. Cheaper than hashing every byte: the keys of one object
/// nearly always differ in their first or last eight bytes or their length.
#[inline]
fn tag(key: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    // A key of under eight bytes is whole in its prefix.
    let last = key
        .last_chunk::<8>()
        .map_or(0, |last| u64::from_le_bytes(*last).rotate_left(31));
    prefix(key) ^ last ^ (key.len() as u64).wrapping_mul(K)
}

/// The first eight bytes of `key` as a number that orders as they do (zeros past its end):
/// keys with different prefixes are in the prefixes' order, and differ.
#[inline]
pub fn prefix(key: &[u8]) -> u64 {
    match key.first_chunk::<8>() {
        Some(word) => u64::from_be_bytes(*word),
        // Under eight bytes: shifted up to where they stand in a word (an empty key's 0 by
        // nothing: a shift by 64 wraps to one by 0).
        None => key
            .iter()
            .fold(0u64, |word, &c| word << 8 | u64::from(c))
            .wrapping_shl(64 - 8 * key.len() as u32),
    }
}

impl Skim {
    /// Checks the JSON value at `i` (no white space before it), nested inside `depth`
    /// containers already: its end and its [`Shape`]. With `check`, its objects are
    /// looked at for repeated keys. Nesting deeper than [`MAX_DEPTH`] in all is refused.
    pub fn value(
        &mut self,
        text: &str,
        i: usize,
        depth: usize,
        check: bool,
    ) -> Result<(usize, Shape), Fault> {
        let b = text.as_bytes();
        let mut shape = Shape::default();
        match b.get(i) {
            Some(b'"') => {
                let (end, escaped) = string(b, i)?;
                shape.escaped = escaped;
                return Ok((end, shape));
            }
            Some(b'{' | b'[') => {}
            _ => return Ok((scalar(b, i)?, shape)),
        }
        self.open.clear();
        self.keys.clear();
        self.firsts.clear();
        let mut j = i;
        loop {
            // A value starts at `j`.
            match b.get(j) {
                Some(&open @ (b'{' | b'[')) => {
                    if depth + self.open.len() >= MAX_DEPTH {
                        return fault(j, "recursion limit exceeded");
                    }
                    let close = if open == b'{' { b'}' } else { b']' };
                    self.open.push(close);
                    if close == b'}' && check {
                        self.firsts.push(self.keys.len());
                    }
                    let k = space(b, j + 1);
                    shape.spaced |= k != j + 1;
                    if b.get(k) != Some(&close) {
                        if self.open.len() == 1 {
                            shape.entries = 1;
                        }
                        j = if close == b'}' {
                            self.key(b, k, check, &mut shape)?
                        } else {
                            k
                        };
                        continue;
                    }
                    // Empty: closed at once, below.
                    j = k;
                }
                Some(b'"') => {
                    let (end, escaped) = string(b, j)?;
                    shape.escaped |= escaped;
                    j = end;
                }
                _ => j = scalar(b, j)?,
            }
            // After a value (or at the closing byte of an empty container).
            loop {
                let Some(&close) = self.open.last() else {
                    return Ok((j, shape));
                };
                let k = space(b, j);
                shape.spaced |= k != j;
                match b.get(k) {
                    Some(b',') => {
                        if self.open.len() == 1 {
                            shape.entries = shape.entries.saturating_add(1);
                        }
                        let v = space(b, k + 1);
                        shape.spaced |= v != k + 1;
                        if b.get(v) == Some(&close) {
                            return fault(v, "trailing comma");
                        }
                        j = if close == b'}' {
                            self.key(b, v, check, &mut shape)?
                        } else {
                            v
                        };
                        break;
                    }
                    Some(&c) if c == close => {
                        self.open.pop();
                        if close == b'}' && check {
                            self.close_object(text, &mut shape);
                        }
                        j = k + 1;
                    }
                    Some(_) if close == b'}' => return fault(k, "expected `,` or `}`"),
                    Some(_) => return fault(k, "expected `,` or `]`"),
                    None if close == b'}' => return fault(b.len(), EOF_OBJECT),
                    None => return fault(b.len(), EOF_LIST),
                }
            }
        }
    }

    /// Checks the key at `k` and the colon after it; where its value starts.
    fn key(&mut self, b: &[u8], k: usize, check: bool, shape: &mut Shape) -> Result<usize, Fault> {
        match b.get(k) {
            Some(b'"') => {}
            Some(_) => return fault(k, "key must be a string"),
            None => return fault(b.len(), EOF_OBJECT),
        }
        let end = if check {
            let (end, escaped, marked) = string_in::<true>(b, k)?;
            shape.escaped |= escaped;
            // An escaped key's escapes are read when its object closes.
            shape.marked |= marked;
            self.keys.push((k + 1..end - 1, escaped));
            end
        } else {
            let (end, escaped) = string(b, k)?;
            shape.escaped |= escaped;
            end
        };
        let colon = space(b, end);
        shape.spaced |= colon != end;
        match b.get(colon) {
            Some(b':') => {}
            Some(_) => return fault(colon, "expected `:`"),
            None => return fault(b.len(), EOF_OBJECT),
        }
        let v = space(b, colon + 1);
        shape.spaced |= v != colon + 1;
        Ok(v)
    }

    /// Closes the innermost object open: marks `shape` repeated when it had a key twice, and
    /// marked when one of its escaped keys holds a `.` or a `$` (or names no characters).
    /// Keys are compared by their characters: the escaped ones are decoded first (into one
    /// buffer for all).
    fn close_object(&mut self, text: &str, shape: &mut Shape) {
        let Skim {
            keys,
            firsts,
            decoded,
            prints,
            ..
        } = self;
        let first = firsts.pop().unwrap_or(0);
        let open = &mut keys[first..];
        decoded.clear();
        for (range, escaped) in open.iter_mut().filter(|(_, escaped)| *escaped) {
            let from = decoded.len();
            match unescape_into(&text[range.clone()], decoded) {
                // From here on, the key's range is in `decoded`.
                Ok(()) => {
                    *range = from..decoded.len();
                    shape.marked |= decoded.as_bytes()[from..]
                        .iter()
                        .any(|&c| c == b'.' || c == b'$');
                }
                // A key that cannot be decoded is compared as written.
                Err(_) => {
                    decoded.truncate(from);
                    *escaped = false;
                    shape.marked = true;
                }
            }
        }
        let key = |(range, escaped): &(Range<usize>, bool)| match escaped {
            true => &decoded.as_bytes()[range.clone()],
            false => &text.as_bytes()[range.clone()],
        };
        let repeated = match open.len() {
            0 | 1 => false,
            2..=32 => {
                // Tags compared first, characters only where two agree.
                prints.clear();
                prints.extend(open.iter().map(|k| tag(key(k))));
                (1..open.len()).any(|n| {
                    (0..n).any(|m| prints[m] == prints[n] && key(&open[m]) == key(&open[n]))
                })
            }
            _ => {
                let mut sorted: Vec<&[u8]> = open.iter().map(key).collect();
                sorted.sort_unstable();
                sorted.windows(2).any(|w| w[0] == w[1])
            }
        };
        shape.repeated |= repeated;
        keys.truncate(first);
    }
}

/// The members of one object, read one at a time: [`Members::next`] gives a key and where
/// its value starts, the caller checks the value, and [`Members::read`] says where it ended.
#[derive(Debug)]
pub struct Members(Entries);

/// Where the entries (members or items) of one container start, one after the other: what
/// reading an object's members and an array's items have in common.
#[derive(Debug)]
struct Entries {
    /// Where the scan stands: at the opening byte, or just after the last entry read.
    at: usize,
    first: bool,
    /// The closing byte.
    close: u8,
}

impl Entries {
    /// Where the next entry starts, or `None` at the closing byte.
    fn next(&mut self, b: &[u8]) -> Result<Option<usize>, Fault> {
        let close = self.close;
        if self.first {
            self.first = false;
            let k = space(b, self.at + 1);
            if b.get(k) == Some(&close) {
                self.at = k;
                return Ok(None);
            }
            return Ok(Some(k));
        }
        let c = space(b, self.at);
        match b.get(c) {
            Some(b',') => {}
            Some(&x) if x == close => {
                self.at = c;
                return Ok(None);
            }
            Some(_) if close == b'}' => return fault(c, "expected `,` or `}`"),
            Some(_) => return fault(c, "expected `,` or `]`"),
            None if close == b'}' => return fault(b.len(), EOF_OBJECT),
            None => return fault(b.len(), EOF_LIST),
        }
        let k = space(b, c + 1);
        if b.get(k) == Some(&close) {
            return fault(k, "trailing comma");
        }
        Ok(Some(k))
    }
}

/// One key of an object, as [`Members::next`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The key's text between its quotes, escapes as written.
    pub raw: Range<usize>,
    /// Whether the key holds an escape.
    pub escaped: bool,
    /// Where the key's value starts.
    pub value: usize,
}

impl Members {
    /// The members of the object whose opening brace is at `i`.
    pub fn new(i: usize) -> Self {
        Members(Entries {
            at: i,
            first: true,
            close: b'}',
        })
    }

    /// The next member's key, or `None` at the closing brace (then [`Members::end`] says
    /// where the object ends).
    pub fn next(&mut self, b: &[u8]) -> Result<Option<Key>, Fault> {
        let Some(k) = self.0.next(b)? else {
            return Ok(None);
        };
        match b.get(k) {
            Some(b'"') => {}
            Some(_) => return fault(k, "key must be a string"),
            None => return fault(b.len(), EOF_OBJECT),
        }
        let (end, escaped) = string(b, k)?;
        let colon = space(b, end);
        match b.get(colon) {
            Some(b':') => {}
            Some(_) => return fault(colon, "expected `:`"),
            None => return fault(b.len(), EOF_OBJECT),
        }
        Ok(Some(Key {
            raw: k + 1..end - 1,
            escaped,
            value: space(b, colon + 1),
        }))
    }

    /// The last value given by [`Members::next`] ends at `end`.
    pub fn read(&mut self, end: usize) {
        self.0.at = end;
    }

    /// One past the closing brace, once [`Members::next`] gave `None`.
    pub fn end(&self) -> usize {
        self.0.at + 1
    }
}

/// One member of an object as a checking scan found it, written down so that a later
/// reader of the same text finds the members without scanning it again: a user's *layout*
/// is its members' records one after the other ([`Laid::write`], [`Laid::read_all`]), made
/// by the decoder that checks each user anyway and read by prepare's conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Laid {
    /// The key as [`Members::next`] gave it.
    pub key: Key,
    /// One past the value's last byte.
    pub end: usize,
    /// The value's shape, looked at for repeated and marked keys.
    pub shape: Shape,
}

impl Laid {
    /// The bytes of one record: three little-endian `u32`, where the value starts (its low
    /// 28 bits; the shape's flags in the four above), where it ends (its low 28 bits; whether
    /// the key holds an escape in the bit above), and its entries. The key is found again
    /// between the member before (or the opening brace) and the value.
    pub const BYTES: usize = 12;

    /// The longest text whose members can be laid out (offsets are 28-bit).
    pub const MAX_TEXT: usize = (1 << 28) - 1;

    /// Appends this member's record to `out` (its text at most [`Laid::MAX_TEXT`] bytes).
    pub fn write(&self, out: &mut Vec<u8>) {
        let shape = self.shape;
        let flags = u32::from(shape.escaped)
            | u32::from(shape.spaced) << 1
            | u32::from(shape.repeated) << 2
            | u32::from(shape.marked) << 3;
        let mut record = [0u8; Laid::BYTES];
        record[..4].copy_from_slice(&(self.key.value as u32 | flags << 28).to_le_bytes());
        let end = self.end as u32 | u32::from(self.key.escaped) << 28;
        record[4..8].copy_from_slice(&end.to_le_bytes());
        record[8..].copy_from_slice(&shape.entries.to_le_bytes());
        out.extend_from_slice(&record);
    }

    /// The members of the object `text` (white space around it allowed) laid out in
    /// `layout`, in order: `None` when the layout is not a whole number of records, and
    /// each member `None` where the layout does not fit the text (a record off its bounds,
    /// a key not where valid JSON has it).
    pub fn read_all<'a>(
        text: &'a str,
        layout: &'a [u8],
    ) -> Option<impl Iterator<Item = Option<Laid>> + 'a> {
        if !layout.len().is_multiple_of(Laid::BYTES) {
            return None;
        }
        let b = text.as_bytes();
        // Where the scan stands: at the opening brace, then one past each value.
        let mut at = Some(space(b, 0)).filter(|&i| b.get(i) == Some(&b'{'));
        let mut first = true;
        Some(layout.chunks_exact(Laid::BYTES).map(move |record| {
            let word = |i: usize| {
                let bytes: [u8; 4] = record[4 * i..4 * i + 4].try_into().unwrap_or_default();
                u32::from_le_bytes(bytes)
            };
            let (start, end) = (word(0), word(1));
            let value = start as usize & Laid::MAX_TEXT;
            let flags = start >> 28;
            let (end, key_escaped) = (end as usize & Laid::MAX_TEXT, end >> 28 & 1 != 0);
            // The key's opening quote after the brace or the comma; its closing quote before
            // the colon before the value.
            let mut k = if std::mem::take(&mut first) {
                space(b, at? + 1)
            } else {
                let comma = space(b, at?);
                (b.get(comma) == Some(&b',')).then(|| space(b, comma + 1))?
            };
            if b.get(k) != Some(&b'"') {
                return None;
            }
            k += 1;
            let colon = space_before(b, k, value.min(b.len()));
            (colon > k && b[colon - 1] == b':').then_some(())?;
            let close = space_before(b, k, colon - 1);
            (close > k && b[close - 1] == b'"').then_some(())?;
            let close = close - 1;
            if value >= end || end > b.len() {
                return None;
            }
            at = Some(end);
            Some(Laid {
                key: Key {
                    escaped: key_escaped,
                    raw: k..close,
                    value,
                },
                end,
                shape: Shape {
                    escaped: flags & 1 != 0,
                    spaced: flags & 2 != 0,
                    repeated: flags & 4 != 0,
                    marked: flags & 8 != 0,
                    entries: word(2),
                },
            })
        }))
    }
}

/// The items of one array, read one at a time as [`Members`] reads an object's members:
/// [`Items::next`] gives where the next item starts, the caller checks it, and
/// [`Items::read`] says where it ended.
#[derive(Debug)]
pub struct Items(Entries);

impl Items {
    /// The items of the array whose opening bracket is at `i`.
    pub fn new(i: usize) -> Self {
        Items(Entries {
            at: i,
            first: true,
            close: b']',
        })
    }

    /// Where the next item starts, or `None` at the closing bracket (then [`Items::end`]
    /// says where the array ends).
    pub fn next(&mut self, b: &[u8]) -> Result<Option<usize>, Fault> {
        self.0.next(b)
    }

    /// The last item given by [`Items::next`] ends at `end`.
    pub fn read(&mut self, end: usize) {
        self.0.at = end;
    }

    /// One past the closing bracket, once [`Items::next`] gave `None`.
    pub fn end(&self) -> usize {
        self.0.at + 1
    }
}

/// The characters of the string (a key, say) whose text between the quotes (valid JSON,
/// escapes as written) is `raw`: `raw` itself when it holds no escape (`escaped` false),
/// else decoded into `scratch`; `None` when its escapes name no characters (half a
/// surrogate pair, see [`unescape_into`]).
#[inline]
pub fn chars<'a>(raw: &'a str, escaped: bool, scratch: &'a mut String) -> Option<&'a str> {
    if !escaped {
        return Some(raw);
    }
    scratch.clear();
    unescape_into(raw, scratch).ok()?;
    Some(scratch)
}

/// Appends the characters of the string whose text between the quotes (valid JSON, escapes
/// as written) is `raw` to `out`. A `\u` escape of half a surrogate pair without its other
/// half has no character and is refused.
pub fn unescape_into(text: &str, out: &mut String) -> Result<(), Fault> {
    let raw = text.as_bytes();
    let mut i = 0;
    // Keys and most strings are short: a plain loop finds their backslashes sooner than a
    // call of memchr's.
    let backslash = |rest: &[u8]| match rest.len() {
        0..32 => rest.iter().position(|&c| c == b'\\'),
        _ => memchr::memchr(b'\\', rest),
    };
    while let Some(n) = backslash(&raw[i..]) {
        // Cut at backslashes and after escapes: always between characters.
        out.push_str(&text[i..i + n]);
        let at = i + n;
        let c = match raw.get(at + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let unit = hex4(raw, at + 2)?;
                i = at + 6;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        let low = match raw.get(i..i + 2) {
                            Some(b"\\u") => hex4(raw, i + 2)?,
                            _ => return fault(at, "lone leading surrogate in hex escape"),
                        };
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return fault(at, "lone leading surrogate in hex escape");
                        }
                        i += 6;
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    _ => unit,
                };
                match char::from_u32(code) {
                    Some(c) => out.push(c),
                    None => return fault(at, "invalid unicode code point"),
                }
                continue;
            }
            _ => return fault(at + 1, "invalid escape"),
        };
        out.push(c);
        i = at + 2;
    }
    out.push_str(&text[i..]);
    Ok(())
}

/// Whether the escapes of the string whose text between the quotes (valid JSON, escapes as
/// written) is `raw` all name characters: no `\u` escape of half a UTF-16 surrogate pair
/// stands without its other half, which [`unescape_into`] refuses. Nothing is decoded.
pub fn names_characters(raw: &[u8]) -> bool {
    let mut i = 0;
    while let Some(n) = raw[i..].iter().position(|&c| c == b'\\') {
        let at = i + n;
        i = match raw.get(at + 1) {
            Some(b'u') => match hex4(raw, at + 2) {
                // A leading half, its trailing half right after it.
                Ok(0xD800..=0xDBFF)
                    if raw.get(at + 6..at + 8) == Some(b"\\u")
                        && matches!(hex4(raw, at + 8), Ok(0xDC00..=0xDFFF)) =>
                {
                    at + 12
                }
                Ok(0xD800..=0xDFFF) | Err(_) => return false,
                Ok(_) => at + 6,
            },
            Some(_) => at + 2,
            None => return false,
        };
    }
    true
}

/// The four hexadecimal digits at `i` as a number.
fn hex4(raw: &[u8], i: usize) -> Result<u32, Fault> {
    let digits = raw.get(i..i + 4).ok_or(Fault {
        offset: raw.len(),
        what: EOF_STRING,
    })?;
    let [a, b, c, d] = [0, 1, 2, 3].map(|n| u32::from(HEX[digits[n] as usize]));
    if (a | b | c | d) >= 16 {
        return fault(i, "invalid escape");
    }
    Ok(a << 12 | b << 8 | c << 4 | d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str, check: bool) -> Result<(usize, Shape), Fault> {
        Skim::default().value(text, 0, 0, check)
    }

    /// The members of the object `text` as a checking scan finds them.
    fn laid(text: &str) -> Vec<Laid> {
        let b = text.as_bytes();
        let (mut members, mut out) = (Members::new(space(b, 0)), Vec::new());
        while let Some(key) = members.next(b).unwrap() {
            let (end, shape) = Skim::default().value(text, key.value, 1, true).unwrap();
            members.read(end);
            out.push(Laid { key, end, shape });
        }
        out
    }

    #[test]
    fn a_layout_is_read_back_as_it_was_written_and_refused_where_it_does_not_fit() {
        for text in [
            r#"{"a":1,"b\"\u0041":{"x":1,"x":2},"c":[1, 2],"d":"\n","b\u0041":{"$":{}}}"#,
            " {\t\"a\" :\n1 ,\"\" : \"\\\\\" , \"é\":[ ]} ",
            "{}",
        ] {
            let members = laid(text);
            let mut layout = Vec::new();
            for member in &members {
                member.write(&mut layout);
            }
            let read: Option<Vec<Laid>> = Laid::read_all(text, &layout).unwrap().collect();
            assert_eq!(read.unwrap(), members, "{text}");
        }
        let text = r#"{"a":1,"b":[2]}"#;
        let mut layout = Vec::new();
        for member in laid(text) {
            member.write(&mut layout);
        }
        assert!(Laid::read_all(text, &layout[..7]).is_none());
        // A record moved off its value: the key before it is not found where it would be.
        for (at, by) in [(0, 1u8), (12, 2), (16, 9)] {
            let mut moved = layout.clone();
            moved[at] = moved[at].wrapping_add(by);
            let read: Vec<Option<Laid>> = Laid::read_all(text, &moved).unwrap().collect();
            assert!(read.iter().any(Option::is_none), "{at}: {read:?}");
        }
    }

    #[test]
    fn what_serde_json_accepts_is_accepted_and_what_it_refuses_refused() {
        let cases = [
            r#"{"a":[1,-2.5e+3,0,-0,1E9,true,false,null,"x\"y\\\/\b\f\n\r\t\u00e9"],"b":{}}"#,
            r#"{ "a" : [ ] , "b" : { "c" : "d" } }"#,
            "[[[[]]],{},\"\",0.5]",
            r#""\ud83d\ude00""#,
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "1e+",
            "+1",
            "tru",
            "truex",
            "nul",
            r#"{"a":1,}"#,
            "[1,]",
            "[1 2]",
            r#"{"a" 1}"#,
            r#"{1:2}"#,
            r#"{"a":1"#,
            "[",
            "\"abc",
            "\"a\tb\"",
            r#""\x""#,
            r#""\u12g4""#,
            r#""\u12""#,
            "{\"a\":\"b\"}}",
            "[\"a\"]]",
            "",
        ];
        for text in cases {
            let ours = scan(text, false).map(|(end, _)| end);
            // serde_json reads a whole document: trailing bytes are its error, ours end early.
            let theirs = serde_json::from_str::<serde_json::Value>(text);
            match (&ours, &theirs) {
                (Ok(end), Ok(_)) => assert_eq!(*end, text.len(), "{text}"),
                (Ok(end), Err(_)) => assert!(*end < text.len(), "{text}: {ours:?}"),
                (Err(_), Err(_)) => {}
                (Err(e), Ok(_)) => panic!("{text}: refused ({e:?}), serde_json accepts it"),
            }
        }
    }

    #[test]
    fn strings_are_found_at_every_place_around_the_sixteen_byte_steps() {
        for n in 0..40 {
            let body = "é".repeat(n / 2) + &"a".repeat(n % 2);
            for tail in ["", "\\n", "\\\"", "\\u0041", "x\\\\"] {
                let text = format!("\"{body}{tail}\"");
                let (end, escaped) = string(text.as_bytes(), 0).unwrap();
                assert_eq!(end, text.len(), "{text}");
                assert_eq!(escaped, !tail.is_empty(), "{text}");
                let unterminated = &text[..text.len() - 1];
                assert!(
                    string(unterminated.as_bytes(), 0).is_err(),
                    "{unterminated}"
                );
                let control = format!("\"{body}\u{1}{tail}\"");
                let e = string(control.as_bytes(), 0).unwrap_err();
                assert_eq!(e.offset, 1 + body.len(), "{control}");
            }
        }
    }

    #[test]
    fn shapes_say_escapes_space_and_repeated_keys() {
        let (_, shape) = scan(r#"{"a":"b"}"#, true).unwrap();
        let one = Shape {
            entries: 1,
            ..Shape::default()
        };
        assert_eq!(shape, one);
        let (_, shape) = scan(r#"{"a":"\n"}"#, true).unwrap();
        assert!(shape.escaped && !shape.spaced);
        let (_, shape) = scan("[1, 2]", true).unwrap();
        assert!(shape.spaced);
        // White space inside a string is not between tokens.
        let (_, shape) = scan(r#"["a b"]"#, true).unwrap();
        assert!(!shape.spaced);
        for (text, repeated) in [
            (r#"{"a":1,"b":{"a":2}}"#, false),
            (r#"{"a":1,"b":2,"a":3}"#, true),
            (r#"[{"x":1},{"x":2}]"#, false),
            (r#"[{"x":1,"x":2}]"#, true),
            (r#"{"a\u0062":1,"ab":2}"#, true),
            (r#"{"a\u0062":1,"ac":2}"#, false),
        ] {
            assert_eq!(scan(text, true).unwrap().1.repeated, repeated, "{text}");
            assert!(!scan(text, false).unwrap().1.repeated, "{text}");
        }
        for (text, marked) in [
            (r#"{"a":{"b":1},"c":[{"d":2}]}"#, false),
            (r#"{"a":{"b.c":1}}"#, true),
            (r#"[{"$b":1}]"#, true),
            (r#"{"a":{"\u002e":1}}"#, true),
            (r#"{"a":{"x\u0024y":1}}"#, true),
            (r#"{"a":{"\u00e9\n":1,"k\"":[{"\u0041.":2}]}}"#, true),
            (r#"{"a":{"\u00e9\n":1,"k\"":[{"\u0041":2}]}}"#, false),
            (r#"{"a":{"\ud800":1}}"#, true),
            (r#"{"a":"x.y$"}"#, false),
            // Past the first sixteen bytes of a key, and in a value whose key is long.
            (r#"{"a":{"abcdefghijklmnopq.r":1}}"#, true),
            (r#"{"a":{"abcdefghijklmnopqrstuvwxyz$":1}}"#, true),
            (r#"{"abcdefghijklmnopqrstuvwxyz":"a.b$c"}"#, false),
        ] {
            assert_eq!(scan(text, true).unwrap().1.marked, marked, "{text}");
            assert!(!scan(text, false).unwrap().1.marked, "{text}");
        }
        // Tags (objects of up to 32 keys): keys of every length around the 8- and 16-byte
        // steps, told apart and found repeated, escaped or not.
        for len in 0..20 {
            let keys: Vec<String> = (0..20)
                .map(|n| format!("{}{n:02}", "é".repeat(len)))
                .collect();
            let members: Vec<String> = keys.iter().map(|k| format!("\"{k}\":1")).collect();
            let text = format!("{{{}}}", members.join(","));
            assert!(!scan(&text, true).unwrap().1.repeated, "{text}");
            let again = keys[len % 20].replacen('é', "\\u00e9", 1);
            let text = format!("{{{},\"{again}\":2}}", members.join(","));
            assert!(scan(&text, true).unwrap().1.repeated, "{text}");
        }
        for (text, entries) in [
            ("[]", 0),
            ("[ ]", 0),
            ("{ }", 0),
            ("[1]", 1),
            (r#"[1,[2,3],{"a":1,"b":2}]"#, 3),
            (r#"{"a":1,"b":[1,2]}"#, 2),
            ("[ 1 , 2 ]", 2),
            (r#""x,y""#, 0),
            ("12", 0),
        ] {
            assert_eq!(scan(text, true).unwrap().1.entries, entries, "{text}");
            assert_eq!(scan(text, false).unwrap().1.entries, entries, "{text}");
        }
        let many: Vec<String> = (0..40).map(|n| format!("\"k{n}\":{n}")).collect();
        let text = format!("{{{}}}", many.join(","));
        assert!(!scan(&text, true).unwrap().1.repeated);
        let text = format!("{{{},\"k7\":0}}", many.join(","));
        assert!(scan(&text, true).unwrap().1.repeated);
        // Keys alike in their first and last eight bytes and their length (the same tag)
        // differ in their characters between.
        let middle = r#"{"abcdefgh-1-stuvwxyz":1,"abcdefgh-2-stuvwxyz":2}"#;
        assert!(!scan(middle, true).unwrap().1.repeated);
        let middle = r#"{"abcdefgh-1-stuvwxyz":1,"abcdefgh-\u0031-stuvwxyz":2}"#;
        assert!(scan(middle, true).unwrap().1.repeated);
    }

    #[test]
    fn a_whole_text_is_one_value() {
        let two = Shape {
            entries: 2,
            ..Shape::default()
        };
        assert_eq!(whole("[1,2]", false), Ok(two));
        assert!(whole(" [1,2]\n", false).unwrap().spaced);
        assert!(whole(r#"{"a":1,"a":2}"#, true).unwrap().repeated);
        let e = whole("[1] x", false).unwrap_err();
        assert_eq!((e.offset, e.what), (4, "trailing characters"));
        assert!(whole("", false).is_err());
    }

    #[test]
    fn nesting_stops_at_the_limit() {
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert!(scan(&deep(MAX_DEPTH), false).is_ok());
        let e = scan(&deep(MAX_DEPTH + 1), false).unwrap_err();
        assert_eq!((e.offset, e.what), (MAX_DEPTH, "recursion limit exceeded"));
        assert!(
            Skim::default()
                .value(&deep(MAX_DEPTH), 0, 1, false)
                .is_err()
        );
    }

    #[test]
    fn members_are_read_one_at_a_time() {
        let text = r#"{ "a" : 1 , "b\n" :{"c":[2]}}"#;
        let b = text.as_bytes();
        let mut members = Members::new(0);
        let mut skim = Skim::default();
        let mut seen = Vec::new();
        while let Some(key) = members.next(b).unwrap() {
            let (end, _) = skim.value(text, key.value, 1, false).unwrap();
            seen.push((&text[key.raw.clone()], key.escaped, &text[key.value..end]));
            members.read(end);
        }
        assert_eq!(members.end(), text.len());
        assert_eq!(seen, [("a", false, "1"), ("b\\n", true, r#"{"c":[2]}"#)]);
        for bad in [
            r#"{"a":1,}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a" 1}"#,
            r#"{"a":1"#,
            "{a:1}",
        ] {
            let b = bad.as_bytes();
            let mut members = Members::new(0);
            let failed = loop {
                match members.next(b) {
                    Err(_) => break true,
                    Ok(None) => break false,
                    Ok(Some(key)) => match skim.value(bad, key.value, 1, false) {
                        Ok((end, _)) => members.read(end),
                        Err(_) => break true,
                    },
                }
            };
            assert!(failed, "{bad}");
        }
    }

    #[test]
    fn escapes_decode_as_serde_json_decodes_them() {
        for raw in [
            r#"plain"#,
            r#"a\"b\\c\/d\be\ff\ng\rh\ti"#,
            r#"\u00e9\u4e2d\ud83d\ude00x"#,
            r#"Zoë\u0041"#,
        ] {
            let mut ours = String::new();
            unescape_into(raw, &mut ours).unwrap();
            let theirs: String = serde_json::from_str(&format!("\"{raw}\"")).unwrap();
            assert_eq!(ours, theirs, "{raw}");
        }
        for raw in [r#"\ud83d"#, r#"\ud83dx"#, r#"\ud83d\u0041"#, r#"\udc00"#] {
            let mut ours = String::new();
            assert!(unescape_into(raw, &mut ours).is_err(), "{raw}");
        }
    }

    #[test]
    fn a_string_names_characters_when_its_escapes_decode() {
        for raw in [
            "",
            "plain",
            r"\n\t\u0041",
            r"\ud83d\ude00",
            r"x\ud83d\ude00y\ud83d\ude00",
            r"\\ud800",
            r"\\\ud83d\ude00",
            r"\uD83D\uDE00",
            r"\ud800",
            r"a\ud800b",
            r"\ude00",
            r"\ud83d\u0041",
            r"\ud83d\ud83d\ude00",
            r"\\\ud800",
            r"\ud83d\n",
        ] {
            let decodes = unescape_into(raw, &mut String::new()).is_ok();
            assert_eq!(names_characters(raw.as_bytes()), decodes, "{raw}");
        }
    }
}
