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


class SourceError(InputUnavailable):
    """A dataset's URL or S3 source failed; the message names no URL, host, bucket or key.
    Each subclass is a status of its own for the job (see ``kind``)."""

    kind = "unavailable"


class SourceUnavailable(SourceError):
    """The source cannot give the file: gone (404), failing (5xx), unreachable."""

    kind = "unavailable"


class SourceLimit(SourceError):
    """The source went past a cap: too large, too slow, stalled, never ending."""

    kind = "limit"


class SourceRefused(SourceError):
    """The source is one the operator does not let this publisher use: a host not allowed,
    an address inside the provider's network, a scheme or an encoding not accepted."""

    kind = "refused"
