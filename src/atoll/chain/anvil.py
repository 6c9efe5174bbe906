"""Start and stop a local anvil node (npm ``@foundry-rs/anvil``) for tests and benchmarks.

The binary is ``$ATOLL_ANVIL`` if set, else ``anvil`` on ``PATH``. The node
listens on a free loopback port, with anvil's default development accounts (the
same keys as :func:`atoll.chain.base.dev_accounts`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

from .errors import ChainUnavailable


def find_anvil() -> str | None:
    """Path of the anvil executable, or None when it is not installed."""
    configured = os.environ.get("ATOLL_ANVIL")
    if configured:
        return configured if os.access(configured, os.X_OK) else shutil.which(configured)
    return shutil.which("anvil")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Anvil:
    """An anvil process on a loopback port: ``with Anvil() as node: node.url``."""

    def __init__(
        self,
        binary: str | None = None,
        *,
        host: str = "127.0.0.1",
        chain_id: int = 31337,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        found = binary or find_anvil()
        if found is None:
            raise ChainUnavailable("anvil is not installed (npm install -g @foundry-rs/anvil)")
        self.binary = found
        self.host = host
        self.chain_id = chain_id
        self.extra_args = extra_args
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        """Start the node and wait until it answers; returns its URL."""
        last_error = ""
        for _attempt in range(3):  # another process may take the port first
            self.port = _free_port(self.host)
            cmd = [
                self.binary,
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--chain-id",
                str(self.chain_id),
                "--quiet",
                *self.extra_args,
            ]
            self.proc = subprocess.Popen(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read() if self.proc.stderr else b""
                    last_error = err.decode(errors="replace").strip()
                    break
                if self._answers():
                    return self.url
                time.sleep(0.05)
            else:
                self.stop()
                raise ChainUnavailable(f"anvil did not answer on {self.url} in {timeout}s")
            self.proc = None
        raise ChainUnavailable(f"anvil failed to start: {last_error}")

    def _answers(self) -> bool:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        req = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=1.0) as resp:
                return bool(json.loads(resp.read()).get("result"))
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the node (its whole process group: the npm wrapper and anvil)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        finally:
            if proc.stderr is not None:
                proc.stderr.close()

    def __enter__(self) -> Anvil:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
