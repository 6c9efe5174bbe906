"""Remote dataset inputs: the conformance suite on a URL source (a real HTTP server on
loopback, which the operator's grant names explicitly) and on an S3 source (the S3 stand-in
of ``tests/conftest.py``: moto's server on loopback, since S3 cannot run here); then what
only a fetched source has: the cache, its cap, and every way a fetch fails leaving nothing
behind."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from atoll.storage import InputModified, PublishedInput
from atoll.storage.cache import SourceCache
from atoll.storage.errors import SourceLimit, SourceRefused, SourceUnavailable
from atoll.storage.guard import Limits, SourcePolicy
from atoll.storage.remote import RemoteInputs, RemoteLocation, from_request
from atoll.storage.s3_client import S3Location, make_client
from atoll.storage.sources import Inputs
from tests.conftest import S3_TEST_KEYS

from .conformance import InputSourceConformance
from .origin import Origin, running_origin

PUBLISHER = "0x" + "ab" * 20


@pytest.fixture
def origin() -> Iterator[Origin]:
    with running_origin() as o:
        yield o


def url_of(location: str) -> str:
    return RemoteLocation.parse(location).url


def name_of(location: str) -> str:
    return url_of(location).rsplit("/", 1)[1]


def url_inputs(origin: Origin, tmp_path: Path, **limits: float) -> RemoteInputs:
    policy = SourcePolicy([f"http://127.0.0.1:{origin.port}"], limits=Limits(**limits))  # type: ignore[arg-type]
    return RemoteInputs(policy, SourceCache(tmp_path / "cache", 1 << 30))


def leftovers(inputs: RemoteInputs) -> list[str]:
    """What the cache holds besides its bookkeeping folders."""
    return sorted(p.name for p in inputs.cache.root.iterdir() if p.name not in (".used", ".seen"))


class TestUrlInputs(InputSourceConformance):
    @pytest.fixture
    def secret(self, origin: Origin) -> str:
        return origin.base

    @pytest.fixture
    def source(self, origin: Origin, tmp_path: Path) -> Inputs:
        return Inputs(url_inputs(origin, tmp_path))

    @pytest.fixture
    def place(self, origin: Origin) -> Callable[..., str]:
        names = iter(range(1_000_000))

        def place(data: bytes, location: str | None = None) -> str:
            name = name_of(location) if location else f"input-{next(names)}.csv"
            origin.files[name] = data
            return location or from_request(origin.url(f"/files/{name}"), PUBLISHER).text()

        return place

    @pytest.fixture
    def remove(self, origin: Origin) -> Callable[[str], None]:
        return lambda location: origin.files.pop(name_of(location)) and None


class TestS3Inputs(InputSourceConformance):
    """On the S3 stand-in (moto's server on loopback)."""

    @pytest.fixture
    def secret(self, s3_bucket: str) -> str:
        return s3_bucket

    @pytest.fixture
    def source(self, s3_endpoint: str, tmp_path: Path) -> Inputs:
        port = s3_endpoint.rsplit(":", 1)[1]
        policy = SourcePolicy([f"http://127.0.0.1:{port}"])
        return Inputs(RemoteInputs(policy, SourceCache(tmp_path / "cache", 1 << 30)))

    @pytest.fixture
    def place(self, s3_endpoint: str, s3_bucket: str) -> Callable[..., str]:
        names = iter(range(1_000_000))
        client = make_client(S3Location(s3_bucket, endpoint=s3_endpoint), S3_TEST_KEYS)

        def place(data: bytes, location: str | None = None) -> str:
            if location is None:
                loc = S3Location(s3_bucket, f"sets/input-{next(names)}.csv", endpoint=s3_endpoint)
                location = RemoteLocation(PUBLISHER, s3=loc, keys=S3_TEST_KEYS).text()
            key = RemoteLocation.parse(location).s3.key  # type: ignore[union-attr]
            client.put_object(Bucket=s3_bucket, Key=key, Body=data)
            return location

        return place

    @pytest.fixture
    def remove(self, s3_endpoint: str, s3_bucket: str) -> Callable[[str], None]:
        client = make_client(S3Location(s3_bucket, endpoint=s3_endpoint), S3_TEST_KEYS)

        def remove(location: str) -> None:
            key = RemoteLocation.parse(location).s3.key  # type: ignore[union-attr]
            client.delete_object(Bucket=s3_bucket, Key=key)

        return remove


def published(origin: Origin, name: str, data: bytes) -> PublishedInput:
    origin.files[name] = data
    location = from_request(origin.url(f"/files/{name}"), PUBLISHER).text()
    return PublishedInput(location, hashlib.sha256(data).hexdigest(), ())


def test_a_source_is_fetched_once_and_then_served_from_the_cache(
    origin: Origin, tmp_path: Path
) -> None:
    inputs = url_inputs(origin, tmp_path)
    pub = published(origin, "a.csv", b"x" * 3_000_000)
    heard: list[tuple[int, int | None]] = []
    first = inputs.prepare(pub, None, progress=lambda done, size: heard.append((done, size)))
    again = inputs.prepare(pub, None)
    assert first == again and first.path.read_bytes() == b"x" * 3_000_000
    assert first.path == inputs.cache.root / pub.sha256
    assert [p for p, _ in origin.requests if not p.startswith("HEAD")] == ["/files/a.csv"]
    assert heard[-1] == (3_000_000, 3_000_000) and len(heard) >= 2
    assert os.stat(first.path).st_mode & 0o777 == 0o644


def test_a_source_with_the_same_bytes_under_a_new_version_is_fetched_and_kept(
    origin: Origin, tmp_path: Path
) -> None:
    inputs = url_inputs(origin, tmp_path)
    pub = published(origin, "a.csv", b"rows")
    inputs.prepare(pub, None)
    inputs.cache.remember(pub.sha256, pub.location, "an older version")
    assert inputs.prepare(pub, None).path.read_bytes() == b"rows"


def test_a_changed_source_fails_and_leaves_nothing_in_the_cache(
    origin: Origin, tmp_path: Path
) -> None:
    inputs = url_inputs(origin, tmp_path)
    pub = published(origin, "a.csv", b"published")
    origin.files["a.csv"] = b"swapped!!"
    with pytest.raises(InputModified, match="changed since it was published") as info:
        inputs.prepare(pub, None)
    assert origin.base not in str(info.value)
    assert leftovers(inputs) == []


@pytest.mark.parametrize(
    ("path", "limits", "error"),
    [
        ("/files/absent", {}, SourceUnavailable),
        ("/status/500", {}, SourceUnavailable),
        ("/stall", {"stall_seconds": 0.5}, SourceLimit),
        ("/endless", {"max_bytes": 3 << 20}, SourceLimit),
        ("/trickle", {"stall_seconds": 0.5, "min_bytes_per_second": 1000}, SourceLimit),
        ("/gzip", {}, SourceRefused),
    ],
)
def test_a_failed_fetch_leaves_nothing_in_the_cache(
    origin: Origin, tmp_path: Path, path: str, limits: dict[str, float], error: type[Exception]
) -> None:
    inputs = url_inputs(origin, tmp_path, **limits)
    location = from_request(origin.url(path), PUBLISHER).text()
    with pytest.raises(error) as info:
        inputs.prepare(PublishedInput(location, "0" * 64, ()), None)
    assert origin.base not in str(info.value) and path not in str(info.value)
    assert leftovers(inputs) == []


def test_the_cache_keeps_to_its_size_dropping_the_least_recently_used(
    origin: Origin, tmp_path: Path
) -> None:
    policy = SourcePolicy([f"http://127.0.0.1:{origin.port}"])
    inputs = RemoteInputs(policy, SourceCache(tmp_path / "cache", 2500, grace_seconds=0))
    a, b, c = (published(origin, n, n.encode() * 1000) for n in "abc")
    inputs.prepare(a, None)
    inputs.prepare(b, None)
    os.utime(inputs.cache.used / a.sha256, (1, 1))  # a is the least recently used
    os.utime(inputs.cache.used / b.sha256, (2, 2))
    inputs.prepare(c, None)
    assert sorted(leftovers(inputs)) == sorted([b.sha256, c.sha256])
    assert inputs.cache.size() <= 2500
    big = published(origin, "big", b"z" * 3000)
    with pytest.raises(SourceLimit, match="larger than the cache"):
        inputs.prepare(big, None)
    assert big.sha256 not in leftovers(inputs)


def test_a_cached_file_is_not_touched_by_later_uses(origin: Origin, tmp_path: Path) -> None:
    """A mounted input is checked against its status: using it again must not move it."""
    inputs = url_inputs(origin, tmp_path)
    pub = published(origin, "a.csv", b"rows")
    first = inputs.prepare(pub, None)
    inputs.prepare(pub, None)
    assert inputs.unchanged(pub, first)


def test_remote_sources_are_refused_where_the_provider_takes_none(
    origin: Origin,
) -> None:
    pub = published(origin, "a.csv", b"rows")
    with pytest.raises(SourceRefused):
        Inputs().prepare(pub, None)
    assert origin.requests == []


def test_an_s3_endpoint_on_loopback_is_refused_unless_granted(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    loc = S3Location(s3_bucket, "k.csv", endpoint=s3_endpoint)
    make_client(loc, S3_TEST_KEYS).put_object(Bucket=s3_bucket, Key="k.csv", Body=b"rows")
    location = RemoteLocation(PUBLISHER, s3=loc, keys=S3_TEST_KEYS).text()
    pub = PublishedInput(location, hashlib.sha256(b"rows").hexdigest(), ())
    port = s3_endpoint.rsplit(":", 1)[1]
    named = {"s3.example": ["127.0.0.1"]}
    for policy in (
        SourcePolicy([]),
        SourcePolicy([f"http://127.0.0.1:{port}=0x" + "cd" * 20]),
    ):
        with pytest.raises(SourceRefused) as info:
            RemoteInputs(policy, SourceCache(tmp_path / "c", 1 << 20)).prepare(pub, None)
        assert s3_bucket not in str(info.value) and port not in str(info.value)
    # an endpoint whose name resolves to loopback
    via_name = S3Location(s3_bucket, "k.csv", endpoint=f"http://s3.example:{port}")
    pub2 = PublishedInput(
        RemoteLocation(PUBLISHER, s3=via_name, keys=S3_TEST_KEYS).text(), pub.sha256, ()
    )
    policy = SourcePolicy(
        ["http://s3.example"],
        resolver=lambda h, p: [__import__("ipaddress").ip_address(a) for a in named[h]],
    )
    with pytest.raises(SourceRefused, match="loopback"):
        RemoteInputs(policy, SourceCache(tmp_path / "c", 1 << 20)).prepare(pub2, None)


def test_without_keys_only_a_granted_bucket_is_read_with_the_providers_credentials(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "provider-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "provider-secret")
    loc = S3Location(s3_bucket, "k.csv", endpoint=s3_endpoint)
    make_client(loc, S3_TEST_KEYS).put_object(Bucket=s3_bucket, Key="k.csv", Body=b"rows")
    pub = PublishedInput(
        RemoteLocation(PUBLISHER, s3=loc).text(), hashlib.sha256(b"rows").hexdigest(), ()
    )
    host = f"http://127.0.0.1:{s3_endpoint.rsplit(':', 1)[1]}"
    with pytest.raises(SourceRefused, match="bucket is not one the operator allows"):
        RemoteInputs(SourcePolicy([host]), SourceCache(tmp_path / "c", 1 << 20)).prepare(pub, None)
    granted = SourcePolicy([host], buckets=[f"{s3_bucket}={PUBLISHER}"])
    prepared = RemoteInputs(granted, SourceCache(tmp_path / "c", 1 << 20)).prepare(pub, None)
    assert prepared.path.read_bytes() == b"rows"


def test_a_location_keeps_its_secrets_out_of_its_repr() -> None:
    loc = from_request("https://data.example/f.csv", PUBLISHER, {"Authorization": "Bearer t0k"})
    assert "t0k" not in repr(loc) and "data.example" not in repr(loc)
    assert RemoteLocation.parse(loc.text()) == loc
    with pytest.raises(SourceRefused):
        from_request("ftp://data.example/f.csv", PUBLISHER)
    with pytest.raises(SourceRefused):
        from_request("s3://bucket/", PUBLISHER)
