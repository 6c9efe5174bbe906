"""A job's network egress: the allowlist and the HTTP proxy that enforces it.

A job with an allowlist still runs in a network namespace with only loopback. A forwarder
inside it (``forwarder.py``) relays ``127.0.0.1:3128`` to a Unix socket that is bind-mounted
from the host, where an :class:`EgressProxy` listens: the proxy is the job's only way out.
It takes CONNECT (https, or any TCP) and plain HTTP requests with an absolute URI, and opens
a connection only to a destination the allowlist permits.

The proxy checks a destination before resolving it, so a job cannot leak data through DNS
lookups of names it makes up, and it connects to exactly the addresses it resolved and checked,
so a name cannot point somewhere else between the check and the connection.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import select
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (name, port) -> the addresses the name has, in the order to try them
Resolver = Callable[[str, int], Sequence[IPAddress]]

SOCKET_NAME = "proxy.sock"
MAX_CONNECTIONS = 32
IDLE_TIMEOUT = 120.0
HEADER_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
MAX_HEAD_BYTES = 16 * 1024
#: how long a connection over the cap may take to send its request before it hears 503
TURN_AWAY_SECONDS = 0.5
#: refusals reported one by one per job; after that a single line says more were refused
REFUSALS_REPORTED = 20
CHUNK = 64 * 1024

_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VERSION_RE = re.compile(r"HTTP/1\.[01]")
#: not forwarded to the destination: they concern the hop to the proxy, or would keep the
#: upstream connection open for requests this proxy has not checked
_HOP_HEADERS = frozenset(
    {
        "connection",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "upgrade",
    }
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


# -- the allowlist -------------------------------------------------------------------------


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


def system_resolver(host: str, port: int) -> list[IPAddress]:
    found: list[IPAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


# -- the proxy -------------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, status: int, reason: str, text: str, destination: str = "") -> None:
        super().__init__(text)
        self.status = status
        self.reason = reason
        self.text = text
        #: set for a refusal by the allowlist, which the job's log hears about
        self.destination = destination


def _bad_request(text: str) -> _Refused:
    return _Refused(400, "Bad Request", text)


@dataclass(frozen=True)
class _Request:
    method: str
    host: str
    address: IPAddress | None
    port: int
    #: the request head to send upstream, or None for a CONNECT tunnel
    upstream_head: bytes | None

    @property
    def destination(self) -> str:
        return f"{self.host}:{self.port}"


def _authority(host: str, port: int, default: int) -> str:
    return host if port == default else f"{host}:{port}"


def parse_request(head: bytes) -> _Request:
    """The destination of a proxy request head (without the blank line). Raises _Refused."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise _bad_request("the request is not ASCII") from None
    request_line, *header_lines = text.split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not _TOKEN_RE.fullmatch(parts[0]) or not _VERSION_RE.fullmatch(parts[2]):
        raise _bad_request("malformed request line")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN_RE.fullmatch(name):
            raise _bad_request("malformed header")
        headers.append((name, value.strip()))

    if method == "CONNECT":
        try:
            host_text, port = split_host_port(target, None)
            host, address = parse_host(host_text)
        except ValueError:
            raise _bad_request("CONNECT needs host:port") from None
        if port is None:
            raise _bad_request("CONNECT needs host:port")
        return _Request(method, host, address, port, None)

    if target[:7].lower() != "http://":
        raise _bad_request("only http:// URIs and CONNECT go through this proxy")
    rest = target[7:]
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:].partition("#")[0]
    if "@" in authority:
        raise _bad_request("credentials in the URI are not supported")
    try:
        host_text, port_or_none = split_host_port(authority, 80)
        host, address = parse_host(host_text)
    except ValueError:
        raise _bad_request("invalid host in the URI") from None
    port = port_or_none if port_or_none is not None else 80
    if not path.startswith("/"):
        path = "/" + path
    # Connection may name more headers that concern only this hop.
    dropped = set(_HOP_HEADERS)
    for name, value in headers:
        if name.lower() == "connection":
            dropped.update(v.strip().lower() for v in value.split(","))
    # The Host header is the URI's: another one would ask the server behind an allowed
    # address (a shared front end) for a site that is not allowed.
    lines = [f"{method} {path} {version}", f"Host: {_authority(host, port, 80)}"]
    lines += [f"{n}: {v}" for n, v in headers if n.lower() not in dropped]
    lines += ["Connection: close", "", ""]
    return _Request(method, host, address, port, "\r\n".join(lines).encode("ascii"))


def _response(status: int, reason: str, text: str) -> bytes:
    body = f"atoll egress proxy: {text}\n".encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class EgressProxy:
    """The allowlisting proxy of one job, on a Unix socket in a private directory.

    A thread accepts connections and one thread serves each, at most ``max_connections`` at a
    time (more get 503). A connection that moves no byte for ``idle_timeout`` seconds is
    closed. ``on_refused`` hears one line per refusal by the allowlist (the first
    :data:`REFUSALS_REPORTED`, then one that says more follow), for the job's own log; it must
    not block, and is not called once :meth:`close` has returned. :meth:`close` stops
    everything; call it once the job is gone.
    """

    def __init__(
        self,
        allowlist: Allowlist,
        *,
        name: str,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
        header_timeout: float = HEADER_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        resolver: Resolver = system_resolver,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.allowlist = allowlist
        self.name = name
        self.thread_name = f"atoll-egress-{name}"
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.connect_timeout = connect_timeout
        self.resolver = resolver
        self.on_refused = on_refused
        self.directory: Path | None = None
        self._listener: socket.socket | None = None
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._closed = False
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self._refusals = 0
        # held while on_refused runs, so that it is never called once close() has returned
        self._report_lock = threading.Lock()
        self._reporting = True
        # Never drained: once written, every poll that includes it wakes, in every thread.
        self._wake_r, self._wake_w = -1, -1
        self._users = 0

    @property
    def socket_path(self) -> Path:
        if self.directory is None:
            raise RuntimeError("the proxy has not started")
        return self.directory / SOCKET_NAME

    @property
    def running(self) -> bool:
        with self._lock:
            return self._listener is not None and not self._closed

    def start(self, owner: tuple[int, int] | None = None) -> Path:
        """Listen and return the directory that holds the socket (mode 0700, for the job's
        sandbox to bind). ``owner`` (uid, gid) gets the directory and the socket: the job's
        unprivileged uid must own them to connect, and no other uid can. Raises OSError."""
        directory = Path(tempfile.mkdtemp(prefix="atoll-egress-"))
        try:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                listener.bind(os.fspath(directory / SOCKET_NAME))
                if owner is not None:
                    os.chown(directory / SOCKET_NAME, *owner)
                    os.chown(directory, *owner)
                listener.listen(self.max_connections)
                self._wake_r, self._wake_w = os.pipe()
            except BaseException:
                listener.close()
                raise
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self.directory = directory
        self._listener = listener
        self._spawn(self._accept_loop, self.thread_name)
        return directory

    def close(self) -> None:
        """Stop accepting, end every connection, remove the socket. Idempotent."""
        with self._report_lock:
            self._reporting = False
        with self._lock:
            if self._closed:
                return
            self._closed = True
            # close() counts as a user of the wake pipe until it is done with it
            self._users += 1
            threads = list(self._threads)
            sockets = list(self._sockets)
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 2.0
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("egress proxy of job %s: a connection is slow to end", self.name)
        if self._listener is not None:
            self._listener.close()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        with self._lock:
            self._users -= 1
        self._release_pipe()

    # -- threads ---------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=self._run, args=(target, *args), name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
            self._users += 1
        thread.start()

    def _run(self, target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        except Exception:
            log.exception("egress proxy of job %s failed", self.name)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())
                self._users -= 1
            self._release_pipe()

    def _release_pipe(self) -> None:
        # The wake pipe outlives a thread stuck in a DNS lookup past close(): its fd numbers
        # must not be reused while any thread may still poll them.
        with self._lock:
            if not self._closed or self._users or self._wake_r < 0:
                return
            fds = (self._wake_r, self._wake_w)
            self._wake_r = self._wake_w = -1
        for fd in fds:
            os.close(fd)

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._sockets.add(sock)
            return True

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        sock.close()

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        poller = select.poll()
        poller.register(listener, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        wake = select.poll()
        wake.register(self._wake_r, select.POLLIN)
        warned = False
        while True:
            fds = [fd for fd, _ in poller.poll()]
            if self._wake_r in fds:
                return
            try:
                conn, _ = listener.accept()
            except OSError as e:
                # Out of file descriptors, say: the connection stays queued, so back off
                # rather than spin on it, and still hear close().
                if not warned:
                    log.warning("egress proxy of job %s cannot accept: %s", self.name, e)
                    warned = True
                if wake.poll(100):
                    return
                continue
            if not self._slots.acquire(blocking=False):
                self._turn_away(conn)
                continue
            if not self._track(conn):
                self._slots.release()
                conn.close()
                return
            self._spawn(self._serve, f"{self.thread_name}-conn", conn)

    def _turn_away(self, conn: socket.socket) -> None:
        # The request is read first: a client still sending it would get EPIPE instead of the
        # answer. Briefly, since this holds up the accept loop (of this job only).
        deadline = time.monotonic() + TURN_AWAY_SECONDS
        buf = b""
        with conn, contextlib.suppress(OSError):
            while b"\r\n\r\n" not in buf and len(buf) <= MAX_HEAD_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                conn.settimeout(left)
                data = conn.recv(CHUNK)
                if not data:
                    break
                buf += data
            conn.settimeout(TURN_AWAY_SECONDS)
            text = f"more than {self.max_connections} connections at once"
            conn.sendall(_response(503, "Service Unavailable", text))

    # -- one connection ----------------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            got = self._read_head(client)
            if got is None:
                return
            head, rest = got
            try:
                request = parse_request(head)
                upstream = self._open(request)
            except _Refused as refused:
                if refused.destination:
                    self._report_refusal(refused.destination, refused.text)
                with contextlib.suppress(OSError):
                    client.sendall(_response(refused.status, refused.reason, refused.text))
                return
            if request.upstream_head is None:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
            else:
                upstream.sendall(request.upstream_head + rest)
            self._relay(client, upstream)
        except OSError as e:
            log.debug("egress proxy of job %s: connection ended: %s", self.name, e)
        finally:
            if upstream is not None:
                self._untrack(upstream)
            self._untrack(client)
            self._slots.release()

    def _poller(self, *socks: socket.socket) -> select.poll:
        poller = select.poll()
        for s in socks:
            poller.register(s, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        return poller

    def _read_head(self, client: socket.socket) -> tuple[bytes, bytes] | None:
        poller = self._poller(client)
        deadline = time.monotonic() + self.header_timeout
        buf = b""
        while b"\r\n\r\n" not in buf:
            if len(buf) > MAX_HEAD_BYTES:
                with contextlib.suppress(OSError):
                    client.sendall(_response(431, "Request Header Fields Too Large", "too long"))
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            fds = [fd for fd, _ in poller.poll(left * 1000)]
            if not fds or self._wake_r in fds:
                return None
            data = client.recv(CHUNK)
            if not data:
                return None
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        return head, rest

    def _report_refusal(self, destination: str, why: str) -> None:
        with self._lock:
            self._refusals += 1
            n = self._refusals
        if n > REFUSALS_REPORTED + 1:
            return
        if n > REFUSALS_REPORTED:
            line = "egress refused: more refusals follow, not logged"
        else:
            line = f"egress refused: {destination}"
        log.info("job %s: %s (%s)", self.name, line, why)
        with self._report_lock:
            if self.on_refused is None or not self._reporting:
                return
            try:
                self.on_refused(line)
            except Exception:
                log.exception("egress proxy of job %s: reporting a refusal failed", self.name)

    def _open(self, request: _Request) -> socket.socket:
        """Check the destination, resolve it, and connect to an address that was checked."""
        dest = request.destination
        if not self.allowlist.permits(request.host, request.port):
            raise _Refused(403, "Forbidden", f"{dest} is not allowed for this job", dest)
        if request.address is not None:
            addresses: Sequence[IPAddress] = [request.address]
        else:
            try:
                resolved = self.resolver(request.host, request.port)
            except OSError:
                raise _Refused(502, "Bad Gateway", f"cannot resolve {request.host}") from None
            addresses = [a for a in resolved if self.allowlist.may_resolve_to(a)]
            if not addresses:
                if not resolved:
                    raise _Refused(502, "Bad Gateway", f"cannot resolve {request.host}")
                text = f"{dest} resolves to an address this job may not reach"
                raise _Refused(403, "Forbidden", text, dest)
        for address in addresses:
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            family = socket.AF_INET if address.version == 4 else socket.AF_INET6
            sock = socket.socket(family, socket.SOCK_STREAM)
            if not self._track(sock):
                sock.close()
                raise _Refused(503, "Service Unavailable", "the job has ended")
            sock.settimeout(self.connect_timeout)
            try:
                sock.connect((str(address), request.port))
            except OSError as e:
                log.debug("egress of job %s: cannot connect to %s: %s", self.name, dest, e)
                self._untrack(sock)
                continue
            sock.settimeout(self.idle_timeout)
            return sock
        raise _Refused(502, "Bad Gateway", f"cannot connect to {dest}")

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until both sides have closed, one goes idle, or the proxy
        closes. A side that finishes sending is shut down for writing on the other, so
        half-closed exchanges still complete."""
        client.settimeout(self.idle_timeout)
        upstream.settimeout(self.idle_timeout)
        peer = {client.fileno(): (client, upstream), upstream.fileno(): (upstream, client)}
        poller = self._poller(client, upstream)
        open_ends = 2
        while open_ends:
            events = poller.poll(self.idle_timeout * 1000)
            if not events:
                return
            for fd, _ in events:
                if fd == self._wake_r:
                    return
                src, dst = peer[fd]
                data = src.recv(CHUNK)
                if data:
                    dst.sendall(data)
                    continue
                poller.unregister(fd)
                open_ends -= 1
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
