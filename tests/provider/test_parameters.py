"""Algorithm parameters: validated against the algorithm's consumerParameters on start (a
clear 4xx, nothing paid), defaults filled in, valid values written to algoCustomData.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.errors import BadRequest
from atoll.models.ddo import AlgorithmInfo, ComputePolicy, ConsumerParameter, Metadata
from atoll.models.status import JobStatus
from tests.helpers import Running, require_sandbox, running_provider

CODE = (
    "import json, shutil\n"
    "shutil.copy('/data/inputs/algoCustomData.json', '/data/outputs/params.json')\n"
)
PARAMS = [
    ConsumerParameter(name="threshold", type="number", required=True),
    ConsumerParameter(name="mode", type="select", options=["fast", "exact"], default="fast"),
    ConsumerParameter(name="verbose", type="boolean", default=False),
    ConsumerParameter(name="label", type="text"),
]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Running, str, str]]:
    require_sandbox()
    with running_provider(tmp_path / "home", extra_roots=(str(tmp_path),)) as p:
        f = tmp_path / "algo.py"
        f.write_text(CODE)
        meta = Metadata(
            name="algo", type="algorithm", algorithm=AlgorithmInfo(consumerParameters=PARAMS)
        )
        algo = p.publisher.publish(meta, [str(f)]).id
        did = p.dataset(
            tmp_path,
            price=10,
            policy=ComputePolicy(publisherTrustedAlgorithmPublishers=[p.publisher.key.address]),
        )
        yield p, did, algo


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "'threshold' is required"),
        ({"threshold": "high"}, "'threshold' must be a number"),
        ({"threshold": 1, "mode": "sloppy"}, "'mode' must be one of: fast, exact"),
        ({"threshold": 1, "verbose": "maybe"}, "'verbose' must be true or false"),
        ({"threshold": 1, "colour": "red"}, "unknown parameter"),
    ],
)
def test_invalid_parameters_are_refused(
    setup: tuple[Running, str, str], params: dict[str, object], message: str
) -> None:
    p, did, algo = setup
    before = p.consumer.wallet.balances()["tokens"]
    with pytest.raises(BadRequest, match=message):
        p.consumer.start(did, algorithm_did=algo, parameters=params)
    assert p.consumer.jobs() == []
    assert p.consumer.wallet.balances()["tokens"] == before


def test_valid_parameters_reach_the_algorithm(setup: tuple[Running, str, str]) -> None:
    p, did, algo = setup
    info = p.consumer.start(
        did, algorithm_did=algo, parameters={"threshold": "2.5", "verbose": "true", "label": "x"}
    )
    info = p.consumer.wait(info.jobId, timeout=60)
    assert info.status == JobStatus.FINISHED, info.statusText
    got = json.loads(p.consumer.result(info.jobId, 0))
    assert got == {"threshold": 2.5, "mode": "fast", "verbose": True, "label": "x"}
