"""``workbench lab``: the command it runs, the kernel it pins, and a real server that serves the
notebooks with a python3 kernel of this interpreter (started, queried, stopped)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.notebook import lab

NOTEBOOKS = {
    "quickstart.ipynb",
    "payout_reconciliation.ipynb",
    "trader_ratings.ipynb",
    "assignment_policies.ipynb",
}


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["lab", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--no-browser" in out and "--dry-run" in out and "JupyterLab" in out


def test_dry_run_prints_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "--dry-run"]) == 0
    cmd = capsys.readouterr().out.split()
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert cmd[3] == f"--ServerApp.root_dir={lab.NOTEBOOKS}"
    root = ["--allow-root"] if os.geteuid() == 0 else []
    assert cmd[4:] == root
    argv = ["lab", "--dry-run", "--no-browser", "--port", "8899", "--", "--ServerApp.ip=x"]
    assert main(argv) == 0
    assert capsys.readouterr().out.split()[4:] == [
        *root,
        "--no-browser",
        "--port=8899",
        "--ServerApp.ip=x",
    ]


def test_a_missing_folder_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "--dir", str(tmp_path / "none"), "--dry-run"]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_the_kernel_is_this_python(tmp_path: Path) -> None:
    spec = json.loads((lab.write_kernel(tmp_path) / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    assert spec["argv"][1:3] == ["-m", "ipykernel_launcher"]
    assert spec["env"] == {"WORKBENCH_INTERACTIVE": "1"}  # tables sortable and filterable there
    env = lab.environment(tmp_path, {"JUPYTER_PATH": "/elsewhere"})
    assert env["JUPYTER_PATH"] == os.pathsep.join([str(tmp_path), "/elsewhere"])
    assert lab.environment(tmp_path, {})["JUPYTER_PATH"] == str(tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_lab_serves_the_notebooks_with_this_python(tmp_path: Path) -> None:
    port, token = _free_port(), "workbench-test"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    script = Path(sys.executable).with_name("workbench")
    cmd = [str(script), "lab", "--no-browser", "--port", str(port), "--"]
    cmd += [f"--IdentityProvider.token={token}", "--ServerApp.ip=127.0.0.1"]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                contents = _get(f"{base}/contents?token={token}")
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
                time.sleep(0.5)
        names = {item["name"] for item in contents["content"]}  # type: ignore[index]
        assert names >= NOTEBOOKS
        specs = _get(f"{base}/kernelspecs?token={token}")
        python3 = specs["kernelspecs"]["python3"]["spec"]  # type: ignore[index]
        assert python3["argv"][0] == sys.executable  # the notebooks' kernel is this Python
        assert python3["display_name"] == "Python 3 (workbench)"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if it hangs
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
