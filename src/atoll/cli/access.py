"""atoll access: order access to an asset's files on chain, and download them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atoll.cli.common import JsonOpt, KeyOpt, ProviderOpt, client, console, print_json
from atoll.cli.untrusted import markup, plain

app = typer.Typer(
    help="Order access to an asset's files and download them (verified, resumable).",
    no_args_is_help=True,
)

DidArg = Annotated[str, typer.Argument(help="DID of the asset")]


@app.command("order")
def order(
    did: DidArg, provider: ProviderOpt = None, key: KeyOpt = None, json: JsonOpt = False
) -> None:
    """Create an access agreement for the asset and lock its price in escrow."""
    with client(provider, key) as c:
        agreement = c.access_order(did)
    if json:
        print_json({"did": did, "agreementId": agreement})
        return
    console.print(plain(agreement))
    console.print(
        f"download with: atoll access download {markup(did)} --agreement {agreement} --to DIR"
    )


@app.command("download")
def download(
    did: DidArg,
    to: Annotated[
        Path, typer.Option(help="Folder to save the files in, as file-0, file-1 and so on")
    ],
    agreement: Annotated[
        str | None,
        typer.Option(help="Access agreement id (default: your newest for this asset)"),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar")] = False,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Download every file of the asset, each checked against its published sha256. A
    download cut short resumes where it stopped when run again."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    with client(provider, key) as c:
        aid = agreement or c.access_agreement(did)
        with Progress(
            TextColumn("file {task.fields[index]}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            disable=quiet,
        ) as bar:
            tasks: dict[int, object] = {}

            def show(index: int, done: int, size: int) -> None:
                task = tasks.get(index)
                if task is None:
                    task = tasks[index] = bar.add_task("", total=size, index=index)
                bar.update(task, completed=done)  # type: ignore[arg-type]

            saved = c.access_download(did, to, aid, on_progress=show)
    for path in saved:
        console.print(plain(str(path)))
