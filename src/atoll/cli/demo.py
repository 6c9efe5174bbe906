"""atoll demo: the whole flow on one machine, over real HTTP, with the real sandbox and the
embedded chain: publish → order (agreement + payment locked) → run → result → escrow paid."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from atoll.chain.units import TOKEN, whole
from atoll.cli.common import console, need_provider
from atoll.cli.untrusted import markup, plain_lines
from atoll.errors import AtollError

if TYPE_CHECKING:
    from atoll.config import Settings
    from atoll.models.ddo import AlgorithmContainer
    from atoll.sdk import ProviderClient
    from atoll.signing import Key

PRICE = 5 * TOKEN


def _balances(label: str, publisher: ProviderClient, consumer: ProviderClient) -> None:
    pub = whole(publisher.wallet.balances()["tokens"])
    con = whole(consumer.wallet.balances()["tokens"])
    console.print(f"   {label:<7} publisher {pub:10.2f} ATL   consumer {con:10.2f} ATL")


def demo(
    home: Annotated[
        Path | None,
        typer.Option(help="Keep the demo node here (default: a temporary directory)"),
    ] = None,
) -> None:
    """Run the whole flow on sample data: publish, order, compute in the sandbox, get paid.

    A provider with its embedded chain starts on a loopback port, and a registry beside it
    serving the sample image (Debian's python3, pandas and numpy, built by scripts/setup); a
    pandas algorithm is published in that image by digest, and a sample dataset that trusts
    it; a consumer orders the dataset and runs the algorithm on it, and the result and both
    balances are printed."""
    need_provider()
    from importlib import resources

    from atoll.cli.demo_image import REPOSITORY, local_registry, push, sample_layout
    from atoll.cli.serve import init_home
    from atoll.config import load_settings
    from atoll.images.access import RegistryAccess
    from atoll.models.ddo import AlgorithmContainer
    from atoll.signing import Key

    tmp = None if home else tempfile.mkdtemp(prefix="atoll-demo-")
    node_home = home or Path(tmp or "")
    # the publisher's files live outside the node directory (nothing in it is publishable),
    # in a directory the jobs' user can get through
    data_dir = Path(tempfile.mkdtemp(prefix="atoll-demo-data-"))
    data_dir.chmod(0o755)
    try:
        _, publisher_key = init_home(node_home)
        consumer_file = node_home / "consumer.key"
        if not consumer_file.exists():
            Key.generate().save(consumer_file)
        sample = resources.files("atoll.demo")
        dataset_file = data_dir / "weather.csv"
        dataset_file.write_bytes(sample.joinpath("weather.csv").read_bytes())
        dataset_file.chmod(0o644)
        code_file = data_dir / "algorithm.py"
        code_file.write_bytes(sample.joinpath("algorithm.py").read_bytes())
        code_file.chmod(0o644)
        layout = sample_layout(lambda line: console.print(markup(line)))

        roots = (f"{data_dir}={publisher_key.address}",)
        console.rule("[bold]Atoll demo")
        with local_registry() as registry_host:
            digest = push(layout, registry_host)
            image = f"{registry_host}/{REPOSITORY}"
            # the operator lists the registry; the environment accepts that repository's images
            base = load_settings(node_home, port=0, data_roots=roots)
            envs = tuple(
                e.model_copy(update={"images": [image]}) for e in base.compute_environments()
            )
            settings = load_settings(
                node_home,
                port=0,
                data_roots=roots,
                environments=envs,
                image_registries=(RegistryAccess(host=registry_host, insecure=True),),
            )
            container = AlgorithmContainer(entrypoint="python3 $ALGO", image=image, checksum=digest)
            _run(settings, publisher_key, consumer_file, dataset_file, code_file, container)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(
    settings: Settings,
    publisher_key: Key,
    consumer_file: Path,
    dataset_file: Path,
    code_file: Path,
    container: AlgorithmContainer,
) -> None:
    from atoll.chain.records import ConditionState
    from atoll.cli.compute import print_job, wait_with_progress
    from atoll.images.trust import container_section_checksum
    from atoll.models.ddo import AlgorithmInfo, ComputePolicy, Metadata, TrustedAlgorithm
    from atoll.models.status import JobStatus
    from atoll.node import build_provider
    from atoll.sdk import ProviderClient
    from atoll.server import BackgroundServer
    from atoll.signing import Key

    node_home = settings.home
    node = build_provider(settings)
    server = BackgroundServer(node.app())
    with (
        server as url,
        ProviderClient(url, publisher_key) as publisher,
        ProviderClient(url, Key.load(consumer_file)) as consumer,
    ):
        info = publisher.chain_info()
        console.print(f"provider   {url}  ({node.key.address})")
        console.print(f"chain      id {info['chainId']}, JSON-RPC at {info['rpcUrl']}")
        console.print(f"publisher  {publisher_key.address}")
        console.print(f"consumer   {consumer.key.address if consumer.key else ''}\n")
        consumer.faucet()
        algo = publisher.publish(
            Metadata(
                name="Monthly mean temperature",
                description="Mean temperature per station, with pandas",
                author="Demo publisher",
                license="MIT",
                type="algorithm",
                algorithm=AlgorithmInfo(container=container),
            ),
            [str(code_file)],
        )
        console.print("1. published an algorithm that runs in the sample image (pandas)")
        console.print(f"   {algo.id}")
        console.print(f"   image {markup(container.image)}@{container.checksum[:19]}…")
        console.print(f"   entrypoint {markup(container.entrypoint)}")
        trusted = TrustedAlgorithm(
            did=algo.id,
            filesChecksum=algo.filesChecksum,
            containerSectionChecksum=container_section_checksum(
                container.entrypoint, container.checksum
            ),
        )
        ddo = publisher.publish(
            Metadata(
                name="Weather stations",
                description="Monthly readings",
                author="Demo publisher",
                license="CC-BY-4.0",
                type="dataset",
                tags=["weather", "demo"],
            ),
            [str(dataset_file)],
            ComputePolicy(allowRawAlgorithm=True, publisherTrustedAlgorithms=[trusted]),
            price=PRICE,
        )
        console.print("   a dataset that trusts it (its files, image digest and entrypoint),")
        console.print("   published and registered on chain")
        console.print(f"   {ddo.id}")
        _balances("before", publisher, consumer)
        agreement = consumer.order(ddo.id)
        console.print(f"2. ordered agreement {agreement}")
        console.print(f"   {PRICE // TOKEN} ATL locked in escrow")
        job = consumer.start(ddo.id, algorithm_did=algo.id, agreement_id=agreement)
        console.print(f"3. started job {job.jobId} in the sandbox, in the image")
        job = wait_with_progress(consumer, job, quiet=False)
        print_job(job)
        if job.status != JobStatus.FINISHED:
            raise AtollError(f"the demo job ended with: {job.statusText}")
        out = node_home / "results"
        consumer.download_results(job, out)
        console.print("4. result (summary.json), computed next to the data:")
        console.print(plain_lines((out / "summary.json").read_bytes()))
        for line in (out / "algorithm.log").read_text().splitlines():
            console.print(f"   log: {markup(line)}")
        settled = consumer.wallet.wait_settled(agreement)
        if settled.compute.state is not ConditionState.FULFILLED:
            raise AtollError("the escrow was refunded instead of paid to the publisher")
        result_hash = settled.result_hash.hex() if settled.result_hash else "-"
        console.print("5. escrow released to the publisher")
        console.print(f"   result manifest hash on chain: {result_hash[:16]}…")
        _balances("after", publisher, consumer)
