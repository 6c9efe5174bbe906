"""The client side of Atoll: a provider's API (:class:`ProviderClient`), your key on the chain
(:class:`Wallet`) and receipt checks (:mod:`atoll.sdk.verify`). Names load on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atoll.sdk.client import ProviderClient
    from atoll.sdk.wallet import Wallet

_MODULE_OF = {"ProviderClient": "atoll.sdk.client", "Wallet": "atoll.sdk.wallet"}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["ProviderClient", "Wallet"]
