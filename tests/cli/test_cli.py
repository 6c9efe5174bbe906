"""The CLI: help on every command, errors as one line, and a run through a real provider."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from atoll.cli.main import app
from atoll.config import load_settings
from atoll.signing import Key
from tests.helpers import Running, require_sandbox, running_provider

runner = CliRunner()


def all_commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    out: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        out.append(path)
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])

    walk(root, [])
    return out


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p) or "atoll")
def test_every_command_has_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    help_lines = [line for line in result.output.splitlines()[2:] if line.strip()]
    assert help_lines, f"no help text for {' '.join(path)}"


def atoll(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atoll", *args], capture_output=True, text=True, env=env
    )


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    env = {"ATOLL_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    status = ("compute", "status", "abc", "--provider", "http://127.0.0.1:9")
    result = atoll(env, *status)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no key file" in result.stderr
    assert atoll(env, "keys", "new").returncode == 0
    result = atoll(env, *status)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot reach the provider" in result.stderr


def test_keys_new_refuses_to_overwrite(tmp_path: Path) -> None:
    key = tmp_path / "k"
    first = runner.invoke(app, ["keys", "new", "--key", str(key)])
    assert first.exit_code == 0 and first.output.strip().startswith("0x")
    assert key.stat().st_mode & 0o077 == 0
    again = runner.invoke(app, ["keys", "new", "--key", str(key)])
    assert again.exit_code != 0
    shown = runner.invoke(app, ["keys", "show", "--key", str(key)])
    assert shown.output.strip() == first.output.strip()
    assert key.read_text().strip() not in shown.output


def test_init_declares_the_working_directory_for_its_own_key_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    result = runner.invoke(app, ["init", "--home", str(home)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    address = Key.load(home / "key").address
    assert load_settings(home).data_roots == (f"{tmp_path}={address}",)
    assert f"data root       {tmp_path}={address}" in result.output
    other = tmp_path / "other"
    given = runner.invoke(app, ["init", "--home", str(other), "--data-root", "/srv/shared"])
    assert given.exit_code == 0, given.output
    assert load_settings(other).data_roots == ("/srv/shared",)


@pytest.fixture
def provider(tmp_path: Path):
    require_sandbox()
    with running_provider(tmp_path / "home") as running:
        yield running


def test_publish_and_run_through_the_cli(provider: Running, tmp_path: Path) -> None:
    data = provider.data_dir() / "d.csv"
    data.write_text("a\n1\n2\n")
    algo = tmp_path / "count.py"
    algo.write_text(
        "import json, os\n"
        "did = json.loads(os.environ['DIDS'])[0]\n"
        "n = len(open(f'/data/inputs/{did}/0').read().splitlines())\n"
        "p = json.load(open('/data/inputs/algoCustomData.json'))\n"
        "open('/data/outputs/n.txt', 'w').write(f\"{n} {p['label']}\")\n"
    )
    common = ["--provider", provider.url, "--key", str(provider.home / "key")]
    pub = runner.invoke(
        app,
        [
            "publish",
            "dataset",
            str(data),
            "--name",
            "d",
            "--tag",
            "t",
            "--allow-raw-algorithm",
            *common,
        ],
    )
    assert pub.exit_code == 0, pub.output
    did = pub.output.strip()
    assert did.startswith("did:atoll:")
    listed = runner.invoke(app, ["assets", "list", "--tag", "t", "--json", *common])
    assert [a["id"] for a in json.loads(listed.output)] == [did]
    out = tmp_path / "out"
    run = runner.invoke(
        app,
        [
            "compute",
            "run",
            did,
            "--algorithm",
            str(algo),
            "--param",
            "label=rows",
            "--results",
            str(out),
            "--json",
            *common,
        ],
    )
    assert run.exit_code == 0, run.output
    status = json.loads(run.output)
    assert status["status"] == 70 and status["results"][0]["filename"] == "n.txt"
    assert (out / "n.txt").read_text() == "3 rows"
    bad = runner.invoke(
        app, ["compute", "run", did, "--algorithm", str(algo), "--param", "novalue", *common]
    )
    assert bad.exit_code != 0


def test_publish_refusals_are_one_line_naming_no_path(provider: Running) -> None:
    env = {"ATOLL_HOME": str(provider.home), "PATH": "/usr/bin:/bin", "COLUMNS": "400"}
    settings = provider.home / "settings.toml"
    result = atoll(
        env, "publish", "dataset", str(settings), "--name", "x", "--provider", provider.url
    )
    assert result.returncode == 1
    assert "file 0: it is outside the data roots" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(provider.home) not in result.stderr and "Traceback" not in result.stderr
