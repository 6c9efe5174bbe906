"""Results in S3 (or any S3-compatible store): the result key ``a/b/c`` is the object
``<prefix>/a/b/c`` of the publisher's bucket.

An object is written once, as it streams: up to one part in memory at a time (a small result
in one request, a larger one as a multipart upload), hashed on the way. It appears whole or
not at all: a single request is atomic, and a multipart upload becomes an object only when it
completes; one that fails is aborted, so that no part of it is left to pay for. The SHA-256
is the one computed as the bytes went out; :meth:`S3Results.stat` hashes what the store
holds, as the local backend does.

The client comes from :func:`atoll.storage.s3_client.make_client`: the publisher's keys from
the settings, or the standard AWS credential chain. Errors name no bucket, key, endpoint or
credential.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from typing import TYPE_CHECKING, Any, BinaryIO

from atoll.storage.errors import ObjectNotFound, StorageError
from atoll.storage.interface import CHUNK, StoredObject, key_parts
from atoll.storage.s3_client import S3Location, client_errors, storage_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: S3's smallest part but the last is 5 MiB; its most parts in one upload, 10,000
MIN_PART = 5 * 1024**2
MAX_PARTS = 10_000
#: parts start at this size and double every PARTS_PER_SIZE parts, up to MAX_PART: memory
#: stays at one part, and even a very large result fits in the parts S3 allows
PART = 8 * 1024**2
MAX_PART = 64 * 1024**2
PARTS_PER_SIZE = 1000

NOT_STORED = "no result is stored under this key"


def part_size(number: int, first: int = PART) -> int:
    """The size of part ``number`` (from 1) of a multipart upload."""
    return min(first << ((number - 1) // PARTS_PER_SIZE), max(first, MAX_PART))


class _Body(io.RawIOBase):
    """An object's body as a raw stream; a failure mid-way is an OSError that names nothing."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            chunk = self._body.read(len(view))
        except Exception:
            raise OSError("the object store stopped sending the result") from None
        view[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


class S3Results:
    """Results as objects under ``location`` (its key is the prefix, may be empty)."""

    def __init__(self, location: S3Location, client: S3Client, first_part: int = PART) -> None:
        if first_part < MIN_PART:
            raise ValueError(f"parts are {MIN_PART} bytes at the least")
        self.location = location
        self.client = client
        self.first_part = first_part

    def _name(self, key: str) -> str:
        return self.location.child("/".join(key_parts(key))).key

    def put(self, key: str, source: BinaryIO, *, limit: int | None = None) -> StoredObject:
        """Store what ``source`` yields. An OSError reading ``source`` is the caller's and
        propagates as it is; a failure of the store is a StorageError."""
        name = self._name(key)
        bucket = self.location.bucket
        digest = hashlib.sha256()
        size = 0

        def read_part(want: int) -> bytes:
            nonlocal size
            part = bytearray()
            while len(part) < want and (limit is None or size < limit):
                room = want - len(part) if limit is None else min(want - len(part), limit - size)
                chunk = source.read(min(CHUNK, room))
                if not chunk:
                    break
                digest.update(chunk)
                part += chunk
                size += len(chunk)
            return bytes(part)

        first = read_part(self.first_part)
        if len(first) < self.first_part:
            # the whole result in one request
            try:
                self.client.put_object(Bucket=bucket, Key=name, Body=first)
            except client_errors() as exc:
                raise storage_error(exc) from None
            return StoredObject(key, size, digest.hexdigest())
        try:
            upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=name)["UploadId"]
        except client_errors() as exc:
            raise storage_error(exc) from None
        try:
            parts: list[dict[str, Any]] = []
            part = first
            while part:
                number = len(parts) + 1
                if number > MAX_PARTS:
                    raise StorageError("the result is larger than the object store takes")
                sent = self.client.upload_part(
                    Bucket=bucket, Key=name, PartNumber=number, UploadId=upload_id, Body=part
                )
                parts.append({"ETag": sent["ETag"], "PartNumber": number})
                part = read_part(part_size(number + 1, self.first_part))
            self.client.complete_multipart_upload(
                Bucket=bucket,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
        except BaseException as exc:
            with contextlib.suppress(*client_errors()):
                self.client.abort_multipart_upload(Bucket=bucket, Key=name, UploadId=upload_id)
            if isinstance(exc, client_errors()):
                raise storage_error(exc) from None
            raise
        return StoredObject(key, size, digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        name = self._name(key)
        try:
            got = self.client.get_object(Bucket=self.location.bucket, Key=name)
        except client_errors() as exc:
            raise storage_error(exc, NOT_STORED) from None
        return io.BufferedReader(_Body(got["Body"]), CHUNK)

    def stat(self, key: str) -> StoredObject:
        digest = hashlib.sha256()
        size = 0
        try:
            with self.open(key) as stream:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except ObjectNotFound:
            raise
        except OSError:
            raise StorageError("the object store stopped sending the result") from None
        return StoredObject(key, size, digest.hexdigest())

    def delete(self, prefix: str) -> None:
        """Remove the object ``prefix`` and every object below it, and abort uploads under it
        that a crash left unfinished (their parts take space too). Idempotent."""
        name = self._name(prefix)
        bucket = self.location.bucket
        try:
            self.client.delete_object(Bucket=bucket, Key=name)
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=name + "/"
            )
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", []) if "Key" in o]
                if not keys:
                    continue
                done = self.client.delete_objects(
                    Bucket=bucket,
                    Delete={"Objects": keys, "Quiet": True},  # type: ignore[typeddict-item]
                )
                if done.get("Errors"):
                    raise StorageError("the object store did not delete every result")
            self._abort_uploads(name)
        except client_errors() as exc:
            raise storage_error(exc) from None

    def _abort_uploads(self, name: str) -> None:
        bucket = self.location.bucket
        uploads = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=name
        )
        for page in uploads:
            for upload in page.get("Uploads", []):
                key, upload_id = upload.get("Key", ""), upload.get("UploadId", "")
                if key == name or key.startswith(name + "/"):
                    self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
