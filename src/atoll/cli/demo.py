"""atoll demo: the whole flow on one machine, over real HTTP, with the real sandbox."""

from __future__ import annotations

import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from atoll.cli.common import console
from atoll.cli.compute import print_job, wait_with_progress
from atoll.cli.node import init_home
from atoll.config import load_settings
from atoll.errors import AtollError
from atoll.models.ddo import ComputePolicy, Metadata
from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient
from atoll.signing import Key


def demo(
    home: Annotated[
        Path | None,
        typer.Option(help="Keep the demo node here [default: a temporary directory]"),
    ] = None,
) -> None:
    """Publish a sample dataset, run a sample algorithm on it in the sandbox, print the result."""
    from atoll.node import build_provider
    from atoll.server import BackgroundServer

    tmp = None if home else tempfile.mkdtemp(prefix="atoll-demo-")
    node_home = home or Path(tmp or "")
    try:
        _, user_key = init_home(node_home)
        data_dir = node_home / "data"
        data_dir.mkdir(exist_ok=True)
        sample = resources.files("atoll.demo")
        dataset_file = data_dir / "weather.csv"
        dataset_file.write_bytes(sample.joinpath("weather.csv").read_bytes())
        code = sample.joinpath("algorithm.py").read_text()

        settings = load_settings(node_home, port=0)
        node = build_provider(settings)
        console.rule("[bold]Atoll demo")
        console.print(f"provider  {node.key.address}")
        console.print(f"consumer  {user_key.address}")
        server = BackgroundServer(node.app())
        with server as url, ProviderClient(url, Key.load(node_home / "key")) as c:
            console.print(f"serving   {url}\n")
            ddo = c.publish(
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
            )
            console.print(f"1. published dataset  {ddo.id}")
            info = c.start(ddo.id, rawcode=code)
            console.print(f"2. started job        {info.jobId}")
            info = wait_with_progress(c, info, quiet=False)
            print_job(info)
            if info.status != JobStatus.FINISHED:
                raise AtollError(f"the demo job ended with: {info.statusText}")
            out = node_home / "results"
            c.download_results(info, out)
            console.print("3. result (summary.json), computed next to the data:")
            console.print((out / "summary.json").read_text())
            console.print("   log:")
            console.print((out / "algorithm.log").read_text().rstrip())
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
