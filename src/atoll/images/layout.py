"""A root file system tar as a one-layer OCI image layout, ready to push (``skopeo copy
oci:<layout>:<tag> …``): how an image built from distribution packages becomes an image."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from atoll.images.pull import OCI_CONFIG, OCI_LAYER_GZIP, host_platform
from atoll.images.registry import OCI_INDEX, OCI_MANIFEST

_CHUNK = 1 << 20


def write_layout(root_tar: Path, layout: Path, tag: str, config: dict[str, Any]) -> str:
    """Write ``layout`` (created; it must not exist) holding the tar ``root_tar`` as the one
    layer of an image tagged ``tag``, with ``config`` (e.g. ``{"Env": [...]}``) as its run
    configuration. Returns the manifest's digest, which names the image once pushed."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    diff = hashlib.sha256()
    staged = blobs / ".layer"
    # mtime 0: the same tar gives the same layer digest
    with (
        root_tar.open("rb") as src,
        staged.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz,
    ):
        while chunk := src.read(_CHUNK):
            diff.update(chunk)
            gz.write(chunk)
    layer_digest, layer_size = _digest_file(staged)
    staged.rename(blobs / layer_digest.partition(":")[2])
    os_name, arch = host_platform()
    config_blob = _json(
        {
            "architecture": arch,
            "os": os_name,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff.hexdigest()]},
        }
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _blob(blobs, config_blob, OCI_CONFIG),
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": layer_size}],
        }
    )
    descriptor = _blob(blobs, manifest, OCI_MANIFEST)
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]}
    (layout / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_bytes(_json(index))
    return str(descriptor["digest"])


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _blob(blobs: Path, data: bytes, media_type: str) -> dict[str, Any]:
    hex_digest = hashlib.sha256(data).hexdigest()
    (blobs / hex_digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{hex_digest}", "size": len(data)}


def _digest_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}", os.path.getsize(path)
