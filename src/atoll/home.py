"""Where a node and a client keep their files, and the port a node listens on by default.

Kept apart from :mod:`atoll.config` so that the client finds its key and its provider without
loading the node's settings.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PORT = 8030


def default_home() -> Path:
    """``$ATOLL_HOME``, else ``~/.atoll``: the node's directory, and the client's key."""
    return Path(os.environ.get("ATOLL_HOME") or Path.home() / ".atoll").expanduser()
