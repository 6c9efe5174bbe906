"""Whose fault a failed publish is: the job's tree or the provider's disk."""

from __future__ import annotations

import errno
import os

from atoll.engine.blame import job_caused


def test_a_tree_the_job_built_is_its_own_fault() -> None:
    for code in (errno.ENAMETOOLONG, errno.ELOOP, errno.EACCES, errno.ENOTDIR):
        assert job_caused(OSError(code, os.strerror(code)))
    assert job_caused(RecursionError())


def test_the_providers_disk_is_the_providers_fault() -> None:
    for code in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EROFS):
        assert not job_caused(OSError(code, os.strerror(code)))
    assert not job_caused(ValueError("a bug"))
