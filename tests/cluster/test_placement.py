"""Placement by data on the real cluster: a dataset kept under a data root that one worker
holds (``atoll worker --data-root``) runs only on that worker, every time; a URL or S3
source runs on any worker and is fetched there, into that worker's cache, not the
operator's."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.cluster.certs import security
from atoll.cluster.executor import DaskExecution, DaskExecutor
from atoll.cluster.placement import data_needs, data_resource, held, placeable
from atoll.cluster.sources import SourceRules, WorkerSources
from atoll.config import load_settings
from atoll.engine.executor import (
    ExecutionSpec,
    ExitReason,
    InputChanged,
    Mount,
    Runtime,
    SandboxUnavailable,
)
from atoll.storage.cache import SourceCache
from atoll.storage.guard import SourcePolicy
from atoll.storage.interface import PublishedInput
from atoll.storage.remote import RemoteInputs, RemoteLocation
from atoll.storage.s3_client import S3Location, make_client
from tests.conftest import S3_TEST_KEYS
from tests.engine.conftest import PYTHON
from tests.engine.executor_conformance import ExecutorConformance, Log
from tests.helpers import public_dir
from tests.storage.origin import Origin, running_origin

from .conftest import Cluster, Holder

TARGET = "/data/inputs/did/0"
COPY = f"open('/data/outputs/copy', 'wb').write(open('{TARGET}', 'rb').read())"


@pytest.fixture
def origin() -> Iterator[Origin]:
    with running_origin() as o:
        yield o


def executor(cluster: Cluster, **kw: object) -> DaskExecutor:
    ex = DaskExecutor(
        cluster.address,
        security(cluster.certs, "client"),
        job_uid=200_000,
        **kw,  # type: ignore[arg-type]
    )
    ex.check()
    return ex


def dataset(where: Path, data: bytes) -> Mount:
    f = where / "data.csv"
    f.write_bytes(data)
    f.chmod(0o644)
    return Mount(f, TARGET, content=hashlib.sha256(data).hexdigest(), publisher=True)


def test_a_dataset_on_one_workers_disk_runs_only_there(
    cluster: Cluster, holder: Holder, tmp_path: Path
) -> None:
    ex = executor(cluster, data_roots=[holder.data_root])
    conf = ExecutorConformance()
    specs = []
    for n in range(3):
        mount = dataset(public_dir(holder.data_root), f"row {n}\n".encode())
        specs.append(conf.spec(tmp_path, Runtime(PYTHON), COPY, mounts=[mount]))
    running: list[DaskExecution] = []
    try:
        # two jobs take the holder's two slots (a job keeps its slot until released) ...
        running += [ex.start(specs[0], Log()), ex.start(specs[1], Log())]
        # ... so a third waits for one of them, while three other workers have room
        third: list[DaskExecution] = []
        waiting = threading.Thread(target=lambda: third.append(ex.start(specs[2], Log())))
        waiting.start()
        running[0].wait()
        # what came back is there until the release, like a local job's outputs
        assert (specs[0].outputs_dir / "copy").read_bytes() == b"row 0\n"
        running[0].release()
        waiting.join(120)
        running += third
        assert len(running) == 3
        for n, (spec, execution) in enumerate(zip(specs, running, strict=True)):
            result = execution.wait()
            assert execution.worker == holder.address
            assert (result.reason, result.exit_code) == (ExitReason.EXITED, 0)
            if n:
                assert (spec.outputs_dir / "copy").read_bytes() == f"row {n}\n".encode()
        # a job on no dataset under a held root still runs anywhere
        spec = conf.spec(tmp_path, Runtime(PYTHON), "print('free')")
        assert conf.run(ex, spec)[0].exit_code == 0
    finally:
        for execution in running:
            execution.release()
        ex.close()


def test_a_dataset_no_worker_holds_is_refused_before_it_is_sent(
    cluster: Cluster, holder: Holder, tmp_path: Path
) -> None:
    elsewhere = public_dir()
    ex = executor(cluster, data_roots=[holder.data_root, elsewhere])
    try:
        spec = ExecutorConformance().spec(
            tmp_path, Runtime(PYTHON), COPY, mounts=[dataset(elsewhere, b"x\n")]
        )
        with pytest.raises(SandboxUnavailable, match="no worker of the cluster holds"):
            ex.start(spec, Log())
    finally:
        ex.close()


def test_a_url_source_runs_on_any_worker_and_is_fetched_there(
    cluster: Cluster, holder: Holder, origin: Origin, tmp_path: Path
) -> None:
    data = b"fetched,on,the,worker\n"
    origin.files["d.csv"] = data
    sha = hashlib.sha256(data).hexdigest()
    rules = SourceRules(hosts=(f"http://127.0.0.1:{origin.port}",))
    operator_cache = SourceCache(tmp_path / "operator-cache", 10**8)
    sources = WorkerSources(RemoteInputs(SourcePolicy(rules.hosts), operator_cache), rules)
    location = RemoteLocation("0x" + "ab" * 20, url=origin.url("/files/d.csv")).text()
    ex = executor(cluster, data_roots=[holder.data_root], sources=sources)
    conf = ExecutorConformance()
    running = []
    try:
        # seven jobs that keep their slots until released need four of the 2-slot workers:
        # all of them, the holder with its own job directory too
        for _ in range(7):
            prepared = sources.prepare(PublishedInput(location, sha, ()), None)
            mount = Mount(prepared.path, TARGET, content=sha, publisher=True)
            spec = conf.spec(tmp_path, Runtime(PYTHON), COPY, mounts=[mount])
            running.append((spec, ex.start(spec, Log())))
        workers = set()
        for spec, execution in running:
            result = execution.wait()
            assert (result.reason, result.exit_code) == (ExitReason.EXITED, 0), result.detail
            assert (spec.outputs_dir / "copy").read_bytes() == data
            workers.add(execution.worker)
        assert holder.address in workers and len(workers) == 4
    finally:
        for _, execution in running:
            execution.release()
        ex.close()
    # fetched by the workers into their cache (their node directory's), never the operator's
    assert operator_cache.lookup(sha) is None
    worker_cache = load_settings(cluster.home).source_cache_dir
    assert (worker_cache / sha).read_bytes() == data
    # a GET from the workers (fetched once into the cache they share on this host)
    assert [r[0] for r in origin.requests].count("/files/d.csv") >= 1


def test_a_job_asks_for_the_innermost_root_of_each_dataset(tmp_path: Path) -> None:
    outer, inner, other = tmp_path / "d", tmp_path / "d" / "in", tmp_path / "o"
    spec = ExecutorConformance().spec(
        tmp_path,
        Runtime(PYTHON),
        "",
        mounts=[
            Mount(inner / "a", "/data/inputs/x/0", content="c"),
            Mount(outer / "b", "/data/inputs/x/1", content="c"),
            Mount(tmp_path / "c", "/data/inputs/x/2", content="c"),  # under no root
        ],
    )
    needs = data_needs(spec, [outer, inner, other])
    assert needs == {data_resource(inner): 1, data_resource(outer): 1}
    holds_both = {"resources": held([outer, inner])}
    holds_one = {"resources": held([inner])}
    assert placeable({"w1": holds_one, "w2": holds_both}, needs)
    assert not placeable({"w1": holds_one}, needs)
    assert placeable({}, {})


def test_an_s3_source_runs_on_a_worker_and_is_fetched_there(
    cluster: Cluster, holder: Holder, s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    """On the S3 stand-in (moto's server on loopback, ``tests/conftest.py``): S3 itself
    cannot run here. The publisher's keys travel to the worker, never into the job."""
    data = b"s3,object\n" + os.urandom(16).hex().encode()
    sha = hashlib.sha256(data).hexdigest()
    loc = S3Location(s3_bucket, "sets/in.csv", endpoint=s3_endpoint)
    make_client(loc, S3_TEST_KEYS).put_object(Bucket=s3_bucket, Key="sets/in.csv", Body=data)
    rules = SourceRules(hosts=(f"http://127.0.0.1:{s3_endpoint.rsplit(':', 1)[1]}",))
    operator_cache = SourceCache(tmp_path / "operator-cache", 10**8)
    sources = WorkerSources(RemoteInputs(rules.policy(), operator_cache), rules)
    location = RemoteLocation("0x" + "ab" * 20, s3=loc, keys=S3_TEST_KEYS).text()
    prepared = sources.prepare(PublishedInput(location, sha, ()), None)
    code = COPY + "\nimport os; print(sorted(os.environ))"
    spec = ExecutorConformance().spec(
        tmp_path,
        Runtime(PYTHON),
        code,
        mounts=[Mount(prepared.path, TARGET, content=sha, publisher=True)],
    )
    ex = executor(cluster, sources=sources)
    try:
        result, log, outputs = ExecutorConformance().run(ex, spec)
    finally:
        ex.close()
    assert (result.reason, result.exit_code) == (ExitReason.EXITED, 0), result.detail
    assert outputs["copy"] == data
    assert S3_TEST_KEYS.secret_access_key.encode() not in log
    assert operator_cache.lookup(sha) is None
    assert (load_settings(cluster.home).source_cache_dir / sha).read_bytes() == data


def test_a_source_that_changed_or_went_is_refused_on_the_worker(
    cluster: Cluster, origin: Origin, tmp_path: Path
) -> None:
    rules = SourceRules(hosts=(f"http://127.0.0.1:{origin.port}",))
    sources = WorkerSources(
        RemoteInputs(rules.policy(), SourceCache(tmp_path / "operator-cache", 10**8)), rules
    )
    ex = executor(cluster, sources=sources)
    conf = ExecutorConformance()

    def spec_for(name: str, published: bytes) -> ExecutionSpec:
        sha = hashlib.sha256(published).hexdigest()
        location = RemoteLocation("0x" + "ab" * 20, url=origin.url(f"/files/{name}")).text()
        prepared = sources.prepare(PublishedInput(location, sha, ()), None)
        mount = Mount(prepared.path, TARGET, content=sha, publisher=True)
        return conf.spec(tmp_path, Runtime(PYTHON), COPY, mounts=[mount])

    try:
        origin.files["moved"] = b"other bytes than published\n"
        with pytest.raises(InputChanged):
            ex.start(spec_for("moved", os.urandom(8)), Log())
        with pytest.raises(SandboxUnavailable, match="no longer at its source") as gone:
            ex.start(spec_for("gone", b"anything\n"), Log())
        assert str(origin.port) not in str(gone.value)
    finally:
        ex.close()
