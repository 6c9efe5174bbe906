"""atoll mock: a dataset's mock data. Its owner infers a schema from the real file, looks at
it and approves it (or uploads a mock file); anyone downloads what is offered, and tries an
algorithm on it with ``atoll compute dryrun``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from atoll.cli.common import JsonOpt, KeyOpt, ProviderOpt, client, console, print_json
from atoll.cli.untrusted import LogText, markup, plain
from atoll.errors import BadRequest, NotFound
from atoll.models.mock import MockOffer, MockView

app = typer.Typer(help="Mock data of a dataset: infer, approve, attach, get.", no_args_is_help=True)

DidArg = Annotated[str, typer.Argument(help="DID of the dataset")]


def print_offer(offer: MockOffer) -> None:
    console.print(f"mock     {markup(offer.source)}, {offer.rows} rows, {offer.size} bytes")
    console.print(f"sha256   {markup(offer.sha256)}")
    console.print("columns  " + markup(", ".join(offer.columns)))


def print_view(view: MockView) -> None:
    console.print(f"state    {markup(view.state)} ({markup(view.source)})")
    if view.mockSchema is not None:
        table = Table("column", "type", "range", "categories", "nulls")
        for c in view.mockSchema.get("columns", []):
            low, high = c.get("low"), c.get("high")
            table.add_row(
                plain(str(c.get("name", ""))),
                plain(str(c.get("type", ""))),
                plain("" if low is None else f"{low} … {high}"),
                plain(", ".join(str(v) for v in c.get("categories", []))),
                plain(str(c.get("nullRate", 0))),
            )
        console.print(table)
        console.print(f"schema   {markup(view.schemaSha256)}")
    if view.offer is not None:
        print_offer(view.offer)
    elif view.state == "proposed":
        console.print("nothing is offered until you approve: atoll mock approve DID")


def _json(model: Any) -> None:
    print_json(model.model_dump(mode="json"))


@app.command("schema")
def schema(
    dataset: DidArg,
    infer: Annotated[
        bool, typer.Option("--infer", help="Infer a new schema from the dataset's file")
    ] = False,
    file_index: Annotated[int, typer.Option(help="With --infer: which file of the dataset")] = 0,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """(Owner) show the dataset's mock schema; the first time, or with --infer, infer it from
    the real file. Nothing is offered before you approve it."""
    with client(provider, key) as c:
        if infer:
            view = c.mock_infer(dataset, file_index)
        else:
            try:
                view = c.mock_schema(dataset)
            except NotFound:
                view = c.mock_infer(dataset, file_index)
    _json(view) if json else print_view(view)


@app.command("approve")
def approve(
    dataset: DidArg,
    schema_sha256: Annotated[
        str | None,
        typer.Option(
            "--schema", help="The digest `atoll mock schema` showed (default: the current)"
        ),
    ] = None,
    rows: Annotated[int, typer.Option(help="How many mock rows to generate")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the generated rows")] = 0,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """(Owner) approve the proposed schema: mock rows are generated from it and offered."""
    with client(provider, key) as c:
        digest = schema_sha256 or c.mock_schema(dataset).schemaSha256
        if not digest:
            raise BadRequest(f"{dataset} has no generated schema: atoll mock schema DID first")
        offer = c.mock_approve(dataset, digest, rows, seed)
    _json(offer) if json else print_offer(offer)


@app.command("attach")
def attach(
    dataset: DidArg,
    file: Annotated[Path, typer.Argument(help="The mock data: a CSV file with a header row")],
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """(Owner) upload your own mock data for the dataset and offer it."""
    try:
        content = file.read_text()
    except OSError as exc:
        raise BadRequest(f"cannot read {file} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BadRequest(f"{file} is not UTF-8 text") from None
    with client(provider, key) as c:
        offer = c.mock_attach(dataset, content)
    _json(offer) if json else print_offer(offer)


@app.command("get")
def get(
    dataset: DidArg,
    to: Annotated[
        Path | None, typer.Option("--to", help="Save it to this file (default: print it)")
    ] = None,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Download the mock data the dataset offers (public: it holds no real row)."""
    with client(provider, key, need_key=False) as c:
        data = c.mock_data(dataset)
    if to is None:
        sys.stdout.write(LogText().feed(data, final=True))
        sys.stdout.flush()
    else:
        to.write_bytes(data)
        console.print(f"saved {len(data)} bytes to {markup(str(to))}")
