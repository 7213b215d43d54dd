"""``workbench report``: run a notebook with parameters and write it as a standalone HTML page.

Parameters follow papermill's convention: the notebook's cell tagged ``parameters`` holds the
defaults as plain assignments, and the values given are written into a new cell tagged
``injected-parameters`` right after it, so they override the defaults and the notebook says
what it was run with. The notebook runs top to bottom in a kernel of this Python (the one
``workbench`` is installed in), in the notebook's folder unless told otherwise; parameters that
name files are made absolute from the caller's current directory first, and a database or
export that does not exist is refused before the kernel starts (:mod:`.path_parameters`).

The kernel talks to this process over Unix sockets in a private temporary folder (ZeroMQ's
``ipc`` transport), not TCP on localhost: nothing else on the machine can connect to it, and
ipykernel has no reason to warn that the kernel "is running over TCP without encryption".

The HTML is nbconvert's ``lab`` page with every Plotly figure (the plotly mimetype the
notebooks display) turned into a ``<div>`` drawn by plotly.js, which is embedded once, inline:
the page loads nothing from the network (no require.js, MathJax or CDN), so it opens offline
and can be mailed as one file.
"""

from __future__ import annotations

import ast
import copy
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat

#: The plotly mimetype (what the notebooks' figures display as).
PLOTLY_MIME = "application/vnd.plotly.v1+json"

#: The tag of the cell holding a notebook's parameters, and of the cell written after it.
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"

#: The kernel name that means "a Python kernel of this very interpreter".
HERE_KERNEL = "workbench-here"

TEMPLATES = Path(__file__).parent / "templates"


class ParameterError(ValueError):
    """A parameter the notebook does not declare, or a notebook without a parameters cell."""


def read(path: str | Path) -> nbformat.NotebookNode:
    nb: nbformat.NotebookNode = nbformat.read(str(path), as_version=4)
    return nb


def _tags(cell: Mapping[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def parameters_cell(nb: nbformat.NotebookNode) -> int:
    """The index of the cell tagged ``parameters``."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and PARAMETERS_TAG in _tags(cell):
            return i
    raise ParameterError("the notebook has no code cell tagged 'parameters'")


def declared(nb: nbformat.NotebookNode) -> dict[str, str]:
    """The parameters a notebook declares: each name assigned in its parameters cell, with the
    source text of its default value."""
    source = nb.cells[parameters_cell(nb)].source
    out: dict[str, str] = {}
    for node in ast.parse(source).body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for t in targets:
            if isinstance(t, ast.Name) and value is not None:
                out[t.id] = ast.get_source_segment(source, value) or ""
    return out


def parse_value(text: str) -> Any:
    """A parameter value from the command line: a Python literal (``3``, ``0.5``, ``None``,
    ``True``, ``['a', 'b']``, ``'quoted'``) when it is one, else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_assignment(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` → ``(NAME, parse_value(VALUE))``."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ParameterError(f"a parameter is NAME=VALUE, got {text!r}")
    return name, parse_value(value)


def inject(nb: nbformat.NotebookNode, parameters: Mapping[str, Any]) -> nbformat.NotebookNode:
    """A copy of ``nb`` with ``parameters`` written into a cell tagged ``injected-parameters``
    right after its parameters cell (replacing one injected before). Every name must be
    declared by the parameters cell."""
    known = declared(nb)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)}; the notebook declares: "
            f"{', '.join(known) or 'none'}"
        )
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if INJECTED_TAG not in _tags(c)]
    if not parameters:
        return out
    at = parameters_cell(out)
    lines = ["# Parameters given to this run"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    cell["id"] = INJECTED_TAG
    out.cells.insert(at + 1, cell)
    return out


def _kernel_manager(private: Path) -> Any:
    """A kernel manager whose kernel is this interpreter running ipykernel (never a kernelspec
    of the same name installed elsewhere on the machine), connected over Unix sockets in the
    folder ``private`` where ZeroMQ has them and their path fits (else TCP on localhost, as
    Jupyter does)."""
    import ipykernel.kernelspec
    import zmq
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    class HereSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> Any:
            if kernel_name == HERE_KERNEL:
                return self.kernel_spec_class(
                    resource_dir=ipykernel.kernelspec.RESOURCES,
                    **ipykernel.kernelspec.get_kernel_dict(),
                )
            return super().get_kernel_spec(kernel_name)

    from .lab import SOCKET_PATH_MAX

    transport: dict[str, str] = {}
    # Absolute socket paths (the kernel binds them from the notebook's folder, this process
    # connects from its own: a relative name would be two different files), if they fit.
    if zmq.has("ipc") and len(os.fsencode(private / "kernel-99")) <= SOCKET_PATH_MAX:
        transport = {
            "transport": "ipc",
            "ip": str(private / "kernel"),
            "connection_file": str(private / "kernel.json"),
        }
    return KernelManager(kernel_name=HERE_KERNEL, kernel_spec_manager=HereSpecs(), **transport)


def execute(
    nb: nbformat.NotebookNode, cwd: str | Path, *, timeout: float | None = 600
) -> nbformat.NotebookNode:
    """Run ``nb`` top to bottom in a fresh kernel of this Python with working directory
    ``cwd``, stopped when done; its outputs are filled in place (also up to a failing cell:
    nbclient's ``CellExecutionError`` is raised after it). No timing metadata is recorded."""
    from nbclient import NotebookClient

    # Short, private (mode 0700) and removed afterwards: the kernel's sockets and connection file.
    with tempfile.TemporaryDirectory(prefix="workbench-kernel-") as private:
        client = NotebookClient(
            nb,
            km=_kernel_manager(Path(private)),
            timeout=timeout,
            record_timing=False,
            resources={"metadata": {"path": str(cwd)}},
        )
        # nbclient leaves a kernel it did not create running; this one is ours to stop, now
        # (else it lives until this process exits, then complains on stderr that it was left).
        client.execute(cleanup_kc=True)
    return nb


#: The kernel a notebook names in its metadata (Jupyter's default Python kernel).
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Metadata that does not depend on the machine that ran ``nb``: the default Python
    kernelspec, and the language without its version."""
    info = {
        k: v
        for k, v in nb.metadata.get("language_info", {}).items()
        if k in ("name", "file_extension", "mimetype", "nbconvert_exporter", "pygments_lexer")
    }
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = info or {"name": "python"}
    return nb


def plotly_to_html(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` where every plotly-mimetype output is a ``text/html`` ``<div>`` drawn by
    plotly.js (not included: the page carries it once). The divs are named by cell and output
    (``plotly-C-O``), so the same notebook gives the same page."""
    import plotly.io as pio

    out = copy.deepcopy(nb)
    for c, cell in enumerate(out.cells):
        for o, output in enumerate(cell.get("outputs", [])):
            data = output.get("data", {})
            if PLOTLY_MIME not in data:
                continue
            fig = dict(data.pop(PLOTLY_MIME))
            config = fig.pop("config", None) or {}
            data["text/html"] = pio.to_html(
                fig,
                config={"responsive": True, **config},
                include_plotlyjs=False,
                full_html=False,
                div_id=f"plotly-{c}-{o}",
                validate=False,
                default_width="100%",
            )
            data.pop("text/plain", None)
    return out


def to_html(nb: nbformat.NotebookNode, *, name: str = "report", no_input: bool = False) -> str:
    """The notebook as one standalone HTML page (see the module doc), titled by the notebook's
    ``title`` metadata or else ``name``."""
    from nbconvert import HTMLExporter
    from plotly.offline import get_plotlyjs

    exporter = HTMLExporter(
        template_name="workbench_report",
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=no_input,
        exclude_input_prompt=no_input,
        exclude_output_prompt=no_input,
    )
    body, _ = exporter.from_notebook_node(
        plotly_to_html(nb), resources={"plotly_js": get_plotlyjs(), "metadata": {"name": name}}
    )
    return str(body)


def report(
    notebook: str | Path,
    out: str | Path | None = None,
    *,
    parameters: Mapping[str, Any] | None = None,
    notebook_out: str | Path | None = None,
    cwd: str | Path | None = None,
    no_input: bool = False,
    timeout: float | None = 600,
) -> nbformat.NotebookNode:
    """Run ``notebook`` with ``parameters`` (in ``cwd``, default the notebook's folder) and
    write the HTML page to ``out`` and/or the executed notebook to ``notebook_out``. When a
    cell fails, both are still written (up to the failing cell, with its traceback) and the
    error is raised.

    Parameters naming files (``db``, ``export``, ``*_db``, ``*_export``, ``*_path``, ``*_out``)
    are made absolute from the current directory, not ``cwd``; a database or export among them
    that does not exist raises :class:`FileNotFoundError` before the kernel starts
    (:mod:`.path_parameters`)."""
    from .path_parameters import resolve

    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such notebook")
    source = read(path)
    nb = inject(source, resolve(parameters or {}, declared(source)))
    where = Path(cwd) if cwd is not None else path.resolve().parent
    try:
        execute(nb, where, timeout=timeout)
    finally:
        if notebook_out is not None:
            Path(notebook_out).parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(tidy(nb), str(notebook_out))
        if out is not None:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            html = to_html(nb, name=path.stem, no_input=no_input)
            Path(out).write_text(html, encoding="utf-8")
    return nb
