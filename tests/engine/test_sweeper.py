"""The sweeper: results past their environment's storage time are deleted from whichever
result store holds them, the job's status says so, and a sweep cut short is finished by the
next one. The store is real (SQLite and PostgreSQL); the result store is the local one or the
S3 stand-in of ``tests/conftest.py`` (moto's server on loopback: S3 cannot run here); the
executor is a stand-in, since no job runs here (jobs are ended through the store)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from atoll.db.schema import jobs
from atoll.engine.jobstore import EXPIRED, EXPIRING, JobStore
from atoll.engine.notify import Notifier
from atoll.engine.runner import Engine, EngineConfig
from atoll.engine.sweeper import ResultSweeper
from atoll.models.environment import Environment
from atoll.models.job import ResultFile, Workflow, WorkflowAlgorithm, WorkflowInput
from atoll.models.status import JobStatus
from atoll.storage import LocalResults, ObjectNotFound, ResultStore, StorageError
from atoll.storage.s3_client import S3Location, make_client
from atoll.storage.s3_results import S3Results
from tests.conftest import S3_TEST_KEYS
from tests.engine.test_runner import Executor

HOUR = 3600.0
OWNER = "0x" + "ab" * 20


def workflow(env: str = "short") -> Workflow:
    return Workflow(
        owner=OWNER,
        environment=env,
        inputs=[WorkflowInput(did="did:atoll:1", ddo={}, locations=[])],
        algorithm=WorkflowAlgorithm(rawcode="pass"),
    )


ENVIRONMENTS = [
    Environment(id="short", storage_expiry=HOUR),
    Environment(id="kept", storage_expiry=0),
]


@pytest.fixture(params=["local", "s3"])
def results(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResultStore]:
    if request.param == "local":
        yield LocalResults(tmp_path / "jobs")
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    location = S3Location(bucket, "results", endpoint=endpoint)
    yield S3Results(location, make_client(location, S3_TEST_KEYS))


def _engine(db: sa.Engine, tmp_path: Path, results: ResultStore) -> Engine:
    config = EngineConfig(jobs_dir=tmp_path / "jobs", environments=ENVIRONMENTS)
    return Engine(JobStore(db), Executor({}), config, Notifier(), results=results)  # type: ignore[arg-type]


def _ended(engine: Engine, job_id: str, env: str = "short", data: bytes = b"out") -> None:
    """A job that ended with one output and its log, as the engine leaves it."""
    engine.store.create(job_id, workflow(env))
    engine.store.start_attempt(job_id)
    listed = []
    for index, body in enumerate((data, b"log\n")):
        stored = engine.results.put(f"{job_id}/results/{index}", io.BytesIO(body))
        kind = "output" if index == 0 else "algorithmLog"
        listed.append(
            ResultFile(
                index=index,
                filename=f"f{index}",
                filesize=stored.size,
                type=kind,
                sha256=stored.sha256,
            )
        )
    engine.workspace(job_id).root.mkdir(parents=True, exist_ok=True)
    engine.workspace(job_id).algorithm_log.write_bytes(b"log\n")
    engine._finish(job_id, JobStatus.FINISHED, results=listed)


def _gone(results: ResultStore, job_id: str) -> bool:
    for index in (0, 1):
        try:
            results.open(f"{job_id}/results/{index}").close()
            return False
        except ObjectNotFound:
            pass
    return True


def test_results_are_deleted_after_the_storage_time_and_the_status_says_so(
    db: sa.Engine, tmp_path: Path, results: ResultStore
) -> None:
    engine = _engine(db, tmp_path, results)
    sweeper = ResultSweeper(engine.store, engine, interval=60)
    _ended(engine, "a")
    _ended(engine, "forever", env="kept")
    info = engine.store.info("a")
    assert info.dateExpires and not info.resultsExpired
    assert engine.store.info("forever").dateExpires == ""
    # within the storage time: nothing goes
    assert sweeper.sweep(time.time() + HOUR / 2) == 0
    assert not _gone(results, "a")
    # after it
    assert sweeper.sweep(time.time() + HOUR + 1) == 1
    assert _gone(results, "a")
    assert not engine.workspace("a").root.exists()
    info = engine.store.info("a")
    assert info.resultsExpired and info.status == JobStatus.FINISHED
    assert "expired" in info.statusText
    # what the job left is still listed (small; the receipt names it too)
    assert [r.filename for r in info.results] == ["f0", "f1"] and info.resultCount == 2
    # an environment whose storage time is 0 keeps its results
    assert sweeper.sweep(time.time() + 1000 * HOUR) == 0
    assert not _gone(results, "forever")


class Flaky:
    """A result store whose deletions fail until told otherwise: a store out of reach, or a
    process killed in the middle of a sweep."""

    def __init__(self, inner: ResultStore) -> None:
        self.inner = inner
        self.failing = True

    def put(self, key: str, source: io.BytesIO, *, limit: int | None = None) -> object:
        return self.inner.put(key, source, limit=limit)

    def open(self, key: str) -> object:
        return self.inner.open(key)

    def stat(self, key: str) -> object:
        return self.inner.stat(key)

    def delete(self, prefix: str) -> None:
        if self.failing:
            raise StorageError("the object store could not be reached")
        self.inner.delete(prefix)


def _expired_state(db: sa.Engine, job_id: str) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(sa.select(jobs.c.expired).where(jobs.c.job_id == job_id)).scalar_one()
        )


def test_a_sweep_cut_short_is_finished_by_the_next(
    db: sa.Engine, tmp_path: Path, results: ResultStore
) -> None:
    flaky = Flaky(results)
    engine = _engine(db, tmp_path, flaky)  # type: ignore[arg-type]
    sweeper = ResultSweeper(engine.store, engine, interval=60)
    _ended(engine, "a")
    later = time.time() + 2 * HOUR
    assert sweeper.sweep(later) == 0
    # marked before anything was deleted: from then on nothing of it is served
    assert _expired_state(db, "a") == EXPIRING
    assert engine.store.info("a").resultsExpired
    assert not _gone(results, "a")
    flaky.failing = False
    assert sweeper.sweep(later) == 1
    assert _expired_state(db, "a") == EXPIRED and _gone(results, "a")
    # idempotent: nothing left to do
    assert sweeper.sweep(later) == 0


def test_a_deletion_done_before_a_crash_is_finished_without_error(
    db: sa.Engine, tmp_path: Path, results: ResultStore
) -> None:
    engine = _engine(db, tmp_path, results)
    _ended(engine, "a")
    # the process died after deleting, before writing that it had
    engine.store.mark_expiring("a")
    engine.free("a")
    assert ResultSweeper(engine.store, engine, interval=60).sweep(time.time() + 2 * HOUR) == 1
    assert _expired_state(db, "a") == EXPIRED


def test_jobs_that_ended_before_expiry_existed_get_their_environments_time(
    db: sa.Engine, tmp_path: Path
) -> None:
    engine = _engine(db, tmp_path, LocalResults(tmp_path / "jobs"))
    store = engine.store
    for job_id, env in (("old", "short"), ("old-kept", "kept")):
        store.create(job_id, workflow(env))
        store.advance(job_id, JobStatus.FINISHED)  # no expiry: as before this version
    assert store.info("old").dateExpires == ""
    finished = store.record("old")
    assert finished.status == JobStatus.FINISHED
    ResultSweeper(store, engine, interval=60).sweep(time.time())
    assert store.info("old").dateExpires != ""
    assert store.info("old-kept").dateExpires == ""
    assert ResultSweeper(store, engine, interval=60).sweep(time.time() + 2 * HOUR) == 1
    assert store.info("old").resultsExpired


def test_the_sweeper_thread_sweeps_until_stopped(db: sa.Engine, tmp_path: Path) -> None:
    engine = _engine(db, tmp_path, LocalResults(tmp_path / "jobs"))
    _ended(engine, "a")
    # as if the storage time had passed
    with db.begin() as conn:
        conn.execute(sa.update(jobs).values(expires_at=time.time() - 1))
    sweeper = ResultSweeper(engine.store, engine, interval=0.05)
    sweeper.start()
    try:
        _wait_for(
            lambda: engine.store.info("a").resultsExpired and _expired_state(db, "a") == EXPIRED
        )
    finally:
        sweeper.stop()
    assert _gone(engine.results, "a")


def _wait_for(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline, "the sweeper did not sweep"
        time.sleep(0.02)
