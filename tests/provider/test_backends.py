"""A whole job over HTTP on each store backend (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from atoll.models.status import JobStatus
from tests.helpers import require_sandbox, running_provider


def test_job_on_each_store(db_url: str, tmp_path: Path) -> None:
    require_sandbox()
    with running_provider(tmp_path / "home", database_url=db_url) as p:
        did = p.dataset(tmp_path)
        info = p.consumer.wait(p.consumer.start(did, rawcode="print(6 * 7)").jobId, timeout=60)
        assert info.status == JobStatus.FINISHED
        assert p.consumer.result(info.jobId, 0) == b"42\n"
        assert [j.jobId for j in p.consumer.jobs()] == [info.jobId]
