"""Test helpers: a real provider node on a loopback port, and sandbox requirements."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from atoll.config import load_settings
from atoll.engine.executor import Executor
from atoll.models.ddo import ComputePolicy, Metadata
from atoll.models.job import InputFile
from atoll.models.output_policy import OutputPolicy
from atoll.node import ProviderNode, build_provider
from atoll.sdk import ProviderClient
from atoll.server import BackgroundServer
from atoll.signing import Key
from atoll.storage.local_files import Fingerprint
from tests.homes import init_home

#: a dataset whose outputs go unchecked (open data): for tests about anything but the checks
OPEN_DATA = ComputePolicy(allowRawAlgorithm=True, outputPolicy=OutputPolicy(mode="off"))


def require_sandbox() -> None:
    """Skip where jobs cannot run isolated; fail instead when ATOLL_REQUIRE_SANDBOX=1 (CI)."""
    reason = ""
    if os.geteuid() != 0:
        reason = "the sandbox needs root for cgroups"
    elif shutil.which("bwrap") is None:
        reason = "bubblewrap is not installed"
    if reason:
        if os.environ.get("ATOLL_REQUIRE_SANDBOX") == "1":
            pytest.fail(reason + " and ATOLL_REQUIRE_SANDBOX=1")
        pytest.skip(reason)


@dataclass
class Running:
    url: str
    node: ProviderNode
    home: Path
    publisher: ProviderClient
    consumer: ProviderClient
    other: ProviderClient
    #: the provider's data root: every publisher may publish from it
    data: Path

    def data_dir(self) -> Path:
        """A new directory below the data root that a job's user can get through."""
        return public_dir(self.data)

    def dataset(
        self,
        tmp: Path | None = None,
        text: str = "a,b\n1,2\n3,4\n",
        name: str = "data",
        policy: ComputePolicy | None = None,
        files: int = 1,
        price: int = 0,
    ) -> str:
        # ``tmp`` is not where the files go: only the data root is publishable
        del tmp
        where = self.data_dir()
        paths = []
        for i in range(files):
            f = where / f"{name}-{i}.csv"
            f.write_text(text)
            f.chmod(0o644)  # whatever the umask: the jobs' user reads it
            paths.append(str(f))
        meta = Metadata(name=name, type="dataset", tags=["test"])
        ddo = self.publisher.publish(
            meta, paths, policy or ComputePolicy(allowRawAlgorithm=True), price=price
        )
        return ddo.id


def input_file(path: Path) -> InputFile:
    """A dataset file as the provider hands it to the engine: its checksum and fingerprint
    as they are now."""
    return InputFile(
        location=str(path),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        fingerprint=Fingerprint.of(path.stat()).as_list(),
    )


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes], seconds: float = 120, log: Path | None = None
) -> None:
    """Wait for an ``atoll serve`` subprocess to answer ``/healthz``; fail with what it said
    (``log``, else its stderr) if it exits or takes longer than ``seconds``."""
    deadline = time.monotonic() + seconds
    # one client for every try: making one reads the CA bundle, which would take the CPU
    # from the server that is starting
    with httpx.Client(timeout=1, trust_env=False) as http:
        while True:
            try:
                http.get(f"{url}/healthz")
                return
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    # stopped first: its stderr ends only when it does
                    proc.kill()
                    proc.wait()
                    if log is not None:
                        said = log.read_text()
                    else:
                        said = proc.stderr.read().decode() if proc.stderr else ""
                    raise AssertionError(f"the server did not start: {said}") from None
                time.sleep(0.05)


def public_dir(parent: Path | None = None) -> Path:
    """A new directory that every user can get through (jobs run as users of their own; the
    test's own tmp_path is private to root). Removed when the test run ends."""
    path = Path(tempfile.mkdtemp(prefix="atoll-data-", dir=parent))
    path.chmod(0o755)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@contextmanager
def running_provider(
    home: Path,
    chain_url: str = "",
    executor: Executor | None = None,
    extra_roots: tuple[str, ...] = (),
    **settings: Any,
) -> Iterator[Running]:
    """A provider whose data root is a new public directory (``Running.data``), and
    ``extra_roots`` too (e.g. a test's tmp_path, for algorithm files)."""
    init_home(home, chain_url)
    data = public_dir()
    defaults: dict[str, Any] = {
        "port": 0,
        "job_wall_seconds": 20.0,
        "job_memory_mb": 256,
        "data_roots": (str(data), *extra_roots),
    }
    node = build_provider(load_settings(home, **{**defaults, **settings}), executor)
    try:
        with BackgroundServer(node.app()) as url:
            clients = [
                ProviderClient(url, Key.load(home / "key")),
                ProviderClient(url, Key.generate()),
                ProviderClient(url, Key.generate()),
            ]
            for c in clients[1:]:
                c.faucet()
            try:
                yield Running(url, node, home, *clients, data)
            finally:
                for c in clients:
                    c.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)
