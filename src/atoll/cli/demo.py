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
    from atoll.sdk import ProviderClient

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

    A provider with its embedded chain starts on a loopback port; a sample dataset is
    published, a consumer orders it and runs a sample algorithm on it, and the result and
    both balances are printed."""
    need_provider()
    from importlib import resources

    from atoll.chain.records import ConditionState
    from atoll.cli.compute import print_job, wait_with_progress
    from atoll.cli.serve import init_home
    from atoll.config import load_settings
    from atoll.models.ddo import ComputePolicy, Metadata
    from atoll.models.status import JobStatus
    from atoll.node import build_provider
    from atoll.sdk import ProviderClient
    from atoll.server import BackgroundServer
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
        code = sample.joinpath("algorithm.py").read_text()

        roots = (f"{data_dir}={publisher_key.address}",)
        node = build_provider(load_settings(node_home, port=0, data_roots=roots))
        console.rule("[bold]Atoll demo")
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
                ComputePolicy(allowRawAlgorithm=True),
                price=PRICE,
            )
            console.print("1. published and registered on chain")
            console.print(f"   {ddo.id}")
            _balances("before", publisher, consumer)
            agreement = consumer.order(ddo.id)
            console.print(f"2. ordered agreement {agreement}")
            console.print(f"   {PRICE // TOKEN} ATL locked in escrow")
            job = consumer.start(ddo.id, rawcode=code, agreement_id=agreement)
            console.print(f"3. started job {job.jobId} in the sandbox")
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
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
