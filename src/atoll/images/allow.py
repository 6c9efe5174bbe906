"""Which images an environment accepts: its ``images`` allowlist, matched against a reference.

An entry is one of

- ``sha256:<64 hex>``: that one image, by digest (the reference must be pinned to it);
- ``registry/repository``: any image of that repository (tag or digest);
- ``*``: any image (the registry must still be one the operator lists, checked apart).

A malformed entry matches nothing, so a typo in a publisher's settings closes rather than
opens. The provider checks this before an agreement is ordered; the engine checks it again
before it runs a job, with the reference pinned.
"""

from __future__ import annotations

from collections.abc import Iterable

from atoll.images.errors import ImageError, ImageReferenceInvalid
from atoll.images.reference import ImageReference, is_digest, normalise_host

ANY_IMAGE = "*"


class ImageNotAllowed(ImageError):
    """The image is not pinned by digest, or not one its environment accepts."""

    code = "image-not-allowed"
    status_code = 403


def check_image(reference: ImageReference | str, allowlist: Iterable[str]) -> ImageReference:
    """The reference, parsed, if it is pinned by digest and ``allowlist`` admits it; else
    ImageNotAllowed (or ImageReferenceInvalid). Whether its registry is listed is the
    operator's settings' to say (:func:`atoll.images.access.registry_for`)."""
    if isinstance(reference, str):
        reference = ImageReference.parse(reference)
    if reference.digest is None:
        raise ImageNotAllowed("the image is not pinned by digest (registry/repository@sha256:…)")
    if not image_allowed(reference, allowlist):
        raise ImageNotAllowed("the image is not one this environment accepts")
    return reference


def allowlist_entry_valid(entry: str) -> bool:
    """Whether ``entry`` is a digest, ``registry/repository`` or ``*``."""
    return entry == ANY_IMAGE or is_digest(entry) or _repository_entry(entry) is not None


def image_allowed(reference: ImageReference | str, allowlist: Iterable[str]) -> bool:
    """Whether an allowlist admits ``reference``; an unparsable reference is never admitted."""
    if isinstance(reference, str):
        try:
            reference = ImageReference.parse(reference)
        except ImageReferenceInvalid:
            return False
    for entry in allowlist:
        if entry == ANY_IMAGE:
            return True
        if is_digest(entry):
            if reference.digest == entry:
                return True
            continue
        if _repository_entry(entry) == (reference.registry, reference.repository):
            return True
    return False


def _repository_entry(entry: str) -> tuple[str, str] | None:
    """``(registry, repository)`` of a ``registry/repository`` entry, or None."""
    if not isinstance(entry, str) or "@" in entry:
        return None
    try:
        parsed = ImageReference.parse(entry)
    except ImageReferenceInvalid:
        return None
    if parsed.tag is not None:
        return None  # a tag would read as a pin the matcher does not honour: refuse it
    return normalise_host(parsed.registry), parsed.repository
