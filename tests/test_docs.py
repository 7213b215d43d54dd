"""The docs' Python examples run as written (from the repository root, on the sample data)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["docs/policies.md", "docs/simulation.md"]


def _blocks(path: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / path).read_text(), re.S)


@pytest.mark.parametrize("path", DOCS)
def test_python_examples_run(path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _blocks(path)
    assert blocks, f"{path} has no python example"
    # Run from a scratch copy of the root's layout so examples may write out/ without touching ours.
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    env: dict[str, object] = {"__name__": "__doc_example__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{path}[{i}]", "exec"), env)
        except Exception as e:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"example {i} of {path} fails: {e!r}\n{code}") from e
    assert os.getcwd() == str(tmp_path)
