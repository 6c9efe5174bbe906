"""The local storage backend: the conformance suites, and what only a local disk has (links,
modes, the disk layout results keep)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from atoll.storage import (
    InputUnavailable,
    LocalInputs,
    LocalResults,
    ObjectNotFound,
    PublishedInput,
)

from .conformance import InputSourceConformance, ResultStoreConformance


@pytest.fixture
def secret(tmp_path: Path) -> str:
    return str(tmp_path)


class TestLocalResults(ResultStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalResults:
        return LocalResults(tmp_path / "results")


class TestLocalInputs(InputSourceConformance):
    @pytest.fixture
    def source(self) -> LocalInputs:
        return LocalInputs()

    @pytest.fixture
    def place(self, tmp_path: Path) -> Callable[..., str]:
        names = iter(range(1_000_000))

        def place(data: bytes, location: str | None = None) -> str:
            path = Path(location) if location else tmp_path / f"input-{next(names)}"
            path.write_bytes(data)
            return str(path)

        return place

    @pytest.fixture
    def remove(self) -> Callable[[str], None]:
        return lambda location: os.unlink(location)


def test_results_keep_the_job_directory_layout(tmp_path: Path) -> None:
    LocalResults(tmp_path).put("job-1/results/0", io.BytesIO(b"x"))
    assert (tmp_path / "job-1" / "results" / "0").read_bytes() == b"x"
    # written whole through a temporary file: nothing else is left beside it
    assert os.listdir(tmp_path / "job-1" / "results") == ["0"]


def test_a_result_that_is_a_link_or_a_directory_is_not_served(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"host file")
    (tmp_path / "job" / "results").mkdir(parents=True)
    (tmp_path / "job" / "results" / "0").symlink_to(tmp_path / "secret")
    (tmp_path / "job" / "results" / "1").mkdir()
    store = LocalResults(tmp_path)
    for key in ("job/results/0", "job/results/1"):
        with pytest.raises(ObjectNotFound):
            store.open(key)


def test_an_input_behind_a_link_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "data.csv").write_bytes(b"a")
    (tmp_path / "link").symlink_to(real)
    published = PublishedInput(str(tmp_path / "link" / "data.csv"), "0" * 64, ())
    with pytest.raises(InputUnavailable, match="no longer available"):
        LocalInputs().prepare(published, None)


def test_an_input_the_job_user_cannot_reach_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes(b"a")
    data.chmod(0o600)
    published = PublishedInput(str(data), "0" * 64, ())
    with pytest.raises(InputUnavailable, match="not readable by the sandbox user") as info:
        LocalInputs().prepare(published, (300_123, 300_123))
    assert str(tmp_path) not in str(info.value)


def test_an_opened_file_gives_its_head_and_hash_of_the_file_it_opened(tmp_path: Path) -> None:
    from atoll.storage.local_files import opened

    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n1,2\n")
    with opened(str(path)) as f:
        path.unlink()
        path.write_bytes(b"other\n")  # a new file under the name: the descriptor keeps the old
        assert f.head(4) == b"a,b\n"
        assert f.sha256() == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
