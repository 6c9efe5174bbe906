"""The job store on every backend: records, guarded status moves, in-flight listing."""

from __future__ import annotations

import sqlalchemy as sa

from atoll.db.schema import jobs
from atoll.engine.jobstore import JobStore
from atoll.models.job import Workflow, WorkflowAlgorithm, WorkflowInput
from atoll.models.status import JobStatus

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


def _files(n: int) -> list[dict[str, object]]:
    return [
        {"index": i, "filename": f"f{i}", "filesize": i, "type": "output", "sha256": "0" * 64}
        for i in range(n)
    ]


def test_results_are_a_manifest_and_rows(db: sa.Engine) -> None:
    from atoll.canonical import canonical_sha256
    from atoll.models.job import STATUS_RESULTS

    store = JobStore(db)
    store.create("a", wf())
    store.create("b", wf())
    store.advance("a", JobStatus.FINISHED, results=_files(200))
    store.advance("b", JobStatus.FINISHED, results=_files(2))
    info = store.info("a")
    assert (info.resultCount, len(info.results)) == (200, STATUS_RESULTS)
    assert info.resultsSha256 == canonical_sha256(_files(200))
    assert [r.index for r in store.results("a", 190, 50)] == list(range(190, 200))
    found = store.result("a", 150)
    assert found is not None and found.filename == "f150"
    assert store.result("a", 200) is None
    listed = {j.jobId: (j.resultCount, len(j.results)) for j in store.for_owner(OWNER)}
    assert listed == {"a": (200, STATUS_RESULTS), "b": (2, 2)}
    # the move that ends a job is the only one that writes results
    assert not store.advance("a", JobStatus.FINISHED, results=_files(1))
    assert store.info("a").resultCount == 200


def test_status_text_is_cut(db: sa.Engine) -> None:
    from atoll.models.job import STATUS_TEXT_MAX

    store = JobStore(db)
    store.create("a", wf())
    store.advance("a", JobStatus.ALGORITHM_FAILED, "x" * 100_000)
    text = store.info("a").statusText
    assert len(text) == STATUS_TEXT_MAX and text.endswith("…")


def test_results_of_an_older_store_are_adopted(db: sa.Engine) -> None:
    from atoll.db.schema import jobs

    store = JobStore(db)
    store.create("old", wf())
    store.create("stopped", wf())
    store.create("running", wf())
    with db.begin() as conn:
        # as an older version left it: the list in the job's own row
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.job_id == "old")
            .values(status=int(JobStatus.FINISHED), results=_files(3))
        )
    store.advance("stopped", JobStatus.STOPPED)
    assert store.info("old").resultCount == 0
    assert store.adopt_old_results() == 2
    info = store.info("old")
    assert [r.filename for r in info.results] == ["f0", "f1", "f2"] and info.resultCount == 3
    assert store.adopt_old_results() == 0


def test_counts_by_status_and_run_times_of_ended_jobs(db: sa.Engine) -> None:
    store = JobStore(db)
    for j in ("a", "b", "c"):
        store.create(j, wf())
    store.start_attempt("b")
    store.start_attempt("c")
    store.advance("c", JobStatus.FINISHED)
    assert store.count_by_status() == {
        int(JobStatus.QUEUED): 1,
        int(JobStatus.CONFIGURING): 1,
        int(JobStatus.FINISHED): 1,
    }
    total, seconds, within = store.run_times([0.0, 3600.0])
    # only "c" ran to an end; its run took a moment, not an hour
    assert total == 1 and 0 <= seconds < 3600
    assert within[1] == 1


def test_a_status_is_read_on_one_connection(db: sa.Engine) -> None:
    store = JobStore(db)
    store.create("q", wf())  # queued: its place in the queue is read too
    store.create("a", wf())
    store.advance("a", JobStatus.FINISHED, results=_files(3))
    checkouts: list[object] = []

    def checkout(*args: object) -> None:
        checkouts.append(args)

    sa.event.listen(db.pool, "checkout", checkout)
    try:
        ended, queued = store.info("a"), store.info("q")
    finally:
        sa.event.remove(db.pool, "checkout", checkout)
    assert (len(ended.results), queued.queuePosition) == (3, 1)
    assert len(checkouts) == 2


def test_a_page_of_an_owners_jobs_is_newest_first(db: sa.Engine) -> None:
    store = JobStore(db)
    for job_id in ("old", "mid", "new"):
        store.create(job_id, wf())
    store.create("theirs", wf("0x" + "cd" * 20))
    with db.begin() as conn:
        for when, job_id in enumerate(("old", "mid", "new")):
            conn.execute(sa.update(jobs).where(jobs.c.job_id == job_id).values(created=when))
    total, first = store.page_for_owner(OWNER.upper().replace("0X", "0x"), 0, 2)
    assert total == 3 and [j.jobId for j in first] == ["new", "mid"]
    total, rest = store.page_for_owner(OWNER, 2, 2)
    assert [j.jobId for j in rest] == ["old"]
