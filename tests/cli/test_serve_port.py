"""``atoll serve`` binds its port before the node is built: ``--port 0`` records and
advertises the port the system chose, and a port in use is one line, not a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from atoll.cli.serve import init_home
from atoll.sdk.endpoint import DEFAULT_URL, provider_url


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "ATOLL_HOME": str(home)}


def test_port_0_records_the_port_the_system_chose(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home, own_data_root=str(tmp_path / "data"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "atoll", "serve", "--port", "0"],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        url = DEFAULT_URL
        while url == DEFAULT_URL and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            url = provider_url(home)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        port = int(url.rsplit(":", 1)[1])
        assert port != 0
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home, own_data_root=str(tmp_path / "data"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "atoll", "serve", "--port", str(port)],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (home / "provider.json").exists()
