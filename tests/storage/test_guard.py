"""The network guard against a real HTTP server on loopback: only granted hosts, only public
addresses unless listed (checked after resolving, connected to as checked), redirects
re-checked, caps on size, time, stalls, trickles and encodings; messages name no URL."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from atoll.storage.errors import SourceError, SourceLimit, SourceRefused, SourceUnavailable
from atoll.storage.guard import HostGrant, IPAddress, Limits, NetworkGuard, SourcePolicy

from .origin import Origin, running_origin

PUBLISHER = "0x" + "ab" * 20


@pytest.fixture
def origin() -> Iterator[Origin]:
    with running_origin() as o:
        yield o


def resolver(table: dict[str, list[str]]) -> object:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        return [ipaddress.ip_address(a) for a in table.get(host, [])]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def guard(
    hosts: list[str],
    *,
    private: tuple[str, ...] = (),
    limits: Limits | None = None,
    names: dict[str, list[str]] | None = None,
    own: set[IPAddress] | None = None,
    publisher: str = PUBLISHER,
) -> NetworkGuard:
    policy = SourcePolicy(
        hosts,
        private,
        limits,
        own=lambda: own or set(),
        resolver=resolver(names or {}),  # type: ignore[arg-type]
    )
    return policy.guard(publisher)


def fetch_all(g: NetworkGuard, url: str, headers: dict[str, str] | None = None) -> bytes:
    resp = g.fetch(url, headers or {})
    out = bytearray()
    while chunk := resp.read(1 << 16):
        out += chunk
    return bytes(out)


def refused_quietly(info: pytest.ExceptionInfo[SourceError], origin: Origin) -> None:
    text = str(info.value)
    assert "127.0.0.1" not in text and str(origin.port) not in text and "http" not in text


def test_a_granted_loopback_host_is_fetched(origin: Origin) -> None:
    origin.files["a.csv"] = b"a,b\n1,2\n"
    g = guard([f"http://127.0.0.1:{origin.port}"])
    assert fetch_all(g, origin.url("/files/a.csv")) == b"a,b\n1,2\n"


def test_a_host_not_granted_or_granted_to_another_publisher_is_refused(origin: Origin) -> None:
    origin.files["a"] = b"x"
    for hosts in ([], ["http://127.0.0.2"], [f"http://127.0.0.1:{origin.port}=0x" + "cd" * 20]):
        with pytest.raises(SourceRefused, match="not one the operator allows") as info:
            fetch_all(guard(hosts), origin.url("/files/a"))
        refused_quietly(info, origin)
    assert origin.requests == []


def test_loopback_behind_a_name_is_refused_unless_its_address_is_listed(origin: Origin) -> None:
    origin.files["a"] = b"x"
    names = {"data.example": ["127.0.0.1"]}
    url = f"http://data.example:{origin.port}/files/a"
    with pytest.raises(SourceRefused, match="a loopback address") as info:
        fetch_all(guard(["http://data.example"], names=names), url)
    refused_quietly(info, origin)
    assert origin.requests == []
    listed = guard(["http://data.example"], names=names, private=("127.0.0.0/8",))
    assert fetch_all(listed, url) == b"x"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("10.1.2.3", "a private address"),
        ("192.168.0.9", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("::1", "a loopback address"),
        ("fe80::1", "a link-local address"),
        ("0.0.0.0", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("::ffff:127.0.0.1", "a loopback address"),
    ],
)
def test_addresses_inside_the_providers_network_are_refused(address: str, why: str) -> None:
    g = guard(["data.example"], names={"data.example": [address]})
    with pytest.raises(SourceRefused, match=why) as info:
        g.fetch("https://data.example/file.csv", {})
    assert address not in str(info.value) and "data.example" not in str(info.value)


def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    g = guard(["data.example"], names={"data.example": ["8.8.8.8", "10.0.0.1"]})
    with pytest.raises(SourceRefused, match="a private address"):
        g.fetch("https://data.example/f", {})


def test_the_providers_own_public_address_is_refused() -> None:
    own = {ipaddress.ip_address("8.8.4.4")}
    g = guard(["me.example"], names={"me.example": ["8.8.4.4"]}, own=own)
    with pytest.raises(SourceRefused, match="the provider's own addresses"):
        g.fetch("https://me.example/f", {})


def test_the_connection_goes_to_the_address_that_was_checked(origin: Origin) -> None:
    """A name whose next lookup would point elsewhere (DNS rebinding) is resolved once; the
    connection is made to the checked address."""
    origin.files["a"] = b"checked"
    answers = iter([["127.0.0.1"], ["10.9.9.9"], ["10.9.9.9"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        return [ipaddress.ip_address(a) for a in next(answers)]

    policy = SourcePolicy(["http://rebind.example"], ["127.0.0.1"], resolver=rebinding)
    body = fetch_all(policy.guard(PUBLISHER), f"http://rebind.example:{origin.port}/files/a")
    assert body == b"checked" and calls == ["rebind.example"]
    assert origin.requests[0][1]["host"] == f"rebind.example:{origin.port}"


def test_only_https_unless_the_operator_allows_http(origin: Origin) -> None:
    g = guard([f"127.0.0.1:{origin.port}"])
    with pytest.raises(SourceRefused, match="plain http"):
        g.fetch(origin.url("/files/a"), {})
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x", f"http://u:p@127.0.0.1:{origin.port}/"):
        with pytest.raises(SourceRefused) as info:
            guard([f"http://127.0.0.1:{origin.port}"]).fetch(url, {})
        assert "u:p" not in str(info.value) and "passwd" not in str(info.value)
    assert origin.requests == []


def test_a_redirect_is_followed_within_the_granted_hosts(origin: Origin) -> None:
    origin.files["real"] = b"moved"
    g = guard([f"http://127.0.0.1:{origin.port}"])
    assert fetch_all(g, origin.url(f"/redirect?to={origin.url('/files/real')}")) == b"moved"


def test_a_redirect_to_a_private_address_is_refused(origin: Origin) -> None:
    g = guard(
        [f"http://127.0.0.1:{origin.port}", "http://inside.example"],
        names={"inside.example": ["10.0.0.7"]},
    )
    for target in ("http://inside.example/admin", "http://169.254.169.254/latest/meta-data"):
        with pytest.raises(SourceRefused) as info:
            fetch_all(g, origin.url(f"/redirect?to={target}"))
        assert "inside" not in str(info.value) and "169.254" not in str(info.value)


def test_a_redirect_to_a_host_not_granted_is_refused_and_headers_stay_home(
    origin: Origin,
) -> None:
    with running_origin("127.0.0.2") as other:
        other.files["x"] = b"other"
        g = guard([f"http://127.0.0.1:{origin.port}"])
        with pytest.raises(SourceRefused, match="not one the operator allows"):
            fetch_all(g, origin.url(f"/redirect?to={other.url('/files/x')}"))
        assert other.requests == []
        both = guard([f"http://127.0.0.1:{origin.port}", f"http://127.0.0.2:{other.port}"])
        token = {"Authorization": "Bearer publisher-token"}
        assert fetch_all(both, origin.url(f"/redirect?to={other.url('/files/x')}"), token)
        assert origin.requests[-1][1]["authorization"] == "Bearer publisher-token"
        assert "authorization" not in other.requests[-1][1]


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("/files/absent", SourceUnavailable, "no longer at its source"),
        ("/status/500", SourceUnavailable, "answered with an error"),
        ("/status/503", SourceUnavailable, "answered with an error"),
        ("/status/403", SourceUnavailable, "refused the request"),
        ("/gzip", SourceRefused, "compressed"),
    ],
)
def test_failing_answers(origin: Origin, path: str, error: type[SourceError], message: str) -> None:
    g = guard([f"http://127.0.0.1:{origin.port}"])
    with pytest.raises(error, match=message) as info:
        fetch_all(g, origin.url(path))
    refused_quietly(info, origin)
    assert origin.requests[-1][1]["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    ("path", "limits", "message"),
    [
        ("/files/big", Limits(max_bytes=1000), "larger than the operator allows"),
        ("/endless", Limits(max_bytes=5 << 20), "larger than the operator allows"),
        ("/endless", Limits(total_seconds=0.5, stall_seconds=5), "took longer"),
        ("/stall", Limits(stall_seconds=0.5), "stalled"),
        ("/trickle", Limits(stall_seconds=0.5, min_bytes_per_second=1000), "too slowly"),
    ],
)
def test_caps_on_size_time_stalls_and_trickles(
    origin: Origin, path: str, limits: Limits, message: str
) -> None:
    origin.files["big"] = b"z" * 5000
    g = guard([f"http://127.0.0.1:{origin.port}"], limits=limits)
    with pytest.raises(SourceLimit, match=message) as info:
        fetch_all(g, origin.url(path))
    refused_quietly(info, origin)


def test_nothing_listens_is_unavailable() -> None:
    g = guard(["http://127.0.0.1:9"])
    with pytest.raises(SourceUnavailable, match="cannot be reached"):
        g.fetch("http://127.0.0.1:9/x", {})


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("data.example", HostGrant("data.example", None, False, frozenset())),
        ("http://127.0.0.1:8080", HostGrant("127.0.0.1", 8080, True, frozenset())),
        (
            "*.example.org=0xAA|0xbb",
            HostGrant("*.example.org", None, False, frozenset({"0xaa", "0xbb"})),
        ),
        ("https://[::1]:9000", HostGrant("::1", 9000, False, frozenset())),
    ],
)
def test_host_grants_read(entry: str, expected: HostGrant) -> None:
    assert HostGrant.parse(entry) == expected


@pytest.mark.parametrize("entry", ["", "a/b", "host=", "user@host", "a.*.b"])
def test_bad_host_grants_are_refused(entry: str) -> None:
    with pytest.raises(ValueError):
        HostGrant.parse(entry)
