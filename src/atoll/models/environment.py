"""Compute environments: what a publisher offers to run jobs in, and what a job may ask for.

Declared in ``settings.toml`` as ``[[environments]]`` tables; every limit is enforced by the
sandbox (cgroups, rlimits, capped outputs), and a job that asks for more than its
environment allows is refused before it is registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from atoll.canonical import canonical_sha256
from atoll.errors import BadRequest

#: a week, as Ocean's environments default to
DEFAULT_STORAGE_EXPIRY = 7 * 24 * 3600.0


class Resources(BaseModel):
    """What a consumer asks for; each is capped by the environment. None: the maximum."""

    model_config = ConfigDict(extra="forbid")

    cpu: float | None = Field(default=None, gt=0)
    memoryMb: int | None = Field(default=None, gt=0)
    diskMb: int | None = Field(default=None, gt=0)
    maxDuration: float | None = Field(default=None, gt=0)


class Environment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    description: str = ""
    cpu: float = Field(default=1.0, gt=0)
    memory_mb: int = Field(default=512, gt=0)
    #: cap on what a job may write to its outputs
    disk_mb: int = Field(default=256, gt=0)
    log_mb: int = Field(default=8, gt=0)
    pids: int = Field(default=64, gt=0)
    #: wall-clock seconds a job may run
    max_duration: float = Field(default=600.0, gt=0)
    #: jobs that run at once in this environment; more wait in its queue
    max_jobs: int = Field(default=2, gt=0)
    #: seconds a job may wait in the queue before it expires
    queue_max_wait: float = Field(default=600.0, gt=0)
    price_per_minute: float = Field(default=0.0, ge=0)
    runtime_interpreter: str = "/usr/bin/python3"
    runtime_paths: list[str] = Field(default_factory=list)
    #: what the runtime offers, as the publisher declares it (e.g. "numpy==2.1")
    runtime_packages: list[str] = Field(default_factory=list)
    #: whether jobs here may reach the network at all (only the hosts a dataset allows)
    network: bool = False
    gpus: int = Field(default=0, ge=0)
    #: images jobs here may run in: ``sha256:<hex>`` (one image by digest),
    #: ``registry/repository`` (any digest of that repository) or ``*`` (any image from a
    #: registry the operator lists). Empty: host-interpreter jobs only.
    images: list[str] = Field(default_factory=list)
    #: seconds a job's results and logs are kept after it ends (Ocean's ``storageExpiry``);
    #: then the sweeper deletes them and the job's status says so. 0: kept until deleted
    storage_expiry: float = Field(default=DEFAULT_STORAGE_EXPIRY, ge=0)

    def runtime_checksum(self) -> str:
        """Pins the runtime as a trust list's ``containerSectionChecksum`` does a container."""
        spec = {
            "interpreter": self.runtime_interpreter,
            "paths": sorted(self.runtime_paths),
            "packages": sorted(self.runtime_packages),
        }
        return canonical_sha256(spec)

    def grant(self, asked: Resources | None) -> Resources:
        """What a job gets: what it asked for, or the environment's maximum. More than the
        maximum is refused."""
        asked = asked or Resources()
        checks: list[tuple[str, float | None, float, str]] = [
            ("cpu", asked.cpu, self.cpu, "CPUs"),
            ("memoryMb", asked.memoryMb, self.memory_mb, "MB of memory"),
            ("diskMb", asked.diskMb, self.disk_mb, "MB of output"),
            ("maxDuration", asked.maxDuration, self.max_duration, "seconds"),
        ]
        for _name, value, cap, unit in checks:
            if value is not None and value > cap:
                raise BadRequest(
                    f"the job asks for {value:g} {unit}; environment {self.id!r} allows {cap:g}"
                )
        return Resources(
            cpu=asked.cpu or self.cpu,
            memoryMb=asked.memoryMb or self.memory_mb,
            diskMb=asked.diskMb or self.disk_mb,
            maxDuration=asked.maxDuration or self.max_duration,
        )

    def public(self, registries: Sequence[str] = ()) -> dict[str, Any]:
        """Ocean's field names, plus ours. ``registries``: the hosts images are pulled from
        (never their credentials), so that a consumer can tell before ordering whether an
        image would be accepted."""
        return {
            "id": self.id,
            "description": self.description,
            "cpuNumber": self.cpu,
            "ramGB": round(self.memory_mb / 1024, 3),
            "diskGB": round(self.disk_mb / 1024, 3),
            "gpuNumber": self.gpus,
            "maxJobDuration": self.max_duration,
            "maxJobs": self.max_jobs,
            "queueMaxWaitTime": self.queue_max_wait,
            "pricePerMinute": self.price_per_minute,
            "free": self.price_per_minute == 0,
            "network": self.network,
            "storageExpiry": self.storage_expiry,
            "runtime": {
                "packages": self.runtime_packages,
                "checksum": self.runtime_checksum(),
            },
            "images": {
                "allowed": list(self.images),
                "registries": sorted(registries) if self.images else [],
            },
        }
