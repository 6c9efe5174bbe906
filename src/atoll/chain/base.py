"""The narrow interface every chain backend implements, and its value types.

Transactions are always signed here, from local private keys (eth-account), so
the same code drives the embedded EVM and any JSON-RPC node.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

from atoll.signing import Key, checksum_address

from .units import ETHER

if TYPE_CHECKING:
    # eth-account is imported where an account is made: a client that only reads the chain
    # or signs with a bare key never pays for it
    from eth_account.signers.local import LocalAccount

#: A private key (hex string or 32 bytes) or an eth-account ``LocalAccount``.
Signer: TypeAlias = "LocalAccount | str | bytes"

#: Topic filter per position: one value, any of several, or ``None`` for any.
TopicFilter: TypeAlias = bytes | Sequence[bytes] | None

#: Chain ids treated as development chains (faucet, time travel) unless told.
DEV_CHAIN_IDS = frozenset({1337, 31337})
#: The well-known development mnemonic (anvil's and hardhat's default accounts).
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_COUNT = 10
#: Ether given to each development account in a new embedded chain (10,000 ETH).
DEV_BALANCE = 10_000 * ETHER


@dataclass(frozen=True)
class Log:
    """One event log as emitted on chain."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    tx_hash: bytes
    tx_index: int
    log_index: int


@dataclass(frozen=True)
class Receipt:
    """The outcome of a mined, successful transaction."""

    tx_hash: bytes
    block_number: int
    gas_used: int
    status: int
    contract_address: str | None
    logs: tuple[Log, ...]


@runtime_checkable
class Chain(Protocol):
    """What the rest of Atoll needs from a chain.

    Every method raises :class:`~atoll.chain.errors.ChainRevert` when the EVM
    reverts, with the revert reason, on every backend. ``transact`` waits for
    the receipt; a reverting transaction is refused before it is mined where the
    backend can tell (gas estimation / the embedded EVM), so it costs no nonce.
    """

    @property
    def chain_id(self) -> int: ...

    @property
    def is_dev(self) -> bool:
        """True on development chains (faucet and time travel allowed)."""
        ...

    def block_number(self) -> int: ...

    def now(self) -> int:
        """The chain's time in seconds: what the next block's timestamp is likely to be."""
        ...

    def block_timestamp(self, block_number: int) -> int:
        """The timestamp of a mined block."""
        ...

    def accounts(self) -> list[str]:
        """Addresses the chain knows as funded development accounts (may be empty)."""
        ...

    def balance(self, address: str) -> int: ...

    def nonce(self, address: str) -> int: ...

    def code(self, address: str) -> bytes: ...

    def call(self, to: str, data: bytes, *, sender: str | None = None) -> bytes:
        """Run a read-only call against the latest state; returns the output."""
        ...

    def send(
        self,
        signer: Signer,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
    ) -> bytes:
        """Sign and submit a transaction (``to=None`` deploys); returns its hash."""
        ...

    def wait_for_receipt(self, tx_hash: bytes, timeout: float = 120.0) -> Receipt:
        """The receipt of ``tx_hash``; raises ChainRevert if it failed."""
        ...

    def transact(
        self,
        signer: Signer,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
    ) -> Receipt:
        """``send`` then ``wait_for_receipt``."""
        ...

    def get_logs(
        self,
        from_block: int,
        to_block: int,
        *,
        address: str | Sequence[str] | None = None,
        topics: Sequence[TopicFilter] | None = None,
    ) -> list[Log]:
        """Logs in the inclusive block range, in chain order. Keep ranges bounded."""
        ...

    def increase_time(self, seconds: int) -> None:
        """Development chains only: move the chain's clock forward and mine a block."""
        ...

    def mine(self, blocks: int = 1) -> None:
        """Development chains only: mine empty blocks."""
        ...

    def close(self) -> None: ...


def as_account(signer: Signer) -> LocalAccount:
    """A ``LocalAccount`` from a key or an account."""
    from eth_account import Account
    from eth_account.signers.local import LocalAccount

    if isinstance(signer, LocalAccount):
        return signer
    account: LocalAccount = Account.from_key(signer)
    return account


def signer_address(signer: Signer) -> str:
    """The address of a signer, without making an account of a bare key."""
    if isinstance(signer, str | bytes):
        raw = bytes.fromhex(signer.removeprefix("0x")) if isinstance(signer, str) else signer
        return Key(raw).address
    return str(signer.address)


@functools.cache
def dev_accounts(count: int = DEV_ACCOUNT_COUNT) -> tuple[LocalAccount, ...]:
    """The development accounts of :data:`DEV_MNEMONIC` (same keys as anvil's)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    out: list[LocalAccount] = []
    for i in range(count):
        acct: LocalAccount = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        out.append(acct)
    return tuple(out)


def checksum(address: str | bytes) -> str:
    return checksum_address(address.hex() if isinstance(address, bytes) else address)


def topic_matches(flt: TopicFilter, value: bytes) -> bool:
    if flt is None:
        return True
    if isinstance(flt, bytes | bytearray):
        return bytes(flt) == value
    return value in {bytes(v) for v in flt}
