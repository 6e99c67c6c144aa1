//! A deterministic generator of realistic Auth0 export users (NDJSON), for benchmarks and
//! memory measurements. It writes one user at a time, so it can write ten million.
//!
//! `cargo bench --bench generate -- COUNT [OUT|-] [SEED] [PROFILE]`, or, std only and quick
//! to build: `rustc --edition 2024 -O benches/generate.rs -o /tmp/generate && /tmp/generate
//! COUNT OUT [SEED] [PROFILE]`.
//!
//! Two profiles. `realistic` (the default) writes users as a typical tenant holds them.
//! `hostile` writes the same users (the same fields, so every job reads the same columns and
//! finds the same values) made hard to read: long unicode names written with escapes (`\"`,
//! `\\`, `\t`, `\n`, `\u00e9`, surrogate pairs), `\uXXXX` in metadata keys and values, deep
//! and wide metadata of mixed types (one user in fifty with 30 to 60 more members), numbers of every shape (`-0`, `1e21`, `1.5E-7`, 21-digit
//! integers), empty strings and nulls, rare keys, and long `identities` (linked accounts with
//! profile data). The realistic part of each user draws from the same generator in both
//! profiles; the hostile additions from one of their own.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

/// splitmix64: a small, fast, deterministic pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const FIRST: &[&str] = &[
    "Ana", "Bruno", "Chloé", "Dmitri", "Eun-ji", "Farah", "Gustavo", "Hana", "Ingrid", "João",
    "Kofi", "Léa", "Mateo", "Nia", "Oskar", "Priya", "Quentin", "Rosa", "Søren", "Tomás", "Uma",
    "Viktor", "Wen", "Ximena", "Yusuf", "Zoë", "Ørjan", "Łukasz", "Đorđe", "美咲", "Анна",
];
const LAST: &[&str] = &[
    "Almeida",
    "Brown",
    "Çelik",
    "Dubois",
    "Eriksen",
    "Fernández",
    "García",
    "Hoffmann",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "López",
    "Müller",
    "Nakamura",
    "O'Brien",
    "Petrov",
    "Smith",
    "田中",
    "Nguyễn",
    "Schröder",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "acme.test",
    "contoso.test",
    "mail.example.net",
    "corp.example",
];
const PLANS: &[&str] = &["free", "pro", "team", "enterprise"];
const LANGS: &[&str] = &["en", "fr", "de", "pt-BR", "ja", "es", "zh-Hant"];
const ROLES: &[&str] = &["admin", "editor", "viewer", "billing", "support"];
const CITIES: &[&str] = &[
    "Lisboa",
    "Kyōto",
    "São Paulo",
    "Zürich",
    "Kraków",
    "Montréal",
];

fn timestamp(rng: &mut Rng, year_from: u64) -> String {
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        year_from + rng.below(4),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    )
}

/// Appends one user's JSON object (without the newline) to `out`; `hostile` draws the
/// hostile additions (see the module's documentation).
fn user(i: u64, rng: &mut Rng, mut hostile: Option<&mut Rng>, out: &mut String) {
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let domain = rng.pick(DOMAINS);
    let email = format!("{}.{}{}@{}", ascii(first), ascii(last), i, domain).to_lowercase();
    let hex = format!("{:08x}{:016x}", rng.next() as u32, rng.next());
    let kind = rng.below(10);
    let (user_id, connection, provider, social, identity_id) = match kind {
        0..=5 => (
            format!("auth0|{hex}"),
            "Username-Password-Authentication",
            "auth0",
            false,
            hex.clone(),
        ),
        6 | 7 => {
            let id = format!("{}", 100_000_000_000_000_000_000u128 + i as u128);
            (
                format!("google-oauth2|{id}"),
                "google-oauth2",
                "google-oauth2",
                true,
                id,
            )
        }
        8 => (
            format!("github|{}", 1000 + i),
            "github",
            "github",
            true,
            format!("{}", 1000 + i),
        ),
        _ => (
            format!("samlp|acme|{email}"),
            "acme-saml",
            "samlp",
            false,
            email.clone(),
        ),
    };
    out.push('{');
    let _ = write!(
        out,
        r#""user_id":"{user_id}","email":"{email}","email_verified":{}"#,
        rng.chance(70)
    );
    if kind <= 5 && rng.chance(30) {
        let _ = write!(out, r#","username":"{}_{i}""#, ascii(first).to_lowercase());
    }
    let (given, family) = match hostile.as_deref_mut() {
        Some(h) => (long_name(h, first), long_name(h, &json_escape(last))),
        None => (first.to_string(), json_escape(last)),
    };
    if rng.chance(85) {
        let _ = write!(out, r#","given_name":"{given}","family_name":"{family}""#);
    } else if let Some(h) = hostile.as_deref_mut()
        && h.chance(50)
    {
        out.push_str(r#","given_name":null,"family_name":"""#);
    }
    let _ = write!(
        out,
        r#","name":"{given} {family}","nickname":"{}""#,
        ascii(first).to_lowercase()
    );
    let _ = write!(
        out,
        r#","picture":"https://s.gravatar.test/avatar/{}.png""#,
        &hex[..16]
    );
    let created = timestamp(rng, 2019);
    let _ = write!(
        out,
        r#","created_at":"{created}","updated_at":"{}""#,
        timestamp(rng, 2023)
    );
    if rng.chance(85) {
        let _ = write!(
            out,
            r#","last_login":"{}","last_ip":"203.0.{}.{}","logins_count":{}"#,
            timestamp(rng, 2023),
            rng.below(256),
            rng.below(256),
            1 + rng.below(500)
        );
    }
    if rng.chance(3) {
        out.push_str(r#","blocked":true"#);
    }
    let identity_id = if provider == "github" {
        identity_id
    } else {
        format!("\"{identity_id}\"")
    };
    let _ = write!(
        out,
        r#","identities":[{{"connection":"{connection}","user_id":{identity_id},"provider":"{provider}","isSocial":{social}}}"#
    );
    if let Some(h) = hostile.as_deref_mut() {
        linked_identities(h, i, out);
    }
    out.push(']');
    // 0–8 metadata keys of mixed types, some nested.
    let keys = rng.below(9);
    if keys > 0 || rng.chance(50) {
        out.push_str(r#","user_metadata":{"#);
        for k in 0..keys {
            if k > 0 {
                out.push(',');
            }
            match k {
                0 => match rng.below(4) {
                    0 => {
                        let _ = write!(out, r#""plan":"{}""#, rng.pick(PLANS));
                    }
                    1 => {
                        let _ = write!(out, r#""plan":{}"#, rng.below(4));
                    }
                    2 => {
                        let _ = write!(
                            out,
                            r#""plan":{{"name":"{}","seats":{}}}"#,
                            rng.pick(PLANS),
                            1 + rng.below(500)
                        );
                    }
                    _ => out.push_str(r#""plan":null"#),
                },
                1 => {
                    let _ = write!(out, r#""language":"{}""#, rng.pick(LANGS));
                }
                2 => {
                    let _ = write!(out, r#""newsletter":{}"#, rng.chance(40));
                }
                3 => {
                    let _ = write!(
                        out,
                        r#""address":{{"city":"{}","zip":"{:05}","geo":{{"lat":{:.4},"lng":{:.4}}}}}"#,
                        rng.pick(CITIES),
                        rng.below(100_000),
                        rng.below(180_000) as f64 / 1000.0 - 90.0,
                        rng.below(360_000) as f64 / 1000.0 - 180.0
                    );
                }
                4 => {
                    let _ = write!(out, r#""score":{}"#, rng.below(100_000) as f64 / 100.0);
                }
                5 => {
                    let _ = write!(
                        out,
                        r#""tags":["{}","{}"]"#,
                        rng.pick(PLANS),
                        rng.pick(LANGS)
                    );
                }
                6 => {
                    let _ = write!(out, r#""name":"{} {}""#, first, json_escape(last));
                }
                _ => {
                    let _ = write!(
                        out,
                        r#""signup_source":"{}""#,
                        rng.pick(&["web", "ios", "android", "partner"])
                    );
                }
            }
        }
        if let Some(h) = hostile.as_deref_mut() {
            wide_metadata(h, keys > 0, out);
        }
        out.push('}');
    }
    if rng.chance(70) {
        let roles = 1 + rng.below(3);
        out.push_str(r#","app_metadata":{"roles":["#);
        for r in 0..roles {
            if r > 0 {
                out.push(',');
            }
            let _ = write!(out, r#""{}""#, rng.pick(ROLES));
        }
        let _ = write!(out, r#"],"tenant_id":{}"#, 1000 + rng.below(50));
        if rng.chance(20) {
            let _ = write!(
                out,
                r#","flags":{{"beta":{},"cohort":"{}-Q{}"}}"#,
                rng.chance(50),
                2020 + rng.below(5),
                1 + rng.below(4)
            );
        }
        if let Some(h) = hostile {
            // A rare key: its name is this user's own.
            let _ = write!(out, r#","rare_{i:x}":{}"#, number(h));
        }
        out.push('}');
    }
    out.push('}');
}

/// Escapes and characters that readers must decode (JSON text, escaped already).
const ESCAPES: &[&str] = &[
    r"\u00e9",
    r#"\""#,
    r"\\",
    r"\t",
    r"\/",
    r"\ud83d\ude00",
    r"\u4e2d\u6587",
    r"\n",
    "ñ",
    "ß",
    "Ω",
    "🙂",
    r"\u0041",
    r"\u200b",
];

/// A name made long and full of escapes (JSON text, escaped already).
fn long_name(h: &mut Rng, base: &str) -> String {
    let mut out = String::new();
    for k in 0..1 + h.below(3) {
        if k > 0 {
            out.push(' ');
        }
        out.push_str(base);
        out.push_str(h.pick(ESCAPES));
    }
    out
}

/// A number of one of JSON's many shapes.
fn number(h: &mut Rng) -> String {
    match h.below(10) {
        0 => "-0".into(),
        1 => "1e21".into(),
        2 => "1.5E-7".into(),
        3 => format!("{}{:020}", 1 + h.below(9), h.next()),
        4 => format!("-{}.{}", h.below(1000), h.below(1000)),
        5 => "0.0".into(),
        6 => format!("{}e+{}", 1 + h.below(9), h.below(300)),
        7 => format!("{}", h.next() >> 11),
        8 => "-1.7976931348623157e308".into(),
        _ => format!("{}", h.below(100)),
    }
}

/// A JSON value of a random type, `depth` levels deep at the most.
fn value(h: &mut Rng, depth: u64, out: &mut String) {
    let kind = if depth == 0 { h.below(5) } else { h.below(7) };
    match kind {
        0 => out.push_str(&number(h)),
        1 => {
            let _ = write!(out, r#""{}""#, long_name(h, "v"));
        }
        2 => out.push_str(if h.chance(50) { "true" } else { "null" }),
        3 => out.push_str(r#""""#),
        4 => out.push_str(if h.chance(50) { "[]" } else { "{}" }),
        5 => {
            out.push('[');
            for k in 0..1 + h.below(4) {
                if k > 0 {
                    out.push(',');
                }
                value(h, depth - 1, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for k in 0..1 + h.below(4) {
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, r#""k\u00e9y{k}{}":"#, h.pick(ESCAPES));
                value(h, depth - 1, out);
            }
            out.push('}');
        }
    }
}

/// 2 to 7 more metadata members (one user in fifty: 30 to 60): escaped keys, values of every
/// type, up to 5 levels deep.
fn wide_metadata(h: &mut Rng, after_others: bool, out: &mut String) {
    let wide = if h.chance(2) {
        30 + h.below(31)
    } else {
        2 + h.below(6)
    };
    for k in 0..wide {
        if k > 0 || after_others {
            out.push(',');
        }
        let _ = write!(out, r#""m\u0065ta_{k}{}":"#, h.pick(ESCAPES));
        let depth = if h.chance(5) { 5 } else { h.below(3) };
        value(h, depth, out);
    }
}

/// Up to four linked identities (for one user in three), with profile data.
fn linked_identities(h: &mut Rng, i: u64, out: &mut String) {
    let linked = if h.chance(33) { 1 + h.below(4) } else { 0 };
    for k in 0..linked {
        let name = long_name(h, "linked");
        let verified = h.chance(50);
        let locale = h.pick(&["en", "pt-BR", "zh-Hant"]);
        let _ = write!(
            out,
            r#",{{"connection":"linked-{k}","user_id":"{i}{k}","provider":"oauth2","isSocial":true,"profileData":{{"name":"{name}","email_verified":{verified},"locale":"{locale}","raw":"#
        );
        value(h, 2, out);
        out.push_str("}}");
    }
}

fn ascii(s: &str) -> String {
    let t: String = s.chars().filter(char::is_ascii_alphanumeric).collect();
    if t.is_empty() { "user".to_string() } else { t }
}

fn json_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn main() -> io::Result<()> {
    // `cargo bench` passes `--bench`; ignore flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.is_empty() {
        // `cargo bench` runs every bench target: without arguments, say how to use this one.
        eprintln!("usage: generate COUNT [FILE|-] [SEED]   (writes COUNT users as NDJSON)");
        return Ok(());
    }
    let count: u64 = args
        .first()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1_000_000);
    let out_path = args.get(1).map(String::as_str).unwrap_or("-");
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(42);
    let hostile = match args.get(3).map(String::as_str) {
        None | Some("realistic") => false,
        Some("hostile") => true,
        Some(other) => {
            eprintln!("unknown profile {other}: realistic or hostile");
            std::process::exit(2);
        }
    };
    let mut hostile_rng = hostile.then_some(Rng(seed ^ 0x686f_7374_696c_6521));
    let sink: Box<dyn Write> = if out_path == "-" {
        Box::new(io::stdout())
    } else {
        Box::new(std::fs::File::create(out_path)?)
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let mut rng = Rng(seed);
    let mut line = String::with_capacity(2048);
    for i in 0..count {
        line.clear();
        user(i, &mut rng, hostile_rng.as_mut(), &mut line);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}
