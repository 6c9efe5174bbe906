"""The client side of Atoll."""

from atoll.sdk.client import ProviderClient

__all__ = ["ProviderClient"]
