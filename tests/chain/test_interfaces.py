"""The ABIs shipped for clients are the ones the compiler makes of the sources now."""

from __future__ import annotations

import json
from pathlib import Path

from atoll.chain import CONTRACT_NAMES, load_artifacts
from atoll.chain.interfaces import ABIS_FILE, shipped_abis


def test_the_shipped_abis_are_the_compiled_ones(contract_cache: Path) -> None:
    compiled = {n: list(a.abi) for n, a in load_artifacts(cache_dir=contract_cache).items()}
    shipped = json.loads(ABIS_FILE.read_text())
    assert set(shipped) == set(CONTRACT_NAMES)
    # a mismatch: run `python -m atoll.chain.interfaces` after changing a contract
    assert shipped == json.loads(json.dumps(compiled))
    assert {n: list(a) for n, a in shipped_abis().items()} == shipped
