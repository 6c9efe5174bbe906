"""Images ready to run: resolved, pulled, verified, scanned, unpacked and cached.

:meth:`ImageStore.acquire` is what a job's runtime calls: it yields the image's read-only
root, pulling it first if the cache does not hold it, and reports progress (``pulling``, bytes
done and total; then ``unpacking``) for the job's status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from atoll.images.access import RegistryAccess
from atoll.images.cache import CachedImage, ImageCache
from atoll.images.errors import ImageError, UnpackFailed
from atoll.images.pull import LAYER_TYPES, ImagePuller, PullLimits
from atoll.images.reference import ImageReference
from atoll.images.scan import LayerScanner, ScanLimits
from atoll.images.unpack import harden, unpack

log = logging.getLogger(__name__)

#: (stage, done, total): ("pulling", bytes, bytes) then ("unpacking", 0, 0)
StageProgress = Callable[[str, int, int], None]


class ImageStore:
    """Pulls images from the operator's registries into a cache."""

    def __init__(
        self,
        registries: Sequence[RegistryAccess],
        cache_dir: Path,
        *,
        cache_bytes: int,
        pull_limits: PullLimits | None = None,
        scan_limits: ScanLimits | None = None,
        puller: ImagePuller | None = None,
    ) -> None:
        self.puller = puller or ImagePuller(registries, limits=pull_limits)
        self.cache = ImageCache(cache_dir, cache_bytes)
        self._scan_limits = scan_limits or ScanLimits()

    def resolve(self, reference: ImageReference) -> ImageReference:
        """Pin a reference to a digest (contacting only a listed registry, and only for a
        tag)."""
        return self.puller.resolve(reference)

    @contextmanager
    def acquire(
        self, reference: ImageReference, progress: StageProgress | None = None
    ) -> Iterator[CachedImage]:
        """The unpacked image of a pinned reference, kept from eviction while the block runs."""
        self.puller.check(reference)
        pinned = self.resolve(reference) if not reference.digest else reference
        digest = pinned.digest or ""

        def build(work: Path, max_bytes: int) -> tuple[Path, int, dict[str, Any]]:
            return self._build(pinned, work, max_bytes, progress)

        with self.cache.acquire(digest, build) as image:
            yield image

    def _build(
        self,
        reference: ImageReference,
        work: Path,
        cache_bytes: int,
        progress: StageProgress | None,
    ) -> tuple[Path, int, dict[str, Any]]:
        digest = reference.digest or ""
        pull_progress = None
        if progress is not None:
            stage = progress

            def pull_progress(done: int, total: int) -> None:
                stage("pulling", done, total)

        pulled = self.puller.pull(reference, work / "layout", pull_progress)
        if progress is not None:
            progress("unpacking", 0, 0)
        max_bytes = min(self._scan_limits.max_unpacked_bytes, cache_bytes)
        scanner = LayerScanner(
            ScanLimits(max_unpacked_bytes=max_bytes, max_entries=self._scan_limits.max_entries)
        )
        for layer, diff_id in zip(pulled.layers, pulled.diff_ids, strict=True):
            scanner.scan(pulled.layer_path(layer), LAYER_TYPES[layer.media_type], diff_id)
        # room for the most the tree can take, made before a byte of it is written
        self.cache.reserve(min(scanner.declared_bytes, max_bytes), digest)
        rootfs = work / "rootfs"
        unpack(pulled.layout, rootfs)
        try:
            size = harden(rootfs, max_bytes)
        except ImageError:
            raise
        except OSError as exc:
            raise UnpackFailed(
                f"the unpacked image could not be checked ({exc.strerror})"
            ) from None
        log.info("image %s unpacked: %d bytes", digest, size)
        info = {
            "reference": str(reference),
            "manifest_digest": pulled.manifest_digest,
            "config": pulled.config.as_json(),
        }
        return rootfs, size, info
