"""The provider's ledger of agreements: jobs counted against each agreement, what was
delivered, what was settled, and the keeper's event cursor. One transaction per change, so a
crash leaves every row either before or after it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, and_, func, insert, select, true, update
from sqlalchemy.exc import IntegrityError

from atoll.chain.access_ledger import NewAccess, insert_new
from atoll.db.inserts import insert_if_new
from atoll.db.schema import agreement_jobs, agreements, keeper_cursor
from atoll.errors import Forbidden

#: a job counted against its agreements whose registration with the operator is not confirmed
STARTING = "starting"
#: ``settled`` of an agreement closed for a refund whose chain transactions are not yet done
REFUNDING = "refunding"


@dataclass(frozen=True)
class AgreementRow:
    agreement_id: str
    did: str
    consumer: str
    max_jobs: int
    used: int
    deadline: int
    settled: str
    delivered: int
    running: int
    #: jobs that ended in a failure of the provider's (refunded)
    failed: int = 0


@dataclass(frozen=True)
class NewAgreement:
    agreement_id: str
    did: str
    consumer: str
    max_jobs: int
    deadline: int


class AgreementLedger:
    def __init__(self, engine: Engine, node: str = "") -> None:
        self._engine = engine
        #: this provider replica's name among those sharing the store: the jobs it starts
        #: carry it, and it repairs and follows only those ("": the store's only provider)
        self.node = node

    def _own(self) -> ColumnElement[bool]:
        return agreement_jobs.c.node == self.node if self.node else true()

    # -- agreements ------------------------------------------------------------------------

    def learn(
        self,
        found: list[NewAgreement],
        cursor: int | None = None,
        access: list[NewAccess] | None = None,
    ) -> None:
        """Record agreements (from chain events or a first start), compute and ``access``,
        and, in the same transaction, move the event cursor: an event is handled exactly
        once."""
        with self._engine.begin() as conn:
            insert_new(conn, access or [])
            for a in found:
                # a first start (on this replica or another) may record it at the same moment
                insert_if_new(
                    conn,
                    agreements,
                    {
                        "agreement_id": a.agreement_id,
                        "did": a.did,
                        "consumer": a.consumer.lower(),
                        "max_jobs": a.max_jobs,
                        "used": 0,
                        "deadline": a.deadline,
                        "settled": "",
                    },
                )
            if cursor is not None:
                done = conn.execute(
                    update(keeper_cursor)
                    .where(keeper_cursor.c.name == "events")
                    .values(block=cursor)
                )
                if done.rowcount == 0:
                    conn.execute(insert(keeper_cursor).values(name="events", block=cursor))

    def ensure(self, a: NewAgreement) -> None:
        with contextlib.suppress(IntegrityError):  # the keeper learnt it at the same moment
            self.learn([a])

    def cursor(self) -> int | None:
        with self._engine.connect() as conn:
            value = conn.execute(
                select(keeper_cursor.c.block).where(keeper_cursor.c.name == "events")
            ).scalar()
        return None if value is None else int(value)

    def reserve(self, job_id: str, agreement_ids: list[str]) -> None:
        """Count job ``job_id`` against each agreement, all or none, and record it as
        "starting" in the same transaction: a crash can never leave a count without its job
        (see :func:`atoll.provider.starts.reconcile_starts`)."""
        with self._engine.begin() as conn:
            for aid in agreement_ids:
                done = conn.execute(
                    update(agreements)
                    .where(
                        agreements.c.agreement_id == aid,
                        agreements.c.used < agreements.c.max_jobs,
                        agreements.c.settled == "",
                    )
                    .values(used=agreements.c.used + 1)
                )
                if done.rowcount != 1:
                    row = conn.execute(
                        select(agreements.c.max_jobs, agreements.c.settled).where(
                            agreements.c.agreement_id == aid
                        )
                    ).first()
                    conn.rollback()
                    if row is not None and row.settled:
                        raise Forbidden(f"agreement {aid} is already settled")
                    n = row.max_jobs if row is not None else 0
                    raise Forbidden(f"agreement {aid} allows {n} job(s), and all are used")
                conn.execute(
                    insert(agreement_jobs).values(
                        job_id=job_id,
                        agreement_id=aid,
                        state=STARTING,
                        manifest="",
                        node=self.node,
                    )
                )

    def unreserve(self, job_id: str) -> None:
        """Give back what :meth:`reserve` counted for a job that was never registered."""
        with self._engine.begin() as conn:
            aids = conn.execute(
                select(agreement_jobs.c.agreement_id).where(
                    agreement_jobs.c.job_id == job_id, agreement_jobs.c.state == STARTING
                )
            ).scalars()
            for aid in list(aids):
                gone = conn.execute(
                    agreement_jobs.delete().where(
                        agreement_jobs.c.job_id == job_id,
                        agreement_jobs.c.agreement_id == aid,
                        agreement_jobs.c.state == STARTING,
                    )
                )
                if gone.rowcount == 1:
                    conn.execute(
                        update(agreements)
                        .where(agreements.c.agreement_id == aid, agreements.c.used > 0)
                        .values(used=agreements.c.used - 1)
                    )

    # -- jobs ------------------------------------------------------------------------------

    def job_started(self, job_id: str) -> None:
        """The operator has the job: from now on its end decides what the agreements owe."""
        with self._engine.begin() as conn:
            conn.execute(
                update(agreement_jobs)
                .where(agreement_jobs.c.job_id == job_id, agreement_jobs.c.state == STARTING)
                .values(state="running")
            )

    def starting_jobs(self) -> list[str]:
        """Jobs counted but not known to be registered: what a crash during a start left."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(agreement_jobs.c.job_id)
                .where(agreement_jobs.c.state == STARTING, self._own())
                .distinct()
            ).scalars()
            return list(rows)

    def job_ended(self, job_id: str, delivered: bool, manifest: str) -> list[str]:
        """Record a job's end; a job the provider failed to deliver gives its slot back.
        Returns the agreements it touched (none if the end was already recorded). Each row
        moves only from "running", so two callers racing record the end once."""
        touched: list[str] = []
        with self._engine.begin() as conn:
            aids = conn.execute(
                select(agreement_jobs.c.agreement_id).where(
                    agreement_jobs.c.job_id == job_id, agreement_jobs.c.state == "running"
                )
            ).scalars()
            for aid in list(aids):
                moved = conn.execute(
                    update(agreement_jobs)
                    .where(
                        agreement_jobs.c.job_id == job_id,
                        agreement_jobs.c.agreement_id == aid,
                        agreement_jobs.c.state == "running",
                    )
                    .values(state="delivered" if delivered else "undelivered", manifest=manifest)
                )
                if moved.rowcount != 1:
                    continue
                touched.append(aid)
                if not delivered:
                    conn.execute(
                        update(agreements)
                        .where(agreements.c.agreement_id == aid, agreements.c.used > 0)
                        .values(used=agreements.c.used - 1)
                    )
        return touched

    def running_jobs(self) -> list[str]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(agreement_jobs.c.job_id)
                .where(agreement_jobs.c.state == "running", self._own())
                .distinct()
            ).scalars()
            return list(rows)

    def manifests(self, agreement_id: str) -> list[str]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(agreement_jobs.c.manifest)
                .where(
                    agreement_jobs.c.agreement_id == agreement_id,
                    agreement_jobs.c.state == "delivered",
                )
                .order_by(agreement_jobs.c.job_id)
            ).scalars()
            return list(rows)

    # -- settlement ------------------------------------------------------------------------

    def open(self) -> list[AgreementRow]:
        delivered = func.sum(
            func.cast(agreement_jobs.c.state == "delivered", agreements.c.used.type)
        )
        # a job still starting may yet run: it holds its agreement open like a running one
        running = func.sum(
            func.cast(agreement_jobs.c.state.in_(["running", STARTING]), agreements.c.used.type)
        )
        failed = func.sum(
            func.cast(agreement_jobs.c.state == "undelivered", agreements.c.used.type)
        )
        stmt = (
            select(
                agreements,
                func.coalesce(delivered, 0).label("n_delivered"),
                func.coalesce(running, 0).label("n_running"),
                func.coalesce(failed, 0).label("n_failed"),
            )
            .select_from(
                agreements.outerjoin(
                    agreement_jobs,
                    and_(agreement_jobs.c.agreement_id == agreements.c.agreement_id),
                )
            )
            .where(agreements.c.settled.in_(("", REFUNDING)))
            .group_by(*agreements.c)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            AgreementRow(
                agreement_id=r.agreement_id,
                did=r.did,
                consumer=r.consumer,
                max_jobs=r.max_jobs,
                used=r.used,
                deadline=r.deadline,
                settled=r.settled,
                delivered=int(r.n_delivered),
                running=int(r.n_running),
                failed=int(r.n_failed),
            )
            for r in rows
        ]

    def close_for_refund(self, agreement_id: str) -> bool:
        """Close an agreement that no job holds (none reserved or running) for a refund, in
        one statement: no job can be counted against it afterwards, and none is counted
        against it now."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(agreements)
                .where(
                    agreements.c.agreement_id == agreement_id,
                    agreements.c.settled == "",
                    agreements.c.used == 0,
                )
                .values(settled=REFUNDING)
            )
        return done.rowcount == 1

    def settle(self, agreement_id: str, how: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(agreements)
                .where(agreements.c.agreement_id == agreement_id)
                .values(settled=how)
            )

    def get(self, agreement_id: str) -> AgreementRow | None:
        return next((a for a in self.open() if a.agreement_id == agreement_id), None)

    def for_dids(self, dids: list[str], limit: int = 500) -> list[AgreementRow]:
        """The agreements on these datasets, open or settled (a publisher's earnings page);
        job counts are not read here (0)."""
        if not dids:
            return []
        stmt = (
            select(agreements)
            .where(agreements.c.did.in_(dids))
            .order_by(agreements.c.deadline.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            AgreementRow(
                agreement_id=r.agreement_id,
                did=r.did,
                consumer=r.consumer,
                max_jobs=r.max_jobs,
                used=r.used,
                deadline=r.deadline,
                settled=r.settled,
                delivered=0,
                running=0,
            )
            for r in rows
        ]
