"""Reading a request to a job's egress proxy: its destination, and the head to send upstream.

The proxy takes CONNECT (https, or any TCP) and plain HTTP requests with an absolute URI. A
plain request is rewritten for the hop upstream: hop-by-hop headers dropped, the Host header
taken from the URI, and the connection closed after one response, so that every request on
it is one the proxy has checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from atoll.engine.sandbox.allowlist import parse_host, split_host_port
from atoll.storage.guard import IPAddress

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


class Refused(Exception):
    def __init__(self, status: int, reason: str, text: str, destination: str = "") -> None:
        super().__init__(text)
        self.status = status
        self.reason = reason
        self.text = text
        #: set for a refusal by the allowlist, which the job's log hears about
        self.destination = destination


def _bad_request(text: str) -> Refused:
    return Refused(400, "Bad Request", text)


@dataclass(frozen=True)
class ProxyRequest:
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


def parse_request(head: bytes) -> ProxyRequest:
    """The destination of a proxy request head (without the blank line). Raises Refused."""
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
        return ProxyRequest(method, host, address, port, None)

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
    return ProxyRequest(method, host, address, port, "\r\n".join(lines).encode("ascii"))


def error_response(status: int, reason: str, text: str) -> bytes:
    body = f"atoll egress proxy: {text}\n".encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
