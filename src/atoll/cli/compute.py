"""atoll compute: run an algorithm on a dataset and collect the results."""

from __future__ import annotations

import json as _json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from atoll.cli.common import JsonOpt, KeyOpt, ProviderOpt, client, console, err, print_json
from atoll.errors import BadRequest
from atoll.models.job import JobInfo, PublishOutput
from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient

app = typer.Typer(help="Run jobs and get their status, logs and results.", no_args_is_help=True)

JobArg = Annotated[str, typer.Argument(help="The job id")]


def parse_params(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise BadRequest(f"--param takes NAME=VALUE, not {pair!r}")
        out[name] = value
    return out


def wait_with_progress(c: ProviderClient, info: JobInfo, quiet: bool) -> JobInfo:
    if quiet:
        return c.wait(info.jobId)
    with console.status(f"[bold]{info.statusText}") as spinner:

        def show(i: JobInfo) -> None:
            spinner.update(f"[bold]{i.statusText}[/bold]  (job {i.jobId[:12]})")

        return c.wait(info.jobId, on_change=show)


def save_results(c: ProviderClient, info: JobInfo, directory: Path) -> list[Path]:
    """The result files, and the signed receipt beside them as receipt.json."""
    saved = c.download_results(info, directory)
    receipt = directory / "receipt.json"
    receipt.write_text(_json.dumps(c.receipt(info.jobId).model_dump(mode="json"), indent=2))
    return [*saved, receipt]


def print_job(info: JobInfo) -> None:
    ok = info.status == JobStatus.FINISHED
    colour = "green" if ok else ("yellow" if not info.terminal else "red")
    console.print(f"job      {info.jobId}")
    console.print(f"status   [{colour}]{info.status} {info.statusText}[/{colour}]")
    if info.derivedDID:
        console.print(f"derived  {info.derivedDID}")
    if info.results:
        table = Table("index", "file", "type", "bytes", "sha256")
        for r in info.results:
            table.add_row(str(r.index), r.filename, r.type, str(r.filesize), r.sha256[:16] + "…")
        console.print(table)
        if not info.all_results_listed:
            more = info.resultCount - len(info.results)
            console.print(f"… and {more} more (atoll compute results {info.jobId} --to DIR)")


@app.command("run")
def run(
    dataset: Annotated[str, typer.Argument(help="DID of the dataset")],
    algorithm: Annotated[str, typer.Option(help="Algorithm: a Python file, or a DID")],
    param: Annotated[list[str] | None, typer.Option(help="NAME=VALUE (repeatable)")] = None,
    additional: Annotated[
        list[str] | None,
        typer.Option(help="Another dataset, DID or DID=AGREEMENT (repeatable)"),
    ] = None,
    environment: Annotated[str, typer.Option(help="Compute environment id")] = "default",
    agreement: Annotated[
        str | None,
        typer.Option(help="Service Agreement id (default: order one now, and pay for it)"),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the end, showing progress")] = False,
    results: Annotated[
        Path | None, typer.Option(help="Download the results here (implies --wait)")
    ] = None,
    publish_output: Annotated[
        str | None,
        typer.Option(help="Publish the outputs as a new asset you own, with this name"),
    ] = None,
    description: Annotated[str, typer.Option(help="With --publish-output: its description")] = "",
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Start a job: the algorithm runs in a sandbox next to the data."""
    if algorithm.startswith("did:"):
        algo_did, rawcode = algorithm, ""
    else:
        path = Path(algorithm)
        if not path.is_file():
            raise BadRequest(f"--algorithm: {algorithm} is neither a file nor a DID")
        algo_did, rawcode = "", path.read_text()
    extra: dict[str, str | None] = {}
    for item in additional or []:
        did, _, aid = item.partition("=")
        extra[did] = aid or None
    with client(provider, key) as c:
        if agreement is None and not json:
            console.print("ordering a Service Agreement (payment locked in escrow)…")
        derived = (
            PublishOutput(name=publish_output, description=description) if publish_output else None
        )
        info = c.start(
            dataset,
            algo_did,
            rawcode,
            parse_params(param or []),
            extra,
            environment,
            agreement,
            publish_output=derived,
        )
        if wait or results is not None:
            info = wait_with_progress(c, info, quiet=json)
            if results is not None and info.results:
                saved = save_results(c, info, results)
                if not json:
                    console.print(f"saved {len(saved)} file(s) and receipt.json to {results}")
    if json:
        print_json(info.model_dump(mode="json"))
    else:
        print_job(info)
    if info.terminal and info.status != JobStatus.FINISHED:
        raise typer.Exit(2)


@app.command("order")
def order(
    dataset: Annotated[str, typer.Argument(help="DID of the dataset")],
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Create a Service Agreement for a dataset and lock its price in escrow (prints its id)."""
    with client(provider, key) as c:
        console.print(c.order(dataset))


@app.command("status")
def status(
    job: JobArg,
    wait: Annotated[bool, typer.Option(help="Wait for the end")] = False,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Show a job's status and results list."""
    with client(provider, key) as c:
        info = wait_with_progress(c, c.status(job), json) if wait else c.status(job)
    print_json(info.model_dump(mode="json")) if json else print_job(info)


@app.command("list")
def list_(provider: ProviderOpt = None, key: KeyOpt = None, json: JsonOpt = False) -> None:
    """List your jobs (only yours: the provider shows nobody else's)."""
    with client(provider, key) as c:
        jobs = c.jobs()
    if json:
        print_json([j.model_dump(mode="json") for j in jobs])
        return
    table = Table("job", "status", "dataset", "created")
    for j in jobs:
        table.add_row(j.jobId, f"{j.status} {j.statusText}", j.did, j.dateCreated)
    console.print(table)


@app.command("logs")
def logs(
    job: JobArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream until the job ends")
    ] = False,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Print the job's output log."""
    with client(provider, key) as c:
        for chunk in c.logs(job, follow):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()


@app.command("results")
def results(
    job: JobArg,
    to: Annotated[Path, typer.Option("--to", help="Directory to save the files in")],
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Download every result file of a finished job (sha256 checked)."""
    with client(provider, key) as c:
        info = c.status(job)
        if not info.terminal:
            raise BadRequest("the job has not finished yet (try: atoll compute status --wait)")
        saved = save_results(c, info, to)
    for p in saved:
        console.print(str(p))


@app.command("stop")
def stop(job: JobArg, provider: ProviderOpt = None, key: KeyOpt = None) -> None:
    """Stop a running or queued job."""
    with client(provider, key) as c:
        print_job(c.stop(job))


@app.command("delete")
def delete(job: JobArg, provider: ProviderOpt = None, key: KeyOpt = None) -> None:
    """Delete a finished job's results and logs."""
    with client(provider, key) as c:
        print_job(c.delete(job))
        err.print("results and logs removed")
