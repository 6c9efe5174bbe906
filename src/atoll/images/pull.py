"""Pulling an image by digest into a local OCI layout, every byte verified.

A tag is resolved once (:meth:`ImagePuller.resolve`); :meth:`ImagePuller.pull` takes only a
pinned reference. The manifest (or the image index, then the manifest for this host's platform)
must hash to the digest that names it, each blob to its descriptor's digest and size, and the
sizes are capped before anything is downloaded. The layout written holds an OCI manifest over
the same blobs (a Docker schema 2 manifest is rewritten with the OCI media types its layers
are byte-for-byte equal to), ready for the unpacker.

The pull is done here over httpx rather than by skopeo: the credentials never go on a command
line or into an auth file, the host is checked in this process before any connection, caps are
checked against descriptors before a byte of a layer is fetched, and progress is counted in
bytes for the job's status.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from atoll.images.access import RegistryAccess, registry_for
from atoll.images.errors import (
    DigestMismatch,
    ImageReferenceInvalid,
    ImageTooLarge,
    UnsupportedImage,
)
from atoll.images.reference import ImageReference, is_digest
from atoll.images.registry import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    sha256_digest,
)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
#: layer media types pulled, and the OCI type each is written as in the local layout
LAYER_TYPES = {
    OCI_LAYER_TAR: OCI_LAYER_TAR,
    OCI_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
}
#: the name the pulled image has in its local layout
LAYOUT_TAG = "image"

_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

Progress = Callable[[int, int], None]


def host_platform() -> tuple[str, str]:
    """(os, architecture) as image indexes name them, for this host."""
    machine = platform.machine().lower()
    return "linux", _ARCHITECTURES.get(machine, machine)


@dataclass(frozen=True)
class PullLimits:
    """Caps checked against descriptors before any blob is fetched."""

    max_manifest_bytes: int = 4 << 20
    max_config_bytes: int = 4 << 20
    max_layers: int = 128
    #: compressed bytes of all blobs together
    max_download_bytes: int = 4 << 30


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest says a blob is."""

    media_type: str
    digest: str
    size: int

    @classmethod
    def parse(cls, raw: Any, what: str) -> Descriptor:
        if not isinstance(raw, dict):
            raise UnsupportedImage(f"the image's {what} descriptor is malformed")
        media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str) or not is_digest(digest):
            raise UnsupportedImage(f"the image's {what} descriptor is malformed or not sha256")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise UnsupportedImage(f"the image's {what} descriptor has no valid size")
        if raw.get("urls"):
            raise UnsupportedImage("the image has foreign layers, fetched from elsewhere")
        return cls(media_type, digest, size)

    def as_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class ImageConfig:
    """What the image's configuration says about running it."""

    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""

    @classmethod
    def parse(cls, data: Any) -> ImageConfig:
        config = data.get("config") if isinstance(data, dict) else None
        if not isinstance(config, dict):
            return cls()
        return cls(
            env=_strings(config.get("Env")),
            entrypoint=_strings(config.get("Entrypoint")),
            cmd=_strings(config.get("Cmd")),
            working_dir=str(config.get("WorkingDir") or ""),
            user=str(config.get("User") or ""),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "env": list(self.env),
            "entrypoint": list(self.entrypoint),
            "cmd": list(self.cmd),
            "working_dir": self.working_dir,
            "user": self.user,
        }


@dataclass(frozen=True)
class PulledImage:
    """An image in a local OCI layout, verified."""

    reference: ImageReference
    #: the platform manifest's digest (the reference's own digest unless it names an index)
    manifest_digest: str
    layout: Path
    layers: tuple[Descriptor, ...]
    #: the uncompressed layers' digests, from the configuration
    diff_ids: tuple[str, ...]
    config: ImageConfig

    def layer_path(self, layer: Descriptor) -> Path:
        return blob_path(self.layout, layer.digest)


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    return layout / "blobs" / algorithm / hex_digest


class ImagePuller:
    """Resolves and pulls images from the registries the operator lists."""

    def __init__(
        self,
        registries: Sequence[RegistryAccess],
        *,
        limits: PullLimits | None = None,
        platform: tuple[str, str] | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._registries = tuple(registries)
        self._limits = limits or PullLimits()
        self._platform = platform or host_platform()
        self._timeout = timeout
        self._transport = transport

    def check(self, reference: ImageReference) -> None:
        """Refuse a reference to a registry not listed (RegistryNotAllowed), contacting none."""
        registry_for(reference, self._registries)

    def resolve(self, reference: ImageReference) -> ImageReference:
        """The reference pinned to a digest: its own, or the digest of the manifest its tag
        names now. A pinned reference is returned as it is, without contacting anyone."""
        registry = registry_for(reference, self._registries)
        if reference.digest:
            return reference
        if not reference.tag:
            raise ImageReferenceInvalid("an image reference needs a tag or a digest")
        with self._client(registry) as client:
            body, media_type = client.manifest(
                reference.repository, reference.tag, self._limits.max_manifest_bytes
            )
        _manifest_type(body, media_type)
        return reference.pinned(sha256_digest(body))

    def pull(
        self, reference: ImageReference, layout: Path, progress: Progress | None = None
    ) -> PulledImage:
        """Pull a pinned image into the OCI layout directory ``layout`` (created)."""
        registry = registry_for(reference, self._registries)
        if not reference.digest:
            raise ImageReferenceInvalid("an image is pulled by digest: resolve its tag first")
        repository = reference.repository
        with self._client(registry) as client:
            digest = reference.digest
            data, kind = self._manifest(client, repository, digest)
            if kind in (OCI_INDEX, DOCKER_MANIFEST_LIST):
                digest = self._pick_platform(data)
                data, kind = self._manifest(client, repository, digest)
                if kind not in (OCI_MANIFEST, DOCKER_MANIFEST):
                    raise UnsupportedImage("the image index names another index")
            config_desc = Descriptor.parse(data.get("config"), "configuration")
            if config_desc.media_type not in (OCI_CONFIG, DOCKER_CONFIG):
                raise UnsupportedImage("the image's configuration has an unknown media type")
            raw_layers = data.get("layers")
            if not isinstance(raw_layers, list) or not raw_layers:
                raise UnsupportedImage("the image's manifest lists no layers")
            layers = tuple(Descriptor.parse(raw, "layer") for raw in raw_layers)
            self._check_layers(config_desc, layers)

            (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            total = config_desc.size + sum(layer.size for layer in layers)
            done = 0

            def advance(n: int) -> None:
                nonlocal done
                done += n
                if progress is not None:
                    progress(done, total)

            if progress is not None:
                progress(0, total)
            for descriptor in (config_desc, *layers):
                target = blob_path(layout, descriptor.digest)
                if not target.exists():
                    client.blob(repository, descriptor.digest, descriptor.size, target, advance)
                elif descriptor is not config_desc:
                    advance(descriptor.size)  # a layer listed twice is fetched once
            config_data = _json(blob_path(layout, config_desc.digest).read_bytes(), "config")
        diff_ids = _diff_ids(config_data, len(layers))
        _write_layout(layout, config_desc, layers)
        return PulledImage(
            reference=reference,
            manifest_digest=digest,
            layout=layout,
            layers=layers,
            diff_ids=diff_ids,
            config=ImageConfig.parse(config_data),
        )

    def _client(self, registry: RegistryAccess) -> RegistryClient:
        return RegistryClient(registry, timeout=self._timeout, transport=self._transport)

    def _manifest(
        self, client: RegistryClient, repository: str, digest: str
    ) -> tuple[dict[str, Any], str]:
        body, media_type = client.manifest(repository, digest, self._limits.max_manifest_bytes)
        if sha256_digest(body) != digest:
            raise DigestMismatch(f"the manifest served for {digest} does not match it")
        return _manifest_type(body, media_type)

    def _pick_platform(self, index: dict[str, Any]) -> str:
        want_os, want_arch = self._platform
        entries = index.get("manifests")
        for raw in entries if isinstance(entries, list) else []:
            plat = raw.get("platform") if isinstance(raw, dict) else None
            if (
                isinstance(plat, dict)
                and plat.get("os") == want_os
                and plat.get("architecture") == want_arch
            ):
                return Descriptor.parse(raw, "platform manifest").digest
        raise UnsupportedImage(f"the image has no {want_os}/{want_arch} variant")

    def _check_layers(self, config: Descriptor, layers: tuple[Descriptor, ...]) -> None:
        limits = self._limits
        if len(layers) > limits.max_layers:
            raise ImageTooLarge(f"the image has more than {limits.max_layers} layers")
        if config.size > limits.max_config_bytes:
            raise ImageTooLarge("the image's configuration exceeds its size cap")
        if config.size + sum(layer.size for layer in layers) > limits.max_download_bytes:
            raise ImageTooLarge("the image's layers exceed the download cap")
        for layer in layers:
            if layer.media_type not in LAYER_TYPES:
                raise UnsupportedImage(
                    "the image has a layer of an unsupported media type (tar or tar+gzip only)"
                )


def _manifest_type(body: bytes, header_type: str) -> tuple[dict[str, Any], str]:
    data = _json(body, "manifest")
    kind = data.get("mediaType") or header_type
    if kind not in (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST):
        raise UnsupportedImage("the image's manifest is of an unsupported media type")
    if data.get("schemaVersion") != 2:
        raise UnsupportedImage("the image's manifest is not schema version 2")
    return data, str(kind)


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise UnsupportedImage(f"the image's {what} is not JSON") from None
    if not isinstance(data, dict):
        raise UnsupportedImage(f"the image's {what} is not a JSON object")
    return data


def _diff_ids(config: dict[str, Any], count: int) -> tuple[str, ...]:
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if (
        not isinstance(ids, list)
        or len(ids) != count
        or not all(isinstance(i, str) and is_digest(i) for i in ids)
    ):
        raise UnsupportedImage("the image's configuration does not list one diff_id per layer")
    return tuple(ids)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value)


def _write_layout(layout: Path, config: Descriptor, layers: tuple[Descriptor, ...]) -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
        "layers": [
            {"mediaType": LAYER_TYPES[layer.media_type], "digest": layer.digest, "size": layer.size}
            for layer in layers
        ],
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    digest = sha256_digest(body)
    path = blob_path(layout, digest)
    path.write_bytes(body)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(body),
                "annotations": {"org.opencontainers.image.ref.name": LAYOUT_TAG},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
