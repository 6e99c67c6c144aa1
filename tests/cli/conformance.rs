//! Differential test of `validate`'s rules against Auth0's published bulk-import user schema,
//! evaluated by a JSON Schema library: for generated users, valid and invalid in every
//! property, userport's schema-rule verdict agrees with the schema's, user by user.
//!
//! Emails are drawn from addresses every reading of the `email` format agrees on; the rules
//! Auth0 applies beside the schema (hash shapes, metadata keys, …) are outside the
//! comparison, since the schema cannot decide them. `USERPORT_SCHEMA_SEED` and
//! `USERPORT_SCHEMA_COUNT` explore further.

use serde_json::{Map, Value, json};
use userport::import::rules::{self, Options, Origin};

/// splitmix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

const GOOD_EMAILS: &[&str] = &[
    "a@example.com",
    "first.last+tag@mail.example.org",
    "x_y-z@sub.domain.io",
    "o'brien@example.net",
];
const BAD_EMAILS: &[&str] = &["", "plainaddress", "@example.com", "a@", "a b@example.com"];

/// Any JSON value but the given type's, to break a type rule.
fn wrong(rng: &mut Rng, not: &str) -> Value {
    let all = [
        ("string", json!("text")),
        ("boolean", json!(true)),
        ("integer", json!(7)),
        ("number", json!(1.5)),
        ("null", Value::Null),
        ("array", json!([1])),
        ("object", json!({"k": 1})),
    ];
    loop {
        let (name, value) = rng.pick(&all);
        if name != not && !(not == "number" && name == "integer") {
            return value;
        }
    }
}

fn email(rng: &mut Rng) -> Value {
    if rng.chance(85) {
        json!(rng.pick(GOOD_EMAILS))
    } else if rng.chance(70) {
        json!(rng.pick(BAD_EMAILS))
    } else {
        wrong(rng, "string")
    }
}

fn string(rng: &mut Rng) -> Value {
    if rng.chance(90) {
        json!(rng.pick(&["Ana", "", "中村", "+15551234567", "x|y"]))
    } else {
        wrong(rng, "string")
    }
}

fn boolean(rng: &mut Rng) -> Value {
    if rng.chance(90) {
        json!(rng.chance(50))
    } else {
        wrong(rng, "boolean")
    }
}

fn enum_or_not(rng: &mut Rng, allowed: &[&str]) -> Value {
    match rng.below(10) {
        0 => json!("not-in-the-list"),
        1 => wrong(rng, "string"),
        _ => json!(rng.pick(allowed)),
    }
}

const ENCODINGS: &[&str] = &["base64", "hex", "utf8"];

/// `text` nine times in ten, otherwise a value that is not a string.
fn mostly_text(rng: &mut Rng, text: &str) -> Value {
    if rng.chance(90) {
        json!(text)
    } else {
        wrong(rng, "string")
    }
}

fn key_or_salt(rng: &mut Rng, salt: bool) -> Value {
    if rng.chance(5) {
        return wrong(rng, "object");
    }
    let mut m = Map::new();
    if rng.chance(90) {
        m.insert("value".into(), mostly_text(rng, "abc123"));
    }
    if rng.chance(50) {
        m.insert("encoding".into(), enum_or_not(rng, ENCODINGS));
    }
    if salt && rng.chance(50) {
        m.insert("position".into(), enum_or_not(rng, &["prefix", "suffix"]));
    }
    if rng.chance(5) {
        m.insert("extra".into(), json!(1));
    }
    Value::Object(m)
}

fn integer(rng: &mut Rng) -> Value {
    match rng.below(10) {
        0 => json!(1.5),
        1 => json!("32"),
        2 => json!(32.0),
        3 => json!(-4),
        _ => json!(rng.pick(&[1, 8, 16, 32, 16384])),
    }
}

fn custom_hash(rng: &mut Rng) -> Value {
    if rng.chance(5) {
        return wrong(rng, "object");
    }
    let mut m = Map::new();
    if rng.chance(92) {
        m.insert(
            "algorithm".into(),
            enum_or_not(
                rng,
                &[
                    "argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512",
                    "pbkdf2", "scrypt",
                ],
            ),
        );
    }
    if rng.chance(92) {
        let hash = if rng.chance(5) {
            wrong(rng, "object")
        } else {
            let mut h = Map::new();
            if rng.chance(90) {
                h.insert("value".into(), mostly_text(rng, "00ff"));
            }
            if rng.chance(40) {
                h.insert("encoding".into(), enum_or_not(rng, ENCODINGS));
            }
            if rng.chance(20) {
                h.insert(
                    "digest".into(),
                    enum_or_not(
                        rng,
                        &["md4", "md5", "ripemd160", "sha1", "sha256", "whirlpool"],
                    ),
                );
            }
            if rng.chance(20) {
                h.insert("key".into(), key_or_salt(rng, false));
            }
            if rng.chance(5) {
                h.insert("anything".into(), json!("allowed by the schema"));
            }
            Value::Object(h)
        };
        m.insert("hash".into(), hash);
    }
    if rng.chance(30) {
        m.insert("salt".into(), key_or_salt(rng, true));
    }
    if rng.chance(15) {
        let password = if rng.chance(10) {
            wrong(rng, "object")
        } else {
            json!({"encoding": enum_or_not(rng, &["ascii", "utf8", "utf16le", "ucs2", "latin1", "binary"])})
        };
        m.insert("password".into(), password);
    }
    for key in ["keylen", "cost", "blockSize", "parallelization"] {
        if rng.chance(15) {
            m.insert(key.into(), integer(rng));
        }
    }
    if rng.chance(5) {
        m.insert("iterations".into(), json!(10));
    }
    Value::Object(m)
}

fn factor(rng: &mut Rng) -> Value {
    if rng.chance(4) {
        return wrong(rng, "object");
    }
    let mut m = Map::new();
    let count = match rng.below(20) {
        0 => 0,
        1 => 2,
        _ => 1,
    };
    for _ in 0..count {
        let kind = if rng.chance(5) {
            "sms"
        } else {
            rng.pick(&["totp", "phone", "email"])
        };
        let field = if kind == "totp" { "secret" } else { "value" };
        let value = match kind {
            "totp" => json!(rng.pick(&[
                "JBTWY3DPEHPK3PNP",
                "2PRXZWZAYYDAWCD",
                "lowercase",
                "ABC1",
                ""
            ])),
            "phone" => json!(rng.pick(&[
                "+15551234567",
                "+1",
                "15551234567",
                "+1234567890123456",
                "+1 555"
            ])),
            _ => email(rng),
        };
        let body = match rng.below(12) {
            0 => wrong(rng, "object"),
            1 => json!({}),
            2 => json!({field: value, "extra": 1}),
            3 => json!({field: wrong(rng, "string")}),
            _ => json!({field: value}),
        };
        m.insert(kind.into(), body);
    }
    Value::Object(m)
}

fn user(rng: &mut Rng) -> Value {
    let mut m = Map::new();
    if rng.chance(95) {
        m.insert("email".into(), email(rng));
    }
    for key in [
        "phone_number",
        "user_id",
        "username",
        "given_name",
        "family_name",
        "name",
        "nickname",
        "picture",
        "password_hash",
    ] {
        if rng.chance(15) {
            m.insert(key.into(), string(rng));
        }
    }
    for key in ["email_verified", "phone_verified", "blocked"] {
        if rng.chance(25) {
            m.insert(key.into(), boolean(rng));
        }
    }
    for key in ["user_metadata", "app_metadata"] {
        if rng.chance(25) {
            let value = if rng.chance(90) {
                json!({"plan": "pro", "n": [1, {"x": null}]})
            } else {
                wrong(rng, "object")
            };
            m.insert(key.into(), value);
        }
    }
    if rng.chance(35) {
        m.insert("custom_password_hash".into(), custom_hash(rng));
    }
    if rng.chance(30) {
        let factors = if rng.chance(5) {
            wrong(rng, "array")
        } else {
            let n = match rng.below(12) {
                0 => 0,
                1 => 11,
                _ => 1 + rng.below(3),
            };
            Value::Array((0..n).map(|_| factor(rng)).collect())
        };
        m.insert("mfa_factors".into(), factors);
    }
    if rng.chance(5) {
        m.insert(
            rng.pick(&["created_at", "logins_count", "identities"])
                .into(),
            json!("2020-01-01"),
        );
    }
    if rng.chance(2) {
        return wrong(rng, "object");
    }
    Value::Object(m)
}

/// Auth0's published user schema, compiled (Draft 7, formats checked); `None`, saying so,
/// without `../shared/auth0`.
fn published_schema() -> Option<jsonschema::Validator> {
    let path = super::root().join("../shared/auth0/auth0-docs/bulk-import-user.schema.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "skipped: {} is absent (Auth0's bulk-import user schema)",
            path.display()
        );
        return None;
    };
    let schema: Value = serde_json::from_str(&text).unwrap();
    Some(
        jsonschema::draft7::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("Auth0's schema compiles"),
    )
}

#[test]
fn schema_rules_agree_with_auth0s_published_schema() {
    let Some(validator) = published_schema() else {
        return;
    };
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seed = env("USERPORT_SCHEMA_SEED", 20261128);
    let count = env("USERPORT_SCHEMA_COUNT", 20000);
    let mut rng = Rng(seed);
    let (mut valid, mut invalid) = (0, 0);
    for n in 0..count {
        let user = user(&mut rng);
        let theirs = validator.is_valid(&user);
        let problems = rules::check(&user.to_string(), Options::default());
        let ours = problems.iter().all(|p| p.origin != Origin::Schema);
        assert_eq!(
            ours,
            theirs,
            "user {n} (seed {seed}): {user}\nschema says {}: {:?}\nuserport's schema rules: {:#?}",
            if theirs { "valid" } else { "invalid" },
            validator
                .iter_errors(&user)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect::<Vec<_>>(),
            problems
        );
        if theirs {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    // Both verdicts are well represented, or the test would prove little.
    assert!(
        valid > count / 10 && invalid > count / 10,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn every_generated_valid_user_names_each_schema_problem_where_the_library_does() {
    let Some(validator) = published_schema() else {
        return;
    };
    let mut rng = Rng(7);
    for _ in 0..3000 {
        let user = user(&mut rng);
        // Each place the library finds wrong is a place (or inside one) userport names.
        let ours: Vec<String> = rules::check(&user.to_string(), Options::default())
            .into_iter()
            .filter(|p| p.origin == Origin::Schema)
            .map(|p| p.pointer)
            .collect();
        for error in validator.iter_errors(&user) {
            let at = error.instance_path().to_string();
            assert!(
                ours.iter().any(|p| p == &at
                    || p.starts_with(&format!("{at}/"))
                    || at.starts_with(&format!("{p}/"))),
                "{user}: the schema finds {error} at {at:?}; userport names {ours:?}"
            );
        }
    }
}
