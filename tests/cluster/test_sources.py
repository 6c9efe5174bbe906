"""URL sources left to the workers: the operator's side fetches nothing and hands out a
placeholder; the worker fetches the file through the operator's rules into its own cache,
verified against the published checksum, and mounts that copy. Real HTTP on loopback."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.cluster.sources import SourceRules, WorkerSources, fetch_on_worker, is_placeholder
from atoll.engine.executor import ExecutionSpec, Mount, Runtime
from atoll.storage.cache import SourceCache
from atoll.storage.errors import InputModified, SourceRefused
from atoll.storage.guard import Limits
from atoll.storage.interface import PreparedInput, PublishedInput
from atoll.storage.remote import RemoteInputs, RemoteLocation
from tests.storage.origin import Origin, running_origin

TARGET = "/data/inputs/did/0"
PUBLISHER = "0x" + "cd" * 20


@pytest.fixture
def origin() -> Iterator[Origin]:
    with running_origin() as o:
        yield o


def _setup(tmp_path: Path, origin: Origin, data: bytes) -> tuple[WorkerSources, ExecutionSpec]:
    origin.files["f"] = data
    rules = SourceRules(hosts=(f"http://127.0.0.1:{origin.port}",), limits=Limits(max_bytes=10**6))
    operator = RemoteInputs(rules.policy(), SourceCache(tmp_path / "operator", 10**7))
    sources = WorkerSources(operator, rules)
    location = RemoteLocation(PUBLISHER, url=origin.url("/files/f")).text()
    prepared = sources.prepare(PublishedInput(location, hashlib.sha256(data).hexdigest(), ()), None)
    spec = ExecutionSpec(
        job_id="j",
        runtime=Runtime(Path("/usr/bin/python3")),
        args=[],
        mounts=[Mount(prepared.path, TARGET, content="x", publisher=True)],
        env={},
        outputs_dir=tmp_path / "o",
        logs_dir=tmp_path / "l",
    )
    return sources, spec


def test_the_operator_fetches_nothing_and_the_worker_fetches_and_verifies(
    tmp_path: Path, origin: Origin
) -> None:
    data = b"remote bytes\n"
    sources, spec = _setup(tmp_path, origin, data)
    assert is_placeholder(spec.mounts[0].source)
    assert origin.requests == []  # nothing fetched on the operator's side
    fetches = sources.fetches(spec)
    assert [f["target"] for f in fetches] == [TARGET]
    # the rules travel as data and come back the same
    rules = SourceRules.load(sources.rules.dump())
    assert rules == sources.rules
    worker_cache = SourceCache(tmp_path / "worker", 10**7)
    ran = fetch_on_worker(spec, fetches, rules, worker_cache)
    mount = ran.mounts[0]
    assert mount.source == worker_cache.root / hashlib.sha256(data).hexdigest()
    assert mount.source.read_bytes() == data
    assert mount.fingerprint  # the sandbox refuses the copy if it moves before the mount
    # what the worker mounted it checked itself: the operator's side does not look again
    assert sources.unchanged(PublishedInput("", "", ()), PreparedInput(spec.mounts[0].source, ()))


def test_other_bytes_at_the_source_are_refused_on_the_worker(
    tmp_path: Path, origin: Origin
) -> None:
    sources, spec = _setup(tmp_path, origin, b"published\n")
    origin.files["f"] = b"swapped since\n"
    with pytest.raises(InputModified):
        fetch_on_worker(
            spec, sources.fetches(spec), sources.rules, SourceCache(tmp_path / "w", 10**7)
        )


def test_the_operators_rules_hold_on_the_worker(tmp_path: Path, origin: Origin) -> None:
    sources, spec = _setup(tmp_path, origin, b"data\n")
    with pytest.raises(SourceRefused):
        fetch_on_worker(spec, sources.fetches(spec), SourceRules(), SourceCache(tmp_path, 10**7))
