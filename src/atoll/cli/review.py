"""atoll review: the release queue of the outputs and logs the disclosure checks held."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from atoll.cli.common import JsonOpt, KeyOpt, ProviderOpt, client, console, print_json
from atoll.cli.untrusted import markup, plain

app = typer.Typer(
    help="Review the job outputs and logs held by your datasets' output checks.",
    no_args_is_help=True,
)

JobArg = Annotated[str, typer.Argument(help="The job's id")]
IndexArg = Annotated[int, typer.Argument(help="The result's index", min=0)]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept with your signed decision)")]


@app.command("list")
def list_(provider: ProviderOpt = None, key: KeyOpt = None, json: JsonOpt = False) -> None:
    """List the held files you may review."""
    with client(provider, key) as c:
        items = c.review_queue()
    if json:
        print_json(items)
        return
    table = Table(
        "job", "index", "kind", "bytes", "approvals", "reasons", title=f"{len(items)} held"
    )
    for i in items:
        table.add_row(
            plain(str(i["jobId"])),
            str(i["index"]),
            plain(str(i["kind"])),
            str(i["filesize"]),
            f"{i['approvals']}/{i['approvalsRequired']}",
            plain("; ".join(i["reasons"])),
        )
    console.print(table)


@app.command("show")
def show(
    job: JobArg,
    index: IndexArg,
    save: Annotated[
        Path | None, typer.Option(help="Also save the file's bytes here, to inspect them")
    ] = None,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Show one checked file: why it is held, the decisions so far, its columns."""
    with client(provider, key) as c:
        item = c.review_item(job, index)
        if save is not None:
            save.write_bytes(c.review_file(job, index))
    if json:
        print_json(item)
        return
    _show(item)
    if save is not None:
        console.print(f"saved to {markup(str(save))}")


def _show(item: dict[str, Any]) -> None:
    console.print(f"job       {markup(str(item['jobId']))}  result {item['index']}")
    console.print(
        f"file      {markup(str(item['filename']))} ({item['kind']}, {item['filesize']} bytes)"
    )
    console.print(f"sha256    {markup(str(item['sha256']))}")
    console.print(f"state     {markup(str(item['state']))}  (policy {markup(str(item['mode']))})")
    console.print(f"consumer  {markup(str(item['consumer']))}")
    for reason in item["reasons"]:
        console.print(f"  held: {markup(str(reason))}")
    columns = item.get("columns")
    if columns:
        console.print(f"columns   {markup(', '.join(columns['output']))}")
        console.print(f"  shared with the inputs: {markup(', '.join(columns['shared'])) or 'none'}")
        console.print(f"  added:                  {markup(', '.join(columns['added'])) or 'none'}")
    console.print(f"approvals needed  {item['approvalsRequired']}")
    for d in item["decisions"]:
        console.print(f"  {markup(d['reviewer'])}: {markup(d['decision'])} ({markup(d['reason'])})")


@app.command("approve")
def approve(
    job: JobArg,
    index: IndexArg,
    reason: ReasonOpt,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Approve a held file; it is released once enough reviewers have approved it."""
    with client(provider, key) as c:
        item = c.approve(job, index, reason)
    print_json(item) if json else _show(item)


@app.command("reject")
def reject(
    job: JobArg,
    index: IndexArg,
    reason: ReasonOpt,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Reject a held file: it is never released."""
    with client(provider, key) as c:
        item = c.reject(job, index, reason)
    print_json(item) if json else _show(item)
