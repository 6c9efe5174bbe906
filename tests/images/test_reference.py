"""Image references parse as distribution names them, with the registry always explicit."""

from __future__ import annotations

import pytest

from atoll.images.errors import ImageReferenceInvalid
from atoll.images.reference import ImageReference, normalise_host

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("registry.example/algo", "registry.example", "algo", None, None),
        ("registry.example/team/algo:1.2", "registry.example", "team/algo", "1.2", None),
        (f"Registry.Example:5000/a/b/c@{DIGEST}", "registry.example:5000", "a/b/c", None, DIGEST),
        (f"127.0.0.1:5000/algo:v1@{DIGEST}", "127.0.0.1:5000", "algo", "v1", DIGEST),
        ("localhost/algo", "localhost", "algo", None, None),
        ("[::1]:5000/my_algo-x.y", "[::1]:5000", "my_algo-x.y", None, None),
    ],
)
def test_references_parse(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    reference = ImageReference.parse(text)
    assert (reference.registry, reference.repository, reference.tag, reference.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert ImageReference.parse(str(reference)) == reference


@pytest.mark.parametrize(
    "text",
    [
        "",
        "python:3.11",  # no registry: would be an implied Docker Hub
        "library/python",
        "registry.example/",
        "registry.example/Upper",
        "registry.example/algo:",
        "registry.example/algo@sha256:short",
        "registry.example/algo@sha512:" + "a" * 128,
        "registry.example/algo@" + DIGEST.upper(),
        "registry.example:99999/algo",
        "registry.example:/algo",
        "bad_host.example/algo",
        "registry.example/a//b",
        "registry.example/algo:" + "t" * 129,
        "registry.example/" + "a" * 300,
    ],
)
def test_invalid_references_are_refused(text: str) -> None:
    with pytest.raises(ImageReferenceInvalid):
        ImageReference.parse(text)


def test_pinning_keeps_the_tag_and_adds_the_digest() -> None:
    reference = ImageReference.parse("registry.example/algo:v1")
    pinned = reference.pinned(DIGEST)
    assert str(pinned) == f"registry.example/algo:v1@{DIGEST}"
    with pytest.raises(ImageReferenceInvalid):
        reference.pinned("sha256:nothex")


def test_hosts_normalise_for_comparison() -> None:
    assert normalise_host("Registry.Example:443") == "registry.example:443"
    assert normalise_host("[::1]") == "[::1]"
    for bad in ("", "a b", "host:0", "host:x", "[::1]x"):
        with pytest.raises(ValueError):
            normalise_host(bad)
