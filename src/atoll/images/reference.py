"""Image references: ``registry/repository[:tag][@sha256:…]``.

The registry host is always explicit (no implied Docker Hub), so the host a reference would
make the provider contact is plain from the string, and can be checked against the operator's
list before any connection. A tag is only a name to resolve once; the digest is what is
trusted, pulled and recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from atoll.images.errors import ImageReferenceInvalid

# the grammar of github.com/distribution/reference, restricted to sha256 digests
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_HOSTNAME = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*"
)
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_PORT = re.compile(r"[0-9]{1,5}")
MAX_NAME_LENGTH = 255


def is_digest(value: str) -> bool:
    """Whether ``value`` is a ``sha256:<64 hex>`` digest."""
    return _DIGEST.fullmatch(value) is not None


def normalise_host(host: str) -> str:
    """A registry host as references and the operator's list compare it: lower case,
    ``host`` or ``host:port`` (``[v6]:port``). Raises ValueError when it is neither."""
    if host.startswith("["):
        name, _, tail = host.partition("]")
        name += "]"
        if tail and not tail.startswith(":"):
            raise ValueError("not a registry host (host or host:port)")
        sep, port = tail[:1], tail[1:]
    else:
        name, sep, port = host.partition(":")
    if not (_HOSTNAME.fullmatch(name) or _IPV6.fullmatch(name)):
        raise ValueError("not a registry host (host or host:port)")
    if sep and not (_PORT.fullmatch(port) and 0 < int(port) < 65536):
        raise ValueError("not a registry port (1 to 65535)")
    return f"{name.lower()}:{port}" if sep else name.lower()


@dataclass(frozen=True)
class ImageReference:
    """A parsed reference; ``digest`` is set once the image is pinned."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse ``registry/repository[:tag][@sha256:…]``; the registry part is required."""
        if not isinstance(text, str) or not text or len(text) > 2 * MAX_NAME_LENGTH:
            raise ImageReferenceInvalid("an image reference is registry/repository[:tag][@digest]")
        rest, _, digest = text.partition("@")
        if digest and not is_digest(digest):
            raise ImageReferenceInvalid("an image digest is sha256: and 64 lower-case hex digits")
        host, slash, path = rest.partition("/")
        if not slash or not _looks_like_host(host):
            raise ImageReferenceInvalid(
                "an image reference names its registry host first (registry.example/repo:tag)"
            )
        try:
            registry = normalise_host(host)
        except ValueError:
            raise ImageReferenceInvalid("the image reference's registry host is invalid") from None
        repository, tag = path, None
        last = path.rpartition("/")[2]
        if ":" in last:
            repository, _, tag = path.rpartition(":")
            if not _TAG.fullmatch(tag):
                raise ImageReferenceInvalid("an image tag is up to 128 of [A-Za-z0-9_.-]")
        if not _REPOSITORY.fullmatch(repository) or len(repository) > MAX_NAME_LENGTH:
            raise ImageReferenceInvalid(
                "an image repository is lower-case path components of [a-z0-9._-]"
            )
        return cls(registry=registry, repository=repository, tag=tag, digest=digest or None)

    def pinned(self, digest: str) -> ImageReference:
        """The same reference, pinned to ``digest``."""
        if not is_digest(digest):
            raise ImageReferenceInvalid("an image digest is sha256: and 64 lower-case hex digits")
        return replace(self, digest=digest)

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _looks_like_host(first: str) -> bool:
    # the rule of distribution/reference: a first component is a host when it has a dot, a port
    # or is localhost; anything else would be a repository on an implied registry
    return "." in first or ":" in first or first == "localhost" or first.startswith("[")
