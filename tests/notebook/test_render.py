"""``workbench report`` on the real notebooks, opened in headless Chromium with the network cut
off: every chart must draw (plotly.js is inline), the page reads as a person reads it (tables
without dtype rows, money in major units, only what the parameters point at), and a screenshot
of each page is kept in ``tests/artifacts/`` (git-ignored). Without Chromium (Debian's
``chromium`` package, which ``.ci/run`` installs) the rendering test is skipped, saying so."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from workbench.audit import recompute_ratings, reconcile_payouts
from workbench.cli import main
from workbench.domain.money import format_major
from workbench.notebook import connect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.slow

#: Headless, as root in a container, and offline: any request off this machine fails.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=20000",
]

#: A dtype row of a frame's repr, as its cells read (``i64`` under a header, ``shape: (…``).
DTYPES = {"i64", "i32", "u32", "str", "f64", "bool", "date", "datetime[μs, UTC]", "---"}


def _page_text(dom: str) -> list[str]:
    """What a reader sees of the page's outputs, text node by text node: no code (the cells'
    input), scripts or styles; entities decoded."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.S)
    dom = re.sub(r'<div class="highlight[^"]*">\s*<pre>.*?</pre>', "", dom, flags=re.S)
    return [html.unescape(t).strip() for t in re.split(r"<[^>]+>", dom) if t.strip()]


def _reads_well(text: list[str]) -> None:
    assert not DTYPES & set(text), sorted(DTYPES & set(text))
    assert not [t for t in text if t.startswith("shape: (")]


def _reconciliation_of_one_account(text: list[str], db: Path) -> None:
    """Only client:cl-01 (the parameter), its money in major units, never in minor units."""
    _reads_well(text)
    words = " ".join(text)
    assert set(re.findall(r"client:cl-\d+", words)) == {"client:cl-01"}
    assert "no trader drift in scope" in text
    rows = reconcile_payouts(db).filter(pl.col("account") == "client:cl-01")
    for column in ("paid_out", "ledger_paid_out", "orders_settled"):
        total = int(rows[column].sum())
        assert total > 10**9  # a large amount: its minor units are unmistakable
        assert format_major(total, "USDT") in text, column  # 4,804.000000 as a cell
        assert str(total) not in words, column  # never 4804000000


def _ratings(text: list[str], db: Path) -> None:
    _reads_well(text)
    con = connect(db)
    try:
        ratings = recompute_ratings(con).filter(pl.col("trader_id") == "tr-03")
    finally:
        con.close()
    last = ratings.sort("seq")["score_recomputed"][-1]
    assert f"{last:.2f}" in text  # a score in hundredths, not 85.100000
    assert not set(re.findall(r"\btr-\d+", " ".join(text))) - {"tr-03"}


CASES: dict[str, tuple[list[str], int, Callable[[list[str], Path], None] | None]] = {
    # notebook: (parameters besides db, charts it draws, what its text must say)
    "payout_reconciliation": (
        [
            *("largest=1", "findings_out={tmp}/findings.csv", "account=client:cl-01"),
            *("runs_out={tmp}/runs", "demo_out={tmp}/demo"),
            "statement_findings_out={tmp}/statement_findings.csv",
        ],
        # no trader drift concerns the client: said in a sentence, not an empty chart; the
        # statements demo's largest break has its timeline chart
        5,
        _reconciliation_of_one_account,
    ),
    "trader_ratings": (["trader=tr-03"], 3, _ratings),
    "assignment_policies": (
        ["days=1", "replications=2", "whatif_days=2", "whatif_replications=2"],
        6,  # and the policies under load
        None,
    ),
}


def _chromium(page: Path, profile: Path, *extra: str) -> str:
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed, so the report's charts are not rendered "
    "(Debian: apt-get install chromium; .ci/run installs it)",
)
@pytest.mark.parametrize("name", list(CASES))
def test_report_charts_draw_in_headless_chromium(
    name: str, sample_db: Path, tmp_path: Path, artifacts: list[Path]
) -> None:
    extra, charts, reads = CASES[name]
    page = tmp_path / f"{name}.html"
    args = ["report", str(ROOT / "notebooks" / f"{name}.ipynb"), "--out", str(page)]
    for p in [f"db={sample_db}", *extra]:
        args += ["-p", p.format(tmp=tmp_path)]
    assert main(args) == 0
    html = page.read_text()
    assert not re.search(r"<script[^>]+src=", html)
    ids = re.findall(r'<div [^>]*id="(plotly-\d+-\d+)"', html)
    assert len(ids) == charts

    dom = _chromium(page, tmp_path / "profile", "--dump-dom")
    divs = re.split(r'(?=<div [^>]*class="plotly-graph-div)', dom)[1:]
    drawn = {}
    for div in divs:
        tag = div[: div.index(">")]
        found = re.search(r'id="(plotly-\d+-\d+)"', tag)
        assert found, tag
        drawn[found.group(1)] = (
            "js-plotly-plot" in tag and 'class="main-svg"' in div and 'class="trace' in div
        )
    assert drawn == dict.fromkeys(ids, True), "charts that did not draw"
    if reads is not None:
        reads(_page_text(dom), sample_db)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"report-{name}.png"
    shot.unlink(missing_ok=True)
    _chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,4000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    artifacts.append(shot)
    print(f"screenshot: {shot}")
