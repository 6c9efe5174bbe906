"""Algorithm containers as the provider judges them: which registry an image comes from,
which digest a tag names, and whether an environment accepts the image.

A reference naming a registry the operator does not list is refused before any connection
(no consumer can make the provider contact a host of its choosing). A tag is resolved once: at
publish for a published algorithm, when the job is checked for raw code; from then on the
digest is what is trusted, run and written in the receipt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from atoll.errors import PolicyRefused
from atoll.images.access import RegistryAccess, registry_for
from atoll.images.allow import image_allowed
from atoll.images.pull import ImagePuller
from atoll.images.reference import ImageReference, is_digest
from atoll.images.trust import container_section_checksum
from atoll.models.ddo import DDO, AlgorithmContainer
from atoll.models.environment import Environment
from atoll.models.job import ContainerRun

#: pins a reference with a tag to the digest its registry names now
Resolver = Callable[[ImageReference], ImageReference]


def algorithm_container(algorithm: DDO | None) -> AlgorithmContainer | None:
    """The container a published algorithm declares, if any."""
    if algorithm is None or algorithm.metadata.algorithm is None:
        return None
    return algorithm.metadata.algorithm.container


def section_checksum(container: AlgorithmContainer) -> str:
    """Ocean's containerSectionChecksum of a pinned container."""
    return container_section_checksum(container.entrypoint, container.checksum)


class ImageRules:
    """The registries the operator lists (credentials stay inside the puller) and the
    checks an algorithm's container passes before anything is ordered or run."""

    def __init__(
        self, registries: Sequence[RegistryAccess] = (), resolver: Resolver | None = None
    ) -> None:
        self.registries = tuple(registries)
        self._resolve = resolver or ImagePuller(self.registries).resolve

    @property
    def hosts(self) -> list[str]:
        """The listed registries' hosts: all that may be told of them."""
        return [r.host for r in self.registries]

    def reference(self, container: AlgorithmContainer) -> ImageReference:
        """The container's image as a reference, on a listed registry (else refused, with no
        connection made)."""
        reference = ImageReference.parse(container.reference)
        registry_for(reference, self.registries)
        return reference

    def pin(self, container: AlgorithmContainer) -> AlgorithmContainer:
        """The container with its digest: its own, or the one its tag names now; its image
        written as ``registry/repository`` (a tag or digest written in it moves to its own
        field)."""
        reference = self.reference(container)
        if not reference.digest:
            if not reference.tag:
                raise PolicyRefused("a container names its image by tag or by checksum (a digest)")
            reference = self._resolve(reference)
        return container.model_copy(
            update={
                "image": reference.name,
                "tag": reference.tag or "",
                "checksum": reference.digest or "",
            }
        )

    def run(self, container: AlgorithmContainer, env: Environment) -> ContainerRun:
        """What the engine runs: the image pinned by digest, if ``env`` accepts it."""
        reference = self.reference(container)
        if not env.images:
            raise PolicyRefused(
                f"environment {env.id!r} runs no images (its host interpreter only)"
            )
        decidable = reference.digest or not any(is_digest(e) for e in env.images)
        if decidable and not image_allowed(reference, env.images):
            raise _outside(env)
        pinned = self.pin(container)
        reference = reference.pinned(pinned.checksum)
        if not image_allowed(reference, env.images):
            raise _outside(env)
        return ContainerRun(
            image=f"{reference.name}@{reference.digest}", entrypoint=container.entrypoint
        )


def _outside(env: Environment) -> PolicyRefused:
    return PolicyRefused(f"environment {env.id!r} does not accept this image (see its images)")
