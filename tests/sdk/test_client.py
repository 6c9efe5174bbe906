"""ProviderClient.from_env finds the provider and the key as the ``atoll`` command does."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoll.errors import AuthError
from atoll.sdk import ProviderClient
from atoll.sdk.endpoint import DEFAULT_URL, recorded
from atoll.signing import Key


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ATOLL_HOME", str(tmp_path))
    monkeypatch.delenv("ATOLL_PROVIDER_URL", raising=False)
    monkeypatch.delenv("ATOLL_KEY", raising=False)
    return tmp_path


def test_the_home_key_and_the_default_provider(home: Path) -> None:
    key = Key.generate()
    key.save(home / "key")
    with ProviderClient.from_env() as c:
        assert c.url == DEFAULT_URL
        assert c.key is not None and c.key.address == key.address


def test_the_provider_serve_recorded_for_the_home(home: Path) -> None:
    Key.generate().save(home / "key")
    with recorded(home, "http://127.0.0.1:9999"), ProviderClient.from_env() as c:
        assert c.url == "http://127.0.0.1:9999"


def test_the_environment_before_the_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Key.generate().save(home / "key")
    other = Key.generate()
    other.save(home / "other.key")
    monkeypatch.setenv("ATOLL_PROVIDER_URL", "http://provider.example:8030")
    monkeypatch.setenv("ATOLL_KEY", str(home / "other.key"))
    with ProviderClient.from_env() as c:
        assert c.url == "http://provider.example:8030"
        assert c.key is not None and c.key.address == other.address


def test_arguments_before_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = Key.generate()
    mine.save(home / "mine.key")
    monkeypatch.setenv("ATOLL_PROVIDER_URL", "http://provider.example:8030")
    with ProviderClient.from_env("http://127.0.0.1:1", home / "mine.key") as c:
        assert c.url == "http://127.0.0.1:1"
        assert c.key is not None and c.key.address == mine.address


def test_no_key_file(home: Path) -> None:
    with pytest.raises(AuthError, match="no key file"):
        ProviderClient.from_env()
    with ProviderClient.from_env(need_key=False) as c:
        assert c.key is None
