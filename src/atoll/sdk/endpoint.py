"""Where the local provider listens: ``atoll serve`` records its URL in ATOLL_HOME while it
runs, so that the other commands find a provider started with ``--port`` or ``--host``
without being told."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from atoll.home import DEFAULT_PORT

RECORD = "provider.json"
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"

# an address that listens on every interface is reached locally through loopback
_ANY = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def local_url(host: str, port: int) -> str:
    host = _ANY.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def recorded(home: Path, url: str) -> Iterator[None]:
    """Record ``url`` as this home's provider for as long as the block runs."""
    path = home / RECORD
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    tmp.replace(path)
    try:
        yield
    finally:
        # another server may have taken the record over since: leave its record alone
        if _read(path).get("pid") == os.getpid():
            path.unlink(missing_ok=True)


def provider_url(home: Path) -> str:
    """The URL of the provider serving ``home`` now, or the default one."""
    record = _read(home / RECORD)
    url, pid = record.get("url"), record.get("pid")
    if isinstance(url, str) and isinstance(pid, int) and _alive(pid):
        return url
    return DEFAULT_URL


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: int) -> bool:
    # a record left behind by a server killed outright names a process that is gone
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
