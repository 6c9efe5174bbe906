"""Reaching an S3 bucket, or any store that speaks the S3 protocol: where an object is
(:class:`S3Location`), the keys that open it (:class:`S3Credentials`), a client for it
(:func:`make_client`) and what its failures mean (:func:`storage_error`).

The library is boto3 (botocore underneath). It is the reference client, kept by AWS, and it
brings the standard AWS credential chain (environment, shared files, SSO, container and
instance metadata) unchanged, which a provider on AWS expects. It also lets every request go
through a sender of ours (botocore's documented ``before-send`` event): a publisher's endpoint
is then reached only through the network guard, which connects to the very address it checked.
obstore's and s3fs's own HTTP stacks cannot be steered that way, and s3fs is asynchronous
underneath, which nothing else here is.

Errors are :mod:`atoll.storage.errors` types whose messages name no bucket, key, endpoint or
credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from atoll.storage.errors import ObjectNotFound, StorageError

if TYPE_CHECKING:
    from botocore.awsrequest import AWSPreparedRequest, AWSResponse
    from mypy_boto3_s3 import S3Client

#: region used to sign requests when neither the location nor the environment names one
DEFAULT_REGION = "us-east-1"


def client_errors() -> tuple[type[Exception], ...]:
    """What botocore and the store raise; :func:`storage_error` maps them. boto3 is loaded
    only where an S3 source or store is used: it is some 9 MB of a server's memory."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"})


@dataclass(frozen=True)
class S3Location:
    """An object (``key``) or a set of objects (``key`` as a prefix) in ``bucket``; ``region``
    signs the requests, ``endpoint`` (``https://host[:port]``) names an S3-compatible store
    (None: AWS itself). Written as ``s3://bucket/key?region=…&endpoint=…``."""

    bucket: str
    key: str = ""
    region: str | None = None
    endpoint: str | None = None

    @classmethod
    def parse(cls, text: str) -> S3Location:
        """Raises ValueError with a message that does not repeat ``text``."""
        parts = urlsplit(text)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError("an S3 location is s3://bucket/key")
        if parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
            raise ValueError("an S3 location is s3://bucket/key (no credentials or port)")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - {"region", "endpoint"}
        if unknown or any(len(v) != 1 for v in query.values()):
            raise ValueError("an S3 location takes only one region= and one endpoint=")
        endpoint = query.get("endpoint", [None])[0] or None
        if endpoint is not None:
            ep = urlsplit(endpoint)
            if ep.scheme not in ("http", "https") or not ep.hostname:
                raise ValueError("an S3 endpoint is an http(s)://host[:port] URL")
            if ep.username or ep.password or ep.query or ep.fragment or ep.path not in ("", "/"):
                raise ValueError("an S3 endpoint is an http(s)://host[:port] URL, nothing more")
            endpoint = f"{ep.scheme}://{ep.netloc}"
        return cls(
            bucket=parts.netloc,
            key=unquote(parts.path.removeprefix("/")),
            region=query.get("region", [None])[0] or None,
            endpoint=endpoint,
        )

    def text(self) -> str:
        """The location as :meth:`parse` reads it."""
        query = {k: v for k, v in (("region", self.region), ("endpoint", self.endpoint)) if v}
        tail = f"?{urlencode(query)}" if query else ""
        return f"s3://{self.bucket}/{quote(self.key, safe='/')}{tail}"

    def child(self, name: str) -> S3Location:
        """The object ``name`` under this location taken as a prefix."""
        prefix = self.key.rstrip("/")
        key = f"{prefix}/{name}" if prefix else name
        return S3Location(self.bucket, key, self.region, self.endpoint)


@dataclass(frozen=True)
class S3Credentials:
    """Keys a publisher gave for its bucket. Never printed: ``repr`` shows the key id only."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


class RawResponse(Protocol):
    """What a sender returns: a urllib3-like response whose body is read as it comes."""

    status: int
    headers: Mapping[str, str]

    def read(self, amt: int | None = None) -> bytes: ...

    def stream(self, amt: int = ...) -> Any: ...

    def close(self) -> None: ...


class Sender(Protocol):
    """Sends one HTTP request and returns the response unread (the network guard is one)."""

    def send(self, method: str, url: str, headers: Mapping[str, str], body: Any) -> RawResponse: ...


def make_client(
    location: S3Location,
    credentials: S3Credentials | None = None,
    *,
    sender: Sender | None = None,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    attempts: int = 3,
) -> S3Client:
    """A client for ``location``'s store: with ``credentials``, those keys; without, the
    standard AWS credential chain of this process. With ``sender``, every request goes out
    through it (botocore's own connections are never opened)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": attempts, "mode": "standard"},
        # an S3-compatible store is one host: virtual-host buckets would be other names
        s3={"addressing_style": "path" if location.endpoint else "auto"},
        signature_version="s3v4",
    )
    creds = credentials or S3Credentials("", "")
    client = session.client(
        "s3",
        region_name=location.region or session.region_name or DEFAULT_REGION,
        endpoint_url=location.endpoint,
        config=config,
        # None lets boto3 walk the standard chain
        aws_access_key_id=creds.access_key_id or None,
        aws_secret_access_key=creds.secret_access_key or None,
        aws_session_token=creds.session_token or None,
    )
    if sender is not None:
        client.meta.events.register("before-send.s3", _through(sender))
    return client


def _through(sender: Sender) -> Any:
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    def send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        raw = sender.send(request.method, request.url, dict(request.headers.items()), request.body)
        headers = HTTPHeaders()
        for name, value in raw.headers.items():
            headers[name] = value
        return AWSResponse(request.url, raw.status, headers, raw)

    return send


def error_code(exc: Exception) -> str:
    """The store's error code (``NoSuchKey``, ``403``…), or "" for a failure to reach it."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        if not code:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = str(status or "")
        return code
    return ""


def is_missing(exc: Exception) -> bool:
    return error_code(exc) in _MISSING_CODES


def storage_error(
    exc: Exception, missing: str = "no object is stored under this key"
) -> StorageError:
    """The exception to raise for a boto3/botocore failure: ObjectNotFound (with ``missing``
    as its message) for an absent object or bucket, StorageError otherwise. Never the
    original text, which names the bucket, key or endpoint."""
    if isinstance(exc, StorageError):
        return exc
    code = error_code(exc)
    if code in _MISSING_CODES:
        return ObjectNotFound(missing)
    if code in _DENIED_CODES:
        return StorageError("the object store refused the credentials or the access")
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return StorageError("the object store answered with an error")
    return StorageError("the object store could not be reached")
