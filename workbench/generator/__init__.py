"""``workbench generate``: a realistic platform export, with planted anomalies and their truth."""

from __future__ import annotations

import csv
import dataclasses
import gc
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ..domain.events import Event
from ..export import ExportWriter
from . import statements
from .anomalies import Planter, variant_names
from .history import GeneratorConfig, HistoryGenerator
from .statement_breaks import StatementSites
from .truth import TruthRow

__all__ = ["GenerateSummary", "GeneratorConfig", "TruthRow", "generate", "read_truth"]

TRUTH_COLUMNS = ("check", "event_id", "subject", "variant", "detail")
#: Where ``--statements`` writes the provider's statements, inside the export.
STATEMENTS_DIR = "statements"


@dataclass
class GenerateSummary:
    """What a generation run wrote, for the CLI and for notebooks."""

    out_dir: Path
    events: int
    orders: int
    files: int
    bytes: int
    seconds: float
    truth: list[TruthRow] = field(default_factory=list)
    truth_path: Path | None = None
    kinds: Counter[str] = field(default_factory=Counter)
    #: The statement files written (``--statements``), and their lines.
    statement_files: list[Path] = field(default_factory=list)
    statement_lines: int = 0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        lines = [
            f"wrote {self.events:,} events ({self.orders:,} orders) in {self.files} files, "
            f"{self.bytes / 1e6:.1f} MB, to {self.out_dir} in {self.seconds:.1f} s "
            f"({self.events_per_second:,.0f} events/s)",
        ]
        if self.statement_files:
            lines.append(
                f"wrote {self.statement_lines:,} statement lines in "
                f"{len(self.statement_files) // 2} days of CSV and camt.053 files to "
                f"{self.statement_files[0].parent}"
            )
        if self.truth_path is not None:
            by = Counter(t.check for t in self.truth)
            lines.append(
                f"planted {len(self.truth)} anomalies ({len(by)} checks) → {self.truth_path}"
            )
        return "\n".join(lines)


def generate(
    out_dir: str | Path,
    config: GeneratorConfig | None = None,
    *,
    truth: str | Path | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    **overrides: Any,
) -> GenerateSummary:
    """Generate an export into ``out_dir`` (hive-partitioned Parquet in the catalog's envelope).

    Unless ``config.clean``, anomalies of every audit check are planted and their ground truth is
    written to ``truth`` (a CSV that must live outside the export, or replay would read it).
    With ``config.statements`` the payout provider's statements go to ``out_dir/statements/``
    (:mod:`.statements`), made from the finished history with random numbers of their own, with
    breaks of every statement check planted unless ``config.clean`` (their truth with the rest;
    the history then also gets, each day, the two payout stories the return breaks need, so its
    events differ from those without statements; a clean history's are byte-identical).
    """
    cfg = dataclasses.replace(config or GeneratorConfig(), **overrides)
    if cfg.plant is not None and (unknown := sorted(set(cfg.plant) - set(variant_names()))):
        raise ValueError(
            f"unknown anomaly variant {', '.join(unknown)}; known: {', '.join(variant_names())}"
        )
    out = Path(out_dir)
    _prepare(out, overwrite)
    truth_path = Path(truth) if truth is not None else None
    if truth_path is not None and _inside(truth_path, out):
        raise ValueError(f"the truth file {truth_path} must be outside the export directory {out}")
    started = time.perf_counter()
    writer = ExportWriter(out, seed=cfg.seed)
    kinds: Counter[str] = Counter()
    last_day: list[date | None] = [None]
    payouts = statements.PayoutRecorder() if cfg.statements else None

    def sink(items: Sequence[Event | dict[str, Any]]) -> None:
        """Events from the processors, or raw rows from the planter."""
        for item in items:
            if isinstance(item, Event):
                kinds[item.kind] += 1
                writer.add_event(item)
                if payouts is not None:
                    payouts.see(item)
            else:
                kinds[item["kind"]] += 1
                writer.add(item)
        last = items[-1] if items else None
        day = (
            (last.occurred_at if isinstance(last, Event) else last["occurred_at"]).date()
            if last is not None
            else None
        )
        if day is not None and (last_day[0] is None or day > last_day[0]):
            writer.flush_before(day)
            last_day[0] = day

    gen = HistoryGenerator(cfg, sink)
    planter = None
    if not cfg.clean:
        planter = Planter(gen, seed=cfg.seed * 7919 + 17)
        gen.planter = planter
        if cfg.statements:
            gen.sites = StatementSites(gen, seed=cfg.seed * 7919 + 29)
    # The history is a large graph of small immutable objects without reference cycles, so the
    # cyclic collector would only rescan it again and again (17% of the run on a week): pause it.
    collecting = gc.isenabled()
    gc.disable()
    try:
        gen.run(progress=progress)
        files = writer.close()
    finally:
        if collecting:
            gc.enable()
    rows_truth = list(planter.truth) if planter else []
    written: list[Path] = []
    n_lines = 0
    if payouts is not None:
        st, planted = statements.make(
            list(payouts.trails.values()),
            cfg.start.date(),
            (cfg.start + timedelta(days=cfg.days) - timedelta(microseconds=1)).date(),
            cfg.seed * 7919 + 41,
            breaks=not cfg.clean,
        )
        written = statements.write(out / STATEMENTS_DIR, st)
        n_lines = len(st.lines)
        rows_truth += planted
    if truth_path is not None:
        write_truth(truth_path, rows_truth)
    return GenerateSummary(
        out_dir=out,
        events=writer.rows_written,
        orders=gen.order_count,
        files=len(files),
        bytes=sum(f.stat().st_size for f in files),
        seconds=time.perf_counter() - started,
        truth=rows_truth,
        truth_path=truth_path,
        kinds=kinds,
        statement_files=written,
        statement_lines=n_lines,
    )


def write_truth(path: Path, rows: list[TruthRow]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TRUTH_COLUMNS)
        for t in rows:
            w.writerow([t.check, t.event_id, t.subject, t.variant, t.detail])


def read_truth(path: str | Path) -> list[TruthRow]:
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [
            TruthRow(r["check"], r["event_id"], r["subject"], r["variant"], r["detail"])
            for r in csv.DictReader(f)
        ]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _prepare(out: Path, overwrite: bool) -> None:
    """Refuse to mix a new export into an old one; ``overwrite`` clears the old partitions."""
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out} is not empty; pass overwrite=True (--overwrite) to replace it"
            )
        for child in out.iterdir():
            if child.is_dir() and (child.name.startswith("date=") or child.name == STATEMENTS_DIR):
                shutil.rmtree(child)
            elif child.suffix == ".parquet":
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
