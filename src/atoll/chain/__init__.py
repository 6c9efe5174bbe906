"""Atoll's on-chain layer: contracts, chain backends and a typed API over them.

- :class:`Chain` is the one interface to a chain; :class:`EmbeddedChain` runs an
  EVM in this process, persisted in a SQLite file; :class:`LightChain` talks to any
  JSON-RPC node (the client's and, by URL, the provider's). :func:`open_chain` picks the
  provider's.
- :class:`Contracts` deploys and drives the contracts (DID registry, templates,
  agreements and their conditions, the payment token).
- Every revert, on every backend, raises :class:`ChainRevert` with its reason.

Names are imported on first use: a client that reads one agreement never loads the
embedded EVM or the compiler.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import DEV_MNEMONIC, Chain, Log, Receipt, Signer, as_account, dev_accounts
    from .book import AddressBook
    from .compile import (
        CONTRACT_NAMES,
        Artifact,
        default_cache_dir,
        load_artifact,
        load_artifacts,
    )
    from .contracts import Contracts
    from .deployment import open_chain
    from .embedded import EmbeddedChain
    from .errors import ChainError, ChainRevert, ChainTimeout, ChainUnavailable
    from .light import LightChain
    from .records import (
        Agreement,
        ChainEvent,
        Condition,
        ConditionState,
        DidRecord,
        TemplateState,
        did_bytes,
        new_agreement_id,
    )

_HOMES = {
    "base": ("DEV_MNEMONIC", "Chain", "Log", "Receipt", "Signer", "as_account", "dev_accounts"),
    "book": ("AddressBook",),
    "compile": (
        "CONTRACT_NAMES",
        "Artifact",
        "default_cache_dir",
        "load_artifact",
        "load_artifacts",
    ),
    "contracts": ("Contracts",),
    "deployment": ("open_chain",),
    "embedded": ("EmbeddedChain",),
    "errors": ("ChainError", "ChainRevert", "ChainTimeout", "ChainUnavailable"),
    "light": ("LightChain",),
    "records": (
        "Agreement",
        "ChainEvent",
        "Condition",
        "ConditionState",
        "DidRecord",
        "TemplateState",
        "did_bytes",
        "new_agreement_id",
    ),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
    "LightChain",
    "Log",
    "Receipt",
    "Signer",
    "TemplateState",
    "as_account",
    "default_cache_dir",
    "dev_accounts",
    "did_bytes",
    "load_artifact",
    "load_artifacts",
    "new_agreement_id",
    "open_chain",
]
