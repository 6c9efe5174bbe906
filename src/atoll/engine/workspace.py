"""A job's directory on the provider host, and the Ocean layout it becomes inside the job.

::

    jobs/<jobId>/
      work/ddos/<did>                  → /data/ddos/<did>             (read-only)
      work/transformations/algorithm   → /data/transformations/algorithm (read-only)
      work/algoCustomData.json         → /data/inputs/algoCustomData.json (read-only)
      work/outputs/                    → /data/outputs                (writable, capped)
      work/logs/                       → /data/logs                   (writable, capped)
      algorithm.log                    the job's stdout and stderr, as it runs
      results/<index>                  published result files (key ``<jobId>/results/<index>``
                                       of the result store; here with the local one)
    <dataset file>                     → /data/inputs/<did>/<index>   (read-only, as the
                                       input source prepared it: the file itself, locally)

Dataset inputs and published code are read only through an
:class:`~atoll.storage.interface.InputSource`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from atoll.engine.executor import Mount
from atoll.engine.outputs import ALGORITHM_LOG
from atoll.models.job import InputFile, Workflow
from atoll.storage import InputModified, InputSource, InputUnavailable, PreparedInput
from atoll.storage.errors import SourceError
from atoll.storage.interface import CHUNK, PublishedInput


class ProvisioningError(Exception):
    def __init__(
        self, message: str, algorithm: bool = False, changed: bool = False, source: str = ""
    ) -> None:
        super().__init__(message)
        self.algorithm = algorithm
        #: a dataset file no longer holds its published bytes
        self.changed = changed
        #: how a dataset's URL or S3 source failed (SourceError.kind), if that is what failed
        self.source = source


#: told (what, bytes so far, expected size or None) while a dataset file is fetched
FetchProgress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def outputs(self) -> Path:
        return self.work / "outputs"

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    @property
    def algorithm_log(self) -> Path:
        return self.root / ALGORITHM_LOG

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def execution_record(self) -> Path:
        return self.root / "execution.json"

    def record_execution(self, execution_id: str, mounts: list[Mount]) -> None:
        """Note the running execution's id and the inputs as they were checked, so that an
        engine restarted meanwhile can attach to the job and judge its results."""
        inputs = [[m.target, str(m.source), list(m.fingerprint)] for m in mounts if m.fingerprint]
        tmp = self.execution_record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"execution": execution_id, "inputs": inputs}))
        tmp.replace(self.execution_record)

    def recorded_execution(self) -> tuple[str, list[Mount]] | None:
        """The execution id and checked inputs :meth:`record_execution` noted, if any."""
        try:
            noted = json.loads(self.execution_record.read_text())
            mounts = [
                Mount(Path(source), target, fingerprint=tuple(int(v) for v in fingerprint))
                for target, source, fingerprint in noted["inputs"]
            ]
            return str(noted["execution"]), mounts
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def reset(self) -> None:
        """Start an attempt from nothing: a re-run after a crash must not see the old one."""
        for path in (self.work, self.results, self.algorithm_log, self.execution_record):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def configure(
        self,
        wf: Workflow,
        inputs: InputSource,
        job_user: tuple[int, int] | None = None,
        progress: FetchProgress | None = None,
    ) -> list[Mount]:
        """Write the DDOs, the algorithm and its parameters; return the job's read-only mounts.
        ``job_user`` (uid, gid) says whether a job could get through the directories above a
        publisher's file: jobs run as a user of their own, so an input only the server may
        read fails here, clearly, not inside the job (whether the executor's job user may read
        the file itself, the executor says: :attr:`Mount.publisher`). Each dataset file must
        still hold its published bytes (:func:`verify_input`); ``progress`` hears how the fetch
        of a remote one goes."""
        for sub in ("ddos", "transformations", "outputs", "logs"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
            # whatever the server's umask, the job's own user must reach what is written here
            (self.work / sub).chmod(0o755)
        self.work.chmod(0o755)
        mounts: list[Mount] = []
        for inp in wf.inputs:
            ddo_file = self.work / "ddos" / inp.did
            ddo_file.write_text(json.dumps(inp.ddo))
            if not inp.files or len(inp.files) != len(inp.locations):
                # fail closed: without the published checksums nothing says what to run on
                raise ProvisioningError(f"the files of {inp.did} came without their checksums")
            for index, file in enumerate(inp.files):
                where = f"file {index} of {inp.did}"
                prepared = verify_input(inputs, file, where, job_user, progress)
                mounts.append(
                    Mount(
                        prepared.path,
                        f"/data/inputs/{inp.did}/{index}",
                        content=file.sha256,
                        fingerprint=prepared.version,
                        publisher=not file.held,
                    )
                )
        algo = self.work / "transformations" / "algorithm"
        if wf.algorithm.rawcode:
            algo.write_text(wf.algorithm.rawcode)
        elif wf.algorithm.location:
            _copy_code(inputs, wf.algorithm.location, algo, wf.algorithm.checksum, wf.algorithm.did)
            if wf.algorithm.ddo is not None:
                (self.work / "ddos" / wf.algorithm.did).write_text(json.dumps(wf.algorithm.ddo))
        else:
            raise ProvisioningError("the workflow has no algorithm", algorithm=True)
        custom = self.work / "algoCustomData.json"
        custom.write_text(json.dumps(wf.algorithm.customData))
        for written in (custom, algo, *(self.work / "ddos").iterdir()):
            written.chmod(0o644)
        mounts += [
            Mount(self.work / "ddos", "/data/ddos"),
            Mount(self.work / "transformations", "/data/transformations"),
            Mount(custom, "/data/inputs/algoCustomData.json"),
        ]
        return mounts


def published(file: InputFile) -> PublishedInput:
    """What the storage layer needs to know of a dataset file the provider checked."""
    return PublishedInput(file.location, file.sha256, tuple(file.fingerprint))


def verify_input(
    inputs: InputSource,
    file: InputFile,
    where: str,
    job_user: tuple[int, int] | None,
    progress: FetchProgress | None = None,
) -> PreparedInput:
    """Prepare a dataset file for the job: still the one the provider published, reached
    without following links, and (a publisher's file) reachable by ``job_user``. A file whose
    version moved is rehashed: it runs only if its bytes are still the published ones."""
    told = None if progress is None else (lambda done, size: progress(where, done, size))
    try:
        return inputs.prepare(published(file), None if file.held else job_user, told)
    except InputModified as e:
        raise ProvisioningError(f"{where} {e}", changed=True) from None
    except SourceError as e:
        raise ProvisioningError(f"{where}: {e}", source=e.kind) from None
    except InputUnavailable as e:
        raise ProvisioningError(f"{where} {e}") from None


def changed_inputs(inputs: InputSource, wf: Workflow, before: list[Mount]) -> list[str]:
    """The dataset files (as "file I of DID") that are not what they were when the job was
    set up: the job may have read other bytes than the receipt names."""
    changed = []
    mounted = {m.target: m for m in before}
    for inp in wf.inputs:
        for index, file in enumerate(inp.files):
            m = mounted.get(f"/data/inputs/{inp.did}/{index}")
            same = m is not None and inputs.unchanged(
                published(file), PreparedInput(m.source, m.fingerprint)
            )
            if not same:
                changed.append(f"file {index} of {inp.did}")
    return changed


def _copy_code(inputs: InputSource, location: str, dst: Path, checksum: str, did: str) -> None:
    """Copy a published algorithm's code without following links, and only if it is still the
    code that was checked and trusted."""
    digest = hashlib.sha256()
    try:
        with inputs.open(location) as fin, dst.open("wb") as fout:
            while chunk := fin.read(CHUNK):
                digest.update(chunk)
                fout.write(chunk)
    except (OSError, InputUnavailable):
        raise ProvisioningError(
            f"the code of {did} is no longer available", algorithm=True
        ) from None
    if checksum and digest.hexdigest() != checksum:
        raise ProvisioningError(
            f"the code of {did} has changed since it was checked", algorithm=True
        )
