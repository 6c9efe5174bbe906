"""Compute environments: limits enforced with their own failure status, requests above the
environment refused, concurrency per environment, queue position and expiry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from atoll.errors import BadRequest, Conflict
from atoll.models.ddo import ComputePolicy
from atoll.models.environment import Environment, Resources
from atoll.models.status import JobStatus
from tests.helpers import OPEN_DATA, Running, require_sandbox, running_provider

ENVS = (
    Environment(id="small", memory_mb=96, max_duration=3, max_jobs=2, queue_max_wait=60),
    Environment(id="solo", max_jobs=1, queue_max_wait=1.5, max_duration=20),
)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path / "home", environments=ENVS) as running:
        yield running


def dataset(p: Running, tmp: Path) -> tuple[str, str]:
    # open data: the jobs' outputs are released unchecked
    open_data = OPEN_DATA.model_copy(update={"maxJobs": 100})
    did = p.dataset(tmp, policy=open_data)
    return did, p.consumer.order(did)


def test_environments_are_listed(provider: Running) -> None:
    envs = {e["id"]: e for e in provider.consumer.environments()}
    assert set(envs) == {"small", "solo"}
    assert envs["small"]["ramGB"] == round(96 / 1024, 3) and envs["small"]["maxJobs"] == 2
    assert "/usr/bin" not in json.dumps(envs)  # the runtime is described, not located


def test_memory_and_time_limits_have_their_own_status(provider: Running, tmp_path: Path) -> None:
    did, agreement = dataset(provider, tmp_path)
    c = provider.consumer
    hog = "x = []\nwhile True:\n    x.append(bytearray(8 << 20))\n"
    info = c.wait(
        c.start(did, rawcode=hog, environment="small", agreement_id=agreement).jobId, timeout=60
    )
    assert info.status == JobStatus.MEMORY_LIMIT_EXCEEDED, info.statusText
    info = c.wait(
        c.start(did, rawcode="while True: pass", environment="small", agreement_id=agreement).jobId,
        timeout=60,
    )
    assert info.status == JobStatus.TIME_LIMIT_EXCEEDED, info.statusText
    # a job may ask for less than the environment's maximum, and is held to it
    info = c.wait(
        c.start(
            did,
            rawcode="import time; time.sleep(5)",
            environment="solo",
            resources=Resources(maxDuration=1),
            agreement_id=agreement,
        ).jobId,
        timeout=60,
    )
    assert info.status == JobStatus.TIME_LIMIT_EXCEEDED


def test_asking_for_more_than_the_environment_allows_is_refused(
    provider: Running, tmp_path: Path
) -> None:
    did, agreement = dataset(provider, tmp_path)
    for asked, what in (
        (Resources(memoryMb=4096), "MB of memory"),
        (Resources(cpu=64), "CPUs"),
        (Resources(maxDuration=3600), "seconds"),
        (Resources(diskMb=10**6), "MB of output"),
    ):
        with pytest.raises(BadRequest, match=f"asks for .* {what}; environment 'small' allows"):
            provider.consumer.start(
                did, rawcode="pass", environment="small", resources=asked, agreement_id=agreement
            )
    assert provider.consumer.jobs() == []


def test_concurrency_per_environment_holds_with_20_jobs(provider: Running, tmp_path: Path) -> None:
    did, agreement = dataset(provider, tmp_path)
    code = (
        "import json, time\n"
        "t0 = time.time(); time.sleep(0.3)\n"
        "json.dump([t0, time.time()], open('/data/outputs/span.json', 'w'))\n"
    )
    c = provider.consumer
    with ThreadPoolExecutor(10) as pool:
        jobs = list(
            pool.map(
                lambda _: c.start(did, rawcode=code, environment="small", agreement_id=agreement),
                range(20),
            )
        )
    spans = []
    for job in jobs:
        info = c.wait(job.jobId, timeout=120)
        assert info.status == JobStatus.FINISHED, info.statusText
        spans.append(json.loads(c.result(job.jobId, 0)))
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2  # never more than the environment's max_jobs, and it was used


def test_queue_position_and_expiry(provider: Running, tmp_path: Path) -> None:
    did, agreement = dataset(provider, tmp_path)
    c = provider.consumer
    first = c.start(
        did, rawcode="import time; time.sleep(4)", environment="solo", agreement_id=agreement
    )
    while first.status != JobStatus.RUNNING:
        first = c.status(first.jobId, wait=10, since=first.status)
    second = c.start(did, rawcode="pass", environment="solo", agreement_id=agreement)
    third = c.start(did, rawcode="pass", environment="solo", agreement_id=agreement)
    assert c.status(second.jobId).queuePosition == 1
    assert c.status(third.jobId).queuePosition == 2
    expired = c.wait(second.jobId, timeout=30)
    assert expired.status == JobStatus.QUEUE_EXPIRED, expired.statusText
    assert c.wait(third.jobId, timeout=30).status == JobStatus.QUEUE_EXPIRED
    assert c.wait(first.jobId, timeout=30).status == JobStatus.FINISHED


def test_gpus_declared_are_passed_in_when_present(tmp_path: Path) -> None:
    """An environment declaring a GPU gets the host's GPU device node inside the sandbox.
    No GPU here: a stand-in character device (/dev/null's numbers) takes /dev/nvidia0's
    place for the test, and is removed after it."""
    require_sandbox()
    node = Path("/dev/nvidia0")
    if node.exists():
        pytest.skip("this host has a real GPU node; not replacing it")
    import os
    import stat as stat_

    envs = (Environment(id="gpu", gpus=1), Environment(id="cpu"))
    code = (
        "import json, os, stat\n"
        "p = '/dev/nvidia0'\n"
        "seen = os.path.exists(p) and stat.S_ISCHR(os.stat(p).st_mode)\n"
        "json.dump({'gpu': seen}, open('/data/outputs/gpu.json', 'w'))\n"
    )
    os.mknod(node, 0o666 | stat_.S_IFCHR, os.makedev(1, 3))
    try:
        with running_provider(tmp_path / "home", environments=envs) as p:
            did = p.dataset(tmp_path, policy=ComputePolicy(allowRawAlgorithm=True, maxJobs=5))
            agreement = p.consumer.order(did)
            seen = {}
            for env in ("gpu", "cpu"):
                info = p.consumer.wait(
                    p.consumer.start(
                        did, rawcode=code, environment=env, agreement_id=agreement
                    ).jobId,
                    timeout=60,
                )
                assert info.status == JobStatus.FINISHED, info.statusText
                seen[env] = json.loads(p.consumer.result(info.jobId, 0))["gpu"]
            assert seen == {"gpu": True, "cpu": False}
            assert p.consumer.environments()[0]["gpuNumber"] == 1
    finally:
        node.unlink()


def test_inputs_the_sandbox_user_cannot_read_fail_clearly(tmp_path: Path) -> None:
    require_sandbox()
    import os

    old = os.umask(0o077)  # a server with a strict umask must still run jobs
    try:
        with running_provider(tmp_path / "home") as p:
            readable = p.dataset(tmp_path, name="open")
            private = p.dataset(tmp_path, name="private")
            for f in p.node.context.publishing.assets.files(private):
                os.chmod(f.location, 0o600)
            ok = p.consumer.wait(
                p.consumer.start(readable, rawcode="print('read')").jobId, timeout=60
            )
            assert ok.status == JobStatus.FINISHED, ok.statusText
            # refused before anything is ordered, not when the job runs
            with pytest.raises(Conflict, match="cannot be read by the jobs' user") as refused:
                p.consumer.start(private, rawcode="print('x')")
            assert str(p.data) not in str(refused.value)
    finally:
        os.umask(old)
