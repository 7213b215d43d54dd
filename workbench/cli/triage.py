"""``workbench triage``: an analyst's judgement of a finding (reviewed, waived, escalated,
fixed), and the history of those judgements."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from . import options as opt


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = sub.add_parser(
        "triage",
        help="mark a finding reviewed, waived, escalated or fixed, with a note; show its history",
        description=(
            "Record an analyst's judgement of a finding listed by `workbench audit`: --status "
            "reviewed, waived, escalated or fixed, with --note (why) and --by (who); when is now "
            "unless --at. Judgements are kept in the analyst database beside DB "
            "(out/x.analyst.duckdb for out/x.duckdb), keyed by the finding's stable id, so they "
            "survive replays and re-audits; none is ever overwritten. Each keeps the finding's "
            "amount, currency and detail as the last recorded audit saw it: a finding that comes "
            "back different is flagged triage_changed (! in the audit's table). Without "
            "--status, prints the finding's history (every finding's, without FINDING_ID). An id "
            "no recorded audit run has listed is refused (exit 2). Python: "
            "workbench.audit.triage(db, finding_id, status=, note=, by=) and "
            "workbench.audit.triage_history(db, finding_id)."
        ),
    )
    t.add_argument(
        "finding_id",
        metavar="FINDING_ID",
        nargs="?",
        help="a finding id from `workbench audit`, e.g. F-0123456789ab",
    )
    t.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
    t.add_argument(
        "--status", metavar="STATUS", help="the judgement: reviewed, waived, escalated or fixed"
    )
    t.add_argument("--note", metavar="TEXT", help="why (required with --status)")
    t.add_argument("--by", metavar="NAME", help="who judged (required with --status)")
    t.add_argument(
        "--at",
        type=opt.instant,
        metavar="TIME",
        help="when it was judged (default now), e.g. 2026-12-01T10:00:00Z",
    )
    t.add_argument(
        "--history",
        action="store_true",
        help="print the finding's history (the default without --status; after it with it)",
    )
    t.add_argument(
        "--format",
        choices=["table", "json", "csv"],
        default="table",
        help="how to print the history (default table)",
    )
    t.set_defaults(run=_triage)


def _triage(args: argparse.Namespace) -> int:
    from ..audit import triage

    if args.status is None:
        given = [f"--{n}" for n in ("note", "by", "at") if getattr(args, n) is not None]
        if given:
            verb = "goes" if len(given) == 1 else "go"
            raise ValueError(
                f"{', '.join(given)} {verb} only with --status (a judgement to record)"
            )
        _print_history(args)
        return 0
    if args.finding_id is None:
        raise ValueError("--status needs the FINDING_ID it judges")
    row = triage(
        args.db, args.finding_id, status=args.status, note=args.note, by=args.by, at=args.at
    )
    print(
        f"{row['finding_id']}: {row['status']} by {row['triaged_by']} at "
        f"{_utc(row['triaged_at'])}, on {row['check']} {row['subject']}{_money(row)} as audit "
        f"run {row['audit_run_id']} saw it"
    )
    if args.history:
        _print_history(args)
    return 0


def _print_history(args: argparse.Namespace) -> None:
    from ..audit import triage_history
    from ..audit.triage_log import last_seen

    found = triage_history(args.db, args.finding_id)
    if args.format == "csv":
        sys.stdout.write(found.write_csv())
        return
    if args.format == "json":
        sys.stdout.write(found.write_json() + "\n")
        return
    if found.is_empty():
        print(f"{args.finding_id or args.db}: no finding triaged yet")
        return
    seen = last_seen(args.db, list(found["finding_id"].unique(maintain_order=True)))
    for (fid,), judged in found.group_by("finding_id", maintain_order=True):
        first = judged.row(0, named=True)
        print(f"{fid}  {first['check']}  {first['subject']}")
        for r in judged.iter_rows(named=True):
            note = " ".join(str(r["note"]).split())
            print(
                f"  {_utc(r['triaged_at'])}  {r['status']:<9}  {r['triaged_by']}: {note}  "
                f"(as audit run {r['audit_run_id']} saw it:{_money(r) or ' no amount'})"
            )
        now = seen[str(fid)]
        latest = judged.row(-1, named=True)
        differs = [c for c in ("amount_delta", "currency", "detail") if now[c] != latest[c]]
        state = "resolved" if now["audit_status"] == "resolved" else "listed"
        print(
            f"  now: {state} in audit run {now['audit_run_id']}{_money(now)}"
            + (
                f"; ! changed since the latest judgement ({', '.join(differs)}): "
                f"{' '.join(str(now['detail']).split())}"
                if differs
                else "; unchanged since the latest judgement"
            )
        )


def _money(row: dict[str, Any]) -> str:
    from ..domain.money import format_money

    amount = row.get("amount_delta")
    return "" if amount is None else f" [{format_money(amount, row.get('currency'), signed=True)}]"


def _utc(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")
