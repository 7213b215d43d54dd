"""``workbench lab``: the command it runs, the kernel it pins, and a real server that serves the
notebooks with a python3 kernel of this interpreter (started, queried, stopped)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

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


IPC = "--KernelManager.transport=ipc"


def test_dry_run_prints_the_command_with_kernels_on_unix_sockets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", "/tmp/wb-runtime")  # short: room for sockets
    assert main(["lab", "--dry-run"]) == 0
    cmd = capsys.readouterr().out.split()
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert cmd[3] == f"--ServerApp.root_dir={lab.NOTEBOOKS}"
    root = ["--allow-root"] if os.geteuid() == 0 else []
    assert cmd[4:] == [IPC, *root]
    argv = ["lab", "--dry-run", "--no-browser", "--port", "8899", "--", "--ServerApp.ip=x"]
    assert main(argv) == 0
    assert capsys.readouterr().out.split()[4:] == [
        IPC,
        *root,
        "--no-browser",
        "--port=8899",
        "--ServerApp.ip=x",
    ]
    # Kernels stay on TCP where a socket path would be longer than the system takes (every
    # kernel would fail to start), and when told so (Jupyter refuses the option twice).
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", "/tmp/" + "x" * 60)
    assert main(["lab", "--dry-run"]) == 0
    assert IPC not in capsys.readouterr().out.split()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", "/tmp/wb-runtime")
    assert main(["lab", "--dry-run", "--", "--KernelManager.transport=tcp"]) == 0
    assert capsys.readouterr().out.split()[4:] == [*root, "--KernelManager.transport=tcp"]


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


def _post(url: str) -> object:
    request = urllib.request.Request(
        url, data=b'{"name": "python3"}', headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read())


async def _kernel_info(ws: str, kernel_id: str, token: str) -> dict[str, Any]:
    """The kernel's answer to ``kernel_info_request`` over the server's websocket, as JupyterLab
    asks it: once it answers, it has set up its sockets (and said whatever it says then)."""
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(f"{ws}/api/kernels/{kernel_id}/channels?token={token}")
    try:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": "kernel_info_request", "version": "5.3"}
        header |= {"username": "test", "session": uuid.uuid4().hex}
        request = {"header": header, "parent_header": {}, "metadata": {}, "content": {}}
        await conn.write_message(json.dumps({**request, "channel": "shell"}))
        while True:
            text = await asyncio.wait_for(conn.read_message(), timeout=60)
            assert text is not None, "the server closed the kernel's websocket"
            msg = json.loads(text)
            if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["channel"] == "shell":
                return dict(msg["content"])
    finally:
        conn.close()


@pytest.mark.slow
def test_lab_serves_the_notebooks_with_this_python(tmp_path: Path) -> None:
    port, token = _free_port(), "workbench-test"
    # A short runtime folder (the kernels' sockets live there), as ~/.local/share/jupyter is.
    runtime = Path(tempfile.mkdtemp(prefix="wb-", dir="/tmp"))
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
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
        # A kernel starts, and says nothing alarming (it used to warn that it "is running over
        # TCP without encryption"); then it is shut down through the API, as JupyterLab does.
        kernel_id = _post(f"{base}/kernels?token={token}")["id"]  # type: ignore[index]
        info = asyncio.run(_kernel_info(f"ws://127.0.0.1:{port}", kernel_id, token))
        assert info["status"] == "ok" and info["language_info"]["name"] == "python"
        url = f"{base}/kernels/{kernel_id}?token={token}"
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=30).close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if it hangs
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(runtime, ignore_errors=True)
    log = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "Kernel started" in log
    assert "WARNING" not in log and "without encryption" not in log, log[-3000:]
