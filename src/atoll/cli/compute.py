"""atoll compute: run an algorithm on a dataset and collect the results."""

from __future__ import annotations

import contextlib
import json as _json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from atoll.cli.common import JsonOpt, KeyOpt, ProviderOpt, client, console, err, print_json
from atoll.cli.exits import INTERRUPTED, JOB_FAILED
from atoll.cli.untrusted import LogText, markup, plain, plain_lines
from atoll.errors import BadRequest, Conflict, NotFound
from atoll.models.status import JobStatus

if TYPE_CHECKING:
    from rich.table import Table

    from atoll.models.job import JobInfo
    from atoll.models.mock import DryRunStatus
    from atoll.sdk import ProviderClient

app = typer.Typer(help="Run jobs and get their status, logs and results.", no_args_is_help=True)

JobArg = Annotated[str, typer.Argument(help="The job id")]
#: how long ``compute stop`` waits for the job to end before showing its status anyway
STOP_WAIT_SECONDS = 30.0


def wait_with_progress(c: ProviderClient, info: JobInfo, quiet: bool) -> JobInfo:
    """Wait for the job's end. Ctrl-C leaves the job running, and says how to find it again."""
    with following(info.jobId):
        if quiet:
            return c.wait(info.jobId)
        with console.status(f"[bold]{markup(info.statusText)}") as spinner:

            def show(i: JobInfo) -> None:
                spinner.update(f"[bold]{markup(i.statusText)}[/bold]  (job {markup(i.jobId)})")

            return c.wait(info.jobId, on_change=show)


@contextlib.contextmanager
def following(job_id: str) -> Iterator[None]:
    """Ctrl-C in this block stops the watching, not the job: say which job goes on, and how to
    follow it, and exit with the interrupted status."""
    try:
        yield
    except KeyboardInterrupt:
        job = markup(job_id)
        err.print(f"interrupted; job {job} goes on: atoll compute status {job} --wait")
        raise typer.Exit(INTERRUPTED) from None


#: a job that finished, its outputs released or waiting for a reviewer
DELIVERED = (JobStatus.FINISHED, JobStatus.AWAITING_REVIEW)


def save_results(c: ProviderClient, info: JobInfo, directory: Path) -> list[Path]:
    """The result files, and the signed receipt beside them as receipt.json."""
    saved = c.download_results(info, directory)
    receipt = directory / "receipt.json"
    receipt.write_text(_json.dumps(c.receipt(info.jobId).model_dump(mode="json"), indent=2))
    return [*saved, receipt]


def print_job(info: JobInfo) -> None:
    from rich.table import Table

    ok = info.status in DELIVERED
    colour = "green" if ok else ("yellow" if not info.terminal else "red")
    console.print(f"job      {markup(info.jobId)}")
    console.print(f"status   [{colour}]{info.status} {markup(info.statusText)}[/{colour}]")
    if info.derivedDID:
        console.print(f"derived  {markup(info.derivedDID)}")
    if info.results:
        table = Table("index", "file", "type", "bytes", "sha256")
        for r in info.results:
            table.add_row(
                str(r.index),
                plain(r.filename),
                plain(r.type),
                str(r.filesize),
                plain(r.sha256[:16] + "…"),
            )
        console.print(table)
        if not info.all_results_listed:
            more = info.resultCount - len(info.results)
            console.print(f"… and {more} more (atoll compute results {info.jobId} --to DIR)")
    if info.review is not None and info.review.held:
        console.print(f"review   {info.review.state}: released {len(info.review.released)}")
        for h in info.review.held:
            why = plain("; ".join(h.reasons))
            console.print(f"  result {h.index} ({h.kind}, {h.filesize} bytes) {h.state}: ", why)


@app.command("run")
def run(
    dataset: Annotated[str, typer.Argument(help="DID of the dataset")],
    algorithm: Annotated[str, typer.Option(help="Algorithm: a Python file, or a DID")],
    param: Annotated[
        list[str] | None, typer.Option(help="A parameter of the algorithm, NAME=VALUE (repeatable)")
    ] = None,
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
    image: Annotated[
        str | None,
        typer.Option(
            help="With a Python file: run it in this image (registry/repository:tag or "
            "@sha256:<digest>), if the environment accepts it"
        ),
    ] = None,
    entrypoint: Annotated[
        str, typer.Option(help="With --image: the command that runs the code ($ALGO)")
    ] = "python3 $ALGO",
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Start a job: the algorithm runs in a sandbox next to the data."""
    from atoll.cli.publish import image_container

    if algorithm.startswith("did:"):
        algo_did, rawcode = algorithm, ""
        if image:
            raise BadRequest("--image is for a Python file: a published algorithm names its own")
    else:
        algo_did, rawcode = "", _code(Path(algorithm))
    container = image_container(image, entrypoint) if image else None
    from atoll.cli.parameters import given
    from atoll.models.job import PublishOutput

    parameters = given(param or [])
    extra: dict[str, str | None] = {}
    for item in additional or []:
        did, _, aid = item.partition("=")
        if not did:
            raise BadRequest(f"--additional takes DID or DID=AGREEMENT, not {item!r}")
        extra[did] = aid or None
    derived = (
        PublishOutput(name=publish_output, description=description) if publish_output else None
    )
    with client(provider, key) as c:
        if agreement is None or None in extra.values():
            # the provider checks the DIDs, the parameters and the algorithm before anything
            # is ordered: a refusal costs nothing
            c.initialize(
                dataset,
                algo_did,
                rawcode,
                parameters,
                {d: a or "" for d, a in extra.items()},
                environment,
                container=container,
            )
            if not json:
                console.print("ordering a Service Agreement (payment locked in escrow)…")
            agreement = agreement or c.order(dataset)
            extra = {d: a or c.order(d) for d, a in extra.items()}
        info = c.start(
            dataset,
            algo_did,
            rawcode,
            parameters,
            extra,
            environment,
            agreement,
            publish_output=derived,
            container=container,
        )
        with following(info.jobId):
            if not json:
                console.print(f"started job {markup(info.jobId)}")
            if wait or results is not None:
                info = wait_with_progress(c, info, quiet=json)
                if results is not None and info.results:
                    saved = save_results(c, info, results)
                    if not json:
                        to = markup(str(results))
                        console.print(f"saved {len(saved) - 1} file(s) and receipt.json to {to}")
    if json:
        print_json(info.model_dump(mode="json"))
    else:
        print_job(info)
    if info.terminal and info.status not in DELIVERED:
        raise typer.Exit(JOB_FAILED)


def _code(path: Path) -> str:
    if not path.is_file():
        raise BadRequest(f"--algorithm: {path} is neither a file nor a DID")
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise BadRequest(f"--algorithm: {path} is not UTF-8 text") from None


@app.command("order")
def order(
    dataset: Annotated[str, typer.Argument(help="DID of the dataset")],
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Create a Service Agreement for a dataset and lock its price in escrow (prints its id)."""
    with client(provider, key) as c:
        console.print(plain(c.order(dataset)))


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
    if wait and info.terminal and info.status not in DELIVERED:
        raise typer.Exit(JOB_FAILED)


@app.command("list")
def list_(provider: ProviderOpt = None, key: KeyOpt = None, json: JsonOpt = False) -> None:
    """List your jobs (only yours: the provider shows nobody else's)."""
    with client(provider, key) as c:
        jobs = c.jobs()
    if json:
        print_json([j.model_dump(mode="json") for j in jobs])
        return
    table = jobs_table(jobs)
    console.print(table)


def jobs_table(jobs: list[JobInfo]) -> Table:
    from rich.table import Table

    table = Table(title=f"{len(jobs)} job(s)")
    # the job id is what one types next: never cut or wrapped, the other columns give way
    table.add_column("job", no_wrap=True, min_width=max((len(j.jobId) for j in jobs), default=3))
    table.add_column("status", overflow="fold")
    table.add_column("dataset", overflow="fold")
    table.add_column("created", overflow="fold")
    for j in jobs:
        table.add_row(
            plain(j.jobId), plain(f"{j.status} {j.statusText}"), plain(j.did), plain(j.dateCreated)
        )
    return table


@app.command("logs")
def logs(
    job: JobArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream until the job ends")
    ] = False,
    raw: Annotated[
        bool, typer.Option("--raw", help="The log's bytes unchanged (to save it to a file)")
    ] = False,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Print the job's output log (control characters and escape sequences shown as \\xNN)."""
    text = LogText()
    with client(provider, key) as c:
        for chunk in c.logs(job, follow):
            if raw:
                sys.stdout.buffer.write(chunk)
            else:
                sys.stdout.write(text.feed(chunk))
            sys.stdout.flush()
    if not raw:
        sys.stdout.write(text.feed(b"", final=True))
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
            raise BadRequest(
                f"the job has not finished yet (try: atoll compute status {info.jobId} --wait)"
            )
        if info.removed:
            raise NotFound(f"the results of job {info.jobId} were deleted")
        saved = save_results(c, info, to)
    for p in saved:
        console.print(plain(str(p)))


@app.command("stop")
def stop(job: JobArg, provider: ProviderOpt = None, key: KeyOpt = None) -> None:
    """Stop a running or queued job, and show its status once it has stopped."""
    with client(provider, key) as c:
        try:
            info = c.stop(job)
        except Conflict:
            info = c.status(job)
            if not info.terminal:
                raise
            # the job is not running, which is what was asked: say so, and show how it ended
            err.print("the job had already ended")
        if not info.terminal:
            # the stop is asked for; the status worth showing is the one after it
            info = c.wait(job, timeout=STOP_WAIT_SECONDS)
    print_job(info)


@app.command("delete")
def delete(job: JobArg, provider: ProviderOpt = None, key: KeyOpt = None) -> None:
    """Delete a finished job's results and logs."""
    with client(provider, key) as c:
        print_job(c.delete(job))
        err.print("results and logs removed")


@app.command("dryrun")
def dryrun(
    dataset: Annotated[str, typer.Argument(help="DID of the dataset")],
    algorithm: Annotated[str, typer.Option(help="Algorithm: a Python file, or a DID")],
    param: Annotated[
        list[str] | None, typer.Option(help="A parameter of the algorithm, NAME=VALUE (repeatable)")
    ] = None,
    additional: Annotated[
        list[str] | None, typer.Option(help="Another dataset's DID (repeatable)")
    ] = None,
    environment: Annotated[str, typer.Option(help="Compute environment id")] = "default",
    results: Annotated[
        Path | None, typer.Option(help="Save every output and log here as well")
    ] = None,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Try an algorithm on the datasets' mock data: no agreement, no payment. Prints every
    output and log, and the check report a real job's outputs would get; then run it for
    real with `atoll compute run`."""
    from atoll.cli.parameters import given
    from atoll.models.job import result_path

    if algorithm.startswith("did:"):
        algo_did, rawcode = algorithm, ""
    else:
        algo_did, rawcode = "", _code(Path(algorithm))
    with client(provider, key) as c:
        info = c.dryrun_start(
            dataset, algo_did, rawcode, given(param or []), list(additional or []), environment
        )
        with following(info.jobId):
            if not json:
                console.print(f"dry run {markup(info.jobId)} on mock data (no agreement)")
            done = c.dryrun_wait(info.jobId)
        files = {r.index: c.dryrun_result(info.jobId, r.index) for r in done.job.results}
    if results is not None:
        for r in done.job.results:
            target = result_path(results, r.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[r.index])
    if json:
        print_json(done.model_dump(mode="json"))
    else:
        print_dry_run(done, files)
    if done.job.status != JobStatus.FINISHED:
        raise typer.Exit(JOB_FAILED)


#: an output longer than this is shown cut (all of it is saved with --results)
SHOWN_BYTES = 4096


def print_dry_run(done: DryRunStatus, files: dict[int, bytes]) -> None:
    """Each output and log as text made safe for the terminal, then the check report."""
    print_job(done.job)
    for r in done.job.results:
        data = files[r.index]
        console.rule(plain(f"{r.index}: {r.filename} ({r.type})"))
        cut = len(data) > SHOWN_BYTES
        console.print(plain_lines(data[:SHOWN_BYTES]), end="\n" if not cut else "")
        if cut:
            console.print(f"\n… {len(data) - SHOWN_BYTES} more bytes (--results DIR saves all)")
    if not done.job.all_results_listed:
        console.print(f"… and {done.job.resultCount - len(done.job.results)} more files")
    console.rule("check report")
    report = done.report or {}
    for f in report.get("files", []):
        verdict = "[green]pass[/green]" if f["verdict"] == "pass" else "[yellow]hold[/yellow]"
        reasons = "; ".join(f"{x['check']}: {x['detail']}" for x in f.get("findings", []))
        line = f"{f['index']}: {verdict}"
        console.print(line + (f"  {markup(reasons)}" if reasons else ""))
    if done.held:
        console.print(
            f"a real job would hold {len(done.held)} file(s) for review; "
            "the rest would be released at once"
        )
    elif report:
        console.print("a real job's outputs would all be released at once")
