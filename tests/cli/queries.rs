//! Every worked query in `queries/` runs on the fixtures and gives its stored result
//! (`queries/expected/NAME.csv`; `UPDATE_EXPECTED=1` rewrites them after a deliberate change).

use std::fs;

use super::{ok, root};

#[test]
fn every_query_gives_its_expected_result() {
    let dir = root().join("queries");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "at least eight worked queries");
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let mut failures = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        assert!(
            text.starts_with("-- "),
            "{}: opens with a comment",
            file.display()
        );
        let out = ok(&[
            "sql",
            "fixtures/users.ndjson",
            "--file",
            file.to_str().unwrap(),
            "--format",
            "csv",
        ]);
        assert!(
            out.lines().count() > 1,
            "{}: no rows on the fixtures",
            file.display()
        );
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let expected_path = dir.join("expected").join(format!("{stem}.csv"));
        if update {
            fs::write(&expected_path, &out).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} is missing", expected_path.display()));
        if out != expected {
            failures.push(format!("{stem}:\n--- expected\n{expected}--- got\n{out}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
