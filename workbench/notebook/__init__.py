"""What the notebooks in ``notebooks/`` call: the database (:func:`open_database`), cuts of the
audit's findings and the reconciliation (:mod:`.breaks`), what the notebook is pointed at
(:func:`scope`), a reconciliation row's orders, payouts, plans and postings (:func:`drill`), a
finding's timeline (:func:`timeline`), a business process across its streams (:func:`process`), ratings split into the score's components
(:mod:`.ratings`), who got the work under each policy (:mod:`.policies`), tables for reading
(:func:`table`, :func:`show`), Plotly figures (:mod:`.figures`), and running notebooks as reports
(:mod:`.execute`) or in JupyterLab (:mod:`.lab`).

A notebook starts with :func:`setup`, so its output is the same on every machine.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from .. import _lazy
from . import decisions, figures, tables
from .books import balances_line, default_account, ledger_table, revenue_table
from .breaks import (
    SEVERITIES,
    account_drift,
    account_totals,
    breaks_by_amount,
    breaks_by_check,
    breaks_by_day,
    export_findings,
    largest_breaks,
    money_at_stake,
    trader_drift,
    with_time,
    worst_first,
)
from .database import connect, database_summary, open_database
from .drill import Drill, drill, largest_differences
from .process import ProcessTimeline, process
from .ratings import components, latest, mismatches, pick_trader, with_components
from .runs import Runs, changes_line, changes_table, record_runs, start_of_last_day
from .scope import Scope, scope, subject_accounts
from .statements import demo as statements_demo
from .statements import (
    import_folder,
    largest_payout_break,
    lines_by_day,
    lines_of,
    statement_findings,
)
from .tables import Table, show, table
from .timeline import Timeline, timeline

__all__ = [
    "SEVERITIES",
    "Drill",
    "ProcessTimeline",
    "Runs",
    "Scope",
    "Table",
    "Timeline",
    "account_drift",
    "account_totals",
    "balances_line",
    "breaks_by_amount",
    "breaks_by_check",
    "breaks_by_day",
    "changes_line",
    "changes_table",
    "components",
    "connect",
    "database_summary",
    "decisions",
    "default_account",
    "drill",
    "export_findings",
    "figures",
    "import_folder",
    "largest_breaks",
    "largest_differences",
    "largest_payout_break",
    "latest",
    "ledger_table",
    "lines_by_day",
    "lines_of",
    "mismatches",
    "money_at_stake",
    "open_database",
    "pick_trader",
    "process",
    "record_runs",
    "revenue_table",
    "scope",
    "setup",
    "show",
    "start_of_last_day",
    "statement_findings",
    "statements_demo",
    "subject_accounts",
    "table",
    "tables",
    "timeline",
    "trader_drift",
    "with_components",
    "with_time",
    "worst_first",
]


def setup() -> None:
    """Make a notebook's output independent of the machine: times in UTC (the process's
    ``TZ``, read by DuckDB for ``TIMESTAMPTZ`` values), Plotly figures shown as the plotly
    mimetype (JupyterLab draws them; :mod:`.execute` turns them into HTML with plotly.js
    inline), and Polars tables at fixed sizes whatever ``POLARS_FMT_*`` says. In an interactive
    session (``workbench lab``: :func:`.tables.interactive`) it also loads the interactive
    tables' library into the page, once, offline.

    It also keeps ``rfc3987_syntax`` out of the kernel: Plotly imports nbformat, and so
    jsonschema, to show the first figure, and jsonschema imports that optional IRI checker,
    which builds its grammar at import (about 2 s of every notebook's run here, more than any
    cell). Nothing a notebook does validates IRIs; jsonschema runs without that checker."""
    if "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # import: ImportError
    os.environ["TZ"] = "UTC"
    time.tzset()
    import plotly.io as pio
    import polars as pl

    pio.renderers.default = "plotly_mimetype"
    pio.templates.default = figures.TEMPLATE
    pl.Config.restore_defaults()
    pl.Config.set_tbl_rows(20)
    pl.Config.set_tbl_cols(14)
    pl.Config.set_fmt_str_lengths(60)
    if tables.interactive():
        tables.init_interactive()


def __getattr__(name: str) -> Any:
    """A submodule (``workbench.notebook.execute``) imported on first use, so that it works after a
    bare ``import workbench`` (see :mod:`workbench._lazy`)."""
    return _lazy.submodule(__name__, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | _lazy.names(__path__))
