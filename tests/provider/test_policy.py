"""The compute policy matrix: raw code, trusted algorithms (DID, files checksum, runtime),
trusted publishers, and an empty trust list that denies. Every refusal is a clear 4xx and
costs the consumer nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.errors import Forbidden
from atoll.models.ddo import AlgorithmInfo, ComputePolicy, Metadata, TrustedAlgorithm
from atoll.models.environment import Environment
from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient
from atoll.signing import Key
from tests.helpers import Running, require_sandbox, running_provider

CODE = "print('trusted run')\n"


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    envs = (Environment(id="default"), Environment(id="other", runtime_packages=["numpy==2"]))
    # algorithm files are published from tmp_path
    extra = (str(tmp_path),)
    with running_provider(tmp_path / "home", environments=envs, extra_roots=extra) as running:
        yield running


def algorithm(client: ProviderClient, tmp: Path, name: str, code: str = CODE) -> tuple[str, Path]:
    f = tmp / f"{name}.py"
    f.write_text(code)
    meta = Metadata(name=name, type="algorithm", algorithm=AlgorithmInfo())
    return client.publish(meta, [str(f)]).id, f


def runs(p: Running, did: str, **kw: object) -> None:
    info = p.consumer.wait(p.consumer.start(did, **kw).jobId, timeout=60)  # type: ignore[arg-type]
    assert info.status == JobStatus.FINISHED, info.statusText


def refused(p: Running, did: str, match: str, **kw: object) -> None:
    before = p.consumer.wallet.balances()["tokens"]
    with pytest.raises(Forbidden, match=match):
        p.consumer.start(did, **kw)  # type: ignore[arg-type]
    # refused before ordering: nothing paid, no job
    assert p.consumer.wallet.balances()["tokens"] == before
    assert [j for j in p.consumer.jobs() if j.did == did and j.status == 1] == []


def test_raw_algorithms(provider: Running, tmp_path: Path) -> None:
    closed = provider.dataset(tmp_path, name="closed", policy=ComputePolicy(), price=10)
    refused(provider, closed, "does not allow raw algorithms", rawcode=CODE)
    open_ = provider.dataset(tmp_path, name="open", policy=ComputePolicy(allowRawAlgorithm=True))
    runs(provider, open_, rawcode=CODE)


def test_empty_trust_list_denies_every_published_algorithm(
    provider: Running, tmp_path: Path
) -> None:
    algo, _ = algorithm(provider.publisher, tmp_path, "a")
    did = provider.dataset(tmp_path, policy=ComputePolicy(allowRawAlgorithm=True), price=10)
    refused(provider, did, "does not trust algorithm", algorithm_did=algo)


def test_trusted_by_did_and_checksum(provider: Running, tmp_path: Path) -> None:
    algo, code_file = algorithm(provider.publisher, tmp_path, "a")
    checksum = provider.publisher.asset(algo).filesChecksum
    good = provider.dataset(
        tmp_path,
        name="good",
        price=10,
        policy=ComputePolicy(
            publisherTrustedAlgorithms=[TrustedAlgorithm(did=algo, filesChecksum=checksum)]
        ),
    )
    runs(provider, good, algorithm_did=algo)
    stale = provider.dataset(
        tmp_path,
        name="stale",
        price=10,
        policy=ComputePolicy(
            publisherTrustedAlgorithms=[TrustedAlgorithm(did=algo, filesChecksum="0" * 64)]
        ),
    )
    refused(provider, stale, "has changed since .* trusted it", algorithm_did=algo)
    # the trusted algorithm's code changed in place after publishing: no longer the same
    code_file.write_text(CODE + "import os  # changed\n")
    refused(provider, good, "has changed since it was published", algorithm_did=algo)
    # republishing the changed code makes a new asset, which nobody trusts
    changed, _ = algorithm(provider.publisher, tmp_path, "a2", CODE + "# v2\n")
    refused(provider, good, "does not trust algorithm", algorithm_did=changed)


def test_trust_pinned_to_a_runtime(provider: Running, tmp_path: Path) -> None:
    algo, _ = algorithm(provider.publisher, tmp_path, "a")
    checksum = provider.publisher.asset(algo).filesChecksum
    envs = {e["id"]: e["runtime"]["checksum"] for e in provider.consumer.environments()}
    assert envs["default"] != envs["other"]
    did = provider.dataset(
        tmp_path,
        price=10,
        policy=ComputePolicy(
            publisherTrustedAlgorithms=[
                TrustedAlgorithm(
                    did=algo, filesChecksum=checksum, containerSectionChecksum=envs["default"]
                )
            ]
        ),
    )
    refused(provider, did, "only in another runtime", algorithm_did=algo, environment="other")
    runs(provider, did, algorithm_did=algo, environment="default")


def test_trusted_publishers(provider: Running, tmp_path: Path) -> None:
    mine, _ = algorithm(provider.publisher, tmp_path, "mine")
    # the provider's own key may publish too: a second, untrusted publisher
    other_pub = ProviderClient(provider.url, Key.load(provider.home / "provider.key"))
    theirs, _ = algorithm(other_pub, tmp_path, "theirs")
    other_pub.close()
    did = provider.dataset(
        tmp_path,
        price=10,
        policy=ComputePolicy(
            publisherTrustedAlgorithmPublishers=[provider.publisher.key.address.lower()]
        ),
    )
    runs(provider, did, algorithm_did=mine)
    refused(provider, did, "does not trust algorithm", algorithm_did=theirs)


def test_owner_changes_policy(provider: Running, tmp_path: Path) -> None:
    algo, _ = algorithm(provider.publisher, tmp_path, "a")
    did = provider.dataset(tmp_path, policy=ComputePolicy(), price=10)
    refused(provider, did, "does not trust", algorithm_did=algo)
    checksum = provider.publisher.asset(algo).filesChecksum
    with pytest.raises(Forbidden, match="only the owner"):
        provider.consumer.set_policy(did, ComputePolicy(allowRawAlgorithm=True))
    provider.publisher.set_policy(
        did,
        ComputePolicy(
            publisherTrustedAlgorithms=[TrustedAlgorithm(did=algo, filesChecksum=checksum)]
        ),
    )
    runs(provider, did, algorithm_did=algo)
