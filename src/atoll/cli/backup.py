"""atoll backup / restore: a consistent copy of a node's store and chain, and its return."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atoll.cli.common import HomeOpt, console, need_provider
from atoll.config import load_settings
from atoll.home import default_home


def backup(
    dest: Annotated[Path, typer.Argument(help="New (or empty) directory for the backup")],
    home: HomeOpt = None,
) -> None:
    """Copy the store and the chain while the node runs (a consistent snapshot of each)."""
    need_provider()
    from atoll.backup import take_backup

    report = take_backup(load_settings(home or default_home()), dest)
    console.print(f"backup in {dest} (store: {report.store}, chain: {report.chain})")
    for note in report.notes:
        console.print(f"note: {note}")


def restore(
    src: Annotated[Path, typer.Argument(help="A directory made by `atoll backup`")],
    home: HomeOpt = None,
) -> None:
    """Put a backup's store and chain in place of the node's (the node must be stopped)."""
    need_provider()
    from atoll.backup import restore_backup

    report = restore_backup(load_settings(home or default_home()), src)
    console.print(f"restored from {src} (store: {report.store}, chain: {report.chain})")
    for note in report.notes:
        console.print(f"note: {note}")
