"""What ``import atoll`` offers a notebook: a pinned list of names, each a documented type."""

from __future__ import annotations

import atoll

PUBLIC = [
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


def test_the_public_names_are_pinned() -> None:
    assert atoll.__all__ == PUBLIC


def test_every_public_name_is_a_documented_type() -> None:
    for name in PUBLIC:
        value = getattr(atoll, name)
        assert isinstance(value, type), name
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"
        assert name in dir(atoll)


def test_the_same_objects_as_their_homes() -> None:
    from atoll.models.ddo import Metadata
    from atoll.sdk import ProviderClient, Wallet
    from atoll.signing import Key

    assert atoll.ProviderClient is ProviderClient
    assert atoll.Wallet is Wallet
    assert atoll.Key is Key
    assert atoll.Metadata is Metadata


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        atoll.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("atoll.NoSuchThing resolved")
