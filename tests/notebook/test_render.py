"""``workbench report`` on the real notebooks, opened in headless Chromium with the network cut
off: every chart must draw (plotly.js is inline), and a screenshot of each page is kept in
``tests/artifacts/`` (git-ignored). Without Chromium (Debian's ``chromium`` package, which
``.ci/run`` installs) the rendering test is skipped, saying so."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from workbench.cli import main

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

CASES = {
    # notebook: (parameters besides db, charts it draws)
    "payout_reconciliation": (["largest=1", "findings_out={tmp}/findings.csv"], 4),
    "assignment_policies": (
        ["days=1", "replications=2", "whatif_days=2", "whatif_replications=2"],
        5,
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
    extra, charts = CASES[name]
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

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"report-{name}.png"
    shot.unlink(missing_ok=True)
    _chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,4000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    artifacts.append(shot)
    print(f"screenshot: {shot}")
