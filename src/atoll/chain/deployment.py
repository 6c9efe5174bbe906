"""A provider's view of its chain: which chain, which deployment, and who pays for gas.

The embedded chain lives in ``$ATOLL_HOME/chain`` and is deployed at ``atoll init``; a node
by URL (``chain_url``) needs ``atoll chain deploy`` once. Either way the deployment's
addresses are kept in an address book in ``ATOLL_HOME``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from atoll.chain.base import Chain, dev_accounts
from atoll.chain.book import AddressBook
from atoll.chain.contracts import Contracts
from atoll.chain.errors import ChainError
from atoll.chain.records import ddo_checksum
from atoll.chain.units import ETHER
from atoll.errors import ConfigError
from atoll.signing import Key

#: what a development faucet hands out: gas money and tokens to pay for agreements
FAUCET_ETHER = 10 * ETHER
FAUCET_TOKENS = 100 * ETHER

# the provider's code imports these from here
__all__ = ["ChainNode", "address_of", "ddo_checksum", "fund_from_dev", "open_chain"]


def open_chain(chain_url: str, chain_file: Path) -> Chain:
    """The node by JSON-RPC at ``chain_url``, else the embedded chain kept in ``chain_file``
    (the settings' ``chain_url`` and ``chain_file``)."""
    if chain_url:
        from atoll.chain.light import LightChain

        return LightChain(chain_url)
    from atoll.chain.embedded import EmbeddedChain  # py-evm: only for the embedded chain

    return EmbeddedChain(chain_file)


@dataclass
class ChainNode:
    """The provider's deployment on its chain, with the key that pays its gas."""

    chain: Chain
    contracts: Contracts
    #: the provider's key: governance of a deployment it made, fulfils compute, pays gas
    key: bytes

    @classmethod
    def open(
        cls,
        chain_url: str,
        chain_file: Path,
        book_file: Path,
        key: bytes,
        chain: Chain | None = None,
    ) -> ChainNode:
        chain = chain or open_chain(chain_url, chain_file)
        if not book_file.exists():
            chain.close()
            raise ConfigError("no contracts deployed for this node: run `atoll chain deploy`")
        book = AddressBook.load(book_file)
        if book.chain_id != chain.chain_id:
            chain.close()
            raise ConfigError(
                f"the address book is for chain {book.chain_id}, the node is on "
                f"{chain.chain_id}: run `atoll chain deploy`"
            )
        return cls(chain, Contracts(chain, book), key)

    @staticmethod
    def deploy(chain: Chain, governance: bytes, book_file: Path) -> AddressBook:
        fund_from_dev(chain, [address_of(governance)])
        book = Contracts.deploy(chain, governance)
        book.save(book_file)
        return book

    def ensure_access(self, book_file: Path) -> None:
        """Give a deployment made before the data access service its contracts, once: the
        provider deploys them as the deployment's governance and keeps the new address book.
        A deployment governed by another key is refused with what to do."""
        book = self.contracts.book
        if book.has_access:
            return
        if book.governance.lower() != address_of(self.key).lower():
            raise ConfigError(
                "the contracts' deployment has no access template, and this provider's key "
                f"is not its governance ({book.governance}): have the governance add it, or "
                "run `atoll chain deploy --force`"
            )
        new = self.contracts.deploy_access(self.key)
        new.save(book_file)
        self.contracts = Contracts(self.chain, new)

    def now(self) -> int:
        """The chain's time. A quiet development node mines no blocks, so its latest block
        can lag the wall clock; a new block would carry at least the wall clock's time."""
        return max(self.chain.now(), int(time.time()))

    def faucet(self, address: str) -> None:
        """Give ``address`` gas money and tokens: development chains only."""
        if not self.chain.is_dev:
            raise ChainError("the faucet exists on development chains only")
        fund_from_dev(self.chain, [address])
        self.contracts.transfer(self.key, address, FAUCET_TOKENS)

    def close(self) -> None:
        self.chain.close()


def address_of(key: bytes) -> str:
    return Key(key).address


def fund_from_dev(chain: Chain, addresses: list[str]) -> None:
    """Top up ``addresses`` with ether from the first development account."""
    if not chain.is_dev:
        return
    bank = dev_accounts(1)[0]
    for address in addresses:
        if chain.balance(address) < FAUCET_ETHER // 2:
            chain.transact(bank, address, value=FAUCET_ETHER)
