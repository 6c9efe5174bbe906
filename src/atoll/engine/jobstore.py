"""The job store: workflows as registered and their status, results and attempts.

A job's results are written once, when it ends: a manifest row (count, total size, sha256 of
the list) read by every status, and a row per file read only by a download or a page of the
list. A status therefore costs the same whatever the number of results."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, func, insert, select, true, update

from atoll.canonical import canonical_sha256
from atoll.db import reader
from atoll.db.schema import job_manifests, job_results, jobs
from atoll.errors import NotFound
from atoll.models.ddo import iso_time
from atoll.models.job import (
    STATUS_RESULTS,
    STATUS_TEXT_MAX,
    JobInfo,
    ResultFile,
    Workflow,
)
from atoll.models.status import TERMINAL, JobStatus

_TERMINAL_CODES = [int(s) for s in TERMINAL]

#: ``jobs.expired``: results kept; past their storage time and no longer served (deletion
#: perhaps unfinished); deleted
KEPT, EXPIRING, EXPIRED = 0, 1, 2


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
    #: the replica whose engine runs the job ("": the store has one provider)
    node: str = ""


#: every column of a job but the old results list, with its manifest's count and hash
_STATUS = select(
    *[c for c in jobs.c if c.name != "results"],
    func.coalesce(job_manifests.c.count, 0).label("result_count"),
    func.coalesce(job_manifests.c.sha256, "").label("results_sha256"),
).select_from(jobs.outerjoin(job_manifests, job_manifests.c.job_id == jobs.c.job_id))


def _cut(text: str) -> str:
    if len(text) <= STATUS_TEXT_MAX:
        return text
    return text[: STATUS_TEXT_MAX - 1] + "…"


def _result(row: Any) -> ResultFile:
    return ResultFile(
        index=row.idx,
        filename=row.filename,
        filesize=row.filesize,
        type=row.type,
        sha256=row.sha256,
    )


class JobStore:
    def __init__(self, engine: Engine, node: str = "") -> None:
        self._engine = engine
        self._reader = reader(engine)
        #: this provider replica's name among those sharing the store: the jobs it
        #: registers carry it, and it recovers and sweeps only those ("": the store's only
        #: provider, every job is its own)
        self.node = node

    def _own(self) -> Any:
        """The jobs this replica's engine runs, as a condition."""
        return jobs.c.node == self.node if self.node else true()

    def runs_elsewhere(self, record: JobRecord) -> bool:
        """Whether another replica's engine runs the job."""
        return bool(record.node) and record.node != self.node

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
                    node=self.node,
                )
            )
        return self.info(job_id)

    def _row(self, job_id: str) -> Any:
        with self._reader.connect() as conn:
            return _status_row(conn, job_id)

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
            node=row.node,
        )

    def info(self, job_id: str) -> JobInfo:
        # one connection for the job and its first results: every status asks for both
        with self._reader.connect() as conn:
            row = _status_row(conn, job_id)
            info = _info(row)
            if row.result_count:
                info.results = _results(conn, job_id, 0, STATUS_RESULTS)
            if row.status == JobStatus.QUEUED:
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
        owned = jobs.c.owner == owner.lower()
        with self._reader.connect() as conn:
            rows = conn.execute(_STATUS.where(owned).order_by(jobs.c.created)).all()
            heads = conn.execute(
                select(job_results)
                .where(
                    job_results.c.job_id.in_(select(jobs.c.job_id).where(owned)),
                    job_results.c.idx < STATUS_RESULTS,
                )
                .order_by(job_results.c.job_id, job_results.c.idx)
            ).all()
        infos = [_info(r) for r in rows]
        by_id = {i.jobId: i for i in infos}
        for h in heads:
            by_id[h.job_id].results.append(_result(h))
        return infos

    def page_for_owner(self, owner: str, offset: int, limit: int) -> tuple[int, list[JobInfo]]:
        """How many jobs ``owner`` has, and a page of them, newest first."""
        owned = jobs.c.owner == owner.lower()
        with self._reader.connect() as conn:
            total = conn.execute(select(func.count()).select_from(jobs).where(owned)).scalar()
            # the page's ids first, from the narrow columns: sorting the owner's every whole
            # row (workflows and all) is what makes a long history slow
            ids = list(
                conn.execute(
                    select(jobs.c.job_id)
                    .where(owned)
                    .order_by(jobs.c.created.desc(), jobs.c.job_id)
                    .limit(limit)
                    .offset(offset)
                ).scalars()
            )
            found = conn.execute(_STATUS.where(jobs.c.job_id.in_(ids))).all()
            order = {job_id: k for k, job_id in enumerate(ids)}
            rows = sorted(found, key=lambda r: order[r.job_id])
            heads = conn.execute(
                select(job_results)
                .where(job_results.c.job_id.in_(ids), job_results.c.idx < STATUS_RESULTS)
                .order_by(job_results.c.job_id, job_results.c.idx)
            ).all()
        infos = [_info(r) for r in rows]
        by_id = {i.jobId: i for i in infos}
        for h in heads:
            by_id[h.job_id].results.append(_result(h))
        return int(total or 0), infos

    def results(self, job_id: str, offset: int, limit: int) -> list[ResultFile]:
        """Results ``offset`` … ``offset + limit - 1`` of the job, in index order."""
        with self._reader.connect() as conn:
            return _results(conn, job_id, offset, limit)

    def result(self, job_id: str, index: int) -> ResultFile | None:
        with self._reader.connect() as conn:
            row = conn.execute(
                select(job_results).where(
                    job_results.c.job_id == job_id, job_results.c.idx == index
                )
            ).first()
        return None if row is None else _result(row)

    def in_flight(self) -> list[JobRecord]:
        with self._reader.connect() as conn:
            ids = conn.execute(
                select(jobs.c.job_id)
                .where(jobs.c.status.not_in(_TERMINAL_CODES), self._own())
                .order_by(jobs.c.created)
            ).scalars()
            job_ids = list(ids)
        return [self.record(j) for j in job_ids]

    def advance(
        self,
        job_id: str,
        status: JobStatus,
        text: str = "",
        results: list[ResultFile] | list[dict[str, Any]] | None = None,
        **values: Any,
    ) -> bool:
        """Move a job that has not ended to ``status``, with its ``results`` when given. A job
        that already ended (stopped while this worker was busy, say) is left as it is, and
        False returned."""
        fields: dict[str, Any] = {"status": int(status), "status_text": _cut(text or status.text)}
        if status.terminal:
            fields["finished"] = time.time()
        fields.update(values)
        with self._engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id, jobs.c.status.not_in(_TERMINAL_CODES))
                .values(**fields)
            )
            moved = done.rowcount == 1
            if moved and results is not None:
                _store_results(conn, job_id, [ResultFile.model_validate(r) for r in results])
        return moved

    def advance_from(
        self, job_id: str, expected: JobStatus, status: JobStatus, text: str = ""
    ) -> bool:
        """Move a job to ``status`` only if it is still in ``expected``."""
        fields: dict[str, Any] = {"status": int(status), "status_text": _cut(text or status.text)}
        if status.terminal:
            fields["finished"] = time.time()
        with self._engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id, jobs.c.status == int(expected))
                .values(**fields)
            )
        return done.rowcount == 1

    def start_attempt(self, job_id: str, status: JobStatus = JobStatus.CONFIGURING) -> bool:
        """Count an attempt at a job that has not ended and move it to its first stage
        (``status``: configuring, or pulling its image); False if it has ended."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id, jobs.c.status.not_in(_TERMINAL_CODES))
                .values(
                    status=int(status),
                    status_text=status.text,
                    started=time.time(),
                    attempts=jobs.c.attempts + 1,
                )
            )
        return done.rowcount == 1

    def request_stop(self, job_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(stopreq=1))

    def adopt_old_results(self) -> int:
        """Move the results of jobs that ended before results had rows of their own (a list in
        the job's row) into the manifest and file rows; ended jobs without results get an
        empty manifest, so that this finds nothing the next time. Returns the jobs moved."""
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(jobs.c.job_id, jobs.c.results).where(
                    jobs.c.status.in_(_TERMINAL_CODES),
                    jobs.c.job_id.not_in(select(job_manifests.c.job_id)),
                )
            ).all()
            for row in rows:
                listed = [ResultFile.model_validate(r) for r in row.results or []]
                _store_results(conn, row.job_id, listed)
            if rows:
                conn.execute(
                    update(jobs)
                    .where(jobs.c.job_id.in_([r.job_id for r in rows]))
                    .values(results=[])
                )
        return len(rows)

    def count_by_status(self) -> dict[int, int]:
        """How many jobs there are in each status (by code); a status without jobs is absent."""
        with self._reader.connect() as conn:
            rows = conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status))
            return {int(status): int(n) for status, n in rows}

    def run_times(self, buckets: Sequence[float]) -> tuple[int, float, list[int]]:
        """Of the jobs that ran to an end: how many, their run time in all (seconds, from the
        start of their last attempt), and how many ran within each of ``buckets`` seconds."""
        duration = jobs.c.finished - jobs.c.started
        ran = select(
            func.count(),
            func.coalesce(func.sum(duration), 0.0),
            *(func.coalesce(func.sum(case((duration <= b, 1), else_=0)), 0) for b in buckets),
        ).where(jobs.c.started.is_not(None), jobs.c.finished.is_not(None))
        with self._reader.connect() as conn:
            total, seconds, *within = conn.execute(ran).one()
        return int(total), float(seconds), [int(n) for n in within]

    def mark_removed(self, job_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id)
                .values(removed=1, results=[], status_text="Results and logs removed")
            )
            _drop_results(conn, job_id)

    # -- storage time ------------------------------------------------------------------------

    def give_expiry(self, storage_times: dict[str, float]) -> int:
        """Ended jobs with results and no expiry yet (they ended before expiry existed, or
        the engine's process ended before it wrote one) get their environment's storage time
        after their end; an environment whose time is 0 keeps them. Returns the jobs given
        one."""
        given = 0
        with self._engine.begin() as conn:
            for env, seconds in storage_times.items():
                if seconds <= 0:
                    continue
                done = conn.execute(
                    update(jobs)
                    .where(
                        jobs.c.environment == env,
                        jobs.c.status.in_(_TERMINAL_CODES),
                        jobs.c.finished.is_not(None),
                        jobs.c.expires_at.is_(None),
                        jobs.c.expired == KEPT,
                        jobs.c.removed == 0,
                    )
                    .values(expires_at=jobs.c.finished + seconds)
                )
                given += done.rowcount
        return given

    def due_to_expire(self, now: float, limit: int = 100, skip: Collection[str] = ()) -> list[str]:
        """Jobs whose storage time has passed and whose results are not yet deleted (those a
        sweep marked and did not finish among them), the longest due first; none of
        ``skip``."""
        with self._reader.connect() as conn:
            found = conn.execute(
                select(jobs.c.job_id)
                .where(
                    jobs.c.expires_at <= now,
                    jobs.c.expired != EXPIRED,
                    jobs.c.removed == 0,
                    jobs.c.status.in_(_TERMINAL_CODES),
                    jobs.c.job_id.not_in(list(skip)),
                    self._own(),
                )
                .order_by(jobs.c.expires_at)
                .limit(limit)
            ).scalars()
            return list(found)

    def mark_expiring(self, job_id: str) -> None:
        """From now on the job's results are not served: written before they are deleted,
        so that a deletion cut short is finished by the next sweep and nothing half deleted
        is ever served."""
        with self._engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id, jobs.c.expired == KEPT)
                .values(expired=EXPIRING)
            )

    def mark_expired(self, job_id: str) -> None:
        """The job's results and logs are deleted; its list of results and receipt stay."""
        with self._engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(expired=EXPIRED))

    def stored_bytes(self) -> int:
        """What the results of every job not deleted or expired take, as their lists say."""
        with self._reader.connect() as conn:
            total = conn.execute(
                select(func.coalesce(func.sum(job_manifests.c.size), 0))
                .select_from(job_manifests.join(jobs, jobs.c.job_id == job_manifests.c.job_id))
                .where(jobs.c.removed == 0, jobs.c.expired == KEPT)
            ).scalar_one()
        return int(total)


def _status_row(conn: Connection, job_id: str) -> Any:
    row = conn.execute(_STATUS.where(jobs.c.job_id == job_id)).first()
    if row is None:
        raise NotFound(f"unknown job {job_id}")
    return row


def _results(conn: Connection, job_id: str, offset: int, limit: int) -> list[ResultFile]:
    rows = conn.execute(
        select(job_results)
        .where(
            job_results.c.job_id == job_id,
            job_results.c.idx >= offset,
            job_results.c.idx < offset + limit,
        )
        .order_by(job_results.c.idx)
    ).all()
    return [_result(r) for r in rows]


def _drop_results(conn: Connection, job_id: str) -> None:
    conn.execute(delete(job_results).where(job_results.c.job_id == job_id))
    conn.execute(delete(job_manifests).where(job_manifests.c.job_id == job_id))


def _store_results(conn: Connection, job_id: str, results: list[ResultFile]) -> None:
    _drop_results(conn, job_id)
    listed = [r.model_dump(mode="json") for r in results]
    conn.execute(
        insert(job_manifests).values(
            job_id=job_id,
            count=len(results),
            size=sum(r.filesize for r in results),
            sha256=canonical_sha256(listed),
        )
    )
    if results:
        conn.execute(
            insert(job_results),
            [
                {
                    "job_id": job_id,
                    "idx": r.index,
                    "filename": r.filename,
                    "filesize": r.filesize,
                    "type": r.type,
                    "sha256": r.sha256,
                }
                for r in results
            ],
        )


def _info(row: Any) -> JobInfo:
    wf = row.workflow
    expired = row.expired != KEPT
    text = row.status_text
    if expired:
        text = _cut(f"{text}; its results and logs expired and were deleted")
    return JobInfo(
        jobId=row.job_id,
        owner=wf["owner"],
        agreementId=row.agreement_id,
        did=row.did,
        inputDID=[i["did"] for i in wf["inputs"]],
        algoDID=wf["algorithm"].get("did", ""),
        environment=row.environment,
        status=row.status,
        statusText=text,
        dateCreated=_iso(row.created),
        dateStarted=_iso(row.started),
        dateFinished=_iso(row.finished),
        stopreq=row.stopreq,
        removed=row.removed,
        resultCount=row.result_count,
        resultsSha256=row.results_sha256,
        agreements=wf.get("agreements", []),
        resources=wf.get("resources") or {},
        network=wf.get("egress", []),
        algorithmChecksum=wf["algorithm"].get("checksum", ""),
        container=wf["algorithm"].get("container"),
        trust=wf.get("trust", ""),
        publishOutput=wf.get("publishOutput"),
        dateExpires=_iso(row.expires_at),
        resultsExpired=expired,
    )
