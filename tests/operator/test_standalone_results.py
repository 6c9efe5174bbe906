"""A standalone Operator-Service keeps results and their storage time itself: its own sweeper
deletes them, and the provider answers the consumer 410 as the operator does; an operator whose
node is full says so (503) when the provider quotes a job, before the consumer pays."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from atoll.config import load_settings
from atoll.errors import Gone, Unavailable
from atoll.models.environment import Environment
from atoll.models.status import JobStatus
from atoll.node import operator_app
from atoll.server import BackgroundServer
from tests.helpers import OPEN_DATA, require_sandbox, running_provider
from tests.homes import init_home


def test_a_standalone_operator_expires_results_and_refuses_jobs_when_full(
    tmp_path: Path,
) -> None:
    require_sandbox()
    provider_home = tmp_path / "provider"
    provider_key, _ = init_home(provider_home)
    op_home = tmp_path / "operator"
    init_home(op_home)
    env = Environment(id="default", storage_expiry=1, max_duration=20)
    op_settings = load_settings(op_home, environments=(env,), results_sweep_seconds=0.1)
    with (
        BackgroundServer(operator_app(op_settings, {provider_key.address})) as op_url,
        running_provider(provider_home, operator_url=op_url) as p,
    ):
        did = p.dataset(tmp_path, policy=OPEN_DATA)
        c = p.consumer
        info = c.wait(c.start(did, rawcode="print('remote')").jobId, timeout=60)
        assert info.status == JobStatus.FINISHED, info.statusText
        deadline = time.monotonic() + 60
        while not c.status(info.jobId).resultsExpired:
            assert time.monotonic() < deadline, "the operator never swept"
            time.sleep(0.1)
        with pytest.raises(Gone):
            c.result(info.jobId, 0)
        assert c.receipt(info.jobId).receipt.jobId == info.jobId

    full = load_settings(op_home, results_node_disk_mb=1)
    with (
        BackgroundServer(operator_app(full, {provider_key.address})) as op_url,
        running_provider(provider_home, operator_url=op_url) as p,
    ):
        did = p.dataset(tmp_path, name="other", policy=OPEN_DATA, price=5)
        balances = p.consumer.wallet.balances()
        with pytest.raises(Unavailable, match="storage is full"):
            p.consumer.start(did, rawcode="print('remote')")
        assert p.consumer.wallet.balances() == balances
