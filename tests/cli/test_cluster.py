"""``atoll cluster certs / scheduler / drain`` and ``atoll worker`` refuse what cannot work
before they start anything: one line naming the option, exit status 1, no traceback, and no
process left waiting on an address that cannot be."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from atoll.cli.exits import ERROR
from atoll.cli.main import run
from atoll.cluster.certs import issue
from atoll.config import load_settings
from atoll.errors import ConfigError
from atoll.node import cluster_executor

from .test_errors import atoll, one_line_error


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    issue(tmp_path / "cluster-certs")
    monkeypatch.setenv("ATOLL_HOME", str(tmp_path))
    return tmp_path


def refused(capsys: pytest.CaptureFixture[str], args: list[str], says: str) -> None:
    code = run(args)
    out, err = capsys.readouterr()
    assert code == ERROR, out + err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert says in lines[0], lines[0]
    assert "Traceback" not in out + err and "internal error" not in err


WORKER = ["worker", "--scheduler", "tls://127.0.0.1:9"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["cluster", "certs", "--days", "0"], "a day at least"),
        (["cluster", "certs", "--days", "-5"], "a day at least"),
        (["cluster", "certs", "--days", "100000000"], "days"),
        (["cluster", "certs", "--host", ""], "not a host name"),
        (["cluster", "certs", "--host", "a b/c"], "not a host name"),
        (["cluster", "scheduler", "--port", "70000"], "--port"),
        (["cluster", "scheduler", "--port", "-1"], "--port"),
        (["cluster", "scheduler", "--attempts", "0"], "--attempts"),
        (["cluster", "scheduler", "--host", "bad host"], "--host"),
        (["worker", "--scheduler", "tcp://127.0.0.1:9"], "mutual TLS"),
        (["worker", "--scheduler", "tls://127.0.0.1:99999"], "--scheduler"),
        (["worker", "--scheduler", "tls://:5"], "--scheduler"),
        (["worker", "--scheduler", "tls://host"], "names no port"),
        ([*WORKER, "--slots", "0"], "--slots"),
        ([*WORKER, "--memory-mb", "-1"], "--memory-mb"),
        ([*WORKER, "--gpus", "-1"], "--gpus"),
        ([*WORKER, "--name", ""], "--name"),
        ([*WORKER, "--name", "a\nb"], "--name"),
        ([*WORKER, "--metrics-port", "70000"], "--metrics-port"),
        ([*WORKER, "--host", "a b"], "--host"),
        ([*WORKER, "--data-root", "/nonexistent/data"], "no such directory"),
        (["cluster", "drain", "w", "--scheduler", "tls://a:b"], "--scheduler"),
        (["cluster", "drain", "w", "--scheduler", "tls://a:1", "--timeout", "-5"], "--timeout"),
        (["cluster", "drain", "w", "--scheduler", "tls://a:1", "--timeout", "nan"], "--timeout"),
    ],
)
def test_what_cannot_work_is_refused_in_one_line(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    refused(capsys, args, says)


def test_a_refused_certs_run_rotates_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certs = home / "cluster-certs"
    before = {p.name: p.read_bytes() for p in certs.iterdir()}
    refused(capsys, ["cluster", "certs", "--host", "ok.example", "--host", "not ok"], "not ok")
    assert {p.name: p.read_bytes() for p in certs.iterdir()} == before


def test_a_scheduler_whose_port_is_taken_says_so(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = atoll("cluster", "scheduler", "--port", str(port), home=home)
    assert done.returncode == ERROR, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: the scheduler cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert "Traceback" not in done.stdout + done.stderr


def test_a_bad_scheduler_setting_is_refused_before_the_node_is_built(home: Path) -> None:
    (home / "settings.toml").write_text('cluster_scheduler = "tcp://127.0.0.1:8786"\n')
    with pytest.raises(ConfigError, match=r"setting 'cluster_scheduler'.*tls://host:port"):
        cluster_executor(load_settings(home))


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("cluster_worker_slots = 0", "cluster_worker_slots"),
        ("cluster_worker_memory_mb = -1", "cluster_worker_memory_mb"),
        ("cluster_start_timeout = 0", "cluster_start_timeout"),
        ("cluster_reconnect_timeout = -1", "cluster_reconnect_timeout"),
    ],
)
def test_cluster_settings_are_checked(home: Path, setting: str, says: str) -> None:
    (home / "settings.toml").write_text(setting + "\n")
    one_line_error(atoll("worker", "--scheduler", "tls://127.0.0.1:9", home=home), ERROR, says)
