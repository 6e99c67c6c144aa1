//! `export --query`: Auth0 user-search queries evaluated locally. The conformance cases are
//! the forms of Auth0's query-syntax documentation (exact match, phrase, wildcards, ranges,
//! comparisons, `_exists_`, metadata, `email.domain`, connections, escapes, boolean
//! operators), each with the fixture users it must match (worked out independently of
//! userport, in Python, from the fixture's JSON; a term on an array matches any element).

use super::{fails, ok};

const CASES: &[(&str, &[&str])] = &[
    (
        "email:\"ana.almeida@example.com\"",
        &[
            "auth0|63d17c4dede19c15715de000",
            "google-oauth2|118000000000000000001",
        ],
    ),
    ("name:\"zoë 中村 🦊\"", &["auth0|5f7c8ec7c33c6c004bbafe82"]),
    (
        "name:jo*",
        &[
            "auth0|63d17c4dede19c15715ef667",
            "google-oauth2|100000000000000000245",
        ],
    ),
    (
        "given_name:?na",
        &[
            "auth0|63d17c4dede19c15715de000",
            "auth0|63d17c4dede19c1571610446",
            "google-oauth2|118000000000000000001",
        ],
    ),
    (
        "logins_count:[80 TO 90]",
        &[
            "auth0|63d17c4dede19c15715f1556",
            "auth0|63d17c4dede19c157160699b",
            "auth0|63d17c4dede19c1571610446",
            "auth0|63d17c4dede19c157162588b",
        ],
    ),
    (
        "logins_count:{80 TO 90}",
        &[
            "auth0|63d17c4dede19c15715f1556",
            "auth0|63d17c4dede19c157160699b",
            "auth0|63d17c4dede19c1571610446",
        ],
    ),
    (
        "logins_count:>=88",
        &[
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "auth0|63d17c4dede19c157160699b",
            "auth0|63d17c4dede19c157162588b",
        ],
    ),
    (
        "created_at:[2023-11-01 TO *]",
        &[
            "auth0|63d17c4dede19c15715dfeef",
            "auth0|63d17c4dede19c15715e1dde",
            "auth0|63d17c4dede19c15715f7223",
            "sms|63d17c4dede19c15715f9112",
            "auth0|63d17c4dede19c157160e557",
            "auth0|63d17c4dede19c1571610446",
            "auth0|63d17c4dede19c157162588b",
            "sms|63d17c4dede19c157162777a",
            "google-oauth2|118000000000000000001",
        ],
    ),
    (
        "last_login:[* TO 2023-06-01}",
        &[
            "github|5004",
            "sms|63d17c4dede19c15715e999a",
            "samlp|acme-saml|hana.hoffmann@acme.test",
            "auth0|63d17c4dede19c15715ed778",
            "auth0|63d17c4dede19c15715fcef0",
            "auth0|63d17c4dede19c1571600cce",
            "google-oauth2|100000000000000000133",
            "github|5020",
            "github|5028",
            "sms|63d17c4dede19c1571618002",
            "samlp|acme-saml|farah.petrov@example.org",
            "auth0|63d17c4dede19c157161bde0",
        ],
    ),
    (
        "_exists_:user_metadata.language",
        &[
            "auth0|63d17c4dede19c15715de000",
            "auth0|63d17c4dede19c15715ef667",
            "auth0|63d17c4dede19c1571600cce",
            "google-oauth2|100000000000000000189",
            "github|5036",
        ],
    ),
    (
        "NOT _exists_:app_metadata",
        &[
            "auth0|000000000000000000000002",
            "auth0|000000000000000000000003",
            "email|64a5f0c2d1e2f3a4b5c6d7e8",
            "auth0|63d17c4dede19c15715dfeef",
            "samlp|acme-saml|hana.hoffmann@acme.test",
            "auth0|63d17c4dede19c15715ef667",
            "google-oauth2|100000000000000000077",
            "auth0|63d17c4dede19c15715feddf",
            "google-oauth2|100000000000000000133",
            "auth0|63d17c4dede19c157160699b",
            "google-oauth2|100000000000000000189",
            "auth0|63d17c4dede19c1571616113",
            "samlp|acme-saml|farah.petrov@example.org",
            "auth0|63d17c4dede19c157162588b",
            "samlp|acme-saml|nia.hoffmann@mail.example.net",
            "google-oauth2|118000000000000000001",
        ],
    ),
    (
        "user_metadata.preferences.theme:dark",
        &[
            "auth0|63d17c4dede19c15715de000",
            "auth0|63d17c4dede19c15715ed778",
            "auth0|63d17c4dede19c15715fcef0",
            "auth0|63d17c4dede19c157160c668",
            "auth0|63d17c4dede19c157161bde0",
        ],
    ),
    (
        "app_metadata.roles:editor AND email_verified:true",
        &[
            "auth0|63d17c4dede19c15715e1dde",
            "github|5004",
            "auth0|63d17c4dede19c15715ed778",
            "auth0|63d17c4dede19c15715f1556",
            "auth0|63d17c4dede19c15715fcef0",
            "github|5020",
            "auth0|63d17c4dede19c1571610446",
            "github|5028",
            "auth0|63d17c4dede19c157161bde0",
            "auth0|63d17c4dede19c157161fbbe",
        ],
    ),
    (
        "email.domain:\"example.org\"",
        &[
            "auth0|000000000000000000000002",
            "auth0|63d17c4dede19c15715dfeef",
            "google-oauth2|100000000000000000077",
            "auth0|63d17c4dede19c15715fcef0",
            "auth0|63d17c4dede19c157160699b",
            "auth0|63d17c4dede19c1571610446",
            "samlp|acme-saml|farah.petrov@example.org",
            "github|5036",
        ],
    ),
    (
        "identities.connection:\"google-oauth2\"",
        &[
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "google-oauth2|100000000000000000021",
            "google-oauth2|100000000000000000077",
            "google-oauth2|100000000000000000133",
            "google-oauth2|100000000000000000189",
            "google-oauth2|100000000000000000245",
            "google-oauth2|118000000000000000001",
        ],
    ),
    (
        "identities.provider:samlp OR identities.provider:sms",
        &[
            "sms|63d17c4dede19c15715e999a",
            "samlp|acme-saml|hana.hoffmann@acme.test",
            "sms|63d17c4dede19c15715f9112",
            "samlp|acme-saml|priya.petrov@example.com",
            "sms|63d17c4dede19c157160888a",
            "samlp|acme-saml|ximena.hoffmann@contoso.test",
            "sms|63d17c4dede19c1571618002",
            "samlp|acme-saml|farah.petrov@example.org",
            "sms|63d17c4dede19c157162777a",
            "samlp|acme-saml|nia.hoffmann@mail.example.net",
        ],
    ),
    (
        "user_id:auth0\\|000000000000000000000002",
        &["auth0|000000000000000000000002"],
    ),
    (
        "blocked:true",
        &[
            "sms|63d17c4dede19c15715e999a",
            "google-oauth2|100000000000000000133",
            "auth0|63d17c4dede19c157161bde0",
        ],
    ),
    (
        "(user_metadata.plan:free OR user_metadata.plan:pro) -email_verified:false",
        &[
            "auth0|000000000000000000000003",
            "sms|63d17c4dede19c15715e999a",
            "sms|63d17c4dede19c1571618002",
        ],
    ),
];

#[test]
fn documented_query_forms_match_the_right_users() {
    let mut failures = Vec::new();
    for (query, expected) in CASES {
        let out = ok(&[
            "export",
            "fixtures/users.ndjson",
            "--field",
            "user_id",
            "--query",
            query,
        ]);
        let got: Vec<&str> = out.lines().skip(1).collect();
        if got != *expected {
            failures.push(format!(
                "{query}\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn query_and_where_combine() {
    let out = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "user_id",
        "--query",
        "email_verified:true AND logins_count:[5 TO *]",
        "--where",
        "logins_count < 20",
        "--sort",
        "created_at:desc",
    ]);
    for line in out.lines().skip(1) {
        assert!(!line.is_empty());
    }
    let all = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "user_id",
        "--query",
        "email_verified:true AND logins_count:[5 TO *]",
    ]);
    assert!(out.lines().count() < all.lines().count());
}

#[test]
fn bad_queries_point_at_the_problem() {
    let e = fails(
        &["export", "fixtures/users.ndjson", "--query", "email:(a"],
        2,
    );
    assert!(e.contains("--query email:(a: "), "{e}");
    assert!(e.contains("\n  email:(a\n"), "{e}");
    assert!(e.contains('^'), "{e}");
    let e = fails(
        &["export", "fixtures/users.ndjson", "--query", "name:x^2"],
        2,
    );
    assert!(
        e.contains("boosts (^) are not part of Auth0's user search"),
        "{e}"
    );
    let e = fails(&["export", "fixtures/users.ndjson", "--query", "john"], 2);
    assert!(e.contains("name a field"), "{e}");
    let e = fails(
        &["export", "fixtures/users.ndjson", "--query", "name:/jo.*/"],
        2,
    );
    assert!(e.contains("regular expressions"), "{e}");
}
