"""Turn files on the provider's host into a published asset."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import stat
from collections.abc import Callable
from pathlib import Path

from atoll.catalog.roots import DataRoots
from atoll.errors import BadRequest, Forbidden
from atoll.models.ddo import (
    DDO,
    ComputePolicy,
    FileInfo,
    Metadata,
    PrivateFile,
    Service,
    files_checksum,
    make_did,
    now_iso,
)
from atoll.models.source import REMOTE_SCHEMES, SourceAccess
from atoll.storage.errors import SourceError
from atoll.storage.local_files import FIX_HINT, FileRefused, Fingerprint, opened
from atoll.storage.remote import RemoteInputs, from_request
from atoll.storage.s3_client import S3Credentials


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def inspect_files(locations: list[str]) -> list[PrivateFile]:
    """Hash and size each file. Errors name the file by its position, never by its path: the
    message may travel back over HTTP."""
    if not locations:
        raise BadRequest("an asset needs at least one file")
    out: list[PrivateFile] = []
    for index, loc in enumerate(locations):
        path = Path(loc)
        if not path.is_absolute():
            raise BadRequest(f"file {index}: the location must be an absolute path")
        try:
            st = os.stat(path)
        except OSError:
            raise BadRequest(f"file {index}: does not exist or cannot be read") from None
        if not stat.S_ISREG(st.st_mode):
            raise BadRequest(f"file {index}: is not a regular file")
        try:
            digest = sha256_file(path)
        except OSError:
            raise BadRequest(f"file {index}: cannot be read") from None
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        out.append(
            PrivateFile(
                index=index,
                location=str(path.resolve()),
                sha256=digest,
                size=st.st_size,
                contentType=ctype,
            )
        )
    return out


def inspect_remote(
    index: int,
    text: str,
    publisher: str,
    remote: RemoteInputs | None,
    access: SourceAccess | None,
) -> tuple[PrivateFile, Fingerprint]:
    """Fetch a URL or S3 file being published, once, through the operator's network guard,
    for its checksum and size; the location (and what opens it) is kept private."""
    if remote is None:
        raise BadRequest(f"file {index}: this provider takes no URL or S3 sources")
    access = access or SourceAccess()
    keys = None
    if access.accessKeyId or access.secretAccessKey:
        keys = S3Credentials(
            access.accessKeyId, access.secretAccessKey, access.sessionToken or None
        )
    try:
        loc = from_request(text, publisher, access.headers, keys)
        digest, size = remote.take(loc)
    except SourceError as e:
        raise BadRequest(f"file {index}: {e}") from None
    name = (loc.s3.key if loc.s3 is not None else loc.url.split("?", 1)[0]).rsplit("/", 1)[-1]
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    file = PrivateFile(
        index=index, location=loc.text(), sha256=digest, size=size, contentType=ctype
    )
    # a remote file has no inode: its version is the source's, kept beside the cache
    return file, Fingerprint(size, 0, 0, 0, 0)


def inspect_published(
    locations: list[str],
    publisher: str,
    roots: DataRoots,
    job_user: tuple[int, int],
    owners_of_inode: Callable[[int, int], set[str]],
    for_jobs: bool = True,
    remote: RemoteInputs | None = None,
    access: SourceAccess | None = None,
) -> tuple[list[PrivateFile], list[Fingerprint]]:
    """Hash and size each file a publisher asks to publish, reading only what it may publish:
    below a data root it may use, outside ATOLL_HOME, reached without following a link, with
    no other hard link, readable by the jobs' user (``job_user``: uid, gid) and published by
    nobody else. Without ``for_jobs`` (an algorithm's code, which the provider copies for the
    job) the jobs' user need not reach the file. Messages name files by position, never by
    path. A URL or S3 location is fetched once instead, through ``remote`` and the operator's
    network guard (:func:`inspect_remote`), opened with ``access``."""
    if not locations:
        raise BadRequest("an asset needs at least one file")
    files: list[PrivateFile] = []
    prints: list[Fingerprint] = []
    for index, loc in enumerate(locations):
        if loc.startswith(REMOTE_SCHEMES):
            if not for_jobs:
                # the provider checks and copies the code from its own disk at each start
                raise BadRequest(f"file {index}: an algorithm's code is a file on this host")
            file, fp = inspect_remote(index, loc, publisher, remote, access)
            files.append(file)
            prints.append(fp)
            continue
        try:
            stored = roots.locate(publisher, loc)
            with opened(stored) as f:
                if f.stat.st_nlink != 1:
                    raise FileRefused("it has other hard links; publish a copy of it instead")
                if for_jobs and not f.readable_by(*job_user):
                    raise FileRefused(f"the jobs' user cannot read it: {FIX_HINT}")
                others = owners_of_inode(f.stat.st_dev, f.stat.st_ino) - {publisher.lower()}
                if others:
                    raise Forbidden(f"file {index}: it is already published by another publisher")
                digest = f.sha256()
                if os.fstat(f.fd).st_ctime_ns != f.stat.st_ctime_ns or not f.still_named():
                    raise FileRefused("it changed while it was read; publish it again")
                fp = f.fingerprint
        except FileRefused as e:
            raise BadRequest(f"file {index}: {e}") from None
        except OSError:
            raise BadRequest(f"file {index}: does not exist or cannot be read") from None
        ctype = mimetypes.guess_type(stored)[0] or "application/octet-stream"
        files.append(
            PrivateFile(
                index=index, location=stored, sha256=digest, size=fp.size, contentType=ctype
            )
        )
        prints.append(fp)
    return files, prints


def build_ddo(
    owner: str,
    metadata: Metadata,
    files: list[PrivateFile],
    endpoint: str,
    policy: ComputePolicy,
    timeout: int,
    access: bool = False,
    price: int = 0,
    access_price: int = 0,
    access_timeout: int | None = None,
) -> DDO:
    if metadata.type == "algorithm" and len(files) != 1:
        raise BadRequest("an algorithm asset has exactly one file: its code")
    checksum = files_checksum([f.sha256 for f in files])
    services = [
        Service(
            id="compute",
            type="compute",
            serviceEndpoint=endpoint,
            timeout=timeout,
            price=price,
            compute=policy,
        )
    ]
    if access:
        services.append(
            Service(
                id="access",
                type="access",
                serviceEndpoint=endpoint,
                timeout=access_timeout or timeout,
                price=access_price,
            )
        )
    return DDO(
        id=make_did(owner, metadata, checksum),
        created=now_iso(),
        owner=owner,
        metadata=metadata,
        files=[
            FileInfo(index=f.index, contentType=f.contentType, contentLength=f.size) for f in files
        ],
        filesChecksum=checksum,
        services=services,
    )
