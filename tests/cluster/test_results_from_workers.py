"""Results from workers that share nothing with the provider but the cluster: a provider
whose datasets are on the workers that hold them (``cluster_data_on_workers``) and whose
results go to an S3 result store. A priced job on a dataset only the holder worker has runs
there, in the holder's own job directory; its outputs and logs come back through the cluster
and go to the store (from where any replica serves them), and the escrow is settled once.
A URL dataset's job is fetched on the worker that runs it.

The S3 store is the stand-in of ``tests/conftest.py`` (moto's server on loopback, over real
HTTP): S3 itself cannot run here."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from atoll.chain.records import ConditionState
from atoll.cluster.certs import security
from atoll.cluster.wire import TOPIC, execution_id
from atoll.config import load_settings
from atoll.models.ddo import Metadata
from atoll.models.status import JobStatus
from atoll.storage.s3_client import S3Location, make_client
from tests.conftest import S3_TEST_KEYS
from tests.helpers import OPEN_DATA, Running, public_dir, running_provider
from tests.storage.origin import Origin, running_origin

from .conftest import Cluster, Holder

TOKEN = 10**18

CODE = """
import json, os
did = json.loads(os.environ['DIDS'])[0]
rows = open('/data/inputs/' + did + '/0').read()
open('/data/outputs/out.csv', 'w').write(rows.upper())
open('/data/logs/note.txt', 'w').write('noted')
os.symlink('/etc/passwd', '/data/outputs/link')
print('rows', len(rows.splitlines()), flush=True)
"""


@pytest.fixture
def origin() -> Iterator[Origin]:
    with running_origin() as o:
        yield o


@pytest.fixture
def provider(
    cluster: Cluster,
    holder: Holder,
    origin: Origin,
    tmp_path: Path,
    s3_endpoint: str,
    s3_bucket: str,
) -> Iterator[Running]:
    with running_provider(
        tmp_path / "home",
        extra_roots=(str(holder.data_root),),
        cluster_scheduler=cluster.address,
        cluster_certs_dir=str(cluster.certs),
        cluster_start_timeout=120.0,
        cluster_data_on_workers=True,
        results_store="s3",
        results_s3=f"s3://{s3_bucket}/results?endpoint={s3_endpoint}",
        results_s3_access_key_id=S3_TEST_KEYS.access_key_id,
        results_s3_secret_access_key=S3_TEST_KEYS.secret_access_key,
        source_hosts=(f"http://127.0.0.1:{origin.port}",),
    ) as running:
        yield running


def _objects(bucket: str, endpoint: str, prefix: str) -> list[str]:
    client = make_client(S3Location(bucket, endpoint=endpoint), S3_TEST_KEYS)
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_a_job_in_a_workers_own_directory_sends_its_results_to_the_store(
    provider: Running, cluster: Cluster, holder: Holder, s3_endpoint: str, s3_bucket: str
) -> None:
    pub, con = provider.publisher, provider.consumer
    where = public_dir(holder.data_root)
    (where / "held.csv").write_text("a,b\n1,2\n")
    (where / "held.csv").chmod(0o644)
    did = pub.publish(
        Metadata(name="held", type="dataset"), [str(where / "held.csv")], OPEN_DATA, price=TOKEN
    ).id
    before = (pub.wallet.balances()["tokens"], con.wallet.balances()["tokens"])
    agreement = con.order(did)
    # what the workers tell the operator, heard beside it
    events: list[dict[str, Any]] = []
    with Client(cluster.address, security=security(cluster.certs, "client")) as watcher:
        watcher.subscribe_topic(TOPIC, lambda event: events.append(event[1]))
        job = con.start(did, rawcode=CODE, agreement_id=agreement).jobId
        info = con.wait(job, timeout=180)
    assert info.status == JobStatus.FINISHED, info.statusText
    mine = [e for e in events if e.get("id") == execution_id(job)]
    # it ran on the holder of the dataset's data root, in the holder's own job directory
    assert [e["started"] for e in mine if "started" in e] == [holder.address]
    assert [e["staged"] for e in mine if "end" in e] == [True]
    # the link out of the outputs is not published (nothing of the worker's host comes back)
    assert sorted(r.filename for r in info.results) == ["algorithm.log", "logs/note.txt", "out.csv"]
    names = {r.filename: r.index for r in info.results}
    assert con.result(info.jobId, names["out.csv"]) == b"A,B\n1,2\n"
    assert con.result(info.jobId, names["logs/note.txt"]) == b"noted"
    assert b"rows 2" in b"".join(con.logs(info.jobId))
    # every result is an object of the store, nothing of it on the provider's disk
    keys = _objects(s3_bucket, s3_endpoint, f"results/{job}/results/")
    assert len(keys) == 3
    assert not (provider.home / "jobs" / job / "results").exists()
    # which the holder cleared at the release
    assert list(holder.jobs_dir.iterdir()) == []
    settled = con.wallet.wait_settled(agreement, timeout=60)
    assert settled.escrow.state is ConditionState.FULFILLED
    after = (pub.wallet.balances()["tokens"], con.wallet.balances()["tokens"])
    assert after == (before[0] + TOKEN, before[1] - TOKEN)


def test_a_url_dataset_is_fetched_on_the_worker_that_runs_it(
    provider: Running, cluster: Cluster, origin: Origin
) -> None:
    data = b"x,y\n5,6\n7,8\n"
    origin.files["remote.csv"] = data
    pub, con = provider.publisher, provider.consumer
    did = pub.publish(
        Metadata(name="remote", type="dataset"), [origin.url("/files/remote.csv")], OPEN_DATA
    ).id
    published = len(origin.requests)
    info = con.wait(con.start(did, rawcode=CODE).jobId, timeout=180)
    assert info.status == JobStatus.FINISHED, info.statusText
    names = {r.filename: r.index for r in info.results}
    assert con.result(info.jobId, names["out.csv"]) == data.upper()
    # asked again at the job's start, by the worker, into its own cache
    assert len(origin.requests) > published
    sha = hashlib.sha256(data).hexdigest()
    assert (load_settings(cluster.home).source_cache_dir / sha).read_bytes() == data
