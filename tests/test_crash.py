"""Crash safety: ``kill -9`` of a real ``atoll serve`` with jobs finished, running and queued;
after a restart every job ends (re-run, or failed with a clear statusText), nothing of the
killed job keeps running, and finished results are intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from atoll.models.ddo import ComputePolicy, Metadata
from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient
from atoll.server import free_port
from atoll.signing import Key
from tests.helpers import public_dir, require_sandbox, wait_healthy
from tests.homes import init_home

#: names the running job's process; of this test process alone, so that a crash test running
#: beside it (``pytest -n``) is not taken for a survivor
MARKER = f"crash-test-marker-{uuid.uuid4().hex}"


@contextmanager
def server(home: Path, port: int, attempts: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "ATOLL_HOME": str(home),
        "ATOLL_MAX_CONCURRENT_JOBS": "1",
        "ATOLL_MAX_ATTEMPTS": str(attempts),
        "ATOLL_JOB_WALL_SECONDS": "30",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "atoll", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_healthy(f"http://127.0.0.1:{port}", proc)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def marker_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if MARKER.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("attempts", [1, 2])
def test_kill_9_and_restart(tmp_path: Path, attempts: int) -> None:
    require_sandbox()
    home = tmp_path / "home"
    where = public_dir()
    init_home(home, own_data_root=str(where))
    port = free_port()
    data = where / "d.csv"
    data.write_text("x\n")
    # the running job sleeps in a child named after the marker, so a survivor would show
    slow = (
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', 'import time; time.sleep(4)', '{MARKER}'])\n"
        "print('slow done')\n"
    )
    with server(home, port, attempts) as proc:
        c = ProviderClient(f"http://127.0.0.1:{port}", Key.load(home / "key"))
        did = c.publish(
            Metadata(name="d", type="dataset"), [str(data)], ComputePolicy(allowRawAlgorithm=True)
        ).id
        done = c.wait(c.start(did, rawcode="print('first')").jobId, timeout=60)
        assert done.status == JobStatus.FINISHED
        running = c.start(did, rawcode=slow)
        while running.status != JobStatus.RUNNING:
            running = c.status(running.jobId, wait=30, since=running.status)
        queued = c.start(did, rawcode="print('queued ran')")
        assert c.status(queued.jobId).status == JobStatus.QUEUED
        deadline = time.monotonic() + 10
        while not marker_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker_processes(), "the running job's process never appeared"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        c.close()

    with server(home, port, attempts):
        c = ProviderClient(f"http://127.0.0.1:{port}", Key.load(home / "key"))
        after = c.status(running.jobId)
        if attempts == 1:
            assert after.status == JobStatus.INTERRUPTED
            assert "restart" in after.statusText
            assert not marker_processes()
        else:
            after = c.wait(running.jobId, timeout=60)
            assert after.status == JobStatus.FINISHED
            assert c.result(running.jobId, 0) == b"slow done\n"
        q = c.wait(queued.jobId, timeout=60)
        assert q.status == JobStatus.FINISHED
        assert c.result(queued.jobId, 0) == b"queued ran\n"
        first = c.status(done.jobId)
        assert first.results == done.results
        assert c.result(done.jobId, 0) == b"first\n"
        assert all(j.terminal for j in c.jobs())
        c.close()


def test_chain_state_and_keeper_cursor_survive_kill_9(tmp_path: Path) -> None:
    """Agreements, balances and the keeper's cursor survive ``kill -9`` on the embedded
    chain, and a job ordered before the crash runs after it (and is paid for once)."""
    require_sandbox()
    from atoll.chain.ledger import AgreementLedger
    from atoll.chain.records import ConditionState
    from atoll.config import load_settings
    from atoll.db import connect

    home = tmp_path / "home"
    where = public_dir()
    init_home(home, own_data_root=str(where))
    port = free_port()
    data = where / "d.csv"
    data.write_text("x\n")
    ledger = AgreementLedger(connect(load_settings(home).db_url))
    consumer_key = Key.generate()
    url = f"http://127.0.0.1:{port}"
    with server(home, port, attempts=1) as proc:
        pub = ProviderClient(url, Key.load(home / "key"))
        con = ProviderClient(url, consumer_key)
        con.faucet()
        did = pub.publish(
            Metadata(name="d", type="dataset"),
            [str(data)],
            ComputePolicy(allowRawAlgorithm=True),
            price=2 * 10**18,
        ).id
        agreement = con.order(did)
        deadline = time.monotonic() + 20
        while ledger.get(agreement) is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the keeper learns the agreement from the chain's events
        assert ledger.get(agreement) is not None
        cursor = ledger.cursor()
        balances = (pub.wallet.balances(), con.wallet.balances())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        pub.close()
        con.close()

    with server(home, port, attempts=1):
        pub = ProviderClient(url, Key.load(home / "key"))
        con = ProviderClient(url, consumer_key)
        assert (pub.wallet.balances(), con.wallet.balances()) == balances
        assert cursor is not None and (ledger.cursor() or 0) >= cursor
        row = ledger.get(agreement)
        assert row is not None and row.used == 0
        info = con.wait(
            con.start(did, rawcode="print('after')", agreement_id=agreement).jobId, timeout=60
        )
        assert info.status == JobStatus.FINISHED
        settled = con.wallet.wait_settled(agreement)
        assert settled.compute.state is ConditionState.FULFILLED
        assert pub.wallet.balances()["tokens"] == balances[0]["tokens"] + 2 * 10**18
        pub.close()
        con.close()
