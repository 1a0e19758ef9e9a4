"""``kronos serve`` in a real process: a model that cannot load is one error line; a good one is served."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is not installed")


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def test_kronos_serve_command_serves_the_model_dir(model_dir, tmp_path):
    import socket

    from typer.testing import CliRunner

    from kronos.cli import (
        app,
        commands,  # noqa: F401  (registers the commands)
    )

    help_text = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "kronos-open" in help_text and "127.0.0.1" in help_text

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH")])
        ),
    )
    bad = subprocess.run(
        [sys.executable, "-m", "kronos", "serve", "--model", str(tmp_path / "nothing")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # a model that cannot load is a user error, reported as every command reports one: one line, status 2
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert bad.returncode == 2 and len(errors) == 1 and "nothing" in errors[0] and "Traceback" not in bad.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "kronos", "serve", "--model", str(model_dir), "--port", str(port), "--threads", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    proc.stdout.read() if proc.poll() is not None else "timeout"
                )
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["model"] == str(model_dir)
        assert "Plotly" in httpx.get(f"http://127.0.0.1:{port}/static/vendor/plotly.min.js", timeout=30).text[:5000]
    finally:
        proc.terminate()
        proc.wait(30)
