"""ImageRules without a registry: which references are resolved, refused or accepted, and
that a tag is resolved only at a listed registry (the resolver records every call)."""

from __future__ import annotations

import pytest

from atoll.errors import AtollError, PolicyRefused
from atoll.images.access import RegistryAccess
from atoll.images.errors import ImageReferenceInvalid, RegistryNotAllowed
from atoll.images.reference import ImageReference
from atoll.models.ddo import AlgorithmContainer
from atoll.models.environment import Environment
from atoll.provider.containers import ImageRules

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def rules() -> tuple[ImageRules, list[str]]:
    calls: list[str] = []

    def resolve(reference: ImageReference) -> ImageReference:
        calls.append(str(reference))
        return reference.pinned(DIGEST)

    return ImageRules([RegistryAccess(host="reg.example:5000")], resolve), calls


def c(image: str, tag: str = "", checksum: str = "") -> AlgorithmContainer:
    return AlgorithmContainer(entrypoint="python3 $ALGO", image=image, tag=tag, checksum=checksum)


def test_a_tag_is_resolved_once_and_a_digest_never() -> None:
    r, calls = rules()
    assert r.pin(c("reg.example:5000/a/b", tag="1")).checksum == DIGEST
    assert calls == ["reg.example:5000/a/b:1"]
    # written inline, a digest is moved to its field, and nobody is asked
    inline = r.pin(c(f"reg.example:5000/a/b@{OTHER}"))
    assert (inline.image, inline.checksum) == ("reg.example:5000/a/b", OTHER)
    assert r.pin(c("reg.example:5000/a/b", checksum=OTHER)).checksum == OTHER
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("container", "error"),
    [
        (c("elsewhere.example/a/b", tag="1"), RegistryNotAllowed),
        (c("reg.example:5000/a/b"), PolicyRefused),  # neither tag nor digest
        (c("b", tag="1"), ImageReferenceInvalid),  # no registry host: no implied Docker Hub
        (c(f"reg.example:5000/a/b@{DIGEST}", checksum=OTHER), ImageReferenceInvalid),
    ],
)
def test_refused_without_asking_anyone(container: AlgorithmContainer, error: type) -> None:
    r, calls = rules()
    with pytest.raises(error) as raised:
        r.pin(container)
    assert isinstance(raised.value, AtollError) and 400 <= raised.value.status_code < 500
    assert calls == []


def test_an_allowlist_without_digests_decides_before_resolving() -> None:
    r, calls = rules()
    repo = Environment(id="e", images=["reg.example:5000/other"])
    with pytest.raises(PolicyRefused, match="does not accept"):
        r.run(c("reg.example:5000/a/b", tag="1"), repo)
    assert calls == []
    # an allowlist of digests needs the digest: the listed registry is asked for the tag's
    by_digest = Environment(id="e", images=[DIGEST])
    run = r.run(c("reg.example:5000/a/b", tag="1"), by_digest)
    assert run.image == f"reg.example:5000/a/b@{DIGEST}" and calls == ["reg.example:5000/a/b:1"]
    with pytest.raises(PolicyRefused, match="does not accept"):
        r.run(c("reg.example:5000/a/b", checksum=OTHER), by_digest)
