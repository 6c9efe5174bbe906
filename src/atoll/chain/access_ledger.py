"""The provider's ledger of data access agreements: the complete downloads of each file
served under each agreement, and how each agreement was settled. One transaction per
change, so a crash leaves every row either before or after it.

What an agreement allows: each of the asset's files, downloaded to its end at most
:data:`DOWNLOADS_PER_FILE` times, until the agreement's time out. A download counts once it
has been served to the file's last byte: a download broken off and resumed with ``Range``
counts once, in the request that reaches the end.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from atoll.db.inserts import insert_if_new
from atoll.db.schema import access_agreements, access_downloads
from atoll.errors import Forbidden

#: complete downloads of each file one agreement allows (a second and third for a consumer
#: whose copy was lost or damaged after it arrived)
DOWNLOADS_PER_FILE = 3
#: ``settled`` of an agreement closed for a refund whose chain transactions are not yet done
REFUNDING = "refunding"


@dataclass(frozen=True)
class NewAccess:
    agreement_id: str
    did: str
    consumer: str
    files: int
    deadline: int


@dataclass(frozen=True)
class AccessRow:
    agreement_id: str
    did: str
    consumer: str
    files: int
    deadline: int
    settled: str
    #: files downloaded to their end at least once
    served: int


def insert_new(conn: Connection, found: list[NewAccess]) -> None:
    """Record agreements not yet known, in the caller's transaction."""
    for a in found:
        insert_if_new(
            conn,
            access_agreements,
            {
                "agreement_id": a.agreement_id,
                "did": a.did,
                "consumer": a.consumer.lower(),
                "files": a.files,
                "deadline": a.deadline,
                "settled": "",
            },
        )


class AccessLedger:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def ensure(self, a: NewAccess) -> None:
        """Record an agreement the provider found on chain before the keeper did."""
        with contextlib.suppress(IntegrityError), self._engine.begin() as conn:
            insert_new(conn, [a])

    def allow(self, agreement_id: str, index: int) -> None:
        """Refuse a download the agreement no longer allows: settled by a refund, or this
        file downloaded in full as often as it may be."""
        with self._engine.connect() as conn:
            settled = conn.execute(
                select(access_agreements.c.settled).where(
                    access_agreements.c.agreement_id == agreement_id
                )
            ).scalar()
            done = conn.execute(
                select(access_downloads.c.completed).where(
                    access_downloads.c.agreement_id == agreement_id,
                    access_downloads.c.idx == index,
                )
            ).scalar()
        if settled is None:
            raise Forbidden(f"agreement {agreement_id} is not known to this provider")
        if settled not in ("", "released"):
            raise Forbidden(f"agreement {agreement_id} is already settled ({settled})")
        if (done or 0) >= DOWNLOADS_PER_FILE:
            raise Forbidden(
                f"agreement {agreement_id} allows {DOWNLOADS_PER_FILE} complete downloads of "
                f"file {index}, and all were served"
            )

    def completed(self, agreement_id: str, index: int) -> bool:
        """Count a download of file ``index`` served to its end; False when the agreement
        was closed for a refund meanwhile (it is not counted: the refund stands)."""
        try:
            return self._complete(agreement_id, index)
        except IntegrityError:  # the file's first two downloads ended at once: count again
            return self._complete(agreement_id, index)

    def _complete(self, agreement_id: str, index: int) -> bool:
        with self._engine.begin() as conn:
            open_ = conn.execute(
                select(access_agreements.c.agreement_id).where(
                    access_agreements.c.agreement_id == agreement_id,
                    access_agreements.c.settled.in_(("", "released")),
                )
            ).first()
            if open_ is None:
                return False
            done = conn.execute(
                update(access_downloads)
                .where(
                    access_downloads.c.agreement_id == agreement_id,
                    access_downloads.c.idx == index,
                )
                .values(completed=access_downloads.c.completed + 1)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(access_downloads).values(
                        agreement_id=agreement_id, idx=index, completed=1
                    )
                )
        return True

    def downloads(self, agreement_id: str) -> dict[int, int]:
        """``{file index: complete downloads}`` of the agreement."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(access_downloads.c.idx, access_downloads.c.completed).where(
                    access_downloads.c.agreement_id == agreement_id
                )
            ).all()
        return {int(r.idx): int(r.completed) for r in rows}

    def open(self) -> list[AccessRow]:
        served = func.count(access_downloads.c.idx)
        stmt = (
            select(access_agreements, served.label("n_served"))
            .select_from(
                access_agreements.outerjoin(
                    access_downloads,
                    (access_downloads.c.agreement_id == access_agreements.c.agreement_id)
                    & (access_downloads.c.completed > 0),
                )
            )
            .where(access_agreements.c.settled.in_(("", REFUNDING)))
            .group_by(*access_agreements.c)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            AccessRow(
                agreement_id=r.agreement_id,
                did=r.did,
                consumer=r.consumer,
                files=r.files,
                deadline=r.deadline,
                settled=r.settled,
                served=int(r.n_served),
            )
            for r in rows
        ]

    def get(self, agreement_id: str) -> AccessRow | None:
        return next((a for a in self.open() if a.agreement_id == agreement_id), None)

    def settled(self, agreement_id: str) -> str | None:
        """How the agreement was settled ("" while open); None if unknown."""
        with self._engine.connect() as conn:
            value = conn.execute(
                select(access_agreements.c.settled).where(
                    access_agreements.c.agreement_id == agreement_id
                )
            ).scalar()
        return None if value is None else str(value)

    def close_for_refund(self, agreement_id: str) -> bool:
        """Close an agreement under which nothing was served for a refund, in one
        statement: no download can be counted against it afterwards."""
        served = select(access_downloads.c.agreement_id).where(
            access_downloads.c.agreement_id == agreement_id, access_downloads.c.completed > 0
        )
        with self._engine.begin() as conn:
            done = conn.execute(
                update(access_agreements)
                .where(
                    access_agreements.c.agreement_id == agreement_id,
                    access_agreements.c.settled == "",
                    ~served.exists(),
                )
                .values(settled=REFUNDING)
            )
        return done.rowcount == 1

    def settle(self, agreement_id: str, how: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(access_agreements)
                .where(access_agreements.c.agreement_id == agreement_id)
                .values(settled=how)
            )
