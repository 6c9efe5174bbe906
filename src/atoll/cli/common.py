"""Shared CLI plumbing: options, the client, and the consoles.

Commands import the SDK and the node's parts inside their bodies: ``atoll --help`` and a
command that only talks to a provider load neither the node nor anything they do not use.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from atoll.errors import ConfigError
from atoll.sdk.endpoint import DEFAULT_URL

if TYPE_CHECKING:
    from atoll.sdk import ProviderClient
    from atoll.signing import Key

# soft_wrap: a line longer than the terminal (an id, a path) is never broken in two, so it can
# be copied whole; emoji off: ":name:" in a publisher's text stays as written
console = Console(soft_wrap=True, emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)

ProviderOpt = Annotated[
    str | None,
    typer.Option(
        "--provider",
        envvar="ATOLL_PROVIDER_URL",
        help=f"Provider URL (default: the one `atoll serve` runs, else {DEFAULT_URL})",
        show_default=False,
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key",
        envvar="ATOLL_KEY",
        help="Your private key file (default: $ATOLL_HOME/key)",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home", envvar="ATOLL_HOME", help="Node directory (default: ~/.atoll)", show_default=False
    ),
]

#: what running a node needs beyond the client, by import name (``atoll[provider]``)
PROVIDER_MODULES = ("fastapi", "uvicorn", "sqlalchemy", "alembic", "eth", "vyper", "eth_account")


def need_provider() -> None:
    """Refuse, in one line, a node command where only the client is installed."""
    missing = [m for m in PROVIDER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            "this command runs a node, which needs more than the client: "
            "pip install 'atoll[provider]'"
        )


def client(provider: str | None, key_file: Path | None, need_key: bool = True) -> ProviderClient:
    from atoll.sdk import ProviderClient

    return ProviderClient.from_env(provider, key_file, need_key=need_key)


def load_key(path: Path) -> Key:
    from atoll.sdk.client import load_key

    return load_key(path)


def print_json(data: Any) -> None:
    # ensure_ascii: controls and bidi overrides in the data stay escaped, as JSON writes them
    console.print_json(json.dumps(data, default=str), ensure_ascii=True)
