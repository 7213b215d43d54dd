"""Commands around the notebooks: lab, report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import options as opt


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lab = sub.add_parser(
        "lab",
        help="open JupyterLab on the notebooks, with workbench importable in every kernel",
        description=(
            "Start JupyterLab (this Python's `python -m jupyterlab`) rooted at the notebooks' "
            "folder, its python3 kernel pinned to this Python, so every notebook imports this "
            "workbench. As root (a container) it adds JupyterLab's --allow-root. Stops with "
            "Ctrl-C. Anything after -- goes to JupyterLab. "
            "Python: workbench.notebook.lab.lab()."
        ),
    )
    lab.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="folder to open (default: ./notebooks, else the repository's notebooks/)",
    )
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--port", type=opt.positive, help="port to listen on (default: JupyterLab's)")
    lab.add_argument(
        "--dry-run", action="store_true", help="print the command that would run, and exit"
    )
    lab.add_argument("extra", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    lab.set_defaults(run=_lab)

    rep = sub.add_parser(
        "report",
        help="run a notebook with parameters and write it as standalone HTML with its charts",
        description=(
            "Run NOTEBOOK top to bottom in a fresh kernel of this Python, in the notebook's "
            "folder (or --cwd), with the given parameters written after its cell tagged "
            "'parameters' (papermill's convention), and write a standalone HTML page: the "
            "outputs with every Plotly chart interactive, plotly.js embedded inline (the page "
            "loads nothing from the network). Exits 1 if a cell fails (the HTML is still "
            "written, with the error). Python: workbench.notebook.execute.report()."
        ),
        epilog=(
            "paths in parameters: a parameter named db or export, or ending in _db, _export, "
            "_path or _out, names a file; its value given with -p is made absolute from the "
            "current directory (where you run this command, not the notebook's folder or "
            "--cwd) before it is written into the notebook. Such a db, export, *_db, *_export "
            "or *_path that does not exist is an error (exit 2) before the notebook runs: "
            "except a db given together with -p export=EXPORT, which the notebook replays "
            "into it. Without -p db the notebook keeps its own default (the bundled sample, "
            "replayed into out/notebooks/ on first run); the defaults in the notebook are "
            "relative to its folder."
        ),
    )
    rep.add_argument("notebook", metavar="NOTEBOOK", type=Path, help="the .ipynb file to run")
    rep.add_argument("--out", type=Path, metavar="FILE.html", help="the HTML page to write")
    rep.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter, repeatable; VALUE is a Python literal (3, 0.5, None, "
        "\"['a', 'b']\") or else a string (e.g. -p db=out/other.duckdb: paths are from the "
        "current directory, see below)",
    )
    rep.add_argument(
        "--notebook-out",
        type=Path,
        metavar="FILE.ipynb",
        help="also write the executed notebook (it may be NOTEBOOK itself, to refresh its outputs)",
    )
    rep.add_argument(
        "--cwd",
        type=Path,
        metavar="DIR",
        help="the kernel's working directory (default: the notebook's folder)",
    )
    rep.add_argument("--no-input", action="store_true", help="leave the code out of the HTML")
    rep.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="longest a cell may run (default 600)",
    )

    rep.set_defaults(run=_report)


def _lab(args: argparse.Namespace) -> int:
    from ..notebook import lab

    root = args.dir
    if root is None:
        root = Path("notebooks") if Path("notebooks").is_dir() else lab.NOTEBOOKS
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    extra = [a for a in args.extra if a != "--"]
    if args.dry_run:
        cmd = lab.command(root.resolve(), no_browser=args.no_browser, port=args.port, extra=extra)
        print(" ".join(cmd))
        return 0
    return lab.lab(root, no_browser=args.no_browser, port=args.port, extra=extra)


def _report(args: argparse.Namespace) -> int:
    from nbclient.exceptions import CellExecutionError

    from ..notebook import execute

    if args.out is None and args.notebook_out is None:
        raise ValueError("nothing to write: give --out FILE.html and/or --notebook-out FILE.ipynb")
    parameters = dict(execute.parse_assignment(p) for p in args.parameter)
    try:
        execute.report(
            args.notebook,
            args.out,
            parameters=parameters,
            notebook_out=args.notebook_out,
            cwd=args.cwd,
            no_input=args.no_input,
            timeout=args.timeout,
        )
    except CellExecutionError as exc:
        print(f"workbench report: a cell failed:\n{exc}", file=sys.stderr)
        return 1
    for path in (args.out, args.notebook_out):
        if path is not None:
            print(f"wrote {path}")
    return 0
