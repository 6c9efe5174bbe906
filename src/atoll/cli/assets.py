"""atoll assets: browse the catalogue."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from atoll.cli.common import JsonOpt, KeyOpt, ProviderOpt, client, console, print_json

app = typer.Typer(help="List, search and show assets.", no_args_is_help=True)


@app.command("list")
def list_(
    query: Annotated[str, typer.Argument(help="Words to search for")] = "",
    tag: Annotated[str, typer.Option(help="Only assets with this tag")] = "",
    type: Annotated[str, typer.Option(help="dataset or algorithm")] = "",
    limit: Annotated[int, typer.Option(help="At most this many")] = 50,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """List assets, optionally matching words and a tag."""
    with client(provider, key, need_key=False) as c:
        total, ddos = c.search(query, tag, type, limit)
    if json:
        print_json([d.public_json() for d in ddos])
        return
    table = Table("DID", "type", "name", "tags", title=f"{total} asset(s)")
    for d in ddos:
        table.add_row(d.id, d.metadata.type, d.metadata.name, ", ".join(d.metadata.tags))
    console.print(table)


@app.command("show")
def show(
    did: Annotated[str, typer.Argument(help="The asset's DID")],
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Print an asset's DDO."""
    with client(provider, key, need_key=False) as c:
        print_json(c.asset(did).public_json())
