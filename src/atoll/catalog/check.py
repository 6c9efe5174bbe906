"""Before a job is quoted or started: are a dataset's files still there, still what was
published, and readable by the job? Checked before any agreement is ordered, so a consumer
never pays for a job that cannot run.

A file equal to its recorded fingerprint is not read again; one whose fingerprint moved is
rehashed, and kept (with its new fingerprint recorded) only if its bytes are the published
ones.
"""

from __future__ import annotations

import os

from atoll.catalog.roots import DataRoots
from atoll.catalog.store import AssetStore
from atoll.errors import Conflict
from atoll.models.ddo import DDO
from atoll.models.job import InputFile
from atoll.storage.local_files import FileRefused, opened
from atoll.storage.remote import is_remote


class DatasetUnavailable(Conflict):
    """A dataset file is missing, changed or unreadable: no job can run on it now."""


def confirm_files(
    assets: AssetStore,
    ddo: DDO,
    roots: DataRoots,
    job_user: tuple[int, int],
    held_dir: str = "",
) -> list[InputFile]:
    """The dataset's files as a job will get them; DatasetUnavailable (409, naming files by
    position only) when one cannot be used. Files below ``held_dir`` are the provider's own
    (derived assets): no publisher can put a file there, and the provider hands them to the
    job itself, whatever the directories above them allow."""
    prints = assets.fingerprints(ddo.id)
    out: list[InputFile] = []
    for pf in assets.files(ddo.id):
        where = f"file {pf.index} of {ddo.id}"
        if is_remote(pf.location):
            # fetched (through the operator's guard) and verified when the job starts; the
            # cached copy is the provider's, handed to the job as a held file is
            unknown = [pf.size, 0, 0, 0, 0]
            out.append(
                InputFile(location=pf.location, sha256=pf.sha256, fingerprint=unknown, held=True)
            )
            continue
        held = bool(held_dir) and pf.location.startswith(held_dir.rstrip("/") + "/")
        if not held and not roots.covers(ddo.owner, pf.location):
            raise DatasetUnavailable(
                f"{where} is no longer in a data root its publisher may publish from"
            )
        try:
            with opened(pf.location) as f:
                if not held and not f.readable_by(*job_user):
                    raise DatasetUnavailable(
                        f"{where} cannot be read by the jobs' user; its publisher must make it "
                        "readable by others (and its directories searchable)"
                    )
                fp = f.fingerprint
                if prints.get(pf.index) != fp:
                    if f.sha256() != pf.sha256:
                        raise DatasetUnavailable(f"{where} has changed since it was published")
                    if os.fstat(f.fd).st_ctime_ns != fp.ctime_ns:
                        raise DatasetUnavailable(f"{where} is being changed")
                    assets.set_fingerprint(ddo.id, pf.index, fp)
        except FileRefused:
            raise DatasetUnavailable(f"{where} is no longer available") from None
        except OSError:
            raise DatasetUnavailable(f"{where} is no longer available") from None
        out.append(
            InputFile(location=pf.location, sha256=pf.sha256, fingerprint=fp.as_list(), held=held)
        )
    return out
