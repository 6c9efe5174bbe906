"""Placement by data: a dataset kept on a node's local disk runs only on the workers that
hold it.

A worker holds the provider's data roots it is started with (``atoll worker --data-root
DIR``, the same path as in the provider's ``data_roots``) and advertises each as a Dask
resource, ``data:<digest of the path>``, in an amount no job uses up. A job whose dataset
files lie under a data root asks for one of that root's resource, so the scheduler places it
(and places it again after a worker loss) only on workers that hold every one of its files.
URL and S3 sources are no part of this: they are fetched on whichever worker runs the job
(:mod:`atoll.cluster.sources`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from atoll.engine.executor import ExecutionSpec

#: what a worker advertises of each data root it holds: more than any number of jobs takes
HOLDS = 1_000_000
PREFIX = "data:"


def data_resource(root: str | Path) -> str:
    """The Dask resource of a data root (its resolved path, as a digest: resource names
    travel in the scheduler's messages and dashboards)."""
    real = os.path.realpath(root)
    return PREFIX + hashlib.sha256(real.encode()).hexdigest()[:16]


def held(roots: Iterable[str | Path]) -> dict[str, float]:
    """What a worker that holds ``roots`` advertises."""
    return {data_resource(r): HOLDS for r in roots}


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def data_needs(spec: ExecutionSpec, roots: Iterable[str | Path]) -> dict[str, float]:
    """The data resources a job asks for: one of each root its dataset files lie under (the
    innermost, when roots nest)."""
    real = sorted({os.path.realpath(r) for r in roots}, key=len, reverse=True)
    needs: dict[str, float] = {}
    for m in spec.mounts:
        if not m.content:  # the job's own files (DDOs, algorithm), not a dataset
            continue
        source = os.path.realpath(m.source)
        for root in real:
            if _under(source, root):
                needs[data_resource(root)] = 1
                break
    return needs


def placeable(workers: Mapping[str, Mapping[str, Any]], needs: Mapping[str, float]) -> bool:
    """Whether one of ``workers`` (the scheduler's view) holds every data root of ``needs``."""
    wanted = [name for name in needs if name.startswith(PREFIX)]
    return not wanted or any(
        all(w.get("resources", {}).get(name, 0) > 0 for name in wanted) for w in workers.values()
    )
