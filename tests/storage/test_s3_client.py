"""The S3 client: locations, keys that never print, and errors that name no bucket or key.
The store is the S3 stand-in of ``tests/conftest.py`` (moto's server on loopback): S3 itself
cannot run here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from atoll.storage.errors import ObjectNotFound, StorageError
from atoll.storage.s3_client import (
    S3Credentials,
    S3Location,
    client_errors,
    make_client,
    storage_error,
)
from tests.conftest import S3_TEST_KEYS


def test_a_location_reads_back_as_it_was_written() -> None:
    loc = S3Location("data", "sets/2024 q1.csv", "eu-west-1", "https://minio.example:9000")
    assert S3Location.parse(loc.text()) == loc
    assert S3Location.parse("s3://data/a/b") == S3Location("data", "a/b")
    assert S3Location("b", "pre/").child("x") == S3Location("b", "pre/x")
    assert S3Location("b").child("x").key == "x"


@pytest.mark.parametrize(
    "text",
    [
        "https://bucket/key",
        "s3:///key",
        "s3://user:pw@bucket/key",
        "s3://bucket:9000/key",
        "s3://bucket/key?token=x",
        "s3://bucket/key?endpoint=file:///etc",
        "s3://bucket/key?endpoint=https://u:p@host",
        "s3://bucket/key?endpoint=https://host/path",
    ],
)
def test_what_is_not_an_s3_location_is_refused_without_repeating_it(text: str) -> None:
    with pytest.raises(ValueError) as info:
        S3Location.parse(text)
    assert "bucket/key?" not in str(info.value) and "u:p" not in str(info.value)


def test_credentials_never_print_their_secret() -> None:
    keys = S3Credentials("AKIDEXAMPLE", "very-secret", "session-secret")
    assert "very-secret" not in repr(keys) and "session-secret" not in repr(keys)


def test_explicit_keys_write_and_read_an_object(s3_endpoint: str, s3_bucket: str) -> None:
    loc = S3Location(s3_bucket, "a/b.csv", endpoint=s3_endpoint)
    client = make_client(loc, S3_TEST_KEYS)
    client.put_object(Bucket=loc.bucket, Key=loc.key, Body=b"hello")
    assert client.get_object(Bucket=loc.bucket, Key=loc.key)["Body"].read() == b"hello"


def test_without_keys_the_standard_credential_chain_is_used(
    s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment-secret")
    client = make_client(S3Location(s3_bucket, endpoint=s3_endpoint))
    creds = client._request_signer._credentials  # the keys botocore signs with
    assert creds.access_key == "from-the-environment"
    client.put_object(Bucket=s3_bucket, Key="k", Body=b"x")


def test_failures_map_to_storage_errors_that_name_nothing(s3_endpoint: str, s3_bucket: str) -> None:
    client = make_client(S3Location(s3_bucket, endpoint=s3_endpoint), S3_TEST_KEYS)
    for bucket, key in ((s3_bucket, "missing-key"), ("no-such-bucket-here", "k-absent")):
        with pytest.raises(client_errors()) as info:
            client.get_object(Bucket=bucket, Key=key)
        mapped = storage_error(info.value)
        assert isinstance(mapped, ObjectNotFound)
        assert bucket not in str(mapped) and key not in str(mapped)
    # nothing listens on port 9 of loopback: the store cannot be reached
    dead = make_client(S3Location(s3_bucket, endpoint="http://127.0.0.1:9"), S3_TEST_KEYS)
    dead.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(client_errors()) as info:
        dead.head_object(Bucket=s3_bucket, Key="k")
    mapped = storage_error(info.value)
    assert type(mapped) is StorageError and "127.0.0.1" not in str(mapped)


def test_a_node_that_uses_no_s3_store_does_not_load_boto3(tmp_path: Path) -> None:
    """boto3 is some 9 MB of a server's memory: it is loaded where an S3 source or store is
    used, not by every node."""
    code = f"""
import sys
from pathlib import Path
from tests.homes import init_home
from atoll.config import load_settings
from atoll.node import build_provider
import atoll.cli.serve
home = Path({str(tmp_path / "home")!r})
init_home(home)
node = build_provider(load_settings(home, port=0))
node.app()
node.chain.close()
print(sorted(m for m in ("boto3", "botocore") if m in sys.modules))
from atoll.storage.s3_client import S3Location, make_client
make_client(S3Location("bucket", endpoint="http://127.0.0.1:9"))
print(sorted(m for m in ("boto3", "botocore") if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.strip().splitlines()[-2:]
    assert before == "[]"
    assert after == "['boto3', 'botocore']"
