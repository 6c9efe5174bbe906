"""The cluster's addresses and names, checked before any process starts."""

from __future__ import annotations

import pytest

from atoll.cluster import address


@pytest.mark.parametrize(
    "text",
    ["tls://127.0.0.1:8786", "tls://atoll-scheduler:8786", "tls://[::1]:1", "tls://a.b.c:65535"],
)
def test_a_scheduler_address_is_tls_host_and_port(text: str) -> None:
    assert address.scheduler(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "tcp://127.0.0.1:8786",  # not mutual TLS
        "127.0.0.1:8786",
        "tls://127.0.0.1",  # no port
        "tls://127.0.0.1:0",
        "tls://127.0.0.1:65536",
        "tls://127.0.0.1:-1",
        "tls://127.0.0.1:port",
        "tls://:8786",
        "tls://bad host:8786",
        "tls://a/b:8786",
        "tls://::1:8786",  # an IPv6 address needs its brackets
        "tls://" + "a" * 300 + ":1",
        "tls://x:1\nforged log line",
    ],
)
def test_anything_else_is_refused_in_words(text: str) -> None:
    with pytest.raises(ValueError, match="tls://host:port") as info:
        address.scheduler(text)
    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("text", ["127.0.0.1", "0.0.0.0", "::", "[::1]", "sched.example", "a-b_c"])
def test_hosts_are_names_or_addresses(text: str) -> None:
    address.host(text)


@pytest.mark.parametrize("text", ["", " ", "a b", "a/b", "*.example", "10.0.0.300", "x\ny"])
def test_other_hosts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a host name or an IP address"):
        address.host(text)


def test_ports_are_from_1_to_65535() -> None:
    assert address.port(1) == 1 and address.port(65535) == 65535
    for bad in (0, -1, 65536):
        with pytest.raises(ValueError, match="from 1 to 65535"):
            address.port(bad)


@pytest.mark.parametrize("name", ["node-1", "ip-10-0-0-5.ec2.internal", "w_2", "A" * 128])
def test_worker_names(name: str) -> None:
    assert address.worker_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".x", "a b", "a\nb", "a/b", "A" * 129, "é"])
def test_bad_worker_names(name: str) -> None:
    with pytest.raises(ValueError, match="worker's name"):
        address.worker_name(name)
