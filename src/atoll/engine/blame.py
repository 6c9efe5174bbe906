"""Whose fault a failure to publish a job's results is: the job's, for an output tree the job
built so that it cannot be read back (too deep, names too long, loops, modes that lock the
provider out), or the provider's (its own disk full or failing). The first is delivered
compute the consumer pays for; the second is refunded (see :mod:`atoll.models.charges`)."""

from __future__ import annotations

import errno

#: errors that reading a job's own output tree raises because of the tree's shape or modes
_JOB_ERRNOS = frozenset(
    {
        errno.ENAMETOOLONG,
        errno.ELOOP,
        errno.ENOTDIR,
        errno.ENOENT,
        errno.EACCES,
        errno.EPERM,
        errno.EMLINK,
        errno.EINVAL,
    }
)


def job_caused(exc: BaseException) -> bool:
    """Whether publishing failed because of what the job left in its outputs. A tree deeper
    than the walk can follow raises RecursionError; anything unknown is the provider's."""
    if isinstance(exc, RecursionError):
        return True
    return isinstance(exc, OSError) and exc.errno in _JOB_ERRNOS
