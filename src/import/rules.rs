//! The rules one Auth0 bulk-import user must follow, checked before anything is sent.
//!
//! Two kinds of rule are checked, and every [`Problem`] says which one it broke
//! ([`Origin`]): the rules of Auth0's published user schema (types, required `email`, no
//! other properties, enums, patterns, the `email` format, array and object sizes), and the
//! rules Auth0 documents beside it or applies on its server (a hash must have the shape its
//! algorithm gives it, `mfa_factors` items hold exactly one factor, metadata keys, E.164
//! phone numbers, no `auth0|` prefix on `user_id`, what an upsert can change). Error codes
//! are the ones Auth0's import jobs report where it has one (`INVALID_TYPE`,
//! `INVALID_FORMAT`, `DUPLICATED_USER`, …), and userport's own otherwise.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::json::Raw;

use crate::password::hashes::{
    ALGORITHMS, DIGESTS, ENCODINGS, HASH_PROPERTIES, PASSWORD_ENCODINGS, check_argon2, check_ldap,
    check_pbkdf2, decode, digest_len, is_bcrypt,
};

/// What kind of rule a problem breaks; its text is what reports show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// Two users share an email (without regard to case), a `user_id` or a `username`.
    DuplicatedUser,
    /// A value of the wrong JSON type.
    InvalidType,
    /// A string that does not match its pattern.
    Pattern,
    /// A string that is not in its format (an email address).
    InvalidFormat,
    /// A value outside its list of allowed values.
    EnumMismatch,
    /// A required property is missing.
    ObjectRequired,
    /// A property the object may not have.
    ObjectAdditionalProperties,
    /// An array with too few items.
    ArrayLengthShort,
    /// An array with too many items.
    ArrayLengthLong,
    /// An object with too many properties.
    ObjectPropertiesMaximum,
    /// An object with too few properties.
    ObjectPropertiesMinimum,
    /// A number below its minimum, or not of the form required (a power of two).
    Minimum,
    /// A password hash that its algorithm's rules refuse.
    InvalidHash,
    /// A metadata key with `.` or `$`.
    InvalidKey,
    /// An `app_metadata` key that Auth0 keeps for itself.
    ReservedKey,
    /// Two properties that cannot be given together.
    Conflict,
    /// A property an upsert cannot change.
    NotUpsertable,
    /// A file that is not JSON.
    InvalidJson,
    /// A file larger than Auth0 accepts.
    FileTooLarge,
    /// A user larger than a file may be.
    UserTooLarge,
    /// A user whose identity bulk import cannot create (social, enterprise, passwordless).
    UnsupportedIdentity,
    /// A file whose size or SHA-256 differs from what its manifest says.
    ManifestMismatch,
    /// A password hash of a format Auth0 cannot verify (Firebase scrypt, phpass, …).
    UnconvertibleHash,
}

impl Code {
    /// The code as reports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::DuplicatedUser => "DUPLICATED_USER",
            Code::InvalidType => "INVALID_TYPE",
            Code::Pattern => "PATTERN",
            Code::InvalidFormat => "INVALID_FORMAT",
            Code::EnumMismatch => "ENUM_MISMATCH",
            Code::ObjectRequired => "OBJECT_REQUIRED",
            Code::ObjectAdditionalProperties => "OBJECT_ADDITIONAL_PROPERTIES",
            Code::ArrayLengthShort => "ARRAY_LENGTH_SHORT",
            Code::ArrayLengthLong => "ARRAY_LENGTH_LONG",
            Code::ObjectPropertiesMaximum => "OBJECT_PROPERTIES_MAXIMUM",
            Code::ObjectPropertiesMinimum => "OBJECT_PROPERTIES_MINIMUM",
            Code::Minimum => "MINIMUM",
            Code::InvalidHash => "INVALID_HASH",
            Code::InvalidKey => "INVALID_KEY",
            Code::ReservedKey => "RESERVED_KEY",
            Code::Conflict => "CONFLICT",
            Code::NotUpsertable => "NOT_UPSERTABLE",
            Code::InvalidJson => "INVALID_JSON",
            Code::FileTooLarge => "FILE_TOO_LARGE",
            Code::UserTooLarge => "USER_TOO_LARGE",
            Code::UnsupportedIdentity => "UNSUPPORTED_IDENTITY",
            Code::ManifestMismatch => "MANIFEST_MISMATCH",
            Code::UnconvertibleHash => "UNCONVERTIBLE_HASH",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Auth0's published bulk-import user schema decides it.
    Schema,
    /// Auth0 documents it beside the schema or applies it on its server; the schema alone
    /// would let it through.
    Auth0,
}

impl Origin {
    /// `schema` or `auth0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Schema => "schema",
            Origin::Auth0 => "auth0",
        }
    }
}

/// One thing wrong with a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON pointer into the user (`""` is the user itself).
    pub pointer: String,
    /// The error code.
    pub code: Code,
    /// Which rules say so.
    pub origin: Origin,
    /// What is wrong, for a person.
    pub message: String,
}

/// How a user is checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The user is an upsert row: only the fields an upsert changes may be there.
    pub upsert: bool,
}

/// The properties an import user may have, in the order userport writes them.
pub const PROPERTIES: &[&str] = &[
    "user_id",
    "email",
    "email_verified",
    "username",
    "phone_number",
    "phone_verified",
    "given_name",
    "family_name",
    "name",
    "nickname",
    "picture",
    "blocked",
    "password_hash",
    "custom_password_hash",
    "mfa_factors",
    "user_metadata",
    "app_metadata",
];

/// The properties an upsert can change (`email` is the key that finds the user).
pub const UPSERTABLE: &[&str] = &[
    "email",
    "email_verified",
    "given_name",
    "family_name",
    "name",
    "nickname",
    "picture",
    "custom_password_hash",
    "user_metadata",
    "app_metadata",
];

/// The `app_metadata` keys Auth0 keeps for itself.
pub const RESERVED_APP_METADATA: &[&str] = &[
    "__tenant",
    "_id",
    "blocked",
    "clientID",
    "created_at",
    "email_verified",
    "email",
    "globalClientID",
    "global_client_id",
    "identities",
    "lastLogin",
    "loginsCount",
    "metadata",
    "multifactor_last_modified",
    "multifactor",
    "updated_at",
    "user_id",
];

const FACTORS: &[&str] = &["totp", "phone", "email"];

/// Checks one user, given as its JSON text (valid JSON), against every rule; an empty list
/// means Auth0 will accept it. The text is read where it is: only a password hash and MFA
/// factors (rare, and with many rules) are parsed into values; metadata is walked for its
/// keys.
pub fn check(user: &str, options: Options) -> Vec<Problem> {
    let mut check = Checker::default();
    match Raw(user).map() {
        Some(map) => check.user(&map, options),
        None => check.wrong_type_named(&ROOT, "object", Raw(user).type_name()),
    }
    check.problems
}

/// [`check`] of a user whose members were found already (each key's characters and its
/// value's text, as [`Raw::members`] gives them): the rules read each value where it is,
/// without splitting the object again. `plain_keys`: the scan that found them saw no key
/// inside any value holding `.` or `$` (as written or escaped) or an escape naming no
/// characters ([`crate::json::skim::Shape::marked`]), so the metadata's keys need no second
/// look.
pub fn check_members(
    members: Vec<(Cow<'_, str>, Raw<'_>)>,
    options: Options,
    plain_keys: bool,
) -> Vec<Problem> {
    problems_of(&crate::json::as_map(members), options, plain_keys)
}

/// [`check_members`] of members whose keys are each written once (an import row that
/// conversion wrote): checked in their written order, which finds the same problems as the
/// map's order, so that they are sorted into it only when there are problems to report in
/// that order.
pub fn check_row(
    members: Vec<(Cow<'_, str>, Raw<'_>)>,
    options: Options,
    plain_keys: bool,
) -> Vec<Problem> {
    match problems_of(&members, options, plain_keys).is_empty() {
        true => Vec::new(),
        false => check_members(members, options, plain_keys),
    }
}

/// The problems of a user's members, in the order they are given.
fn problems_of(
    members: &[(Cow<'_, str>, Raw<'_>)],
    options: Options,
    plain_keys: bool,
) -> Vec<Problem> {
    let mut check = Checker {
        plain_keys,
        ..Checker::default()
    };
    check.user(members, options);
    check.problems
}

/// Appends `token` to a JSON pointer, escaped (`~` → `~0`, `/` → `~1`).
pub fn pointer(base: &str, token: &str) -> String {
    let mut out = String::with_capacity(base.len() + token.len() + 1);
    out.push_str(base);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `text` is an email address as Auth0 takes one: a dot-atom local part (letters,
/// digits, ``!#$%&'*+/=?^_`{|}~-``, non-ASCII letters; dots only between them) of at most 64
/// bytes, `@`, and a host name of at least two labels.
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let atext = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '!' | '#'
                    | '$'
                    | '%'
                    | '&'
                    | '\''
                    | '*'
                    | '+'
                    | '/'
                    | '='
                    | '?'
                    | '^'
                    | '_'
                    | '`'
                    | '{'
                    | '|'
                    | '}'
                    | '~'
                    | '-'
            )
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c == '.' || atext(c) || (!c.is_ascii() && !c.is_whitespace()));
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let tld = domain.rsplit('.').next().unwrap_or_default();
    let domain_ok = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(label_ok)
        && !tld.chars().all(|c| c.is_ascii_digit());
    local_ok && domain_ok && text.len() <= 254
}

/// Whether `text` is an E.164 phone number: `+` and 1 to 15 digits.
pub fn is_e164(text: &str) -> bool {
    text.strip_prefix('+')
        .is_some_and(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The JSON type of a value, as messages name it.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether a JSON Schema `integer`: a number with no fraction.
fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// Where in a user a check stands: rendered as a JSON pointer only when a problem is found.
#[derive(Clone, Copy)]
enum Loc<'a> {
    Root,
    Key(&'a Loc<'a>, &'a str),
    Index(&'a Loc<'a>, usize),
}

static ROOT: Loc<'static> = Loc::Root;

impl<'a> Loc<'a> {
    fn key(&'a self, key: &'a str) -> Loc<'a> {
        Loc::Key(self, key)
    }

    fn index(&'a self, index: usize) -> Loc<'a> {
        Loc::Index(self, index)
    }

    fn render(&self) -> String {
        match self {
            Loc::Root => String::new(),
            Loc::Key(parent, key) => pointer(&parent.render(), key),
            Loc::Index(parent, index) => pointer(&parent.render(), &index.to_string()),
        }
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
    /// No key inside the user's values holds `.` or `$` (as written or escaped), nor an
    /// escape naming no characters (known beforehand).
    plain_keys: bool,
}

impl Checker {
    fn push(&mut self, at: &Loc<'_>, code: Code, origin: Origin, message: impl Into<String>) {
        self.problems.push(Problem {
            pointer: at.render(),
            code,
            origin,
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, at: &Loc<'_>, expected: &str, value: &Value) {
        self.wrong_type_named(at, expected, type_name(value));
    }

    fn wrong_type_named(&mut self, at: &Loc<'_>, expected: &str, found: &str) {
        self.push(
            at,
            Code::InvalidType,
            Origin::Schema,
            format!("expected {expected}, found {found}"),
        );
    }

    /// The characters of a string member, or a wrong type named.
    fn text<'v>(&mut self, at: &Loc<'_>, value: Raw<'v>) -> Option<std::borrow::Cow<'v, str>> {
        let text = value.string();
        if text.is_none() {
            self.not_characters(at, value);
        }
        text
    }

    /// Checks that a member is a string of characters, without reading them when it holds
    /// no escape of a UTF-16 surrogate (`\uD800` to `\uDFFF`, the only escapes that can
    /// name none).
    fn characters(&mut self, at: &Loc<'_>, value: Raw<'_>) {
        let b = value.0.as_bytes();
        let named = value.is_string()
            && b.len() >= 2
            && crate::json::skim::names_characters(&b[1..b.len() - 1]);
        if !named {
            self.not_characters(at, value);
        }
    }

    /// The problem of a member that should be a string of characters and is not: of another
    /// type, or a string whose escapes name no characters (half a surrogate pair).
    fn not_characters(&mut self, at: &Loc<'_>, value: Raw<'_>) {
        if value.is_string() {
            self.push(
                at,
                Code::InvalidType,
                Origin::Schema,
                "expected string, found a string with a lone UTF-16 surrogate escape (half \
                 of a pair, not a character)",
            );
        } else {
            self.wrong_type_named(at, "string", value.type_name());
        }
    }

    /// A member that is parsed into a value for the rules that read it whole.
    fn parsed(&mut self, at: &Loc<'_>, value: Raw<'_>) -> Option<Value> {
        match serde_json::from_str(value.0) {
            Ok(value) => Some(value),
            Err(e) => {
                self.push(
                    at,
                    Code::InvalidJson,
                    Origin::Schema,
                    format!("not valid JSON: {e}"),
                );
                None
            }
        }
    }

    fn string<'v>(&mut self, at: &Loc<'_>, value: &'v Value) -> Option<&'v str> {
        match value {
            Value::String(s) => Some(s),
            other => {
                self.wrong_type(at, "string", other);
                None
            }
        }
    }

    fn object<'v>(&mut self, at: &Loc<'_>, value: &'v Value) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.wrong_type(at, "object", other);
                None
            }
        }
    }

    fn integer(&mut self, at: &Loc<'_>, value: &Value) -> Option<f64> {
        if is_integer(value) {
            value.as_f64()
        } else {
            self.wrong_type(at, "integer", value);
            None
        }
    }

    fn one_of<'v>(&mut self, at: &Loc<'_>, value: &'v Value, allowed: &[&str]) -> Option<&'v str> {
        let text = self.string(at, value)?;
        if allowed.contains(&text) {
            Some(text)
        } else {
            self.push(
                at,
                Code::EnumMismatch,
                Origin::Schema,
                format!("{text:?} is not one of {}", allowed.join(", ")),
            );
            None
        }
    }

    fn only(&mut self, at: &Loc<'_>, map: &Map<String, Value>, allowed: &[&str], what: &str) {
        for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.push(
                &at.key(key),
                Code::ObjectAdditionalProperties,
                Origin::Schema,
                format!("{what} cannot have the property {key:?}"),
            );
        }
    }

    fn required(&mut self, at: &Loc<'_>, map: &Map<String, Value>, key: &str, origin: Origin) {
        if !map.contains_key(key) {
            self.push(
                &at.key(key),
                Code::ObjectRequired,
                origin,
                format!("{key} is required"),
            );
        }
    }

    fn email(&mut self, at: &Loc<'_>, value: &Value) {
        if let Some(text) = self.string(at, value) {
            self.email_text(at, text);
        }
    }

    fn email_text(&mut self, at: &Loc<'_>, text: &str) {
        if !is_email(text) {
            self.push(
                at,
                Code::InvalidFormat,
                Origin::Schema,
                format!("{text:?} is not an email address"),
            );
        }
    }

    /// The rules of a user whose members are `map`, as a map reads them: by key, a
    /// repeated key once, with its last value ([`crate::json::as_map`]).
    fn user(&mut self, map: &[(Cow<'_, str>, Raw<'_>)], options: Options) {
        let has = |key: &str| map.iter().any(|(k, _)| k == key);
        if !has("email") {
            self.push(
                &ROOT.key("email"),
                Code::ObjectRequired,
                Origin::Schema,
                "email is required",
            );
        }
        for (key, value) in map {
            let (key, value) = (key.as_ref(), *value);
            let at = ROOT.key(key);
            match key {
                "email" => {
                    if let Some(text) = self.text(&at, value) {
                        self.email_text(&at, &text);
                    }
                }
                "email_verified" | "phone_verified" | "blocked" => {
                    if !value.is_bool() {
                        self.wrong_type_named(&at, "boolean", value.type_name());
                    }
                }
                "phone_number" => {
                    if let Some(text) = self.text(&at, value)
                        && !is_e164(&text)
                    {
                        self.push(
                            &at,
                            Code::Pattern,
                            Origin::Auth0,
                            format!(
                                "{text:?} is not an E.164 phone number (+ and up to 15 digits)"
                            ),
                        );
                    }
                }
                "user_id" => {
                    if let Some(text) = self.text(&at, value) {
                        self.user_id(&at, &text);
                    }
                }
                "username" | "given_name" | "family_name" | "name" | "nickname" | "picture" => {
                    self.characters(&at, value);
                }
                "password_hash" => {
                    if let Some(text) = self.text(&at, value)
                        && !is_bcrypt(&text, false)
                    {
                        self.push(
                            &at,
                            Code::Pattern,
                            Origin::Auth0,
                            "password_hash must be a bcrypt hash ($2a$ or $2b$, a two-digit \
                             cost, 53 characters of salt and hash); use custom_password_hash \
                             for other algorithms",
                        );
                    }
                }
                "custom_password_hash" => {
                    if let Some(value) = self.parsed(&at, value) {
                        self.custom_hash(&at, &value);
                    }
                }
                "mfa_factors" => {
                    if let Some(value) = self.parsed(&at, value) {
                        self.mfa_factors(&at, &value);
                    }
                }
                "user_metadata" | "app_metadata" => {
                    if !value.is_object() {
                        self.wrong_type_named(&at, "object", value.type_name());
                        continue;
                    }
                    if key == "app_metadata" {
                        self.reserved(&at, value);
                    }
                    // Walked whole only when some key is wrong, to name each where it is.
                    if !self.plain_keys && value.any_key_with(&['.', '$']) {
                        self.metadata_keys(&at, value);
                    }
                }
                other => self.push(
                    &at,
                    Code::ObjectAdditionalProperties,
                    Origin::Schema,
                    format!("{other:?} is not a property of an import user"),
                ),
            }
        }
        if has("password_hash") && has("custom_password_hash") {
            self.push(
                &ROOT.key("custom_password_hash"),
                Code::Conflict,
                Origin::Auth0,
                "password_hash and custom_password_hash cannot be given together",
            );
        }
        if options.upsert {
            let keys = map.iter().map(|(k, _)| k.as_ref());
            for key in keys.filter(|k| !UPSERTABLE.contains(k)) {
                let message = if key == "blocked" {
                    "an upsert cannot block or unblock users: set blocked with the Management \
                     API (PATCH /api/v2/users/{id} with {\"blocked\": true})"
                        .to_string()
                } else {
                    format!("an upsert does not change {key}; leave it out of update files")
                };
                self.push(&ROOT.key(key), Code::NotUpsertable, Origin::Auth0, message);
            }
        }
    }

    fn user_id(&mut self, at: &Loc<'_>, id: &str) {
        if let Some(rest) = id.strip_prefix("auth0|") {
            self.push(
                at,
                Code::Pattern,
                Origin::Auth0,
                format!(
                    "user_id {id:?} keeps the auth0| prefix: Auth0 adds it on import, so the \
                     user would become auth0|{id}; write {rest:?}"
                ),
            );
        } else if id.is_empty() {
            self.push(at, Code::Pattern, Origin::Auth0, "user_id is empty");
        }
    }

    fn reserved(&mut self, at: &Loc<'_>, meta: Raw<'_>) {
        let map = meta.map().unwrap_or_default();
        for key in map
            .iter()
            .map(|(k, _)| k.as_ref())
            .filter(|k| RESERVED_APP_METADATA.contains(k))
        {
            self.push(
                &at.key(key),
                Code::ReservedKey,
                Origin::Auth0,
                format!("{key:?} is reserved by Auth0 and cannot be an app_metadata key"),
            );
        }
    }

    /// Metadata keys anywhere inside (objects in arrays too) may not hold `.` or `$`.
    fn metadata_keys(&mut self, at: &Loc<'_>, value: Raw<'_>) {
        if let Some(map) = value.map() {
            for (key, inner) in &map {
                let here = at.key(key);
                if key.contains(['.', '$']) {
                    self.push(
                        &here,
                        Code::InvalidKey,
                        Origin::Auth0,
                        format!("metadata key {key:?} contains '.' or '$'"),
                    );
                }
                self.metadata_keys(&here, *inner);
            }
        } else if let Some(items) = value.items() {
            for (i, inner) in items.into_iter().enumerate() {
                self.metadata_keys(&at.index(i), inner);
            }
        }
    }

    fn mfa_factors(&mut self, at: &Loc<'_>, value: &Value) {
        let Value::Array(items) = value else {
            return self.wrong_type(at, "array", value);
        };
        if items.is_empty() {
            self.push(
                at,
                Code::ArrayLengthShort,
                Origin::Schema,
                "mfa_factors needs at least one factor",
            );
        }
        if items.len() > 10 {
            self.push(
                at,
                Code::ArrayLengthLong,
                Origin::Schema,
                format!("mfa_factors holds at most 10 factors, not {}", items.len()),
            );
        }
        for (i, item) in items.iter().enumerate() {
            let at = at.index(i);
            let Some(factor) = self.object(&at, item) else {
                continue;
            };
            self.only(&at, factor, FACTORS, "an MFA factor");
            match factor.len() {
                0 => self.push(
                    &at,
                    Code::ObjectPropertiesMinimum,
                    Origin::Auth0,
                    "an MFA factor needs one of totp, phone or email",
                ),
                1 => {}
                n => self.push(
                    &at,
                    Code::ObjectPropertiesMaximum,
                    Origin::Schema,
                    format!("an MFA factor holds exactly one of totp, phone or email, not {n}"),
                ),
            }
            for (kind, inner) in factor {
                let at = at.key(kind);
                let field = match kind.as_str() {
                    "totp" => "secret",
                    "phone" | "email" => "value",
                    _ => continue,
                };
                let Some(body) = self.object(&at, inner) else {
                    continue;
                };
                self.required(&at, body, field, Origin::Schema);
                self.only(&at, body, &[field], &format!("a {kind} factor"));
                let Some(v) = body.get(field) else { continue };
                let vat = at.key(field);
                match kind.as_str() {
                    "email" => self.email(&vat, v),
                    "totp" => {
                        if let Some(secret) = self.string(&vat, v)
                            && (secret.is_empty()
                                || !secret
                                    .bytes()
                                    .all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7')))
                        {
                            self.push(
                                &vat,
                                Code::Pattern,
                                Origin::Schema,
                                "a TOTP secret is un-padded Base32: capitals A-Z and digits 2-7",
                            );
                        }
                    }
                    _ => {
                        if let Some(phone) = self.string(&vat, v)
                            && !is_e164(phone)
                        {
                            self.push(
                                &vat,
                                Code::Pattern,
                                Origin::Schema,
                                format!("{phone:?} is not a phone number: + and 1 to 15 digits"),
                            );
                        }
                    }
                }
            }
        }
    }

    fn custom_hash(&mut self, at: &Loc<'_>, value: &Value) {
        let Some(map) = self.object(at, value) else {
            return;
        };
        self.only(at, map, HASH_PROPERTIES, "custom_password_hash");
        self.required(at, map, "algorithm", Origin::Schema);
        self.required(at, map, "hash", Origin::Schema);
        let algorithm = map
            .get("algorithm")
            .and_then(|v| self.one_of(&at.key("algorithm"), v, ALGORITHMS));
        let hash = map
            .get("hash")
            .and_then(|v| self.object(&at.key("hash"), v));
        let mut hash_ok = true;
        let (mut value, mut encoding, mut digest) = (None, None, None);
        if let Some(hash) = hash {
            let hat = at.key("hash");
            value = hash
                .get("value")
                .and_then(|v| self.string(&hat.key("value"), v));
            hash_ok &= hash.get("value").is_none_or(Value::is_string);
            if let Some(v) = hash.get("encoding") {
                encoding = self.one_of(&hat.key("encoding"), v, ENCODINGS);
                hash_ok &= encoding.is_some();
            }
            if let Some(v) = hash.get("digest") {
                digest = self.one_of(&hat.key("digest"), v, DIGESTS);
                hash_ok &= digest.is_some();
            }
            if let Some(v) = hash.get("key") {
                hash_ok &= self.key_or_salt(&hat.key("key"), v, false);
            }
        }
        if let Some(v) = map.get("salt") {
            hash_ok &= self.key_or_salt(&at.key("salt"), v, true);
        }
        if let Some(v) = map.get("password")
            && let Some(password) = self.object(&at.key("password"), v)
            && let Some(e) = password.get("encoding")
        {
            self.one_of(&at.key("password").key("encoding"), e, PASSWORD_ENCODINGS);
        }
        let mut numbers = std::collections::HashMap::new();
        for key in ["keylen", "cost", "blockSize", "parallelization"] {
            if let Some(v) = map.get(key) {
                match self.integer(&at.key(key), v) {
                    Some(n) => {
                        numbers.insert(key, n);
                    }
                    None => hash_ok = false,
                }
            }
        }
        // The algorithm's own rules, once the schema's shape holds.
        let (Some(algorithm), Some(hash), true) = (algorithm, hash, hash_ok) else {
            return;
        };
        let hat = at.key("hash");
        let Some(value) = value else {
            return self.push(
                &hat.key("value"),
                Code::ObjectRequired,
                Origin::Auth0,
                "hash.value is required",
            );
        };
        let vat = hat.key("value");
        let salt = map.get("salt").is_some();
        let hash_rule = |this: &mut Self, at: &Loc<'_>, message: String| {
            this.push(at, Code::InvalidHash, Origin::Auth0, message)
        };
        let utf8_only = |this: &mut Self, what: &str| {
            if encoding.is_some_and(|e| e != "utf8") {
                this.push(
                    &hat.key("encoding"),
                    Code::InvalidHash,
                    Origin::Auth0,
                    format!("{what} hashes are utf8 text: leave hash.encoding out or set utf8"),
                );
            }
            if salt {
                this.push(
                    &at.key("salt"),
                    Code::InvalidHash,
                    Origin::Auth0,
                    format!("{what} hashes carry their own salt: remove salt"),
                );
            }
        };
        match algorithm {
            "bcrypt" => {
                utf8_only(self, "bcrypt");
                if !is_bcrypt(value, true) {
                    hash_rule(
                        self,
                        &vat,
                        "a bcrypt hash is $2a$, $2b$ or $2y$, a cost of 04 to 31, $, and 53 \
                         characters of salt and hash"
                            .into(),
                    );
                }
            }
            "argon2" => {
                utf8_only(self, "argon2");
                if let Err(why) = check_argon2(value) {
                    hash_rule(self, &vat, format!("not an argon2 PHC string: {why}"));
                }
            }
            "pbkdf2" => {
                utf8_only(self, "pbkdf2");
                if let Err(why) = check_pbkdf2(value) {
                    hash_rule(self, &vat, format!("not a pbkdf2 PHC string: {why}"));
                }
            }
            "ldap" => {
                utf8_only(self, "ldap");
                if let Err(why) = check_ldap(value) {
                    hash_rule(self, &vat, format!("not an RFC 2307 hash: {why}"));
                }
            }
            "hmac" => {
                self.required(&hat, hash, "digest", Origin::Auth0);
                self.required(&hat, hash, "key", Origin::Auth0);
                if let Some(digest) = digest {
                    self.digest_value(&hat, value, encoding, digest_len(digest));
                }
            }
            "scrypt" => {
                match numbers.get("keylen") {
                    None => self.required(at, map, "keylen", Origin::Auth0),
                    Some(&n) if n < 1.0 => self.push(
                        &at.key("keylen"),
                        Code::Minimum,
                        Origin::Auth0,
                        "keylen must be greater than zero",
                    ),
                    Some(_) => {}
                }
                if let Some(&cost) = numbers.get("cost")
                    && !(cost > 1.0 && cost <= 9.0e15 && (cost as u64).is_power_of_two())
                {
                    self.push(
                        &at.key("cost"),
                        Code::Minimum,
                        Origin::Auth0,
                        "cost must be a power of two greater than one",
                    );
                }
                for key in ["blockSize", "parallelization"] {
                    if numbers.get(key).is_some_and(|&n| n < 1.0) {
                        self.push(
                            &at.key(key),
                            Code::Minimum,
                            Origin::Auth0,
                            format!("{key} must be a positive integer"),
                        );
                    }
                }
                let keylen = numbers
                    .get("keylen")
                    .filter(|&&n| (1.0..1e9).contains(&n))
                    .map(|&n| n as usize);
                self.digest_value(&hat, value, encoding, keylen);
            }
            // md4, md5, sha1, sha256, sha512: a digest, hex or base64.
            other => self.digest_value(&hat, value, encoding, digest_len(other)),
        }
    }

    /// A key (`hash.key`) or a salt: an object with a string `value` and an `encoding`
    /// (and, for a salt, a `position`). Returns whether its shape is right.
    fn key_or_salt(&mut self, at: &Loc<'_>, value: &Value, salt: bool) -> bool {
        let Some(map) = self.object(at, value) else {
            return false;
        };
        let before = self.problems.len();
        self.required(at, map, "value", Origin::Schema);
        let text = map
            .get("value")
            .and_then(|v| self.string(&at.key("value"), v));
        let encoding = match map.get("encoding") {
            Some(e) => self.one_of(&at.key("encoding"), e, ENCODINGS),
            None => Some("utf8"),
        };
        if salt && let Some(p) = map.get("position") {
            self.one_of(&at.key("position"), p, &["prefix", "suffix"]);
        }
        if let (Some(text), Some(encoding)) = (text, encoding)
            && decode(text, encoding).is_none()
        {
            self.push(
                &at.key("value"),
                Code::InvalidHash,
                Origin::Auth0,
                format!("the value is not valid {encoding}"),
            );
        }
        self.problems.len() == before
    }

    /// A digest written in hex or base64 (`encoding`, or either when absent) that decodes to
    /// `len` bytes when the length is known.
    fn digest_value(
        &mut self,
        hat: &Loc<'_>,
        value: &str,
        encoding: Option<&str>,
        len: Option<usize>,
    ) {
        let at = hat.key("value");
        if encoding == Some("utf8") {
            return self.push(
                &hat.key("encoding"),
                Code::InvalidHash,
                Origin::Auth0,
                "this algorithm's hash is binary: give it as hex or base64",
            );
        }
        let decoded = match encoding {
            Some(e) => decode(value, e),
            None => decode(value, "hex").or_else(|| decode(value, "base64")),
        };
        match (decoded, len) {
            (None, _) => self.push(
                &at,
                Code::InvalidHash,
                Origin::Auth0,
                format!(
                    "the hash is not valid {}",
                    encoding.unwrap_or("hex or base64")
                ),
            ),
            (Some(bytes), Some(len)) if bytes.len() != len => self.push(
                &at,
                Code::InvalidHash,
                Origin::Auth0,
                format!(
                    "the hash decodes to {} bytes; this algorithm gives {len}",
                    bytes.len()
                ),
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(user: Value) -> Vec<(String, &'static str)> {
        check(&user.to_string(), Options::default())
            .into_iter()
            .map(|p| (p.pointer, p.code.as_str()))
            .collect()
    }

    #[test]
    fn a_row_is_checked_in_its_order_and_its_problems_told_in_the_maps() {
        let row = r#"{"user_id":"auth0|x","nickname":"\ud800","email":"no",
            "zz":1,"email_verified":"yes","app_metadata":{"_id":1},"blocked":false}"#;
        let members = || crate::json::Raw(row).members().unwrap();
        for upsert in [false, true] {
            let options = Options { upsert };
            let in_order = check_row(members(), options, false);
            assert!(in_order.len() > 4, "{in_order:?}");
            assert_eq!(in_order, check_members(members(), options, false));
            assert_eq!(in_order, check(row, options));
        }
        let fine = r#"{"email":"a@b.co","email_verified":true,"user_metadata":{"k":1}}"#;
        let fine = crate::json::Raw(fine).members().unwrap();
        assert_eq!(check_row(fine, Options::default(), true), []);
    }

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "first.last+tag@mail.example.com",
            "zoë@例え.jp",
            "x_y-z@a-b.io",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@",
            "@b.com",
            "a@b",
            "a..b@c.com",
            ".a@b.com",
            "a b@c.com",
            "a@-b.com",
            "a@b.123",
            "a@@b.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn names_are_strings_of_characters() {
        let problems = |name: &str| {
            check(
                &format!(r#"{{"email":"a@b.co","name":{name}}}"#),
                Options::default(),
            )
            .into_iter()
            .map(|p| (p.pointer, p.message))
            .collect::<Vec<_>>()
        };
        for ok in [
            r#""Zoë""#,
            r#""Zo\u00eb \"x\"""#,
            r#""\ud83d\ude00""#,
            r#""\uD83D\uDE00\uD7FF""#,
            r#""""#,
        ] {
            assert!(problems(ok).is_empty(), "{ok}");
        }
        for (bad, says) in [
            (r#""\ud800x""#, "lone UTF-16 surrogate"),
            (r#""x\udc00""#, "lone UTF-16 surrogate"),
            (r#""\uDBFF\u0041""#, "lone UTF-16 surrogate"),
            ("3", "expected string, found integer"),
            ("null", "expected string, found null"),
        ] {
            let found = problems(bad);
            assert!(
                found.len() == 1 && found[0].0 == "/name" && found[0].1.contains(says),
                "{bad}: {found:?}"
            );
        }
    }

    #[test]
    fn a_plain_user_passes_and_a_wrong_one_says_why() {
        assert!(codes(json!({"email": "a@b.co", "email_verified": true})).is_empty());
        assert_eq!(
            codes(json!({"email_verified": "yes", "logins_count": 3})),
            [
                ("/email".to_string(), "OBJECT_REQUIRED"),
                ("/email_verified".to_string(), "INVALID_TYPE"),
                ("/logins_count".to_string(), "OBJECT_ADDITIONAL_PROPERTIES"),
            ]
        );
        assert_eq!(
            codes(json!({"email": "a@b.co", "user_id": "auth0|abc"})),
            [("/user_id".to_string(), "PATTERN")]
        );
    }

    #[test]
    fn metadata_keys() {
        assert_eq!(
            codes(
                json!({"email": "a@b.co", "user_metadata": {"a.b": 1, "x": [{"$y": 2}]},
                         "app_metadata": {"blocked": true}})
            ),
            [
                ("/app_metadata/blocked".to_string(), "RESERVED_KEY"),
                ("/user_metadata/a.b".to_string(), "INVALID_KEY"),
                ("/user_metadata/x/0/$y".to_string(), "INVALID_KEY"),
            ]
        );
    }

    #[test]
    fn hashes_follow_their_algorithm() {
        let user = |h: Value| json!({"email": "a@b.co", "custom_password_hash": h});
        let ok = [
            json!({"algorithm": "bcrypt", "hash": {"value": "$2y$10$C9hB01.YxRSTcn/ZOOo4j.TW7xCKKFKBSF.C7E0xiUwumqIDqWUXG"}}),
            json!({"algorithm": "md5", "hash": {"value": "5f4dcc3b5aa765d61d8327deb882cf99"}}),
            json!({"algorithm": "sha1", "hash": {"value": "W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "encoding": "base64"}}),
            json!({"algorithm": "scrypt", "hash": {"value": "00ff", "encoding": "hex"}, "keylen": 2, "cost": 1024}),
            json!({"algorithm": "ldap", "hash": {"value": "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="}}),
        ];
        for h in ok {
            assert!(codes(user(h.clone())).is_empty(), "{h}");
        }
        let bad = [
            (
                json!({"algorithm": "bcrypt", "hash": {"value": "$2x$10$abc"}}),
                "/custom_password_hash/hash/value",
            ),
            (
                json!({"algorithm": "md5", "hash": {"value": "abcd", "encoding": "hex"}}),
                "/custom_password_hash/hash/value",
            ),
            (
                json!({"algorithm": "scrypt", "hash": {"value": "00ff"}, "keylen": 2, "cost": 1000}),
                "/custom_password_hash/cost",
            ),
            (
                json!({"algorithm": "scrypt", "hash": {"value": "00ff"}}),
                "/custom_password_hash/keylen",
            ),
            (
                json!({"algorithm": "argon2", "hash": {"value": "$argon2id$v=19$m=1,t=1$c2FsdA$aGFzaA"}}),
                "/custom_password_hash/hash/value",
            ),
            (
                json!({"algorithm": "pbkdf2", "hash": {"value": "$pbkdf2-sha1$i=1,l=5$c2FsdA$aGFzaA"}}),
                "/custom_password_hash/hash/value",
            ),
            (
                json!({"algorithm": "hmac", "hash": {"value": "00"}}),
                "/custom_password_hash/hash/digest",
            ),
        ];
        for (h, at) in bad {
            let found = codes(user(h.clone()));
            assert!(found.iter().any(|(p, _)| p == at), "{h}: {found:?}");
        }
    }

    #[test]
    fn upserts_change_only_what_they_can() {
        let problems = check(
            &json!({"email": "a@b.co", "blocked": true, "username": "x"}).to_string(),
            Options { upsert: true },
        );
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.contains("Management API"));
    }
}
