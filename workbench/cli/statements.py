"""``workbench statements``: import the payout provider's statements (CSV, camt.053, MT940), list
the files imported, show what was refused and why."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import errors

FIELDS = ("line_id", "value_date", "booked_at", "amount", "currency", "reference", "counterparty")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser(
        "statements",
        help="import the payout provider's statements (CSV, camt.053, MT940); list them; "
        "show what was refused",
        description=(
            "The payout provider's (or bank's) statements of money that actually left: "
            "`statements import` reads them into the analyst database beside DB "
            "(out/x.analyst.duckdb for out/x.duckdb), `statements list` lists the files "
            "imported, `statements quarantine` shows every line refused and why. See "
            "docs/statements.md."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.set_defaults(run=lambda _args: _usage(s))
    verbs = s.add_subparsers(dest="statements_command", metavar="SUBCOMMAND")
    _register_import(verbs)
    _register_list(verbs)
    _register_quarantine(verbs)
    from .statement_match import add_match_parser

    add_match_parser(verbs)


def _usage(parser: argparse.ArgumentParser) -> int:
    print(
        f"{parser.prog}: name a subcommand: import, list, quarantine or match (see {parser.prog} --help)",
        file=sys.stderr,
    )
    return errors.BAD_INPUT


def _register_import(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "import",
        help="import statement files (CSV, camt.053, MT940) into the analyst database",
        description=(
            "Import statement files into the analyst database beside DB. Every line is stored, "
            "skipped as a duplicate (its line id already stored with the same content), "
            "quarantined with its raw text and the reason, or kept as a conflict (its line id "
            "already stored with other content; the stored line stays); each file prints "
            "lines in = stored + duplicates + quarantined + conflicts. A file imported before "
            "(same SHA-256) adds nothing. The format is told by content unless --format "
            "(XML: camt053; :20: or a SWIFT {1: header: mt940; else csv). CSV files have the "
            "columns line_id,value_date,booked_at,amount,currency,reference,counterparty "
            "unless --csv-columns maps them; amounts are exact (more decimals than the "
            "currency has: quarantined, never rounded). Exit 0: every line stored or a "
            "duplicate; 1: lines quarantined or conflicts; 2: a file that is not a statement "
            "of its format (quarantined whole), a missing or unreadable file (nothing "
            "imported) or a bad option; 3: the database busy. Python: "
            "workbench.statements.import_statements(paths, db, format=, csv_layout=)."
        ),
        epilog=(
            "examples:\n"
            "  workbench statements import out/stmt/2026-11-05.csv out/stmt/2026-11-05.xml "
            "--db out/sample.duckdb\n"
            "  workbench statements import bank.csv --db out/sample.duckdb --csv-columns "
            "line_id=Id,value_date=Valuta,amount=Betrag,currency=Whg --delimiter ';' "
            "--decimal , --thousands . --date-format %d.%m.%Y\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", metavar="FILE", nargs="+", type=Path, help="statement files")
    p.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
    p.add_argument(
        "--format",
        choices=["csv", "camt053", "mt940"],
        help="the files' format (default: told by each file's content)",
    )
    p.add_argument(
        "--csv-columns",
        metavar="FIELD=HEADER,...",
        type=_columns,
        default={},
        help=(
            "the CSV header of each field, e.g. line_id=Id,value_date=Valuta,amount=Betrag; "
            f"fields: {', '.join(FIELDS)} (one not named keeps its own name)"
        ),
    )
    p.add_argument(
        "--delimiter", metavar="CHAR", default=",", help="CSV field separator (default ,)"
    )
    p.add_argument(
        "--decimal", metavar="CHAR", default=".", help="CSV amounts' decimal separator (default .)"
    )
    p.add_argument(
        "--thousands",
        metavar="CHAR",
        default=None,
        help="CSV amounts' thousands separator, only between groups of three (default none)",
    )
    p.add_argument(
        "--date-format",
        metavar="FORMAT",
        default="%Y-%m-%d",
        help="CSV value_date form, as strptime writes it (default %%Y-%%m-%%d; e.g. %%d.%%m.%%Y)",
    )
    p.add_argument(
        "--encoding", metavar="NAME", default="utf-8", help="CSV text encoding (default utf-8)"
    )
    p.set_defaults(run=_import)


def _columns(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        name, sep, header = part.partition("=")
        name, header = name.strip(), header.strip()
        if not sep or not header:
            raise argparse.ArgumentTypeError(f"{part!r} is not FIELD=HEADER")
        if name not in FIELDS:
            raise argparse.ArgumentTypeError(f"{name!r} is not a field ({', '.join(FIELDS)})")
        if name in out:
            raise argparse.ArgumentTypeError(f"{name} is mapped twice")
        out[name] = header
    return out


def _import(args: argparse.Namespace) -> int:
    from ..statements import CsvLayout, import_statements

    layout = CsvLayout(
        columns=args.csv_columns,
        decimal=args.decimal,
        thousands=args.thousands,
        delimiter=args.delimiter,
        date_format=args.date_format,
        encoding=args.encoding,
    )
    summary = import_statements(args.files, args.db, format=args.format, csv_layout=layout)
    for line in summary.lines():
        print(line)
    code: int = summary.exit_code
    if code == errors.BAD_INPUT:
        refused = [f for f in summary.files if f.refused and not f.already_imported]
        what = "; ".join(f"{f.given_path or f.path}: {f.refused}" for f in refused)
        print(
            f"workbench statements import: not a statement of its format, quarantined whole: "
            f"{what} (see `workbench statements quarantine --db {args.db}`)",
            file=sys.stderr,
        )
    elif code:
        print(
            f"workbench statements import: {summary.quarantined} lines quarantined, "
            f"{summary.conflicts} conflicts (see `workbench statements quarantine --db "
            f"{args.db}`)",
            file=sys.stderr,
        )
    return code


def _register_list(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "list",
        help="the statement files imported, with their period and counts",
        description=(
            "Every statement file imported into the analyst database beside DB (one row per "
            "distinct content), oldest first: path, format, the period it covers, and where its "
            "lines went (in = stored + duplicates + quarantined + conflicts). Python: "
            "workbench.statements.listing.files(db)."
        ),
        epilog="example:\n  workbench statements list --db out/sample.duckdb\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
    p.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="how to print (default table; csv and json give full paths and hashes)",
    )
    p.set_defaults(run=_list)


def _list(args: argparse.Namespace) -> int:
    from .. import text_table as tt
    from ..statements import listing

    frame = listing.files(args.db)
    if _machine(frame, args.format):
        return 0
    if frame.is_empty():
        print(f"{args.db}: no statement imported yet")
        return 0
    columns = [
        tt.when("imported (UTC)", "imported_at", "%Y-%m-%d %H:%M", drop=2),
        tt.Col("path", lambda r: _tail(r["path"], 48)),
        tt.text("format", "format"),
        tt.Col("period", _period),
        tt.number("in", "lines_in"),
        tt.number("stored", "stored"),
        tt.number("dup", "duplicates"),
        tt.number("quar", "quarantined"),
        tt.number("confl", "conflicts"),
        tt.text("sha256", "sha", drop=1),
    ]
    rows = [{**r, "sha": r["file_sha256"][:12]} for r in frame.iter_rows(named=True)]
    for line in tt.render(rows, columns):
        print(line)
    return 0


def _tail(path: str, width: int) -> str:
    """A path cut from the left to fit (the file's name is what tells files apart)."""
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def _period(row: Mapping[str, Any]) -> str:
    a, b = row["period_from"], row["period_to"]
    if a is None or b is None:
        return "-"
    return str(a) if a == b else f"{a}..{b}"


def _register_quarantine(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "quarantine",
        help="the statement lines refused (quarantined or conflicting) and why",
        description=(
            "Every statement line not stored but kept: quarantined lines (file, line, reason, "
            "field, a sentence, the raw text as read) and conflicts (a line id already stored "
            "with other content; the stored line stays). Line 0 is a whole file that is not a "
            "statement of its format. The table cuts the raw text to fit; --format csv or json "
            "gives it whole. Python: workbench.statements.listing.refused(db)."
        ),
        epilog="example:\n  workbench statements quarantine --db out/sample.duckdb --format csv\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", type=Path, required=True, help="DuckDB file written by replay")
    p.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="how to print (default table)",
    )
    p.set_defaults(run=_quarantine)


def _quarantine(args: argparse.Namespace) -> int:
    from .. import text_table as tt
    from ..statements import listing

    frame = listing.refused(args.db)
    if _machine(frame, args.format):
        return 0
    if frame.is_empty():
        print(f"{args.db}: no statement line refused")
        return 0
    columns = [
        tt.number("line", "line_no"),
        tt.text("reason", "reason"),
        tt.text("field", "field", shorten=16, drop=1),
        tt.text("detail", "detail", shorten=70),
        tt.text("raw", "raw", shorten=40, drop=2),
    ]
    rows = [{**r, "field": r["field"] or ""} for r in frame.iter_rows(named=True)]
    for line in tt.render(rows, columns, group=lambda r: f"{r['file_sha256'][:12]}  {r['path']}"):
        print(line)
    return 0


def _machine(frame: Any, fmt: str) -> bool:
    """Print ``frame`` as CSV or JSON when asked; whether it was."""
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
        return True
    if fmt == "json":
        sys.stdout.write(frame.write_json() + "\n")
        return True
    return False
