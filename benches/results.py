#!/usr/bin/env python3
"""Writes benches/RESULTS.md from the result files of benches/compare.py (one a profile):
per profile and job, each tool's median wall time with its spread, CPU time and peak memory,
the ratio to userport; then the targets of the benchmark, each a ratio to DuckDB or to the
parse floor measured in the same run.

usage: results.py RESULTS.md RESULT.json...
"""
import json
import statistics
import sys

out_path, inputs = sys.argv[1], sys.argv[2:]
profiles = [json.load(open(p)) for p in inputs]


def med(runs, k):
    return statistics.median(r[k] for r in runs) if runs else None


def find(profile, job, tool):
    return next((r for r in profile["rows"] if r["job"] == job and r["tool"] == tool), None)


def wall(profile, job, tool):
    row = find(profile, job, tool)
    return med(row["runs"], 0) if row else None


def peak(profile, job, tool):
    row = find(profile, job, tool)
    return med(row["runs"], 2) if row else None


def duck(profile, job):
    """The faster DuckDB of the run (columns typed by hand, or detected)."""
    walls = [w for w in (wall(profile, job, "duckdb"), wall(profile, job, "duckdb-auto")) if w]
    return min(walls) if walls else None


A, B, C, D, E, F = ("a. default-fields CSV", "b. ten columns + expression", "c. query + sort",
                    "d. NDJSON -> Parquet", "e. prepare import files", "f. diff of two exports")

with open(out_path, "w") as f:
    first = profiles[0]
    f.write("# Side-by-side results\n\n")
    f.write(f"Written by `benches/compare.sh` on {first['when']}.\n\n")
    f.write(f"- Machine: {first['machine']}\n")
    f.write(f"- Versions: {first['versions']}\n")
    f.write(f"- Rounds: {first['rounds']}, paired (userport, DuckDB, DuckDB with its detected "
            "schema, then again, …); Polars (and jq with `JQ=1`) once. Medians, with the "
            "fastest and slowest run; peak memory is the median of the maximum resident sets.\n")
    f.write("- Profiles: `realistic` and `hostile` users of `benches/generate.rs` (the same "
            "fields and values the jobs read; hostile adds long escaped unicode names, `\\uXXXX` "
            "keys, deep and wide mixed metadata, numbers of every shape, nulls, rare keys and "
            "linked identities).\n")
    f.write(f"- Reproduce: `benches/compare.sh {first['users']}`\n\n")
    for p in profiles:
        f.write(f"## {p['profile']}: {p['users']:,} users, {p['bytes'] / 1e6:.0f} MB\n\n")
        f.write("| job | tool | wall s (median) | min–max | CPU s | peak MB | ÷ userport | output |\n")
        f.write("|---|---|---:|---:|---:|---:|---:|---|\n")
        for row in p["rows"]:
            runs = row["runs"]
            if not runs:
                f.write(f"| {row['job']} | {row['tool']} | – | – | – | – | – | {row['status']} |\n")
                continue
            w = med(runs, 0)
            base = wall(p, row["job"], "userport")
            ratio = f"{w / base:.2f}" if base and row["tool"] != "userport" else "–"
            spread = f"{min(r[0] for r in runs):.2f}–{max(r[0] for r in runs):.2f}"
            f.write(f"| {row['job']} | {row['tool']} | {w:.2f} | {spread} | {med(runs, 1):.2f} | "
                    f"{med(runs, 2):.0f} | {ratio} | {row['status']} |\n")
        f.write("\n")

    def target(text, check):
        cells = []
        for p in profiles:
            try:
                measured, met = check(p)
                cells.append(f"{measured} ({'yes' if met else '**no**'})")
            except (TypeError, ZeroDivisionError):
                cells.append("–")
        f.write(f"| {text} | " + " | ".join(cells) + " |\n")

    f.write("## Targets (each measured against its peer in the same run)\n\n")
    f.write("| target | " + " | ".join(p["profile"] for p in profiles) + " |\n")
    f.write("|---|" + "---|" * len(profiles) + "\n")
    floor = lambda p: wall(p, "parse floor", "floor")
    target("a ≤ 0.7x DuckDB's wall time",
           lambda p: (f"{wall(p, A, 'userport') / duck(p, A):.2f}x", wall(p, A, "userport") <= 0.7 * duck(p, A)))
    target("a ≤ 1.8x the parse floor",
           lambda p: (f"{wall(p, A, 'userport') / floor(p):.2f}x", wall(p, A, "userport") <= 1.8 * floor(p)))
    target("b ≤ 1.3x a",
           lambda p: (f"{wall(p, B, 'userport') / wall(p, A, 'userport'):.2f}x",
                      wall(p, B, "userport") <= 1.3 * wall(p, A, "userport")))
    target("c ≤ 0.8x DuckDB's wall time",
           lambda p: (f"{wall(p, C, 'userport') / duck(p, C):.2f}x", wall(p, C, "userport") <= 0.8 * duck(p, C)))
    target("c peak memory ≤ ½ DuckDB's",
           lambda p: (f"{peak(p, C, 'userport'):.0f} / {peak(p, C, 'duckdb'):.0f} MB",
                      peak(p, C, "userport") <= peak(p, C, "duckdb") / 2))
    target("d ≤ ½ DuckDB's wall time",
           lambda p: (f"{wall(p, D, 'userport') / duck(p, D):.2f}x", wall(p, D, "userport") <= 0.5 * duck(p, D)))
    target("peak memory of a, b, d under 100 MB",
           lambda p: ("/".join(f"{peak(p, j, 'userport'):.0f}" for j in (A, B, D)) + " MB",
                      max(peak(p, j, "userport") for j in (A, B, D)) < 100))

    def prepare_rate(p):
        row = find(p, E, "userport")
        users = int(row["status"].split()[0])
        return users / med(row["runs"], 0)

    target("prepare ≥ 350,000 users/s",
           lambda p: (f"{prepare_rate(p):,.0f}/s", prepare_rate(p) >= 350_000))
    target("prepare peak memory under 150 MB",
           lambda p: (f"{peak(p, E, 'userport'):.0f} MB", peak(p, E, "userport") < 150))
    target("diff ≤ 3x a (paired runs)",
           lambda p: (f"{wall(p, F, 'userport') / wall(p, F, 'job a (paired)'):.2f}x",
                      wall(p, F, "userport") <= 3 * wall(p, F, "job a (paired)")))
    target("diff peak memory ≤ 300 MB",
           lambda p: (f"{peak(p, F, 'userport'):.0f} MB", peak(p, F, "userport") <= 300))
print(f"wrote {out_path}")
