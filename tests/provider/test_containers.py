"""Algorithm containers on the provider: a tag pinned to its digest once, at publish; images
checked against the operator's registries and the environment's allowlist before anything is
ordered and before any connection to a host not listed; trust pinned to the image's digest
and entrypoint (Ocean's containerSectionChecksum)."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from atoll.errors import BadRequest, Forbidden, PolicyRefused
from atoll.images.trust import container_section_checksum
from atoll.models.ddo import (
    AlgorithmContainer,
    AlgorithmInfo,
    ComputePolicy,
    Metadata,
    TrustedAlgorithm,
)
from atoll.models.environment import Environment
from tests.helpers import Running, running_provider
from tests.images.conftest import PushedImage, Registry

CODE = "print('in an image')\n"
ENTRYPOINT = "python3 $ALGO"


@contextmanager
def listener() -> Iterator[tuple[str, socket.socket]]:
    """A loopback port that must see no connection: a refused reference names it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"127.0.0.1:{sock.getsockname()[1]}", sock


def no_connection(sock: socket.socket) -> None:
    # a connect completes in the backlog without accept: a pending one makes it readable
    readable, _, _ = select.select([sock], [], [], 0.2)
    assert readable == [], "the provider connected to a host the operator does not list"


@pytest.fixture
def provider(tmp_path: Path, registry: Registry, debian_image: PushedImage) -> Iterator[Running]:
    envs = (
        Environment(id="default"),
        Environment(id="by-repo", images=[f"{registry.host}/{debian_image.repository}"]),
        Environment(id="by-digest", images=[debian_image.digest]),
        Environment(id="any", images=["*"]),
        Environment(id="other-repo", images=[f"{registry.host}/someone/else"]),
    )
    with running_provider(
        tmp_path / "home",
        environments=envs,
        extra_roots=(str(tmp_path),),
        image_registries=(registry.access(),),
    ) as running:
        yield running


def container(image: str, tag: str = "", checksum: str = "", **kw: Any) -> AlgorithmContainer:
    return AlgorithmContainer(
        entrypoint=kw.get("entrypoint", ENTRYPOINT), image=image, tag=tag, checksum=checksum
    )


def publish_algorithm(p: Running, tmp: Path, c: AlgorithmContainer, name: str = "a") -> str:
    f = tmp / f"{name}.py"
    f.write_text(CODE)
    meta = Metadata(name=name, type="algorithm", algorithm=AlgorithmInfo(container=c))
    return p.publisher.publish(meta, [str(f)]).id


def initialize_raw(p: Running, did: str, env: str, c: AlgorithmContainer) -> httpx.Response:
    """The provider's own check, without the SDK's check before it."""
    body = {
        "dataset": {"did": did},
        "algorithm": {"rawcode": CODE, "container": c.model_dump(mode="json")},
        "environment": env,
        "consumerAddress": p.consumer.key.address,
    }
    return httpx.post(f"{p.url}/api/services/initializeCompute", json=body, timeout=30)


def refused_before_order(p: Running, did: str, match: str, **kw: Any) -> None:
    before = p.consumer.wallet.balances()["tokens"]
    with pytest.raises((Forbidden, PolicyRefused, BadRequest), match=match):
        p.consumer.start(did, **kw)
    assert p.consumer.wallet.balances()["tokens"] == before
    assert [j for j in p.consumer.jobs() if j.did == did] == []


def test_a_tag_is_pinned_to_its_digest_at_publish(
    provider: Running, tmp_path: Path, registry: Registry, debian_image: PushedImage
) -> None:
    image = f"{registry.host}/{debian_image.repository}"
    did = publish_algorithm(provider, tmp_path, container(image, tag="latest"))
    info = provider.consumer.asset(did).metadata.algorithm
    assert info is not None and info.container is not None
    assert info.container.checksum == debian_image.digest
    assert info.container.tag == "latest" and info.container.entrypoint == ENTRYPOINT
    # what a job of it would run: the digest, never the tag
    data = provider.dataset(
        policy=ComputePolicy(publisherTrustedAlgorithmPublishers=[provider.publisher.key.address])
    )
    quote = provider.consumer.initialize(data, algorithm_did=did, environment="by-repo")
    assert quote["algorithm"]["container"] == {
        "image": f"{image}@{debian_image.digest}",
        "entrypoint": ENTRYPOINT,
    }


def test_publishing_an_image_on_a_registry_not_listed_contacts_nobody(
    provider: Running, tmp_path: Path
) -> None:
    with listener() as (host, sock):
        with pytest.raises(Forbidden, match="not one this provider pulls from"):
            publish_algorithm(provider, tmp_path, container(f"{host}/evil/image", tag="latest"))
        no_connection(sock)


def test_a_raw_algorithm_on_a_registry_not_listed_is_refused_before_order_and_connection(
    provider: Running, registry: Registry
) -> None:
    data = provider.dataset(price=10)
    with listener() as (host, sock):
        evil = container(f"{host}/evil/image", tag="latest")
        # the SDK, from the environment the provider publishes
        refused_before_order(
            provider, data, "does not pull from", rawcode=CODE, container=evil, environment="any"
        )
        # the provider itself, asked directly
        answer = initialize_raw(provider, data, "any", evil)
        assert answer.status_code == 403, answer.text
        assert "not one this provider pulls from" in answer.json()["error"]
        no_connection(sock)


def test_an_image_outside_the_allowlist_is_refused_before_order(
    provider: Running, registry: Registry, debian_image: PushedImage
) -> None:
    data = provider.dataset(price=10)
    image = container(f"{registry.host}/{debian_image.repository}", tag="latest")
    for env, match in [
        ("default", "runs no images"),
        ("other-repo", "does not accept"),
    ]:
        refused_before_order(provider, data, match, rawcode=CODE, container=image, environment=env)
        answer = initialize_raw(provider, data, env, image)
        assert answer.status_code == 403 and match in answer.json()["error"], answer.text
    # a digest the allowlist does not name
    other = container(f"{registry.host}/{debian_image.repository}", checksum="sha256:" + "0" * 64)
    refused_before_order(
        provider, data, "does not accept", rawcode=CODE, container=other, environment="by-digest"
    )


def test_images_the_allowlist_accepts(
    provider: Running, registry: Registry, debian_image: PushedImage
) -> None:
    data = provider.dataset()
    name = f"{registry.host}/{debian_image.repository}"
    pinned = f"{name}@{debian_image.digest}"
    for env in ("by-repo", "by-digest", "any"):
        # a raw algorithm's tag is resolved when the job is checked, at the listed registry
        quote = provider.consumer.initialize(
            data, rawcode=CODE, container=container(name, tag="latest"), environment=env
        )
        assert quote["algorithm"]["container"]["image"] == pinned, env


def test_environments_publish_their_allowlist_and_registry_hosts_only(
    provider: Running, registry: Registry, debian_image: PushedImage
) -> None:
    text = httpx.get(f"{provider.url}/api/services/computeEnvironments").text
    envs = {
        e["id"]: e["images"]
        for e in httpx.get(f"{provider.url}/api/services/computeEnvironments").json()
    }
    assert envs["default"] == {"allowed": [], "registries": []}
    assert envs["by-digest"] == {"allowed": [debian_image.digest], "registries": [registry.host]}
    assert registry.password not in text and registry.username not in text


def test_trust_is_pinned_to_the_image_digest_and_entrypoint(
    provider: Running, tmp_path: Path, registry: Registry, debian_image: PushedImage
) -> None:
    name = f"{registry.host}/{debian_image.repository}"
    algo = publish_algorithm(provider, tmp_path, container(name, checksum=debian_image.digest))
    ddo = provider.consumer.asset(algo)
    pin = container_section_checksum(ENTRYPOINT, debian_image.digest)

    def trusting(checksum: str) -> str:
        entry = TrustedAlgorithm(
            did=algo, filesChecksum=ddo.filesChecksum, containerSectionChecksum=checksum
        )
        policy = ComputePolicy(publisherTrustedAlgorithms=[entry])
        return provider.dataset(name=f"data-{checksum[:8]}", price=10, policy=policy)

    good = trusting(pin)
    quote = provider.consumer.initialize(good, algorithm_did=algo, environment="by-repo")
    assert quote["algorithm"]["container"]["image"] == f"{name}@{debian_image.digest}"
    # pinned to another image, or to the same image with another entrypoint
    for other in (
        container_section_checksum(ENTRYPOINT, "sha256:" + "1" * 64),
        container_section_checksum("python3 -c pass $ALGO", debian_image.digest),
    ):
        refused_before_order(
            provider,
            trusting(other),
            "containerSectionChecksum differs from this image",
            algorithm_did=algo,
            environment="by-repo",
        )
    # the algorithm's container changed where the provider keeps it: the pin no longer matches
    assets = provider.node.context.publishing.assets
    info = ddo.metadata.algorithm
    assert info is not None and info.container is not None
    for changed in (
        info.container.model_copy(update={"checksum": "sha256:" + "2" * 64}),
        info.container.model_copy(update={"entrypoint": "python3 -I $ALGO"}),
    ):
        moved = ddo.model_copy(deep=True)
        assert moved.metadata.algorithm is not None
        moved.metadata.algorithm.container = changed
        assets.update(moved)
        refused_before_order(
            provider,
            good,
            "containerSectionChecksum differs from this image",
            algorithm_did=algo,
            environment="by-repo",
        )
