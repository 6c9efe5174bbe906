"""atoll init / serve / operator serve: running a provider node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atoll.cli.common import console, env_home
from atoll.config import load_settings
from atoll.db import connect
from atoll.signing import Key

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home", envvar="ATOLL_HOME", help="Node directory [default: ~/.atoll]", show_default=False
    ),
]

operator_app = typer.Typer(help="The Operator-Service on its own.", no_args_is_help=True)


def init_home(home: Path) -> tuple[Key, Key]:
    """Create the node directory, keys, settings and store; keep whatever already exists."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)
    keys = []
    for name in ("provider.key", "key"):
        path = home / name
        if not path.exists():
            Key.generate().save(path)
        keys.append(Key.load(path))
    provider, user = keys
    settings_file = home / "settings.toml"
    if not settings_file.exists():
        settings_file.write_text(
            "# Atoll node settings; ATOLL_<NAME> environment variables override these.\n"
            f'publishers = ["{user.address}"]\n'
        )
    settings = load_settings(home)
    connect(settings.db_url).dispose()
    if not settings.chain_url and not settings.address_book_file.exists():
        deploy_embedded(settings.chain_file, settings.address_book_file, provider, [user.address])
    return provider, user


def deploy_embedded(chain_file: Path, book_file: Path, provider: Key, fund: list[str]) -> None:
    """Deploy the contracts on the node's embedded chain; fund the given addresses."""
    from atoll.chain.embedded import EmbeddedChain
    from atoll.chain.node import ChainNode

    chain = EmbeddedChain(chain_file)
    try:
        ChainNode.deploy(chain, provider.private_key, book_file)
        node = ChainNode.open("", chain_file, book_file, provider.private_key, chain=chain)
        for address in fund:
            node.faucet(address)
    finally:
        chain.close()


def init(home: HomeOpt = None) -> None:
    """Create ATOLL_HOME: settings, the provider key, your key and the store."""
    path = home or env_home()
    provider, user = init_home(path)
    console.print(f"node directory  {path}")
    console.print(f"provider        {provider.address}")
    console.print(f"your address    {user.address}")


def serve(
    home: HomeOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: 8030]")] = None,
) -> None:
    """Run the provider with its operator and engine (127.0.0.1:8030 by default)."""
    from atoll.node import build_provider
    from atoll.server import serve as run

    settings = load_settings(home or env_home(), host=host, port=port)
    node = build_provider(settings)
    console.print(f"provider {node.key.address} on {settings.endpoint}")
    run(node.app(), settings.host, settings.port)


@operator_app.command("serve")
def operator_serve(
    home: HomeOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8031,
    allow: Annotated[
        list[str] | None,
        typer.Option(help="Address allowed to call (repeatable) [default: operator_allowed]"),
    ] = None,
) -> None:
    """Run the Operator-Service and engine alone; only allowed, signed callers get in."""
    from atoll.node import operator_app as build
    from atoll.server import serve as run

    settings = load_settings(home or env_home())
    app = build(settings, set(allow or settings.operator_allowed))
    console.print(f"operator on http://{host}:{port}")
    run(app, host, port)
