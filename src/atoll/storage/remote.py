"""Dataset inputs at a URL or in S3: fetched once, through the network guard, into the
content-addressed cache, and mounted from there like a local file.

A remote location is kept private by the provider like a local path: the text
``remote:{json}`` (:class:`RemoteLocation`) holds the publisher (whose host grants apply),
the URL and the headers it set, or the S3 location and the keys it gave (none: the provider's
standard AWS credential chain, on buckets the operator grants that publisher).

Each use asks the source for its version (HEAD: ETag, Last-Modified, size); the cached copy
serves while the source says it is the version it was fetched at. Otherwise the file is
fetched again and verified while it streams to disk: a source that now holds other bytes is
:class:`~atoll.storage.errors.InputModified`, and its bytes are not kept.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from atoll.storage.cache import Readable, SourceCache
from atoll.storage.errors import (
    InputUnavailable,
    SourceError,
    SourceRefused,
    SourceUnavailable,
)
from atoll.storage.guard import (
    GuardedResponse,
    HttpFailure,
    NetworkGuard,
    SourcePolicy,
    http_failure,
)
from atoll.storage.interface import PreparedInput, Progress, PublishedInput
from atoll.storage.local_files import FileRefused, Fingerprint, opened
from atoll.storage.s3_client import (
    S3Credentials,
    S3Location,
    client_errors,
    error_code,
    is_missing,
    make_client,
)

PREFIX = "remote:"
#: the hosts of AWS's own S3 endpoints, reached when a location names no endpoint
AWS_HOSTS = ("*.amazonaws.com",)
_DENIED = frozenset({"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"})


def is_remote(location: str) -> bool:
    return location.startswith(PREFIX)


@dataclass(frozen=True)
class RemoteLocation:
    """Where a publisher's remote file is and what opens it; ``repr`` shows neither."""

    publisher: str
    url: str = field(default="", repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    s3: S3Location | None = field(default=None, repr=False)
    keys: S3Credentials | None = field(default=None, repr=False)

    def text(self) -> str:
        data: dict[str, Any] = {"publisher": self.publisher.lower()}
        if self.s3 is not None:
            data["s3"] = self.s3.text()
            if self.keys is not None:
                data["keys"] = [
                    self.keys.access_key_id,
                    self.keys.secret_access_key,
                    self.keys.session_token or "",
                ]
        else:
            data["url"] = self.url
            if self.headers:
                data["headers"] = dict(self.headers)
        return PREFIX + json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str) -> RemoteLocation:
        """Raises SourceRefused (naming nothing of the location)."""
        try:
            data = json.loads(text.removeprefix(PREFIX))
            keys = data.get("keys")
            return cls(
                publisher=str(data["publisher"]),
                url=str(data.get("url", "")),
                headers={str(k): str(v) for k, v in data.get("headers", {}).items()},
                s3=S3Location.parse(data["s3"]) if "s3" in data else None,
                keys=S3Credentials(keys[0], keys[1], keys[2] or None) if keys else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            raise SourceRefused("its location cannot be read") from None


def from_request(
    text: str,
    publisher: str,
    headers: Mapping[str, str] | None = None,
    keys: S3Credentials | None = None,
) -> RemoteLocation:
    """A location a publisher sent (``https://…``, ``http://…`` or ``s3://…``) as it will
    be kept. Raises SourceRefused."""
    if text.startswith("s3://"):
        try:
            s3 = S3Location.parse(text)
        except ValueError as exc:
            raise SourceRefused(str(exc)) from None
        if not s3.key or s3.key.endswith("/"):
            raise SourceRefused("an S3 location names one object (s3://bucket/key)")
        return RemoteLocation(publisher, s3=s3, keys=keys)
    if text.startswith(("https://", "http://")):
        return RemoteLocation(publisher, url=text, headers=dict(headers or {}))
    raise SourceRefused("a remote location is an https://, http:// or s3:// URL")


class _S3Body:
    """An S3 object's body as the cache reads it."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def read(self, amt: int) -> bytes:
        try:
            return cast(bytes, self.body.read(amt))
        except SourceError:
            raise
        except client_errors():
            raise SourceUnavailable("its source broke off") from None

    def close(self) -> None:
        self.body.close()


class RemoteInputs:
    """An :class:`~atoll.storage.interface.InputSource` for remote locations."""

    def __init__(self, policy: SourcePolicy, cache: SourceCache) -> None:
        self.policy = policy
        self.cache = cache

    # -- the network side -------------------------------------------------------------

    def _guard(self, loc: RemoteLocation) -> NetworkGuard:
        if loc.s3 is not None and loc.s3.endpoint is None:
            return self.policy.guard(loc.publisher, extra_hosts=AWS_HOSTS)
        return self.policy.guard(loc.publisher)

    def _s3(self, loc: RemoteLocation, guard: NetworkGuard) -> Any:
        assert loc.s3 is not None
        if loc.keys is None and not self.policy.may_use_bucket(loc.publisher, loc.s3.bucket):
            raise SourceRefused("its bucket is not one the operator allows this publisher")
        if loc.s3.endpoint is not None:
            guard.check_url(loc.s3.endpoint)
        limits = guard.limits
        return make_client(
            loc.s3,
            loc.keys,
            sender=guard,
            connect_timeout=limits.stall_seconds,
            read_timeout=limits.stall_seconds,
            attempts=2,
        )

    def version(self, loc: RemoteLocation) -> str:
        """What the source says its file's version is now ("" when it says nothing that
        tells versions apart). SourceError when it cannot say."""
        guard = self._guard(loc)
        if loc.s3 is not None:
            client = self._s3(loc, guard)
            try:
                head = client.head_object(Bucket=loc.s3.bucket, Key=loc.s3.key)
            except client_errors() as exc:
                raise _s3_failure(exc) from None
            parts = [head.get("ETag", ""), head.get("VersionId", ""), head.get("ContentLength")]
            return json.dumps([*parts, str(head.get("LastModified", ""))])
        try:
            resp = guard.fetch(loc.url, loc.headers, method="HEAD")
        except HttpFailure as exc:
            if exc.status in (405, 501):  # no HEAD here: every use fetches it again
                return ""
            raise
        resp.close()
        etag, modified = resp.headers.get("ETag", ""), resp.headers.get("Last-Modified", "")
        if not etag and not modified:
            return ""
        return json.dumps([etag, modified, resp.headers.get("Content-Length", "")])

    @contextlib.contextmanager
    def _body(self, loc: RemoteLocation) -> Iterator[tuple[Readable, int | None]]:
        """The file's bytes as the source sends them, and their size if it says."""
        guard = self._guard(loc)
        if loc.s3 is not None:
            client = self._s3(loc, guard)
            try:
                obj = client.get_object(Bucket=loc.s3.bucket, Key=loc.s3.key)
            except client_errors() as exc:
                raise _s3_failure(exc) from None
            body = _S3Body(obj["Body"])
            try:
                yield body, obj.get("ContentLength")
            finally:
                body.close()
            return
        resp: GuardedResponse = guard.fetch(loc.url, loc.headers)
        length = resp.headers.get("Content-Length", "")
        try:
            yield resp, int(length) if length.isdigit() else None
        finally:
            resp.close()

    def take(self, loc: RemoteLocation, progress: Progress | None = None) -> tuple[str, int]:
        """Fetch a file being published, once: its SHA-256 and size (kept in the cache, so
        the first job does not fetch it again). Refused as any fetch is; SourceError."""
        with self._body(loc) as (body, size):
            version = self.version(loc)
            sha256, got = self.cache.add(body, size, progress)
        if version:
            self.cache.remember(sha256, loc.text(), version)
        return sha256, got

    def local_copy(self, location: str, sha256: str) -> Path:
        """Where the bytes of a dataset file are on this host: a local file's own path, a
        remote one's cached copy (which may have gone since: then reading it fails)."""
        if not is_remote(location):
            return Path(location)
        return self.cache.path(sha256)

    # -- the InputSource protocol -----------------------------------------------------

    def prepare(
        self,
        published: PublishedInput,
        job_user: tuple[int, int] | None,
        progress: Progress | None = None,
    ) -> PreparedInput:
        loc = RemoteLocation.parse(published.location)
        with self.cache.locked(published.sha256):
            now = self.version(loc)
            cached = self.cache.lookup(published.sha256)
            if (
                cached is None
                or not now
                or self.cache.remembered(published.sha256, published.location) != now
            ):
                with self._body(loc) as (body, size):
                    cached = self.cache.fill(published.sha256, body, size, progress)
                if now:
                    self.cache.remember(published.sha256, published.location, now)
            return PreparedInput(cached, _fingerprint(cached))

    def unchanged(self, published: PublishedInput, prepared: PreparedInput) -> bool:
        """The cached copy is as it was mounted, and the source (when it answers) still
        says the version it was fetched at."""
        if _fingerprint_or_none(prepared.path) != prepared.version:
            return False
        try:
            now = self.version(RemoteLocation.parse(published.location))
        except SourceUnavailable:
            # the job ran on the verified published bytes; a source away now changes nothing
            return True
        except SourceError:
            return False
        return not now or now == self.cache.remembered(published.sha256, published.location)

    @contextlib.contextmanager
    def open(self, location: str) -> Iterator[BinaryIO]:
        """The bytes at the source, streamed through the guard (not the cache)."""
        loc = RemoteLocation.parse(location)
        with self._body(loc) as (body, _):
            yield cast(BinaryIO, _Stream(body))


class _Stream:
    def __init__(self, body: Readable) -> None:
        self.body = body

    def read(self, amt: int = -1) -> bytes:
        if amt is None or amt < 0:
            raise InputUnavailable("a source is read in parts")
        return self.body.read(amt)


def _s3_failure(exc: Exception) -> SourceError:
    if is_missing(exc):
        return SourceUnavailable("is no longer at its source (not found)")
    code = error_code(exc)
    if code in _DENIED:
        return SourceUnavailable("its source refused the credentials or the access")
    if code.isdigit():
        return http_failure(int(code))
    if code:
        return SourceUnavailable("its source answered with an error")
    return SourceUnavailable("its source cannot be reached")


def _fingerprint(path: Path) -> tuple[int, ...]:
    fp = _fingerprint_or_none(path)
    if fp is None:
        raise SourceUnavailable("its cached copy is no longer available")
    return fp


def _fingerprint_or_none(path: Path) -> tuple[int, ...] | None:
    try:
        with opened(os.fspath(path)) as f:
            return tuple(Fingerprint.of(f.stat).as_list())
    except (FileRefused, OSError):
        return None
