"""Atoll: Compute-to-Data. Send an algorithm to the data, get back only the results.

What a notebook needs is here::

    from atoll import ProviderClient, Metadata, ComputePolicy
    with ProviderClient.from_env() as client:      # the provider and key `atoll` would use
        ddo = client.publish(Metadata(...), ["data.csv"], ComputePolicy(allowRawAlgorithm=True))
        job = client.wait(client.start(ddo.id, rawcode=code).jobId)

Names are imported on first use, so ``import atoll`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atoll.chain.records import Agreement, ConditionState
    from atoll.errors import (
        AtollError,
        AuthError,
        BadRequest,
        ConfigError,
        Conflict,
        Forbidden,
        Gone,
        NotFound,
        PolicyRefused,
        RateLimited,
        RemoteError,
        TooLarge,
        Unavailable,
    )
    from atoll.models.ddo import (
        DDO,
        AlgorithmInfo,
        ComputePolicy,
        ConsumerParameter,
        Metadata,
        TrustedAlgorithm,
    )
    from atoll.models.environment import Resources
    from atoll.models.job import JobInfo, PublishOutput, ResultFile
    from atoll.models.receipt import SignedReceipt
    from atoll.models.status import JobStatus
    from atoll.sdk.client import ProviderClient
    from atoll.sdk.wallet import Wallet
    from atoll.signing import Key

    __version__: str

_MODULE_OF = {
    "ProviderClient": "atoll.sdk.client",
    "Wallet": "atoll.sdk.wallet",
    "Key": "atoll.signing",
    "DDO": "atoll.models.ddo",
    "Metadata": "atoll.models.ddo",
    "ComputePolicy": "atoll.models.ddo",
    "TrustedAlgorithm": "atoll.models.ddo",
    "AlgorithmInfo": "atoll.models.ddo",
    "ConsumerParameter": "atoll.models.ddo",
    "Resources": "atoll.models.environment",
    "JobInfo": "atoll.models.job",
    "PublishOutput": "atoll.models.job",
    "ResultFile": "atoll.models.job",
    "JobStatus": "atoll.models.status",
    "SignedReceipt": "atoll.models.receipt",
    "Agreement": "atoll.chain.records",
    "ConditionState": "atoll.chain.records",
    "AtollError": "atoll.errors",
    "AuthError": "atoll.errors",
    "BadRequest": "atoll.errors",
    "ConfigError": "atoll.errors",
    "Conflict": "atoll.errors",
    "Forbidden": "atoll.errors",
    "Gone": "atoll.errors",
    "NotFound": "atoll.errors",
    "PolicyRefused": "atoll.errors",
    "RateLimited": "atoll.errors",
    "RemoteError": "atoll.errors",
    "TooLarge": "atoll.errors",
    "Unavailable": "atoll.errors",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        # the version is written once, in pyproject.toml; installing records it in the metadata
        return version("atoll")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__, "__version__"])


__all__ = [
    "DDO",
    "Agreement",
    "AlgorithmInfo",
    "AtollError",
    "AuthError",
    "BadRequest",
    "ComputePolicy",
    "ConditionState",
    "ConfigError",
    "Conflict",
    "ConsumerParameter",
    "Forbidden",
    "Gone",
    "JobInfo",
    "JobStatus",
    "Key",
    "Metadata",
    "NotFound",
    "PolicyRefused",
    "ProviderClient",
    "PublishOutput",
    "RateLimited",
    "RemoteError",
    "Resources",
    "ResultFile",
    "SignedReceipt",
    "TooLarge",
    "TrustedAlgorithm",
    "Unavailable",
    "Wallet",
]
