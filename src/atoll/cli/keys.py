"""atoll keys: your identity, a local private key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atoll.cli.common import console, load_key
from atoll.cli.untrusted import markup
from atoll.errors import ConfigError
from atoll.home import default_home

app = typer.Typer(
    help="Create or show your key (your address signs every request).", no_args_is_help=True
)

PathOpt = Annotated[
    Path | None,
    typer.Option(
        "--key", envvar="ATOLL_KEY", help="Key file (default: $ATOLL_HOME/key)", show_default=False
    ),
]


@app.command("new")
def new(key: PathOpt = None) -> None:
    """Create a new private key (file mode 0600) and print its address."""
    path = key or default_home() / "key"
    if path.exists():
        raise ConfigError(f"{path} already exists; refusing to overwrite a key")
    from atoll.signing import Key

    k = Key.generate()
    k.save(path)
    console.print(k.address)


@app.command("show")
def show(key: PathOpt = None) -> None:
    """Print the address of your key (never the key itself)."""
    console.print(markup(load_key(key or default_home() / "key").address))
