"""``workbench lab``: JupyterLab on ``notebooks/``, its kernels running this Python.

The server runs as ``python -m jupyterlab`` with this interpreter, rooted at the notebooks'
folder. Its ``python3`` kernel is pinned to this interpreter too: a kernelspec of that name is
written to a private directory put first on ``JUPYTER_PATH``, so a ``python3`` kernel installed
elsewhere on the machine (``~/.local/share/jupyter``) cannot stand in for it, and every
notebook imports the ``workbench`` this command belongs to.

Its kernels talk to the server over Unix sockets beside their connection files (ZeroMQ's ``ipc``
transport) rather than TCP on localhost, which other users of the machine could reach and which
makes every kernel print that it "is running over TCP without encryption"; where the sockets'
path would be too long for the system (a deep ``JUPYTER_RUNTIME_DIR``), Jupyter's TCP stays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

#: The repository's notebooks (beside the package in a source checkout).
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

#: The kernel the notebooks name in their metadata.
KERNEL_NAME = "python3"

#: The longest Unix socket path we create (the system's limit is 107 bytes on Linux, 103 on
#: macOS), and what a kernel's socket adds to the runtime folder: /kernel-UUID-ipc-N.
SOCKET_PATH_MAX = 100
SOCKET_NAME_LENGTH = len("/kernel-") + 36 + len("-ipc-") + 1


def kernel_spec() -> dict[str, object]:
    """The ``python3`` kernelspec of this interpreter; its kernels show tables interactive
    (sortable, filterable: ``WORKBENCH_INTERACTIVE=1``, see :mod:`.tables`), which reports and
    the notebooks' checked runs, started otherwise, do not."""
    from ipykernel.kernelspec import get_kernel_dict

    from .tables import INTERACTIVE_ENV

    spec: dict[str, object] = dict(get_kernel_dict())
    spec["display_name"] = "Python 3 (workbench)"
    spec["env"] = {INTERACTIVE_ENV: "1"}
    return spec


def write_kernel(jupyter_dir: Path) -> Path:
    """Write :func:`kernel_spec` as ``kernels/python3/kernel.json`` under ``jupyter_dir``."""
    where = jupyter_dir / "kernels" / KERNEL_NAME
    where.mkdir(parents=True, exist_ok=True)
    (where / "kernel.json").write_text(json.dumps(kernel_spec(), indent=1) + "\n")
    return where


def kernel_transport(runtime_dir: str | Path | None = None) -> list[str]:
    """The option that puts the kernels on Unix sockets in ``runtime_dir`` (default: Jupyter's
    runtime folder, where their connection files go), or nothing where ZeroMQ has no such
    transport or the sockets' path would be too long."""
    import zmq
    from jupyter_core.paths import jupyter_runtime_dir

    where = os.fsencode(Path(runtime_dir or jupyter_runtime_dir()).absolute())
    if not zmq.has("ipc") or len(where) + SOCKET_NAME_LENGTH > SOCKET_PATH_MAX:
        return []
    return ["--KernelManager.transport=ipc"]


def command(
    root: Path,
    *,
    no_browser: bool = False,
    port: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command line that starts JupyterLab rooted at ``root`` (as root, e.g. in a container,
    with ``--allow-root``, which JupyterLab otherwise demands), its kernels on Unix sockets
    (:func:`kernel_transport`) unless ``extra`` says which transport (Jupyter refuses two)."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}"]
    if not any(a.startswith("--KernelManager.transport") for a in extra):
        cmd.extend(kernel_transport())
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    if no_browser:
        cmd.append("--no-browser")
    if port is not None:
        cmd.append(f"--port={port}")
    cmd.extend(extra)
    return cmd


def environment(jupyter_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``jupyter_dir`` first on
    ``JUPYTER_PATH``."""
    env = dict(os.environ if base is None else base)
    rest = env.get("JUPYTER_PATH")
    env["JUPYTER_PATH"] = os.pathsep.join([str(jupyter_dir), *([rest] if rest else [])])
    return env


def lab(
    root: str | Path = NOTEBOOKS,
    *,
    no_browser: bool = False,
    port: int | None = None,
    extra: Sequence[str] = (),
) -> int:
    """Run JupyterLab on ``root`` until it stops; returns its exit code."""
    folder = Path(root).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    with tempfile.TemporaryDirectory(prefix="workbench-jupyter-") as tmp:
        write_kernel(Path(tmp))
        cmd = command(folder, no_browser=no_browser, port=port, extra=extra)
        try:
            return subprocess.call(cmd, env=environment(Path(tmp)))
        except KeyboardInterrupt:  # pragma: no cover - the server stops on Ctrl-C
            return 0
