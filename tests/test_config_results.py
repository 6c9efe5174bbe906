"""Settings of the result store and the storage time: which store, each environment's storage
time (its own, or the node's), the node's cap, and clear errors that repeat no location or
key."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoll.config import load_settings
from atoll.errors import ConfigError
from atoll.node import result_store
from atoll.storage import LocalResults
from atoll.storage.s3_results import S3Results


def test_environments_keep_their_storage_time_or_take_the_nodes(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(
        "results_storage_expiry = 3600\n"
        '[[environments]]\nid = "own"\nstorage_expiry = 60\n'
        '[[environments]]\nid = "node"\n'
    )
    envs = {e.id: e for e in load_settings(tmp_path).compute_environments()}
    assert (envs["own"].storage_expiry, envs["node"].storage_expiry) == (60, 3600)
    assert envs["own"].public()["storageExpiry"] == 60
    [default] = load_settings(tmp_path / "x", results_storage_expiry=0).compute_environments()
    assert default.storage_expiry == 0  # kept until deleted
    # Ocean's default: a week
    [default] = load_settings(tmp_path / "y").compute_environments()
    assert default.storage_expiry == 7 * 24 * 3600


def test_the_store_is_local_unless_s3_is_chosen(tmp_path: Path) -> None:
    assert isinstance(result_store(load_settings(tmp_path)), LocalResults)
    s3 = load_settings(
        tmp_path,
        results_store="s3",
        results_s3="s3://bucket/prefix?region=eu-west-1",
        results_s3_access_key_id="AKID",
        results_s3_secret_access_key="very-secret",
    )
    store = result_store(s3)
    assert isinstance(store, S3Results)
    assert (store.location.bucket, store.location.key) == ("bucket", "prefix")
    # the keys never print with the settings
    assert "very-secret" not in repr(s3) and "bucket/prefix" not in repr(s3)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"results_store": "ftp"}, "'results_store' must be"),
        ({"results_store": "s3", "results_s3": "https://bucket.example/x"}, "'results_s3'"),
        ({"results_store": "s3", "results_s3": ""}, "'results_s3'"),
        ({"results_s3_access_key_id": "AKID"}, "go together"),
        ({"results_storage_expiry": -1}, "'results_storage_expiry'"),
        ({"results_sweep_seconds": 0}, "'results_sweep_seconds'"),
        ({"results_node_disk_mb": -5}, "'results_node_disk_mb'"),
    ],
)
def test_bad_result_settings_are_named(
    tmp_path: Path, values: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(tmp_path, **values)
    assert "bucket.example" not in str(info.value)


def test_a_negative_storage_time_in_an_environment_is_refused(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text('[[environments]]\nid = "a"\nstorage_expiry = -1\n')
    with pytest.raises(ConfigError, match="setting 'environments'"):
        load_settings(tmp_path)
