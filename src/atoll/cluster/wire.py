"""What travels between the operator and a worker: an ExecutionSpec and an ExecutionResult as
JSON text, and the names of a job's Dask task and events.

A job's task takes one string and nothing else, so a worker can tell Atoll's tasks from any
other (see :mod:`atoll.cluster.worker`); the paths in a spec are the operator's and must be
valid on the worker (the same host, or a shared filesystem).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from atoll.engine.executor import (
    ExecutionResult,
    ExecutionSpec,
    ExitReason,
    Limits,
    Mount,
    Runtime,
)
from atoll.engine.sandbox.cgroups import job_cgroup_name

#: the one event topic of every job: bounded by the scheduler (its low-level log length)
TOPIC = "atoll-jobs"
#: execution ids of this backend begin with it
ID_PREFIX = "dask/"
KEY_PREFIX = "atoll-job-"


def execution_id(job_id: str) -> str:
    return ID_PREFIX + job_cgroup_name(job_id)


def task_key(execution_id: str) -> str:
    return KEY_PREFIX + execution_id


def dump_spec(spec: ExecutionSpec, extra: dict[str, Any] | None = None) -> str:
    """The spec as JSON; ``extra``: what a worker needs beyond it (the job's files, the
    sources it fetches), read back with :func:`load_extra`."""
    return json.dumps(
        {
            "job_id": spec.job_id,
            "runtime": {
                "interpreter": str(spec.runtime.interpreter),
                "paths": [str(p) for p in spec.runtime.paths],
            },
            "args": list(spec.args),
            "mounts": [
                {
                    "source": str(m.source),
                    "target": m.target,
                    "writable": m.writable,
                    "content": m.content,
                    "fingerprint": list(m.fingerprint),
                    "publisher": m.publisher,
                }
                for m in spec.mounts
            ],
            "env": dict(spec.env),
            "outputs_dir": str(spec.outputs_dir),
            "logs_dir": str(spec.logs_dir),
            "limits": asdict(spec.limits),
            "workdir": spec.workdir,
            "egress": list(spec.egress),
            "gpus": spec.gpus,
            "devices": list(spec.devices),
            # last: the start of a task's text is what logs and dashboards show of it
            **({"cluster": extra} if extra else {}),
        }
    )


def load_spec(text: str) -> ExecutionSpec:
    d: dict[str, Any] = json.loads(text)
    return ExecutionSpec(
        job_id=str(d["job_id"]),
        runtime=Runtime(
            Path(d["runtime"]["interpreter"]),
            tuple(Path(p) for p in d["runtime"]["paths"]),
        ),
        args=[str(a) for a in d["args"]],
        mounts=[
            Mount(
                source=Path(m["source"]),
                target=str(m["target"]),
                writable=bool(m["writable"]),
                content=str(m["content"]),
                fingerprint=tuple(int(v) for v in m["fingerprint"]),
                publisher=bool(m["publisher"]),
            )
            for m in d["mounts"]
        ],
        env={str(k): str(v) for k, v in d["env"].items()},
        outputs_dir=Path(d["outputs_dir"]),
        logs_dir=Path(d["logs_dir"]),
        limits=Limits(**d["limits"]),
        workdir=str(d["workdir"]),
        egress=tuple(str(e) for e in d["egress"]),
        gpus=int(d["gpus"]),
        devices=tuple(str(e) for e in d["devices"]),
    )


def load_extra(text: str) -> dict[str, Any]:
    extra = json.loads(text).get("cluster", {})
    return extra if isinstance(extra, dict) else {}


def dump_result(result: ExecutionResult) -> dict[str, Any]:
    return {
        "reason": result.reason.value,
        "exit_code": result.exit_code,
        "duration": result.duration,
        "detail": result.detail,
    }


def load_result(d: dict[str, Any]) -> ExecutionResult:
    code = d.get("exit_code")
    return ExecutionResult(
        reason=ExitReason(d["reason"]),
        exit_code=None if code is None else int(code),
        duration=float(d["duration"]),
        detail=str(d.get("detail", "")),
    )
