"""The models' layout (``workbench/models/``): one model file per check code, valid headers, known
severities, and nothing read that no model, source or projection produces."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pytest

from workbench import models
from workbench.audit import ratings, shared
from workbench.domain.violations import CHECK_CODES
from workbench.replay import store

FILES = sorted(p for layer in models.LAYERS for p in (models.ROOT / layer).glob("*.sql"))


def test_every_check_code_has_exactly_one_model_or_is_the_python_rating_check() -> None:
    by_file = Counter(
        models._parse(p, "checks").check for p in (models.ROOT / "checks").glob("*.sql")
    )
    assert ratings.CHECK not in by_file, "RATING_MISMATCH is computed in Python"
    assert set(by_file) | {ratings.CHECK} == set(CHECK_CODES)
    assert all(n == 1 for n in by_file.values()), by_file
    assert set(models.checks()) == set(CHECK_CODES) - {ratings.CHECK}


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_model_file_has_a_valid_header(path: Path) -> None:
    lines = path.read_text().splitlines()
    assert lines and lines[0].startswith("-- "), f"{path}: no header"
    model = models._parse(path, path.parent.name)  # raises on a bad header or name
    assert model.doc, f"{path}: a model says what it is and why after its header"
    if model.layer == "checks":
        assert model.check is not None and model.check.lower() == path.stem
        assert model.check in CHECK_CODES, f"{path}: {model.check} is not a check code"
        assert f"'{model.check}'" in model.template, f"{path}: the code is a literal in its SQL"
    else:
        assert model.header.get("produces") == path.stem
        assert model.check is None and model.severity is None
    model.sql()  # renders with the macros alone


def test_every_check_has_a_severity() -> None:
    severity = models.severity()
    assert set(severity) == set(CHECK_CODES)
    assert set(severity.values()) <= set(models.SEVERITIES)
    assert severity[ratings.CHECK] == ratings.SEVERITY


def test_no_model_reads_a_table_nothing_produces() -> None:
    everything = models.order()  # raises naming the model and the table
    assert len(everything) == len(models.load())
    position = {m.name: i for i, m in enumerate(everything)}
    for m in everything:
        for dep in m.reads:
            stored = dep in position and models._reads_stored(m, everything[position[dep]])
            if dep in position and dep != m.name and not stored:
                assert position[dep] < position[m.name], f"{m.name} runs before {dep}"


def test_every_check_returns_the_finding_columns() -> None:
    """Over an empty replayed schema, with the shared tables built (empty)."""
    con = duckdb.connect()
    try:
        store.configure(con)
        store.create_schema(con)
        shared.prepare(con, shared.tables())
        for code, model in sorted(models.checks().items()):
            rel = con.sql(model.sql(ref_time="now()"))
            assert len(rel.columns) == len(models.FINDING_COLUMNS), (code, rel.columns)
    finally:
        con.close()


def test_every_reads_header_is_what_the_sql_reads() -> None:
    """The ``-- reads:`` line is derived (``workbench.models.refresh_headers()`` writes it)."""
    for m in models.load().values():
        assert m.header.get("reads") == ", ".join(sorted(m.derived_reads)), (
            f"{m.path}: run workbench.models.refresh_headers()"
        )


ROOT = Path(__file__).resolve().parents[1]


def test_docs_are_generated_from_the_models_and_the_schema() -> None:
    from workbench.replay import schema

    assert (ROOT / "docs/models.md").read_text() == models.markdown(), (
        "docs/models.md is stale: write workbench.models.markdown() to it"
    )
    assert (ROOT / "docs/projections.md").read_text() == schema.markdown(), (
        "docs/projections.md is stale: write workbench.replay.schema.markdown() to it"
    )


def test_the_audit_docs_list_every_check_with_its_severity() -> None:
    rows = [
        line.split("|")[1:3]
        for line in (ROOT / "docs/audit.md").read_text().splitlines()
        if line.startswith("| `")
    ]
    documented = {code.strip().strip("`"): sev.strip() for code, sev in rows}
    checks = {k: v for k, v in documented.items() if k in CHECK_CODES}
    assert checks == models.severity()
