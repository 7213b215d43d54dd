"""Running notebooks as reports: parameters (papermill's convention), execution in this Python,
and a standalone HTML page that loads nothing from the network."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from workbench.cli import main
from workbench.notebook import execute

PARAMETERS = 'n = 2  # how many\nlabel: str = "x"\nnames = ["a", "b"]\n'

FIGURE = """
import sys
import plotly.graph_objects as go
from workbench import notebook as nb

nb.setup()
print(n, label, names, sys.executable)
go.Figure(go.Bar(x=names, y=[n, 3]))
"""


def _notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = dict(execute.KERNELSPEC)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


def _sample() -> nbformat.NotebookNode:
    return _notebook(
        new_markdown_cell("# A report"),
        new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
        new_code_cell(FIGURE),
    )


def _write(nb: nbformat.NotebookNode, path: Path) -> Path:
    nbformat.write(nb, str(path))
    return path


def test_declared_parameters_and_their_defaults() -> None:
    assert execute.declared(_sample()) == {"n": "2", "label": '"x"', "names": '["a", "b"]'}
    with pytest.raises(execute.ParameterError, match="no code cell tagged"):
        execute.declared(_notebook(new_code_cell("x = 1")))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("n=3", ("n", 3)),
        ("rate=0.5", ("rate", 0.5)),
        ("trader=None", ("trader", None)),
        ("db=../out/other.duckdb", ("db", "../out/other.duckdb")),
        ("names=['a', 'b']", ("names", ["a", "b"])),
        ("label='3'", ("label", "3")),
        ("label=", ("label", "")),
        ("x=a=b", ("x", "a=b")),
    ],
)
def test_parse_assignment(text: str, value: tuple[str, object]) -> None:
    assert execute.parse_assignment(text) == value


@pytest.mark.parametrize("text", ["n", "=3", "2n=3", "a b=1"])
def test_parse_assignment_refuses(text: str) -> None:
    with pytest.raises(execute.ParameterError):
        execute.parse_assignment(text)


def test_inject_writes_a_tagged_cell_after_the_parameters() -> None:
    nb = _sample()
    out = execute.inject(nb, {"n": 5, "names": ["c"]})
    assert len(nb.cells) == 3  # the original is untouched
    cell = out.cells[2]
    assert cell.metadata.tags == ["injected-parameters"]
    assert cell.source.splitlines()[1:] == ["n = 5", "names = ['c']"]
    nbformat.validate(out)
    again = execute.inject(out, {"label": "y"})  # replaces the injected cell, never stacks
    assert [c.source for c in again.cells].count(cell.source) == 0
    assert sum("injected-parameters" in c.metadata.get("tags", []) for c in again.cells) == 1
    assert execute.inject(nb, {}).cells == nb.cells
    with pytest.raises(execute.ParameterError, match=r"unknown parameter.*db.*declares: n, label"):
        execute.inject(nb, {"db": "x"})


def test_plotly_outputs_become_named_divs() -> None:
    nb = _sample()
    nb.cells[2].outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                execute.PLOTLY_MIME: {"data": [{"type": "bar", "y": [1]}], "layout": {}},
                "text/plain": "Figure",
            },
        )
    ]
    html = execute.plotly_to_html(nb)
    data = html.cells[2].outputs[0].data
    assert set(data) == {"text/html"}
    assert 'id="plotly-2-0"' in data["text/html"] and "Plotly.newPlot" in data["text/html"]
    assert execute.PLOTLY_MIME in nb.cells[2].outputs[0].data  # the original is untouched


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, nbformat.NotebookNode]:
    where = tmp_path_factory.mktemp("report")
    source = _write(_sample(), where / "sample.ipynb")
    out, executed = where / "out" / "sample.html", where / "out" / "sample.ipynb"
    nb = execute.report(
        source, out, parameters={"n": 7, "label": "z"}, notebook_out=executed, timeout=120
    )
    return out, executed, nb


def test_report_runs_in_this_python_with_the_parameters(ran: tuple) -> None:  # type: ignore[type-arg]
    _, executed, nb = ran
    text = nb.cells[3].outputs[0].text
    assert text.startswith("7 z ['a', 'b'] ")
    assert text.strip().endswith(sys.executable)
    written = nbformat.read(str(executed), as_version=4)
    assert written.cells[2].metadata.tags == ["injected-parameters"]
    assert written.metadata.kernelspec == execute.KERNELSPEC
    assert "version" not in written.metadata.language_info
    assert all("execution" not in c.metadata for c in written.cells)  # no timings recorded
    assert execute.PLOTLY_MIME in written.cells[3].outputs[1].data


def test_the_page_is_standalone(ran: tuple) -> None:  # type: ignore[type-arg]
    out, _, _ = ran
    html = out.read_text()
    assert not re.search(r"<script[^>]+src=", html)  # no require.js, MathJax or CDN
    assert not re.search(r"<link[^>]+href=\"https?:", html)
    assert html.count("<script") >= 3
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs()[:2000] in html  # plotly.js inline, once
    assert html.count(get_plotlyjs()[:2000]) == 1
    assert 'id="plotly-3-1"' in html
    assert "<title>sample</title>" in html


def test_cli_report_exits_1_on_a_failing_cell_and_still_writes(tmp_path: Path) -> None:
    nb = _sample()
    nb.cells.append(new_code_cell('raise ValueError("boom")'))
    source = _write(nb, tmp_path / "fails.ipynb")
    out = tmp_path / "fails.html"
    assert main(["report", str(source), "--out", str(out), "-p", "n=1", "--timeout", "120"]) == 1
    assert "boom" in out.read_text()


def test_cli_report_refuses_bad_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _write(_sample(), tmp_path / "sample.ipynb")
    assert main(["report", str(source), "--out", str(tmp_path / "x.html"), "-p", "db=x"]) == 2
    assert "unknown parameter(s) db" in capsys.readouterr().err
    assert main(["report", str(source)]) == 2
    assert "nothing to write" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "none.ipynb"), "--out", "x.html"]) == 2
    assert not (tmp_path / "x.html").exists()
