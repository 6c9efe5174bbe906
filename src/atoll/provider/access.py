"""The data access service: a consumer holding an access agreement downloads the asset's
files through the provider, which streams them from the input source and never shows their
location.

A download is allowed under an agreement that exists on chain, was made from this
deployment's access template, is for this asset, belongs to the caller, pays the asset's
owner (registered on chain, naming this provider) the access service's price in our token,
with its time out; whose payment is locked in escrow; that is neither aborted nor timed out;
and whose count of complete downloads of the file is not used up
(:mod:`atoll.chain.access_ledger`). Each refusal has its own message and a 4xx status.

``Range: bytes=a-b`` (or ``a-``, or ``-n``) serves part of a file (206), so that a broken
download resumes where it stopped; a range past the end is answered 416. A download counts
once the response that reaches the file's last byte has been sent; then the keeper is told,
and it fulfils the access condition and pays the publisher.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio

from atoll.catalog.store import AssetStore
from atoll.chain.access_ledger import DOWNLOADS_PER_FILE, AccessLedger, NewAccess
from atoll.chain.deployment import ChainNode, address_of
from atoll.chain.errors import ChainError
from atoll.chain.records import ConditionState, TemplateState, did_bytes
from atoll.errors import AtollError, BadRequest, Conflict, Forbidden, NotFound, RemoteError
from atoll.models.ddo import DDO, PrivateFile
from atoll.provider.agreements import AGREEMENT_ID, PaymentRequired
from atoll.provider.terms import check_owner
from atoll.storage.errors import InputModified, StorageError
from atoll.storage.interface import InputSource, PreparedInput, PublishedInput
from atoll.storage.local_files import Fingerprint
from atoll.storage.remote import is_remote

#: bytes read from the source at a time: few thread hops per gigabyte, little memory
CHUNK = 4 << 20

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(AtollError):
    """416, with the file's size in ``Content-Range`` as HTTP asks."""

    status_code = 416

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.headers = {"Content-Range": f"bytes */{size}"}


@dataclass(frozen=True)
class Span:
    """The bytes ``[start, end]`` (inclusive) of a file of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def partial(self) -> bool:
        return self.length != self.size

    @property
    def reaches_end(self) -> bool:
        return self.end == self.size - 1 or self.size == 0


def parse_range(header: str | None, size: int) -> Span:
    """The span a ``Range`` header asks of a file of ``size`` bytes: the whole file without
    one, or with one this service does not serve (several ranges, another unit), as HTTP
    lets a server do; RangeNotSatisfiable for a range that starts past the end."""
    whole = Span(0, size - 1, size)
    if not header:
        return whole
    m = _RANGE.match(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return whole
    first, last = m.group(1), m.group(2)
    if not first:  # the last n bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable(f"the range asks for no bytes of a {size}-byte file", size)
        return Span(max(size - n, 0), size - 1, size) if size else whole
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable(f"the range starts past the end of the {size}-byte file", size)
    return Span(start, end, size)


@dataclass(frozen=True)
class Download:
    """A file the caller may download now, and under which agreement."""

    agreement_id: str
    did: str
    file: PrivateFile
    #: a URL or S3 file's verified copy in the source cache, served instead of the source
    cached: Path | None = None


class AccessService:
    def __init__(
        self,
        node: ChainNode,
        ledger: AccessLedger,
        assets: AssetStore,
        inputs: InputSource,
        on_served: Callable[[], None] = lambda: None,
    ) -> None:
        self.node = node
        self.ledger = ledger
        self.assets = assets
        self.inputs = inputs
        #: a file was served in full: the keeper may settle
        self.on_served = on_served
        self.provider = address_of(node.key)

    # -- authorisation ---------------------------------------------------------------------

    def authorize(self, consumer: str, did: str, agreement_id: str) -> tuple[DDO, str]:
        """The asset and the agreement (lower case) under which ``consumer`` may download
        it now; each refusal with its own message."""
        if not agreement_id:
            raise PaymentRequired(
                f"downloading the files of {did} needs an access agreement: order one with "
                f"`atoll access order {did}`"
            )
        if not AGREEMENT_ID.match(agreement_id):
            raise BadRequest("an agreement id is 0x followed by 64 hex digits")
        aid = agreement_id.lower()
        ddo = self.assets.get(did)
        service = ddo.service("access")
        if service is None:
            raise Forbidden(f"{did} offers no access service: its files cannot be downloaded")
        c = self.node.contracts
        if not c.book.has_access:
            raise NotFound("this provider's deployment has no access template")
        try:
            agreement = c.agreement(bytes.fromhex(aid[2:]))
            if agreement is None:
                raise NotFound(f"unknown agreement {aid}")
            template_ok = c.template_state(agreement.template) is TemplateState.APPROVED
            record = c.did_record(did)
            now = self.node.now()
        except ChainError as exc:
            raise RemoteError(f"the chain could not be read: {exc}", 503) from None
        if agreement.kind != "access":
            raise Forbidden(f"agreement {aid} is not a data access agreement")
        if not template_ok:
            raise Forbidden(f"agreement {aid} was made from a template that is not approved")
        if agreement.did != did_bytes(did):
            raise Forbidden(f"agreement {aid} is for another asset")
        if agreement.consumer.lower() != consumer.lower():
            raise Forbidden(f"agreement {aid} belongs to another consumer")
        check_owner(ddo, record, self.provider)
        if agreement.receiver.lower() != ddo.owner.lower():
            raise Forbidden(f"agreement {aid} pays another address than the owner of {did}")
        if agreement.token.lower() != c.book.token.lower():
            raise Forbidden(f"agreement {aid} pays in another token than this provider's")
        if agreement.price != service.price:
            raise Forbidden(
                f"agreement {aid} pays {agreement.price}, not the price of access to {did} "
                f"({service.price})"
            )
        timeout = agreement.deadline - agreement.created_at if agreement.deadline else 0
        if timeout != service.timeout:
            raise Forbidden(
                f"agreement {aid} times out after {timeout} s, not the {service.timeout} s "
                f"that access to {did} offers"
            )
        if agreement.lock.state is not ConditionState.FULFILLED:
            raise PaymentRequired(f"the payment of agreement {aid} is not locked in escrow")
        if agreement.access.state is ConditionState.ABORTED:
            raise Forbidden(f"agreement {aid} was aborted and refunded")
        if agreement.access.timed_out(now):
            raise Forbidden(f"agreement {aid} has timed out")
        self.ledger.ensure(
            NewAccess(aid, did, agreement.consumer, len(ddo.files), agreement.deadline)
        )
        return ddo, aid

    def files(self, consumer: str, did: str, agreement_id: str) -> dict[str, object]:
        """What the agreement lets the caller download: each file's size, type and sha256
        (which the DDO's ``filesChecksum`` binds), and the downloads counted so far."""
        ddo, aid = self.authorize(consumer, did, agreement_id)
        counted = self.ledger.downloads(aid)
        return {
            "did": ddo.id,
            "agreementId": aid,
            "downloadsPerFile": DOWNLOADS_PER_FILE,
            "files": [
                {
                    "index": f.index,
                    "contentType": f.contentType,
                    "contentLength": f.size,
                    "sha256": f.sha256,
                    "downloads": counted.get(f.index, 0),
                }
                for f in self.assets.files(ddo.id)
            ],
        }

    def download(self, consumer: str, did: str, agreement_id: str, index: int) -> Download:
        ddo, aid = self.authorize(consumer, did, agreement_id)
        files = self.assets.files(ddo.id)
        if index >= len(files):
            raise NotFound(f"file index {index} is out of range (the asset has {len(files)})")
        self.ledger.allow(aid, index)
        file = files[index]
        prepared = self._confirm(ddo.id, file)
        cached = prepared.path if is_remote(file.location) else None
        return Download(aid, ddo.id, file, cached)

    def _confirm(self, did: str, file: PrivateFile) -> PreparedInput:
        """The file still holds the published bytes (a file whose fingerprint has not moved
        is not read again)."""
        prints = self.assets.fingerprints(did)
        fp = prints.get(file.index)
        version = tuple(fp.as_list()) if fp is not None else ()
        where = f"file {file.index} of {did}"
        try:
            prepared = self.inputs.prepare(
                PublishedInput(file.location, file.sha256, version), None
            )
        except InputModified:
            raise Conflict(f"{where} has changed since it was published") from None
        except StorageError:
            raise Conflict(f"{where} is no longer available") from None
        if prepared.version != version and len(prepared.version) == 5:
            self.assets.set_fingerprint(
                did, file.index, Fingerprint.from_list(list(prepared.version))
            )
        return prepared

    # -- streaming -------------------------------------------------------------------------

    async def stream(self, download: Download, span: Span) -> AsyncIterator[bytes]:
        """The span's bytes, read from the source in a worker thread; the download is
        counted once the last byte of the file has been handed on."""
        location = download.file.location
        loop = asyncio.get_running_loop()
        # a remote file is served from the copy checked against its checksum just now, never
        # fetched again unverified
        opened = download.cached.open("rb") if download.cached else self.inputs.open(location)
        with opened as source:
            await anyio.to_thread.run_sync(_skip_to, source, span.start)
            left = span.length
            ahead = loop.run_in_executor(None, source.read, min(CHUNK, left)) if left else None
            try:
                while ahead is not None:
                    chunk = await ahead
                    ahead = None
                    if not chunk:
                        return  # the file is shorter than published: never counted
                    left -= len(chunk)
                    if left > 0:
                        # the next chunk is read while this one is sent
                        ahead = loop.run_in_executor(None, source.read, min(CHUNK, left))
                    yield chunk
            finally:
                if ahead is not None:  # a download broken off: no read outlives the file
                    await asyncio.wait([ahead])
        if span.reaches_end:
            counted = await anyio.to_thread.run_sync(
                self.ledger.completed, download.agreement_id, download.file.index
            )
            if counted:
                self.on_served()


def _skip_to(source: BinaryIO, offset: int) -> None:
    if offset == 0:
        return
    if source.seekable():
        source.seek(offset)
        return
    left = offset
    while left > 0:  # a source that cannot seek (a stream from elsewhere) is read past
        got = source.read(min(CHUNK, left))
        if not got:
            return
        left -= len(got)
