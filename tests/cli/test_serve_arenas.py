"""``atoll serve`` caps glibc's malloc arenas and fixes its mmap threshold before it builds the
node (atoll.memory): the node's threads start while it is built, and arenas made before the cap
are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoll import memory, node
from atoll.cli import serve as serve_cli
from atoll.cli.serve import init_home


class _Built(Exception):
    pass


def test_serve_tunes_malloc_before_the_node_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    init_home(home, own_data_root=str(tmp_path / "data"))
    calls: list[str] = []
    monkeypatch.setattr(memory, "limit_malloc_arenas", lambda: calls.append("cap") or True)
    monkeypatch.setattr(memory, "fix_mmap_threshold", lambda: calls.append("threshold") or True)

    def build(*_args: object, **_kwargs: object) -> None:
        calls.append("build")
        raise _Built

    monkeypatch.setattr(node, "build_provider", build)
    with pytest.raises(_Built):
        serve_cli.serve(home=home, host="127.0.0.1", port=0, log_level="warning")
    assert calls == ["cap", "threshold", "build"]
