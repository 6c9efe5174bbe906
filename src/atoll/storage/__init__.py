"""Storage: where dataset inputs come from and where results go (see
:mod:`atoll.storage.interface`), with the local backend behind it."""

from atoll.storage.errors import (
    InputModified,
    InputUnavailable,
    InvalidKey,
    ObjectNotFound,
    StorageError,
)
from atoll.storage.interface import (
    InputSource,
    PreparedInput,
    PublishedInput,
    ResultStore,
    StoredObject,
)
from atoll.storage.local import LocalInputs, LocalResults

__all__ = [
    "InputModified",
    "InputSource",
    "InputUnavailable",
    "InvalidKey",
    "LocalInputs",
    "LocalResults",
    "ObjectNotFound",
    "PreparedInput",
    "PublishedInput",
    "ResultStore",
    "StorageError",
    "StoredObject",
]
