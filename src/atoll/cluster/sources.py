"""URL and S3 dataset sources on a cluster: fetched on the worker that runs the job, not on
the operator's host.

On the operator's side, :class:`WorkerSources` stands for the provider's remote input source
in the engine: preparing a remote dataset file fetches nothing, it hands the engine a
placeholder path (``/atoll-worker-fetch/<token>``) whose location it keeps, and the Dask
executor sends that location, its published checksum and the operator's source rules
(:class:`SourceRules`) with the job. The worker fetches it through the same network guard
into its own cache (:func:`fetch_on_worker`), verified against the published checksum, and
mounts its cached copy.

A location may hold a publisher's keys or headers: it travels only inside the closed
cluster (mutual TLS), to the worker, never into the job or its log.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from atoll.engine.executor import ExecutionSpec, Mount
from atoll.storage.cache import SourceCache
from atoll.storage.guard import Limits, SourcePolicy
from atoll.storage.interface import PreparedInput, Progress, PublishedInput
from atoll.storage.remote import RemoteInputs

#: where the placeholders of worker-fetched inputs point (nothing is there on any host)
PLACEHOLDER = PurePosixPath("/atoll-worker-fetch")


@dataclass(frozen=True)
class SourceRules:
    """The operator's rules for URL and S3 sources, as they travel to a worker."""

    hosts: tuple[str, ...] = ()
    private_networks: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)

    def policy(self) -> SourcePolicy:
        return SourcePolicy(self.hosts, self.private_networks, self.limits, self.buckets)

    def dump(self) -> dict[str, Any]:
        return {
            "hosts": list(self.hosts),
            "private_networks": list(self.private_networks),
            "buckets": list(self.buckets),
            "limits": asdict(self.limits),
        }

    @classmethod
    def load(cls, d: dict[str, Any]) -> SourceRules:
        return cls(
            tuple(str(h) for h in d["hosts"]),
            tuple(str(n) for n in d["private_networks"]),
            tuple(str(b) for b in d["buckets"]),
            Limits(**d["limits"]),
        )


def is_placeholder(path: Path) -> bool:
    return PurePosixPath(path).parent == PLACEHOLDER


class WorkerSources(RemoteInputs):
    """The engine's remote input source when jobs run on a cluster (see the module's text).
    Code files (a published algorithm) are still read here, through the guard."""

    def __init__(self, remote: RemoteInputs, rules: SourceRules) -> None:
        super().__init__(remote.policy, remote.cache)
        self.rules = rules
        self._kept: dict[str, PublishedInput] = {}
        self._lock = threading.Lock()

    def prepare(
        self,
        published: PublishedInput,
        job_user: tuple[int, int] | None,
        progress: Progress | None = None,
    ) -> PreparedInput:
        # one token per source and checksum: as many entries as the provider has remote files
        token = hashlib.sha256(f"{published.sha256}\0{published.location}".encode()).hexdigest()[
            :32
        ]
        with self._lock:
            self._kept[token] = PublishedInput(published.location, published.sha256, ())
        return PreparedInput(Path(PLACEHOLDER / token), ())

    def unchanged(self, published: PublishedInput, prepared: PreparedInput) -> bool:
        if is_placeholder(prepared.path):
            # the worker mounted its verified, content-addressed copy, checked at the mount
            return True
        return super().unchanged(published, prepared)

    def fetches(self, spec: ExecutionSpec) -> list[dict[str, str]]:
        """What the worker fetches for ``spec``: each placeholder mount's target, location
        and published checksum. SourceRefused-free: a placeholder this process did not hand
        out is left as it is (the worker then finds nothing there and refuses the job)."""
        wanted = []
        with self._lock:
            for m in spec.mounts:
                kept = self._kept.get(PurePosixPath(m.source).name)
                if is_placeholder(m.source) and kept is not None:
                    wanted.append(
                        {"target": m.target, "location": kept.location, "sha256": kept.sha256}
                    )
        return wanted


def fetch_on_worker(
    spec: ExecutionSpec, fetches: list[dict[str, str]], rules: SourceRules, cache: SourceCache
) -> ExecutionSpec:
    """``spec`` with each fetched input's placeholder replaced by this worker's verified
    cached copy (fetched now unless the cache has it at the source's current version).
    Raises the storage layer's errors (SourceError, InputModified, InputUnavailable)."""
    if not fetches:
        return spec
    remote = RemoteInputs(rules.policy(), cache)
    got: dict[str, PreparedInput] = {}
    for f in fetches:
        got[f["target"]] = remote.prepare(PublishedInput(f["location"], f["sha256"], ()), None)
    mounts = [
        Mount(
            got[m.target].path,
            m.target,
            writable=m.writable,
            content=m.content,
            fingerprint=got[m.target].version,
            publisher=m.publisher,
        )
        if m.target in got and is_placeholder(m.source)
        else m
        for m in spec.mounts
    ]
    return replace(spec, mounts=mounts)
