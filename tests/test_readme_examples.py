"""The README's Python runs as written: each ```python block in a fresh interpreter, top to
bottom, from a scratch root holding a small export where they name the sample; and every
``workbench.…`` name the README, the docs and the commands' ``--help`` give in their text
(``Python: `workbench.summary.summarize(...)` ``) is reachable after a bare ``import workbench``.

Fresh interpreters, because in this process pytest has imported half the package already, and
an attribute a submodule import put on ``workbench`` here is one a reader's ``import workbench``
does not get. The docs' blocks are run by ``tests/test_docs.py``.

A block may be left out with an HTML comment on the line right before it saying why, e.g.
``<!-- not run: needs a live NATS server -->``; keep that rare.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from workbench.generator import generate

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

BLOCK = re.compile(
    r"^(?:<!-- not run: (?P<why>[^>]*?) -->\n)?```python\n(?P<code>.*?)^```", re.M | re.S
)
#: ``workbench.a.b`` in running text or an inline code span (not in a fenced block).
NAME = re.compile(r"(?<![\w.])workbench(?:\.[A-Za-z_]\w*)+")


def _blocks(text: str) -> list[tuple[int, str, str | None]]:
    """Every ```python block: its first line's number, its code, and why it is not run (if so)."""
    return [
        (text.count("\n", 0, m.start("code")) + 1, m.group("code"), m.group("why"))
        for m in BLOCK.finditer(text)
    ]


def _prose(text: str) -> str:
    """``text`` without its fenced blocks (their code runs as a whole; see above)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``code`` as a reader would run it: a fresh interpreter of this venv, in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_python_blocks_run_as_written(tmp_path: Path) -> None:
    blocks = _blocks(README.read_text())
    assert blocks, "the README has no Python example"
    # A scratch root: the examples write out/ there, and read a day of a small platform where
    # they name the bundled sample (same layout and anomalies, a tenth of the time).
    generate(
        tmp_path / "data" / "sample_events",
        seed=3,
        days=1,
        orders_per_day=150,
        traders=6,
        clients=2,
        progress=False,
    )
    skipped = [(line, why) for line, _, why in blocks if why is not None]
    assert len(skipped) <= 1, f"keep skipped README blocks rare: {skipped}"
    for line, code, why in blocks:
        if why is not None:
            continue
        done = _run(code, tmp_path)
        assert done.returncode == 0, (
            f"the Python block at README.md:{line} fails:\n{code}\n--- stderr:\n"
            f"{done.stderr[-3000:]}"
        )


def _help_texts() -> list[str]:
    """Every command's description, epilog and option help ("Python: workbench.sim.compare()")."""
    import argparse

    from workbench.cli import build_parser

    texts: list[str] = []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                texts += [sub.description or "", sub.epilog or ""]
                texts += [a.help or "" for a in sub._actions]
    return texts


def test_every_workbench_name_the_docs_give_exists_after_import_workbench(tmp_path: Path) -> None:
    where: dict[str, str] = {}
    sources = [(README.name, _prose(README.read_text()))]
    sources += [(f"docs/{d.name}", _prose(d.read_text())) for d in sorted(DOCS.glob("*.md"))]
    sources += [("--help", text) for text in _help_texts()]
    for source, text in sources:
        for name in NAME.findall(text):
            where.setdefault(name, source)
    assert "workbench.summary.summarize" in where
    check = (
        "import workbench\n"
        f"for name in {sorted(where)!r}:\n"
        "    obj = workbench\n"
        "    for part in name.split('.')[1:]:\n"
        "        if not hasattr(obj, part):\n"
        "            print(name)\n"
        "            break\n"
        "        obj = getattr(obj, part)\n"
    )
    done = _run(check, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    missing = [f"{name} ({where[name]})" for name in done.stdout.split()]
    assert not missing, "after `import workbench` these names raise AttributeError: " + ", ".join(
        missing
    )
