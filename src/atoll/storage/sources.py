"""Every dataset input through one :class:`~atoll.storage.interface.InputSource`: a local
path goes to :class:`~atoll.storage.local.LocalInputs`, a remote location (a URL or an S3
object, :mod:`atoll.storage.remote`) to :class:`~atoll.storage.remote.RemoteInputs`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import BinaryIO

from atoll.storage.errors import SourceRefused
from atoll.storage.interface import InputSource, PreparedInput, Progress, PublishedInput
from atoll.storage.local import LocalInputs
from atoll.storage.remote import RemoteInputs, is_remote


class Inputs:
    """Local files, and remote sources when the provider takes them (``remote``)."""

    def __init__(self, remote: RemoteInputs | None = None, local: InputSource | None = None):
        self.local: InputSource = local or LocalInputs()
        self.remote = remote

    def _for(self, location: str) -> InputSource:
        if not is_remote(location):
            return self.local
        if self.remote is None:
            raise SourceRefused("this provider takes no URL or S3 sources")
        return self.remote

    def prepare(
        self,
        published: PublishedInput,
        job_user: tuple[int, int] | None,
        progress: Progress | None = None,
    ) -> PreparedInput:
        return self._for(published.location).prepare(published, job_user, progress)

    def unchanged(self, published: PublishedInput, prepared: PreparedInput) -> bool:
        try:
            source = self._for(published.location)
        except SourceRefused:
            return False
        return source.unchanged(published, prepared)

    def open(self, location: str) -> AbstractContextManager[BinaryIO]:
        return self._for(location).open(location)
