"""A job whose algorithm runs in an image: the checks made again before anything is pulled,
the pull's progress as the job's status, and the runtime the sandbox gets from the cached
image.

The provider checked the image before it ordered anything; the engine checks once more, with
its own settings, because it is the last place before a connection is made: the image must be
pinned by digest, on a registry the operator lists and admitted by the environment's
``images`` list. Every failure is an :class:`~atoll.images.errors.ImageError` whose message
is safe to show: it names neither a credential nor a host path.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from atoll.engine.executor import Runtime
from atoll.images.allow import ImageNotAllowed, check_image
from atoll.images.cache import CachedImage
from atoll.images.command import DEFAULT_PATH, entrypoint_argv, find_command
from atoll.images.errors import (
    CacheFull,
    ImageError,
    ImageReferenceInvalid,
    ImageTooLarge,
    LayerError,
    RegistryNotAllowed,
    UnpackFailed,
)
from atoll.images.reference import ImageReference
from atoll.images.store import ImageStore
from atoll.models.environment import Environment
from atoll.models.job import ContainerRun
from atoll.models.status import JobStatus

#: where the algorithm lies in every job, and what ``$ALGO`` stands for
ALGORITHM_PATH = "/data/transformations/algorithm"
#: the least time between two progress updates of a pull written to the job's status
PROGRESS_INTERVAL = 0.5
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: set by the sandbox, whatever an image's configuration says
_ENGINE_ENV = frozenset(
    {"HOME", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"}
)


class NoImageStore(ImageError):
    """The provider lists no registry: no image is ever pulled."""

    code = "image-no-registry"
    status_code = 403


class ImageCommandMissing(ImageError):
    """The entrypoint's command is not in the image."""

    code = "image-command-missing"


class PullStopped(Exception):
    """The job was stopped while its image was being pulled."""


def image_status(exc: ImageError) -> JobStatus:
    """The job status an image failure ends a job with."""
    if isinstance(exc, ImageNotAllowed | RegistryNotAllowed | ImageReferenceInvalid | NoImageStore):
        return JobStatus.IMAGE_NOT_ALLOWED
    if isinstance(exc, LayerError | UnpackFailed):
        return JobStatus.IMAGE_REFUSED
    if isinstance(exc, ImageTooLarge):
        return JobStatus.IMAGE_TOO_LARGE
    if isinstance(exc, CacheFull):
        return JobStatus.IMAGE_CACHE_FULL
    if isinstance(exc, ImageCommandMissing) or exc.code == "image-entrypoint-invalid":
        return JobStatus.ALGORITHM_PROVISIONING_FAILED
    return JobStatus.IMAGE_PULL_FAILED


def image_status_text(exc: ImageError) -> str:
    """``statusText`` of a job an image failure ended: the status, its cause's code and the
    cause in a sentence."""
    return f"{image_status(exc).text} ({exc.code}): {exc}"


def checked_reference(
    container: ContainerRun, env: Environment, store: ImageStore | None
) -> ImageReference:
    """The job's image reference if it may be pulled and run here; raises ImageError before
    any connection is made."""
    if store is None:
        raise NoImageStore("this provider runs no images: it lists no registry to pull from")
    reference = ImageReference.parse(container.image)
    store.puller.check(reference)  # the operator's list first: a host of nobody's choosing
    return check_image(reference, env.images)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


class PullProgress:
    """Turns the store's progress calls into status texts, at most one each
    PROGRESS_INTERVAL seconds (and each change of stage); raises PullStopped in the pull
    once ``stopped()`` says the job was stopped."""

    def __init__(
        self,
        report: Callable[[str], object],
        stopped: Callable[[], bool],
        interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self._report = report
        self._stopped = stopped
        self._interval = interval
        self._stage = ""
        self._last = 0.0
        #: whether a progress was reported (the image was pulled, not found in the cache)
        self.reported = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage == self._stage and now - self._last < self._interval:
            return
        self._stage, self._last = stage, now
        if self._stopped():
            raise PullStopped
        self.reported = True
        self._report(progress_text(stage, done, total))


def progress_text(stage: str, done: int, total: int) -> str:
    """What a pull's status says: bytes done and total, or that it unpacks."""
    if stage == "pulling":
        if total > 0:
            return f"{JobStatus.PULLING_IMAGE.text}: {_mb(done)} of {_mb(total)} MB"
        return f"{JobStatus.PULLING_IMAGE.text}: {_mb(done)} MB"
    return "Unpacking image"


@dataclass(frozen=True)
class ImageRun:
    """How the sandbox runs a job in an unpacked image."""

    runtime: Runtime
    args: list[str]
    #: the image configuration's environment (the job's own variables go on top)
    env: dict[str, str]


def image_env(image: CachedImage) -> dict[str, str]:
    """The ``Env`` of the image's configuration, less what the sandbox sets itself."""
    config = image.info.get("config")
    entries = config.get("env") if isinstance(config, dict) else None
    found: dict[str, str] = {}
    for item in entries if isinstance(entries, list) else []:
        if not isinstance(item, str) or "\0" in item:
            continue
        name, sep, value = item.partition("=")
        if sep and _ENV_NAME.fullmatch(name) and name not in _ENGINE_ENV:
            found[name] = value
    return found


def image_run(image: CachedImage, container: ContainerRun) -> ImageRun:
    """The runtime, arguments and environment of a job in ``image``: the entrypoint's words
    (``$ALGO`` replaced), its command found on the image's PATH. Raises ImageError."""
    argv = entrypoint_argv(container.entrypoint, ALGORITHM_PATH)
    env = image_env(image)
    command = find_command(image.rootfs, argv[0], env.get("PATH", DEFAULT_PATH))
    if command is None:
        raise ImageCommandMissing(f"the image has no command {argv[0]!r} on its PATH")
    return ImageRun(Runtime(Path(command), root=image.rootfs), argv[1:], env)
