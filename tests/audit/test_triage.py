"""Triage that survives re-audits, and what changed since the last audit (issue 17, items 4-5).

An analyst's judgement of a finding is kept in the analyst database by the finding's stable id:
replaying more data, replaying everything again from scratch and auditing again never loses
it, every listing shows it, and a finding that comes back with another amount, currency or
detail than when it was judged is flagged, so a waiver never silently covers another break.
``--since-last`` lists the new, reopened, changed and resolved findings against the previous
recorded run.

One small generated history (two days, every anomaly planted) is replayed once; each test
works on its own copy of the replayed database and its analyst database.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench
from workbench.audit import (
    TRIAGE_STATUSES,
    TriageError,
    audit,
    since_last,
    triage,
    triage_history,
)
from workbench.audit.triage_log import FINGERPRINT, TRIAGE_COLUMNS, annotate
from workbench.cli import main
from workbench.domain.money import format_money
from workbench.generator import generate
from workbench.replay import rebuild
from workbench.replay.snapshots import analyst_db

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("triage") / "export"
    generate(out, seed=5, days=2, orders_per_day=40, traders=6, clients=3, progress=False)
    return out


@pytest.fixture(scope="module")
def day_one_run(
    export: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, pl.DataFrame]:
    """The first day replayed and audited once (audit run 1 recorded), with what it found."""
    db = tmp_path_factory.mktemp("day1") / "desk.duckdb"
    rebuild([export / "date=2026-11-01"], db, progress=False)
    return db, audit(db).findings


@pytest.fixture(scope="module")
def day_one(day_one_run: tuple[Path, pl.DataFrame]) -> Path:
    return day_one_run[0]


@pytest.fixture
def db(day_one: Path, tmp_path: Path) -> Path:
    """This test's own copy of the day-one database and its analyst database."""
    for src in (day_one, analyst_db(day_one)):
        shutil.copy(src, tmp_path / src.name)
    return tmp_path / day_one.name


@pytest.fixture(scope="module")
def listed(day_one: Path) -> list[str]:
    """The ids audit run 1 of the day-one database listed, in order."""
    con = duckdb.connect(str(analyst_db(day_one)), read_only=True)
    try:
        rows = con.execute("SELECT finding_id FROM audit_findings ORDER BY finding_id").fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``workbench ARGV`` in this process: its exit code (a usage error's too), stdout, stderr."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _write(frame: pl.DataFrame, dst: Path) -> Path:
    """``frame`` (rows of an export, with its ``date`` partition) as a hive-partitioned export."""
    for (day,), part in frame.group_by("date", maintain_order=True):
        (dst / f"date={day}").mkdir(parents=True)
        part.drop("date").write_parquet(dst / f"date={day}" / "part-0.parquet")
    return dst


def _pick(found: pl.DataFrame, check: str, *, contains: str = "") -> dict[str, object]:
    rows = found.filter((pl.col("check") == check) & pl.col("detail").str.contains(contains))
    assert rows.height, f"the generated history has no {check} finding ({contains!r})"
    return rows.sort("finding_id").row(0, named=True)


# -------------------------------------------------------------- persistence and change
def test_triage_survives_more_data_full_replays_and_flags_a_changed_waiver(
    db: Path,
    day_one_run: tuple[Path, pl.DataFrame],
    export: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = day_one_run[1]  # audit run 1 of the day replayed into db
    assert first.select(TRIAGE_COLUMNS[:4]).null_count().row(0) == (first.height,) * 4
    assert not first["triage_changed"].any()

    # a waived money break, a reviewed one, and one judged twice (the latest counts)
    waived = _pick(first, "RECEIPT_AMOUNT_MISMATCH")
    reviewed = _pick(first, "PAYOUT_MISMATCH")
    twice = _pick(first, "HOLD_LEAK")
    triage(db, str(waived["finding_id"]), status="waived", note="bank rounds", by="ana", at=AT)
    triage(db, str(reviewed["finding_id"]), status="reviewed", note="seen", by="bo", at=AT)
    triage(db, str(twice["finding_id"]), status="escalated", note="to ops", by="ana", at=AT)
    later = AT + timedelta(hours=3)
    triage(db, str(twice["finding_id"]), status="fixed", note="ops fixed it", by="cy", at=later)

    def judged(found: pl.DataFrame) -> dict[str, tuple[object, ...]]:
        rows = found.filter(pl.col("triage_status").is_not_null())
        return {r[0]: r[1:] for r in rows.select("finding_id", *TRIAGE_COLUMNS).iter_rows()}

    expected = {
        waived["finding_id"]: ("waived", "bank rounds", "ana", AT, False),
        reviewed["finding_id"]: ("reviewed", "seen", "bo", AT, False),
        twice["finding_id"]: ("fixed", "ops fixed it", "cy", later, False),
    }

    # more data: the second day replayed into the same database, audited again
    rebuild([export], db, progress=False)
    second = audit(db).findings
    assert second.height > first.height  # the second day brought its own breaks
    assert judged(second) == expected

    # a second export of the same history from scratch (full replay): the waived receipt now
    # reads 1.00 RUB less, an undecodable row is gone, an event is delivered twice
    rows = pl.read_parquet(export / "**/*.parquet", hive_partitioning=True)
    upload = rows.filter(
        pl.col("event_id").is_in(list(waived["evidence"]))  # type: ignore[arg-type]
        & (pl.col("kind") == "receipt.uploaded")
    ).row(0, named=True)
    payload = json.loads(upload["payload"])
    payload["amount"] -= 100
    malformed = _pick(second, "MALFORMED_EVENT", contains="unknown_kind")
    con = workbench.connect(str(db), read_only=True)
    try:  # a trader going online that was decoded and delivered once
        decoded = {r[0] for r in con.execute("SELECT event_id FROM events").fetchall()}
    finally:
        con.close()
    once = rows.group_by("event_id").len().filter(pl.col("len") == 1)["event_id"]
    online = (
        rows.filter(
            (pl.col("kind") == "trader.went_online")
            & pl.col("event_id").is_in(list(decoded))
            & pl.col("event_id").is_in(once.implode())
        )
        .sort("position")
        .row(0, named=True)
    )
    again = pl.DataFrame(
        [{**online, "recorded_at": online["recorded_at"] + timedelta(seconds=1)}],
        schema=rows.schema,
    )
    variant = pl.concat(
        [
            rows.filter(pl.col("event_id") != malformed["event_id"]).with_columns(
                pl.when(pl.col("event_id") == upload["event_id"])
                .then(pl.lit(json.dumps(payload)))
                .otherwise(pl.col("payload"))
                .alias("payload")
            ),
            again,
        ]
    )
    rebuild([_write(variant, tmp_path / "variant")], db, full=True, progress=False)
    code, out, err = _run(["audit", "--db", str(db), "--since-last"], capsys)
    assert code == 1, err
    changes = since_last(db)  # what that run recorded, compared with the run before
    assert changes.run_id == 3 and changes.previous_run_id == 2
    got = {r["finding_id"]: r for r in changes.findings.iter_rows(named=True)}
    assert {fid: r["change"] for fid, r in got.items() if r["change"] != "new"} == {
        waived["finding_id"]: "changed",
        malformed["finding_id"]: "resolved",
    }
    news = [r for r in got.values() if r["change"] == "new"]
    assert [(r["check"], r["event_id"]) for r in news] == [
        ("CONFLICTING_DUPLICATE", online["event_id"])
    ]
    moved = got[waived["finding_id"]]
    assert moved["amount_delta"] == waived["amount_delta"] - 100  # type: ignore[operator]
    assert moved["previous_amount_delta"] == waived["amount_delta"]
    assert moved["previous_detail"] == waived["detail"]
    assert (moved["triage_status"], moved["triage_changed"]) == ("waived", True)
    assert got[malformed["finding_id"]]["detail"] == malformed["detail"]  # as last seen
    # the table lists those three, marks the changed waiver (W!) and says what it was
    heads = [line for line in out.splitlines() if line.startswith("F-")]
    assert sorted(line.split()[0] for line in heads) == sorted(got)
    head = next(line for line in heads if line.startswith(str(waived["finding_id"])))
    assert head.split()[1:3] == ["changed", "W!"], head
    assert len(head) <= 120
    was = format_money(int(waived["amount_delta"]), str(waived["currency"]), signed=True)  # type: ignore[call-overload]
    assert f"    was: [{was}] {waived['detail']}" in out.splitlines()
    assert "! changed since" in out and "triage marks: R reviewed, W waived" in out
    assert out.splitlines()[-1].startswith("audit run 3 (")
    assert "since run 2" in out and "1 new, 0 reopened, 1 changed, 1 resolved" in out
    code, out, _ = _run(["triage", str(waived["finding_id"]), "--db", str(db)], capsys)
    now = format_money(int(moved["amount_delta"]), str(moved["currency"]), signed=True)
    assert out.splitlines()[-1].startswith(
        f"  now: listed in audit run 3 [{now}]; ! changed since the latest judgement "
        "(amount_delta, detail)"
    ), out
    # explain shows the judgement and that the money at stake moved since
    code, out, _ = _run(["explain", str(waived["finding_id"]), "--db", str(db)], capsys)
    assert code == 0
    assert "  triage: waived by ana, " in out and ": bank rounds" in out, out
    assert f"! changed since the latest judgement, which saw {was} at stake" in out, out
    flagged = expected | {waived["finding_id"]: (*expected[waived["finding_id"]][:4], True)}
    assert judged(audit(db, record=False).findings) == flagged

    # the first export again, from scratch: the receipt reads as when it was waived (no longer
    # flagged), the undecodable row is back (reopened), the duplicate gone (resolved)
    rebuild([export], db, full=True, progress=False)
    code, out, err = _run(["audit", "--db", str(db), "--since-last", "--format", "json"], capsys)
    assert code == 1, err
    back = {r["finding_id"]: r for r in json.loads(out)}
    assert {fid: r["change"] for fid, r in back.items()} == {
        waived["finding_id"]: "changed",
        malformed["finding_id"]: "reopened",
        news[0]["finding_id"]: "resolved",
    }
    assert {c: back[waived["finding_id"]][c] for c in TRIAGE_COLUMNS} == {
        "triage_status": "waived",
        "triage_note": "bank rounds",
        "triage_by": "ana",
        "triage_at": "2026-12-01T10:00:00+00:00",
        "triage_changed": False,
    }
    assert since_last(db).counts() == {"new": 0, "reopened": 1, "changed": 1, "resolved": 1}

    # every judgement is kept, oldest first, with the finding as it was audited then
    hist = triage_history(db, str(twice["finding_id"]))
    assert hist.select("status", "triaged_by", "triaged_at").rows() == [
        ("escalated", "ana", AT),
        ("fixed", "cy", later),
    ]
    assert hist.select(FINGERPRINT).unique().rows() == [
        tuple(twice[c] for c in FINGERPRINT)  # judged after run 1, which saw it so
    ]
    # a reader connection (notebooks) sees the triage table beside the audit runs
    con = workbench.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM audit_triage").fetchall()[0][0] == 4
    finally:
        con.close()


# ------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["F-000000000000", "--status", "waived"], "no recorded audit run of"),
        (["F-xyz", "--status", "waived"], "is not a finding id"),
        (["{fid}", "--status", "ignored"], "is not one of reviewed, waived, escalated, fixed"),
        (["{fid}", "--status", "waived", "--note", " "], "needs a note"),
        (["{fid}", "--status", "waived", "--by", ""], "needs the name"),
        (["{fid}", "--note", "x", "--by", "y"], "only with --status"),
        (["--status", "waived"], "needs the FINDING_ID"),
        (["{fid}", "--status", "waived", "--at", "yesterday"], "is not a time"),
        (["F-000000000000"], "no recorded audit run of"),
    ],
)
def test_a_bad_judgement_is_refused_in_one_line_and_nothing_is_written(
    db: Path, listed: list[str], argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fid = listed[0]
    defaults = {"--note": "why", "--by": "ana"} if "--status" in argv else {}
    for flag, value in defaults.items():
        if flag not in argv:
            argv = [*argv, flag, value]
    code, _, err = _run(["triage", *(a.format(fid=fid) for a in argv), "--db", str(db)], capsys)
    assert code == 2
    assert says in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("workbench triage") and "Traceback" not in err
    assert triage_history(db).is_empty()


def test_triage_without_any_recorded_audit_is_refused_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "never.duckdb"
    code, _, err = _run(
        [
            "triage",
            "F-0123456789ab",
            "--status",
            "fixed",
            "--note",
            "n",
            "--by",
            "b",
            "--db",
            str(db),
        ],
        capsys,
    )
    assert code == 2 and "run `workbench audit --db" in err
    assert not analyst_db(db).exists()
    with pytest.raises(TriageError):
        triage_history(db, "F-0123456789ab")


def test_the_help_names_every_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["triage", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "reviewed, waived, escalated or fixed" in text
    assert TRIAGE_STATUSES == ("reviewed", "waived", "escalated", "fixed")


# ------------------------------------------------------------------------- what is listed
def test_json_csv_and_parquet_listings_carry_the_triage(
    db: Path, listed: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fid = listed[-1]
    code, out, err = _run(
        [
            *("triage", fid, "--status", "escalated", "--note", 'to "ops", urgent'),
            *("--by", "Zoë", "--at", "2026-12-01T10:00:00Z", "--db", str(db)),
        ],
        capsys,
    )
    assert code == 0, err
    assert out.startswith(f"{fid}: escalated by Zoë at 2026-12-01 10:00:00 UTC")

    code, out, _ = _run(["audit", "--db", str(db), "--no-record", "--format", "json"], capsys)
    assert code == 1
    rows = {r["finding_id"]: r for r in json.loads(out)}
    assert {c: rows[fid][c] for c in TRIAGE_COLUMNS} == {
        "triage_status": "escalated",
        "triage_note": 'to "ops", urgent',
        "triage_by": "Zoë",
        "triage_at": "2026-12-01T10:00:00+00:00",
        "triage_changed": False,
    }
    others = [r for k, r in rows.items() if k != fid]
    assert others and all(r["triage_status"] is None and not r["triage_changed"] for r in others)

    out_csv = tmp_path / "findings.csv"
    code, _, _ = _run(
        ["audit", "--db", str(db), "--no-record", "--format", "csv", "--out", str(out_csv)],
        capsys,
    )
    table = {r["finding_id"]: r for r in csv.DictReader(io.StringIO(out_csv.read_text()))}
    assert set(TRIAGE_COLUMNS) <= set(next(iter(table.values())))
    assert (table[fid]["triage_status"], table[fid]["triage_note"]) == (
        "escalated",
        'to "ops", urgent',
    )
    assert table[fid]["triage_changed"] == "false"

    out_pq = tmp_path / "findings.parquet"
    _run(
        ["audit", "--db", str(db), "--no-record", "--format", "parquet", "--out", str(out_pq)],
        capsys,
    )
    back = pl.read_parquet(out_pq).filter(pl.col("finding_id") == fid)
    assert back.select("triage_status", "triage_by").row(0) == ("escalated", "Zoë")

    code, out, _ = _run(["triage", fid, "--db", str(db)], capsys)
    assert code == 0
    assert 'escalated  Zoë: to "ops", urgent' in out
    assert "unchanged since the latest judgement" in out


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    note=st.text(min_size=1, max_size=40).filter(str.strip),
    by=st.text(min_size=1, max_size=12).filter(str.strip),
    status=st.sampled_from(TRIAGE_STATUSES),
)
def test_any_note_and_name_are_kept_as_written(
    db: Path, listed: list[str], note: str, by: str, status: str
) -> None:
    fid = listed[len(note) % len(listed)]
    triage(db, fid, status=status, note=note, by=by, at=AT)
    last = triage_history(db, fid).row(-1, named=True)
    assert (last["status"], last["note"], last["triaged_by"]) == (status, note.strip(), by.strip())


@settings(max_examples=60, deadline=None)
@given(
    then=st.tuples(
        st.none() | st.integers(-5, 5),
        st.sampled_from([None, "RUB", "USDT"]),
        st.sampled_from(["a", "b"]),
    ),
    now=st.tuples(
        st.none() | st.integers(-5, 5),
        st.sampled_from([None, "RUB", "USDT"]),
        st.sampled_from(["a", "b"]),
    ),
    judged=st.booleans(),
)
def test_triage_changed_exactly_when_the_judged_amount_or_currency_differs(
    then: tuple[int | None, str | None, str], now: tuple[int | None, str | None, str], judged: bool
) -> None:
    finding = pl.DataFrame(
        [{"finding_id": "F-000000000001", **dict(zip(FINGERPRINT, now, strict=True))}],
        schema={
            "finding_id": pl.String,
            "amount_delta": pl.Int64,
            "currency": pl.String,
            "detail": pl.String,
        },
    )
    judgements = pl.DataFrame(
        [
            {
                "finding_id": "F-000000000001",
                "status": "waived",
                "note": "n",
                "triaged_by": "b",
                "triaged_at": AT,
                **dict(zip(FINGERPRINT, then, strict=True)),
            }
        ]
        if judged
        else [],
        schema={
            "finding_id": pl.String,
            "status": pl.String,
            "note": pl.String,
            "triaged_by": pl.String,
            "triaged_at": pl.Datetime("us", "UTC"),
            "amount_delta": pl.Int64,
            "currency": pl.String,
            "detail": pl.String,
        },
    )
    got = annotate(finding, judgements).row(0, named=True)
    # the money at stake decides; a detail that reads differently alone is not a change
    assert got["triage_changed"] is (judged and then[:2] != now[:2])
    assert got["triage_status"] == ("waived" if judged else None)


# ------------------------------------------------------------------------------ since last
def test_since_last_with_no_previous_run_says_so_and_works_as_of(
    day_one_run: tuple[Path, pl.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "fresh.duckdb"
    shutil.copy(day_one_run[0], db)  # the projections only: no audit run recorded yet
    code, out, err = _run(["audit", "--db", str(db), "--since-last"], capsys)
    assert code == 1, err
    assert out.strip().splitlines() == [
        f"audit run 1 is the first recorded run of {db}: no earlier run to compare with (every "
        f"finding is new); {day_one_run[1].height} finding(s) now"
    ]
    assert since_last(db).findings.is_empty()

    # as it stood at noon: what the afternoon found is resolved (it had not happened yet)
    noon = "2026-11-01T12:00:00Z"
    code, out, err = _run(["audit", "--db", str(db), "--since-last", "--as-of", noon], capsys)
    assert code in (0, 1), err
    changes = since_last(db)
    assert changes.run_id == 2 and changes.previous_run_id == 1
    assert "resolved" in set(changes.findings["change"])
    assert "since run 1" in out and "as of 2026-11-01 12:00 UTC" in out
    resolved = set(changes.findings.filter(pl.col("change") == "resolved")["finding_id"])
    assert len(resolved) == out.count("  resolved ")  # the table lists each
    con = workbench.connect(str(db), read_only=True)
    try:
        later = {
            r[0]
            for r in con.execute(
                "SELECT event_id FROM events WHERE occurred_at > ?::TIMESTAMPTZ", [noon]
            ).fetchall()
        }
    finally:
        con.close()
    after_noon = set(day_one_run[1].filter(pl.col("event_id").is_in(list(later)))["finding_id"])
    assert after_noon and after_noon <= resolved  # a break whose event came later is not yet

    code, _, err = _run(["audit", "--db", str(db), "--since-last", "--no-record"], capsys)
    assert code == 2 and "drop --no-record" in err and len(err.strip().splitlines()) == 1
