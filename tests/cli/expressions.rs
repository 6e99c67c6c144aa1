//! The differential test of field expressions: every cell that `userport export` computes
//! equals what JavaScript (Node.js) computes for `(user) => (EXPR)` on the same user, with
//! member access and calls made optional, rendered by the same rules.
//!
//! Users are generated with every JSON type in every metadata position; expressions are a
//! hand-written list of realistic report columns (`tests/expressions.txt`) plus expressions
//! generated with proptest from the whole language.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};
use userport::expr::ast::{Binary, Js, Literal, Logical, Node, Path, Span, Unary};
use userport::json::Step;

use super::{root, userport};

/// A small deterministic sequence (xorshift) for the users.
struct Seq(u64);

impl Seq {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize].clone()
    }
}

/// JSON values of every type, with the numbers and strings that trip conversions up.
fn any_values() -> Vec<Option<Value>> {
    let mut values: Vec<Option<Value>> = vec![
        None,
        Some(Value::Null),
        Some(json!(true)),
        Some(json!(false)),
        Some(json!(0)),
        Some(serde_json::from_str("-0.0").unwrap()),
        Some(json!(1)),
        Some(json!(42)),
        Some(json!(-7.5)),
        Some(json!(0.1)),
        Some(json!(0.2)),
        Some(serde_json::from_str("1e21").unwrap()),
        Some(serde_json::from_str("9007199254740993").unwrap()),
        Some(json!(1_000_000)),
        Some(json!(1e-7)),
        Some(json!("")),
        Some(json!("0")),
        Some(json!("1")),
        Some(json!(" 12 ")),
        Some(json!("0x1A")),
        Some(json!("abc")),
        Some(json!("Hello World")),
        Some(json!("ÄÖÜ straße ΣΑΣ")),
        Some(json!("😀🦊 emoji")),
        Some(json!("a,b,c")),
        Some(json!("$&$'")),
        Some(json!("2021-03-04T05:06:07.089Z")),
        Some(json!("2024-02-29")),
        Some(json!("x@y.z")),
        Some(json!("true")),
        Some(json!("null")),
        Some(json!([])),
        Some(json!([1, 2])),
        Some(json!(["a", "b"])),
        Some(json!([null, true, "x", 1.5])),
        Some(json!([[1, 2], [3]])),
        Some(json!({})),
        Some(json!({"a": 1})),
        Some(json!({"x": {"y": [1, {"z": "deep"}]}})),
    ];
    values.push(Some(
        serde_json::from_str(r#"{"b":"2nd","2":"b","1":"a"}"#).unwrap(),
    ));
    values
}

/// Users whose metadata takes every value in every position; typed attributes hold values
/// of their type, null, or nothing.
fn users() -> Vec<String> {
    let values = any_values();
    let strings = [
        None,
        Some(Value::Null),
        Some(json!("")),
        Some(json!("Ana")),
        Some(json!("  Zoë  ")),
        Some(json!("José da Silva")),
        Some(json!("中村 😀")),
        Some(json!("O'Brien, \"Jo\"")),
        Some(json!("42")),
    ];
    let mut seq = Seq(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    for i in 0..values.len() + 10 {
        let mut user = serde_json::Map::new();
        user.insert("user_id".into(), json!(format!("auth0|{i:04}")));
        let put = |user: &mut serde_json::Map<String, Value>, key: &str, v: Option<Value>| {
            if let Some(v) = v {
                user.insert(key.to_string(), v);
            }
        };
        let email = seq.pick(&[
            None,
            Some(json!(format!("User.{i}@Example.com"))),
            Some(json!(format!("a{i}@example.org"))),
            Some(Value::Null),
        ]);
        put(&mut user, "email", email);
        for key in ["name", "given_name", "family_name", "nickname"] {
            let v = seq.pick(&strings);
            put(&mut user, key, v);
        }
        let logins = seq.pick(&[
            None,
            Some(Value::Null),
            Some(json!(0)),
            Some(json!(5)),
            Some(json!(123)),
        ]);
        put(&mut user, "logins_count", logins);
        let verified = seq.pick(&[
            None,
            Some(Value::Null),
            Some(json!(true)),
            Some(json!(false)),
        ]);
        put(&mut user, "email_verified", verified);
        let created = seq.pick(&[
            None,
            Some(json!("2020-01-31T23:59:59.999Z")),
            Some(json!("2023-06-15T08:00:00.000Z")),
        ]);
        put(&mut user, "created_at", created);
        let login = seq.pick(&[None, Some(json!("2024-02-29T12:00:00.000Z"))]);
        put(&mut user, "last_login", login);
        put(
            &mut user,
            "updated_at",
            Some(json!("2023-01-01T00:00:00.000Z")),
        );
        let mut meta = serde_json::Map::new();
        // Position i takes value i: every value appears in every position over the users.
        for (k, key) in ["a", "b", "plan", "tags", "n", "name"].iter().enumerate() {
            let v = values[(i + k * 7) % values.len()].clone();
            if let Some(v) = v {
                meta.insert(key.to_string(), v);
            }
        }
        if i % 3 == 0 {
            meta.insert("deep".into(), json!({"x": {"y": [0, {"z": i}]}}));
        }
        if i % 11 != 10 {
            user.insert("user_metadata".into(), Value::Object(meta));
        }
        let roles = seq.pick(&[
            None,
            Some(json!(["admin"])),
            Some(json!(["editor", "admin"])),
            Some(json!("admin")),
            Some(json!([])),
        ]);
        if let Some(roles) = roles {
            user.insert("app_metadata".into(), json!({"roles": roles}));
        }
        let identities = seq.pick(&[
            json!([{"connection": "Username-Password-Authentication", "provider": "auth0", "isSocial": false, "user_id": format!("{i}")}]),
            json!([{"connection": "google-oauth2", "provider": "google-oauth2", "isSocial": true, "user_id": i}]),
            json!([{"connection": "db", "provider": "auth0", "isSocial": false}, {"connection": "github", "provider": "github", "isSocial": true}]),
        ]);
        user.insert("identities".into(), identities);
        if i % 5 == 0 {
            user.insert("favorite_color".into(), json!("teal"));
        }
        out.push(serde_json::to_string(&Value::Object(user)).unwrap());
    }
    out
}

fn path(root: &str, steps: &[Step]) -> Node {
    Node::Path(Path {
        root: root.to_string(),
        steps: steps.to_vec(),
        span: Span { start: 0, end: 0 },
    })
}

fn key(k: &str) -> Step {
    Step::Key(k.to_string())
}

/// Leaves: attribute paths and literals.
fn leaf() -> impl Strategy<Value = Node> {
    let paths = vec![
        path("name", &[]),
        path("email", &[]),
        path("given_name", &[]),
        path("nickname", &[]),
        path("logins_count", &[]),
        path("email_verified", &[]),
        path("created_at", &[]),
        path("favorite_color", &[]),
        path("user_metadata", &[key("a")]),
        path("user_metadata", &[key("b")]),
        path("user_metadata", &[key("plan")]),
        path("user_metadata", &[key("tags")]),
        path("user_metadata", &[key("tags"), Step::Index(0)]),
        path("user_metadata", &[key("n")]),
        path("user_metadata", &[key("name")]),
        path(
            "user_metadata",
            &[key("deep"), key("x"), key("y"), Step::Index(1), key("z")],
        ),
        path("user_metadata", &[key("a"), key("length")]),
        path("app_metadata", &[key("roles")]),
        path("app_metadata", &[key("roles"), Step::Index(1)]),
        path("identities", &[Step::Index(0), key("connection")]),
        path("identities", &[Step::Index(0), key("user_id")]),
        path("missing", &[key("x")]),
    ];
    let literals = vec![
        Literal::Str(String::new()),
        Literal::Str("a".into()),
        Literal::Str("abc".into()),
        Literal::Str("1".into()),
        Literal::Str(" ".into()),
        Literal::Str("Ü😀".into()),
        Literal::Str("@".into()),
        Literal::Str("$&".into()),
        Literal::Num(0.0),
        Literal::Num(1.0),
        Literal::Num(2.0),
        Literal::Num(-1.0),
        Literal::Num(1.5),
        Literal::Num(1e21),
        Literal::Num(0.1),
        Literal::Num(f64::NAN),
        Literal::Num(f64::INFINITY),
        Literal::Bool(true),
        Literal::Bool(false),
        Literal::Null,
        Literal::Undefined,
    ];
    prop_oneof![
        3 => proptest::sample::select(paths),
        2 => proptest::sample::select(literals).prop_map(Node::Literal),
    ]
}

/// Every method name, strings' and arrays'.
fn methods() -> Vec<&'static str> {
    let mut all = userport::js::ops::STRING_METHODS.to_vec();
    all.extend(userport::js::ops::ARRAY_METHODS);
    all.sort_unstable();
    all.dedup();
    all
}

/// The global functions other than the date ones (those take a date argument).
fn functions() -> Vec<&'static str> {
    userport::js::ops::GLOBALS
        .iter()
        .copied()
        .filter(|f| !f.starts_with("Date."))
        .collect()
}

const DATE_FUNCTIONS: &[&str] = &["Date.parse", "Date.toISOString", "Date.getTime"];

/// Values that are dates, numbers, or ISO 8601 texts (valid or not).
fn date_argument() -> impl Strategy<Value = Node> {
    let texts = [
        "2020-01-31T23:59:59.999Z",
        "2024-02-29",
        "2023-02-29",
        "2021-03-04T05:06",
        "2021-03-04T05:06:07+02:00",
        "+275760-09-13T00:00:00.000Z",
        "-000001-01-01T00:00:00Z",
        "2019",
        "2019-07",
    ];
    let mut choices: Vec<Node> = texts
        .iter()
        .map(|t| Node::Literal(Literal::Str(t.to_string())))
        .collect();
    choices.extend([
        path("created_at", &[]),
        path("last_login", &[]),
        path("updated_at", &[]),
        path("logins_count", &[]),
        Node::Literal(Literal::Num(0.0)),
        Node::Literal(Literal::Num(-1.0)),
        Node::Literal(Literal::Num(1.5e12)),
        Node::Literal(Literal::Num(8.64e15)),
        Node::Literal(Literal::Num(8.7e15)),
        Node::Literal(Literal::Num(f64::NAN)),
        Node::Literal(Literal::Bool(true)),
        Node::Literal(Literal::Null),
        Node::Literal(Literal::Undefined),
    ]);
    proptest::sample::select(choices)
}

/// Expressions of the whole language.
fn expression() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (
                proptest::sample::select(Binary::ALL),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, a, b)| Node::Binary(op, Box::new(a), Box::new(b))),
            (
                proptest::sample::select(vec![Logical::Or, Logical::And, Logical::Coalesce]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, a, b)| Node::Logical(op, vec![a, b])),
            (proptest::bool::ANY, inner.clone()).prop_map(|(neg, a)| Node::Unary(
                if neg { Unary::Neg } else { Unary::Not },
                Box::new(a)
            )),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(t, a, b)| { Node::Conditional(Box::new(t), Box::new(a), Box::new(b)) }),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Node::Template {
                quasis: vec!["<".into(), "|".into(), ">".into()],
                exprs: vec![a, b],
            }),
            (
                inner.clone(),
                proptest::sample::select(vec![
                    key("length"),
                    Step::Index(0),
                    Step::Index(1),
                    key("a")
                ])
            )
                .prop_map(|(a, step)| Node::Member(Box::new(a), step)),
            (
                inner.clone(),
                proptest::sample::select(methods()),
                proptest::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(r, m, args)| Node::Method(
                    Box::new(r),
                    m.to_string(),
                    args
                )),
            (
                proptest::sample::select(functions()),
                proptest::collection::vec(inner.clone(), 1..3)
            )
                .prop_map(|(f, mut args)| {
                    if f == "JSON.stringify" {
                        args.truncate(1);
                    }
                    Node::Function(f.to_string(), args)
                }),
            // Dates from what userport reads as dates (JavaScript engines also guess at other
            // formats, which userport does not: see the README).
            (proptest::sample::select(DATE_FUNCTIONS), date_argument()).prop_map(|(f, arg)| {
                // Date.parse reads its argument as text: only texts that are dates.
                let arg = match (&arg, f) {
                    (Node::Literal(Literal::Str(_)) | Node::Path(_), _)
                    | (_, "Date.getTime" | "Date.toISOString") => arg,
                    _ => path("created_at", &[]),
                };
                let arg = match (&arg, f) {
                    (Node::Path(p), "Date.parse") if p.root == "logins_count" => {
                        path("last_login", &[])
                    }
                    _ => arg,
                };
                Node::Function(f.to_string(), vec![arg])
            }),
        ]
    })
}

/// Generated expressions, the same on every run (`USERPORT_DIFF_SEED=N` explores others).
fn generated(count: usize) -> Vec<Node> {
    let config = Config::default();
    let seed: u8 = std::env::var("USERPORT_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = expression();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

#[test]
fn expressions_equal_javascript_on_every_user() {
    if Command::new("node").arg("--version").output().is_err() {
        panic!("node is needed for this test (.ci/run installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    let users = users();
    let users_path = dir.path().join("users.ndjson");
    fs::write(&users_path, users.join("\n") + "\n").unwrap();

    // The expressions, as userport reads them and as Node evaluates them.
    let mut texts: Vec<String> = fs::read_to_string(root().join("tests/expressions.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert!(
        texts.len() >= 100,
        "at least 100 hand-written report columns"
    );
    let hand_written = texts.len();
    let count = std::env::var("USERPORT_DIFF_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    texts.extend(generated(count).iter().map(ToString::to_string));
    let mut optional = Vec::new();
    for text in &texts {
        let node =
            userport::expr::parse::parse(text).unwrap_or_else(|e| panic!("{text}: {}", e.message));
        optional.push(
            Js {
                node: &node,
                optional: true,
            }
            .to_string(),
        );
    }
    let fields: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"name": t, "export_as": format!("e{i}")}))
        .collect();
    let fields_path = dir.path().join("fields.json");
    fs::write(&fields_path, serde_json::to_string(&fields).unwrap()).unwrap();
    let optional_path = dir.path().join("optional.json");
    fs::write(&optional_path, serde_json::to_string(&optional).unwrap()).unwrap();

    let ours = userport()
        .args(["export", users_path.to_str().unwrap(), "--fields"])
        .arg(&fields_path)
        .args(["--format", "csv", "--no-csv-guard"])
        .output()
        .unwrap();
    assert!(
        ours.status.success(),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    let mut reader = csv::Reader::from_reader(ours.stdout.as_slice());
    let ours: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();

    let theirs = Command::new("node")
        .arg(root().join("tests/js/evaluate.js"))
        .arg(&users_path)
        .arg(&optional_path)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(
        theirs.status.success(),
        "{}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    let theirs: Vec<Vec<String>> = serde_json::from_slice(&theirs.stdout).unwrap();

    assert_eq!(ours.len(), users.len());
    assert_eq!(theirs.len(), users.len());
    let mut pairs = 0;
    let mut report = String::new();
    let mut mismatches = 0;
    for (u, (ours, theirs)) in ours.iter().zip(&theirs).enumerate() {
        for (e, (a, b)) in ours.iter().zip(theirs).enumerate() {
            pairs += 1;
            if a != b {
                mismatches += 1;
                if mismatches <= 25 {
                    let _ = writeln!(
                        report,
                        "expression {e} {}: {}\n  user {}\n  userport: {a:?}\n  node:     {b:?}",
                        if e < hand_written {
                            "(hand-written)"
                        } else {
                            "(generated)"
                        },
                        optional[e],
                        users[u]
                    );
                }
            }
        }
    }
    assert!(pairs >= 5000, "only {pairs} user×expression pairs");
    assert!(
        mismatches == 0,
        "{mismatches} of {pairs} cells differ:\n{report}"
    );
}
