"""The registries an operator lets the provider pull from, with their credentials.

Settings hold them as ``[[image_registries]]`` tables (``host``, ``username``, ``password``,
``insecure``). The password is a SecretStr and the username stays out of reprs, so printing the
settings, or an error about them, shows neither.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from atoll.images.errors import RegistryNotAllowed
from atoll.images.reference import ImageReference, normalise_host


class RegistryAccess(BaseModel):
    """One registry the operator lists."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: ``host`` or ``host:port``, as image references name it
    host: str
    username: str = Field(default="", repr=False)
    password: SecretStr = Field(default=SecretStr(""), repr=False)
    #: plain HTTP instead of HTTPS (a registry on the loopback, for instance)
    insecure: bool = False

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return normalise_host(value)

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password.get_secret_value())

    @property
    def base_url(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.host}"


def parse_registries(raw: Any) -> tuple[RegistryAccess, ...]:
    """``[[image_registries]]`` tables (or their JSON, from the environment) as RegistryAccess.

    Raises ValueError with a message that carries no value it was given: a password must not
    reach a log through a typo in a neighbouring key.
    """
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise ValueError("not valid JSON") from None
    if not isinstance(items, list | tuple):
        raise ValueError("a list of tables with host, username, password, insecure")
    try:
        registries = tuple(RegistryAccess.model_validate(item) for item in items)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "entry"
        raise ValueError(f"{where}: {first['msg']}") from None
    hosts = [r.host for r in registries]
    if len(set(hosts)) != len(hosts):
        raise ValueError("a registry host is listed twice")
    return registries


def registry_for(reference: ImageReference, registries: Iterable[RegistryAccess]) -> RegistryAccess:
    """The listed registry a reference names, or RegistryNotAllowed: checked before any
    connection, so no reference can make the provider contact a host of its choosing."""
    for registry in registries:
        if registry.host == reference.registry:
            return registry
    raise RegistryNotAllowed("the image's registry is not one this provider pulls from")
