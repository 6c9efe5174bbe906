"""The S3 result store: the conformance suite every result store passes, and what only an
object store has (multipart uploads, a prefix in a shared bucket, keys that never print).
The store is the S3 stand-in of ``tests/conftest.py`` (moto's server on loopback, over real
HTTP through botocore): S3 itself cannot run here."""

from __future__ import annotations

import hashlib
import io
import logging

import pytest

from atoll.storage import ObjectNotFound, StorageError
from atoll.storage.s3_client import S3Location, make_client
from atoll.storage.s3_results import MIN_PART, S3Results, part_size
from tests.conftest import S3_TEST_KEYS

from .conformance import MIB, ChunkedSource, ResultStoreConformance, read_all


def _store(endpoint: str, bucket: str, prefix: str = "atoll/results") -> S3Results:
    location = S3Location(bucket, prefix, endpoint=endpoint)
    # the smallest parts S3 allows: the conformance suite's few MiB already take several
    return S3Results(location, make_client(location, S3_TEST_KEYS), first_part=MIN_PART)


@pytest.fixture
def secret(s3_bucket: str) -> str:
    return s3_bucket


class TestS3Results(ResultStoreConformance):
    @pytest.fixture
    def store(self, s3_endpoint: str, s3_bucket: str) -> S3Results:
        return _store(s3_endpoint, s3_bucket)


def _objects(store: S3Results) -> list[str]:
    listed = store.client.list_objects_v2(Bucket=store.location.bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_results_are_objects_under_the_prefix(s3_endpoint: str, s3_bucket: str) -> None:
    store = _store(s3_endpoint, s3_bucket)
    store.put("job-1/results/0", io.BytesIO(b"x"))
    assert _objects(store) == ["atoll/results/job-1/results/0"]
    # another prefix of the same bucket is another store: deleting there leaves this one
    _store(s3_endpoint, s3_bucket, "other").delete("job-1")
    assert _objects(store) == ["atoll/results/job-1/results/0"]


def test_a_large_result_goes_up_in_parts_and_nothing_is_left_of_a_failed_one(
    s3_endpoint: str, s3_bucket: str
) -> None:
    store = _store(s3_endpoint, s3_bucket)
    source = ChunkedSource(2 * MIN_PART + 3)
    stored = store.put("j/results/0", source)  # type: ignore[arg-type]
    assert stored.sha256 == hashlib.sha256(source.data).hexdigest()
    head = store.client.head_object(Bucket=s3_bucket, Key="atoll/results/j/results/0")
    assert head["ContentLength"] == 2 * MIN_PART + 3
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    # no read held more than a chunk: nothing whole in memory
    assert source.largest_read <= MIB
    with pytest.raises(OSError):
        store.put("j/results/1", ChunkedSource(3 * MIN_PART, fail_after=MIN_PART + MIB))  # type: ignore[arg-type]
    uploads = store.client.list_multipart_uploads(Bucket=s3_bucket)
    assert uploads.get("Uploads", []) == []
    assert _objects(store) == ["atoll/results/j/results/0"]


def test_delete_aborts_uploads_a_crash_left_unfinished(s3_endpoint: str, s3_bucket: str) -> None:
    store = _store(s3_endpoint, s3_bucket)
    # what a process killed in the middle of a multipart upload leaves behind
    left = store.client.create_multipart_upload(Bucket=s3_bucket, Key="atoll/results/j/results/5")
    store.client.upload_part(
        Bucket=s3_bucket,
        Key="atoll/results/j/results/5",
        PartNumber=1,
        UploadId=left["UploadId"],
        Body=b"x" * MIN_PART,
    )
    store.client.create_multipart_upload(Bucket=s3_bucket, Key="atoll/results/jj/results/0")
    store.delete("j")
    remaining = store.client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert [u["Key"] for u in remaining] == ["atoll/results/jj/results/0"]


def test_parts_grow_so_that_a_very_large_result_fits() -> None:
    assert part_size(1) == part_size(1000) == 8 * MIB
    assert part_size(1001) == 16 * MIB
    assert part_size(10_000) == 64 * MIB
    # what 10,000 parts hold: far more than any job's output cap
    assert sum(part_size(n) for n in range(1, 10_001)) > 400 * 1024**3


def test_a_store_out_of_reach_fails_without_naming_anything(
    s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    location = S3Location(s3_bucket, "secret-prefix", endpoint="http://127.0.0.1:9")
    client = make_client(location, S3_TEST_KEYS, attempts=1)
    store = S3Results(location, client)
    caplog.set_level(logging.DEBUG, logger="atoll")
    for call in (
        lambda: store.put("k", io.BytesIO(b"x")),
        lambda: store.open("k"),
        lambda: store.delete("k"),
    ):
        with pytest.raises(StorageError) as info:
            call()
        assert not isinstance(info.value, ObjectNotFound)
        text = str(info.value)
        for hidden in (s3_bucket, "secret-prefix", "127.0.0.1", S3_TEST_KEYS.secret_access_key):
            assert hidden not in text
    assert S3_TEST_KEYS.secret_access_key not in caplog.text


def test_a_result_streams_back_in_chunks(s3_endpoint: str, s3_bucket: str) -> None:
    store = _store(s3_endpoint, s3_bucket)
    store.put("k", io.BytesIO(b"a" * (3 * MIB)))
    with store.open("k") as stream:
        first = stream.read(MIB)
        assert len(first) == MIB
        assert len(read_all(stream)) == 2 * MIB
