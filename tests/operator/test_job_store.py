"""The job store on every backend: records, guarded status moves, in-flight listing."""

from __future__ import annotations

import sqlalchemy as sa

from atoll.models.job import Workflow, WorkflowAlgorithm, WorkflowInput
from atoll.models.status import JobStatus
from atoll.operator.jobs import JobStore

OWNER = "0x" + "Ab" * 20


def wf(owner: str = OWNER) -> Workflow:
    return Workflow(
        owner=owner,
        inputs=[WorkflowInput(did="did:atoll:1", ddo={}, locations=["/srv/data/x.csv"])],
        algorithm=WorkflowAlgorithm(rawcode="pass"),
    )


def test_create_and_public_info_hides_locations(db: sa.Engine) -> None:
    store = JobStore(db)
    info = store.create("j1", wf())
    assert (info.status, info.owner, info.inputDID) == (JobStatus.QUEUED, OWNER, ["did:atoll:1"])
    assert "/srv/data" not in info.model_dump_json()
    assert store.record("j1").workflow.inputs[0].locations == ["/srv/data/x.csv"]


def test_terminal_status_is_final(db: sa.Engine) -> None:
    store = JobStore(db)
    store.create("j1", wf())
    assert store.start_attempt("j1")
    assert store.advance("j1", JobStatus.STOPPED)
    # a worker that was busy when the stop came cannot overwrite it
    assert not store.advance("j1", JobStatus.FINISHED)
    assert not store.start_attempt("j1")
    info = store.info("j1")
    assert info.status == JobStatus.STOPPED and info.dateFinished


def test_in_flight_and_attempts(db: sa.Engine) -> None:
    store = JobStore(db)
    for j in ("a", "b", "c"):
        store.create(j, wf())
    store.start_attempt("a")
    store.start_attempt("b")
    store.advance("b", JobStatus.FINISHED)
    flight = {r.job_id: (r.status, r.attempts) for r in store.in_flight()}
    assert flight == {"a": (JobStatus.CONFIGURING, 1), "c": (JobStatus.QUEUED, 0)}


def test_list_by_owner_is_case_insensitive(db: sa.Engine) -> None:
    store = JobStore(db)
    store.create("a", wf())
    store.create("b", wf("0x" + "cd" * 20))
    assert [j.jobId for j in store.for_owner(OWNER.lower())] == ["a"]


def test_mark_removed(db: sa.Engine) -> None:
    store = JobStore(db)
    store.create("a", wf())
    store.advance(
        "a",
        JobStatus.FINISHED,
        results=[
            {"index": 0, "filename": "x", "filesize": 1, "type": "output", "sha256": "0" * 64}
        ],
    )
    assert len(store.info("a").results) == 1
    store.mark_removed("a")
    info = store.info("a")
    assert (info.removed, info.results) == (1, [])
