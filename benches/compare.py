#!/usr/bin/env python3
"""Side-by-side benchmark of one set of users: userport, DuckDB, Polars and jq on the same
jobs, each run timed with /usr/bin/time (wall, CPU, peak memory); every output is checked
cell by cell against userport's, and the run fails when one differs.

userport and DuckDB run in pairs, ROUNDS times (default 5): userport, DuckDB, userport,
DuckDB, … so that the machine's drift falls on both; Polars and jq (much slower) run once,
and jq only with JQ=1. The parse floor and `prepare` run ROUNDS times too.

Run through benches/compare.sh (which builds userport, makes a virtual environment with DuckDB
and Polars, generates the users of both profiles and writes RESULTS.md with
benches/results.py). Arguments: USERS_FILE OUT_DIR RESULT_JSON PROFILE.
"""
import csv
import json
import os
import platform
import subprocess
import sys
import time

USERS, OUT, RESULT, PROFILE = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ROUNDS = int(os.environ.get("ROUNDS", "5"))
# A run that takes longer is stopped and recorded as such (DuckDB's schema detection over
# wide mixed metadata can take many minutes).
TIMEOUT = int(os.environ.get("TIMEOUT", "300"))
WITH_JQ = os.environ.get("JQ") == "1"
PAIRED = ("userport", "duckdb", "duckdb-auto")
USERPORT = os.environ["USERPORT"]
FLOOR = os.environ["FLOOR"]
PY = sys.executable
os.makedirs(OUT, exist_ok=True)


def settle(path):
    """Drops the page cache of the file at path (after writing it out). The resident set of a
    run counts the pages of its executable that it maps: a binary just written (by the
    linker, or copied) has its pages cached as the writer left them, and a run maps 10-20 MB
    more of it than of the same binary read from disk, as an installed one is."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


settle(USERPORT)

DEFAULT = [
    ("Id", "user_id"), ("Given Name", "given_name"), ("Family Name", "family_name"),
    ("Nickname", "nickname"), ("Name", "name"), ("Email", "email"),
    ("Email Verified", "email_verified"), ("Picture", "picture"),
    ("Connection", "identities[0].connection"), ("Created At", "created_at"),
    ("Updated At", "updated_at"),
]
# Job b: ten columns, metadata paths and one expression.
TEN = [
    ("Email", "email"), ("Language", "user_metadata.language"),
    ("City", "user_metadata.address.city"), ("Score", "user_metadata.score"),
    ("Newsletter", "user_metadata.newsletter"), ("Tenant", "app_metadata.tenant_id"),
    ("Role", "app_metadata.roles[0]"), ("Logins", "logins_count"),
    ("Provider", "identities[0].provider"),
]
EXPR = ("Display Name", "user.user_metadata.name || user.name")


def jsonpath(path):
    """identities[0].connection -> $.identities[0].connection"""
    return "$." + path


def jq_path(path):
    return "." + path


def duck(sql):
    return [PY, "-c", f"import duckdb; duckdb.sql({sql!r})"]


def polars(code):
    return [PY, "-c", "import polars as pl\n" + code]


def lines_frame():
    # Heterogeneous users (a metadata key that is a string here and a number there) are read
    # as lines of JSON text and queried with JSON paths, the Polars way for such data.
    return (f"pl.scan_csv({USERS!r}, has_header=False, separator='\\x01', quote_char=None, "
            f"new_columns=['line'], schema={{'line': pl.String}})")


def polars_columns(columns):
    return ", ".join(
        f"pl.col('line').str.json_path_match({jsonpath(p)!r}).alias({n!r})" for n, p in columns)


def jq_csv(columns, expr_tail=""):
    cells = ", ".join(f"({jq_path(p)} | if type == \"object\" or type == \"array\" then tojson else . end)"
                      for _, p in columns)
    header = ",".join(json.dumps(n) for n, _ in columns)
    return cells, header


def warm(cmd):
    """Writes out what is waiting in the page cache, and reads the input files that cmd
    names into it. This host drops cached pages
    within minutes even with memory free; a run that finds its input gone from the cache
    measures the disk (a cold read of the hostile file took 2.2 s, a warm one 0.14 s), and
    which run of a pair finds it so is chance. The users are read for every command (the
    DuckDB and Polars ones name them inside a query)."""
    # The last run's output written out first, so that its writeback does not run beside
    # this run.
    os.sync()
    named = [a for a in cmd if isinstance(a, str) and a.endswith(".ndjson") and os.path.isfile(a)]
    for path in dict.fromkeys([USERS] + named):
        with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass


def run(cmd, stdout=None, ok=(0,)):
    """Runs cmd under /usr/bin/time, its inputs read into the page cache first (see warm);
    returns (wall s, cpu s, peak MB), None on failure (an exit status not in ok), or
    "timeout" when it ran longer than TIMEOUT seconds."""
    warm(cmd)
    timing = os.path.join(OUT, "time.txt")
    full = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", timing] + cmd
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL
    try:
        # A session of its own, so that a run stopped for time is stopped whole (the timer
        # and the tool under it).
        proc = subprocess.Popen(full, stdout=out, stderr=subprocess.PIPE, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
            sys.stderr.write(f"stopped after {TIMEOUT} s: {' '.join(cmd)[:200]}\n")
            return "timeout"
        proc.stderr_text = err
    finally:
        if stdout:
            out.close()
    if proc.returncode not in ok:
        sys.stderr.write(f"failed: {' '.join(cmd)[:200]}\n{proc.stderr_text.decode()[-2000:]}\n")
        return None
    wall, user, sys_, rss = open(timing).read().split()[-4:]
    return float(wall), float(user) + float(sys_), int(rss) / 1024


def csv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def same_csv(a, b):
    ra, rb = csv_rows(a), csv_rows(b)
    if len(ra) != len(rb):
        return f"{len(ra)} rows against {len(rb)}"
    for i, (x, y) in enumerate(zip(ra, rb)):
        if x != y:
            return f"row {i}: {x} against {y}"
    return None


def same_parquet(a, b):
    import duckdb
    cols = "user_id, email, CAST(email_verified AS VARCHAR), CAST(logins_count AS VARCHAR)"
    qa = duckdb.sql(f"SELECT {cols} FROM read_parquet('{a}') ORDER BY user_id").fetchall()
    qb = duckdb.sql(f"SELECT {cols} FROM read_parquet('{b}') ORDER BY user_id").fetchall()
    if len(qa) != len(qb):
        return f"{len(qa)} rows against {len(qb)}"
    for x, y in zip(qa, qb):
        if x != y:
            return f"{x} against {y}"
    return None


def fields_args(columns):
    args = []
    for name, path in columns:
        args += ["--field", f"{name}={path}"]
    return args


results = []  # {job, tool, runs: [[wall, cpu, mb]...], status}
failures = []


def job(name, tools, compare):
    """Runs the paired tools ROUNDS times in turn, then the others once; checks every output
    (of the first round) against userport's."""
    tools = [t for t in tools if WITH_JQ or t[0] != "jq"]
    rows = {tool: {"job": name, "tool": tool, "runs": [], "status": "failed"} for tool, *_ in tools}
    ref = None
    paired = [t for t in tools if t[0] in PAIRED]
    once = [t for t in tools if t[0] not in PAIRED]
    schedule = [t for _ in range(ROUNDS) for t in paired] + once
    tried = set()
    for tool, cmd, out, stdout in schedule:
        row = rows[tool]
        first = tool not in tried
        if not first and not row["runs"]:
            continue
        tried.add(tool)
        if first and os.path.exists(out):
            os.remove(out)
        r = run(cmd, stdout)
        if r is None or r == "timeout":
            if r == "timeout":
                row["status"] = f"stopped after {TIMEOUT} s"
            continue
        row["runs"].append(list(r))
        if first:
            status = "reference" if ref is None else "same"
            if ref is None:
                ref = out
            else:
                diff = compare(ref, out)
                if diff:
                    status = "DIFFERENT: " + diff[:120]
                    failures.append(f"{PROFILE}: {name}/{tool}: {diff}")
            row["status"] = status
        print(f"{PROFILE:<10} {name:<28} {tool:<11} {r[0]:7.2f} s wall {r[1]:7.2f} s cpu "
              f"{r[2]:7.0f} MB  {row['status']}", flush=True)
    results.extend(rows.values())


def o(name):
    return os.path.join(OUT, name)


# The parse floor: every line parsed (values skipped) on both cores.
floor_runs = [list(run([FLOOR, USERS])) for _ in range(ROUNDS)]
results.append({"job": "parse floor", "tool": "floor", "runs": floor_runs, "status": "-"})
print(f"{PROFILE}: parse floor: {sorted(r[0] for r in floor_runs)} s", flush=True)

# a. The default-fields CSV report.
names = [n for n, _ in DEFAULT]
duck_cols = ", ".join(
    f"json_extract_string(identities, '$[0].connection') AS \"{n}\"" if p == "identities[0].connection"
    else f"{p} AS \"{n}\"" for n, p in DEFAULT)
duck_auto_cols = ", ".join(
    f"json_extract_string(identities, '$[0].connection') AS \"{n}\"" if p == "identities[0].connection"
    else f"strftime({p}, '%Y-%m-%dT%H:%M:%S.%gZ') AS \"{n}\"" if p in ("created_at", "updated_at")
    else f"{p} AS \"{n}\"" for n, p in DEFAULT)
jq_cells, jq_header = jq_csv(DEFAULT)
job("a. default-fields CSV", [
    ("userport", [USERPORT, "export", USERS, "--default-fields", "-q", "-o", o("a-userport.csv")], o("a-userport.csv"), None),
    ("duckdb", duck(
        f"COPY (SELECT {duck_cols} FROM read_json('{USERS}', format='newline_delimited', "
        f"columns={{user_id:'VARCHAR', given_name:'VARCHAR', family_name:'VARCHAR', nickname:'VARCHAR', "
        f"name:'VARCHAR', email:'VARCHAR', email_verified:'BOOLEAN', picture:'VARCHAR', identities:'JSON', "
        f"created_at:'VARCHAR', updated_at:'VARCHAR'}})) TO '{o('a-duckdb.csv')}' (HEADER)"), o("a-duckdb.csv"), None),
    # DuckDB as first written: the schema detected from the file (read_json's default); the
    # timestamps it detects are printed back in Auth0's form.
    ("duckdb-auto", duck(
        f"COPY (SELECT {duck_auto_cols} FROM read_json('{USERS}')) TO '{o('a-duckdb-auto.csv')}' (HEADER)"),
     o("a-duckdb-auto.csv"), None),
    ("polars", polars(
        f"{lines_frame()}.select({polars_columns(DEFAULT)}).sink_csv({o('a-polars.csv')!r})"), o("a-polars.csv"), None),
    ("jq", ["sh", "-c", f"echo '{jq_header}'; jq -r '[{jq_cells}] | @csv' {USERS}"], o("a-jq.csv"), o("a-jq.csv")),
], same_csv)

# b. Ten columns with metadata paths and `user.user_metadata.name || user.name`.
ten_names = [n for n, _ in TEN] + [EXPR[0]]
duck_ten = ", ".join(f"json_extract_string(j, {jsonpath(p)!r}) AS \"{n}\"" for n, p in TEN)
duck_ten += f", coalesce(nullif(json_extract_string(j, '$.user_metadata.name'), ''), json_extract_string(j, '$.name')) AS \"{EXPR[0]}\""
jq_ten, _ = jq_csv(TEN)
jq_ten_header = ",".join(json.dumps(n) for n in ten_names)
pl_ten = polars_columns(TEN) + (
    ", pl.coalesce(pl.col('line').str.json_path_match('$.user_metadata.name').replace('', None), "
    f"pl.col('line').str.json_path_match('$.name')).alias({EXPR[0]!r})")
job("b. ten columns + expression", [
    ("userport", [USERPORT, "export", USERS, *fields_args(TEN), "--field", f"{EXPR[0]}={EXPR[1]}", "-q", "-o", o("b-userport.csv")], o("b-userport.csv"), None),
    ("duckdb", duck(
        f"COPY (SELECT {duck_ten} FROM (SELECT json AS j FROM read_ndjson_objects('{USERS}'))) "
        f"TO '{o('b-duckdb.csv')}' (HEADER)"), o("b-duckdb.csv"), None),
    ("polars", polars(f"{lines_frame()}.select({pl_ten}).sink_csv({o('b-polars.csv')!r})"), o("b-polars.csv"), None),
    ("jq", ["sh", "-c", f"echo '{jq_ten_header}'; jq -r '[{jq_ten}, ((.user_metadata.name | select(. != \"\")) // .name)] | @csv' {USERS}"], o("b-jq.csv"), o("b-jq.csv")),
], same_csv)

# c. A search query with a sort by created_at descending (user_id breaks ties).
job("c. query + sort", [
    ("userport", [USERPORT, "export", USERS, "--query", "email_verified:true AND logins_count:[5 TO *]",
                  "--sort", "created_at:desc", "--sort", "user_id:desc", "--default-fields", "-q", "-o", o("c-userport.csv")], o("c-userport.csv"), None),
    ("duckdb", duck(
        f"COPY (SELECT {duck_cols} FROM read_json('{USERS}', format='newline_delimited', "
        f"columns={{user_id:'VARCHAR', given_name:'VARCHAR', family_name:'VARCHAR', nickname:'VARCHAR', "
        f"name:'VARCHAR', email:'VARCHAR', email_verified:'BOOLEAN', picture:'VARCHAR', identities:'JSON', "
        f"created_at:'VARCHAR', updated_at:'VARCHAR', logins_count:'BIGINT'}}) "
        f"WHERE email_verified AND logins_count >= 5 ORDER BY created_at DESC, user_id DESC) TO '{o('c-duckdb.csv')}' (HEADER)"), o("c-duckdb.csv"), None),
    ("polars", polars(
        f"{lines_frame()}.with_columns(pl.col('line').str.json_path_match('$.email_verified').alias('_v'), "
        f"pl.col('line').str.json_path_match('$.logins_count').cast(pl.Int64).alias('_n'), "
        f"pl.col('line').str.json_path_match('$.created_at').alias('_c'), pl.col('line').str.json_path_match('$.user_id').alias('_u'))"
        f".filter((pl.col('_v') == 'true') & (pl.col('_n') >= 5)).sort(['_c', '_u'], descending=True)"
        f".select({polars_columns(DEFAULT)}).sink_csv({o('c-polars.csv')!r})"), o("c-polars.csv"), None),
    ("jq", ["sh", "-c", f"echo '{jq_header}'; jq -c 'select(.email_verified == true and .logins_count >= 5)' {USERS} | "
            f"jq -s -r 'sort_by([.created_at, .user_id]) | reverse | .[] | [{jq_cells}] | @csv'"], o("c-jq.csv"), o("c-jq.csv")),
], same_csv)

# d. NDJSON -> Parquet of the whole users.
job("d. NDJSON -> Parquet", [
    ("userport", [USERPORT, "export", USERS, "-q", "-o", o("d-userport.parquet")], o("d-userport.parquet"), None),
    ("duckdb", duck(f"COPY (SELECT * FROM read_json('{USERS}', format='newline_delimited', union_by_name=true, "
                    f"sample_size=-1)) TO '{o('d-duckdb.parquet')}' (FORMAT PARQUET)"), o("d-duckdb.parquet"), None),
    ("polars", polars(f"pl.scan_ndjson({USERS!r}, infer_schema_length=None).sink_parquet({o('d-polars.parquet')!r})"), o("d-polars.parquet"), None),
], same_parquet)

# e. Import files (userport only: the peers have no such job).
import shutil
prepare_runs = []
users = 0
for _ in range(ROUNDS):
    shutil.rmtree(o("e-import"), ignore_errors=True)
    r = run([USERPORT, "prepare", USERS, "-q", "-o", o("e-import")])
    if r is None:
        break
    prepare_runs.append(list(r))
    users = json.load(open(o("e-import/manifest.json")))["totals"]["read"]
    print(f"{PROFILE}: e. prepare: {r[0]:.2f} s, {users / r[0]:,.0f} users/s, {r[2]:.0f} MB", flush=True)
results.append({"job": "e. prepare import files", "tool": "userport", "runs": prepare_runs,
                "status": "failed" if not prepare_runs else f"{users} users read"})

# f. diff of two exports (userport only): the users against a copy of them with 1% changed
# (a top-level key added) and 0.1% removed, each run paired with a run of job a on the same
# users, for the ratio.
changed = o("f-changed.ndjson")
if not os.path.exists(changed):
    with open(USERS, "rb") as src, open(changed + ".tmp", "wb") as dst:
        for i, line in enumerate(src):
            if i % 1000 == 7:
                continue
            if i % 100 == 3:
                line = b'{"diff_marker":%d,' % i + line[1:]
            dst.write(line)
    os.replace(changed + ".tmp", changed)
diff_runs, a_runs = [], []
diff_status = "failed"
for _ in range(ROUNDS):
    r = run([USERPORT, "export", USERS, "--default-fields", "-q", "-o", o("f-a.csv")])
    if isinstance(r, tuple):
        a_runs.append(list(r))
    r = run([USERPORT, "diff", USERS, changed, "-q", "-o", o("f-diff.csv")], ok=(1,))
    if not isinstance(r, tuple):
        break
    diff_runs.append(list(r))
    kinds = {}
    for row in csv_rows(o("f-diff.csv"))[1:]:
        kinds[row[1]] = kinds.get(row[1], 0) + 1
    lines = sum(1 for _ in open(USERS, "rb"))
    expected = {"changed": sum(1 for i in range(lines) if i % 100 == 3),
                "removed": sum(1 for i in range(lines) if i % 1000 == 7)}
    diff_status = "same" if kinds == expected else f"differs: {kinds} (expected {expected})"
    if kinds != expected:
        failures.append(f"{PROFILE}: f. diff: {kinds} (expected {expected})")
    print(f"{PROFILE}: f. diff: {r[0]:.2f} s, {r[2]:.0f} MB ({kinds})", flush=True)
results.append({"job": "f. diff of two exports", "tool": "userport", "runs": diff_runs,
                "status": diff_status})
results.append({"job": "f. diff of two exports", "tool": "job a (paired)", "runs": a_runs,
                "status": "for the ratio"})


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception:
        return "?"


import duckdb
import polars
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
summary = {
    "profile": PROFILE,
    "users": sum(1 for _ in open(USERS, "rb")),
    "bytes": os.path.getsize(USERS),
    "rounds": ROUNDS,
    "machine": f"{cpu}, {os.cpu_count()} cores, {int(mem) // 1024} MiB; {platform.platform()}",
    "versions": f"{version([USERPORT, '--version'])} ({version(['git', 'rev-parse', '--short', 'HEAD'])}), "
                f"DuckDB {duckdb.__version__}, Polars {polars.__version__}, {version(['rustc', '--version'])}",
    "when": time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
    "rows": results,
}
with open(RESULT, "w") as f:
    json.dump(summary, f, indent=1)
print(f"wrote {RESULT}")
if failures:
    print("outputs differ:\n" + "\n".join(failures), file=sys.stderr)
    sys.exit(1)
