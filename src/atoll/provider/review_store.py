"""The release queue's records: each ended job's check report, who may review it, each checked
file's state, and the reviewers' signed decisions.

A file's state moves only forward, each step made by a conditional update so that two
reviewers deciding at once cannot both move it: ``held`` → ``released``, ``rejected`` or
``changed`` (its bytes moved after the check: never released).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from atoll.db import reader
from atoll.db.schema import job_checks, job_releases, job_reviewers, review_decisions
from atoll.disclosure import CheckReport
from atoll.errors import Conflict
from atoll.models.receipt import ReviewDecision, SignedRelease

RELEASED = "released"
HELD = "held"
REJECTED = "rejected"
CHANGED = "changed"


@dataclass(frozen=True)
class Checked:
    """A job's check record."""

    job_id: str
    owner: str
    inputs: list[str]
    mode: str
    reviewers_required: int
    digest: str
    report: CheckReport


@dataclass(frozen=True)
class FileState:
    """One checked file of a job, as the store holds it."""

    job_id: str
    index: int
    kind: str
    filename: str
    size: int
    sha256: str
    state: str
    release: SignedRelease | None


class ReviewStore:
    def __init__(self, db: Engine) -> None:
        self.db = db
        self._reader = reader(db)

    def record(
        self,
        checked: Checked,
        files: list[FileState],
        reviewers: set[str],
    ) -> bool:
        """Store a job's checks once; a second call (another process, a retried end) keeps
        the first, and is answered False."""
        try:
            with self.db.begin() as conn:
                conn.execute(
                    insert(job_checks).values(
                        job_id=checked.job_id,
                        owner=checked.owner.lower(),
                        inputs=checked.inputs,
                        mode=checked.mode,
                        reviewers_required=checked.reviewers_required,
                        digest=checked.digest,
                        report=checked.report.model_dump(mode="json"),
                        created=time.time(),
                    )
                )
                if reviewers:
                    conn.execute(
                        insert(job_reviewers),
                        [{"job_id": checked.job_id, "address": a.lower()} for a in reviewers],
                    )
                if files:
                    conn.execute(
                        insert(job_releases),
                        [
                            {
                                "job_id": f.job_id,
                                "idx": f.index,
                                "kind": f.kind,
                                "filename": f.filename,
                                "size": f.size,
                                "sha256": f.sha256,
                                "state": f.state,
                                "release": None,
                            }
                            for f in files
                        ],
                    )
        except IntegrityError:
            return False
        return True

    def checked(self, job_id: str) -> Checked | None:
        with self._reader.connect() as conn:
            row = conn.execute(select(job_checks).where(job_checks.c.job_id == job_id)).first()
        return None if row is None else _checked(row)

    def files(self, job_id: str) -> list[FileState]:
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(job_releases)
                .where(job_releases.c.job_id == job_id)
                .order_by(job_releases.c.idx)
            ).all()
        return [_state(r) for r in rows]

    def file(self, job_id: str, index: int) -> FileState | None:
        with self._reader.connect() as conn:
            row = conn.execute(
                select(job_releases).where(
                    and_(job_releases.c.job_id == job_id, job_releases.c.idx == index)
                )
            ).first()
        return None if row is None else _state(row)

    def is_reviewer(self, job_id: str, address: str) -> bool:
        with self._reader.connect() as conn:
            row = conn.execute(
                select(job_reviewers.c.address).where(
                    and_(
                        job_reviewers.c.job_id == job_id,
                        job_reviewers.c.address == address.lower(),
                    )
                )
            ).first()
        return row is not None

    def held_for(self, reviewer: str, limit: int = 500, offset: int = 0) -> list[FileState]:
        """The held files of every job ``reviewer`` may review, oldest job first."""
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(job_releases)
                .join(job_reviewers, job_reviewers.c.job_id == job_releases.c.job_id)
                .join(job_checks, job_checks.c.job_id == job_releases.c.job_id)
                .where(
                    and_(job_reviewers.c.address == reviewer.lower(), job_releases.c.state == HELD)
                )
                .order_by(job_checks.c.created, job_releases.c.job_id, job_releases.c.idx)
                .limit(limit)
                .offset(offset)
            ).all()
        return [_state(r) for r in rows]

    def held_count(self, reviewer: str) -> int:
        """How many files :meth:`held_for` has in all."""
        with self._reader.connect() as conn:
            found = conn.execute(
                select(func.count())
                .select_from(job_releases)
                .join(job_reviewers, job_reviewers.c.job_id == job_releases.c.job_id)
                .where(
                    and_(job_reviewers.c.address == reviewer.lower(), job_releases.c.state == HELD)
                )
            ).scalar()
        return int(found or 0)

    def jobs_for(self, reviewer: str, limit: int = 50, offset: int = 0) -> list[Checked]:
        """The checked jobs ``reviewer`` may review (on its datasets), newest first."""
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(job_checks)
                .join(job_reviewers, job_reviewers.c.job_id == job_checks.c.job_id)
                .where(job_reviewers.c.address == reviewer.lower())
                .order_by(job_checks.c.created.desc(), job_checks.c.job_id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [_checked(r) for r in rows]

    def decisions(self, job_id: str, index: int) -> list[ReviewDecision]:
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(review_decisions)
                .where(and_(review_decisions.c.job_id == job_id, review_decisions.c.idx == index))
                .order_by(review_decisions.c.created)
            ).all()
        return [
            ReviewDecision(
                reviewer=r.reviewer,
                decision=r.decision,
                reason=r.reason,
                bodyDigest=r.body_digest,
                nonce=r.nonce,
                signature=r.signature,
            )
            for r in rows
        ]

    def approvals(self, job_id: str) -> dict[int, int]:
        """How many distinct reviewers approved each file of the job."""
        counts: dict[int, int] = {}
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(review_decisions.c.idx).where(
                    and_(
                        review_decisions.c.job_id == job_id,
                        review_decisions.c.decision == "approve",
                    )
                )
            ).all()
        for r in rows:
            counts[r.idx] = counts.get(r.idx, 0) + 1
        return counts

    def decide(self, job_id: str, index: int, decision: ReviewDecision) -> None:
        """Record one reviewer's decision on a held file; a reviewer decides a file once."""
        try:
            with self.db.begin() as conn:
                conn.execute(
                    insert(review_decisions).values(
                        job_id=job_id,
                        idx=index,
                        reviewer=decision.reviewer,
                        decision=decision.decision,
                        reason=decision.reason,
                        body_digest=decision.bodyDigest,
                        nonce=decision.nonce,
                        signature=decision.signature,
                        created=time.time(),
                    )
                )
        except IntegrityError:
            raise Conflict(f"you have already decided on result {index} of job {job_id}") from None

    def move(
        self, job_id: str, index: int, state: str, release: SignedRelease | None = None
    ) -> bool:
        """Move a held file to ``state``; False if it was not held any more."""
        values: dict[str, Any] = {"state": state}
        if release is not None:
            values["release"] = release.model_dump(mode="json")
        with self.db.begin() as conn:
            moved = conn.execute(
                update(job_releases)
                .where(
                    and_(
                        job_releases.c.job_id == job_id,
                        job_releases.c.idx == index,
                        job_releases.c.state == HELD,
                    )
                )
                .values(**values)
            ).rowcount
        return bool(moved)


def _checked(row: Any) -> Checked:
    return Checked(
        row.job_id,
        row.owner,
        list(row.inputs),
        row.mode,
        row.reviewers_required,
        row.digest,
        CheckReport.model_validate(row.report),
    )


def _state(row: Any) -> FileState:
    return FileState(
        job_id=row.job_id,
        index=row.idx,
        kind=row.kind,
        filename=row.filename,
        size=row.size,
        sha256=row.sha256,
        state=row.state,
        release=None if row.release is None else SignedRelease.model_validate(row.release),
    )
