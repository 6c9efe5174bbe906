"""A job start whose registration fails: a job the operator never got gives its count back;
one it got (only the answer was lost) is counted and followed; one that is unknown is kept
"starting" and settled at the next start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from atoll.chain.ledger import AgreementLedger
from atoll.db.schema import agreement_jobs
from atoll.errors import NotFound, RemoteError
from atoll.models.job import JobInfo, Workflow
from atoll.models.status import JobStatus
from atoll.provider.starts import reconcile_starts
from tests.helpers import Running, require_sandbox, running_provider


class Flaky:
    """The node's registry, failing a registration before or after it takes the job."""

    def __init__(self, inner: Any, mode: str) -> None:
        self.inner = inner
        self.mode = mode

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def register(self, workflow: Workflow) -> JobInfo:
        if self.mode == "after":
            await self.inner.register(workflow)
        raise RemoteError("the operator did not answer", 502)

    async def status(self, job_id: str) -> JobInfo:
        if self.mode == "unknown":
            raise RemoteError("the operator did not answer", 502)
        result: JobInfo = await self.inner.status(job_id)
        return result


def links(db: sa.Engine, aid: str) -> list[tuple[str, str]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(agreement_jobs.c.job_id, agreement_jobs.c.state).where(
                agreement_jobs.c.agreement_id == aid
            )
        ).all()
    return [(r.job_id, r.state) for r in rows]


@pytest.fixture
def paid(tmp_path: Path) -> Any:
    require_sandbox()
    with running_provider(tmp_path / "home") as node:
        did = node.dataset(tmp_path, price=10**18)
        yield node, did


@pytest.mark.parametrize("mode", ["before", "after", "unknown"])
def test_a_failed_registration_leaves_the_count_matching_the_jobs(
    paid: tuple[Running, str], mode: str
) -> None:
    node, did = paid
    aid = node.consumer.order(did)
    service = node.node.context.compute
    ledger = AgreementLedger(node.node.db)
    real = service.registry
    service.registry = Flaky(real, mode)  # type: ignore[assignment]
    try:
        if mode == "after":
            info = node.consumer.start(did, rawcode="print(1)", agreement_id=aid)
        else:
            with pytest.raises(RemoteError):
                node.consumer.start(did, rawcode="print(1)", agreement_id=aid)
    finally:
        service.registry = real
    row = ledger.get(aid)
    assert row is not None
    if mode == "before":
        assert row.used == 0 and links(node.node.db, aid) == []
    elif mode == "after":
        assert row.used == 1 and links(node.node.db, aid) == [(info.jobId, "running")]
        assert node.consumer.wait(info.jobId, timeout=60).status == JobStatus.FINISHED
    else:
        # not known whether the operator has it: counted, kept "starting", and settled by
        # the next start's reconciliation (here: the operator never got it)
        [(job_id, state)] = links(node.node.db, aid)
        assert row.used == 1 and state == "starting"
        with pytest.raises(NotFound):
            anyio.run(real.status, job_id)
        anyio.run(reconcile_starts, ledger, real)
        assert links(node.node.db, aid) == []
        again = ledger.get(aid)
        assert again is not None and again.used == 0
