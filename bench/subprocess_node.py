"""What the benchmarks that run a node share: a real ``atoll serve`` in a subprocess on a
loopback port, its memory, and percentiles."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import sqlalchemy as sa

from atoll.cli.serve import init_home
from atoll.server import free_port


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float], unit: float = 1000.0, suffix: str = "ms") -> str:
    if not values:
        return "(no samples)"
    return (
        f"median {statistics.median(values) * unit:8.1f} {suffix}   "
        f"p95 {pct(values, 95) * unit:8.1f} {suffix}   max {max(values) * unit:8.1f} {suffix}"
        f"   (n={len(values)})"
    )


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def disk_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with suppress(OSError):  # a file removed while counting
                total += (Path(root) / name).stat().st_size
    return total / 1e6


def add_postgres_option(parser: argparse.ArgumentParser) -> None:
    """``--postgres URL``: the benchmark's node keeps its store on that server (in a scratch
    database, see :func:`scratch_postgres`) instead of SQLite; pass it to :func:`atoll_serve`."""
    parser.add_argument(
        "--postgres",
        default="",
        metavar="URL",
        help="store in a scratch database on this PostgreSQL server (default: SQLite)",
    )


@contextmanager
def scratch_postgres(url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``url`` (which names any database
    there to connect to), dropped when the block ends."""
    name = f"atoll_bench_{os.getpid()}_{secrets.token_hex(4)}"
    admin = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def atoll_serve(
    home: Path, postgres: str = "", **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``atoll serve`` on a free loopback port; stopped with SIGTERM when the block ends.
    Yields its URL, its process and its data root (a new directory every user can get
    through: jobs run as users of their own). With ``postgres`` (a server URL), the store is
    a scratch database there."""
    with contextlib.ExitStack() as stack:
        data = Path(tempfile.mkdtemp(prefix="atoll-bench-data-"))
        stack.callback(shutil.rmtree, data, ignore_errors=True)
        data.chmod(0o755)
        env = {**env, "ATOLL_DATA_ROOTS": str(data)}
        if postgres:
            env = {**env, "ATOLL_DATABASE_URL": stack.enter_context(scratch_postgres(postgres))}
        url, server = stack.enter_context(_serve(home, env))
        yield url, server, data


@contextmanager
def _serve(home: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    init_home(home)
    port = free_port()
    # warnings only: a log line per request would be part of what is measured
    command = ["serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(
        [sys.executable, "-m", "atoll", *command],
        env={**os.environ, "ATOLL_HOME": str(home), **env},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a busy machine starts it slowly
        while True:
            try:
                httpx.get(url + "/healthz")
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.05)
        yield url, server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
