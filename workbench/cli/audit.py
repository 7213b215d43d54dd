"""Commands that read a replayed database: audit, explain, status, reconcile, ratings."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..domain.receipt import REVIEW_OVERDUE
from ..statements.rules import WINDOW_DAYS
from . import options as opt


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser(
        "audit",
        help="run every reconciliation check over a replayed database; list the findings",
        description=(
            "Run every check of the audit (MALFORMED_EVENT … RATING_MISMATCH) over a database "
            "built by `workbench replay`. Each finding has a stable id (the same break has the "
            "same id in every run), a check code, a severity, a subject, the money at stake, a "
            "detail sentence and its evidence: the ids of the events that prove it, the offending "
            "one first. Each run is stored in audit_runs / audit_findings of the analyst database "
            "beside it (out/x.analyst.duckdb for out/x.duckdb, kept apart so a live follower's snapshots never "
            "replace it) and every finding is marked new, open (with its age in runs), resolved "
            "or reopened. Every finding shows its triage (`workbench triage`: triage_status, "
            "triage_note, triage_by, triage_at, and triage_changed when it came back with another "
            "amount, currency or detail; in the table a mark R/W/E/F, with ! if changed). It "
            "reads the newest read snapshot while a follower writes DB. Exits 1 if there are "
            "findings (with --since-last too: findings now, listed or not). Python: "
            "workbench.audit.audit() returns a Polars DataFrame."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
    a.add_argument(
        "--as-of",
        type=opt.instant,
        metavar="TIME",
        help="audit the platform as it stood at TIME (events after it left out, deadlines judged "
        "then), e.g. 2026-11-03T12:00:00Z",
    )
    a.add_argument(
        "--format",
        choices=["table", "json", "jsonl", "csv", "parquet", "xlsx"],
        default="table",
        help="output format (default table; xlsx: an Excel sheet, money as numbers with the "
        "currency's decimals; parquet and xlsx need --out)",
    )
    a.add_argument("--out", type=Path, help="write the findings to this file instead of stdout")
    a.add_argument(
        "--check",
        action="append",
        metavar="CODE",
        help="run only these checks (repeatable, or CODE,CODE): only the tables they read are "
        "built, so a few checks take a fraction of the whole audit; a recorded run resolves only "
        "earlier findings of the checks it ran",
    )
    a.add_argument(
        "--skip",
        action="append",
        metavar="CODE",
        help="run every check but these (repeatable, or CODE,CODE)",
    )
    a.add_argument(
        "--no-record",
        action="store_true",
        help="do not store the run in the analyst database",
    )
    a.add_argument(
        "--statement-window-days",
        type=opt.window_days,
        default=WINDOW_DAYS,
        metavar="N",
        help="the statement checks' value-date window: a statement line without a usable "
        "reference matches a payout paid (or confirmed) up to N days before its value date, and "
        "a payout is missing once the statements cover N days after it was paid (default 3)",
    )
    a.add_argument(
        "--review-overdue",
        type=opt.hours,
        default=REVIEW_OVERDUE.total_seconds() / 3600,
        metavar="HOURS",
        help="REVIEW_OVERDUE's threshold: an order left in review longer than HOURS (a review "
        "that ended later, or one still open at the audit's now) is reported (default 24)",
    )
    a.add_argument(
        "--other-policy",
        action="store_true",
        help="the history was not run under the production assignment policy (a simulated "
        "history of another policy, written by `workbench simulate` as an export): "
        "POLICY_DEVIATION, which "
        "judges every assignment against the production policy's pick, is not run",
    )
    a.add_argument(
        "--since-last",
        action="store_true",
        help="list only what changed since the previous recorded run: new, reopened, changed "
        "(other amount, currency or detail) and resolved findings, with their triage; records "
        "this run (Python: workbench.audit.since_last(db, run_id))",
    )
    a.set_defaults(run=_audit)

    st = sub.add_parser(
        "status",
        help="who writes a database (a live follower?), its stream position, what readers see",
        description=(
            "Say which follower writes the database (its PID, host, stream and consumer, and "
            "whether it still runs), its stream position and last commit, and the read snapshot "
            "a reader opening the database now would see: its stream position, when it was "
            "committed and how far it is behind the follower. Readers (audit, notebooks, "
            "workbench.connect(db, read_only=True)) open that snapshot, so they never wait for "
            "the follower nor stop it. Python: workbench.status(db)."
        ),
    )
    st.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
    st.add_argument("--json", action="store_true", help="print it as JSON")
    st.set_defaults(run=_status)

    x = sub.add_parser(
        "explain",
        help="show why a finding is a finding: the subject's timeline with state before and after",
        description=(
            "Show a finding from `workbench audit` with its subject's timeline around the "
            "offending event: every event of the subject folded again through the domain, with "
            "the status, balance, held and available before and after each one, and the other "
            "evidence events in place. Python: workbench.audit.explain()."
        ),
    )
    x.add_argument(
        "finding_id", metavar="FINDING_ID", nargs="?", help="a finding id, e.g. F-0123456789ab"
    )
    x.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
    x.add_argument(
        "--process",
        metavar="CORRELATION_ID",
        help="instead of a finding, show one business process (e.g. order:po-1a2b3c4d, as a "
        "finding's `process` names it) across all its streams: a timeline and its causation "
        "tree (Python: workbench.audit.process())",
    )
    x.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="with --process: text (a 120-column timeline and tree, money in major units) or "
        "json (every event, exact minor units, and the tree)",
    )
    x.set_defaults(run=_explain)

    for name, text in (
        (
            "reconcile",
            "payout reconciliation: per account and day, orders settled, ledger committed, paid "
            "out, and the differences (Python: workbench.audit.reconcile_payouts())",
        ),
        (
            "ratings",
            "every published rating beside the counts and score the catalog's formula gives "
            "(Python: workbench.audit.recompute_ratings())",
        ),
    ):
        t = sub.add_parser(name, help=text.split(" (")[0], description=text)
        t.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
        t.add_argument(
            "--format",
            choices=["table", "csv", "json", "parquet", "xlsx"],
            default="table",
            help="output format (default table: for a person, money in major units, at most 120 "
            "columns; csv, json, parquet: every column, full ids, exact integer minor units; "
            "xlsx: an Excel sheet, money as numbers with the currency's decimals; parquet and "
            "xlsx need --out)",
        )
        t.add_argument("--out", type=Path, help="write to this file instead of stdout")
        t.add_argument(
            "--differences",
            action="store_true",
            help="only rows that do not match (non-zero differences, ratings that differ)",
        )
        t.set_defaults(run=_table_command)


def _audit(args: argparse.Namespace) -> int:
    import polars as pl

    from ..audit import audit

    if args.format in ("parquet", "xlsx") and args.out is None:
        raise ValueError(f"--format {args.format} needs --out FILE")
    if args.since_last and args.no_record:
        raise ValueError(
            "--since-last compares this run with the previous recorded one, so it records this "
            "run: drop --no-record"
        )
    progress = None
    if sys.stderr.isatty():

        def progress(name: str) -> None:
            print(f"\raudit: {name:<28}", end="", file=sys.stderr, flush=True)

    only = _code_list(args.check)
    skip = _code_list(args.skip)
    checks = None
    if only is not None or skip is not None:
        checks = set(only if only is not None else _codes()) - set(skip or ())
    result = audit(
        args.db,
        as_of=args.as_of,
        record=not args.no_record,
        progress=progress,
        statement_window_days=args.statement_window_days,
        review_overdue=timedelta(hours=args.review_overdue),
        production_policy=not args.other_policy,
        checks=checks,
    )
    if progress is not None:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    found = result.findings
    summary = ", ".join(f"{k} {v}" for k, v in sorted(Counter(found["check"]).items())) or "none"
    line = (
        f"audit run {result.run_id or '-'}: {found.height} finding(s) in {result.seconds:.1f} s"
        f" ({summary})"
    )
    listed = found
    if args.since_last:
        from ..audit import since_last

        assert result.run_id is not None
        changes = since_last(args.db, result.run_id)
        listed = changes.findings
        if checks is not None:  # what changed among the checks run
            listed = listed.filter(pl.col("check").is_in(sorted(checks)))
        line = f"{changes.line()}; {found.height} finding(s) now"
    if not (args.format == "table" and listed.is_empty() and args.out is None):
        _write_findings(listed, args.format, args.out)
    if not args.since_last:  # the count per check folds at a terminal's width
        import textwrap

        line = textwrap.fill(line, width=WIDTH, subsequent_indent="  ", break_long_words=False)
    print(line, file=sys.stderr if args.format != "table" or args.out else sys.stdout)
    return 1 if found.height else 0


def _code_list(values: list[str] | None) -> list[str] | None:
    """``--check``/``--skip`` values, each repeatable or comma-separated, refused if unknown."""
    if values is None:
        return None
    codes = [c.strip() for v in values for c in v.split(",") if c.strip()]
    unknown = sorted(set(codes) - _codes())
    if unknown:
        raise ValueError(f"unknown check code(s) {unknown}; known: {sorted(_codes())}")
    return codes


def _codes() -> set[str]:
    from ..domain.violations import CHECK_CODES

    return set(CHECK_CODES)


def _write_findings(found: object, fmt: str, out: Path | None) -> None:
    import polars as pl

    assert isinstance(found, pl.DataFrame)
    flat = found.with_columns(pl.col("evidence").list.join(" "))
    if fmt == "parquet":
        assert out is not None
        found.write_parquet(out)
        return
    if fmt == "xlsx":
        from ..tables_out import Sheet, write_xlsx

        assert out is not None
        out.parent.mkdir(parents=True, exist_ok=True)
        write_xlsx([Sheet("findings", flat, {"amount_delta": "currency"})], out)
        return
    if fmt == "table":
        text = _table(found)
    elif fmt == "csv":
        text = flat.write_csv()
    elif fmt == "json":
        text = found.write_json()
    else:
        text = found.write_ndjson()
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def _table(found: object) -> str:
    import polars as pl

    assert isinstance(found, pl.DataFrame)
    state = "change" if "change" in found.columns else "status"  # --since-last lists changes
    ordered = _by_severity(found)
    if state == "change":  # new, reopened, changed, resolved; the worst first in each
        from ..audit.changes import CHANGES

        rank = {c: i for i, c in enumerate(CHANGES)}
        ordered = ordered.sort(
            pl.col("change").replace_strict(rank, return_dtype=pl.Int8), maintain_order=True
        )
    lines = []
    for r in ordered.iter_rows(named=True):
        lines.append(
            f"{r['finding_id']}  {r[state]:<8} {_triage_mark(r):<2} {r['severity']:<6} "
            f"{r['check']:<25} {r['subject']}{_money(r)}\n{_wrapped(r['detail'])}\n"
            + _wrapped("evidence: " + ", ".join(r["evidence"]))
            + (f"\n    process: {r['process']}" if r.get("process") else "")
        )
        if r.get(state) == "changed":
            was = {k: r[f"previous_{k}"] for k in ("amount_delta", "currency", "detail")}
            lines.append(f"    was:{_money(was) or ' no amount'} {was['detail']}")
        if r.get("triage_status") is not None:
            note = " ".join(str(r["triage_note"]).split())
            changed = (
                f"; ! changed since (`workbench triage {r['finding_id']} --history` shows how)"
                if r["triage_changed"]
                else ""
            )
            lines.append(
                f"    triage: {r['triage_status']} by {r['triage_by']}, "
                f"{r['triage_at']:%Y-%m-%d %H:%M} UTC: {note}{changed}"
            )
    if "triage_status" in found.columns and found["triage_status"].is_not_null().any():
        from ..audit import TRIAGE_STATUSES

        marks = ", ".join(f"{_triage_mark({'triage_status': s})} {s}" for s in TRIAGE_STATUSES)
        lines.append(f"triage marks: {marks}; ! came back changed since it was triaged")
    return "\n".join(lines)


#: A terminal's width the table keeps to (an id or event id is never cut: one longer than a
#: line keeps its own line).
WIDTH = 120


def _wrapped(text: str) -> str:
    """A finding's sentence under its head line, folded at :data:`WIDTH` between words."""
    import textwrap

    return textwrap.fill(
        " ".join(str(text).split()),
        width=WIDTH,
        initial_indent="    ",
        subsequent_indent="      ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _money(r: dict[str, Any]) -> str:
    from ..domain.money import format_money

    if r.get("amount_delta") is None:
        return ""
    return f" [{format_money(r['amount_delta'], r['currency'], signed=True)}]"


def _triage_mark(r: dict[str, Any]) -> str:
    """The table's short triage column: the judgement's initial (each status has its own),
    and ``!`` if the finding came back changed since."""
    status = r.get("triage_status")
    if status is None:
        return ""
    return str(status)[0].upper() + ("!" if r.get("triage_changed") else "")


#: Worst first, for a person reading the list.
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def _by_severity(found: object) -> Any:
    """Findings as a person reads them: the worst severity first, then the most money at stake
    (amounts of different currencies compared in major units), then as the audit lists them."""
    import polars as pl

    from ..domain.money import EXPONENTS

    assert isinstance(found, pl.DataFrame)
    scale = pl.col("currency").replace_strict(
        {c: 10**e for c, e in EXPONENTS.items()}, default=1, return_dtype=pl.Int64
    )
    # exact: the amount's integer part in major units decides, its remainder after it
    major = pl.col("amount_delta").abs() // scale
    rest = (pl.col("amount_delta").abs() % scale) * (10**6 // scale)
    return (
        found.with_row_index("_listed")
        .sort(
            pl.col("severity").replace_strict(SEVERITY_ORDER, default=3, return_dtype=pl.Int8),
            major.fill_null(-1),
            rest.fill_null(-1),
            pl.col("_listed"),
            descending=[False, True, True, False],
        )
        .drop("_listed")
    )


def _table_command(args: argparse.Namespace) -> int:
    import polars as pl

    from .. import tables_out
    from ..audit import recompute_ratings, reconcile_payouts, terminal
    from ..replay import store

    if not args.db.exists():
        raise FileNotFoundError(f"{args.db}: no such database (run `workbench replay` first)")
    if args.format in tables_out.BINARY and args.out is None:
        raise ValueError(f"--format {args.format} needs --out FILE")
    con = store.connect(args.db, read_only=True)
    try:
        if args.command == "reconcile":
            frame = reconcile_payouts(con)
            bad = (pl.col("orders_difference") != 0) | (pl.col("payouts_difference") != 0)
        else:
            frame = recompute_ratings(con)
            bad = ~pl.col("matches")
    finally:
        con.close()
    mismatched = frame.filter(bad).height
    if args.differences:
        frame = frame.filter(bad)
    if args.command == "reconcile":
        sheet = tables_out.Sheet("reconciliation", frame, dict.fromkeys(_RECONCILED, "currency"))
        text = terminal.reconciliation
    else:
        sheet = tables_out.Sheet("rating differences" if args.differences else "ratings", frame)
        text = terminal.ratings
    tables_out.write([sheet], args.format, args.out, lambda: text(frame))
    print(f"{args.command}: {frame.height} row(s), {mismatched} not matching", file=sys.stderr)
    return 1 if mismatched else 0


#: The money columns of the reconciliation (minor units of the row's ``currency``).
_RECONCILED = (
    "orders_settled",
    "ledger_orders",
    "paid_out",
    "ledger_paid_out",
    "top_ups",
    "orders_difference",
    "payouts_difference",
)


def _status(args: argparse.Namespace) -> int:
    import json

    from ..replay.readers import status

    found = status(args.db)
    if args.json:
        print(json.dumps(found.as_dict(), indent=2))
    else:
        print("\n".join(found.lines()))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from ..audit import explain, process

    if (args.finding_id is None) == (args.process is None):
        raise ValueError("give a FINDING_ID or --process CORRELATION_ID (one of them)")
    if args.process is not None:
        view = process(args.db, args.process)
        print(view.to_json() if args.format == "json" else view)
        return 0
    if args.format != "text":
        raise ValueError("--format json is for --process; a finding is explained as text")
    print(explain(args.db, args.finding_id))
    return 0
