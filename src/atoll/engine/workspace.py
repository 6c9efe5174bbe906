"""A job's directory on the provider host, and the Ocean layout it becomes inside the job.

::

    jobs/<jobId>/
      work/ddos/<did>                  → /data/ddos/<did>             (read-only)
      work/transformations/algorithm   → /data/transformations/algorithm (read-only)
      work/algoCustomData.json         → /data/inputs/algoCustomData.json (read-only)
      work/outputs/                    → /data/outputs                (writable, capped)
      work/logs/                       → /data/logs                   (writable, capped)
      algorithm.log                    the job's stdout and stderr, as it runs
      results/<index>                  published result files
    <dataset file>                     → /data/inputs/<did>/<index>   (read-only bind, no copy)
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from atoll.engine.executor import Mount
from atoll.engine.outputs import ALGORITHM_LOG
from atoll.models.job import Workflow


class ProvisioningError(Exception):
    def __init__(self, message: str, algorithm: bool = False) -> None:
        super().__init__(message)
        self.algorithm = algorithm


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

    def result_file(self, index: int) -> Path:
        return self.results / str(index)

    def reset(self) -> None:
        """Start an attempt from nothing: a re-run after a crash must not see the old one."""
        for path in (self.work, self.results, self.algorithm_log):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def configure(self, wf: Workflow, readable: Callable[[Path], bool]) -> list[Mount]:
        """Write the DDOs, the algorithm and its parameters; return the job's read-only mounts.
        ``readable`` says whether a job could read a host file: jobs run as a user of their
        own, so an input only the server may read fails here, clearly, not inside the job."""
        for sub in ("ddos", "transformations", "outputs", "logs"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
            # whatever the server's umask, the job's own user must reach what is written here
            (self.work / sub).chmod(0o755)
        self.work.chmod(0o755)
        mounts: list[Mount] = []
        for inp in wf.inputs:
            ddo_file = self.work / "ddos" / inp.did
            ddo_file.write_text(json.dumps(inp.ddo))
            for index, location in enumerate(inp.locations):
                source = Path(location)
                try:
                    st = os.stat(source)
                except OSError:
                    raise ProvisioningError(
                        f"file {index} of {inp.did} is no longer available"
                    ) from None
                if not stat.S_ISREG(st.st_mode):
                    raise ProvisioningError(f"file {index} of {inp.did} is not a regular file")
                if not readable(source):
                    raise ProvisioningError(
                        f"file {index} of {inp.did} is not readable by the sandbox user "
                        "(the publisher must make it readable by others)"
                    )
                mounts.append(Mount(source, f"/data/inputs/{inp.did}/{index}"))
        algo = self.work / "transformations" / "algorithm"
        if wf.algorithm.rawcode:
            algo.write_text(wf.algorithm.rawcode)
        elif wf.algorithm.location:
            try:
                shutil.copyfile(wf.algorithm.location, algo)
            except OSError:
                raise ProvisioningError(
                    f"the code of {wf.algorithm.did} is no longer available", algorithm=True
                ) from None
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
