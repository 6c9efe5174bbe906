"""The cluster's certificates: what they are issued for, for how long, and what is refused
before anything is written."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509

from atoll.cluster.certs import ROLES, issue


def _cert(directory: Path, role: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((directory / f"{role}.pem").read_bytes())


def test_certificates_name_the_hosts_and_last_the_days_asked(tmp_path: Path) -> None:
    issue(tmp_path, ("sched.example", "10.0.0.5", "::1"), days=7)
    for role in ROLES:
        cert = _cert(tmp_path, role)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == ["sched.example"]
        assert names.get_values_for_type(x509.IPAddress) == [
            ipaddress.ip_address("10.0.0.5"),
            ipaddress.ip_address("::1"),
        ]
        span = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
        assert datetime.timedelta(days=6) < span <= datetime.timedelta(days=7)


@pytest.mark.parametrize("days", [0, -5, 10**8])
def test_a_span_outside_the_authority_s_is_refused_and_nothing_is_rotated(
    tmp_path: Path, days: int
) -> None:
    issue(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=r"days|a day"):
        issue(tmp_path, days=days)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_no_certificate_outlives_its_authority(tmp_path: Path) -> None:
    issue(tmp_path)
    authority = _cert(tmp_path, "ca")
    left = (authority.not_valid_after_utc - datetime.datetime.now(datetime.UTC)).days
    issue(tmp_path, days=left)
    assert _cert(tmp_path, "worker").not_valid_after_utc <= authority.not_valid_after_utc
    with pytest.raises(ValueError, match=f"from 1 to {left} days"):
        issue(tmp_path, days=left + 1)


@pytest.mark.parametrize("host", ["", "a b", "x/y", "*.example"])
def test_a_host_that_is_no_name_is_refused_before_anything_is_written(
    tmp_path: Path, host: str
) -> None:
    with pytest.raises(ValueError, match="not a host name or an IP address"):
        issue(tmp_path / "certs", ("localhost", host))
    assert not (tmp_path / "certs").exists()
