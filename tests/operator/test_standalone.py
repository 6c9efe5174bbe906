"""A provider whose Operator-Service runs on its own (``operator_url``): the paid flow, the
result and the receipt go through the signed provider → operator calls."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from atoll.config import load_settings
from atoll.errors import RemoteError
from atoll.models.status import JobStatus
from atoll.node import operator_app
from atoll.operator.client import OperatorClient
from atoll.server import BackgroundServer
from atoll.signing import Key
from tests.helpers import require_sandbox, running_provider
from tests.homes import init_home


def test_provider_with_a_standalone_operator(tmp_path: Path) -> None:
    require_sandbox()
    provider_home = tmp_path / "provider"
    provider_key, _ = init_home(provider_home)
    op_home = tmp_path / "operator"
    init_home(op_home)
    op_settings = load_settings(op_home, job_wall_seconds=20.0)
    with (
        BackgroundServer(operator_app(op_settings, {provider_key.address})) as op_url,
        running_provider(provider_home, operator_url=op_url) as p,
    ):
        assert p.node.operator is None  # no engine in the provider's process
        did = p.dataset(tmp_path, price=5)
        info = p.consumer.wait(p.consumer.start(did, rawcode="print('remote')").jobId, timeout=60)
        assert info.status == JobStatus.FINISHED, info.statusText
        assert p.consumer.result(info.jobId, 0) == b"remote\n"
        assert b"".join(p.consumer.logs(info.jobId)) == b"remote\n"
        assert p.consumer.receipt(info.jobId).receipt.jobId == info.jobId
        assert p.other.jobs() == []
    # an operator that does not list this provider refuses it; the provider reports that
    # as an upstream failure (502), not as the consumer's fault
    with BackgroundServer(operator_app(op_settings, {Key.generate().address})) as other:
        client = OperatorClient(other, provider_key)
        with pytest.raises(RemoteError, match="not allowed to use the operator") as err:
            anyio.run(client.status, info.jobId)
        assert err.value.status_code == 502


def test_the_operator_client_signs_again_after_a_stale_nonce(tmp_path: Path) -> None:
    """A provider whose clock is an hour off, or whose nonce another of its clients took,
    is told so once and signs again; a replayed request is still refused."""
    provider_key, _ = init_home(tmp_path / "provider")
    init_home(tmp_path / "operator")
    settings = load_settings(tmp_path / "operator")
    ahead = Key(provider_key.private_key, clock=lambda: time.time() + 3600)
    with BackgroundServer(operator_app(settings, {ahead.address})) as url:
        client = OperatorClient(url, ahead)

        async def calls() -> None:
            assert await client.list(ahead.address) == []
            # the clock was taken from the operator's refusal: later calls are not refused
            offset = ahead.clock_offset_us
            assert -3601 * 10**6 < offset < -3599 * 10**6
            assert await client.list(ahead.address) == []
            assert ahead.clock_offset_us == offset
            await client.aclose()

        anyio.run(calls)

        # a nonce used already: the same signed request replayed is still refused
        replayer = OperatorClient(url, provider_key)
        request = replayer._request("GET", "/compute", {"owner": provider_key.address})

        async def replay() -> tuple[int, int]:
            first = await replayer._client.send(request)
            again = await replayer._client.send(request)
            await replayer.aclose()
            return first.status_code, again.status_code

        assert anyio.run(replay) == (200, 401)
