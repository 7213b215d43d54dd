#!/usr/bin/env bash
# The audit of one database by several checkouts, side by side: alternating, two rounds, each a
# whole process (`workbench audit --db DB --no-record`), with the load average before each run.
# What a new check costs: a checkout from before it against one with it, on the same database.
#
#   DB=/work/bench/10m.duckdb benchmarks/audit_ab.sh /path/to/checkout-before /path/to/checkout-after
#
# Each checkout needs its own environment (`uv sync --frozen` in it: CHECKOUT/.venv).
set -euo pipefail
DB=${DB:?set DB to the database to audit}
ROUNDS=${ROUNDS:-2}
for r in $(seq 1 "$ROUNDS"); do
  for c in "$@"; do
    printf '%s  ' "$(uptime | sed 's/.*load/load/')"
    /usr/bin/time -f "round $r  $c  wall %e s, peak %M KB" \
      "$c/.venv/bin/workbench" audit --db "$DB" --no-record --format json > /dev/null 2> >(tail -1 >&2) || true
  done
done
