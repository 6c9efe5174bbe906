"""One key, many clients: concurrent requests, a wrong clock, a long-poll beside other calls,
and what must still be refused (replays, a nonce reused on another route, a signature moved
to another job). Over real HTTP against a provider on a loopback port."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from atoll import signing
from atoll.errors import AuthError
from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient
from atoll.signing import Key
from tests.helpers import Running, require_sandbox

HOUR = 3600.0


def same_key(key: Key, clock: Any = time.time) -> Key:
    """Another process's copy of ``key``: its own nonce source, maybe its own clock."""
    return Key(key.private_key, clock=clock)


def status_params(key: Key, job_id: str, nonce: int, route: str = "status") -> dict[str, Any]:
    text = signing.message(route, key.address, job_id, nonce)
    return {
        "consumerAddress": key.address,
        "nonce": nonce,
        "signature": key.sign(text),
        "jobId": job_id,
    }


def test_three_clients_on_one_key_send_at_once_and_none_is_refused(provider: Running) -> None:
    key = provider.consumer.key
    clients = [ProviderClient(provider.url, same_key(key)) for _ in range(3)]
    refused: list[str] = []

    def hundred(client: ProviderClient) -> int:
        done = 0
        for _ in range(100):
            try:
                assert client.jobs() == []
                done += 1
            except AuthError as exc:
                refused.append(exc.message)
        return done

    try:
        with ThreadPoolExecutor(3) as pool:
            done = sum(pool.map(hundred, clients))
    finally:
        for c in clients:
            c.close()
    assert refused == [] and done == 300


def test_one_client_sends_from_many_threads_at_once(provider: Running) -> None:
    # no per-key serialisation in the client: its requests overlap, and all are accepted
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: provider.consumer.jobs(), range(64)))
    assert answers == [[]] * 64


def test_a_clock_an_hour_ahead_does_not_lock_the_address_out(provider: Running) -> None:
    key = provider.consumer.key
    url = provider.url + "/api/services/compute"
    ahead = same_key(key, clock=lambda: time.time() + HOUR)
    r = httpx.get(url, params=status_params(ahead, "", ahead.next_nonce()))
    assert r.status_code == 401
    assert signing.is_stale_nonce(r.json()["error"]) and "clock" in r.json()["error"]
    # the right clock is still accepted, at once
    right = same_key(key)
    r = httpx.get(url, params=status_params(right, "", right.next_nonce()))
    assert r.status_code == 200, r.text
    # and the client with the wrong clock gets through too: it adopts the provider's clock
    # after one refusal, and keeps it
    with ProviderClient(provider.url, same_key(key, clock=lambda: time.time() + HOUR)) as c:
        assert c.jobs() == []
        assert c.jobs() == []
        assert abs(c._key().clock_offset_us + HOUR * 1_000_000) < 60 * 1_000_000
    with ProviderClient(provider.url, same_key(key, clock=lambda: time.time() - HOUR)) as c:
        assert c.jobs() == []


def test_replays_other_routes_and_other_jobs_are_still_refused(
    provider: Running, tmp_path: Path
) -> None:
    require_sandbox()
    did = provider.dataset(tmp_path)
    mine = provider.consumer.start(did, rawcode="pass").jobId
    second = provider.consumer.start(did, rawcode="pass").jobId
    key = provider.consumer.key
    url = provider.url + "/api/services/compute"

    params = status_params(key, mine, key.next_nonce())
    assert httpx.get(url, params=params).status_code == 200
    replay = httpx.get(url, params=params)
    assert replay.status_code == 401 and "already used" in replay.json()["error"]

    # the same nonce, properly signed for another route: the nonce is spent for every route
    nonce = key.next_nonce()
    assert httpx.get(url, params=status_params(key, mine, nonce)).status_code == 200
    receipt = status_params(key, mine, nonce, route="receipt")
    r = httpx.get(provider.url + "/api/services/computeReceipt", params=receipt)
    assert r.status_code == 401 and "already used" in r.json()["error"]
    # a status signature presented to another route does not verify there
    moved = status_params(key, mine, key.next_nonce())
    r = httpx.get(provider.url + "/api/services/computeReceipt", params=moved)
    assert r.status_code == 401 and "does not match" in r.json()["error"]
    # a signature made for one job, moved to another
    moved = {**status_params(key, mine, key.next_nonce()), "jobId": second}
    r = httpx.get(url, params=moved)
    assert r.status_code == 401 and "does not match" in r.json()["error"]


def test_one_key_long_polls_while_it_sends_other_requests(
    provider: Running, tmp_path: Path
) -> None:
    require_sandbox()
    did = provider.dataset(tmp_path)
    c = provider.consumer
    info = c.start(did, rawcode="import time\ntime.sleep(60)")
    while info.status != JobStatus.RUNNING and not info.terminal:
        info = c.status(info.jobId, wait=30, since=info.status)
    assert info.status == JobStatus.RUNNING
    waited: list[JobStatus] = []
    poll = threading.Thread(
        target=lambda: waited.append(c.status(info.jobId, wait=15, since=info.status).status)
    )
    poll.start()
    notifier = provider.node.operator.registry.notifier  # type: ignore[union-attr]
    for _ in range(300):  # until the long-poll waits beside the provider's own watcher
        if len(notifier._listeners.get(info.jobId, ())) >= 2:
            break
        time.sleep(0.05)
    try:
        # these go while the long-poll holds its request open on the same key and client;
        # the job sleeps past the long-poll, so the poll can only have ended by timing out
        for _ in range(5):
            assert [j.jobId for j in c.jobs()] == [info.jobId]
        assert poll.is_alive(), "the other requests waited for the long-poll"
    finally:
        c.stop(info.jobId)
        poll.join(timeout=30)
    assert len(waited) == 1 and waited[0] != JobStatus.RUNNING
