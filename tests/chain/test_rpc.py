"""JSON-RPC backend and the anvil helper."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from atoll.chain import ChainError, ChainUnavailable, LightChain, open_chain
from atoll.chain.anvil import Anvil, find_anvil
from atoll.chain.embedded import EmbeddedChain


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_node_is_chain_unavailable() -> None:
    with pytest.raises(ChainUnavailable, match="no JSON-RPC node"):
        LightChain(f"http://127.0.0.1:{_closed_port()}", request_timeout=2)


def test_open_chain_picks_url_or_embedded(anvil_url: str, tmp_path: Path) -> None:
    embedded = open_chain("", tmp_path / "c.sqlite")
    assert isinstance(embedded, EmbeddedChain)
    embedded.close()
    rpc = open_chain(anvil_url, tmp_path / "c.sqlite")
    assert isinstance(rpc, LightChain) and rpc.chain_id == 31337 and rpc.is_dev
    rpc.close()


def test_time_travel_is_refused_on_a_non_development_chain(anvil_url: str) -> None:
    chain = LightChain(anvil_url, dev=False)
    with pytest.raises(ChainError, match="development chains"):
        chain.increase_time(10)
    with pytest.raises(ChainError, match="development chains"):
        chain.mine()


def test_anvil_helper_stops_its_node() -> None:
    if find_anvil() is None:
        pytest.skip("anvil is not installed")
    node = Anvil()
    url = node.start()
    assert LightChain(url).block_number() == 0
    node.stop()
    with pytest.raises(ChainUnavailable):
        LightChain(url, request_timeout=2)


def test_missing_anvil_fails_when_required(tmp_path: Path) -> None:
    """With ATOLL_REQUIRE_ANVIL=1 a missing anvil is a failure, not a skip."""
    env = dict(os.environ, ATOLL_ANVIL=str(tmp_path / "no-anvil"), ATOLL_REQUIRE_ANVIL="1")
    test = "tests/chain/test_rpc.py::test_time_travel_is_refused_on_a_non_development_chain"
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "ATOLL_REQUIRE_ANVIL=1" in run.stdout
    env.pop("ATOLL_REQUIRE_ANVIL")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", test],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and "skipped" in run.stdout, run.stdout + run.stderr
