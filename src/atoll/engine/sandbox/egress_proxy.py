"""A job's network egress: the HTTP proxy that enforces its allowlist.

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
import select
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from atoll.engine.sandbox.allowlist import Allowlist, Resolver
from atoll.engine.sandbox.proxy_request import (
    ProxyRequest,
    Refused,
    error_response,
    parse_request,
)
from atoll.storage.guard import IPAddress, system_resolver

log = logging.getLogger(__name__)

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
            conn.sendall(error_response(503, "Service Unavailable", text))

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
            except Refused as refused:
                if refused.destination:
                    self._report_refusal(refused.destination, refused.text)
                with contextlib.suppress(OSError):
                    client.sendall(error_response(refused.status, refused.reason, refused.text))
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
                    client.sendall(
                        error_response(431, "Request Header Fields Too Large", "too long")
                    )
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

    def _open(self, request: ProxyRequest) -> socket.socket:
        """Check the destination, resolve it, and connect to an address that was checked."""
        dest = request.destination
        if not self.allowlist.permits(request.host, request.port):
            raise Refused(403, "Forbidden", f"{dest} is not allowed for this job", dest)
        if request.address is not None:
            addresses: Sequence[IPAddress] = [request.address]
        else:
            try:
                resolved = self.resolver(request.host, request.port)
            except OSError:
                raise Refused(502, "Bad Gateway", f"cannot resolve {request.host}") from None
            addresses = [a for a in resolved if self.allowlist.may_resolve_to(a)]
            if not addresses:
                if not resolved:
                    raise Refused(502, "Bad Gateway", f"cannot resolve {request.host}")
                text = f"{dest} resolves to an address this job may not reach"
                raise Refused(403, "Forbidden", text, dest)
        for address in addresses:
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            family = socket.AF_INET if address.version == 4 else socket.AF_INET6
            sock = socket.socket(family, socket.SOCK_STREAM)
            if not self._track(sock):
                sock.close()
                raise Refused(503, "Service Unavailable", "the job has ended")
            sock.settimeout(self.connect_timeout)
            try:
                sock.connect((str(address), request.port))
            except OSError as e:
                log.debug("egress of job %s: cannot connect to %s: %s", self.name, dest, e)
                self._untrack(sock)
                continue
            sock.settimeout(self.idle_timeout)
            return sock
        raise Refused(502, "Bad Gateway", f"cannot connect to {dest}")

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
