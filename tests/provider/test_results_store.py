"""The result store and storage time end to end, over HTTP with the real sandbox: results in
an S3 result store download with their sha256; after the storage time they are gone from the
store, the status says so, downloads answer 410 and the receipt stays; a node whose storage is
full refuses new jobs with 503 before the consumer pays.

The S3 store is the stand-in of ``tests/conftest.py`` (moto's server on loopback, reached over
real HTTP through botocore): S3 itself cannot run here."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import httpx
import pytest

from atoll.errors import Gone, Unavailable
from atoll.models.environment import Environment
from atoll.models.status import JobStatus
from atoll.storage.s3_client import S3Location, make_client
from tests.conftest import S3_TEST_KEYS
from tests.helpers import OPEN_DATA, require_sandbox, running_provider


@pytest.fixture(autouse=True)
def _sandbox() -> None:
    require_sandbox()


#: a result large enough to go up in parts, and the job's whole environment in its log
ALGORITHM = """
import hashlib, json, os
data = hashlib.sha256(b"seed").digest() * (9 * 1024 * 1024 // 32 + 5)
open("/data/outputs/big.bin", "wb").write(data)
open("/data/outputs/count.txt", "w").write("2\\n")
print(json.dumps(dict(os.environ)))
"""

WEEK = 7 * 24 * 3600.0


def _objects(bucket: str, endpoint: str, prefix: str) -> list[str]:
    client = make_client(S3Location(bucket, endpoint=endpoint), S3_TEST_KEYS)
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_results_in_an_s3_store_download_with_their_sha256_and_expire(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="atoll")
    location = f"s3://{s3_bucket}/atoll-results?endpoint={s3_endpoint}"
    with running_provider(
        tmp_path / "home",
        results_store="s3",
        results_s3=location,
        results_s3_access_key_id=S3_TEST_KEYS.access_key_id,
        results_s3_secret_access_key=S3_TEST_KEYS.secret_access_key,
    ) as p:
        did = p.dataset(tmp_path, policy=OPEN_DATA)
        c = p.consumer
        info = c.wait(c.start(did, rawcode=ALGORITHM).jobId, timeout=120)
        assert info.status == JobStatus.FINISHED, info.statusText
        assert info.dateExpires and not info.resultsExpired
        names = [r.filename for r in info.results]
        assert names == ["big.bin", "count.txt", "algorithm.log"]
        # every result is an object in the publisher's bucket, none on the provider's disk
        job = info.jobId
        keys = [f"atoll-results/{job}/results/{i}" for i in range(3)]
        assert _objects(s3_bucket, s3_endpoint, f"atoll-results/{job}/") == keys
        assert not (p.home / "jobs" / job / "results").exists()
        for r in info.results:
            data = c.result(job, r.index)
            assert (len(data), hashlib.sha256(data).hexdigest()) == (r.filesize, r.sha256)
        assert info.results[0].filesize > 8 * 1024**2  # more than one part
        saved = c.download_results(info, tmp_path / "out")
        assert len(saved) == 3
        # the keys are in no status, log, receipt or the job's environment
        env = json.loads(c.result(job, 2))
        receipt = c.receipt(job)
        said = json.dumps(env) + info.model_dump_json() + receipt.model_dump_json()
        for secret in (S3_TEST_KEYS.secret_access_key, S3_TEST_KEYS.access_key_id, s3_bucket):
            assert secret not in said
        assert not any(k.startswith("AWS_") for k in env)

        # the storage time passes (a week, the default): the sweeper deletes the results
        assert p.node.operator is not None
        assert p.node.operator.sweeper.sweep(time.time() + WEEK + 1) == 1
        assert _objects(s3_bucket, s3_endpoint, f"atoll-results/{job}/") == []
        info = c.status(job)
        assert info.resultsExpired and "expired" in info.statusText
        assert info.status == JobStatus.FINISHED  # what was delivered, and paid for
        with pytest.raises(Gone, match="expired"):
            c.result(job, 0)
        with pytest.raises(Gone):
            b"".join(c.logs(job))
        # the receipt is kept: it proves what the job made
        kept = c.receipt(job).receipt
        assert [x.sha256 for x in kept.results] == [r.sha256 for r in info.results]
        assert S3_TEST_KEYS.secret_access_key not in caplog.text


def test_checked_outputs_are_read_from_the_s3_store(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    location = f"s3://{s3_bucket}/checked?endpoint={s3_endpoint}"
    keys = {
        "results_s3_access_key_id": S3_TEST_KEYS.access_key_id,
        "results_s3_secret_access_key": S3_TEST_KEYS.secret_access_key,
    }
    with running_provider(tmp_path / "home", results_store="s3", results_s3=location, **keys) as p:
        # the dataset's default output policy: the checks read each result from the store
        did = p.dataset(tmp_path)
        c = p.consumer
        code = "open('/data/outputs/summary.txt', 'w').write('rows: 2\\n')\nprint('done')"
        info = c.wait(c.start(did, rawcode=code).jobId, timeout=120)
        assert info.status == JobStatus.FINISHED, info.statusText
        assert info.review is not None and info.review.state == "released"
        assert c.result(info.jobId, 0) == b"rows: 2\n"


def test_the_server_sweeps_on_its_own_and_a_download_then_answers_410(tmp_path: Path) -> None:
    env = Environment(id="default", storage_expiry=1)
    with running_provider(tmp_path / "home", environments=(env,), results_sweep_seconds=0.1) as p:
        did = p.dataset(tmp_path, policy=OPEN_DATA)
        c = p.consumer
        info = c.wait(c.start(did, rawcode="print('hi')").jobId, timeout=120)
        assert info.status == JobStatus.FINISHED, info.statusText
        deadline = time.monotonic() + 60
        while not c.status(info.jobId).resultsExpired:
            assert time.monotonic() < deadline, "the results never expired"
            time.sleep(0.1)
        assert not (p.home / "jobs" / info.jobId).exists()
        listed = httpx.get(f"{p.url}/api/services/computeEnvironments").json()
        assert listed[0]["storageExpiry"] == 1
        with pytest.raises(Gone) as gone:
            c.result(info.jobId, 0)
        assert gone.value.status_code == 410


def test_a_full_node_refuses_new_jobs_before_the_consumer_pays(tmp_path: Path) -> None:
    # the default environment lets a job write 256 MiB of outputs and 8 MiB of logs
    with running_provider(tmp_path / "home", results_node_disk_mb=100) as p:
        did = p.dataset(tmp_path, policy=OPEN_DATA, price=5)
        c = p.consumer
        balances = c.wallet.balances()
        with pytest.raises(Unavailable) as info:
            c.start(did, rawcode="print('hi')")
        assert info.value.status_code == 503
        assert "storage is full" in info.value.message
        assert str(p.home) not in info.value.message
        assert c.jobs() == []
        assert c.wallet.balances() == balances  # nothing ordered, nothing paid
