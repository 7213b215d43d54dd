"""The models: every projection, violation rule family and audit check as one SQL file.

A model is a file named after what it produces, in a folder named after its layer:

``staging/``
    the events of a stream or a kind, their payloads typed once per build (temp tables over
    ``ev``, the events numbered in ``(position, event_id)`` order);
``projections/``
    the tables a replay leaves in the database (``replay/schema.py`` declares their columns);
``violations/``
    the rule families whose union is the ``violations`` projection;
``audit/``
    what several audit checks share (temp tables, built before their first reader and dropped
    after their last; those a stored table reads, POLICY_DEVIATION's judgments, are run by the
    full build too);
``checks/``
    one audit check per file, returning :data:`FINDING_COLUMNS`;
``incremental/``
    the stored state a build runs on from when a batch is appended (the traders and holds it
    touches, the accounts' balances, the overflows on record): a full build runs the same
    models with that state empty (see :mod:`workbench.replay.incremental`).

Each file starts with a header of ``-- key: value`` lines (``produces`` always; ``check`` and
``severity`` for a check; ``needs`` for a check that can find nothing while a table it reads
has no row, such as the statement checks without statement lines: the audit then skips it and
the shared tables only it reads), then free ``--`` lines saying what it is and why. The SQL is a Jinja
template: the rules' inputs that the domain defines (state machines, clocks, money formulas) come
from :mod:`.macros`, never copied. What a model reads is derived from its SQL with sqlglot, and
the build order from that: no list is kept by hand.
"""

from __future__ import annotations

import functools
import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from ..domain.events import STREAMS
from ..statements.schema import TABLES as STATEMENT_TABLES
from . import macros

ROOT = Path(__file__).parent
LAYERS = ("staging", "projections", "violations", "audit", "checks", "incremental")
#: The tables a model may read without a model producing them: the stored log, the per-build
#: numbered events, the typed payloads stored with them, for the incremental models the batch
#: and its scratch tables, and the statements analysts import (``statements/schema.py``: empty
#: where none were, :func:`workbench.statements.readable.ensure_tables`).
SOURCES = frozenset(
    {"events", "quarantine", "ev", "batch_new", "scope", "trader_exact", "account_exact"}
    | {f"payload_{stream}" for stream in STREAMS}  # the typed payloads (replay/schema.py)
    | set(STATEMENT_TABLES)
)
#: The columns every check returns, in order.
FINDING_COLUMNS = ("check", "subject", "event_id", "evidence", "amount_delta", "currency", "detail")
SEVERITIES = ("high", "medium", "low")

_HEADER = re.compile(r"^--\s*([a-z_]+):\s*(.+?)\s*$")
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(ROOT / "partials"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)
_ENV.globals.update(macros.GLOBALS)


@dataclass(frozen=True)
class Model:
    """One model file: its header, its documentation and its SQL template."""

    name: str
    layer: str
    path: Path
    header: dict[str, str] = field(hash=False)
    doc: str
    template: str

    @property
    def check(self) -> str | None:
        return self.header.get("check")

    @property
    def severity(self) -> str | None:
        return self.header.get("severity")

    @property
    def needs(self) -> frozenset[str]:
        """Tables without whose rows this check finds nothing (its ``-- needs:`` line)."""
        line = self.header.get("needs", "")
        return frozenset(t.strip() for t in line.split(",") if t.strip())

    def sql(self, **context: Any) -> str:
        """The SQL, rendered with the macros and ``context`` (a check's ``ref_time``, a test's
        ``hash_expr``)."""
        values = {**macros.DEFAULTS, **context}
        try:
            return self._compiled.render(**values)
        except jinja2.TemplateError as e:
            raise ValueError(f"{self.path}: {e}") from e

    @functools.cached_property
    def _compiled(self) -> jinja2.Template:
        """The template compiled once: compiling is most of rendering (the live stream renders
        every model for every batch: about 45 ms a batch compiled each time, 7 ms not)."""
        try:
            return _ENV.from_string(self.template)
        except jinja2.TemplateError as e:
            raise ValueError(f"{self.path}: {e}") from e

    @functools.cached_property
    def reads(self) -> frozenset[str]:
        """The tables this model's SQL reads (its CTEs excluded): its ``-- reads:`` header line,
        which :func:`refresh_headers` derives from the SQL and a test keeps equal to
        :attr:`derived_reads` (so a run need not parse every model), else derived here."""
        line = self.header.get("reads")
        if line is not None:
            return frozenset(t.strip() for t in line.split(",") if t.strip())
        return self.derived_reads

    @functools.cached_property
    def derived_reads(self) -> frozenset[str]:
        """The tables this model's SQL reads (its CTEs excluded), parsed by sqlglot."""
        return tables_read(self.sql())

    def first_line(self) -> str:
        return self.doc.split("\n", 1)[0]


def tables_read(sql: str) -> frozenset[str]:
    """Every table ``sql`` reads, but its own CTEs."""
    import sqlglot  # only to derive (0.25 s to import): a run reads the headers
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return frozenset(t.name for t in tree.find_all(exp.Table) if t.name not in ctes)


def _parse(path: Path, layer: str) -> Model:
    header: dict[str, str] = {}
    doc: list[str] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines) and lines[i].startswith("--"):
        m = _HEADER.match(lines[i])
        if m and not doc:
            header[m.group(1)] = m.group(2)
        else:
            doc.append(lines[i][2:].strip())
        i += 1
    name = header.get("produces", path.stem if layer == "checks" else "")
    if not name:
        raise ValueError(f"{path}: the header has no `-- produces:` line")
    if name != path.stem:
        raise ValueError(f"{path}: a model is named after what it produces ({name})")
    if layer == "checks":
        if header.get("check", "").lower() != path.stem:
            raise ValueError(f"{path}: a check's file is named after its code")
        if header.get("severity") not in SEVERITIES:
            raise ValueError(f"{path}: severity must be one of {SEVERITIES}")
    text = "\n".join(lines[i:]).strip() + "\n"
    return Model(name, layer, path, header, " ".join(doc).strip(), text)


@functools.cache
def load() -> dict[str, Model]:
    """Every model, by the name of what it produces (checks by their code)."""
    out: dict[str, Model] = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).glob("*.sql")):
            model = _parse(path, layer)
            key = model.check or model.name
            if key in out:
                raise ValueError(f"{path}: {key} is produced by {out[key].path} too")
            out[key] = model
    return out


def layer(name: str) -> list[Model]:
    """The models of one layer, in build order."""
    return order(m for m in load().values() if m.layer == name)


def order(models: Iterable[Model] | None = None) -> list[Model]:
    """``models`` (all of them by default) sorted so that each comes after the models it reads;
    ties by layer, then name, so the order is the same on every machine."""
    chosen = list(load().values()) if models is None else list(models)
    by_name = {m.name: m for m in load().values() if m.layer != "checks"}
    lookup = {m.name: m for m in chosen}
    needs: dict[str, set[str]] = {n: set() for n in lookup}
    for m in chosen:
        for dep in m.reads:
            if dep in lookup and dep != m.name and not _reads_stored(m, lookup[dep]):
                needs[m.name].add(dep)
            elif dep not in by_name and dep not in SOURCES and not _is_projection(dep):
                raise ValueError(f"{m.path}: reads {dep}, which no model produces")
    # Kahn's algorithm, the lowest-ranked ready model first (graphlib would check cycles but
    # hands out ready nodes in an order of its own).
    rank = {n: (LAYERS.index(m.layer), n) for n, m in lookup.items()}
    ready = [rank[n] for n, deps in needs.items() if not deps]
    heapq.heapify(ready)
    out: list[Model] = []
    while ready:
        _, n = heapq.heappop(ready)
        out.append(lookup[n])
        for other, deps in needs.items():
            if n in deps:
                deps.discard(n)
                if not deps:
                    heapq.heappush(ready, rank[other])
    if len(out) < len(lookup):
        stuck = sorted(n for n, deps in needs.items() if deps)
        raise ValueError(f"models read each other in a cycle: {', '.join(stuck)}")
    return out


def _reads_stored(model: Model, dep: Model) -> bool:
    """An incremental model reads a projection as stored before the build (the state the build
    runs on from), not as the build leaves it: no ordering between them."""
    return model.layer == "incremental" and dep.layer == "projections"


def _is_projection(name: str) -> bool:
    from ..replay.schema import BY_NAME

    return name in BY_NAME


def checks() -> dict[str, Model]:
    """Every SQL check, by its code."""
    return {m.check: m for m in load().values() if m.check is not None}


def severity() -> dict[str, str]:
    """Every check code's severity, from the models' headers (and the Python checks')."""
    from ..audit.ratings import CHECK as RATING_CHECK
    from ..audit.ratings import SEVERITY as RATING_SEVERITY

    out = {code: m.severity or "" for code, m in checks().items()}
    out[RATING_CHECK] = RATING_SEVERITY
    return out


def upstream(name: str, layers: tuple[str, ...] = LAYERS) -> list[Model]:
    """Every model of ``layers`` that ``name`` reads, directly or not, in build order (``name``
    last)."""
    models = load()
    by_name = {m.name: m for m in models.values() if m.layer in layers}
    seen: dict[str, Model] = {}

    def visit(m: Model) -> None:
        seen[m.name] = m
        for dep in sorted(m.reads):
            if dep in by_name and dep not in seen and not _reads_stored(m, by_name[dep]):
                visit(by_name[dep])

    visit(models[name])
    return order(seen.values())


def fingerprint(name: str, layers: tuple[str, ...] = LAYERS) -> str:
    """A hash of the SQL ``name`` and every model of ``layers`` it reads are rendered to (their
    default context): what a stored result made by them was made with. POLICY_DEVIATION's stored
    judgments carry it (``policy_judged.judged_by``), so an audit by a workbench whose models
    judge otherwise does not read them."""
    import hashlib

    h = hashlib.sha256()
    for m in upstream(name, layers):
        h.update(m.name.encode())
        h.update(m.sql().encode())
    return h.hexdigest()[:16]


def markdown() -> str:
    """``docs/models.md``: every model, what it reads and what it is, in build order."""
    lines = [
        "# Models",
        "",
        "Generated by `workbench.models.markdown()` from the files in `workbench/models/` (a test",
        "keeps this page current). *Reads* is derived from each model's SQL; the build order",
        "follows from it. See `docs/architecture.md` for how the layers fit together.",
        "",
    ]
    titles = {
        "staging": "Staging: payloads typed once per build (temp tables over `ev`)",
        "projections": "Projections: the tables a replay leaves (columns in `docs/projections.md`)",
        "violations": "Violation rule families: their union is `violations`",
        "audit": "Audit: tables several checks share",
        "checks": "Checks: one per code",
        "incremental": "Incremental: the stored state the models run on from when a batch is appended (empty in a full build)",
    }
    for name in LAYERS:
        models = [m for m in load().values() if m.layer == name]
        if not models:
            continue
        lines += [f"## {titles[name]}", ""]
        if name == "checks":
            lines += ["| code | severity | file | reads | what |", "|---|---|---|---|---|"]
        else:
            lines += ["| model | file | reads | what |", "|---|---|---|---|"]
        for m in order(models):
            reads = ", ".join(f"`{r}`" for r in sorted(m.reads))
            path = m.path.relative_to(ROOT.parent.parent).as_posix()
            what = m.doc.replace("|", "\\|")
            if name == "checks":
                lines.append(f"| `{m.check}` | {m.severity} | `{path}` | {reads} | {what} |")
            else:
                lines.append(f"| `{m.name}` | `{path}` | {reads} | {what} |")
        lines.append("")
    return "\n".join(lines)


def refresh_headers() -> list[Path]:
    """Write each model's ``-- reads:`` header line from what its SQL reads (a test checks they
    agree, so the line a reader sees is never stale); returns the files changed."""
    changed = []
    for m in load().values():
        lines = m.path.read_text().splitlines()
        i = 0
        while i < len(lines) and _HEADER.match(lines[i]) and not lines[i].startswith("-- reads:"):
            i += 1
        want = f"-- reads: {', '.join(sorted(m.derived_reads))}"
        if i < len(lines) and lines[i].startswith("-- reads:"):
            if lines[i] == want:
                continue
            lines[i] = want
        else:
            lines.insert(i, want)
        m.path.write_text("\n".join(lines) + "\n")
        changed.append(m.path)
    load.cache_clear()
    return changed
