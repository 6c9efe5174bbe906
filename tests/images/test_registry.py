"""The registry client: Basic auth against a real registry, the Bearer token dance, and
credentials that never reach an error, a log or another origin."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import httpx
import pytest

from atoll.images import errors
from atoll.images.access import RegistryAccess
from atoll.images.registry import RegistryClient
from tests.images.conftest import Registry
from tests.images.oci import digest_of, entry, image_of

SECRET = "s3cret-Pa55word-never-shown"


def leaks(text: str, username: str, password: str) -> bool:
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    return password in text or basic in text


def test_basic_auth_against_a_real_registry(registry: Registry, tmp_path: Path) -> None:
    image = image_of([entry("a", data=b"a")])
    registry.pusher.image("tests/auth", image)
    layer = image.layers[0]
    with RegistryClient(registry.access()) as client:
        body, media_type = client.manifest("tests/auth", "latest", 1 << 20)
        assert body == image.manifest()
        assert media_type == "application/vnd.oci.image.manifest.v1+json"
        client.blob("tests/auth", digest_of(layer.blob), len(layer.blob), tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == layer.blob


def test_wrong_or_missing_credentials_fail_without_showing_them(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = registry.access(password=SECRET)
    with RegistryClient(wrong) as client, pytest.raises(errors.RegistryUnavailable) as caught:
        client.manifest("tests/auth", "latest", 1 << 20)
    assert "credentials" in caught.value.message
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(wrong)):
        assert not leaks(text, registry.username, SECRET)
        assert not leaks(text, registry.username, registry.password)
    anonymous = registry.access(username="", password="")
    with RegistryClient(anonymous) as client, pytest.raises(errors.RegistryUnavailable):
        client.manifest("tests/auth", "latest", 1 << 20)


def bearer_registry(seen: list[httpx.Request]) -> httpx.MockTransport:
    """A registry asking for a token from another host, and redirecting blobs to a third."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        url = request.url
        if url.host == "auth.example":
            expected = "Basic " + base64.b64encode(f"puller:{SECRET}".encode()).decode()
            if request.headers.get("authorization") != expected:
                return httpx.Response(401)
            assert url.params["scope"] == "repository:team/algo:pull"
            assert url.params["service"] == "registry.example"
            return httpx.Response(200, json={"token": "tok-123"})
        if url.host == "blobs.example":
            return httpx.Response(200, content=b"blob-bytes")
        if request.headers.get("authorization") != "Bearer tok-123":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://auth.example/token",'
                    'service="registry.example",scope="repository:team/algo:pull"'
                },
            )
        if "/blobs/" in url.path:
            return httpx.Response(307, headers={"Location": "https://blobs.example/data?sig=1"})
        return httpx.Response(
            200, content=b"{}", headers={"Content-Type": "application/vnd.oci.image.index.v1+json"}
        )

    return httpx.MockTransport(handle)


def test_bearer_tokens_are_fetched_and_never_sent_to_another_origin(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[httpx.Request] = []
    access = RegistryAccess(host="registry.example", username="puller", password=SECRET)
    with RegistryClient(access, transport=bearer_registry(seen)) as client:
        body, media_type = client.manifest("team/algo", "v1", 1 << 20)
        assert (body, media_type) == (b"{}", "application/vnd.oci.image.index.v1+json")
        client.blob("team/algo", digest_of(b"blob-bytes"), 10, tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == b"blob-bytes"
    token_requests = [r for r in seen if r.url.host == "auth.example"]
    assert len(token_requests) == 1  # the token is reused for the blob
    blob_store = [r for r in seen if r.url.host == "blobs.example"]
    assert blob_store and all("authorization" not in r.headers for r in blob_store)
    assert not leaks(caplog.text, "puller", SECRET) and "tok-123" not in caplog.text


def test_a_blob_longer_than_its_descriptor_is_cut_off(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    access = RegistryAccess(host="registry.example", username="puller", password=SECRET)
    with (
        RegistryClient(access, transport=bearer_registry(seen)) as client,
        pytest.raises(errors.DigestMismatch),
    ):
        client.blob("team/algo", digest_of(b"blob-bytes"), 4, tmp_path / "blob")
    assert not (tmp_path / "blob").exists()


def test_a_plain_http_token_service_is_refused_for_an_https_registry() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "registry.example", "the token service must not be contacted"
        return httpx.Response(
            401, headers={"WWW-Authenticate": 'Bearer realm="http://auth.example/token"'}
        )

    access = RegistryAccess(host="registry.example", username="puller", password=SECRET)
    with (
        RegistryClient(access, transport=httpx.MockTransport(handle)) as client,
        pytest.raises(errors.RegistryUnavailable),
    ):
        client.manifest("team/algo", "v1", 1 << 20)


def test_endless_redirects_stop() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": str(request.url) + "x"})

    access = RegistryAccess(host="registry.example")
    with (
        RegistryClient(access, transport=httpx.MockTransport(handle)) as client,
        pytest.raises(errors.RegistryUnavailable, match="too many"),
    ):
        client.manifest("team/algo", "v1", 1 << 20)


def test_an_unreachable_registry_is_a_clear_error() -> None:
    access = RegistryAccess(host="127.0.0.1:9", insecure=True)
    with RegistryClient(access, timeout=2) as client, pytest.raises(errors.RegistryUnavailable):
        client.manifest("team/algo", "v1", 1 << 20)
