"""Settings: defaults, settings.toml, ATOLL_* variables, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoll.config import load_settings
from atoll.errors import ConfigError
from atoll.node import default_executor


def test_layers_and_environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "settings.toml").write_text(
        'port = 9000\nchain_url = "http://127.0.0.1:1"\n'
        '[[environments]]\nid = "small"\nmemory_mb = 64\n'
    )
    monkeypatch.setenv("ATOLL_PORT", "9100")
    s = load_settings(tmp_path)
    assert (s.port, s.chain_url) == (9100, "http://127.0.0.1:1")
    assert [(e.id, e.memory_mb) for e in s.compute_environments()] == [("small", 64)]
    assert load_settings(tmp_path, port=1).port == 1


def test_default_environment_from_the_job_settings(tmp_path: Path) -> None:
    [env] = load_settings(tmp_path, job_memory_mb=300).compute_environments()
    assert (env.id, env.memory_mb) == ("default", 300)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 'x'", "setting 'port'"),
        ("colour = 1", "unknown setting 'colour'"),
        ("[[environments]]\nid = 'a b'", "setting 'environments'"),
        ("[[environments]]\nid = 'a'\n[[environments]]\nid = 'a'", "share an id"),
        ("[[environments]]\nid = 'a'\nimages = ['docker.io/x:latest']", "images entry 0"),
        ("[[environments]]\nid = 'a'\nimages = ['python']", "images entry 0"),
        ("port = ", "not valid TOML"),
        ("data_roots = ['relative/dir']", "setting 'data_roots'"),
        ("data_roots = ['/srv/a=alice']", "'alice' is not an address"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "settings.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path)


def test_job_uid_range_from_settings(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, sandbox_uid_first=300_000, sandbox_uid_count=10)
    executor = default_executor(settings)
    assert getattr(executor, "uid_range", None) == (300_000, 300_009)


def test_data_roots_from_settings_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    who = "0x" + "ab" * 20
    (tmp_path / "settings.toml").write_text(f"data_roots = ['/srv/all', '/srv/one={who}']\n")
    assert load_settings(tmp_path).data_roots == ("/srv/all", f"/srv/one={who}")
    monkeypatch.setenv("ATOLL_DATA_ROOTS", "/a,/b")
    assert load_settings(tmp_path).data_roots == ("/a", "/b")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("source_hosts", "a/b"),
        ("source_hosts", "data.example="),
        ("source_private_networks", "not-a-network"),
        ("source_buckets", "bucket="),
        ("source_stall_seconds", "0"),
        ("source_cache_mb", "0"),
    ],
)
def test_source_settings_that_cannot_be_read_stop_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"ATOLL_{name.upper()}", value)
    with pytest.raises(ConfigError, match="source"):
        load_settings(tmp_path)


def test_source_settings_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATOLL_SOURCE_HOSTS", "data.example, http://10.0.0.5:9000=0xAB|0xCD")
    monkeypatch.setenv("ATOLL_SOURCE_PRIVATE_NETWORKS", "10.0.0.0/24")
    settings = load_settings(tmp_path)
    assert settings.source_hosts == ("data.example", "http://10.0.0.5:9000=0xAB|0xCD")
    assert settings.source_private_networks == ("10.0.0.0/24",)
    assert settings.source_cache_dir == tmp_path / "sources"
