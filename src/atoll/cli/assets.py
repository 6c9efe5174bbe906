"""atoll assets: browse the catalogue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text
from rich.tree import Tree

from atoll.cli.common import JsonOpt, KeyOpt, ProviderOpt, client, console, print_json
from atoll.cli.untrusted import plain, visible
from atoll.errors import NotFound

if TYPE_CHECKING:
    from atoll.models.ddo import DDO
    from atoll.sdk import ProviderClient

app = typer.Typer(help="List, search and show assets.", no_args_is_help=True)


@app.command("list")
def list_(
    query: Annotated[
        str, typer.Argument(help="Words to search for in names, descriptions, authors and tags")
    ] = "",
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
    console.print(
        f"{total} asset(s)" + (f", the newest {len(ddos)} shown" if total > len(ddos) else "")
    )
    for d in ddos:
        # the DID whole on its own line, however narrow the terminal: it is what one types next
        console.print(plain(d.id), style="bold")
        tags = f"  tags: {', '.join(d.metadata.tags)}" if d.metadata.tags else ""
        console.print(Text(f"  {d.metadata.type}  ") + plain(d.metadata.name) + plain(tags))


@app.command("show")
def show(
    did: Annotated[str, typer.Argument(help="The asset's DID")],
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Print an asset's DDO."""
    with client(provider, key, need_key=False) as c:
        print_json(c.asset(did).public_json())


@app.command("lineage")
def lineage(
    did: Annotated[str, typer.Argument(help="The asset's DID")],
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Show the chain of derivation: which job, inputs and algorithm made an asset."""
    with client(provider, key, need_key=False) as c:
        tree = Tree(_label(c.asset(did)))
        _grow(c, did, tree, seen={did})
    # wider than a narrow terminal rather than folded: a DID or a job id folded under the
    # tree's guides could not be copied whole
    terminal = console.width
    console.width = max(terminal, _width(tree))
    try:
        console.print(tree)
    finally:
        console.width = terminal


def _label(ddo: DDO) -> Text:
    return Text(visible(ddo.metadata.name), style="bold") + "  " + plain(ddo.id)


def _width(node: Tree, depth: int = 0) -> int:
    """The columns ``node`` needs with every line whole (each level indents by 4)."""
    label = node.label.plain if isinstance(node.label, Text) else str(node.label)
    return max([4 * depth + len(label)] + [_width(c, depth + 1) for c in node.children])


def _grow(c: ProviderClient, did: str, node: Tree, seen: set[str]) -> None:
    prov = c.asset(did).metadata.provenance
    if prov is None:
        return
    step = node.add(plain(f"job {prov.jobId}  algorithm {prov.algorithm}"))
    for parent in prov.inputs:
        if parent in seen:
            step.add(plain(f"{parent} (already shown)"))
            continue
        seen.add(parent)
        try:
            child = step.add(_label(c.asset(parent)))
        except NotFound:
            step.add(plain(f"{parent} (not in this catalogue)"))
            continue
        _grow(c, parent, child, seen)
