"""The whole path a job takes: a real registry, a real Debian image, pulled by digest,
verified, scanned, unpacked with umoci and cached; hostile images refused by name."""

from __future__ import annotations

import logging
import os
import stat
import tarfile
import threading
from pathlib import Path

import pytest

from atoll.images import errors
from atoll.images.access import RegistryAccess
from atoll.images.pull import ImagePuller, PulledImage
from atoll.images.reference import ImageReference
from atoll.images.store import ImageStore
from tests.images.conftest import PushedImage, Registry
from tests.images.oci import entry, image_of

MB = 1 << 20


def store_for(registry: Registry, tmp_path: Path, cache_mb: int = 512) -> ImageStore:
    return ImageStore([registry.access()], tmp_path / "cache", cache_bytes=cache_mb * MB)


def test_a_debian_image_is_pulled_by_digest_and_unpacked(
    registry: Registry, debian_image: PushedImage, tmp_path: Path
) -> None:
    store = store_for(registry, tmp_path)
    stages: list[tuple[str, int, int]] = []
    reference = ImageReference.parse(debian_image.reference(registry))
    with store.acquire(reference, lambda s, d, t: stages.append((s, d, t))) as image:
        python = image.rootfs / "usr/bin/python3"
        assert python.is_symlink() or python.is_file()
        assert (image.rootfs / "usr/lib/python3.11/os.py").is_file()
        assert image.digest == debian_image.digest
        assert image.info["config"]["cmd"] == ["python3"]
        assert image.size > 10 * MB
    pulling = [s for s in stages if s[0] == "pulling"]
    assert pulling[0][1] == 0 and pulling[-1][1] == pulling[-1][2] > 0
    assert stages[-1][0] == "unpacking"
