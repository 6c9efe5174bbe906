"""A job's network allowlist: which destinations (names, wildcard domains, IP literals, ports)
a job with egress may reach, and which addresses a permitted name may lead to.

A destination is checked before it is resolved, so a job cannot leak data through DNS lookups
of names it makes up; a name that resolves to a loopback, link-local or otherwise special
address is refused unless that address is listed itself.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from atoll.storage.guard import IPAddress

#: (name, port) -> the addresses the name has, in the order to try them
Resolver = Callable[[str, int], Sequence[IPAddress]]

_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


def _normalize_name(text: str) -> str | None:
    name = text.lower().removesuffix(".")
    if not name or len(name) > 253 or not name.isascii():
        return None
    labels = name.split(".")
    if not all(_LABEL_RE.fullmatch(label) for label in labels):
        return None
    # A name whose last label is numeric is an IPv4 address in a form inet_aton accepts
    # ("127.1", "2130706433"): resolving it would reach an address no rule names.
    if labels[-1].isdigit():
        return None
    return name


def parse_host(text: str) -> tuple[str, IPAddress | None]:
    """The normalised host and, for an IP literal, its address. Raises ValueError."""
    if text.startswith("[") and text.endswith("]"):
        address: IPAddress = ipaddress.IPv6Address(text[1:-1])
        return f"[{address.compressed}]", address
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        pass
    else:
        return address.compressed, address
    name = _normalize_name(text)
    if name is None:
        raise ValueError(f"invalid host {text!r}")
    return name, None


def split_host_port(text: str, default_port: int | None) -> tuple[str, int | None]:
    """Split ``host:port``, ``[v6]:port`` or a bare host. Raises ValueError."""
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"invalid address {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"invalid address {text!r}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        raise ValueError(f"an IPv6 address needs brackets: {text!r}")
    if not port_text:
        if text.endswith(":"):
            raise ValueError(f"invalid port in {text!r}")
        return host, default_port
    if not _PORT_RE.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid port in {text!r}")
    return host, int(port_text)


def _special(address: IPAddress) -> bool:
    """Whether a name may not lead to ``address``: loopback (the host itself), link-local
    (cloud metadata services), and addresses that are no single remote host."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or (isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK)
    )


@dataclass(frozen=True)
class Rule:
    """One allowlist entry. ``host`` is a normalised name, ``*.`` and a domain, or an IP
    literal (with ``address`` set); ``port`` None allows every port."""

    host: str
    port: int | None
    address: IPAddress | None = None

    @classmethod
    def parse(cls, entry: str) -> Rule:
        """Raises ValueError."""
        text = entry.strip()
        host_text, port = split_host_port(text, None)
        if host_text.startswith("*."):
            domain = _normalize_name(host_text[2:])
            if domain is None:
                raise ValueError(f"invalid egress entry {entry!r}")
            return cls("*." + domain, port)
        try:
            host, address = parse_host(host_text)
        except ValueError:
            raise ValueError(f"invalid egress entry {entry!r}") from None
        if address is not None and (address.is_unspecified or address.is_multicast):
            raise ValueError(f"egress entry {entry!r} is not a single host")
        return cls(host, port, address)

    def permits(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host


class Allowlist:
    """The destinations a job may reach. Empty: none."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules = tuple(rules)
        self._listed = frozenset(r.address for r in self.rules if r.address is not None)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """Raises ValueError, naming the first invalid entry."""
        return cls(Rule.parse(e) for e in entries)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def permits(self, host: str, port: int) -> bool:
        """Whether a request for ``host`` (normalised, as :func:`parse_host` returns it) on
        ``port`` may go out. An IP literal matches only a rule with that literal: reaching an
        address that happens to be a listed name's is not allowed."""
        return any(r.permits(host, port) for r in self.rules)

    def may_resolve_to(self, address: IPAddress) -> bool:
        """Whether a permitted name may lead to ``address``."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return not _special(address) or address in self._listed
