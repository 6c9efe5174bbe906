"""Node directories for tests, made quickly: :func:`init_home` as ``atoll.cli.serve`` has it,
but the contracts are deployed on the embedded chain once per test process, not once per node.

A new node directory on the embedded chain gets a copy of a prepared one (its keys, its chain
with the contracts deployed and the user key funded, its address book and its migrated
store); the real ``init_home`` then writes its settings and keeps the rest, as it does for any
existing directory. A few prepared directories are handed out in turn, so that the nodes one
test makes (a provider and its operator, say) still have keys of their own. Anything else (a
chain URL, a store or chain named by the environment, a directory that already holds
something) goes through the real ``init_home`` unchanged.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
import threading
from pathlib import Path

from atoll.cli.serve import init_home as _init_home
from atoll.signing import Key

#: how many prepared directories are handed out in turn: consecutive nodes differ in keys
TEMPLATES = 3

_lock = threading.Lock()
_turn = itertools.count()
_templates: dict[int, Path] = {}


def _template(n: int) -> Path:
    with _lock:
        if n not in _templates:
            root = Path(tempfile.mkdtemp(prefix="atoll-test-home-"))
            atexit.register(shutil.rmtree, root, ignore_errors=True)
            _init_home(root / "home")
            _templates[n] = root / "home"
        return _templates[n]


def _default_chain_and_store() -> bool:
    return not os.environ.get("ATOLL_CHAIN_URL") and not os.environ.get("ATOLL_DATABASE_URL")


def init_home(
    home: Path,
    chain_url: str = "",
    data_roots: list[str] | None = None,
    own_data_root: str = "",
) -> tuple[Key, Key]:
    """:func:`atoll.cli.serve.init_home`, from a prepared copy where it can be."""
    fresh = not home.exists() or not any(home.iterdir())
    if fresh and not chain_url and _default_chain_and_store():
        template = _template(next(_turn) % TEMPLATES)
        # all but the settings, which name this directory's data roots
        ignore = shutil.ignore_patterns("settings.toml")
        shutil.copytree(template, home, ignore=ignore, dirs_exist_ok=True)
    return _init_home(home, chain_url, data_roots, own_data_root)
