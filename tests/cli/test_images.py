"""The CLI's image options: an algorithm published with --image and --entrypoint (its tag
pinned), a dataset trusting it pinned to that image, a job run in it; an image the
environment would refuse is refused in one line, before anything is ordered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atoll.cli.main import app
from atoll.errors import AtollError
from atoll.images.trust import container_section_checksum
from atoll.models.environment import Environment
from tests.helpers import Running, require_sandbox, running_provider
from tests.images.conftest import PushedImage, Registry

runner = CliRunner()


@pytest.fixture
def provider(
    tmp_path: Path, registry: Registry, debian_python_image: PushedImage
) -> Iterator[Running]:
    require_sandbox()
    envs = (Environment(id="default", images=[f"{registry.host}/debian/python3-full"]),)
    assert debian_python_image.repository == "debian/python3-full"
    with running_provider(
        tmp_path / "home",
        environments=envs,
        extra_roots=(str(tmp_path),),
        image_registries=(registry.access(),),
    ) as running:
        yield running


def test_publish_trust_and_run_in_an_image(
    provider: Running, tmp_path: Path, registry: Registry, debian_python_image: PushedImage
) -> None:
    common = ["--provider", provider.url, "--key", str(provider.home / "key")]
    code = tmp_path / "hello.py"
    code.write_text("import sys\nopen('/data/outputs/v.txt', 'w').write(sys.version)\n")
    image = f"{registry.host}/debian/python3-full"
    published = runner.invoke(
        app,
        ["publish", "algorithm", str(code), "--name", "hello", "--image", f"{image}:latest",
         "--entrypoint", "python3 -I $ALGO", "--json", *common],
    )  # fmt: skip
    assert published.exit_code == 0, published.output
    ddo = json.loads(published.output)
    container = ddo["metadata"]["algorithm"]["container"]
    assert container == {
        "entrypoint": "python3 -I $ALGO",
        "image": image,
        "tag": "latest",
        "checksum": debian_python_image.digest,
    }
    data = provider.data_dir() / "d.csv"
    data.write_text("a\n1\n")
    dataset = runner.invoke(
        app,
        ["publish", "dataset", str(data), "--name", "d", "--trust-algorithm", ddo["id"], "--json",
         *common],
    )  # fmt: skip
    assert dataset.exit_code == 0, dataset.output
    (trusted,) = json.loads(dataset.output)["services"][0]["compute"]["publisherTrustedAlgorithms"]
    assert trusted["containerSectionChecksum"] == container_section_checksum(
        "python3 -I $ALGO", debian_python_image.digest
    )
    did = json.loads(dataset.output)["id"]
    # trusted again through the policy command: pinned to the image, never to a host runtime
    pinned = runner.invoke(
        app, ["policy", "set", did, "--trust-algorithm", ddo["id"], "--pin-runtime", "default",
              *common],
    )  # fmt: skip
    assert "runs in its own image" in str(pinned.exception)
    again = runner.invoke(app, ["policy", "set", did, "--trust-algorithm", ddo["id"], *common])
    assert again.exit_code == 0, again.output
    policy = provider.publisher.asset(did).service("compute")
    assert policy is not None and policy.compute is not None
    (entry,) = policy.compute.publisherTrustedAlgorithms
    assert entry.containerSectionChecksum == trusted["containerSectionChecksum"]
    run = runner.invoke(
        app, ["compute", "run", did, "--algorithm", ddo["id"], "--wait", "--json", *common]
    )
    assert run.exit_code == 0, run.output
    status = json.loads(run.output)
    assert status["status"] == 70, status["statusText"]
    assert status["container"]["image"] == f"{image}@{debian_python_image.digest}"


def test_an_image_the_environment_refuses_is_one_line_and_orders_nothing(
    provider: Running, tmp_path: Path
) -> None:
    common = ["--provider", provider.url, "--key", str(provider.home / "key")]
    data = provider.data_dir() / "d.csv"
    data.write_text("a\n1\n")
    did = runner.invoke(
        app, ["publish", "dataset", str(data), "--name", "d", "--allow-raw-algorithm", *common]
    ).output.strip()
    code = tmp_path / "a.py"
    code.write_text("print(1)\n")
    before = provider.publisher.wallet.balances()["tokens"]
    for image, why in [
        ("elsewhere.example/algo/x:1", "does not pull from elsewhere.example"),
        ("not a reference", "--image: an image reference"),
    ]:
        run = runner.invoke(
            app, ["compute", "run", did, "--algorithm", str(code), "--image", image, *common]
        )
        # main() prints an AtollError as one line; nothing was ordered
        assert isinstance(run.exception, AtollError), run.output
        assert why in run.exception.message and "\n" not in run.exception.message
        assert "ordering" not in run.output
    assert provider.publisher.wallet.balances()["tokens"] == before
    assert provider.publisher.jobs() == []
