"""An environment's image allowlist admits by digest, by repository or any, and nothing else."""

from __future__ import annotations

import pytest

from atoll.images.allow import ImageNotAllowed, allowlist_entry_valid, check_image, image_allowed
from atoll.images.errors import ImageReferenceInvalid
from atoll.images.reference import ImageReference

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
PINNED = f"registry.example:5000/team/algo@{DIGEST}"


def test_an_empty_allowlist_admits_nothing() -> None:
    assert not image_allowed(PINNED, [])


def test_a_digest_entry_admits_that_image_only() -> None:
    assert image_allowed(PINNED, [DIGEST])
    assert not image_allowed(PINNED, [OTHER])
    # a tag is not the digest it may resolve to
    assert not image_allowed("registry.example:5000/team/algo:1.0", [DIGEST])


def test_a_repository_entry_admits_its_images_only() -> None:
    assert image_allowed(PINNED, ["registry.example:5000/team/algo"])
    assert image_allowed(ImageReference.parse(PINNED), ["Registry.Example:5000/team/algo"])
    assert image_allowed("registry.example:5000/team/algo:1.0", ["registry.example:5000/team/algo"])
    assert not image_allowed(PINNED, ["registry.example:5000/team"])
    assert not image_allowed(PINNED, ["registry.example:5000/team/algo2"])
    assert not image_allowed(PINNED, ["registry.example/team/algo"])  # another port, another host
    assert not image_allowed(PINNED, ["other.example:5000/team/algo"])


def test_star_admits_any_image() -> None:
    assert image_allowed(PINNED, ["*"])
    assert image_allowed("elsewhere.example/x:latest", [OTHER, "*"])


@pytest.mark.parametrize(
    "entry",
    [
        "",
        "team/algo",
        "registry.example:5000/team/algo:1.0",
        f"registry.example/a@{DIGEST}",
        "sha256:ABAB",
        "**",
        "registry.example:5000/team/*",
    ],
)
def test_a_malformed_entry_admits_nothing(entry: str) -> None:
    assert not allowlist_entry_valid(entry)
    assert not image_allowed(PINNED, [entry])


def test_a_malformed_reference_is_never_admitted() -> None:
    assert not image_allowed("not a reference", ["*"])
    assert not image_allowed("team/algo@" + DIGEST, [DIGEST])


@pytest.mark.parametrize("entry", [DIGEST, "*", "registry.example:5000/team/algo"])
def test_valid_entries(entry: str) -> None:
    assert allowlist_entry_valid(entry)


def test_check_image_wants_a_pin_and_the_allowlist() -> None:
    assert check_image(PINNED, [DIGEST]) == ImageReference.parse(PINNED)
    with pytest.raises(ImageNotAllowed, match="not pinned"):
        check_image("registry.example:5000/team/algo:1.0", ["*"])
    with pytest.raises(ImageNotAllowed, match="not one this environment accepts"):
        check_image(PINNED, [OTHER])
    with pytest.raises(ImageReferenceInvalid):
        check_image("no-registry@" + DIGEST, ["*"])
