"""A job over two datasets: each authorised by its own agreement and visible at its own
/data/inputs/<did>/; a job for a dataset without a valid agreement is refused whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.errors import AtollError, Forbidden
from atoll.models.status import JobStatus
from tests.helpers import OPEN_DATA, Running, require_sandbox, running_provider

CODE = """
import json, os
out = {}
for did in json.loads(os.environ["DIDS"]):
    out[did] = open(f"/data/inputs/{did}/0").read()
json.dump(out, open("/data/outputs/both.json", "w"))
"""


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path / "home") as running:
        yield running


def test_two_datasets_each_with_its_agreement(provider: Running, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # open data: the job echoes its inputs, which the output checks would hold
    a = provider.dataset(tmp_path / "a", text="alpha\n", name="a", price=3, policy=OPEN_DATA)
    b = provider.dataset(tmp_path / "b", text="beta\n", name="b", price=4, policy=OPEN_DATA)
    c = provider.consumer
    info = c.start(a, rawcode=CODE, agreement_id=c.order(a), additional={b: c.order(b)})
    info = c.wait(info.jobId, timeout=60)
    assert info.status == JobStatus.FINISHED, info.statusText
    assert info.inputDID == [a, b]
    assert json.loads(c.result(info.jobId, 0)) == {a: "alpha\n", b: "beta\n"}


def test_a_dataset_without_a_valid_agreement_refuses_the_whole_job(
    provider: Running, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = provider.dataset(tmp_path / "a", name="a", price=3)
    b = provider.dataset(tmp_path / "b", name="b", price=4)
    c = provider.consumer
    mine = c.order(a)
    with pytest.raises(AtollError, match="needs a Service Agreement"):
        c.start(a, rawcode=CODE, agreement_id=mine, additional={b: ""})
    with pytest.raises(Forbidden, match="belongs to another consumer"):
        c.start(a, rawcode=CODE, agreement_id=mine, additional={b: provider.other.order(b)})
    assert c.jobs() == []
    # nothing was counted against the valid agreement: it still runs its one job
    row = provider.node.authorizer.ledger.get(mine)
    assert row is not None and row.used == 0
    info = c.wait(c.start(a, rawcode="pass", agreement_id=mine).jobId, timeout=60)
    assert info.status == JobStatus.FINISHED
