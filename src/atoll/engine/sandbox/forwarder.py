"""Runs inside a job's sandbox: relays TCP connections to ``127.0.0.1:PORT`` to the engine's
egress proxy, which listens on a Unix socket bind-mounted into the sandbox.

Usage: ``forwarder.py SOCKET PORT [JOB]`` (JOB only labels the process).

It exits 0 once it listens, leaving a child that serves, so the launcher can start the job
right after it without polling. It exits 1 with a line on stderr when it cannot: the proxy
does not answer or the port is taken. It runs under the job's own interpreter and limits, so
it is one process with one thread (the pids limit counts threads) and only uses the standard
library of any Python 3.7 or newer; it imports nothing else, and the package is not there.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import sys

CHUNK = 64 * 1024
#: more connections than the proxy serves at once, so that the proxy says why it refuses
MAX_PAIRS = 64
#: errors that mean "not ready yet", not "broken"
_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)


class _Side:
    """One socket of a pair, and the bytes waiting to be written to it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = b""
        #: the other side has no more to send: shut this one for writing once pending is out
        self.finishing = False
        self.read_closed = False
        self.registered = 0


class _Pair:
    def __init__(self, sel: selectors.BaseSelector, a: socket.socket, b: socket.socket) -> None:
        self.sel = sel
        self.a = _Side(a)
        self.b = _Side(b)
        self.closed = False
        for side in (self.a, self.b):
            side.sock.setblocking(False)
        self.update()

    def other(self, side: _Side) -> _Side:
        return self.b if side is self.a else self.a

    def update(self) -> None:
        if self.closed:
            return
        if self.a.read_closed and self.b.read_closed and not self.a.pending and not self.b.pending:
            self.close()
            return
        for side in (self.a, self.b):
            other = self.other(side)
            # Read only when the bytes read before have gone out: the pair never buffers more
            # than one chunk per direction.
            events = 0
            if not side.read_closed and not other.pending:
                events |= selectors.EVENT_READ
            if side.pending:
                events |= selectors.EVENT_WRITE
            if events == side.registered:
                continue
            if side.registered and events:
                self.sel.modify(side.sock, events, (self, side))
            elif events:
                self.sel.register(side.sock, events, (self, side))
            else:
                self.sel.unregister(side.sock)
            side.registered = events

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for side in (self.a, self.b):
            if side.registered:
                self.sel.unregister(side.sock)
                side.registered = 0
            side.sock.close()

    def on_event(self, side: _Side, mask: int) -> None:
        try:
            if mask & selectors.EVENT_WRITE:
                self._write(side)
            if mask & selectors.EVENT_READ and not self.closed:
                self._read(side)
        except OSError as e:
            if e.errno not in _AGAIN:
                self.close()
                return
        self.update()

    def _read(self, side: _Side) -> None:
        data = side.sock.recv(CHUNK)
        other = self.other(side)
        if not data:
            side.read_closed = True
            other.finishing = True
        else:
            other.pending = data
        self._write(other)

    def _write(self, side: _Side) -> None:
        if side.pending:
            sent = side.sock.send(side.pending)
            side.pending = side.pending[sent:]
        if side.finishing and not side.pending:
            side.finishing = False
            try:
                side.sock.shutdown(socket.SHUT_WR)
            except OSError as e:
                if e.errno != errno.ENOTCONN:
                    raise


def _connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def serve(listener: socket.socket, path: str) -> None:
    sel = selectors.DefaultSelector()
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, None)
    pairs: set[_Pair] = set()
    while True:
        for key, mask in sel.select():
            if key.data is None:
                _accept(sel, listener, path, pairs)
            else:
                pair, side = key.data
                pair.on_event(side, mask)
                if pair.closed:
                    pairs.discard(pair)


def _accept(
    sel: selectors.BaseSelector, listener: socket.socket, path: str, pairs: set[_Pair]
) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        upstream = _connect(path) if len(pairs) < MAX_PAIRS else None
        if upstream is None:
            conn.close()
            continue
        pairs.add(_Pair(sel, conn, upstream))


def _fail(message: str) -> int:
    sys.stderr.write(f"atoll-egress-forwarder: {message}\n")
    sys.stderr.flush()
    return 1


def main(argv: list[str]) -> int:
    if len(argv) < 3 or not argv[2].isdigit():
        return _fail("usage: forwarder.py SOCKET PORT [JOB]")
    path, port = argv[1], int(argv[2])
    # A job must not start with a proxy it cannot reach: it would look like a network fault.
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as e:
        return _fail(f"the egress proxy does not answer: {e.strerror}")
    finally:
        probe.close()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
    except OSError as e:
        return _fail(f"cannot listen on port {port}: {e.strerror}")
    # Listening before the fork: a connection the job makes as soon as it starts waits in the
    # backlog until the child accepts it.
    try:
        pid = os.fork()
    except OSError as e:
        return _fail(f"cannot fork: {e.strerror}")
    if pid:
        return 0
    # The child must not hold the setup channel or the job's log pipe open.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    try:
        serve(listener, path)
    finally:
        os._exit(0)


if __name__ == "__main__":
    code = main(sys.argv)
    # The parent leaves without flushing or cleaning up what the child now owns.
    sys.stdout.flush()
    os._exit(code)
