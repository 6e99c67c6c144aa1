#!/usr/bin/env bash
# Migration at scale: N legacy users (Django's auth_user, benches/legacy_users.py) prepared
# into import files from a CSV file and from a live PostgreSQL table, beside `prepare` of an
# Auth0 export of the same number of users; rounds interleaved (csv pg export, csv pg export,
# …), wall time and peak memory of each run, then the medians with their spread.
#
#   benches/migrate.sh USERPORT_BINARY EXPORT.ndjson [N] [ROUNDS]
#
# Needs PostgreSQL's initdb/postgres (a server is started in a temporary folder on port
# 55432 and stopped at the end; as the `postgres` user when run as root), psql, python3 and
# /usr/bin/time.
set -eu
bin=$1; export_file=$2; n=${3:-1000000}; rounds=${4:-3}
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"; chmod 755 "$work"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
as_pg=(); [ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
cleanup() {
  pkill -INT -f "$work/pg/data" 2>/dev/null || true
  while pgrep -f "$work/pg/data" >/dev/null; do sleep 0.2; done
  rm -rf "$work"
}
trap cleanup EXIT

if psql -h 127.0.0.1 -p 55432 -U bench -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
  echo "a server already answers on 127.0.0.1:55432: stop it first" >&2; exit 2
fi
python3 "$root/benches/legacy_users.py" "$n" > "$work/auth_user.csv"
mkdir "$work/pg"; [ "$(id -u)" = 0 ] && chown postgres "$work/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" -U bench --auth=trust --no-sync >/dev/null
"${as_pg[@]}" "$pgbin/postgres" -D "$work/pg/data" -p 55432 -c listen_addresses=127.0.0.1 \
  -k "$work/pg" -c fsync=off >/dev/null 2>&1 &
for _ in $(seq 50); do psql -h 127.0.0.1 -p 55432 -U bench -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
psql -q -h 127.0.0.1 -p 55432 -U bench -d postgres -c "$(sed -n '/^CREATE TABLE/,/^);/p' "$root/fixtures/migrate/django_auth_user.sql")"
psql -q -h 127.0.0.1 -p 55432 -U bench -d postgres -c "\\copy auth_user FROM '$work/auth_user.csv' WITH (FORMAT csv, HEADER, FORCE_NOT_NULL (first_name, last_name))"

cd "$root"
for round in $(seq "$rounds"); do
  for job in csv pg export; do
    rm -rf "$work/out"
    case $job in
      csv) args=(prepare --table "auth_user=$work/auth_user.csv" --file queries/migrate/django.sql) ;;
      pg) args=(prepare --table "auth_user=postgres://bench@127.0.0.1:55432/postgres#auth_user" --file queries/migrate/django.sql) ;;
      export) args=(prepare "$export_file") ;;
    esac
    /usr/bin/time -f "$job %e %M" "$bin" "${args[@]}" -q -o "$work/out" 2>>"$work/times" >/dev/null
  done
done
echo "job      median s  (min–max)      peak MB of that run (min–max of all)   users/s"
for job in csv pg export; do
  grep "^$job " "$work/times" | sort -k2 -n | awk -v job="$job" -v n="$n" '
    { t[NR]=$2; m[NR]=$3/1024 }
    END { mid=int((NR+1)/2); lo=m[1]; hi=m[1]; for (i in m) { if (m[i]<lo) lo=m[i]; if (m[i]>hi) hi=m[i] }
          printf "%-8s %6.2f   (%.2f–%.2f)   %6.0f (%.0f–%.0f)   %8.0f\n", job, t[mid], t[1], t[NR], m[mid], lo, hi, n/t[mid] }'
done
