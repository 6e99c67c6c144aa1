#!/usr/bin/env bash
# prepare of an export with and without its password-hash export, rounds interleaved
# (plain hashes plain hashes …): wall time and peak memory of each run.
#
# usage: benches/hashes.sh USERPORT EXPORT.ndjson [ROUNDS]
# (the hash export is written beside the export by benches/hash_export.py when missing)
set -euo pipefail
bin=$1
export_file=$2
rounds=${3:-3}
hashes="${export_file%.ndjson}.hashes.ndjson"
here=$(cd "$(dirname "$0")" && pwd)
[ -s "$hashes" ] || python3 "$here/hash_export.py" "$export_file" "$hashes"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq "$rounds"); do
  for kind in plain hashes; do
    rm -rf "$out/$kind"
    extra=()
    [ "$kind" = hashes ] && extra=(--hashes "$hashes")
    /usr/bin/time -f "$kind round $round: %e s, %M KB" \
      "$bin" prepare "$export_file" "${extra[@]}" -q -o "$out/$kind" 2>&1 >/dev/null |
      grep -E "round|password hashes"
  done
done
