#!/usr/bin/env bash
# Paired runs of two userport builds (A B A B …) on the same jobs over the same users, for
# before/after figures on a noisy machine: prints the median wall time of each build with its
# spread (min–max), and the ratio new/old.
#
#   benches/pair.sh OLD_BINARY NEW_BINARY USERS.ndjson [ROUNDS] [JOBS]
#
# JOBS (default "a b c d e q u"): a default-fields CSV, b ten columns and an expression,
# c a query and a sort, d NDJSON to Parquet, e prepare, q prepare --query,
# u prepare --upsert --base. Needs /usr/bin/time.
set -u
old=$1; new=$2; users=$3; rounds=${4:-3}; jobs=${5:-"a b c d e q u"}
out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT
ten=(--field Email=email --field Language=user_metadata.language
     --field City=user_metadata.address.city --field Score=user_metadata.score
     --field Newsletter=user_metadata.newsletter --field Tenant=app_metadata.tenant_id
     --field 'Role=app_metadata.roles[0]' --field Logins=logins_count
     --field 'Provider=identities[0].provider' --field 'Display=user.user_metadata.name || user.name')
run() { # job binary
  rm -rf "$out/dir"
  case $1 in
    a) "$2" export "$users" --default-fields -q -o "$out/a.csv" ;;
    b) "$2" export "$users" "${ten[@]}" -q -o "$out/b.csv" ;;
    c) "$2" export "$users" --query 'email_verified:true AND logins_count:[5 TO *]' \
         --sort created_at:desc --sort user_id:desc --default-fields -q -o "$out/c.csv" ;;
    d) "$2" export "$users" -q -o "$out/d.parquet" ;;
    e) "$2" prepare "$users" -q -o "$out/dir" ;;
    q) "$2" prepare "$users" --query 'logins_count:[50 TO *]' -q -o "$out/dir" ;;
    u) "$2" prepare --upsert --base "$users" -q -o "$out/dir" \
         --sql 'SELECT email, logins_count > 500 AS "user_metadata.active" FROM users WHERE logins_count > 900' ;;
  esac
}
for job in $jobs; do
  times=()
  for _ in $(seq "$rounds"); do
    for which in old new; do
      bin=${!which}
      /usr/bin/time -f "%e" -o "$out/t" bash -c "$(declare -f run); out=$out; users=$users; $(declare -p ten); run $job $bin" >/dev/null 2>&1
      times+=("$which $(tail -1 "$out/t")")
    done
  done
  line="$job:"
  for which in old new; do
    mapfile -t v < <(printf '%s\n' "${times[@]}" | awk -v w=$which '$1 == w { print $2 }' | sort -n)
    n=${#v[@]}
    med=$(awk -v a="${v[$(((n - 1) / 2))]}" -v b="${v[$((n / 2))]}" 'BEGIN { printf "%.2f", (a + b) / 2 }')
    eval "med_$which=$med"
    line="$line $which $med s (${v[0]}–${v[$((n - 1))]}),"
  done
  echo "$line new/old $(awk -v a="$med_new" -v b="$med_old" 'BEGIN { printf "%.2f", a / b }')"
done
