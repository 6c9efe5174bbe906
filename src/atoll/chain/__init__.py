"""Atoll's on-chain layer: contracts, chain backends and a typed API over them.

- :class:`Chain` is the one interface to a chain; :class:`EmbeddedChain` runs an
  EVM in this process, persisted in a SQLite file, :class:`RpcChain` talks to any
  JSON-RPC node. :func:`open_chain` picks one.
- :class:`Contracts` deploys and drives the contracts (DID registry, templates,
  agreements and their conditions, the payment token).
- Every revert, on every backend, raises :class:`ChainRevert` with its reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import (
    DEV_MNEMONIC,
    Chain,
    Log,
    Receipt,
    Signer,
    as_account,
    dev_accounts,
)
from .compile import CONTRACT_NAMES, Artifact, default_cache_dir, load_artifact, load_artifacts
from .contracts import (
    AddressBook,
    Agreement,
    ChainEvent,
    Condition,
    ConditionState,
    Contracts,
    DidRecord,
    TemplateState,
    did_bytes,
    new_agreement_id,
)
from .embedded import EmbeddedChain
from .errors import ChainError, ChainRevert, ChainTimeout, ChainUnavailable

if TYPE_CHECKING:
    from .rpc import RpcChain


def __getattr__(name: str) -> Any:
    # web3 (behind RpcChain) costs a provider on its embedded chain ~20 MB it never uses
    if name == "RpcChain":
        from .rpc import RpcChain

        return RpcChain
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CONTRACT_NAMES",
    "DEV_MNEMONIC",
    "AddressBook",
    "Agreement",
    "Artifact",
    "Chain",
    "ChainError",
    "ChainEvent",
    "ChainRevert",
    "ChainTimeout",
    "ChainUnavailable",
    "Condition",
    "ConditionState",
    "Contracts",
    "DidRecord",
    "EmbeddedChain",
    "Log",
    "Receipt",
    "RpcChain",
    "Signer",
    "TemplateState",
    "as_account",
    "default_cache_dir",
    "default_chain_path",
    "dev_accounts",
    "did_bytes",
    "load_artifact",
    "load_artifacts",
    "new_agreement_id",
    "open_chain",
]


def default_chain_path() -> Path:
    """``$ATOLL_HOME/chain/chain.sqlite`` (``ATOLL_HOME`` defaults to ``~/.atoll``)."""
    home = os.environ.get("ATOLL_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".atoll"
    return base / "chain" / "chain.sqlite"


def open_chain(url: str | None = None, *, path: str | os.PathLike[str] | None = None) -> Chain:
    """A JSON-RPC chain at ``url`` (or ``$ATOLL_CHAIN_URL``), else the embedded one.

    The embedded chain lives at ``path`` (default :func:`default_chain_path`).
    """
    target = url or os.environ.get("ATOLL_CHAIN_URL")
    if target:
        from .rpc import RpcChain

        return RpcChain(target)
    return EmbeddedChain(path if path is not None else default_chain_path())
