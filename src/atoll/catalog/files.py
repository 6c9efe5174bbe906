"""The catalog's view of a publisher's files on this host: they are reached the way the local
storage backend reaches them (:mod:`atoll.storage.local_files`), never by following a link."""

from atoll.storage.local_files import (
    FIX_HINT,
    FileRefused,
    Fingerprint,
    OpenedFile,
    open_nofollow,
    opened,
    permits,
    split,
)

__all__ = [
    "FIX_HINT",
    "FileRefused",
    "Fingerprint",
    "OpenedFile",
    "open_nofollow",
    "opened",
    "permits",
    "split",
]
