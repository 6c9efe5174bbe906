"""Policies only narrow: a derived asset inherits the strictest policy of its inputs and its
owner may narrow it, never widen it; a network allowlist never names loopback, link-local,
private or the provider's own addresses unless the operator lists them."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.errors import BadRequest, ConfigError, Forbidden
from atoll.models.ddo import AlgorithmInfo, ComputePolicy, Metadata, TrustedAlgorithm
from atoll.models.environment import Environment
from atoll.models.job import PublishOutput
from atoll.models.status import JobStatus
from atoll.provider.hosts import HostRules, local_addresses
from atoll.provider.policy import strictest, widening
from tests.helpers import Running, require_sandbox, running_provider

PUBLIC = "93.184.215.14"  # a public address: allowed without the operator's word
CODE = "open('/data/outputs/out.txt', 'w').write('derived')\n"


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    envs = (Environment(id="default"), Environment(id="online", network=True))
    with running_provider(
        tmp_path / "home", environments=envs, network_private_hosts=("127.0.0.2",)
    ) as running:
        yield running


def derive(p: Running, did: str, **kw: object) -> str:
    info = p.consumer.wait(
        p.consumer.start(did, publish_output=PublishOutput(name="derived"), **kw).jobId,  # type: ignore[arg-type]
        timeout=60,
    )
    assert info.status == JobStatus.FINISHED, info.statusText
    derived = p.consumer.status(info.jobId).derivedDID
    assert derived
    return derived


def policy_of(p: Running, did: str) -> ComputePolicy:
    service = p.consumer.asset(did).service("compute")
    assert service is not None and service.compute is not None
    return service.compute


def test_derived_owner_cannot_widen_network_or_raw_code(provider: Running, tmp_path: Path) -> None:
    con = provider.consumer
    did = provider.dataset(tmp_path, policy=ComputePolicy(allowRawAlgorithm=True))
    derived = derive(provider, did, rawcode=CODE)
    assert policy_of(provider, derived).allowNetworkAccess is False
    wide = ComputePolicy(
        allowRawAlgorithm=True, allowNetworkAccess=True, networkAllowlist=[f"{PUBLIC}:80"]
    )
    with pytest.raises(Forbidden, match="do not allow network access: its owner may narrow"):
        con.set_policy(derived, wide)
    assert policy_of(provider, derived).allowNetworkAccess is False
    # narrowing is the owner's right
    con.set_policy(derived, ComputePolicy(allowRawAlgorithm=False))
    assert policy_of(provider, derived).allowRawAlgorithm is False
    # and back up to the inputs' bound, not past it
    con.set_policy(derived, ComputePolicy(allowRawAlgorithm=True))
    # the CLI says the same in one line, with a non-zero exit
    key_file = tmp_path / "consumer.key"
    con.key.save(key_file)
    args = ["policy", "set", derived, "--allow-network", "--host", f"{PUBLIC}:80"]
    result = subprocess.run(
        [sys.executable, "-m", "atoll", *args, "--provider", provider.url, "--key", str(key_file)],
        capture_output=True,
        text=True,
        env={"ATOLL_HOME": str(tmp_path / "cli"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "do not allow network access" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_derived_asset_inherits_a_closed_policy(provider: Running, tmp_path: Path) -> None:
    pub, con = provider.publisher, provider.consumer
    code = provider.data_dir() / "algo.py"
    code.write_text(CODE)
    meta = Metadata(name="algo", type="algorithm", algorithm=AlgorithmInfo())
    algo = pub.publish(meta, [str(code)])
    other_code = provider.data_dir() / "other.py"
    other_code.write_text("print(2)\n")
    other = pub.publish(
        Metadata(name="other", type="algorithm", algorithm=AlgorithmInfo()), [str(other_code)]
    )
    trust = TrustedAlgorithm(did=algo.id, filesChecksum=algo.filesChecksum)
    did = provider.dataset(tmp_path, policy=ComputePolicy(publisherTrustedAlgorithms=[trust]))
    derived = derive(provider, did, algorithm_did=algo.id)
    inherited = policy_of(provider, derived)
    assert inherited.allowRawAlgorithm is False
    assert inherited.publisherTrustedAlgorithms == [trust]
    with pytest.raises(Forbidden, match="do not allow raw algorithms"):
        con.set_policy(derived, inherited.model_copy(update={"allowRawAlgorithm": True}))
    more = TrustedAlgorithm(did=other.id, filesChecksum=other.filesChecksum)
    with pytest.raises(Forbidden, match=f"do not allow algorithm {other.id}"):
        con.set_policy(derived, ComputePolicy(publisherTrustedAlgorithms=[trust, more]))
    with pytest.raises(Forbidden, match="do not allow the algorithms of"):
        con.set_policy(
            derived, ComputePolicy(publisherTrustedAlgorithmPublishers=[con.key.address])
        )
    con.set_policy(derived, ComputePolicy())  # trusting nobody narrows


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1:8030", "is a loopback address"),
        ("[::1]:80", "is a loopback address"),
        ("localhost:80", "resolves to 127.0.0.1: a loopback address"),
        ("169.254.169.254", "is a link-local address"),
        ("10.1.2.3:443", "is a private address"),
        ("*.example.com", "is a wildcard"),
    ],
)
def test_allowlists_refuse_what_only_the_provider_reaches(
    provider: Running, tmp_path: Path, host: str, why: str
) -> None:
    pub = provider.publisher
    policy = ComputePolicy(allowNetworkAccess=True, networkAllowlist=[host])
    with pytest.raises(BadRequest, match=why):
        provider.dataset(tmp_path, policy=policy)
    did = provider.dataset(tmp_path, name="later")
    with pytest.raises(BadRequest, match=why):
        pub.set_policy(did, policy)


def test_the_providers_own_addresses_are_refused(provider: Running, tmp_path: Path) -> None:
    for address in local_addresses():
        host = f"[{address}]" if address.version == 6 else str(address)
        policy = ComputePolicy(allowNetworkAccess=True, networkAllowlist=[host])
        with pytest.raises(BadRequest, match="which jobs may not reach"):
            provider.dataset(tmp_path, policy=policy)


def test_the_operator_may_list_a_private_host(provider: Running, tmp_path: Path) -> None:
    listed = ComputePolicy(
        allowRawAlgorithm=True, allowNetworkAccess=True, networkAllowlist=["127.0.0.2:9"]
    )
    did = provider.dataset(tmp_path, policy=listed)
    public = ComputePolicy(allowNetworkAccess=True, networkAllowlist=[f"{PUBLIC}:80"])
    provider.dataset(tmp_path, name="public", policy=public)
    # the operator takes the exception back: the next start is refused, before any order
    provider.node.context.compute.hosts = HostRules()
    before = provider.consumer.wallet.balances()["tokens"]
    with pytest.raises(Forbidden, match=r"is a loopback address.*cannot have network"):
        provider.consumer.start(did, rawcode="print(1)", environment="online")
    assert provider.consumer.wallet.balances()["tokens"] == before


def test_host_rules() -> None:
    own = ipaddress.ip_address(PUBLIC)
    rules = HostRules(own=lambda: {own})
    with pytest.raises(BadRequest, match="the provider's own address"):
        rules.check([f"{PUBLIC}:443"])
    rules.check(["1.1.1.1:443"])
    only = HostRules(allowed=["*.example.org", "1.1.1.1:443"])
    only.check(["*.data.example.org", "1.1.1.1:443"])
    with pytest.raises(BadRequest, match="not among the hosts this provider lets jobs reach"):
        only.check(["1.1.1.1:80"])
    with pytest.raises(BadRequest, match="not among the hosts"):
        only.check(["8.8.8.8"])
    with pytest.raises(BadRequest, match=r"resolves to 10\.0\.0\.7: a private address"):
        HostRules(resolver=lambda h, p: [ipaddress.ip_address("10.0.0.7")]).check(["db.corp"])
    with pytest.raises(BadRequest, match="does not resolve"):
        HostRules(resolver=lambda h, p: []).check(["nowhere.invalid"])
    with pytest.raises(ConfigError, match="network_private_hosts"):
        HostRules(private=["not a host"])


def test_strictest_and_widening() -> None:
    a = TrustedAlgorithm(did="did:atoll:a", filesChecksum="1")
    b = TrustedAlgorithm(did="did:atoll:b", filesChecksum="2")
    owners = {"did:atoll:b": "0xB0b"}
    first = ComputePolicy(
        allowRawAlgorithm=True,
        allowNetworkAccess=True,
        networkAllowlist=["x.org", "y.org"],
        publisherTrustedAlgorithms=[a, b],
    )
    second = ComputePolicy(
        allowNetworkAccess=True,
        networkAllowlist=["Y.org"],
        publisherTrustedAlgorithms=[a],
        publisherTrustedAlgorithmPublishers=["0xb0B"],
    )
    meet = strictest([first, second], owners.get)
    assert meet.allowRawAlgorithm is False
    assert meet.networkAllowlist == ["y.org"]
    assert meet.publisherTrustedAlgorithms == [a, b]  # b: by DID in one, by publisher in other
    assert meet.publisherTrustedAlgorithmPublishers == []
    assert widening(meet, meet, owners.get) == ""
    wider = meet.model_copy(update={"networkAllowlist": ["y.org", "x.org"]})
    assert widening(wider, meet, owners.get) == "network access to x.org"
    pinned = TrustedAlgorithm(did="did:atoll:a", filesChecksum="1", containerSectionChecksum="r")
    assert widening(ComputePolicy(publisherTrustedAlgorithms=[pinned]), meet, owners.get) == ""
    unpinned = ComputePolicy(publisherTrustedAlgorithms=[a])
    assert widening(unpinned, ComputePolicy(publisherTrustedAlgorithms=[pinned]), owners.get)
