#!/usr/bin/env bash
# A full replay of one export by several checkouts, side by side: alternating, two rounds, each a
# whole process (`workbench replay EXPORT --db NEW --full`) into a new database, with the load
# average before each run and the CPU time and peak memory it took. What a change to the build
# costs: a checkout from before it against one with it.
#
#   EXPORT=/work/bench/10m benchmarks/replay_ab.sh /path/to/checkout-before /path/to/checkout-after
#
# Each checkout runs with its own code: its `.venv` where it has one, else this checkout's
# environment with the checkout first on `PYTHONPATH` (same dependencies). The databases are
# written beside the export's parent (`WORK`, default /tmp) and removed after each run.
set -euo pipefail
EXPORT=${EXPORT:?set EXPORT to the export to replay}
ROUNDS=${ROUNDS:-2}
WORK=${WORK:-/tmp}
here=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  for c in "$@"; do
    c=$(cd "$c" && pwd)
    py="$c/.venv/bin/python"
    [[ -x "$py" ]] || py="$here/.venv/bin/python"
    db="$WORK/replay-ab-$(basename "$c").duckdb"
    rm -rf "$db" "$db.wal" "$db.tmp"
    load=$(uptime | sed 's/.*load/load/')
    (cd "$WORK" && PYTHONPATH="$c" /usr/bin/time -o "$log" \
      -f "round $r  $c  wall %e s, cpu %U+%S s, peak %M KB" "$py" -c \
      "import sys; from workbench.cli import main; sys.argv[0] = 'workbench'; sys.exit(main())" \
      replay "$EXPORT" --db "$db" --full --no-progress > /dev/null 2>&1) || echo "round $r  $c  failed"
    echo "$load  $(tail -1 "$log")"
    rm -rf "$db" "$db.wal" "$db.tmp"
  done
done
