"""What a publisher's trust list binds of an algorithm's container."""

from __future__ import annotations

import hashlib

from atoll.images.errors import ImageReferenceInvalid
from atoll.images.reference import is_digest


def container_section_checksum(entrypoint: str, image_checksum: str) -> str:
    """Ocean's ``containerSectionChecksum``: the hex SHA-256 of the entrypoint followed by the
    image's checksum (``sha256:…``), both as UTF-8, as ocean.py and the provider compute it.

    A changed entrypoint or image digest gives another checksum, so a trusted algorithm that
    runs anything else no longer matches.
    """
    if not is_digest(image_checksum):
        raise ImageReferenceInvalid("an image checksum is sha256: and 64 lower-case hex digits")
    return hashlib.sha256((entrypoint + image_checksum).encode("utf-8")).hexdigest()
