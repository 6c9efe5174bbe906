"""The contracts' ABIs as shipped with the package (``vyper/abis.json``), so that a client
reads and calls the contracts without the Vyper compiler. ``python -m atoll.chain.interfaces``
writes the file again from the sources; a test holds it to what the compiler makes of them."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ABIS_FILE = Path(__file__).resolve().parent / "vyper" / "abis.json"


@functools.cache
def shipped_abis() -> Mapping[str, tuple[Mapping[str, Any], ...]]:
    """``{contract name: ABI}`` of every contract the chain layer deploys."""
    data = json.loads(ABIS_FILE.read_text(encoding="utf-8"))
    return {name: tuple(abi) for name, abi in data.items()}


def compiled_abis() -> dict[str, list[Mapping[str, Any]]]:
    """The ABIs the installed compiler makes of the sources (compiles what is not cached)."""
    from .compile import load_artifacts

    return {name: list(art.abi) for name, art in load_artifacts().items()}


def write_abis() -> None:
    ABIS_FILE.write_text(json.dumps(compiled_abis(), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_abis()
