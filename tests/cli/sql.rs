//! `userport sql`, and `export --where / --sort / --limit`.

use std::fs;

use super::{fails, ok, write_generated};

#[test]
fn sql_runs_over_the_users_table_with_json_operators() {
    let out = ok(&[
        "sql",
        "fixtures/users.ndjson",
        "fixtures/users.json",
        "-e",
        "SELECT user_metadata->>'plan' AS plan, count(*) AS n FROM users \
         WHERE json_get_str(user_metadata, 'plan') IS NOT NULL GROUP BY 1 ORDER BY 1",
        "--format",
        "json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let free = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["plan"] == "free")
        .unwrap();
    // Both inputs are one table: every count is even.
    assert_eq!(free["n"].as_i64().unwrap() % 2, 0);
}

#[test]
fn sql_errors_are_datafusion_s_own_words() {
    let e = fails(
        &[
            "sql",
            "fixtures/users.ndjson",
            "-e",
            "SELECT nope FROM users",
        ],
        2,
    );
    assert!(e.contains("-e: Schema error: No field named nope"), "{e}");
    let e = fails(&["sql", "fixtures/users.ndjson", "-e", "SELEC 1"], 2);
    assert!(e.contains("-e: SQL error"), "{e}");
}

#[test]
fn where_sort_and_limit() {
    let out = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "user_id",
        "--field",
        "logins_count",
        "--where",
        "logins_count > 80",
        "--sort",
        "logins_count:desc",
        "--limit",
        "3",
    ]);
    assert_eq!(
        out,
        "user_id,logins_count\nauth0|5f7c8ec7c33c6c004bbafe82,1234\n\
         auth0|63d17c4dede19c157162588b,90\nauth0|63d17c4dede19c157160699b,88\n"
    );
    let e = fails(
        &["export", "fixtures/users.ndjson", "--where", "nope = 1"],
        2,
    );
    assert!(
        e.contains("--where nope = 1: Schema error: No field named nope"),
        "{e}"
    );
}

#[test]
fn sort_by_metadata_orders_numbers_then_strings_and_keeps_ties_in_input_order() {
    let out = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "user_id",
        "--field",
        "P=user_metadata.plan",
        "--where",
        "user_metadata->>'plan' IS NOT NULL",
        "--sort",
        "user_metadata.plan",
    ]);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert!(rows[0].ends_with(",3"), "numbers first: {rows:?}");
    let frees: Vec<&str> = rows
        .iter()
        .filter(|r| r.ends_with(",free"))
        .copied()
        .collect();
    let input = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "user_id",
        "--field",
        "P=user_metadata.plan",
    ]);
    let input_frees: Vec<&str> = input.lines().filter(|r| r.ends_with(",free")).collect();
    assert_eq!(frees, input_frees, "ties keep the input order");
    let desc = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "P=user_metadata.plan",
        "--sort",
        "user_metadata.plan:desc",
    ]);
    // A one-column record with an empty value is written `""`.
    assert_eq!(
        desc.lines().last(),
        Some("\"\""),
        "absent values last, also descending"
    );
    assert_eq!(
        desc.lines().nth(1),
        Some("\"{\"\"name\"\":\"\"enterprise\"\",\"\"seats\"\":250}\"")
    );
}

#[test]
fn sorting_spills_under_a_small_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.ndjson");
    write_generated(&input, 60_000);
    let out = dir.path().join("sorted.csv");
    ok(&[
        "export",
        input.to_str().unwrap(),
        "--field",
        "user_id",
        "--sort",
        "email:desc",
        "--memory-limit",
        "8M",
        "-o",
        out.to_str().unwrap(),
    ]);
    let text = fs::read_to_string(&out).unwrap();
    let ids: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(ids.len(), 60_000);
    let mut emails: Vec<String> = (0..60_000)
        .map(|i| format!("user{i}@example.com"))
        .collect();
    emails.sort();
    emails.reverse();
    let expected: Vec<String> = emails
        .iter()
        .map(|e| {
            format!(
                "auth0|{:08}",
                e[4..e.find('@').unwrap()].parse::<usize>().unwrap()
            )
        })
        .collect();
    assert_eq!(ids, expected);
}

#[test]
fn explain_shows_the_filter_and_the_sort_as_sql() {
    let out = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--field",
        "email",
        "--where",
        "logins_count > 10",
        "--sort",
        "user_metadata.plan:desc",
        "--sort",
        "created_at",
        "--explain",
    ]);
    assert!(
        out.contains("Filter:\n  sql: (users.logins_count > 10)\n"),
        "{out}"
    );
    assert!(
        out.contains("  user.user_metadata.plan desc\n    sql: js_sort_key(json_path(user_metadata, 'plan')) DESC NULLS LAST\n"),
        "{out}"
    );
    assert!(
        out.contains("  user.created_at asc\n    sql: created_at ASC NULLS LAST\n"),
        "{out}"
    );
    assert!(out.contains("Sort: "), "{out}");
}

#[test]
fn nested_results_are_written_as_json() {
    let out = ok(&[
        "sql",
        "fixtures/users.ndjson",
        "-e",
        "SELECT user_metadata->'plan' AS p, named_struct('n', logins_count) AS s FROM users LIMIT 4",
        "--format",
        "ndjson",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], r#"{"p":"free","s":{"n":1}}"#);
    assert_eq!(
        lines[1],
        r#"{"p":{"name":"enterprise","seats":250},"s":{"n":1234}}"#
    );
    assert_eq!(lines[2], r#"{"p":3,"s":{"n":0}}"#);
    assert_eq!(lines[3], r#"{"p":null,"s":{"n":null}}"#);
    let csv = ok(&[
        "sql",
        "fixtures/users.ndjson",
        "-e",
        "SELECT user_metadata->'plan' AS p FROM users LIMIT 4",
    ]);
    assert_eq!(
        csv,
        "p\nfree\n\"{\"\"name\"\":\"\"enterprise\"\",\"\"seats\"\":250}\"\n3\n\"\"\n"
    );
}

#[test]
fn whole_users_sort_without_helper_columns() {
    let out = ok(&[
        "export",
        "fixtures/users.ndjson",
        "--sort",
        "logins_count:desc",
        "--limit",
        "2",
        "--format",
        "ndjson",
    ]);
    let users: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["user_id"], "auth0|5f7c8ec7c33c6c004bbafe82");
    assert!(users[0].get("_row").is_none() && users[0].get("_sort0").is_none());
    assert_eq!(users[0]["user_metadata"]["plan"]["seats"], 250);
}

#[test]
fn explain_shows_the_scan_that_runs_and_analyze_counts_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.ndjson");
    write_generated(&input, 20_000);
    let input = input.to_str().unwrap();
    let args = [
        "export",
        input,
        "--field",
        "user_id",
        "--field",
        "N=user.logins_count + 1",
        "--query",
        "logins_count:[5 TO *]",
        "--sort",
        "email:desc",
    ];
    let with = |extra: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(extra);
        ok(&all)
    };
    let plan = with(&["--explain"]);
    let physical = plan.split("Physical plan:\n").nth(1).unwrap_or_default();
    // The filter and the columns run in the scan; one sort reads its parts (one per core),
    // holds their rows and gathers them in order.
    let lines: Vec<&str> = physical.lines().map(str::trim).collect();
    assert!(
        lines[0].starts_with("ProjectionExec: expr=[user_id@0 as user_id, N@1 as N]"),
        "{plan}"
    );
    assert!(!plan.contains("SortPreservingMergeExec"), "{plan}");
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if parts > 1 {
        assert!(lines[2].contains(&format!("partitions={parts}")), "{plan}");
    }
    let sort = "GatherSortExec: ";
    assert!(
        lines[1].starts_with(&format!(
            "{sort}expr=[sort key 1@2 DESC NULLS LAST, input order@3 ASC NULLS LAST]"
        )),
        "{plan}"
    );
    assert!(lines[2].starts_with("UsersExec: "), "{plan}");
    for part in [
        "decoded=[user_id, email, logins_count, _extra], ordinal",
        "filter=search_match(logins_count@17",
        "projection=Projection[user_id@0 AS user_id, js_add(",
    ] {
        assert!(lines[2].contains(part), "{part} in {plan}");
    }
    assert_eq!(lines.len(), 3, "{plan}");

    // Analyze runs that plan: every node says how many rows it gave.
    let analyzed = with(&["--explain", "analyze"]);
    let run = analyzed
        .split("Physical plan, run:\n")
        .nth(1)
        .unwrap_or_default();
    let rows: Vec<&str> = run
        .lines()
        .map(|l| {
            let at = l.find("output_rows=").unwrap_or_else(|| panic!("{l}")) + 12;
            l[at..].split(',').next().unwrap()
        })
        .collect();
    // The report has as many rows as the scan kept, and each node passes them on.
    let out = dir.path().join("r.csv");
    with(&["-o", out.to_str().unwrap()]);
    let written = fs::read_to_string(&out).unwrap().lines().count() as u64 - 1;
    assert!(written > 1000 && written < 20_000, "{written}");
    // (DataFusion shows counts in thousands, to two decimals.)
    let shown = format!("{:.2} K", written as f64 / 1000.0);
    assert_eq!(rows, vec![shown.as_str(); 3], "{analyzed}");
    assert!(run.contains("bytes_read="), "{analyzed}");
}

#[test]
fn a_limit_holds_after_a_condition() {
    // The limit is run by the scan, after its filter (it was once lost when a filter came
    // with it: every matching user was written).
    for condition in [
        ["--where", "logins_count > 0"],
        ["--query", "logins_count:[1 TO *]"],
    ] {
        let mut args = vec!["export", "fixtures/users.ndjson", "--field", "user_id"];
        args.extend_from_slice(&condition);
        let all = ok(&args).lines().count() - 1;
        assert!(all > 5, "{all}");
        args.extend_from_slice(&["--limit", "3"]);
        let out = ok(&args);
        let first: Vec<&str> = out.lines().collect();
        assert_eq!(first.len(), 4, "{out}");
        args.push("--explain");
        let plan = ok(&args);
        assert!(plan.contains(", limit=3"), "{plan}");
    }
}

#[test]
fn sql_and_prepare_explain_the_plan_they_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("import");
    let plan = ok(&[
        "prepare",
        "fixtures/users.ndjson",
        "--query",
        "logins_count:[2 TO *]",
        "-o",
        out.to_str().unwrap(),
        "--explain",
    ]);
    assert!(
        plan.contains("Filter:\n  sql: search_match(logins_count"),
        "{plan}"
    );
    let physical = plan.split("Physical plan:\n").nth(1).unwrap_or_default();
    assert!(
        physical.trim_start().starts_with("UsersExec: ")
            && physical.contains("filter=search_match(logins_count@17"),
        "{plan}"
    );
    assert!(!out.exists(), "--explain prepares nothing");

    let analyzed = ok(&[
        "sql",
        "fixtures/users.ndjson",
        "-e",
        "SELECT user_id FROM users WHERE logins_count > 2 ORDER BY email LIMIT 2",
        "--explain",
        "analyze",
    ]);
    let run = analyzed
        .split("Physical plan, run:\n")
        .nth(1)
        .unwrap_or_default();
    let scan = run.lines().last().unwrap_or_default();
    assert!(
        scan.trim_start().starts_with("UsersExec: ")
            && scan.contains("filter=logins_count@17 > 2")
            && scan.contains("decoded=[user_id, email, logins_count]")
            && scan.contains("output_rows="),
        "{analyzed}"
    );
    assert!(
        run.lines().next().unwrap().contains("output_rows=2,"),
        "{analyzed}"
    );
}
