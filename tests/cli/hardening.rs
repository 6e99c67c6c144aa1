//! Hostile input, hostile servers, interrupted runs: each test is one way userport was
//! broken (data loss, leaks, crashes, hangs), run against the real executable.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::tenant::{Fault, Server};
use super::{entries, fails, ok, userport, write_generated};

/// Waits for `child` at most `limit` (a guard against hangs, not a speed test): its output,
/// or a panic naming what hung after killing it.
fn finish(mut child: Child, limit: Duration, what: &str) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` with a guard against hangs.
fn run_guarded(cmd: &mut Command, what: &str) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, Duration::from_secs(120), what)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// 1. `prepare --force` replaces only a folder that prepare made.

#[test]
fn force_never_deletes_inputs_or_files_prepare_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let inside = tmp.path().join("inside");
    fs::create_dir(&inside).unwrap();
    let input = inside.join("users.ndjson");
    fs::copy(super::fixture("users.ndjson"), &input).unwrap();
    fs::write(inside.join("notes.txt"), "mine").unwrap();
    let stderr = fails(
        &[
            "prepare",
            input.to_str().unwrap(),
            "-o",
            inside.to_str().unwrap(),
            "--force",
            "-q",
        ],
        2,
    );
    assert!(stderr.contains("an input of this run"), "{stderr}");
    assert_eq!(entries(&inside), ["notes.txt", "users.ndjson"]);

    // A folder that prepare made, with a file of someone else's: refused too.
    let out = tmp.path().join("out");
    let out_arg = out.to_str().unwrap();
    ok(&["prepare", "fixtures/users.ndjson", "-o", out_arg, "-q"]);
    fs::write(out.join("notes.txt"), "mine").unwrap();
    let stderr = fails(
        &["prepare", "fixtures/users.ndjson", "-o", out_arg, "--force"],
        2,
    );
    assert!(
        stderr.contains("notes.txt, which prepare did not write"),
        "{stderr}"
    );
    assert!(out.join("notes.txt").exists());

    // A folder prepare made, and nothing else: replaced.
    fs::remove_file(out.join("notes.txt")).unwrap();
    ok(&[
        "prepare",
        "fixtures/users.ndjson",
        "-o",
        out_arg,
        "--force",
        "-q",
    ]);
    assert!(out.join("manifest.json").exists());

    // A folder of other files, without a manifest: refused.
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("a.txt"), "x").unwrap();
    let stderr = fails(
        &[
            "prepare",
            "fixtures/users.ndjson",
            "-o",
            other.to_str().unwrap(),
            "--force",
        ],
        2,
    );
    assert!(
        stderr.contains("not a folder that userport prepare made"),
        "{stderr}"
    );
    assert_eq!(entries(&other), ["a.txt"]);
}

// 2. No redirect carries credentials, and the loopback rule holds for every hop.

#[test]
fn token_and_api_calls_follow_no_redirect() {
    let tenant = Server::start();
    let elsewhere = Server::start();
    let mut fault = Fault::new("POST", "/oauth/token", 307, serde_json::json!({}), u32::MAX);
    fault.headers = vec![("location", format!("{}/oauth/token", elsewhere.url))];
    tenant.fault(fault);
    let (code, _, stderr) = tenant.run(&["jobs", "show", "job_abc", "-q"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("redirect"), "{stderr}");
    assert!(!stderr.contains("s3cr3t"), "{stderr}");
    assert!(elsewhere.requests().is_empty(), "the form went elsewhere");

    let tenant = Server::start();
    let mut fault = Fault::new("GET", "/api/v2/jobs/", 302, serde_json::json!({}), u32::MAX);
    fault.headers = vec![("location", format!("{}/api/v2/jobs/x", elsewhere.url))];
    tenant.fault(fault);
    let (code, _, stderr) = tenant.run(&["jobs", "show", "job_abc", "-q"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(elsewhere.requests().is_empty(), "the token went elsewhere");
}

#[test]
fn download_redirects_stay_on_https_or_loopback_and_carry_no_token() {
    let tenant = Server::start();
    tenant.state.lock().unwrap().export_body = fs::read(super::fixture("users.ndjson")).unwrap();
    // A redirect to plain http off loopback is refused before anything is sent.
    let mut fault = Fault::new("GET", "/downloads/", 302, serde_json::json!({}), 1);
    fault.headers = vec![("location", "http://downloads.example.com/x.gz".to_string())];
    tenant.fault(fault);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("users.csv");
    let (code, _, stderr) =
        tenant.run(&["export", "--field", "email", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("loopback"), "{stderr}");
    assert!(!out.exists());

    // A redirect to another loopback server is followed, with no token.
    let mirror = Server::start();
    mirror.state.lock().unwrap().export_body = fs::read(super::fixture("users.ndjson")).unwrap();
    let mut fault = Fault::new("GET", "/downloads/", 302, serde_json::json!({}), 1);
    fault.headers = vec![("location", format!("{}/downloads/copy", mirror.url))];
    tenant.fault(fault);
    let (code, _, stderr) =
        tenant.run(&["export", "--field", "email", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let hops = mirror.requests();
    assert_eq!(hops.len(), 1);
    assert!(hops[0].authorization.is_none());
}

// 3. A manifest names files inside its folder only.

#[test]
fn manifests_cannot_name_files_outside_their_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("import");
    let dir_arg = dir.to_str().unwrap().to_string();
    ok(&["prepare", "fixtures/users.ndjson", "-o", &dir_arg, "-q"]);
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::copy(dir.join("users-0001.json"), outside.join("x.json")).unwrap();
    let manifest_path = dir.join("manifest.json");
    let original = fs::read_to_string(&manifest_path).unwrap();
    for name in ["../outside/x.json", "/etc/passwd", "/dev/zero", "..", ""] {
        let edited = original.replacen("users-0001.json", name, 1);
        fs::write(&manifest_path, edited).unwrap();
        let stderr = fails(&["validate", &dir_arg], 2);
        assert!(stderr.contains("inside its own folder"), "{name}: {stderr}");
        assert!(!stderr.contains("sha256"), "{stderr}");
    }
    // A symbolic link that leaves the folder is refused; one inside it is read.
    fs::write(&manifest_path, &original).unwrap();
    fs::rename(dir.join("users-0001.json"), tmp.path().join("moved.json")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("moved.json"), dir.join("users-0001.json")).unwrap();
    let stderr = fails(&["validate", &dir_arg], 2);
    assert!(stderr.contains("leaves the manifest's folder"), "{stderr}");
    fs::remove_file(dir.join("users-0001.json")).unwrap();
    fs::rename(tmp.path().join("moved.json"), dir.join("real.json")).unwrap();
    std::os::unix::fs::symlink("real.json", dir.join("users-0001.json")).unwrap();
    ok(&["validate", &dir_arg]);
}

// 4. SQL is queries only.

#[test]
fn sql_cannot_write_or_read_files_of_its_choosing() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("written.csv");
    let copy = format!("COPY (SELECT email FROM users) TO '{}'", target.display());
    let stderr = fails(&["sql", "fixtures/users.ndjson", "-e", &copy], 2);
    assert!(stderr.contains("only queries are accepted"), "{stderr}");
    assert!(!target.exists());
    let create = "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'";
    let stderr = fails(&["sql", "fixtures/users.ndjson", "-e", create], 2);
    assert!(stderr.contains("only queries are accepted"), "{stderr}");
    let out = tmp.path().join("out");
    let stderr = fails(
        &[
            "prepare",
            "fixtures/users.ndjson",
            "--sql",
            &copy,
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(stderr.contains("only queries are accepted"), "{stderr}");
    assert!(!target.exists() && !out.exists());
    let stderr = fails(
        &[
            "sql",
            "fixtures/users.ndjson",
            "-e",
            "SET datafusion.execution.batch_size = 1",
        ],
        2,
    );
    assert!(stderr.contains("only queries are accepted"), "{stderr}");
    // Queries still run.
    assert!(
        ok(&[
            "sql",
            "fixtures/users.ndjson",
            "-e",
            "SELECT count(*) AS n FROM users"
        ])
        .starts_with("n\n")
    );
}

// 5. Output files follow the umask; a replaced file keeps its mode.

#[test]
fn outputs_follow_the_umask_and_keep_a_replaced_files_mode() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let exe = env!("CARGO_BIN_EXE_userport");
    let export = |umask: &str, out: &Path| {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask {umask} && exec \"$0\" export fixtures/users.ndjson --field email -o \"$1\""
            ))
            .arg(exe)
            .arg(out)
            .current_dir(super::root())
            .status()
            .unwrap();
        assert!(status.success());
    };
    let private = tmp.path().join("private.csv");
    export("077", &private);
    assert_eq!(mode(&private), 0o600);
    let shared = tmp.path().join("shared.csv");
    export("022", &shared);
    assert_eq!(mode(&shared), 0o644);
    // A 0600 report replaced under a lax umask stays 0600.
    export("000", &private);
    assert_eq!(mode(&private), 0o600);
    // A prepared folder follows the umask too.
    let dir = tmp.path().join("import");
    let status = Command::new("sh")
        .arg("-c")
        .arg("umask 027 && exec \"$0\" prepare fixtures/users.ndjson -q -o \"$1\"")
        .arg(exe)
        .arg(&dir)
        .current_dir(super::root())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(mode(&dir), 0o750);
    assert_eq!(mode(&dir.join("manifest.json")), 0o640);
}

// 6. A FIFO or a device is written in place.

#[test]
fn fifos_and_devices_are_written_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pipe.csv");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
    };
    let out = run_guarded(
        userport().args([
            "export",
            "fixtures/users.ndjson",
            "--field",
            "email",
            "-o",
            fifo.to_str().unwrap(),
        ]),
        "export into a FIFO",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Checked before the reader is waited for: had the FIFO been replaced, the reader
    // would wait for ever.
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(entries(tmp.path()), ["pipe.csv"]);
    let got = reader.join().unwrap();
    assert_eq!(
        got,
        ok(&["export", "fixtures/users.ndjson", "--field", "email"])
    );
    // /dev/stdout is the standard output, and /dev/null stays a device.
    let out = userport()
        .args([
            "export",
            "fixtures/users.ndjson",
            "--field",
            "email",
            "-o",
            "/dev/stdout",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        ok(&["export", "fixtures/users.ndjson", "--field", "email"])
    );
    ok(&[
        "export",
        "fixtures/users.ndjson",
        "-o",
        "/dev/null",
        "--format",
        "csv",
    ]);
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

// 7. diff: users that share a key pair in input order however far the sort spills;
// deep values and big numbers compare exactly.

#[test]
fn diff_pairs_users_of_one_key_in_input_order_when_the_sort_spills() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("users.ndjson");
    let changed = tmp.path().join("changed.ndjson");
    {
        let mut out = std::io::BufWriter::new(fs::File::create(&path).unwrap());
        let mut other = std::io::BufWriter::new(fs::File::create(&changed).unwrap());
        for i in 0..90_000 {
            // Every id three times, with different users; long ids, so that the sorts of
            // the keys alone (90,000 × 70 bytes a side) spill past 4 MB.
            let line = format!(
                r#"{{"user_id":"auth0|{:064}","email":"u{i}@example.com","logins_count":{i},"user_metadata":{{"pad":"{}"}}}}"#,
                i / 3,
                "x".repeat(40)
            );
            writeln!(out, "{line}").unwrap();
            // The second user of every thousandth id changed: found only if the users
            // of one id pair in input order.
            if i % 3000 == 1 {
                writeln!(
                    other,
                    "{}",
                    line.replace(&format!("\"logins_count\":{i},"), "\"logins_count\":-1,")
                )
                .unwrap();
            } else {
                writeln!(other, "{line}").unwrap();
            }
        }
    }
    let p = path.to_str().unwrap();
    for limit in ["4M", "64M", "512M"] {
        let out = run_guarded(
            userport().env("TMPDIR", tmp.path()).args([
                "diff",
                p,
                p,
                "--memory-limit",
                limit,
                "-q",
            ]),
            "diff",
        );
        assert_eq!(out.status.code(), Some(0), "{limit}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("changed 0, unchanged 90000"),
            "{limit}: {}",
            text(&out.stderr)
        );
        let out = run_guarded(
            userport().env("TMPDIR", tmp.path()).args([
                "diff",
                p,
                changed.to_str().unwrap(),
                "--memory-limit",
                limit,
                "--format",
                "ndjson",
                "-q",
            ]),
            "diff",
        );
        assert_eq!(out.status.code(), Some(1), "{limit}: {}", text(&out.stderr));
        let report = text(&out.stdout);
        let rows: Vec<&str> = report.lines().collect();
        assert_eq!(rows.len(), 30, "{limit}: {report}");
        for (n, row) in rows.iter().enumerate() {
            let i = n * 3000 + 1;
            assert!(
                row.ends_with(&format!(r#""path":"logins_count","old":{i},"new":-1}}"#)),
                "{limit}: {row}"
            );
        }
    }
}

#[test]
fn diff_reads_users_back_from_gzipped_piped_and_array_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let users: Vec<String> = (0..2_000)
        .map(|i| {
            format!(
                r#"{{"user_id":"auth0|{i}","email":"U{i}@Example.com","name":"n\u00e9 {i}","user_metadata":{{"k":[{i},{{"x":null}}]}}}}"#
            )
        })
        .collect();
    // Old: gzipped lines, with a byte-order mark and blank lines.
    let old = tmp.path().join("old.ndjson.gz");
    {
        let mut gz = flate2::write::GzEncoder::new(
            fs::File::create(&old).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(b"\xEF\xBB\xBF").unwrap();
        for user in &users {
            writeln!(gz, "{user}\n").unwrap();
        }
        gz.finish().unwrap();
    }
    // New: a JSON array on standard input, user 7 changed, user 9 gone, one added, the
    // users in another order and ids without their prefix.
    let mut new: Vec<String> = users
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 9)
        .map(|(i, u)| {
            let u = u.replace("auth0|", "");
            if i == 7 {
                u.replace("n\\u00e9 7", "changed")
            } else {
                u
            }
        })
        .collect();
    new.reverse();
    new.push(r#"{"user_id":"auth0|new","email":"new@example.com"}"#.into());
    let array = format!("[\n  {}\n]\n", new.join(",\n  "));
    let spill = tmp.path().join("spill");
    fs::create_dir(&spill).unwrap();
    let mut child = userport()
        .env("TMPDIR", &spill)
        .args([
            "diff",
            old.to_str().unwrap(),
            "-",
            "--format",
            "ndjson",
            "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(array.as_bytes())
        .unwrap();
    let out = finish(child, Duration::from_secs(120), "diff");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let rows: Vec<&str> = report.lines().collect();
    assert_eq!(rows.len(), 3, "{report}");
    assert!(
        rows[0].starts_with(
            r#"{"key":"7","change":"changed","path":"name","old":"né 7","new":"changed"}"#
        ),
        "{report}"
    );
    assert!(
        rows[1].starts_with(r#"{"key":"9","change":"removed","path":"","old":{"#)
            && rows[1].contains(r#""user_metadata":{"k":[9,{"x":null}]}"#),
        "{report}"
    );
    assert!(
        rows[2].starts_with(r#"{"key":"new","change":"added","path":"","old":null,"new":{"#),
        "{report}"
    );
    // The inflated copies went with the run.
    assert_eq!(fs::read_dir(&spill).unwrap().count(), 0);
}

#[test]
fn diff_compares_deep_values_and_big_numbers_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let deep = format!("{}1{}", "[".repeat(130), "]".repeat(130));
    let old = tmp.path().join("old.ndjson");
    let new = tmp.path().join("new.ndjson");
    fs::write(
        &old,
        format!(
            "{{\"user_id\":\"auth0|1\",\"email\":\"a@b.co\",\"user_metadata\":{{\"d\":{deep}}}}}\n\
             {{\"user_id\":\"auth0|2\",\"email\":\"c@d.co\",\"user_metadata\":{{\"n\":12345678901234567890123}}}}\n"
        ),
    )
    .unwrap();
    fs::write(
        &new,
        format!(
            "{{\"user_id\":\"auth0|1\",\"email\":\"changed@b.co\",\"user_metadata\":{{\"d\":{deep}}}}}\n\
             {{\"user_id\":\"auth0|2\",\"email\":\"c@d.co\",\"user_metadata\":{{\"n\":12345678901234567890124}}}}\n"
        ),
    )
    .unwrap();
    let out = userport()
        .args([
            "diff",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
            "-q",
            "--format",
            "ndjson",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains(
            r#""key":"1","change":"changed","path":"email","old":"a@b.co","new":"changed@b.co""#
        ),
        "{report}"
    );
    assert!(
        report.contains(r#""path":"user_metadata.n","old":12345678901234567890123,"new":12345678901234567890124"#),
        "{report}"
    );
    // Deeper than diff compares: refused, naming the user, never taken for null.
    let deeper = format!("{}1{}", "[".repeat(250), "]".repeat(250));
    fs::write(
        &new,
        format!("{{\"user_id\":\"auth0|1\",\"email\":\"a@b.co\",\"user_metadata\":{{\"d\":{deeper}}}}}\n"),
    )
    .unwrap();
    let stderr = fails(
        &["diff", old.to_str().unwrap(), new.to_str().unwrap(), "-q"],
        2,
    );
    assert!(
        stderr.contains("new.ndjson:1:") && stderr.contains("nests deeper than 200 levels"),
        "{stderr}"
    );
}

// 8. An update of existing users does not skip the blocked ones.

#[test]
fn updates_of_blocked_users_leave_the_block_to_the_tenant() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.ndjson");
    fs::write(
        &base,
        "{\"user_id\":\"auth0|1\",\"email\":\"a@b.co\",\"blocked\":true,\"identities\":[{\"connection\":\"db\",\"provider\":\"auth0\",\"user_id\":\"1\",\"isSocial\":false}],\"user_metadata\":{\"keep\":1}}\n\
         {\"user_id\":\"auth0|2\",\"email\":\"c@d.co\",\"blocked\":false,\"identities\":[{\"connection\":\"db\",\"provider\":\"auth0\",\"user_id\":\"2\",\"isSocial\":false}]}\n",
    )
    .unwrap();
    let dir = tmp.path().join("update");
    ok(&[
        "prepare",
        "--upsert",
        "--base",
        base.to_str().unwrap(),
        "--sql",
        "SELECT user_id, 'pro' AS \"user_metadata.plan\" FROM users",
        "-o",
        dir.to_str().unwrap(),
        "-q",
    ]);
    let users: Vec<serde_json::Value> =
        serde_json::from_str(&fs::read_to_string(dir.join("users-0001.json")).unwrap()).unwrap();
    assert_eq!(users.len(), 2, "{users:?}");
    assert_eq!(
        users[0]["user_metadata"],
        serde_json::json!({"keep": 1, "plan": "pro"})
    );
    assert!(users.iter().all(|u| u.get("blocked").is_none()));
}

// 9. Whole users keep numbers' exact text.

#[test]
fn whole_users_keep_minus_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("u.ndjson");
    let line =
        r#"{"user_id":"auth0|1","email":"a@b.co","logins_count":-0,"user_metadata":{"z":-0}}"#;
    fs::write(&input, format!("{line}\n")).unwrap();
    let out = ok(&["export", input.to_str().unwrap(), "--format", "ndjson"]);
    assert!(out.contains(r#""logins_count":-0"#), "{out}");
    assert!(out.contains(r#""z":-0"#), "{out}");
}

// 10. A panic in any thread ends the run at once, with exit status 2 and no partial file.

#[test]
fn a_panic_in_a_worker_thread_ends_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out_path = tmp.path().join("out.csv");
    let out = run_guarded(
        userport().env("USERPORT_TEST_PANIC", "decode").args([
            "export",
            "fixtures/users.ndjson",
            "--field",
            "email",
            "-o",
            out_path.to_str().unwrap(),
        ]),
        "a run whose decoding thread panicked",
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("internal error"),
        "{}",
        text(&out.stderr)
    );
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
}

// 11. Deep expressions and queries are refused with a caret; long flat chains compile.

#[test]
fn deep_expressions_are_refused_and_long_chains_compile() {
    let chain = vec!["user.nickname"; 5000].join(" || ") + " || user.email";
    let field = format!("x={chain}");
    let out = run_guarded(
        userport().args([
            "export",
            "fixtures/users.ndjson",
            "--field",
            &field,
            "--limit",
            "1",
        ]),
        "a 5000-term chain",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let explain = format!("x={}", vec!["user.nickname"; 400].join(" || "));
    let out = run_guarded(
        userport().args([
            "export",
            "fixtures/users.ndjson",
            "--field",
            &explain,
            "--explain",
        ]),
        "--explain of a 400-term chain",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Each refused before the parsers recurse, with a caret under the place.
    let deep = |open: &str, close: &str| {
        format!("{}user.email{}", open.repeat(10_000), close.repeat(10_000))
    };
    let refused = [
        (
            "--field",
            format!("x={}", deep("(", ")")),
            "10000 parentheses",
        ),
        (
            "--field",
            format!("x=`${{{}}}`", deep("(", ")")),
            "parentheses in a template",
        ),
        (
            "--field",
            format!("x={}user.email", "!".repeat(5000)),
            "5000 nots",
        ),
        (
            "--field",
            format!("x={}", vec!["user.logins_count + 1 - 1"; 300].join(" + ")),
            "300 mixed sums",
        ),
        (
            "--query",
            format!("{}email:a", "NOT ".repeat(5000)),
            "5000 NOTs",
        ),
        (
            "--query",
            format!("{}email:a{}", "(".repeat(10_000), ")".repeat(10_000)),
            "query parentheses",
        ),
    ];
    for (flag, value, what) in refused {
        let out = run_guarded(
            userport().args(["export", "fixtures/users.ndjson", flag, &value]),
            what,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains("nests deeper than 100 levels"),
            "{what}: {stderr}"
        );
        assert!(stderr.contains('^'), "{what}: {stderr}");
    }
    let query = vec!["email:x"; 5000].join(" OR ");
    let out = run_guarded(
        userport().args([
            "export",
            "fixtures/users.ndjson",
            "--query",
            &query,
            "--field",
            "email",
        ]),
        "a 5000-term OR",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "email\n");
}

// 12. Wildcards match in linear time.

#[test]
fn wildcards_do_not_backtrack_exponentially() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("u.ndjson");
    let name = "a".repeat(2000);
    fs::write(
        &input,
        format!(
            "{{\"user_id\":\"auth0|1\",\"email\":\"{}@x.co\",\"name\":\"{name}\"}}\n",
            "a".repeat(60)
        ),
    )
    .unwrap();
    let p = input.to_str().unwrap();
    for query in [
        "email:*a*a*a*a*a*a*a*a*a*b",
        "name:*a*a*b",
        "email:*a*a*a*a*a*a*a*a*a*co",
    ] {
        let out = run_guarded(
            userport().args(["export", p, "--query", query, "--field", "user_id"]),
            query,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let expected = if query.ends_with("co") {
            "user_id\nauth0|1\n"
        } else {
            "user_id\n"
        };
        assert_eq!(text(&out.stdout), expected, "{query}");
    }
}

// 13. A giant line (a gzip bomb) is an error naming its line, in bounded memory.

#[test]
fn a_line_past_the_limit_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = tmp.path().join("bomb.ndjson.gz");
    {
        let mut gz = flate2::write::GzEncoder::new(
            fs::File::create(&bomb).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(br#"{"user_id":"auth0|1","email":"a@b.co"}"#)
            .unwrap();
        gz.write_all(b"\n\n").unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..40 {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap();
    }
    let out_path = tmp.path().join("out.csv");
    let out = run_guarded(
        userport().args([
            "export",
            bomb.to_str().unwrap(),
            "--field",
            "email",
            "--max-line-bytes",
            "4M",
            "-o",
            out_path.to_str().unwrap(),
        ]),
        "a gzip bomb",
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bomb.ndjson.gz:3:"), "{stderr}");
    assert!(stderr.contains("longer than 4194304 bytes"), "{stderr}");
    assert!(!out_path.exists());
    // The same in a plain (mapped) file, and in a JSON array.
    let long = "x".repeat(3 << 20);
    let cases = [
        (
            "long.ndjson",
            format!("{{\"email\":\"{long}\"}}\n"),
            "long.ndjson:1:",
        ),
        (
            "long.json",
            format!("[\n{{\"email\":\"{long}\"}}]"),
            "long.json:2:",
        ),
    ];
    for (name, content, place) in cases {
        let path = tmp.path().join(name);
        fs::write(&path, content).unwrap();
        let p = path.to_str().unwrap();
        let stderr = fails(
            &["export", p, "--field", "email", "--max-line-bytes", "1M"],
            2,
        );
        assert!(stderr.contains(place), "{stderr}");
    }
    let plain = tmp.path().join("long.ndjson");
    // Raised, it reads.
    ok(&[
        "export",
        plain.to_str().unwrap(),
        "--field",
        "email",
        "--max-line-bytes",
        "8M",
    ]);
}

// 14. validate: sizes from the file's size, a closed pipe is success, a full disk an error.

#[test]
fn validate_reads_no_more_than_it_checks_and_writes_safely() {
    let tmp = tempfile::tempdir().unwrap();
    let huge = tmp.path().join("huge.json");
    let file = fs::File::create(&huge).unwrap();
    file.set_len(2 << 30).unwrap();
    drop(file);
    let out = run_guarded(
        userport().args(["validate", huge.to_str().unwrap()]),
        "validate 2 GB",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("FILE_TOO_LARGE"),
        "{}",
        text(&out.stdout)
    );

    // Many problems into a pipe closed at once.
    let bad = tmp.path().join("bad.json");
    let users: Vec<String> = (0..5000)
        .map(|i| format!("{{\"email\":\"nope{i}\"}}"))
        .collect();
    fs::write(&bad, format!("[{}]", users.join(","))).unwrap();
    let mut child = userport()
        .args(["validate", bad.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = finish(
        child,
        Duration::from_secs(120),
        "validate into a closed pipe",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );

    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = userport()
        .args(["validate", bad.to_str().unwrap()])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot write -"),
        "{}",
        text(&out.stderr)
    );
}

// 15. Every format into a closed pipe is success.

#[test]
fn reports_into_a_closed_pipe_are_success() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("users.ndjson");
    write_generated(&input, 20_000);
    let p = input.to_str().unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["export", p, "--field", "email"],
        vec!["export", p, "--field", "email", "--sort", "email:desc"],
        vec!["sql", p, "-e", "SELECT email FROM users"],
        vec!["diff", p, "fixtures/users.ndjson", "-q"],
    ];
    for args in runs {
        let mut child = userport()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 1];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        drop(child.stdout.take());
        let out = finish(
            child,
            Duration::from_secs(120),
            "a report into a closed pipe",
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

// 16. Signals leave nothing temporary behind; stale files of killed runs are cleaned.

/// Starts `userport ARGS` with its temporary folder in `tmp`, waits until `ready` holds,
/// sends `signal` and returns the exit code.
fn interrupt(tmp: &Path, args: &[&str], ready: impl Fn() -> bool, signal: &str) -> Option<i32> {
    let mut child = userport()
        .env("TMPDIR", tmp)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !ready() {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} ended before it was interrupted: {}",
                text(&out.stderr)
            );
        }
        assert!(started.elapsed() < Duration::from_secs(120), "never ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = finish(child, Duration::from_secs(60), "an interrupted run");
    out.status.code()
}

fn has_entry(dir: &Path, prefix: &str) -> bool {
    entries(dir).iter().any(|e| e.starts_with(prefix))
}

#[test]
fn signals_remove_every_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("users.ndjson");
    write_generated(&input, 400_000);
    let p = input.to_str().unwrap();
    let work = tmp.path().join("work");
    fs::create_dir(&work).unwrap();
    let out = work.join("out.csv");
    let o = out.to_str().unwrap();
    let code = interrupt(
        tmp.path(),
        &["export", p, "--field", "email", "-o", o],
        || has_entry(&work, ".userport-"),
        "INT",
    );
    assert_eq!(code, Some(130));
    assert!(entries(&work).is_empty(), "{:?}", entries(&work));

    let dir = work.join("import");
    let d = dir.to_str().unwrap();
    let code = interrupt(
        tmp.path(),
        &["prepare", p, "-o", d, "-q"],
        || has_entry(&work, ".userport-"),
        "TERM",
    );
    assert_eq!(code, Some(143));
    assert!(entries(&work).is_empty(), "{:?}", entries(&work));

    // A sort that spills: its spill folder goes too.
    // Ready once a spill file exists: userport-PID-…/datafusion-…/FILE.
    let spills = || {
        let inside = |dir: &Path| -> Vec<std::path::PathBuf> {
            fs::read_dir(dir)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default()
        };
        inside(tmp.path())
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("userport-"))
            })
            .flat_map(|p| inside(p))
            .any(|d| !inside(&d).is_empty())
    };
    let code = interrupt(
        tmp.path(),
        &[
            "export",
            p,
            "--sort",
            "email:desc",
            "--memory-limit",
            "32M",
            "-o",
            o,
        ],
        spills,
        "TERM",
    );
    assert_eq!(code, Some(143));
    assert!(entries(&work).is_empty(), "{:?}", entries(&work));
    assert!(
        !has_entry(tmp.path(), "userport-"),
        "{:?}",
        entries(tmp.path())
    );
}

#[test]
fn leftovers_of_killed_runs_are_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    // A pid the kernel never hands out (past its largest): that process is gone.
    let stale = tmp.path().join(".userport-4194305-abcdef.partial");
    fs::write(&stale, "half").unwrap();
    let stale_dir = tmp.path().join(".userport-4194305-xyz");
    fs::create_dir(&stale_dir).unwrap();
    let spill = tmp.path().join("spill");
    fs::create_dir_all(spill.join("userport-4194305-old/datafusion-x")).unwrap();
    // Left alone for an hour (a recent one could be another machine's, on a shared disk).
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for path in [&stale, &stale_dir, &spill.join("userport-4194305-old")] {
        fs::File::open(path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
    let out = tmp.path().join("out.csv");
    let result = userport()
        .env("TMPDIR", &spill)
        .args(["export", "fixtures/users.ndjson", "--field", "email", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(result.status.success(), "{}", text(&result.stderr));
    assert_eq!(entries(tmp.path()), ["out.csv", "spill"]);
    assert!(entries(&spill).is_empty(), "{:?}", entries(&spill));
}

// 17. A key given twice inside metadata has its last value everywhere.

#[test]
fn repeated_metadata_keys_have_their_last_value_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("u.ndjson");
    fs::write(
        &input,
        "{\"user_id\":\"auth0|1\",\"email\":\"a@b.co\",\"user_metadata\":{\"plan\":\"free\",\"n\":1,\"plan\":\"pro\"}}\n",
    )
    .unwrap();
    let p = input.to_str().unwrap();
    let sql = ok(&[
        "sql",
        p,
        "-e",
        "SELECT user_metadata->>'plan' AS plan FROM users",
    ]);
    assert_eq!(sql, "plan\npro\n");
    let field = ok(&["export", p, "--field", "user_metadata.plan"]);
    assert_eq!(field, "user_metadata.plan\npro\n");
    let js = ok(&[
        "export",
        p,
        "--field",
        "p=user.user_metadata.plan || 'none'",
    ]);
    assert_eq!(js, "p\npro\n");
    assert_eq!(
        ok(&[
            "export",
            p,
            "--query",
            "user_metadata.plan:pro",
            "--field",
            "user_id"
        ]),
        "user_id\nauth0|1\n"
    );
    assert_eq!(
        ok(&[
            "export",
            p,
            "--query",
            "user_metadata.plan:free",
            "--field",
            "user_id"
        ]),
        "user_id\n"
    );
}

// 18. validate: byte-order marks, columns, lone surrogates.

#[test]
fn validate_takes_a_byte_order_mark_and_names_positions_well() {
    let tmp = tempfile::tempdir().unwrap();
    let bom = tmp.path().join("bom.json");
    fs::write(
        &bom,
        "\u{feff}[{\"email\":\"a@b.co\",\"email_verified\":true}]",
    )
    .unwrap();
    ok(&["validate", bom.to_str().unwrap()]);
    let broken = tmp.path().join("broken.json");
    fs::write(&broken, "[\n{\"email\":\"a@b.co\"\n").unwrap();
    let out = super::run(&["validate", broken.to_str().unwrap()]);
    let report = text(&out.stdout);
    assert!(!report.contains(":0:"), "{report}");
    assert!(report.contains("INVALID_JSON"), "{report}");
    let surrogate = tmp.path().join("surrogate.json");
    fs::write(&surrogate, "[{\"email\":\"a@b.co\",\"name\":\"\\ud800x\"}]").unwrap();
    let out = super::run(&["validate", surrogate.to_str().unwrap()]);
    let report = text(&out.stdout);
    assert!(report.contains("lone UTF-16 surrogate"), "{report}");
    assert!(!report.contains("end of hex escape"), "{report}");
}

// 19. A string past JavaScript's longest is its RangeError (an empty cell).

#[test]
fn strings_past_the_longest_javascript_string_are_range_errors() {
    let out = run_guarded(
        userport().args([
            "export",
            "fixtures/users.ndjson",
            "--limit",
            "2",
            "--field",
            "j=user.email.split('').join(user.email.padStart(30000000)).length",
            "--field",
            "r=user.email.replaceAll('', user.email.padStart(30000000)).length",
            "--field",
            "ok=user.email.padStart(30).length",
        ]),
        "strings past the limit",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "j,r,ok\n,,30\n,,30\n");
}
