"""The network guard: a publisher's URL (or S3 endpoint) is a way into the provider's own
network, so it is reached only as the operator allows.

- Hosts: only those the operator grants that publisher (``source_hosts``: ``host``,
  ``host:port``, ``*.domain``, with ``http://`` before one that may be reached without TLS,
  and ``=0xA…|0xB…`` after one granted to those publishers only). Only https otherwise.
- Addresses: a name is resolved and every address it has must be public and none of the
  provider's own; loopback, link-local (cloud metadata), private, multicast, unspecified and
  reserved addresses are refused unless the operator lists them (an IP literal granted as a
  host, or ``source_private_networks``). The connection is then made to exactly the address
  that was checked: no second lookup a DNS server could answer differently.
- Redirects are followed by hand, each hop checked again (host and address); a publisher's
  headers go only to the host they were given for.
- Caps (:class:`Limits`): size, total time, and a stall or trickle window; bodies are asked
  for and accepted only without a ``Content-Encoding``, so nothing expands past the size cap.

Failures are :class:`~atoll.storage.errors.SourceError` types whose messages name no URL,
host or address.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import psutil
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from atoll.storage.errors import SourceLimit, SourceRefused, SourceUnavailable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: (name, port) -> the addresses the name has
Resolver = Callable[[str, int], Sequence[IPAddress]]

#: redirects followed for one fetch
MAX_REDIRECTS = 5
#: the largest body of an answer that is not the file (an error, a redirect)
SMALL_BODY = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """Caps on one fetch: ``max_bytes`` in all, ``total_seconds`` from the first connection
    to the last byte, and over each ``stall_seconds`` window at least
    ``min_bytes_per_second`` on average (a source that stalls or trickles fails)."""

    max_bytes: int = 10 * 1024**3
    total_seconds: float = 3600.0
    stall_seconds: float = 30.0
    min_bytes_per_second: int = 1024


def system_resolver(host: str, port: int) -> list[IPAddress]:
    found: list[IPAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def local_addresses() -> set[IPAddress]:
    """The addresses of this host's interfaces."""
    found: set[IPAddress] = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            try:
                found.add(ipaddress.ip_address(a.address.split("%", 1)[0]))
            except ValueError:
                continue  # a hardware address
    return found


def plain_address(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it is, so one rule covers both."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _literal(host: str) -> IPAddress | None:
    try:
        return plain_address(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def why_refused(address: IPAddress) -> str:
    """Why a source may not be fetched from ``address`` (unless the operator lists it), or
    "" if it may."""
    address = plain_address(address)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "not a public address"
    return ""


@dataclass(frozen=True)
class HostGrant:
    """One ``source_hosts`` entry: ``host`` (a lower-case name, ``*.domain`` or an IP
    literal), ``port`` (None: any), whether plain http is allowed, and the publishers it is
    for (empty: all)."""

    host: str
    port: int | None
    http: bool
    publishers: frozenset[str]

    @classmethod
    def parse(cls, entry: str) -> HostGrant:
        """Raises ValueError."""
        text, sep, who = entry.strip().partition("=")
        publishers = frozenset(p.strip().lower() for p in who.split("|") if p.strip())
        if sep and not publishers:
            raise ValueError(f"source host {entry!r}: no publisher after '='")
        http = text.startswith("http://")
        text = text.removeprefix("http://").removeprefix("https://")
        try:
            parts = urlsplit(f"//{text}")
            host, port = parts.hostname, parts.port
        except ValueError:
            raise ValueError(f"source host {entry!r} is not host[:port]") from None
        if not host or parts.path or parts.query or parts.username or "*" in host[1:]:
            raise ValueError(f"source host {entry!r} is not host[:port]")
        if _literal(host) is not None:
            host = _literal(host).compressed  # type: ignore[union-attr]
        return cls(host.rstrip("."), port, http, publishers)

    def covers(self, publisher: str, scheme: str, host: str, port: int) -> bool:
        if self.publishers and publisher.lower() not in self.publishers:
            return False
        if scheme == "http" and not self.http:
            return False
        if self.port is not None and self.port != port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host


class SourcePolicy:
    """The operator's rules for every publisher's sources."""

    def __init__(
        self,
        hosts: Iterable[str] = (),
        private_networks: Iterable[str] = (),
        limits: Limits | None = None,
        buckets: Iterable[str] = (),
        *,
        own: Callable[[], set[IPAddress]] = local_addresses,
        resolver: Resolver = system_resolver,
    ) -> None:
        """Raises ValueError for an entry that cannot be read."""
        self.grants = [HostGrant.parse(h) for h in hosts]
        self.private: list[IPNetwork] = []
        for entry in private_networks:
            try:
                self.private.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"source private network {entry!r} is not an address") from None
        self.limits = limits or Limits()
        #: S3 buckets a publisher may name without giving keys: the provider's own
        #: credentials then open them (``bucket`` or ``bucket=0xA…|0xB…``)
        self.buckets: list[tuple[str, frozenset[str]]] = []
        for entry in buckets:
            name, sep, who = entry.strip().partition("=")
            publishers = frozenset(p.strip().lower() for p in who.split("|") if p.strip())
            if not name or (sep and not publishers):
                raise ValueError(f"source bucket {entry!r} is not bucket[=publisher|…]")
            self.buckets.append((name, publishers))
        self.own = own
        self.resolver = resolver

    def guard(
        self, publisher: str, limits: Limits | None = None, extra_hosts: Iterable[str] = ()
    ) -> NetworkGuard:
        """The guard of ``publisher``'s fetches; ``extra_hosts`` are granted besides the
        operator's (the endpoints of a known store)."""
        return NetworkGuard(self, publisher, limits or self.limits, extra_hosts)

    def may_use_bucket(self, publisher: str, bucket: str) -> bool:
        return any(
            name == bucket and (not who or publisher.lower() in who) for name, who in self.buckets
        )


class NetworkGuard:
    """One publisher's way out: checks URLs and addresses, connects, sends and fetches."""

    def __init__(
        self,
        policy: SourcePolicy,
        publisher: str,
        limits: Limits,
        extra_hosts: Iterable[str] = (),
    ) -> None:
        self.policy = policy
        self.publisher = publisher
        self.limits = limits
        self._grants = [*policy.grants, *(HostGrant.parse(h) for h in extra_hosts)]
        self._own: set[IPAddress] | None = None

    def check_url(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of a URL this publisher may fetch; SourceRefused if not."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError:
            raise SourceRefused("its location is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not host:
            raise SourceRefused("its location is not an http(s) URL")
        if parts.username is not None or parts.password is not None:
            raise SourceRefused("its URL carries credentials (give them as headers)")
        host = host.rstrip(".")
        literal = _literal(host)
        if literal is not None:
            host = literal.compressed
        port = port or (443 if parts.scheme == "https" else 80)
        if not any(g.covers(self.publisher, parts.scheme, host, port) for g in self.grants):
            if parts.scheme == "http" and any(
                g.covers(self.publisher, "https", host, port) for g in self.grants
            ):
                raise SourceRefused("its source is plain http, which the operator does not allow")
            raise SourceRefused("its host is not one the operator allows this publisher")
        return parts.scheme, host, port

    @property
    def grants(self) -> list[HostGrant]:
        return self._grants

    def _listed(self, address: IPAddress) -> bool:
        if any(address in net for net in self.policy.private):
            return True
        mine = [
            g for g in self.grants if not g.publishers or self.publisher.lower() in g.publishers
        ]
        return any(_literal(g.host) == address for g in mine)

    def check_address(self, address: IPAddress) -> None:
        """SourceRefused unless a source may be fetched from ``address``."""
        address = plain_address(address)
        if self._listed(address):
            return
        why = why_refused(address)
        if not why:
            if self._own is None:
                self._own = {plain_address(a) for a in self.policy.own()}
            if address in self._own:
                why = "one of the provider's own addresses"
        if why:
            raise SourceRefused(f"its host has {why}, which the operator does not allow")

    def connect(self, host: str, port: int, timeout: float | None) -> socket.socket:
        """A socket connected to an address of ``host`` that passed the check."""
        literal = _literal(host)
        if literal is not None:
            addresses: Sequence[IPAddress] = [literal]
        else:
            try:
                addresses = self.policy.resolver(host, port)
            except (OSError, UnicodeError):
                addresses = []
            if not addresses:
                raise SourceUnavailable("its host does not resolve to any address")
        for address in addresses:
            self.check_address(address)
        last: OSError | None = None
        for address in addresses:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect((str(address), port))
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise last or OSError("no address to connect to")

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: Any = None
    ) -> GuardedResponse:
        """One request, no redirect followed, the answer unread (its body capped)."""
        scheme, host, port = self.check_url(url)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        pool = self._pool(scheme, host, port)
        started = time.monotonic()
        try:
            raw = pool.urlopen(
                method,
                target,
                body=body,
                headers=dict(headers),
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
            )
        except NewConnectionError:  # a ConnectTimeoutError to urllib3, but refused
            raise SourceUnavailable("its source cannot be reached") from None
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            raise SourceLimit("its source did not answer in time") from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise SourceUnavailable("its source cannot be reached") from None
        return GuardedResponse(raw, self.limits, started, pool)

    def fetch(self, url: str, headers: Mapping[str, str], method: str = "GET") -> GuardedResponse:
        """GET (or HEAD) ``url`` for its bytes: redirects followed within the allowed hosts,
        the body taken only without a Content-Encoding, an answer other than 200 a
        SourceError."""
        sent = {**headers, "Accept-Encoding": "identity"}
        origin = self.check_url(url)
        for _ in range(MAX_REDIRECTS + 1):
            resp = self.send(method, url, sent)
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.headers.get("Location", "")
                resp.close()
                if not location:
                    raise SourceUnavailable("its source redirected nowhere")
                url = urljoin(url, location)
                if self.check_url(url) != origin:
                    # the publisher's headers (tokens) were given for its own host
                    sent = {"Accept-Encoding": "identity"}
                continue
            if resp.status == 200:
                encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    resp.close()
                    raise SourceRefused(
                        "its source sent it compressed (Content-Encoding), which is not accepted"
                    )
                return resp
            resp.close()
            raise http_failure(resp.status)
        raise SourceUnavailable("its source redirected too many times")

    def _pool(self, scheme: str, host: str, port: int) -> HTTPConnectionPool:
        guard = self
        base: type[HTTPConnection] = HTTPSConnection if scheme == "https" else HTTPConnection

        class Guarded(base):  # type: ignore[valid-type,misc]
            def _new_conn(self) -> socket.socket:
                try:
                    return guard.connect(host, port, self.timeout)
                except TimeoutError as exc:
                    raise urllib3.exceptions.ConnectTimeoutError(self, "timed out") from exc
                except OSError as exc:
                    raise NewConnectionError(self, "cannot connect") from exc

        timeout = urllib3.Timeout(connect=self.limits.stall_seconds, read=self.limits.stall_seconds)
        cls = HTTPSConnectionPool if scheme == "https" else HTTPConnectionPool
        pool = cls(host.strip("[]"), port, timeout=timeout, maxsize=1, retries=False)
        pool.ConnectionCls = Guarded
        return pool


class HttpFailure(SourceUnavailable):
    """The source answered ``status``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def http_failure(status: int) -> HttpFailure:
    if status in (404, 410):
        return HttpFailure(f"is no longer at its source (HTTP {status})", status)
    if status >= 500:
        return HttpFailure(f"its source answered with an error (HTTP {status})", status)
    return HttpFailure(f"its source refused the request (HTTP {status})", status)


class GuardedResponse:
    """An answer whose body is read under the caps: each read returns what has come (it
    does not wait to fill a buffer, so a trickle is seen), and fails past the size, the
    total time, or a window with too little."""

    def __init__(
        self,
        raw: urllib3.BaseHTTPResponse,
        limits: Limits,
        started: float,
        pool: HTTPConnectionPool | None = None,
    ) -> None:
        self.raw = raw
        self.pool = pool
        self.limits = limits
        self.status = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.started = started
        self.count = 0
        self._window_start = time.monotonic()
        self._window_bytes = 0
        length = raw.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > limits.max_bytes:
            self.close()
            raise SourceLimit("is larger than the operator allows")

    def read(self, amt: int | None = None) -> bytes:
        if amt is None or amt < 0:
            return b"".join(self.stream())
        try:
            chunk = self.raw.read1(amt)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            raise SourceLimit("its source stalled") from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise SourceUnavailable("its source broke off") from None
        now = time.monotonic()
        self.count += len(chunk)
        if self.count > self.limits.max_bytes:
            raise SourceLimit("is larger than the operator allows")
        if now - self.started > self.limits.total_seconds:
            raise SourceLimit("took longer to fetch than the operator allows")
        self._window_bytes += len(chunk)
        window = now - self._window_start
        if chunk and window >= self.limits.stall_seconds:
            if self._window_bytes < self.limits.min_bytes_per_second * window:
                raise SourceLimit("its source sends too slowly")
            self._window_start, self._window_bytes = now, 0
        return chunk

    def stream(self, amt: int = 64 * 1024, decode_content: bool | None = None) -> Iterator[bytes]:
        while chunk := self.read(amt):
            yield chunk

    def release_conn(self) -> None:
        self.raw.release_conn()

    def close(self) -> None:
        self.raw.close()
        if self.pool is not None:
            self.pool.close()
