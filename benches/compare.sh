#!/usr/bin/env bash
# Side by side: userport, DuckDB, Polars (and jq with JQ=1) on the same jobs over the same
# generated users, for both profiles of benches/generate.rs (realistic and hostile), in
# pairs ROUNDS times (default 5); writes benches/RESULTS.md (medians, spreads, the targets
# as ratios to DuckDB and the parse floor) and fails when an output differs from userport's.
#
#   benches/compare.sh [USERS]        (default 1000000; ROUNDS=N, JQ=1 in the environment)
#
# Needs cargo, python3 (DuckDB and Polars are installed from PyPI into a virtual
# environment), jq (apt-get install jq) and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-1000000}"
work="${BENCH_DIR:-${TMPDIR:-/tmp}/userport-bench}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/userport/target}"
mkdir -p "$work"

command -v jq >/dev/null || { echo "jq is needed (apt-get install jq)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet duckdb polars
fi

cargo build --release --quiet
# The parse floor is compiled against the jiter the release build already made (a cargo
# bench target would rebuild every dependency with the dev-dependencies' features).
deps="$CARGO_TARGET_DIR/release/deps"
jiter="$(ls -t "$deps"/libjiter-*.rlib | head -1)"
floor="$work/floor"
rustc --edition 2024 -O benches/floor.rs -o "$floor" \
  --extern jiter="$jiter" -L dependency="$deps"
rustc --edition 2024 -O benches/generate.rs -o "$work/generate"
# Both profiles; each job in pairs (userport, DuckDB, …) ROUNDS times (default 5).
results=()
status=0
for profile in realistic hostile; do
  data="$work/users-$users-$profile.ndjson"
  [ -s "$data" ] || "$work/generate" "$users" "$data" 42 "$profile"
  USERPORT="$CARGO_TARGET_DIR/release/userport" FLOOR="$floor" \
    "$work/venv/bin/python" benches/compare.py "$data" "$work/out-$profile" \
    "$work/result-$profile.json" "$profile" || status=1
  results+=("$work/result-$profile.json")
done
"$work/venv/bin/python" benches/results.py benches/RESULTS.md "${results[@]}"
exit "$status"
