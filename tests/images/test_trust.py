"""containerSectionChecksum as Ocean computes it."""

from __future__ import annotations

import hashlib

import pytest

from atoll.images.errors import ImageReferenceInvalid
from atoll.images.trust import container_section_checksum

DIGEST = "sha256:8221d20c1c16491d7d56b9657ea09082c0ee4a8ab1a6621fa720da58b09580e4"


def test_it_is_the_sha256_of_the_entrypoint_then_the_image_checksum() -> None:
    entrypoint = "python3 $ALGO"
    expected = hashlib.sha256(b"python3 $ALGOsha256:" + DIGEST[7:].encode()).hexdigest()
    assert container_section_checksum(entrypoint, DIGEST) == expected
    assert len(expected) == 64


def test_a_changed_entrypoint_or_image_changes_it() -> None:
    base = container_section_checksum("python3 $ALGO", DIGEST)
    assert container_section_checksum("python3 -I $ALGO", DIGEST) != base
    other = "sha256:" + "0" * 64
    assert container_section_checksum("python3 $ALGO", other) != base


def test_an_image_checksum_must_be_a_digest() -> None:
    with pytest.raises(ImageReferenceInvalid):
        container_section_checksum("python3 $ALGO", "latest")
