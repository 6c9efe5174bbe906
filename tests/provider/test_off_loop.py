"""Signature checks, nonce writes and store reads of the job routes run in worker threads:
on the event loop, each would stall every other request while it waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atoll import signing
from tests.helpers import Running, require_sandbox


def test_job_routes_do_their_blocking_work_off_the_event_loop(
    provider: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_sandbox()
    did = provider.dataset(tmp_path)
    c = provider.consumer
    info = c.wait(c.start(did, rawcode="print('hi')").jobId, timeout=60)

    calls: dict[str, int] = {}
    on_loop: list[str] = []

    def spy(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            try:
                asyncio.get_running_loop()
                on_loop.append(name)
            except RuntimeError:
                pass  # a worker thread: no loop runs here
            return fn(*args, **kwargs)

        return wrapper

    nonces = provider.node.context.nonces
    monkeypatch.setattr(nonces, "consume", spy("nonce", nonces.consume))
    monkeypatch.setattr(signing, "verify", spy("signature", signing.verify))
    assert provider.node.operator is not None
    store = provider.node.operator.registry.store
    monkeypatch.setattr(store, "info", spy("info", store.info))
    monkeypatch.setattr(store, "for_owner", spy("list", store.for_owner))

    assert c.status(info.jobId).jobId == info.jobId
    assert c.status(info.jobId, wait=5).jobId == info.jobId
    assert [j.jobId for j in c.jobs()] == [info.jobId]
    assert c.receipt(info.jobId).receipt.jobId == info.jobId
    assert b"hi" in b"".join(c.logs(info.jobId))

    assert set(calls) == {"nonce", "signature", "info", "list"}
    assert on_loop == []
