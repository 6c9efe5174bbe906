"""atoll publish: offer a dataset or an algorithm on your provider."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

from atoll.chain.units import TOKEN
from atoll.cli.common import JsonOpt, KeyOpt, ProviderOpt, client, console, print_json
from atoll.cli.untrusted import plain
from atoll.errors import BadRequest

app = typer.Typer(help="Publish a dataset or an algorithm (prints its DID).", no_args_is_help=True)

NameOpt = Annotated[str, typer.Option("--name", help="Asset name")]
DescOpt = Annotated[str, typer.Option(help="Description")]
AuthorOpt = Annotated[str, typer.Option(help="Author")]
LicenseOpt = Annotated[str, typer.Option(help="License")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable)")]


def _price(tokens: str | None) -> int | None:
    """Tokens as written (``5``, ``0.25``) in the token's smallest unit, exactly: no float
    comes between what the publisher typed and what the chain charges."""
    if tokens is None:
        return None
    try:
        amount = Decimal(tokens) * TOKEN
    except InvalidOperation:
        raise BadRequest(f"--price {tokens!r} is not a number") from None
    if not amount.is_finite() or amount < 0 or amount != amount.to_integral_value():
        raise BadRequest(f"--price {tokens!r}: a price is 0 or more, with at most 18 decimals")
    return int(amount)


def _files(paths: list[Path]) -> list[str]:
    out = []
    for p in paths:
        if not p.is_file():
            raise BadRequest(f"{p} is not a file")
        out.append(str(p.resolve()))
    return out


@app.command("dataset")
def dataset(
    paths: Annotated[list[Path], typer.Argument(help="Data files; they stay where they are")],
    name: NameOpt,
    description: DescOpt = "",
    author: AuthorOpt = "",
    license: LicenseOpt = "",
    tag: TagOpt = None,
    allow_raw_algorithm: Annotated[
        bool, typer.Option(help="Let consumers run their own code (not only trusted algorithms)")
    ] = False,
    trust_algorithm: Annotated[
        list[str] | None,
        typer.Option(help="DID of an algorithm allowed to run (repeatable)"),
    ] = None,
    trust_publisher: Annotated[
        list[str] | None,
        typer.Option(help="Address whose algorithms are allowed (repeatable)"),
    ] = None,
    allow_network: Annotated[
        bool, typer.Option(help="Let jobs reach the --host list (in environments with network)")
    ] = False,
    host: Annotated[
        list[str] | None, typer.Option(help="A host (or host:port) jobs may reach (repeatable)")
    ] = None,
    max_jobs: Annotated[int, typer.Option(help="Jobs one agreement allows")] = 1,
    price: Annotated[
        str | None, typer.Option(help="Price of one agreement, in tokens (default: node's)")
    ] = None,
    timeout: Annotated[int | None, typer.Option(help="Compute service timeout, seconds")] = None,
    access_price: Annotated[
        str | None,
        typer.Option(help="Offer the files for download too, at this price in tokens"),
    ] = None,
    access_timeout: Annotated[
        int | None, typer.Option(help="How long one access agreement serves, seconds")
    ] = None,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Publish data files as a dataset offering compute (its file locations stay private)."""
    from atoll.models.ddo import AccessOffer, ComputePolicy, Metadata

    wei = _price(price)
    if access_timeout is not None and access_price is None:
        raise BadRequest("--access-timeout goes with --access-price (the download offer)")
    offer = (
        AccessOffer(price=_price(access_price) or 0, timeout=access_timeout)
        if access_price is not None
        else None
    )
    files = _files(paths)
    with client(provider, key) as c:
        trusted = []
        for did in trust_algorithm or []:
            algo = c.asset(did)
            trusted.append({"did": did, "filesChecksum": algo.filesChecksum})
        policy = ComputePolicy.model_validate(
            {
                "allowRawAlgorithm": allow_raw_algorithm,
                "publisherTrustedAlgorithms": trusted,
                "publisherTrustedAlgorithmPublishers": trust_publisher or [],
                "allowNetworkAccess": allow_network,
                "networkAllowlist": host or [],
                "maxJobs": max_jobs,
            }
        )
        meta = Metadata(
            name=name,
            description=description,
            author=author,
            license=license,
            type="dataset",
            tags=tag or [],
        )
        ddo = c.publish(meta, files, policy, timeout, wei, access=offer)
    print_json(ddo.public_json()) if json else console.print(plain(ddo.id))


@app.command("algorithm")
def algorithm(
    file: Annotated[Path, typer.Argument(help="The algorithm's code (Python)")],
    name: NameOpt,
    description: DescOpt = "",
    author: AuthorOpt = "",
    license: LicenseOpt = "",
    tag: TagOpt = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="Consumer parameter NAME[:TYPE[:required]][=DEFAULT], TYPE one of text, "
            "number, boolean, select (repeatable)"
        ),
    ] = None,
    choice: Annotated[
        list[str] | None,
        typer.Option(help="Options of a select parameter: NAME=A,B,C (repeatable)"),
    ] = None,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Publish an algorithm so datasets can trust it by DID and checksum."""
    from atoll.cli.parameters import declared
    from atoll.models.ddo import AlgorithmInfo, Metadata

    params = declared(param or [], choice or [])
    files = _files([file])
    meta = Metadata(
        name=name,
        description=description,
        author=author,
        license=license,
        type="algorithm",
        tags=tag or [],
        algorithm=AlgorithmInfo(consumerParameters=params),
    )
    with client(provider, key) as c:
        ddo = c.publish(meta, files)
    print_json(ddo.public_json()) if json else console.print(plain(ddo.id))
