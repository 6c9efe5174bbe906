"""Shared CLI plumbing: options, the client, and errors printed as one line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from atoll.config import DEFAULT_PORT, default_home
from atoll.sdk import ProviderClient
from atoll.signing import Key

console = Console()
err = Console(stderr=True)

ProviderOpt = Annotated[
    str | None,
    typer.Option(
        "--provider",
        envvar="ATOLL_PROVIDER_URL",
        help=f"Provider URL (default: http://127.0.0.1:{DEFAULT_PORT})",
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


def client(provider: str | None, key_file: Path | None, need_key: bool = True) -> ProviderClient:
    url = provider or f"http://127.0.0.1:{DEFAULT_PORT}"
    path = key_file or default_home() / "key"
    key = Key.load(path) if need_key or path.exists() else None
    return ProviderClient(url, key)


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def env_home() -> Path:
    return Path(os.environ.get("ATOLL_HOME") or default_home())
