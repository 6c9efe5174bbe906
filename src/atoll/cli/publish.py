"""atoll publish: offer a dataset or an algorithm on your provider."""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from atoll.chain.units import TOKEN
from atoll.cli.common import JsonOpt, KeyOpt, ProviderOpt, client, console, print_json
from atoll.cli.untrusted import plain
from atoll.errors import BadRequest

if TYPE_CHECKING:
    from atoll.models.ddo import DDO, AlgorithmContainer
    from atoll.models.source import SourceAccess

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


def _files(paths: list[str]) -> list[str]:
    from atoll.models.source import REMOTE_SCHEMES

    out = []
    for text in paths:
        if text.startswith(REMOTE_SCHEMES):
            out.append(text)  # fetched by the provider, as its operator allows
            continue
        p = Path(text)
        if not p.is_file():
            raise BadRequest(f"{p} is not a file")
        out.append(str(p.resolve()))
    return out


def _access(headers: list[str], s3_keys_from_env: bool) -> SourceAccess | None:
    """What opens the URL and S3 files: ``Name: value`` headers, and the S3 keys of this
    shell's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN."""
    from atoll.models.source import SourceAccess

    if not headers and not s3_keys_from_env:
        return None
    parsed: dict[str, str] = {}
    for h in headers:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise BadRequest("--source-header is 'Name: value'")
        parsed[name.strip()] = value.strip()
    keys: dict[str, str] = {}
    if s3_keys_from_env:
        key_id = os.environ.get("AWS_ACCESS_KEY_ID", "")
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not key_id or not secret:
            raise BadRequest("--s3-keys-from-env needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        keys = {
            "accessKeyId": key_id,
            "secretAccessKey": secret,
            "sessionToken": os.environ.get("AWS_SESSION_TOKEN", ""),
        }
    try:
        return SourceAccess.model_validate({"headers": parsed, **keys})
    except ValueError:
        raise BadRequest(
            "--source-header: a name a publisher may not set (Host, Range…) or a value that "
            "is not one line"
        ) from None


def image_container(image: str, entrypoint: str) -> AlgorithmContainer:
    """``--image`` and ``--entrypoint`` as a DDO's container section."""
    from atoll.images.errors import ImageReferenceInvalid
    from atoll.images.reference import ImageReference
    from atoll.models.ddo import AlgorithmContainer

    try:
        ref = ImageReference.parse(image)
    except ImageReferenceInvalid as exc:
        raise BadRequest(f"--image: {exc.message}") from None
    if "$ALGO" not in entrypoint:
        raise BadRequest("--entrypoint must name the code as $ALGO (e.g. 'python3 $ALGO')")
    return AlgorithmContainer(
        entrypoint=entrypoint, image=ref.name, tag=ref.tag or "", checksum=ref.digest or ""
    )


def trusted_entry(did: str, algo: DDO) -> dict[str, str]:
    """A trust list's entry for ``algo``: its files and, if it runs in an image, Ocean's
    containerSectionChecksum of that image's digest and entrypoint."""
    from atoll.images.trust import container_section_checksum

    if algo.metadata.type != "algorithm":
        raise BadRequest(f"{did} is not an algorithm")
    entry = {"did": did, "filesChecksum": algo.filesChecksum}
    info = algo.metadata.algorithm
    container = info.container if info is not None else None
    if container is not None and container.checksum:
        entry["containerSectionChecksum"] = container_section_checksum(
            container.entrypoint, container.checksum
        )
    return entry


@app.command("dataset")
def dataset(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Data files on the provider's host (they stay where they are), or URLs "
            "(https://...) and S3 objects (s3://bucket/key?region=R&endpoint=URL) the provider "
            "fetches once, as its operator allows; every location stays private"
        ),
    ],
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
    source_header: Annotated[
        list[str] | None,
        typer.Option(
            help="'Name: value' header sent with the URL files, e.g. a token (repeatable)"
        ),
    ] = None,
    s3_keys_from_env: Annotated[
        bool,
        typer.Option(
            help="Send this shell's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for the S3 files "
            "(without: the provider's own credentials, on buckets its operator allows)"
        ),
    ] = False,
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
    access = _access(source_header or [], s3_keys_from_env)
    with client(provider, key) as c:
        trusted = [trusted_entry(did, c.asset(did)) for did in trust_algorithm or []]
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
        ddo = c.publish(meta, files, policy, timeout, wei, access=offer, source_access=access)
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
    image: Annotated[
        str | None,
        typer.Option(
            help="Run in this image instead of the provider's host interpreter: "
            "registry/repository:tag (resolved to its digest once, now) or "
            "registry/repository@sha256:<digest>"
        ),
    ] = None,
    entrypoint: Annotated[
        str,
        typer.Option(help="With --image: the command that runs the code ($ALGO is its path)"),
    ] = "python3 $ALGO",
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Publish an algorithm so datasets can trust it by DID and checksum (and, with
    --image, by its image's digest and entrypoint)."""
    from atoll.cli.parameters import declared
    from atoll.models.ddo import AlgorithmInfo, Metadata

    params = declared(param or [], choice or [])
    files = _files([str(file)])
    container = image_container(image, entrypoint) if image else None
    meta = Metadata(
        name=name,
        description=description,
        author=author,
        license=license,
        type="algorithm",
        tags=tag or [],
        algorithm=AlgorithmInfo(consumerParameters=params, container=container),
    )
    with client(provider, key) as c:
        ddo = c.publish(meta, files)
    print_json(ddo.public_json()) if json else console.print(plain(ddo.id))
