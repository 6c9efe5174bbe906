"""atoll receipt: fetch and verify signed execution receipts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from atoll.cli.common import KeyOpt, ProviderOpt, client, console, err
from atoll.cli.untrusted import markup
from atoll.errors import BadRequest

app = typer.Typer(help="Fetch or verify a job's signed execution receipt.", no_args_is_help=True)


@app.command("get")
def get(
    job: Annotated[str, typer.Argument(help="The job id")],
    to: Annotated[Path, typer.Option("--to", help="File to write the receipt to")],
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Save a finished job's receipt (JSON, signed by the provider)."""
    with client(provider, key) as c:
        signed = c.receipt(job)
    to.write_text(json.dumps(signed.model_dump(mode="json"), indent=2))
    console.print(markup(str(to)))


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="The receipt (JSON)")],
    results: Annotated[
        Path | None, typer.Option(help="Directory with the result files to check")
    ] = None,
    chain_url: Annotated[
        str | None, typer.Option(help="JSON-RPC URL of the chain (default: the provider's)")
    ] = None,
    addresses: Annotated[
        Path | None, typer.Option(help="Address book JSON (default: the provider's)")
    ] = None,
    settle_timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for the keeper to record a job that just ended"),
    ] = 60.0,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Check the signature, the on-chain record and the files; say what does not match."""
    from atoll.chain.book import AddressBook
    from atoll.chain.contracts import Contracts
    from atoll.chain.light import LightChain
    from atoll.chain.records import ConditionState
    from atoll.models.receipt import SignedReceipt
    from atoll.sdk.verify import check_chain, check_container, check_files, check_signature

    try:
        signed = SignedReceipt.model_validate_json(file.read_text())
    except (OSError, ValueError):
        raise BadRequest(f"{file} is not a receipt") from None
    problems = check_signature(signed) + check_container(signed)
    if chain_url and addresses:
        book = AddressBook.load(addresses)
        rpc, dev = chain_url, None
    else:
        with client(provider, key, need_key=False) as c:
            info = c.chain_info()
        book = AddressBook.from_dict(info["addresses"])
        rpc, dev = chain_url or str(info["rpcUrl"]), bool(info["development"])
    contracts = Contracts(LightChain(rpc, dev=dev), book)
    # the keeper records a job's result a moment after it ends: a receipt fetched at once
    # would otherwise be reported as not on chain
    deadline = time.monotonic() + settle_timeout
    told = False
    for input in signed.receipt.inputs:
        try:
            aid = bytes.fromhex(input.agreementId.removeprefix("0x"))
        except ValueError:
            raise BadRequest(f"{file} names an agreement that is not hex") from None
        while aid and time.monotonic() < deadline:
            agreement = contracts.agreement(aid)
            if agreement is None or agreement.escrow.state is not ConditionState.UNFULFILLED:
                break
            if not told:
                err.print("waiting for the keeper to record the job on chain…")
                told = True
            time.sleep(0.2)
    problems += check_chain(signed, contracts)
    if results is not None:
        problems += check_files(signed, results)
    if problems:
        for p in problems:
            err.print(f"[red]✗[/red] {markup(p)}")
        raise typer.Exit(1)
    checked = "signature, chain record" + (", files" if results is not None else "")
    if signed.receipt.algorithm.container is not None:
        checked += ", image " + markup(signed.receipt.algorithm.container.image)
    job = markup(signed.receipt.jobId)
    console.print(f"[green]✓[/green] receipt of job {job} verifies ({checked})")
