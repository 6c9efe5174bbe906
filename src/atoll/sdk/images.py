"""The consumer's own check of an algorithm's image against what a provider publishes of an
environment (its image allowlist and the registries it pulls from), made before anything is
paid for. The provider checks again, and decides; this spares a consumer a round trip and
keeps a refused job from ever reaching an order."""

from __future__ import annotations

from typing import Any

from atoll.errors import BadRequest, PolicyRefused
from atoll.images.allow import image_allowed
from atoll.images.errors import ImageReferenceInvalid
from atoll.images.reference import ImageReference, is_digest
from atoll.models.ddo import AlgorithmContainer


def check_image(environment: dict[str, Any], container: AlgorithmContainer | None) -> None:
    """Raise PolicyRefused when the environment (as ``computeEnvironments`` lists it) would
    refuse ``container``; None (the host interpreter) is always accepted here."""
    if container is None:
        return
    env_id = environment.get("id", "")
    try:
        reference = ImageReference.parse(container.reference)
    except ImageReferenceInvalid as exc:
        raise BadRequest(exc.message) from None
    images = environment.get("images") or {}
    allowed = [str(e) for e in images.get("allowed") or []]
    registries = {str(h) for h in images.get("registries") or []}
    if not allowed:
        raise PolicyRefused(f"environment {env_id!r} runs no images (its host interpreter only)")
    if reference.registry not in registries:
        raise PolicyRefused(
            f"environment {env_id!r} does not pull from {reference.registry} "
            f"(it pulls from: {', '.join(sorted(registries)) or 'no registry'})"
        )
    # a tag against an allowlist of digests is decided by the provider, once it resolved it
    if (reference.digest or not any(is_digest(e) for e in allowed)) and not image_allowed(
        reference, allowed
    ):
        raise PolicyRefused(f"environment {env_id!r} does not accept image {reference}")


def find_environment(environments: list[dict[str, Any]], env_id: str) -> dict[str, Any]:
    for env in environments:
        if env.get("id") == env_id:
            return env
    ids = ", ".join(sorted(str(e.get("id")) for e in environments))
    raise BadRequest(f"unknown compute environment {env_id!r}; available: {ids}")
