"""The catalogue: DDOs for consumers, file locations for the provider alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, true
from sqlalchemy.exc import IntegrityError

from atoll.db.schema import asset_files, asset_fingerprints, asset_tags, assets
from atoll.errors import Conflict, NotFound
from atoll.models.ddo import DDO, PrivateFile
from atoll.storage.local_files import Fingerprint


class AssetStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(
        self, ddo: DDO, files: list[PrivateFile], prints: list[Fingerprint] | None = None
    ) -> None:
        meta = ddo.metadata
        text = " ".join([meta.name, meta.description, meta.author]).lower()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(assets).values(
                        did=ddo.id,
                        owner=ddo.owner.lower(),
                        type=meta.type,
                        name=meta.name,
                        search_text=text,
                        created=ddo.created,
                        ddo=ddo.public_json(),
                    )
                )
                tags = sorted({t.lower() for t in meta.tags})
                if tags:
                    conn.execute(insert(asset_tags), [{"did": ddo.id, "tag": t} for t in tags])
                conn.execute(
                    insert(asset_files),
                    [
                        {
                            "did": ddo.id,
                            "idx": f.index,
                            "location": f.location,
                            "sha256": f.sha256,
                            "size": f.size,
                            "content_type": f.contentType,
                        }
                        for f in files
                    ],
                )
                if prints:
                    conn.execute(
                        insert(asset_fingerprints),
                        [_print_row(ddo.id, i, p) for i, p in enumerate(prints)],
                    )
        except IntegrityError:
            raise Conflict(f"{ddo.id} is already published") from None

    def update(self, ddo: DDO) -> None:
        with self._engine.begin() as conn:
            done = conn.execute(
                assets.update().where(assets.c.did == ddo.id).values(ddo=ddo.public_json())
            )
            if done.rowcount == 0:
                raise NotFound(f"unknown asset {ddo.id}")

    def get(self, did: str) -> DDO:
        with self._engine.connect() as conn:
            row = conn.execute(select(assets.c.ddo).where(assets.c.did == did)).first()
        if row is None:
            raise NotFound(f"unknown asset {did}")
        return DDO.model_validate(row.ddo)

    def exists(self, did: str) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(assets.c.did).where(assets.c.did == did)).first() is not None

    def files(self, did: str) -> list[PrivateFile]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(asset_files).where(asset_files.c.did == did).order_by(asset_files.c.idx)
            ).all()
        return [
            PrivateFile(
                index=r.idx,
                location=r.location,
                sha256=r.sha256,
                size=r.size,
                contentType=r.content_type,
            )
            for r in rows
        ]

    def fingerprints(self, did: str) -> dict[int, Fingerprint]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(asset_fingerprints).where(asset_fingerprints.c.did == did)
            ).all()
        return {
            r.idx: Fingerprint(r.size, int(r.mtime_ns), int(r.ctime_ns), int(r.ino), int(r.dev))
            for r in rows
        }

    def set_fingerprint(self, did: str, index: int, fp: Fingerprint) -> None:
        """Record that the file was found unchanged (rehashed) as it is now."""
        with self._engine.begin() as conn:
            conn.execute(
                delete(asset_fingerprints).where(
                    and_(asset_fingerprints.c.did == did, asset_fingerprints.c.idx == index)
                )
            )
            conn.execute(insert(asset_fingerprints).values(**_print_row(did, index, fp)))

    def owners_of_inode(self, dev: int, ino: int) -> set[str]:
        """Owners of the assets one of whose files is this very file."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(assets.c.owner)
                .join(asset_fingerprints, asset_fingerprints.c.did == assets.c.did)
                .where(
                    and_(asset_fingerprints.c.dev == str(dev), asset_fingerprints.c.ino == str(ino))
                )
            ).all()
        return {r.owner for r in rows}

    def search(
        self,
        text: str = "",
        tag: str = "",
        type: str = "",
        owner: str = "",
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[DDO]]:
        """Assets matching every given filter, newest first, and how many match in all. Each
        word of ``text`` must be found in the name, description, author or one of the tags."""
        conds: list[Any] = []
        for word in text.lower().split():
            # LIKE wildcards in the query are matched literally
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            # a word is found in the name, description or author, or in a tag
            in_tags = select(asset_tags.c.did).where(asset_tags.c.tag.like(pattern, escape="\\"))
            conds.append(
                or_(assets.c.search_text.like(pattern, escape="\\"), assets.c.did.in_(in_tags))
            )
        if tag:
            tagged = select(asset_tags.c.did).where(asset_tags.c.tag == tag.lower())
            conds.append(assets.c.did.in_(tagged))
        if type:
            conds.append(assets.c.type == type)
        if owner:
            conds.append(assets.c.owner == owner.lower())
        where = and_(true(), *conds)
        with self._engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(assets).where(where)).scalar_one()
            rows = conn.execute(
                select(assets.c.ddo)
                .where(where)
                .order_by(assets.c.created.desc(), assets.c.did)
                .limit(limit)
                .offset(offset)
            ).all()
        return total, [DDO.model_validate(r.ddo) for r in rows]

    def remove(self, did: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(asset_fingerprints).where(asset_fingerprints.c.did == did))
            conn.execute(delete(asset_files).where(asset_files.c.did == did))
            conn.execute(delete(asset_tags).where(asset_tags.c.did == did))
            conn.execute(delete(assets).where(assets.c.did == did))


def _print_row(did: str, index: int, fp: Fingerprint) -> dict[str, Any]:
    return {
        "did": did,
        "idx": index,
        "dev": str(fp.dev),
        "ino": str(fp.ino),
        "size": fp.size,
        "mtime_ns": str(fp.mtime_ns),
        "ctime_ns": str(fp.ctime_ns),
    }
