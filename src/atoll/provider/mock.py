"""Mock data of a dataset, kept by the provider: uploaded by the dataset's owner, or generated
from a schema inferred from its real file.

A generated schema is offered only once the owner has seen and approved it: the schema itself
can disclose (a rare category, an extreme value), and the owner is the one to judge that. An
approval names the schema's digest, so it approves the schema that was shown and no other.
Mock data is public by design; the real file's location never appears in anything served.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, delete, insert, select

from atoll.canonical import canonical_sha256
from atoll.catalog.store import AssetStore
from atoll.db.schema import mock_data
from atoll.disclosure.mock import MockSchema, generate_mock, infer_schema
from atoll.errors import BadRequest, Conflict, Forbidden, NotFound
from atoll.models.ddo import DDO
from atoll.models.job import InputFile
from atoll.models.mock import MockOffer, MockView
from atoll.models.output_policy import OutputChecks, OutputPolicy
from atoll.storage.local_files import Fingerprint

#: the largest mock file an owner may upload
MAX_MOCK_BYTES = 512 * 1024
#: the most rows an approval may ask to generate
MAX_MOCK_ROWS = 5000


def checks_of(ddo: DDO) -> OutputChecks:
    """The disclosure checks the dataset's output policy sets; the defaults where it sets
    none."""
    service = ddo.service("compute")
    output = getattr(service.compute, "output", None) if service and service.compute else None
    return output.checks if isinstance(output, OutputPolicy) else OutputChecks()


class MockData:
    """Mock files and generated schemas, per dataset; files under ``directory``."""

    def __init__(self, db: Engine, assets: AssetStore, directory: Path) -> None:
        self.db = db
        self.assets = assets
        self.directory = directory

    # -- the owner's side ------------------------------------------------------------------

    def _owned(self, owner: str, did: str) -> DDO:
        ddo = self.assets.get(did)
        if ddo.owner.lower() != owner.lower():
            raise Forbidden(f"only the owner of {did} may manage its mock data")
        if ddo.metadata.type != "dataset":
            raise BadRequest(f"{did} is not a dataset")
        return ddo

    def propose(self, owner: str, did: str, file_index: int = 0) -> MockView:
        """Infer a schema from the dataset's file ``file_index``: nothing is offered until
        the owner approves it (a mock offered before is withdrawn)."""
        ddo = self._owned(owner, did)
        files = self.assets.files(did)
        if not 0 <= file_index < len(files):
            raise BadRequest(
                f"file index {file_index} is out of range (the asset has {len(files)})"
            )
        threshold = checks_of(ddo).threshold
        try:
            location = Path(files[file_index].location)
            if not _looks_like_text(location):
                raise ValueError("not text")
            schema = infer_schema(location, threshold=threshold)
        except (OSError, UnicodeDecodeError, csv.Error, ValueError):
            # the reason would name the file or quote it: say only which one
            raise BadRequest(
                f"file {file_index} of {did} cannot be read as CSV text: upload mock data instead"
            ) from None
        self._replace(
            did,
            source="generated",
            state="proposed",
            mock_schema=schema.model_dump(mode="json"),
            columns=[c.name for c in schema.columns],
            file_index=file_index,
        )
        return self.view(owner, did)

    def view(self, owner: str, did: str) -> MockView:
        self._owned(owner, did)
        row = self._row(did)
        if row is None:
            raise NotFound(f"{did} has no mock data and no proposed schema")
        schema = row.mock_schema
        return MockView(
            did=did,
            source=row.source,
            state=row.state,
            mockSchema=schema,
            schemaSha256=canonical_sha256(schema) if schema is not None else "",
            offer=_offer(row) if row.state == "offered" else None,
        )

    def approve(
        self, owner: str, did: str, schema_sha256: str, rows: int = 100, seed: int = 0
    ) -> MockOffer:
        """Generate mock rows from the proposed schema and offer them."""
        self._owned(owner, did)
        if not 1 <= rows <= MAX_MOCK_ROWS:
            raise BadRequest(f"rows must be 1 to {MAX_MOCK_ROWS}")
        row = self._row(did)
        if row is None or row.mock_schema is None:
            raise NotFound(f"{did} has no proposed schema: infer one first")
        if canonical_sha256(row.mock_schema) != schema_sha256:
            raise Conflict("the schema has changed since it was shown: look at it again")
        schema = MockSchema.model_validate(row.mock_schema)
        real = self.assets.files(did)[row.file_index]
        # given the real file, a generated row that happens to match a real one is redrawn
        text = generate_mock(schema, rows=rows, seed=seed, real=Path(real.location))
        return self._store(did, "generated", text.encode(), row.mock_schema, row.file_index)

    def attach(self, owner: str, did: str, content: bytes) -> MockOffer:
        """The owner's own mock file, offered at once: they made it to be shown."""
        self._owned(owner, did)
        if len(content) > MAX_MOCK_BYTES:
            raise BadRequest(f"mock data is limited to {MAX_MOCK_BYTES} bytes")
        header, _ = _csv_shape(content)
        if not header:
            raise BadRequest("mock data must be CSV text (UTF-8) with a header row")
        return self._store(did, "uploaded", content, None)

    # -- everyone's side -------------------------------------------------------------------

    def offered(self, did: str) -> MockOffer:
        """The mock data ``did`` offers; NotFound while there is none, or a generated schema
        still awaits its owner's approval."""
        row = self._row(did)
        if row is None or row.state != "offered":
            self.assets.get(did)  # an unknown asset says so
            raise NotFound(f"{did} offers no mock data")
        return _offer(row)

    def path(self, did: str) -> Path:
        self.offered(did)
        row = self._row(did)
        assert row is not None
        return Path(row.location)

    def input_file(self, did: str) -> InputFile:
        """The offered mock file as a job's input: the provider's own file (held), with what
        it must still hold."""
        offer = self.offered(did)
        location = self.path(did)
        try:
            st = location.stat()
        except OSError:
            raise Conflict(f"the mock data of {did} is no longer available") from None
        return InputFile(
            location=str(location),
            sha256=offer.sha256,
            fingerprint=Fingerprint.of(st).as_list(),
            held=True,
        )

    # -- storage ---------------------------------------------------------------------------

    def _row(self, did: str) -> Any:
        with self.db.connect() as conn:
            return conn.execute(select(mock_data).where(mock_data.c.did == did)).first()

    def _replace(
        self,
        did: str,
        *,
        source: Literal["uploaded", "generated"],
        state: Literal["proposed", "offered"],
        mock_schema: dict[str, Any] | None,
        columns: list[str],
        file_index: int = 0,
        location: str = "",
        sha256: str = "",
        size: int = 0,
        rows: int = 0,
    ) -> None:
        old = self._row(did)
        with self.db.begin() as conn:
            conn.execute(delete(mock_data).where(mock_data.c.did == did))
            conn.execute(
                insert(mock_data).values(
                    did=did,
                    source=source,
                    state=state,
                    mock_schema=mock_schema,
                    file_index=file_index,
                    location=location,
                    sha256=sha256,
                    size=size,
                    rows=rows,
                    columns=columns,
                    updated=time.time(),
                )
            )
        if old is not None and old.location and old.location != location:
            Path(old.location).unlink(missing_ok=True)

    def _store(
        self,
        did: str,
        source: Literal["uploaded", "generated"],
        content: bytes,
        mock_schema: dict[str, Any] | None,
        file_index: int = 0,
    ) -> MockOffer:
        header, rows = _csv_shape(content)
        sha256 = hashlib.sha256(content).hexdigest()
        self.directory.mkdir(parents=True, exist_ok=True)
        # named by content: a new mock never overwrites a file a running dry run mounts
        target = self.directory / f"{hashlib.sha256(did.encode()).hexdigest()[:16]}-{sha256}.csv"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".mock-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._replace(
            did,
            source=source,
            state="offered",
            mock_schema=mock_schema,
            file_index=file_index,
            columns=header,
            location=str(target),
            sha256=sha256,
            size=len(content),
            rows=rows,
        )
        return self.offered(did)


def _offer(row: Any) -> MockOffer:
    return MockOffer(
        did=row.did,
        source=row.source,
        sha256=row.sha256,
        size=row.size,
        rows=row.rows,
        columns=list(row.columns),
    )


def _looks_like_text(path: Path) -> bool:
    """Whether the file starts as UTF-8 text: a binary file would give a schema of noise."""
    with path.open("rb") as f:
        head = f.read(64 * 1024)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _csv_shape(content: bytes) -> tuple[list[str], int]:
    """The header and the number of data rows; no header if it is not CSV text."""
    if b"\x00" in content:
        return [], 0
    try:
        text = content.decode("utf-8")
        reader = csv.reader(io.StringIO(text))
        header = next(reader, [])
        rows = sum(1 for _ in reader)
    except (UnicodeDecodeError, csv.Error):
        return [], 0
    names = [h.strip() for h in header]
    return (names, rows) if any(names) else ([], 0)
