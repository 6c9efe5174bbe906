"""Pulling from a real registry: by digest, verified, tags resolved once, and only from the
registries the operator lists."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from atoll.images import errors
from atoll.images.pull import DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, ImagePuller, PullLimits
from atoll.images.reference import ImageReference
from tests.images.conftest import PushedImage, Registry
from tests.images.oci import digest_of, entry, image_of


def test_an_oci_image_is_pulled_by_digest_into_a_layout(registry: Registry, tmp_path: Path) -> None:
    image = image_of([entry("hello.txt", data=b"hello")], [entry("more.txt", data=b"more")])
    digest = registry.pusher.image("tests/small", image)
    puller = ImagePuller([registry.access()])
    done: list[tuple[int, int]] = []
    reference = ImageReference.parse(f"{registry.host}/tests/small@{digest}")
    pulled = puller.pull(reference, tmp_path / "layout", lambda d, t: done.append((d, t)))
    assert pulled.manifest_digest == digest
    assert [layer.digest for layer in pulled.layers] == [
        digest_of(src.blob) for src in image.layers
    ]
    assert pulled.diff_ids == tuple(layer.diff_id for layer in image.layers)
    for layer, source in zip(pulled.layers, image.layers, strict=True):
        assert pulled.layer_path(layer).read_bytes() == source.blob
    assert pulled.config.cmd == ("python3",)
    total = len(image.config()) + sum(len(src.blob) for src in image.layers)
    assert done[0] == (0, total) and done[-1] == (total, total)
    index = json.loads((tmp_path / "layout/index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "image"


def test_a_docker_schema_2_image_is_pulled_as_oci(
    registry: Registry, debian_image_v2s2: PushedImage, tmp_path: Path
) -> None:
    reference = ImageReference.parse(debian_image_v2s2.reference(registry))
    pulled = ImagePuller([registry.access()]).pull(reference, tmp_path / "layout")
    assert [layer.media_type for layer in pulled.layers] == [DOCKER_LAYER_GZIP]
    index = json.loads((tmp_path / "layout/index.json").read_text())
    written = index["manifests"][0]["digest"]
    local = json.loads((tmp_path / "layout/blobs/sha256" / written[7:]).read_bytes())
    assert local["layers"][0]["mediaType"] == OCI_LAYER_GZIP


def test_an_index_gives_this_hosts_platform(registry: Registry, tmp_path: Path) -> None:
    amd = image_of([entry("arch", data=b"amd64")])
    arm = image_of([entry("arch", data=b"arm64")])
    amd_digest = registry.pusher.image("tests/multi", amd, tag="amd64")
    arm_digest = registry.pusher.image("tests/multi", arm, tag="arm64")
    index = registry.pusher.index(
        "tests/multi",
        "latest",
        [(arm_digest, len(arm.manifest()), "arm64"), (amd_digest, len(amd.manifest()), "amd64")],
    )
    reference = ImageReference.parse(f"{registry.host}/tests/multi@{index}")
    pulled = ImagePuller([registry.access()], platform=("linux", "amd64")).pull(
        reference, tmp_path / "amd"
    )
    assert pulled.reference.digest == index and pulled.manifest_digest == amd_digest
    arm_pull = ImagePuller([registry.access()], platform=("linux", "arm64")).pull(
        reference, tmp_path / "arm"
    )
    assert arm_pull.manifest_digest == arm_digest
    with pytest.raises(errors.UnsupportedImage):
        ImagePuller([registry.access()], platform=("linux", "s390x")).pull(
            reference, tmp_path / "none"
        )


def test_a_tag_resolves_to_the_digest_of_its_manifest(registry: Registry) -> None:
    first = registry.pusher.image("tests/moving", image_of([entry("v", data=b"1")]))
    puller = ImagePuller([registry.access()])
    reference = ImageReference.parse(f"{registry.host}/tests/moving:latest")
    assert puller.resolve(reference).digest == first
    second = registry.pusher.image("tests/moving", image_of([entry("v", data=b"2")]))
    pinned = puller.resolve(reference)
    assert pinned.digest == second != first
    assert str(pinned) == f"{registry.host}/tests/moving:latest@{second}"
    assert puller.resolve(pinned) == pinned  # a pinned reference is not looked up again


def test_a_tag_alone_is_not_pulled(registry: Registry, tmp_path: Path) -> None:
    reference = ImageReference.parse(f"{registry.host}/tests/moving:latest")
    with pytest.raises(errors.ImageReferenceInvalid):
        ImagePuller([registry.access()]).pull(reference, tmp_path / "layout")


def test_a_tampered_blob_fails_its_digest(registry: Registry, tmp_path: Path) -> None:
    image = image_of([entry("data.txt", data=os.urandom(4096))])
    digest = registry.pusher.image("tests/tampered", image)
    stored = registry.blob_file(digest_of(image.layers[0].blob))
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    stored.write_bytes(bytes(data))
    reference = ImageReference.parse(f"{registry.host}/tests/tampered@{digest}")
    with pytest.raises(errors.DigestMismatch):
        ImagePuller([registry.access()]).pull(reference, tmp_path / "layout")
    layer_file = tmp_path / "layout/blobs/sha256" / digest_of(image.layers[0].blob)[7:]
    assert not layer_file.exists()


def test_a_manifest_must_match_the_digest_asked_for(registry: Registry, tmp_path: Path) -> None:
    # content of its own: the registry stores blobs by digest, shared by every repository
    digest = registry.pusher.image("tests/wrong", image_of([entry("a", data=os.urandom(64))]))
    other = registry.pusher.image(
        "tests/wrong", image_of([entry("b", data=os.urandom(64))]), tag="b"
    )
    revisions = registry.storage / "docker/registry/v2/blobs/sha256"
    # the registry serves a manifest from its blob store: swap one manifest's bytes for another's
    source = revisions / other[7:9] / other[7:] / "data"
    target = revisions / digest[7:9] / digest[7:] / "data"
    target.write_bytes(source.read_bytes())
    reference = ImageReference.parse(f"{registry.host}/tests/wrong@{digest}")
    with pytest.raises(errors.DigestMismatch):
        ImagePuller([registry.access()]).pull(reference, tmp_path / "layout")


def test_caps_are_checked_before_any_layer_is_fetched(registry: Registry, tmp_path: Path) -> None:
    image = image_of([entry("big", data=bytes(range(256)) * 4096)])
    digest = registry.pusher.image("tests/capped", image)
    reference = ImageReference.parse(f"{registry.host}/tests/capped@{digest}")
    puller = ImagePuller([registry.access()], limits=PullLimits(max_download_bytes=1024))
    with pytest.raises(errors.ImageTooLarge):
        puller.pull(reference, tmp_path / "layout")
    assert not (tmp_path / "layout").exists()
    small_manifest = ImagePuller([registry.access()], limits=PullLimits(max_manifest_bytes=64))
    with pytest.raises(errors.ImageTooLarge):
        small_manifest.pull(reference, tmp_path / "layout")


def test_an_unknown_image_is_not_found(registry: Registry, tmp_path: Path) -> None:
    reference = ImageReference.parse(f"{registry.host}/tests/absent@sha256:{'0' * 64}")
    with pytest.raises(errors.ImageNotFound):
        ImagePuller([registry.access()]).pull(reference, tmp_path / "layout")


def test_a_registry_not_listed_is_refused_without_a_connection(
    registry: Registry, tmp_path: Path
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        puller = ImagePuller([registry.access()])
        for text in (
            f"127.0.0.1:{port}/tests/small@sha256:{'a' * 64}",
            f"127.0.0.1:{port}/tests/small:latest",
            f"localhost:{port}/tests/small:latest",
        ):
            reference = ImageReference.parse(text)
            with pytest.raises(errors.RegistryNotAllowed):
                puller.resolve(reference)
            with pytest.raises(errors.RegistryNotAllowed):
                puller.pull(reference, tmp_path / "layout")
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert not (tmp_path / "layout").exists()
