"""The names a closed cluster's processes are given on their command lines and in settings:
the scheduler's ``tls://host:port``, the address a process listens on and its port, the
names its certificates are for, a worker's name. Each is checked before anything starts, so that a
mistyped one is a line of its own, not a process that waits on an address that cannot be, or
a certificate for a name no peer will ever have.

Every function raises ValueError with a message that may be shown as it is."""

from __future__ import annotations

import ipaddress
import re
import socket

from atoll.engine.sandbox.allowlist import parse_host, split_host_port

SCHEME = "tls://"
#: a worker's name: Dask's key for it, a metrics label, a cgroup's name, a log's word
_WORKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _shown(text: str) -> str:
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def host(text: str) -> str:
    """A host name or an IP address (an IPv6 one with or without brackets)."""
    try:
        return ipaddress.ip_address(text.removeprefix("[").removesuffix("]")).compressed
    except ValueError:
        pass
    try:
        parse_host(text)
    except ValueError:
        raise ValueError(f"{_shown(text)} is not a host name or an IP address") from None
    return text


def port(value: int, what: str = "port") -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"the {what} must be from 1 to 65535")
    return value


def scheduler(text: str) -> str:
    """The scheduler's address, which must be ``tls://host:port`` (mutual TLS only)."""
    usage = "the scheduler's address must be tls://host:port (mutual TLS only)"
    if not text.startswith(SCHEME):
        raise ValueError(usage)
    try:
        name, number = split_host_port(text.removeprefix(SCHEME), None)
        parse_host(name)
    except ValueError:
        raise ValueError(f"{usage}, not {_shown(text)}") from None
    if number is None:
        raise ValueError(f"{usage}: {_shown(text)} names no port")
    return text


def worker_name(text: str) -> str:
    if not _WORKER_NAME.fullmatch(text):
        raise ValueError(
            f"a worker's name is 1 to 128 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit, not {_shown(text)}"
        )
    return text


def listenable(name: str, number: int = 0) -> str:
    """``name`` if this host can listen on it (on port ``number``; 0: any): Dask's worker,
    asked to listen where it cannot, says so only with tracebacks of its own."""
    shown = _shown(f"{name}:{number}" if number else name)
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            name.removeprefix("[").removesuffix("]"), number, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(where)
    except OSError as e:
        raise ValueError(f"cannot listen on {shown}: {e.strerror or 'unknown'}") from None
    return name
