"""``atoll mock`` and ``atoll compute dryrun`` through a real provider: the owner's schema and
approval, the public mock file, and a dry run's outputs, logs and report printed safely."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atoll.cli.main import app
from atoll.errors import Forbidden
from atoll.signing import Key
from tests.helpers import Running, require_sandbox, running_provider

runner = CliRunner()

REAL = "region,amount\n" + "".join(f"{r},{i}\n" for i in range(40) for r in ("North", "South"))


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path / "home") as running:
        yield running


def test_owner_approves_the_schema_then_anyone_gets_the_mock(
    provider: Running, tmp_path: Path
) -> None:
    did = provider.dataset(text=REAL)
    owner = ["--provider", provider.url, "--key", str(provider.home / "key")]
    other_key = tmp_path / "other"
    Key.generate().save(other_key)
    other = ["--provider", provider.url, "--key", str(other_key)]

    shown = runner.invoke(app, ["mock", "schema", did, *owner], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "proposed" in shown.output and "region" in shown.output and "North" in shown.output
    assert runner.invoke(app, ["mock", "get", did, *other]).exit_code != 0

    refused = runner.invoke(app, ["mock", "approve", did, *other])
    assert isinstance(refused.exception, Forbidden)
    assert "only the owner" in refused.exception.message

    approved = runner.invoke(app, ["mock", "approve", did, "--rows", "20", "--json", *owner])
    assert approved.exit_code == 0, approved.output
    offer = json.loads(approved.output)
    assert offer["columns"] == ["region", "amount"] and offer["rows"] == 20

    saved = tmp_path / "mock.csv"
    got = runner.invoke(app, ["mock", "get", did, "--to", str(saved), *other])
    assert got.exit_code == 0, got.output
    assert saved.read_text().splitlines()[0] == "region,amount"
    assert len(saved.read_text().splitlines()) == 21


def test_dryrun_prints_outputs_logs_escaped_and_the_report(
    provider: Running, tmp_path: Path
) -> None:
    did = provider.dataset(text=REAL)
    mock = tmp_path / "mock.csv"
    mock.write_text("region,amount\nmock,1\n")
    owner = ["--provider", provider.url, "--key", str(provider.home / "key")]
    attached = runner.invoke(app, ["mock", "attach", did, str(mock), *owner])
    assert attached.exit_code == 0, attached.output

    algo = tmp_path / "algo.py"
    algo.write_text(
        "import json, os\n"
        "did = json.loads(os.environ['DIDS'])[0]\n"
        "text = open(f'/data/inputs/{did}/0').read()\n"
        "open('/data/outputs/copy.csv', 'w').write(text)\n"
        "print('\\x1b[31mred\\x1b[0m', text)\n"
    )
    consumer_key = tmp_path / "consumer"
    Key.generate().save(consumer_key)
    consumer = ["--provider", provider.url, "--key", str(consumer_key)]
    out = tmp_path / "out"
    ran = runner.invoke(
        app,
        ["compute", "dryrun", did, "--algorithm", str(algo), "--results", str(out), *consumer],
        env={"COLUMNS": "200"},
    )
    assert ran.exit_code == 0, ran.output
    assert "no agreement" in ran.output
    assert "mock,1" in ran.output
    assert "\x1b" not in ran.output and "\\x1b[31mred" in ran.output
    assert "check report" in ran.output and "0: " in ran.output
    assert (out / "copy.csv").read_text() == "region,amount\nmock,1\n"
    as_json = runner.invoke(
        app, ["compute", "dryrun", did, "--algorithm", str(algo), "--json", *consumer]
    )
    assert as_json.exit_code == 0, as_json.output
    status = json.loads(as_json.output)
    assert status["job"]["status"] == 70 and status["report"]["files"]
