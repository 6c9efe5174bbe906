"""Fixtures for the chain tests: every conformance test runs on the embedded EVM and on anvil.

Anvil (npm ``@foundry-rs/anvil``) is started once per session on a free loopback
port. Without it the anvil cases skip, unless ``ATOLL_REQUIRE_ANVIL=1`` (CI),
where they fail instead. Contracts are compiled once per run into a
temporary cache (shared by the processes of ``pytest -n``).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from atoll.chain import (
    Chain,
    Contracts,
    EmbeddedChain,
    LightChain,
    dev_accounts,
    did_bytes,
    load_artifacts,
)

BACKENDS = ["embedded", "anvil"]


@pytest.fixture(scope="session")
def contract_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # one cache for all the processes of a run (pytest -n): the first compiles, under a lock,
    # and the others read what it wrote
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / "contracts"
    with (root / "contracts.lock").open("a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path.mkdir(exist_ok=True)
        load_artifacts(cache_dir=path)
    return path


def _open(kind: str, request: pytest.FixtureRequest, tmp: Path) -> Chain:
    if kind == "embedded":
        return EmbeddedChain(tmp / "chain.sqlite")
    url = request.getfixturevalue("anvil_url")
    return LightChain(url)


@dataclass
class Env:
    """A deployment on one backend, with named development accounts."""

    kind: str
    chain: Chain
    c: Contracts
    gov: LocalAccount
    publisher: LocalAccount
    provider: LocalAccount
    consumer: LocalAccount
    stranger: LocalAccount
    cache: Path

    def new_did(self, providers: tuple[str, ...] | None = None) -> bytes:
        """A freshly registered DID owned by ``publisher``, served by ``provider``."""
        did = did_bytes(os.urandom(32))
        plist = [self.provider.address] if providers is None else list(providers)
        self.c.register_did(self.publisher, did, b"\x01" * 32, plist)
        return did

    def fresh_account(self, ether: int = 10**18) -> LocalAccount:
        """A new account with some ether for gas and no tokens."""
        acct: LocalAccount = Account.create()
        self.chain.transact(self.gov, acct.address, value=ether)
        return acct

    def locked_agreement(
        self, price: int = 10**18, timeout: int = 3600, max_jobs: int = 1
    ) -> bytes:
        """An agreement on a new DID with its payment locked."""
        did = self.new_did()
        aid = self.c.create_agreement(self.consumer, did, price, max_jobs=max_jobs, timeout=timeout)
        self.c.lock_payment(self.consumer, aid)
        return aid


@pytest.fixture(scope="session", params=BACKENDS)
def env(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    contract_cache: Path,
) -> Iterator[Env]:
    kind = str(request.param)
    chain = _open(kind, request, tmp_path_factory.mktemp(kind))
    gov, publisher, provider, consumer, stranger = dev_accounts()[:5]
    book = Contracts.deploy(chain, gov, cache_dir=contract_cache)
    c = Contracts(chain, book, cache_dir=contract_cache)
    c.faucet(consumer, 1_000 * 10**18)
    try:
        yield Env(kind, chain, c, gov, publisher, provider, consumer, stranger, contract_cache)
    finally:
        chain.close()
