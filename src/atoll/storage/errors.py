"""What goes wrong in storage, as exceptions whose messages are safe to show a consumer: they
name no host path, bucket, credential or location, only what happened."""


class StorageError(Exception):
    """A storage operation failed. The message is safe to show (no location in it)."""


class InvalidKey(StorageError, ValueError):
    """A result key that is not a plain relative name (empty parts, ``.``, ``..``)."""


class ObjectNotFound(StorageError, LookupError):
    """No result is stored under the key."""


class InputUnavailable(StorageError):
    """A dataset input cannot be reached: gone, swapped for a link or a directory, or out of
    the job user's reach. The message says which, in a phrase (e.g. "is no longer
    available") that follows the input's name."""


class InputModified(InputUnavailable):
    """A dataset input no longer holds the bytes it was published with."""
