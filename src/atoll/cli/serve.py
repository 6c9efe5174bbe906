"""atoll init / serve / operator serve: running a provider node. Each command checks that the
provider's part is installed, then imports it."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from atoll.cli.common import HomeOpt, console, need_provider
from atoll.cli.exits import ERROR
from atoll.cli.untrusted import markup
from atoll.config import load_settings
from atoll.home import default_home
from atoll.sdk.endpoint import local_url, recorded

if TYPE_CHECKING:
    from atoll.signing import Key

operator_app = typer.Typer(help="The Operator-Service on its own.", no_args_is_help=True)


def init_home(
    home: Path,
    chain_url: str = "",
    data_roots: list[str] | None = None,
    own_data_root: str = "",
) -> tuple[Key, Key]:
    """Create the node directory, keys, settings and store, and deploy the contracts on the
    embedded chain (or on ``chain_url``'s, recorded in the settings); keep whatever already
    exists. New settings declare ``data_roots`` (entries as in
    :class:`~atoll.config.Settings`) and ``own_data_root``, for the node's own user key only,
    as the directories publishers may publish from."""
    from atoll.signing import Key

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
    own = [f"{own_data_root}={user.address}"] if own_data_root else []
    if not settings_file.exists():
        settings_file.write_text(
            "# Atoll node settings; ATOLL_<NAME> environment variables override these.\n"
            f'publishers = ["{user.address}"]\n'
            + (f'chain_url = "{chain_url}"\n' if chain_url else "")
            + _roots_line([*(data_roots or []), *own])
        )
    from atoll.db import connect

    settings = load_settings(home)
    connect(settings.db_url).dispose()
    if not settings.address_book_file.exists() and (chain_url or not settings.chain_url):
        deploy(
            settings.chain_url,
            settings.chain_file,
            settings.address_book_file,
            provider,
            fund=[user.address],
        )
    return provider, user


def _roots_line(entries: list[str]) -> str:
    return f"data_roots = {json.dumps(entries)}\n" if entries else ""


def deploy(
    chain_url: str, chain_file: Path, book_file: Path, provider: Key, fund: list[str]
) -> None:
    """Deploy the contracts with the provider key; on a development chain, give the
    addresses in ``fund`` gas money and tokens."""
    from atoll.chain.deployment import ChainNode, open_chain

    chain = open_chain(chain_url, chain_file)
    try:
        ChainNode.deploy(chain, provider.private_key, book_file)
        node = ChainNode.open(chain_url, chain_file, book_file, provider.private_key, chain=chain)
        if chain.is_dev:
            for address in fund:
                node.faucet(address)
    finally:
        chain.close()


def init(
    home: HomeOpt = None,
    chain_url: Annotated[
        str, typer.Option(help="JSON-RPC URL of an EVM node (default: the embedded chain)")
    ] = "",
    data_root: Annotated[
        list[str] | None,
        typer.Option(
            help="Directory publishers may publish files from, as DIR or DIR=ADDRESS|ADDRESS "
            "(repeatable) (default: the current directory, for your address only)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create ATOLL_HOME: settings, the provider key, your key, the store and the contracts."""
    need_provider()
    path = home or default_home()
    existed = (path / "settings.toml").exists()
    # without roots given: your own working files, and nobody else's, until the operator
    # declares more
    provider, user = init_home(
        path, chain_url, data_root, own_data_root="" if data_root else os.getcwd()
    )
    console.print(f"node directory  {markup(str(path))}")
    console.print(f"provider        {provider.address}")
    console.print(f"your address    {user.address}")
    if not existed:
        for entry in load_settings(path).data_roots:
            console.print(f"data root       {markup(entry)}")


def serve(
    home: HomeOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: 8030)")] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="critical, error, warning, info (one line per request) or debug "
            "(default: the log_level setting, info)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the provider with its operator and engine (127.0.0.1:8030 by default)."""
    need_provider()
    tune_malloc()
    from atoll.node import build_provider
    from atoll.server import bind, bound_port, check_log_level
    from atoll.server import serve as run

    settings = load_settings(home or default_home(), host=host, port=port, log_level=log_level)
    check_log_level(settings.log_level)  # before the node starts, not after
    sock = bind(settings.host, settings.port)
    if settings.port == 0:
        # the port the system chose is the one recorded, advertised and signed into receipts
        settings = replace(settings, port=bound_port(sock))
    node = build_provider(settings)
    node.claim_sandbox()
    console.print(f"provider {node.key.address} on {markup(settings.endpoint)}")
    # uvicorn stops gracefully on SIGTERM, then raises it again: let it end as an exit
    # rather than a kill, so that the record below is removed on the way out
    signal.signal(signal.SIGTERM, _stop)
    # recorded so that the CLI, with this ATOLL_HOME, finds the provider on whatever port
    with recorded(settings.home, local_url(settings.host, settings.port)):
        try:
            run(node.app(), settings.host, settings.port, settings.log_level, sock)
        except SystemExit as exc:
            # the server has said why in one line (a port in use); the status is ours
            if exc.code:
                raise typer.Exit(ERROR) from None


def tune_malloc() -> None:
    """Cap glibc's malloc arenas and fix its mmap threshold (:mod:`atoll.memory`) before the
    node is built: building it starts threads (the engine's runners, the rate limiter's
    expiry), and glibc keeps every arena those threads made before the cap, handing them out
    to later threads in turn: capped only once the server ran, it still had five. Building it
    also imports a JSON table big enough to raise the threshold."""
    from atoll.memory import tune_malloc as tune

    tune()


def _stop(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


@operator_app.command("serve")
def operator_serve(
    home: HomeOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8031,
    allow: Annotated[
        list[str] | None,
        typer.Option(help="Address allowed to call (repeatable) (default: operator_allowed)"),
    ] = None,
) -> None:
    """Run the Operator-Service and engine alone; only allowed, signed callers get in."""
    need_provider()
    tune_malloc()
    from atoll.node import operator_app as build
    from atoll.server import serve as run

    settings = load_settings(home or default_home())
    app = build(settings, set(allow or settings.operator_allowed))
    console.print(f"operator on http://{markup(host)}:{port}")
    run(app, host, port)
