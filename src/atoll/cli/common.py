"""Shared CLI plumbing: options, the client, and the consoles."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from atoll.cli.endpoint import DEFAULT_URL, provider_url
from atoll.config import default_home
from atoll.errors import AuthError
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


def client(provider: str | None, key_file: Path | None, need_key: bool = True) -> ProviderClient:
    url = provider or provider_url(env_home())
    path = key_file or default_home() / "key"
    key = load_key(path) if need_key or path.exists() else None
    return ProviderClient(url, key)


def load_key(path: Path) -> Key:
    try:
        return Key.load(path)
    except OSError as exc:
        # a directory, an unreadable file: the path is the user's own, so naming it helps
        raise AuthError(f"cannot read the key file {path} ({exc.strerror})") from None


def print_json(data: Any) -> None:
    # ensure_ascii: controls and bidi overrides in the data stay escaped, as JSON writes them
    console.print_json(json.dumps(data, default=str), ensure_ascii=True)


def env_home() -> Path:
    return Path(os.environ.get("ATOLL_HOME") or default_home())
