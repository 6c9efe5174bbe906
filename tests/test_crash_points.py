"""Escrow across crashes at every step boundary of a job's start and end.

A real ``atoll serve`` is armed with one fault point (``ATOLL_CRASH_AT``), kills itself there
(SIGKILL), and the next one is started on the same node directory, armed with the next
point; one job is also killed mid-run from outside. At the end, on SQLite and PostgreSQL:
every agreement's count equals its jobs, every delivered job is paid to the publisher once,
the job that never ran is refunded once, and the token balances are exact.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from atoll.chain.embedded import EmbeddedChain
from atoll.chain.records import ConditionState
from atoll.config import load_settings
from atoll.db import connect
from atoll.db.schema import agreement_jobs, agreements, assets, job_outcomes, jobs
from atoll.errors import RemoteError
from atoll.models.ddo import ComputePolicy, Metadata
from atoll.models.job import PublishOutput
from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient
from atoll.server import free_port
from atoll.signing import Key
from tests.helpers import public_dir, require_sandbox, wait_healthy
from tests.homes import init_home

PRICE = 2 * 10**18
#: past the range the sandbox's crash-recovery test kills leftovers in (201_000-201_009)
UID_FIRST = 202_000 + (os.getpid() % 1000) * 16
TIMEOUT = 3600


class Node:
    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, crash_at: str = "", healthy: bool = True) -> None:
        env = {
            **os.environ,
            "ATOLL_HOME": str(self.home),
            "ATOLL_MAX_CONCURRENT_JOBS": "1",
            "ATOLL_JOB_WALL_SECONDS": "30",
            "ATOLL_CRASH_AT": crash_at,
            # job uids of their own: another engine's recovery on this host briefly claims
            # every free uid of its range, and a job of ours must not fail for it
            "ATOLL_SANDBOX_UID_FIRST": str(UID_FIRST),
            "ATOLL_SANDBOX_UID_COUNT": "16",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atoll", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if not healthy:
            return
        wait_healthy(self.url, self.proc)

    def died_at_fault(self, timeout: float = 90) -> None:
        """The armed point was reached: the process killed itself with SIGKILL."""
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        assert code == -signal.SIGKILL, (
            self.proc.stderr.read().decode() if self.proc.stderr else code
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def through(self, crash_at: str) -> None:
        """A server armed at ``crash_at`` that reaches it on its own (a recovered job)."""
        self.start(crash_at, healthy=False)
        self.died_at_fault()


def start_dies(client: ProviderClient, did: str, agreement: str, **kw: object) -> None:
    with pytest.raises(RemoteError, match="cannot reach the provider"):
        client.start(did, rawcode="print('paid')", agreement_id=agreement, **kw)  # type: ignore[arg-type]


@pytest.fixture
def crash_node() -> Iterator[Callable[[Path], Node]]:
    made: list[Node] = []

    def make(home: Path) -> Node:
        made.append(Node(home, free_port()))
        return made[-1]

    yield make
    for node in made:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait()


def test_escrow_survives_a_crash_at_every_step(
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    crash_node: Callable[[Path], Node],
) -> None:
    require_sandbox()
    monkeypatch.setenv("ATOLL_DATABASE_URL", db_url)
    home = tmp_path / "home"
    where = public_dir()
    init_home(home, own_data_root=str(where))
    settings = load_settings(home)
    store = connect(settings.db_url)
    data = where / "d.csv"
    data.write_text("x\n")
    node = crash_node(home)
    consumer_key = Key.generate()

    def clients() -> tuple[ProviderClient, ProviderClient]:
        return ProviderClient(node.url, Key.load(home / "key")), ProviderClient(
            node.url, consumer_key
        )

    node.start("start.reserved")
    pub, con = clients()
    con.faucet()
    did = pub.publish(
        Metadata(name="d", type="dataset"),
        [str(data)],
        ComputePolicy(allowRawAlgorithm=True),
        timeout=TIMEOUT,
        price=PRICE,
    ).id
    before = (pub.wallet.balances()["tokens"], con.wallet.balances()["tokens"])
    ordered = [con.order(did) for _ in range(5)]
    never_ran, *paid = ordered
    start_dies(con, did, never_ran)  # counted, never registered
    node.died_at_fault()

    node.start("start.registered")
    pub, con = clients()
    start_dies(con, did, paid[0])  # registered, never marked running
    node.died_at_fault()

    node.start("start.tracked")
    pub, con = clients()
    assert con.wallet.wait_settled(paid[0]).compute.state is ConditionState.FULFILLED
    start_dies(con, did, paid[1])  # running, the consumer never heard
    node.died_at_fault()

    node.start()  # killed from outside in the middle of a job
    pub, con = clients()
    assert con.wallet.wait_settled(paid[1]).compute.state is ConditionState.FULFILLED
    slow = "import time\ntime.sleep(3)\nprint('slow')\n"
    job = con.start(did, rawcode=slow, agreement_id=paid[2])
    while job.status != JobStatus.RUNNING:
        assert not job.terminal, job.statusText
        job = con.status(job.jobId, wait=30, since=job.status)
    node.kill()

    node.through("end.ended")  # the re-run ends; nothing of its end is recorded

    node.start("end.derived")
    pub, con = clients()
    assert con.wallet.wait_settled(paid[2]).compute.state is ConditionState.FULFILLED
    start_dies_later = con.start(
        did,
        rawcode="open('/data/outputs/o.txt', 'w').write('o')",
        agreement_id=paid[3],
        publish_output=PublishOutput(name="derived"),
    )
    node.died_at_fault()
    for point in ("end.checked", "end.outcome", "end.recorded", "keeper.fulfilled", "keeper.paid"):
        node.through(point)

    # every agreement but the one whose job never ran is settled on chain: let its time
    # out pass (the chain file is free while no server runs)
    with EmbeddedChain(settings.chain_file) as chain:
        chain.increase_time(TIMEOUT + 120)
    node.start()
    pub, con = clients()
    refunded = con.wallet.wait_settled(never_ran)
    assert refunded.compute.state is ConditionState.ABORTED
    for aid in paid:
        assert con.wallet.wait_settled(aid).compute.state is ConditionState.FULFILLED

    # the ledger: counts equal jobs, no start left half-done, every job exists and finished
    deadline = time.monotonic() + 30
    while True:
        with store.connect() as conn:
            rows = {r.agreement_id: r for r in conn.execute(sa.select(agreements)).all()}
            links = conn.execute(sa.select(agreement_jobs)).all()
            job_rows = {r.job_id: r for r in conn.execute(sa.select(jobs)).all()}
        if all(rows[a].settled for a in ordered) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert set(rows) == set(ordered)
    assert rows[never_ran].used == 0 and rows[never_ran].settled == "refunded"
    assert not [x for x in links if x.agreement_id == never_ran]
    for aid in paid:
        mine = [x for x in links if x.agreement_id == aid]
        assert rows[aid].used == len(mine) == 1, (aid, rows[aid], mine)
        assert mine[0].state == "delivered"
        assert job_rows[mine[0].job_id].status == JobStatus.FINISHED
        assert rows[aid].settled == "released"
    assert start_dies_later.jobId in {x.job_id for x in links}
    # the derived asset made before the crash is the job's, not lost nor made twice
    with store.connect() as conn:
        derived = conn.execute(
            sa.select(job_outcomes.c.derived_did).where(
                job_outcomes.c.job_id == start_dies_later.jobId
            )
        ).scalar_one()
        made = conn.execute(sa.select(assets.c.did).where(assets.c.name == "derived")).all()
    assert derived and [r.did for r in made] == [derived]

    # the money: each paid agreement released once, the other refunded once, to the unit
    c = con.wallet.contracts
    events = list(c.events(0, c.chain.block_number(), names=("PaymentReleased", "PaymentRefunded")))
    settled = sorted(("0x" + bytes(e.args["agreementId"]).hex(), e.name) for e in events)
    assert settled == sorted(
        [(a, "PaymentReleased") for a in paid] + [(never_ran, "PaymentRefunded")]
    )
    after = (pub.wallet.balances()["tokens"], con.wallet.balances()["tokens"])
    assert after == (before[0] + 4 * PRICE, before[1] - 5 * PRICE + PRICE)
    pub.close()
    con.close()
    node.stop()
    store.dispose()
