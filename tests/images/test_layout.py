"""A root file system tar as an OCI layout: skopeo pushes it as it is, and the puller gets
back the same digests."""

from __future__ import annotations

import gzip
from pathlib import Path

from atoll.images.layout import write_layout
from atoll.images.pull import ImagePuller
from atoll.images.reference import ImageReference
from tests.images.conftest import Registry, skopeo_push
from tests.images.oci import digest_of, entry, tar_bytes


def test_a_root_tar_becomes_a_layout_that_is_pushed_and_pulled_by_its_digest(
    registry: Registry, tmp_path: Path
) -> None:
    tar = tar_bytes([entry("bin/", b"", mode=0o755), entry("bin/hello", b"hello", mode=0o755)])
    (tmp_path / "root.tar").write_bytes(tar)
    digest = write_layout(tmp_path / "root.tar", tmp_path / "layout", "latest", {"Env": ["A=1"]})
    # the same tar makes the same image
    again = write_layout(tmp_path / "root.tar", tmp_path / "again", "latest", {"Env": ["A=1"]})
    assert again == digest
    assert skopeo_push(registry, tmp_path / "layout", "tests/layout") == digest
    reference = ImageReference.parse(f"{registry.host}/tests/layout@{digest}")
    pulled = ImagePuller([registry.access()]).pull(reference, tmp_path / "pulled")
    assert pulled.diff_ids == (digest_of(tar),)
    (layer,) = pulled.layers
    assert gzip.decompress(pulled.layer_path(layer).read_bytes()) == tar
    assert pulled.config.env == ("A=1",)
