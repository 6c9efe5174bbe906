"""The job store: workflows as registered and their status, results and attempts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from atoll.db.schema import jobs
from atoll.errors import NotFound
from atoll.models.ddo import iso_time
from atoll.models.job import JobInfo, ResultFile, Workflow
from atoll.models.status import TERMINAL, JobStatus

_TERMINAL_CODES = [int(s) for s in TERMINAL]


def _iso(ts: float | None) -> str:
    return "" if ts is None else iso_time(ts)


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    owner: str
    created: float
    status: JobStatus
    status_text: str
    stopreq: int
    removed: int
    attempts: int
    workflow: Workflow
    results: list[ResultFile]


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, job_id: str, workflow: Workflow) -> JobInfo:
        with self._engine.begin() as conn:
            conn.execute(
                insert(jobs).values(
                    job_id=job_id,
                    owner=workflow.owner.lower(),
                    did=workflow.inputs[0].did,
                    agreement_id=workflow.agreementId,
                    environment=workflow.environment,
                    status=int(JobStatus.QUEUED),
                    status_text=JobStatus.QUEUED.text,
                    created=time.time(),
                    stopreq=0,
                    removed=0,
                    attempts=0,
                    workflow=workflow.model_dump(mode="json"),
                    results=[],
                )
            )
        return self.info(job_id)

    def _row(self, job_id: str) -> Any:
        with self._engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.job_id == job_id)).first()
        if row is None:
            raise NotFound(f"unknown job {job_id}")
        return row

    def record(self, job_id: str) -> JobRecord:
        row = self._row(job_id)
        return JobRecord(
            job_id=row.job_id,
            owner=row.owner,
            created=row.created,
            status=JobStatus(row.status),
            status_text=row.status_text,
            stopreq=row.stopreq,
            removed=row.removed,
            attempts=row.attempts,
            workflow=Workflow.model_validate(row.workflow),
            results=[ResultFile.model_validate(r) for r in row.results],
        )

    def info(self, job_id: str) -> JobInfo:
        row = self._row(job_id)
        info = _info(row)
        if row.status == JobStatus.QUEUED:
            with self._engine.connect() as conn:
                ahead = conn.execute(
                    select(func.count())
                    .select_from(jobs)
                    .where(
                        jobs.c.environment == row.environment,
                        jobs.c.status == int(JobStatus.QUEUED),
                        jobs.c.created < row.created,
                    )
                ).scalar_one()
            info.queuePosition = int(ahead) + 1
        return info

    def for_owner(self, owner: str) -> list[JobInfo]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(jobs).where(jobs.c.owner == owner.lower()).order_by(jobs.c.created)
            ).all()
        return [_info(r) for r in rows]

    def in_flight(self) -> list[JobRecord]:
        with self._engine.connect() as conn:
            ids = conn.execute(
                select(jobs.c.job_id)
                .where(jobs.c.status.not_in(_TERMINAL_CODES))
                .order_by(jobs.c.created)
            ).scalars()
            job_ids = list(ids)
        return [self.record(j) for j in job_ids]

    def advance(self, job_id: str, status: JobStatus, text: str = "", **values: Any) -> bool:
        """Move a job that has not ended to ``status``. A job that already ended (stopped while
        this worker was busy, say) is left as it is, and False returned."""
        fields: dict[str, Any] = {"status": int(status), "status_text": text or status.text}
        if status.terminal:
            fields["finished"] = time.time()
        fields.update(values)
        with self._engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id, jobs.c.status.not_in(_TERMINAL_CODES))
                .values(**fields)
            )
        return done.rowcount == 1

    def advance_from(
        self, job_id: str, expected: JobStatus, status: JobStatus, text: str = ""
    ) -> bool:
        """Move a job to ``status`` only if it is still in ``expected``."""
        fields: dict[str, Any] = {"status": int(status), "status_text": text or status.text}
        if status.terminal:
            fields["finished"] = time.time()
        with self._engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id, jobs.c.status == int(expected))
                .values(**fields)
            )
        return done.rowcount == 1

    def start_attempt(self, job_id: str) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id, jobs.c.status.not_in(_TERMINAL_CODES))
                .values(
                    status=int(JobStatus.CONFIGURING),
                    status_text=JobStatus.CONFIGURING.text,
                    started=time.time(),
                    attempts=jobs.c.attempts + 1,
                )
            )
        return done.rowcount == 1

    def request_stop(self, job_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(stopreq=1))

    def mark_removed(self, job_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id)
                .values(removed=1, results=[], status_text="Results and logs removed")
            )


def _info(row: Any) -> JobInfo:
    wf = row.workflow
    return JobInfo(
        jobId=row.job_id,
        owner=wf["owner"],
        agreementId=row.agreement_id,
        did=row.did,
        inputDID=[i["did"] for i in wf["inputs"]],
        algoDID=wf["algorithm"].get("did", ""),
        environment=row.environment,
        status=row.status,
        statusText=row.status_text,
        dateCreated=_iso(row.created),
        dateStarted=_iso(row.started),
        dateFinished=_iso(row.finished),
        stopreq=row.stopreq,
        removed=row.removed,
        results=row.results,
        agreements=wf.get("agreements", []),
        resources=wf.get("resources") or {},
        network=wf.get("egress", []),
        algorithmChecksum=wf["algorithm"].get("checksum", ""),
        trust=wf.get("trust", ""),
        publishOutput=wf.get("publishOutput"),
    )
