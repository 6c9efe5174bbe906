"""atoll chain: the deployment, the node's chain and balances."""

from __future__ import annotations

from typing import Annotated

import typer

from atoll.chain.units import whole
from atoll.cli.common import (
    HomeOpt,
    JsonOpt,
    KeyOpt,
    ProviderOpt,
    client,
    console,
    need_provider,
    print_json,
)
from atoll.cli.untrusted import markup
from atoll.home import default_home

app = typer.Typer(
    help="Deploy the contracts, and see the chain and your balances.", no_args_is_help=True
)


@app.command("deploy")
def deploy(
    home: HomeOpt = None,
    force: Annotated[
        bool, typer.Option(help="Deploy again even if an address book exists")
    ] = False,
) -> None:
    """Deploy the contracts with the provider key (address book kept in ATOLL_HOME)."""
    need_provider()
    from atoll.chain.book import AddressBook
    from atoll.cli.serve import deploy as deploy_contracts
    from atoll.config import load_settings
    from atoll.errors import ConfigError
    from atoll.signing import Key

    settings = load_settings(home or default_home())
    if settings.address_book_file.exists() and not force:
        raise ConfigError("contracts are already deployed for this node (use --force to redo)")
    key = Key.load(settings.provider_key_file)
    deploy_contracts(
        settings.chain_url, settings.chain_file, settings.address_book_file, key, fund=[]
    )
    book = AddressBook.load(settings.address_book_file)
    for name, address in book.contracts().items():
        console.print(f"{name:<26} {markup(address)}")


@app.command("status")
def status(provider: ProviderOpt = None, key: KeyOpt = None, json: JsonOpt = False) -> None:
    """Show the provider's chain, its contracts and your balances."""
    with client(provider, key, need_key=False) as c:
        info = c.chain_info()
        balances = c.wallet.balances() if c.key is not None else None
    if json:
        print_json({**info, "balances": balances})
        return
    dev = " (development)" if info["development"] else ""
    console.print(f"chain id   {markup(str(info['chainId']))}{dev}")
    console.print(f"rpc        {markup(str(info['rpcUrl']))}")
    console.print(f"provider   {markup(str(info['providerAddress']))}")
    console.print(f"token      {markup(str(info['addresses']['token']))}")
    if balances is not None and c.key is not None:
        console.print(f"you        {c.key.address}")
        console.print(f"  ether    {whole(balances['ether']):.4f}")
        console.print(f"  tokens   {whole(balances['tokens']):.4f}")


@app.command("faucet")
def faucet(provider: ProviderOpt = None, key: KeyOpt = None) -> None:
    """Get gas money and tokens from the provider's faucet (development chains only)."""
    with client(provider, key) as c:
        got = c.faucet()
    console.print(
        f"{markup(str(got['address']))}: "
        f"{whole(got['ether']):.2f} ether, {whole(got['tokens']):.2f} tokens"
    )
