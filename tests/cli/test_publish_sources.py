"""`atoll publish dataset` with URL and S3 files: the locations go to the provider as they
are written, with the headers and keys the publisher gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoll.cli.publish import _access, _files
from atoll.errors import BadRequest


def test_urls_and_s3_locations_are_sent_as_written_and_files_resolved(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("a\n")
    urls = ["https://data.example/q1.csv?v=2", "s3://bucket/key.csv?region=eu-west-1"]
    assert _files([*urls, str(f)]) == [*urls, str(f.resolve())]
    with pytest.raises(BadRequest):
        _files([str(tmp_path / "absent.csv")])


def test_headers_and_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _access([], False) is None
    access = _access(["Authorization: Bearer abc", "X-Team:  data "], False)
    assert access is not None and access.headers == {
        "Authorization": "Bearer abc",
        "X-Team": "data",
    }
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-value")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    keys = _access([], True)
    assert keys is not None and keys.accessKeyId == "AKIDEXAMPLE"
    assert "secret-value" not in repr(keys)


@pytest.mark.parametrize("header", ["no colon", ": value", "Host: elsewhere", "X-A: a\rb"])
def test_headers_that_cannot_be_sent_are_refused(header: str) -> None:
    with pytest.raises(BadRequest) as info:
        _access([header], False)
    assert "elsewhere" not in str(info.value)


def test_keys_from_an_environment_without_them_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    with pytest.raises(BadRequest, match="AWS_ACCESS_KEY_ID"):
        _access([], True)
