#!/usr/bin/env bash
# Ten million users of each profile of benches/generate.rs: job a (default-fields CSV),
# job c (query + sort, which spills at this size) and prepare, each run once under
# /usr/bin/time (wall, CPU, peak resident memory); writes benches/TEN_MILLION.md.
#
#   benches/ten_million.sh [USERS]      (default 10000000; KEEP=1 keeps the generated files;
#                                        USERPORT=PATH measures that binary)
#
# Needs about 20 GB free in BENCH_DIR (default $TMPDIR/userport-bench): the users of both
# profiles (7 GB and 11 GB) and, one at a time, each job's output (removed once measured).
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-10000000}"
work="${BENCH_DIR:-${TMPDIR:-/tmp}/userport-bench}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/userport/target}"
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
mkdir -p "$work"
# USERPORT=PATH measures that binary instead of building the release one (a `profiling`
# build, say: a cold release build of DataFusion takes long on a small machine).
if [ -z "${USERPORT:-}" ]; then
  cargo build --release --quiet
fi
userport="${USERPORT:-$CARGO_TARGET_DIR/release/userport}"
rustc --edition 2024 -O benches/generate.rs -o "$work/generate"
results="$work/ten-million.tsv"
: > "$results"

# measure PROFILE JOB OUTPUT COMMAND...: one timed run, its figures appended to the results.
measure() {
  local profile="$1" job="$2" out="$3"
  shift 3
  local timing="$work/time.txt"
  if /usr/bin/time -f "%e %U %S %M" -o "$timing" "$@" >/dev/null 2>"$work/stderr.txt"; then
    read -r wall user sys rss < <(tail -1 "$timing")
    local size
    size=$(du -sb "$out" | cut -f1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$profile" "$job" "$wall" \
      "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" "$((rss / 1024))" "$size" >>"$results"
    echo "$profile $job: ${wall} s, $((rss / 1024)) MB" >&2
  else
    printf '%s\t%s\tfailed\t\t\t\n' "$profile" "$job" >>"$results"
    echo "$profile $job failed:" >&2
    tail -5 "$work/stderr.txt" >&2
  fi
  rm -rf "$out"
}

for profile in realistic hostile; do
  data="$work/users-$users-$profile.ndjson"
  [ -s "$data" ] || "$work/generate" "$users" "$data" 42 "$profile"
  measure "$profile" "a. default-fields CSV" "$work/10m-a.csv" \
    "$userport" export "$data" --default-fields -q -o "$work/10m-a.csv"
  measure "$profile" "c. query + sort" "$work/10m-c.csv" \
    "$userport" export "$data" --query "email_verified:true AND logins_count:[5 TO *]" \
    --sort created_at:desc --sort user_id:desc --default-fields -q -o "$work/10m-c.csv"
  measure "$profile" "e. prepare" "$work/10m-import" \
    "$userport" prepare "$data" -q -o "$work/10m-import"
  printf '%s\tsize\t%s\n' "$profile" "$(stat -c %s "$data")" >>"$results"
  [ "${KEEP:-0}" = 1 ] || rm -f "$data"
done

{
  echo "# Ten million users"
  echo
  echo "Written by \`benches/ten_million.sh $users\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo
  echo "- Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(($(grep MemTotal /proc/meminfo | awk '{print $2}') / 1024)) MiB"
  echo "- Version: $("$userport" --version) ($(git rev-parse --short HEAD))"
  echo "- One run each (a bounded-memory check more than a timing: the 1M-user runs of"
  echo "  \`benches/RESULTS.md\` are the paired ones). Peak memory is the maximum resident set."
  echo "- \`c\` sorts about a third of the users at the default 512M limit: it spills."
  echo
  for profile in realistic hostile; do
    size=$(awk -F'\t' -v p="$profile" '$1 == p && $2 == "size" {print $3}' "$results")
    echo "## $profile: $users users, $((size / 1000000)) MB"
    echo
    echo "| job | wall s | CPU s | peak MB | users/s | output MB |"
    echo "|---|---:|---:|---:|---:|---:|"
    awk -F'\t' -v p="$profile" -v n="$users" '$1 == p && $2 != "size" {
      if ($3 == "failed") { printf "| %s | failed | | | | |\n", $2; next }
      printf "| %s | %.1f | %.1f | %d | %d | %d |\n", $2, $3, $4, $5, n / $3, $6 / 1000000
    }' "$results"
    echo
  done
} >benches/TEN_MILLION.md
echo "wrote benches/TEN_MILLION.md" >&2
