"""Data roots: the directories the provider's operator lets publishers publish from.

A root is declared in settings as ``"/srv/data"`` (any publisher of this provider) or
``"/srv/alice=0xA…|0xB…"`` (only those publishers). A location is publishable when it lies
below a root its publisher may use and not inside ``ATOLL_HOME``; the location is stored with
the root's own links resolved, so that reaching it later never has to follow a link.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from atoll.storage.local_files import FileRefused, split

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return root == "" or path == root or path.startswith(root + "/")


@dataclass(frozen=True)
class DataRoot:
    path: str
    #: lower-case addresses; empty: every publisher of the provider
    publishers: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entry: str) -> DataRoot:
        """Raises ValueError with a message fit for a settings error."""
        path, sep, who = entry.strip().rpartition("=")
        if not sep:
            path, who = who, ""
        addresses = [a.strip() for a in who.split("|") if a.strip()]
        if sep and not addresses:
            raise ValueError(f"data root {entry!r}: no publisher address after '='")
        bad = [a for a in addresses if not _ADDRESS.fullmatch(a)]
        if bad:
            raise ValueError(f"data root {entry!r}: {bad[0]!r} is not an address")
        try:
            parts = split(path)
        except FileRefused:
            raise ValueError(f"data root {entry!r}: not a plain absolute path") from None
        return cls("/" + "/".join(parts), frozenset(a.lower() for a in addresses))

    def allows(self, publisher: str) -> bool:
        return not self.publishers or publisher.lower() in self.publishers


class DataRoots:
    def __init__(self, roots: Sequence[DataRoot], home: Path) -> None:
        self.roots = list(roots)
        self.home = os.path.realpath(home)

    @classmethod
    def from_settings(cls, entries: Sequence[str], home: Path) -> DataRoots:
        return cls([DataRoot.parse(e) for e in entries], home)

    def locate(self, publisher: str, location: str) -> str:
        """The stored form of ``location`` if ``publisher`` may publish it; FileRefused (a
        message that names no path) otherwise."""
        normal = "/" + "/".join(split(location))
        if not self.roots:
            raise FileRefused(
                "this provider declares no data roots: its operator lists the directories "
                "publishers may publish from as data_roots in settings.toml"
            )
        mine = [r for r in self.roots if r.allows(publisher)]
        if not mine:
            raise FileRefused("this provider declares no data root for this publisher")
        resolved = ""
        for root in mine:
            real = os.path.realpath(root.path)
            for base in (root.path, real):
                if _under(normal, base):
                    resolved = real.rstrip("/") + normal[len(base.rstrip("/")) :]
                    break
            if resolved:
                break
        if not resolved:
            raise FileRefused(
                "it is outside the data roots this provider lets this publisher publish from"
            )
        if _under(resolved, self.home) or _under(self.home, resolved):
            raise FileRefused("it is inside the provider's own directory")
        return resolved

    def covers(self, owner: str, stored: str) -> bool:
        """Whether a stored location is still below a root its owner may use."""
        try:
            return self.locate(owner, stored) == stored
        except FileRefused:
            return False
