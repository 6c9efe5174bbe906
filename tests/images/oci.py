"""Crafting images in the tests: tar layers entry by entry, OCI layouts, and pushing them to
a registry through the distribution API."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def entry(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    *,
    mode: int = 0o644,
    linkname: str = "",
    size: int | None = None,
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = linkname
    info.size = len(data) if size is None else size
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, data


def tar_bytes(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


@dataclass
class Layer:
    """A layer's uncompressed tar and the gzip blob pushed for it."""

    tar: bytes
    blob: bytes = b""

    def __post_init__(self) -> None:
        if not self.blob:
            self.blob = gzip.compress(self.tar, compresslevel=1, mtime=0)

    @property
    def diff_id(self) -> str:
        return digest_of(self.tar)


@dataclass
class Image:
    """An image's blobs and manifest, as pushed."""

    layers: list[Layer]
    config_extra: dict[str, Any] = field(default_factory=dict)

    def config(self) -> bytes:
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["python3"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in self.layers]},
            **self.config_extra,
        }
        return json.dumps(config).encode()

    def manifest(self) -> bytes:
        config = self.config()
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [
                {
                    "mediaType": OCI_LAYER_GZIP,
                    "digest": digest_of(layer.blob),
                    "size": len(layer.blob),
                }
                for layer in self.layers
            ],
        }
        return json.dumps(manifest).encode()


def image_of(*layers: list[tuple[tarfile.TarInfo, bytes]]) -> Image:
    return Image([Layer(tar_bytes(entries)) for entries in layers])


@dataclass(frozen=True)
class Pusher:
    """Pushes blobs and manifests to a registry over its HTTP API."""

    base_url: str
    auth: tuple[str, str]

    def blob(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        with httpx.Client(auth=self.auth, trust_env=False) as client:
            start = client.post(f"{self.base_url}/v2/{repository}/blobs/uploads/")
            start.raise_for_status()
            location = httpx.URL(self.base_url).join(start.headers["location"])
            done = client.put(
                location.copy_merge_params({"digest": digest}),
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            done.raise_for_status()
        return digest

    def manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> str:
        with httpx.Client(auth=self.auth, trust_env=False) as client:
            response = client.put(
                f"{self.base_url}/v2/{repository}/manifests/{tag}",
                content=body,
                headers={"Content-Type": media_type},
            )
            response.raise_for_status()
        return digest_of(body)

    def image(self, repository: str, image: Image, tag: str = "latest") -> str:
        """Push an image; its manifest's digest."""
        for layer in image.layers:
            self.blob(repository, layer.blob)
        self.blob(repository, image.config())
        return self.manifest(repository, tag, image.manifest(), OCI_MANIFEST)

    def index(self, repository: str, tag: str, manifests: list[tuple[str, int, str]]) -> str:
        """Push an image index over (digest, size, architecture) manifests."""
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": digest,
                        "size": size,
                        "platform": {"os": "linux", "architecture": arch},
                    }
                    for digest, size, arch in manifests
                ],
            }
        ).encode()
        return self.manifest(repository, tag, body, OCI_INDEX)


def write_layout(path: Path, image: Image, tag: str = "latest") -> None:
    """Write ``image`` as an OCI layout directory."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    manifest = image.manifest()
    for data in [layer.blob for layer in image.layers] + [image.config(), manifest]:
        (blobs / digest_of(data).partition(":")[2]).write_bytes(data)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest_of(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (path / "index.json").write_text(json.dumps(index))
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
