"""Two provider replicas on one PostgreSQL store and one chain (anvil).

Two real ``atoll serve`` processes share a database of their own (created and dropped here),
the contracts deployed once and the provider key. Jobs are started alternately on both and
each is watched from the other replica by long-polls that must each be answered by a change
(a watcher that times out was not told); nonces and agreement slots are taken once across
both; exactly one replica keeps the agreements, and when it is killed the other takes over;
a restarted replica recovers its own jobs only; with the results in a shared bucket (the S3
stand-in, moto: S3 itself cannot run here) either replica serves any job's results.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from atoll.chain.records import ConditionState
from atoll.cli.serve import init_home
from atoll.config import load_settings
from atoll.errors import AuthError, Forbidden
from atoll.models.ddo import ComputePolicy, Metadata, OutputPolicy
from atoll.models.job import JobInfo
from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient
from atoll.server import free_port
from atoll.signing import Key
from tests.conftest import POSTGRES_URL, S3_TEST_KEYS, _postgres_or_skip
from tests.helpers import public_dir, require_sandbox, wait_healthy

PRICE = 10**15
JOBS_PER_AGREEMENT = 10
CODE = "print('done')\n"
#: holds its engine's slot until stopped
BLOCK = "import time\ntime.sleep(600)\n"
#: a long-poll that lasts this long was not told of a change (nothing else wakes it)
WATCH_S = 60
UID_FIRST = 230_000 + (os.getpid() % 500) * 64


@dataclass
class Replica:
    name: str
    home: Path
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    uid_first: int
    extra: dict[str, str]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@dataclass
class Pair:
    a: Replica
    b: Replica
    db_url: str
    data: Path
    started: list[Replica]

    def client(self, replica: Replica, key: Key) -> ProviderClient:
        return ProviderClient(replica.url, key)

    def restart(self, replica: Replica) -> Replica:
        """The replica stopped (if it runs) and started again, under its name and home."""
        stop(replica)
        again = start_replica(
            replica.name, replica.home, self.db_url, replica.uid_first, replica.extra
        )
        self.started.append(again)
        return again


def stop(replica: Replica) -> None:
    if replica.proc.poll() is None:
        replica.proc.send_signal(signal.SIGTERM)
        try:
            replica.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            replica.kill()


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A PostgreSQL database of its own on the test server, dropped afterwards."""
    _postgres_or_skip()
    name = "atoll_replicas_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield str(sa.make_url(POSTGRES_URL).set(database=name).render_as_string(False))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def start_replica(
    name: str, home: Path, db_url: str, uid_first: int, extra: dict[str, str] | None = None
) -> Replica:
    port = free_port()
    log = home / "serve.log"
    env = {
        **os.environ,
        **(extra or {}),
        "ATOLL_HOME": str(home),
        "ATOLL_DATABASE_URL": db_url,
        "ATOLL_REPLICA_NAME": name,
        "ATOLL_MAX_CONCURRENT_JOBS": "4",
        "ATOLL_JOB_WALL_SECONDS": "300",
        "ATOLL_RATE_LIMIT_PER_IP": "100000/minute",
        "ATOLL_RATE_LIMIT_PER_ADDRESS": "100000/minute",
        # job uids of their own: each engine claims the free uids of its range at its start
        "ATOLL_SANDBOX_UID_FIRST": str(uid_first),
        "ATOLL_SANDBOX_UID_COUNT": "16",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "atoll", "serve", "--port", str(port), "--log-level", "info"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    replica = Replica(name, home, f"http://127.0.0.1:{port}", proc, log, uid_first, extra or {})
    wait_healthy(replica.url, proc, log=log)
    return replica


@pytest.fixture
def pair(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    anvil_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Pair]:
    """Replicas a and b of one provider: one store, one chain, one provider key; results
    under each replica's home, or (parametrized "s3") in one bucket of the S3 stand-in."""
    require_sandbox()
    extra: dict[str, str] = {}
    if getattr(request, "param", "local") == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = request.getfixturevalue("s3_bucket")
        extra = {
            "ATOLL_RESULTS_STORE": "s3",
            "ATOLL_RESULTS_S3": f"s3://{bucket}/results?endpoint={endpoint}",
            "ATOLL_RESULTS_S3_ACCESS_KEY_ID": S3_TEST_KEYS.access_key_id,
            "ATOLL_RESULTS_S3_SECRET_ACCESS_KEY": S3_TEST_KEYS.secret_access_key,
        }
    with scratch_database() as db_url:
        monkeypatch.setenv("ATOLL_DATABASE_URL", db_url)
        data = public_dir()
        home_a, home_b = tmp_path / "a", tmp_path / "b"
        init_home(home_a, anvil_url, own_data_root=str(data))  # deploys the contracts once
        home_b.mkdir(mode=0o700)
        for name in ("provider.key", "key", "settings.toml", "addresses.json"):
            shutil.copy2(home_a / name, home_b / name)
        assert load_settings(home_b).address_book_file.exists()
        started: list[Replica] = []
        try:
            started.append(start_replica("a", home_a, db_url, UID_FIRST, extra))
            started.append(start_replica("b", home_b, db_url, UID_FIRST + 32, extra))
            yield Pair(started[0], started[1], db_url, data, started)
        finally:
            for r in started:
                stop(r)
            shutil.rmtree(data, ignore_errors=True)


def keepers(db_url: str) -> list[str]:
    """The replicas holding the keeper's lease, as the server sees its advisory locks."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT a.application_name FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                )
            ).scalars()
            return sorted(rows)
    finally:
        engine.dispose()


def publish(pair: Pair, max_jobs: int) -> tuple[ProviderClient, str]:
    publisher = pair.client(pair.a, Key.load(pair.a.home / "key"))
    path = pair.data / f"d{uuid.uuid4().hex[:6]}.csv"
    path.write_text("x\n1\n")
    policy = ComputePolicy(
        allowRawAlgorithm=True, maxJobs=max_jobs, outputPolicy=OutputPolicy(mode="off")
    )
    did = publisher.publish(
        Metadata(name="d", type="dataset"), [str(path)], policy, timeout=3600, price=PRICE
    ).id
    return publisher, did


def watch(url: str, key: Key, job_id: str, looked: threading.Semaphore) -> list[JobInfo]:
    """Follow a job to its end by long-polls; every answer must be a change."""
    with ProviderClient(url, key) as client:
        seen = [client.status(job_id)]
        looked.release()
        while not seen[-1].terminal:
            info = client.status(job_id, wait=WATCH_S, since=seen[-1].status)
            assert info.status != seen[-1].status, f"job {job_id}: a watcher was never told"
            seen.append(info)
    return seen


def until_running(client: ProviderClient, job_id: str) -> None:
    info = client.status(job_id)
    while info.status != JobStatus.RUNNING:
        assert not info.terminal, info.statusText
        info = client.status(job_id, wait=WATCH_S, since=info.status)


def settled_events(client: ProviderClient) -> list[tuple[str, str]]:
    c = client.wallet.contracts
    names = ("PaymentReleased", "PaymentRefunded")
    events = c.events(0, c.chain.block_number(), names=names)
    return sorted(("0x" + bytes(e.args["agreementId"]).hex(), e.name) for e in events)


def test_hundred_jobs_across_two_replicas(pair: Pair) -> None:
    consumer = Key.generate()
    on_a, on_b = pair.client(pair.a, consumer), pair.client(pair.b, consumer)
    clients = (on_a, on_b)
    on_a.faucet()
    publisher, did = publish(pair, JOBS_PER_AGREEMENT)
    assert keepers(pair.db_url) in (["atoll-keeper a"], ["atoll-keeper b"])

    # every slot of both engines held by a job that waits, so that each of the hundred is
    # queued, and its watcher waiting, before it can end
    held = on_a.order(did)
    blockers = [clients[i % 2].start(did, rawcode=BLOCK, agreement_id=held) for i in range(8)]
    for blocker in blockers:
        until_running(on_a, blocker.jobId)
    agreements = [on_a.order(did) for _ in range(100 // JOBS_PER_AGREEMENT)]
    watchers: dict[str, Future[list[JobInfo]]] = {}
    started_on: dict[str, str] = {}
    looked = threading.Semaphore(0)
    with ThreadPoolExecutor(max_workers=100) as pool:
        for i in range(100):
            job = clients[i % 2].start(
                did, rawcode=CODE, agreement_id=agreements[i // JOBS_PER_AGREEMENT]
            )
            started_on[job.jobId] = "ab"[i % 2]
            # watched from the other replica
            other = clients[(i + 1) % 2].url
            watchers[job.jobId] = pool.submit(watch, other, consumer, job.jobId, looked)
        # every slot of every agreement is taken: one more start is refused on either replica
        for client in clients:
            with pytest.raises(Forbidden, match="all are used"):
                client.start(did, rawcode=CODE, agreement_id=agreements[-1])
        for _ in range(100):
            assert looked.acquire(timeout=120)
        # each blocker stopped through the replica that does not run it
        for i, blocker in enumerate(blockers):
            clients[(i + 1) % 2].stop(blocker.jobId)
        ended = {job_id: future.result(timeout=300) for job_id, future in watchers.items()}

    assert len(ended) == 100
    for job_id, seen in ended.items():
        assert seen[0].status == JobStatus.QUEUED, (job_id, seen[0].statusText)
        assert seen[-1].status == JobStatus.FINISHED, (job_id, seen[-1].statusText)
    for blocker in blockers:
        assert on_b.wait(blocker.jobId, timeout=60).status == JobStatus.STOPPED
    # each job ran on the replica that started it, and either replica reads every job
    engine = sa.create_engine(pair.db_url)
    with engine.connect() as conn:
        ran_on = dict(conn.execute(sa.text("SELECT job_id, node FROM jobs")).all())
    engine.dispose()
    assert ran_on == {**started_on, **{b.jobId: "ab"[i % 2] for i, b in enumerate(blockers)}}
    for client in clients:
        assert {job.jobId for job in client.jobs()} == set(ran_on)

    # one keeper, and every agreement paid to the publisher once
    assert len(keepers(pair.db_url)) == 1
    for aid in agreements:
        assert on_a.wallet.wait_settled(aid).compute.state is ConditionState.FULFILLED
    paid = settled_events(on_a)
    assert [e for e in paid if e[0] != held] == sorted((a, "PaymentReleased") for a in agreements)
    assert len([e for e in paid if e[0] == held]) <= 1
    publisher.close()
    on_a.close()
    on_b.close()


@pytest.mark.parametrize("pair", ["s3"], indirect=True)
def test_nonce_slots_and_results_across_replicas(pair: Pair) -> None:
    consumer = Key.generate()
    on_a, on_b = pair.client(pair.a, consumer), pair.client(pair.b, consumer)
    on_a.faucet()
    publisher, did = publish(pair, 3)
    aid = on_a.order(did)

    # one signed request, accepted once: replayed on the other replica it is refused
    job = on_a.start(did, rawcode=CODE, agreement_id=aid)
    signed = on_a._signed("status", job.jobId)
    params = {**signed, "jobId": job.jobId}
    first = httpx.get(f"{pair.b.url}/api/services/compute", params=params)
    assert first.status_code == 200, first.text
    again = httpx.get(f"{pair.a.url}/api/services/compute", params=params)
    assert again.status_code == 401 and "already used" in again.text

    # the two slots left, raced for by six starts on both replicas at once: two win
    gate = threading.Barrier(6)

    def race(client: ProviderClient) -> str:
        gate.wait()
        try:
            return client.start(did, rawcode=CODE, agreement_id=aid).jobId
        except Forbidden as exc:
            return "refused: " + exc.message

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(race, [on_a, on_b] * 3))
    won = [o for o in outcomes if not o.startswith("refused")]
    assert len(won) == 2, outcomes
    assert all("all are used" in o for o in outcomes if o.startswith("refused"))
    for job_id in [job.jobId, *won]:
        assert on_b.wait(job_id, timeout=120).status == JobStatus.FINISHED
    assert on_b.wallet.wait_settled(aid).compute.state is ConditionState.FULFILLED
    assert settled_events(on_a) == [(aid, "PaymentReleased")]

    # with the results in the shared store, either replica serves any job's results
    info = on_b.status(job.jobId)
    listed = on_a.results(info)
    assert listed and listed == on_b.results(info)
    for entry in listed:
        body = on_b.result(job.jobId, entry.index)
        assert on_a.result(job.jobId, entry.index) == body
        assert hashlib.sha256(body).hexdigest() == entry.sha256
    with pytest.raises(AuthError):
        on_b._send("GET", "/compute", params=params)
    publisher.close()
    on_a.close()
    on_b.close()


def job_row(db_url: str, job_id: str) -> sa.Row[tuple[object, ...]]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT node, status, attempts FROM jobs WHERE job_id = :j")
            return conn.execute(query, {"j": job_id}).one()
    finally:
        engine.dispose()


def test_the_other_replica_keeps_once_the_keeper_dies(pair: Pair) -> None:
    consumer = Key.generate()
    on_a, on_b = pair.client(pair.a, consumer), pair.client(pair.b, consumer)
    on_a.faucet()
    publisher, did = publish(pair, 1)
    [holder] = keepers(pair.db_url)
    keeping, other = (pair.a, pair.b) if holder == "atoll-keeper a" else (pair.b, pair.a)
    on_keeping = on_a if keeping is pair.a else on_b

    # a job runs on the keeper's replica while the other restarts: the other recovers its
    # own jobs only, and leaves this one running where it is
    blocked = on_keeping.order(did)
    blocker = on_keeping.start(did, rawcode=BLOCK, agreement_id=blocked).jobId
    until_running(on_keeping, blocker)
    other = pair.restart(other)
    survivor = pair.client(other, consumer)
    assert tuple(job_row(pair.db_url, blocker)) == (keeping.name, JobStatus.RUNNING, 1)
    assert keepers(pair.db_url) == [f"atoll-keeper {keeping.name}"]

    # ordered while the keeper lives, run once it is dead: the survivor settles it
    pending = survivor.order(did)
    keeping.kill()
    wait_for(lambda: keepers(pair.db_url) == [f"atoll-keeper {other.name}"])
    info = survivor.wait(survivor.start(did, rawcode=CODE, agreement_id=pending).jobId, 120)
    assert info.status == JobStatus.FINISHED
    assert survivor.wallet.wait_settled(pending).compute.state is ConditionState.FULFILLED
    assert settled_events(survivor) == [(pending, "PaymentReleased")]
    assert "this replica keeps the agreements" in other.log.read_text()

    # the dead replica comes back (no keeper of its own now): its job is its own again, and
    # a stop asked on the other replica reaches it
    back = pair.restart(keeping)
    assert keepers(pair.db_url) == [f"atoll-keeper {other.name}"]
    survivor.stop(blocker)
    assert survivor.wait(blocker, timeout=120).status == JobStatus.STOPPED
    assert job_row(pair.db_url, blocker).node == back.name
    publisher.close()
    survivor.close()
    on_a.close()
    on_b.close()


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    done = threading.Event()
    for _ in range(int(seconds * 10)):
        if condition():
            return
        done.wait(0.1)
    raise AssertionError("the condition never held")
