"""``workbench report`` without traps: a database parameter that names nothing is an error, not a
report on the bundled sample; relative paths are the user's, not the notebook folder's; and a
normal run writes nothing to stderr (no kernel warning about TCP without encryption)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from workbench.cli import main
from workbench.notebook import execute, path_parameters

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

PARAMETERS = """\
db = "../out/notebooks/sample.duckdb"  # the notebook's own default, relative to its folder
export = "../data/sample_events"
findings_out = "../out/notebooks/findings.csv"
label = "a/b"  # not a path parameter: left as given
"""

SHOW = """\
import json, os
from pathlib import Path

Path(findings_out).parent.mkdir(parents=True, exist_ok=True)
Path(findings_out).write_text("finding_id\\n")
print(json.dumps({"db": db, "export": export, "findings_out": findings_out, "label": label,
                  "cwd": os.getcwd()}))
"""


def _paths_notebook(folder: Path) -> Path:
    nb = new_notebook(
        cells=[new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}), new_code_cell(SHOW)]
    )
    nb.metadata["kernelspec"] = dict(execute.KERNELSPEC)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    folder.mkdir(parents=True)
    nbformat.write(nb, str(folder / "paths.ipynb"))
    return folder / "paths.ipynb"


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """``workbench report`` run as a person runs it, in a process of its own, from a working
    folder that holds their database (``out/sample.duckdb``), on a notebook in another folder."""
    root = tmp_path_factory.mktemp("report-paths")
    work, notebooks = root / "work", root / "notebooks"
    source = _paths_notebook(notebooks)
    (work / "out").mkdir(parents=True)
    duckdb.connect(str(work / "out" / "sample.duckdb")).close()
    argv = [sys.executable, "-m", "workbench.cli", "report", "../notebooks/paths.ipynb"]
    argv += ["-p", "db=out/sample.duckdb", "-p", "findings_out=out/findings.csv"]
    argv += ["-p", "label=a/b", "--out", "out/paths.html", "--notebook-out", "out/paths.ipynb"]
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=300)
    executed = nbformat.read(str(work / "out" / "paths.ipynb"), as_version=4)
    seen = json.loads(executed.cells[-1].outputs[0].text) if done.returncode == 0 else {}
    return {"done": done, "work": work, "notebooks": notebooks, "source": source, "seen": seen}


def test_relative_paths_resolve_from_where_the_command_runs(ran: dict[str, object]) -> None:
    done, work, notebooks = ran["done"], ran["work"], ran["notebooks"]
    assert isinstance(done, subprocess.CompletedProcess) and isinstance(work, Path)
    assert isinstance(notebooks, Path)
    assert done.returncode == 0, done.stderr
    assert ran["seen"] == {
        "db": str(work / "out" / "sample.duckdb"),
        "findings_out": str(work / "out" / "findings.csv"),
        "label": "a/b",
        "export": "../data/sample_events",  # a default: relative to the notebook, as written
        "cwd": str(notebooks),  # the notebook still runs in its folder, for its defaults
    }
    # What the notebook wrote is where the user asked, nothing landed beside the notebook, and
    # the kernel left no socket or connection file behind in either folder.
    assert _files(work) == {
        "out/sample.duckdb",
        "out/findings.csv",
        "out/paths.html",
        "out/paths.ipynb",
    }
    assert _files(notebooks) == {"paths.ipynb"}


def test_a_report_writes_nothing_to_stderr(ran: dict[str, object]) -> None:
    done = ran["done"]
    assert isinstance(done, subprocess.CompletedProcess)
    assert done.returncode == 0
    assert done.stderr == ""  # e.g. no "Kernel is running over TCP without encryption"
    assert done.stdout.splitlines() == ["wrote out/paths.html", "wrote out/paths.ipynb"]


def test_a_db_parameter_naming_no_database_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    notebook = str(NOTEBOOKS / "quickstart.ipynb")
    out = tmp_path / "x.html"
    # A typo of ../out/fixture.duckdb: once a report on a freshly replayed sample, exit 0.
    assert main(["report", notebook, "-p", "db=../out/fixtur.duckdb", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("workbench report: ")
    assert "db=../out/fixtur.duckdb: no such database" in err
    assert str(tmp_path.parent / "out" / "fixtur.duckdb") in err  # from here, not notebooks/
    assert "-p export=" in err  # how to build one on purpose
    # Refused before the kernel ran: no page, and no database built anywhere.
    assert not out.exists()
    assert not (tmp_path.parent / "out" / "fixtur.duckdb").exists()
    assert not (NOTEBOOKS.parent / "out" / "fixtur.duckdb").exists()


def test_an_export_parameter_naming_nothing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    source = _paths_notebook(tmp_path / "notebooks")
    argv = ["report", str(source), "--out", "x.html", "-p", "db=new.duckdb", "-p", "export=none"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"export=none: no such file or folder {tmp_path / 'none'}" in err
    assert not (tmp_path / "x.html").exists()


def test_the_rule_by_parameter_name(tmp_path: Path) -> None:
    (tmp_path / "old.duckdb").touch()
    (tmp_path / "export").mkdir()
    declared = ["db", "export", "baseline_db", "rates_path", "findings_out", "label", "days"]
    given = {
        "db": "new.duckdb",  # missing, but built from the export given with it
        "export": "export",
        "baseline_db": "old.duckdb",
        "findings_out": "../f.csv",  # an output: made absolute, never checked
        "label": "a/b",
        "days": 3,
        "unknown_db": "x",  # not declared: left for inject() to refuse
    }
    got = path_parameters.resolve(given, declared, base=tmp_path)
    assert got == {
        **given,
        "db": str(tmp_path / "new.duckdb"),
        "export": str(tmp_path / "export"),
        "baseline_db": str(tmp_path / "old.duckdb"),
        "findings_out": str(tmp_path.parent / "f.csv"),
    }
    with pytest.raises(FileNotFoundError, match=r"baseline_db=gone\.duckdb: no such database"):
        path_parameters.resolve({"baseline_db": "gone.duckdb"}, declared, base=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"rates_path=r\.csv: no such file or folder"):
        path_parameters.resolve({"rates_path": "r.csv"}, declared, base=tmp_path)


def test_report_help_states_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "current directory" in text and "does not exist is an error" in text
