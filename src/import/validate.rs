//! Import files checked the way Auth0's server checks them, before anything is sent: one
//! JSON array per file, at most [`MAX_FILE_BYTES`], every user by the [`rules`], and no
//! duplicate email, `user_id` or `username` across all the files checked together.

use super::rules::{self, Code, Options, Origin, Problem};
use super::seen::{Key, Seen};
use crate::json::Raw;
use crate::json::skim;

/// The largest import file Auth0 accepts, in bytes (larger ones get a 413).
pub const MAX_FILE_BYTES: usize = 512_000;

/// The largest file whose users are checked at all: beyond it only its size is reported
/// (Auth0 reads none of it), so that memory and time stay bounded whatever the file.
pub const MAX_CHECKED_BYTES: u64 = 16 << 20;

/// The message of `FILE_TOO_LARGE` for a file of `size` bytes.
fn too_large(size: u64, more: &str) -> String {
    format!(
        "the file is {size} bytes; Auth0 accepts at most {MAX_FILE_BYTES} (use userport \
         prepare --max-bytes to split users into smaller files){more}"
    )
}

/// A problem and where it is.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The file.
    pub file: String,
    /// The user's index in the file's array (`None` for a problem with the whole file).
    pub index: Option<usize>,
    /// The 1-based line the user starts on (or where the JSON breaks).
    pub line: u64,
    /// The 1-based column, for JSON that breaks.
    pub column: Option<u64>,
    /// The user's email, when it has one.
    pub email: Option<String>,
    /// What is wrong.
    pub problem: Problem,
}

/// What one checked file held.
#[derive(Debug, Clone)]
pub struct FileSummary {
    /// The file.
    pub file: String,
    /// Its size.
    pub bytes: u64,
    /// How many users it holds (up to the point where its JSON breaks).
    pub users: usize,
    /// How many problems it has.
    pub problems: usize,
}

/// Checks files one after the other, remembering the keys of every user for duplicates.
pub struct Validator {
    options: Options,
    seen: Seen,
    across_files: bool,
    /// Whether each user is checked by the rules (not when the writer ran them on the very
    /// bytes it wrote).
    rules: bool,
    names: Vec<String>,
    /// Every problem found so far, in file order.
    pub findings: Vec<Finding>,
    /// One summary a file.
    pub files: Vec<FileSummary>,
}

impl Validator {
    /// A validator; `options.upsert` checks upsert rows.
    pub fn new(options: Options) -> Self {
        Validator {
            options,
            seen: Seen::default(),
            across_files: true,
            rules: true,
            names: Vec::new(),
            findings: Vec::new(),
            files: Vec::new(),
        }
    }

    /// A validator for the files of a writer that checks every user by the rules before it
    /// writes it, and keeps keys unique across files itself (`prepare`): it checks what
    /// writing can get wrong — each file one JSON array of objects, under the size limit,
    /// every user valid JSON with no key of another user of the file — and its memory does
    /// not grow with the number of files.
    pub fn for_writer(options: Options) -> Self {
        Validator {
            across_files: false,
            rules: false,
            ..Validator::new(options)
        }
    }

    /// How many users all the files hold.
    pub fn users(&self) -> usize {
        self.files.iter().map(|f| f.users).sum()
    }

    /// Checks the import file `name` whose content is `bytes`.
    pub fn file(&mut self, name: &str, bytes: &[u8]) {
        let before = self.findings.len();
        if !self.across_files {
            self.seen = Seen::default();
        }
        let file_no = self.names.len() as u64;
        self.names.push(name.to_string());
        let mut users = 0;
        if bytes.len() > MAX_FILE_BYTES {
            self.whole_file(name, Code::FileTooLarge, too_large(bytes.len() as u64, ""));
        }
        // A byte-order mark is not part of the JSON: skipped, as the readers of exports do
        // (and as import sends the file).
        let whole = bytes;
        let bytes = crate::source::input::without_bom(bytes);
        // JSON is UTF-8 throughout: a file that is not is broken where it stops being.
        let text = match simdutf8::compat::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                self.broken(name, bytes, e.valid_up_to(), "invalid UTF-8");
                return self.summary(name, whole, 0, before);
            }
        };
        let b = text.as_bytes();
        let mut lines = Lines::new(b);
        // The array is walked user by user; each user is checked and split into its
        // members in one pass of the scanner.
        let i = skim::space(b, 0);
        match b.get(i) {
            Some(b'[') => {}
            Some(b'{' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                self.whole_file(
                    name,
                    Code::InvalidType,
                    "an import file is a JSON array of users ([{...}, {...}]); convert NDJSON \
                     exports with userport prepare"
                        .into(),
                );
                return self.summary(name, whole, 0, before);
            }
            Some(_) => {
                self.broken(name, b, i, "expected value");
                return self.summary(name, whole, 0, before);
            }
            None => {
                self.broken(name, b, i, "EOF while parsing a value");
                return self.summary(name, whole, 0, before);
            }
        }
        let mut scan = skim::Skim::default();
        let mut items = skim::Items::new(i);
        let walked = loop {
            let at = match items.next(b) {
                Ok(Some(at)) => at,
                Ok(None) => break Ok(items.end()),
                Err(f) => break Err(f),
            };
            let user = match b.get(at) {
                Some(b'{') if self.rules => {
                    crate::json::shaped_members_at(&mut scan, text, at, false)
                        .map(|((members, _), end)| (Some(members), end))
                }
                Some(b'{') => {
                    keyed_members(&mut scan, text, at).map(|(members, end)| (Some(members), end))
                }
                _ => scan.value(text, at, 1, false).map(|(end, _)| (None, end)),
            };
            let (members, end) = match user {
                Ok(user) => user,
                Err(f) => break Err(f),
            };
            let found = self.findings.len();
            self.user(name, file_no, users, &text[at..end], members);
            // Lines are counted only up to users with findings (most have none).
            if self.findings.len() > found {
                let line = lines.line_at(at);
                for finding in &mut self.findings[found..] {
                    finding.line = line;
                }
            }
            users += 1;
            items.read(end);
        };
        match walked.map(|end| skim::space(b, end)) {
            Ok(after) if after == b.len() => {}
            Ok(after) => self.broken(name, b, after, "trailing characters"),
            Err(f) => self.broken(name, b, f.offset, f.what),
        }
        self.summary(name, whole, users, before)
    }

    /// Records the file `name` of `size` bytes, too large for its users to be checked
    /// (over [`MAX_CHECKED_BYTES`]): only its size is reported.
    pub fn oversized(&mut self, name: &str, size: u64) {
        let before = self.findings.len();
        self.names.push(name.to_string());
        self.whole_file(
            name,
            Code::FileTooLarge,
            too_large(
                size,
                "; its users were not checked (it is far over the limit)",
            ),
        );
        self.files.push(FileSummary {
            file: name.to_string(),
            bytes: size,
            users: 0,
            problems: self.findings.len() - before,
        });
    }

    fn summary(&mut self, name: &str, bytes: &[u8], users: usize, before: usize) {
        self.files.push(FileSummary {
            file: name.to_string(),
            bytes: bytes.len() as u64,
            users,
            problems: self.findings.len() - before,
        });
    }

    /// Records a problem with the whole file `name`.
    pub fn whole_file(&mut self, name: &str, code: Code, message: String) {
        self.findings.push(Finding {
            file: name.to_string(),
            index: None,
            line: 1,
            column: None,
            email: None,
            problem: Problem {
                pointer: String::new(),
                code,
                origin: Origin::Auth0,
                message,
            },
        });
    }

    /// JSON that breaks: where, and what. A comma before `]` or `}` is named as such, at
    /// the comma.
    fn broken(&mut self, name: &str, bytes: &[u8], index: usize, what: &str) {
        let mut at = index.min(bytes.len());
        let mut message = what.to_string();
        if matches!(bytes.get(at), Some(b']' | b'}')) {
            let before = bytes[..at].trim_ascii_end();
            if before.last() == Some(&b',') {
                let closer = (bytes[at] as char, position(bytes, at).0);
                at = before.len() - 1;
                message = format!(
                    "trailing comma: JSON allows no comma before {} (line {})",
                    closer.0, closer.1
                );
            }
        }
        let (line, column) = position(bytes, at);
        self.findings.push(Finding {
            file: name.to_string(),
            index: None,
            line,
            column: Some(column),
            email: None,
            problem: Problem {
                pointer: String::new(),
                code: Code::InvalidJson,
                origin: Origin::Schema,
                message: format!(
                    "not valid JSON: {}",
                    crate::json::explain(bytes, index, &message)
                ),
            },
        });
    }

    /// Checks the user `text` (valid JSON, checked by the walk of its file), the `index`th
    /// of its file; `members` when it is an object. Its findings are on line 0: the caller
    /// counts the lines up to the user when it has any.
    fn user(
        &mut self,
        name: &str,
        file_no: u64,
        index: usize,
        text: &str,
        members: Option<Vec<(std::borrow::Cow<'_, str>, Raw<'_>)>>,
    ) {
        let push = |findings: &mut Vec<Finding>, email: Option<&str>, problem: Problem| {
            findings.push(Finding {
                file: name.to_string(),
                index: Some(index),
                line: 0,
                column: None,
                email: email.map(str::to_string),
                problem,
            })
        };
        let found = members.as_deref().unwrap_or_default();
        // A repeated key is read as JSON.parse reads it: its last value.
        let string = |key: &str| crate::json::last(found, key).and_then(Raw::string);
        let email = string("email");
        if self.rules {
            let problems = match &members {
                Some(members) => rules::check_members(members.clone(), self.options, false),
                // Named as a value of the wrong type.
                None => rules::check(text, self.options),
            };
            for problem in problems {
                push(&mut self.findings, email.as_deref(), problem);
            }
        }
        let note = (file_no << 40) | index as u64;
        for key in Key::ALL {
            let Some(text) = string(key.name()) else {
                continue;
            };
            let text = text.as_ref();
            if let Some(first) = self.seen.insert(key, text, note) {
                let (first_file, first_index) = (first >> 40, first & ((1 << 40) - 1));
                let whose = if first_file == file_no {
                    format!("user [{first_index}] of this file")
                } else {
                    format!(
                        "user [{first_index}] of {}",
                        self.names[first_file as usize]
                    )
                };
                let case = if key == Key::Email {
                    " (without regard to case)"
                } else {
                    ""
                };
                let problem = Problem {
                    pointer: rules::pointer("", key.name()),
                    code: Code::DuplicatedUser,
                    origin: Origin::Auth0,
                    message: format!("{} {text:?} is already used{case} by {whose}", key.name()),
                };
                push(&mut self.findings, email.as_deref(), problem);
            }
        }
    }
}

/// Some members of a user: each key's characters and its value.
type Keyed<'t> = Vec<(std::borrow::Cow<'t, str>, Raw<'t>)>;

/// The members of the user whose object starts at `at` of `text` that duplicates are looked
/// for by (email, `user_id`, username), with where the object ends: the object checked
/// whole as [`crate::json::shaped_members_at`] checks it, its other members not kept.
fn keyed_members<'t>(
    scan: &mut skim::Skim,
    text: &'t str,
    at: usize,
) -> Result<(Keyed<'t>, usize), skim::Fault> {
    let b = text.as_bytes();
    let mut members = skim::Members::new(at);
    let mut keyed = Vec::new();
    while let Some(key) = members.next(b)? {
        let (end, _) = scan.value(text, key.value, 1, false)?;
        let name = crate::json::key_name(text, &key)?;
        if Key::ALL.iter().any(|k| k.name() == name) {
            keyed.push((name, Raw(&text[key.value..end])));
        }
        members.read(end);
    }
    Ok((keyed, members.end()))
}

/// The 1-based line and column (in characters) of byte `at` of `bytes`; the end of the
/// text is the column after its last character.
fn position(bytes: &[u8], at: usize) -> (u64, u64) {
    let at = at.min(bytes.len());
    let start = memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1);
    let line = 1 + memchr::memchr_iter(b'\n', &bytes[..start]).count() as u64;
    let column = 1 + bytes[start..at]
        .iter()
        .filter(|b| *b & 0xC0 != 0x80)
        .count() as u64;
    (line, column)
}

/// Line numbers of byte offsets that only grow.
struct Lines<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Lines {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, offset: usize) -> u64 {
        self.line += memchr::memchr_iter(b'\n', &self.bytes[self.offset..offset]).count() as u64;
        self.offset = offset;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(text: &str) -> Vec<(Option<usize>, u64, String, &'static str)> {
        let mut v = Validator::new(Options::default());
        v.file("f.json", text.as_bytes());
        v.findings
            .into_iter()
            .map(|f| (f.index, f.line, f.problem.pointer, f.problem.code.as_str()))
            .collect()
    }

    #[test]
    fn users_are_placed_by_index_and_line() {
        let text = "[\n  {\"email\": \"a@b.co\"},\n  {\"email\": \"A@B.CO\",\n   \"x\": 1}\n]\n";
        assert_eq!(
            findings(text),
            [
                (Some(1), 3, "/x".to_string(), "OBJECT_ADDITIONAL_PROPERTIES"),
                (Some(1), 3, "/email".to_string(), "DUPLICATED_USER"),
            ]
        );
    }

    #[test]
    fn each_user_is_read_once_and_what_is_not_json_stops_the_file_where_it_breaks() {
        // A user that is not an object is named by its index; the users around it are
        // checked (a duplicate across them found).
        assert_eq!(
            findings("[{\"email\": \"a@b.co\"},\n 7,\n{\"email\": \"A@b.co\"}]"),
            [
                (Some(1), 2, String::new(), "INVALID_TYPE"),
                (Some(2), 3, "/email".to_string(), "DUPLICATED_USER"),
            ]
        );
        // Bytes that are not UTF-8: the file is broken at their line.
        let mut v = Validator::new(Options::default());
        v.file(
            "f.json",
            b"[{\"email\": \"a@b.co\"},\n{\"email\": \"b\xff@b.co\"}]",
        );
        let f = &v.findings[0];
        assert_eq!((f.index, f.line, f.column), (None, 2, Some(13)));
        assert!(
            f.problem.message.contains("invalid UTF-8"),
            "{}",
            f.problem.message
        );
        // A bad escape inside a user, and text after the array.
        assert_eq!(
            findings("[{\"email\": \"a@b.co\"},\n{\"email\": \"\\q\"}]"),
            [(None, 2, String::new(), "INVALID_JSON")]
        );
        assert_eq!(
            findings("[]\n[]"),
            [(None, 2, String::new(), "INVALID_JSON")]
        );
    }

    #[test]
    fn broken_json_names_its_line_and_trailing_commas_their_comma() {
        assert_eq!(
            findings("[\n {\"email\": \"a@b.co\"},\n]"),
            [(None, 2, String::new(), "INVALID_JSON")]
        );
        assert_eq!(
            findings("{\"email\": \"a@b.co\"}"),
            [(None, 1, String::new(), "INVALID_TYPE")]
        );
        assert_eq!(
            findings("[{\"email\": \"a@b.co\"}] x"),
            [(None, 1, String::new(), "INVALID_JSON")]
        );
    }
}
