"""Why an image could not be had, one type per cause.

Each error carries a stable ``code`` a job's status can name (``image-digest-mismatch``,
``layer-device-node``, …) and a message that is safe to show: it names the image by digest and
never carries a registry's credentials, a host path of the cache or a response body.
"""

from __future__ import annotations

from atoll.errors import AtollError


class ImageError(AtollError):
    """An image that cannot be pulled, verified or unpacked."""

    code = "image-error"
    status_code = 422


class ImageReferenceInvalid(ImageError):
    """The reference is not ``registry/repository[:tag][@sha256:…]``."""

    code = "image-reference-invalid"
    status_code = 400


class RegistryNotAllowed(ImageError):
    """The reference names a registry the operator does not list; nothing was contacted."""

    code = "image-registry-not-allowed"
    status_code = 403


class RegistryUnavailable(ImageError):
    """The registry could not be reached, refused the credentials or answered with an error."""

    code = "image-registry-unavailable"
    status_code = 502


class ImageNotFound(ImageError):
    """The registry has no such repository, tag, manifest or blob."""

    code = "image-not-found"
    status_code = 404


class DigestMismatch(ImageError):
    """A manifest, a blob or an unpacked layer does not match the digest that names it."""

    code = "image-digest-mismatch"


class UnsupportedImage(ImageError):
    """A media type, compression or platform this runtime does not run."""

    code = "image-unsupported"


class ImageTooLarge(ImageError):
    """A manifest, a blob, the layers once decompressed (a decompression bomb), the number of
    entries or the unpacked tree exceed their caps."""

    code = "image-too-large"


class CacheFull(ImageError):
    """The image fits the cache's cap, but the images in use leave no room for it now."""

    code = "image-cache-full"
    status_code = 503


class LayerError(ImageError):
    """A layer's content is refused: nothing of the image is kept."""

    code = "layer-refused"


class MalformedLayer(LayerError):
    """The layer is not a readable tar (or gzip of one), or holds entry kinds not allowed."""

    code = "layer-malformed"


class AbsolutePathEntry(LayerError):
    """An entry's name is an absolute path."""

    code = "layer-absolute-path"


class ParentPathEntry(LayerError):
    """An entry's name climbs with ``..``, or replaces the image's root."""

    code = "layer-parent-path"


class SymlinkTraversal(LayerError):
    """An entry would be written through a symbolic link, which may point out of the root."""

    code = "layer-symlink-traversal"


class HardLinkEscape(LayerError):
    """A hard link whose target is not a file earlier in the image (absolute, ``..``, through a
    symbolic link or unknown)."""

    code = "layer-hardlink-escape"


class DeviceEntry(LayerError):
    """A character or block device, or a FIFO."""

    code = "layer-device-node"


class WhiteoutEscape(LayerError):
    """A whiteout aimed at ``.``, ``..``, a reserved name or a path out of the root."""

    code = "layer-whiteout-escape"


class UnpackFailed(ImageError):
    """The unpacker refused the image (after every check above passed)."""

    code = "image-unpack-failed"
    status_code = 500
