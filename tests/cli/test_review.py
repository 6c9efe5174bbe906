"""atoll review and atoll compute run --wait on a job whose outputs are held."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.models.ddo import ComputePolicy
from tests.helpers import Running, require_sandbox, running_provider


def atoll(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "atoll", *args], capture_output=True, text=True, env=env
    )


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path / "home") as running:
        yield running


def test_a_held_job_is_reported_then_reviewed_from_the_cli(
    provider: Running, tmp_path: Path
) -> None:
    rows = "\n".join(f"{i},Name{i}Xy,{20 + i}" for i in range(30))
    did = provider.dataset(
        text=f"id,name,age\n{rows}\n", policy=ComputePolicy(allowRawAlgorithm=True)
    )
    algo = tmp_path / "copy.py"
    algo.write_text(
        "import glob, shutil\n"
        "shutil.copy(glob.glob('/data/inputs/*/0')[0], '/data/outputs/secret-copy.csv')\n"
        "print('copied')\n"
    )
    consumer = ["--provider", provider.url, "--key", str(provider.home / "consumer.key")]
    provider.consumer.key.save(provider.home / "consumer.key")  # type: ignore[union-attr]
    owner = ["--provider", provider.url, "--key", str(provider.home / "key")]

    run = atoll("compute", "run", did, "--algorithm", str(algo), "--wait", *consumer)
    assert run.returncode == 0, run.stderr
    assert "51 Awaiting review" in run.stdout
    assert "result 0 (output" in run.stdout and "held" in run.stdout
    assert "secret-copy" not in run.stdout and "Name1Xy" not in run.stdout
    job_id = next(line.split()[1] for line in run.stdout.splitlines() if line.startswith("job "))

    listed = atoll("review", "list", "--json", *owner)
    assert listed.returncode == 0, listed.stderr
    [item] = [i for i in json.loads(listed.stdout) if i["jobId"] == job_id]
    shown = atoll("review", "show", job_id, str(item["index"]), *owner)
    assert shown.returncode == 0 and "shared with the inputs: id, name, age" in shown.stdout

    own = atoll("review", "approve", job_id, "0", "--reason", "mine", *consumer)
    assert own.returncode == 1 and "no job" in own.stderr  # the consumer reviews nothing here
    rejected = atoll("review", "reject", job_id, "0", "--reason", "a copy of the input", *owner)
    assert rejected.returncode == 0, rejected.stderr
    assert "state     rejected" in rejected.stdout
    got = atoll("compute", "results", job_id, "--to", str(tmp_path / "out"), *consumer)
    assert not (tmp_path / "out" / "secret-copy.csv").exists(), got.stdout
