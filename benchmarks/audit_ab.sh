#!/usr/bin/env bash
# The audit of one database by several checkouts, side by side: alternating, two rounds, each a
# whole process (`workbench audit --db DB --no-record`), with the load average before each run
# and the CPU time the run took (user + sys: the audit keeps both cores busy, so a change that
# only moves work between them shows here).
# What a new check costs: a checkout from before it against one with it, on the same database;
# or one checkout with and without the checks (`CHECKOUT::ARGS` adds ARGS to that checkout's runs).
#
#   DB=/work/bench/10m.duckdb benchmarks/audit_ab.sh /path/to/checkout-before /path/to/checkout-after
#   DB=/work/bench/10m.duckdb benchmarks/audit_ab.sh . ".::--skip POLICY_DEVIATION,PROCESS_BROKEN"
#
# Each checkout needs its own environment (`uv sync --frozen` in it: CHECKOUT/.venv).
set -euo pipefail
DB=${DB:?set DB to the database to audit}
ROUNDS=${ROUNDS:-2}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    c=${spec%%::*}
    args=""
    if [[ "$spec" == *::* ]]; then args=${spec#*::}; fi
    load=$(uptime | sed 's/.*load/load/')
    # shellcheck disable=SC2086  # ARGS are words on purpose
    /usr/bin/time -o "$log" -f "round $r  $spec  wall %e s, cpu %U+%S s, peak %M KB" \
      "$c/.venv/bin/workbench" audit --db "$DB" --no-record --format json $args > /dev/null 2>&1 || true
    echo "$load  $(tail -1 "$log")"
  done
done
