"""The certificates of a closed cluster: a certificate authority of the cluster's own, and
a certificate for the scheduler, the workers and the operator's client, each signed by it.

Dask's TLS asks every peer for a certificate signed by the cluster's authority, so a process
without one can neither connect to the scheduler as a client nor register as a worker.
Issuing again (:func:`issue`) keeps the authority and replaces the three certificates:
that is how they are rotated.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from distributed import Security

from atoll.cluster import address

Role = Literal["scheduler", "worker", "client"]
ROLES: tuple[Role, ...] = ("scheduler", "worker", "client")
CA_DAYS = 3650


def common_name(role: Role) -> str:
    """The common name of ``role``'s certificate: what a peer is known by."""
    return f"atoll-{role}"


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Atoll cluster"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _authority(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The cluster's authority, made on first use."""
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the cluster's authority key is not an EC key")
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = _name("Atoll cluster authority")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert, key


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for name in hosts:
        checked = address.host(name)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(checked)))
        except ValueError:
            names.append(x509.DNSName(checked))
    return names


def _check_days(days: int, authority: x509.Certificate, now: datetime.datetime) -> None:
    """A certificate is valid a day at least, and no longer than the authority that signs
    it: a peer would refuse it past that anyway, whatever it said."""
    left = (authority.not_valid_after_utc - now).days
    if not 1 <= days <= left:
        raise ValueError(
            f"certificates can be valid from 1 to {left} days (the cluster's authority "
            f"expires in {left} days)"
        )


def issue(
    directory: Path, hosts: Sequence[str] = ("localhost", "127.0.0.1"), days: int = 365
) -> list[Path]:
    """Make the authority if ``directory`` has none, and (re)issue the scheduler's, the
    workers' and the client's certificates; returns the files written. ValueError (before
    anything is written) for a host that is neither a name nor an address, or ``days``
    outside what the authority allows."""
    if days < 1:
        raise ValueError("certificates are valid a day at least")
    alt_names = _alt_names(hosts)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_cert, ca_key = _authority(directory)
    now = datetime.datetime.now(datetime.UTC)
    _check_days(days, ca_cert, now)
    written = [directory / "ca.pem"]
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name(role)))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # every peer both listens and connects (workers talk to each other)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write_key(directory / f"{role}-key.pem", key)
        _write_cert(directory / f"{role}.pem", cert)
        written += [directory / f"{role}.pem", directory / f"{role}-key.pem"]
    return written


def security(directory: Path, role: Role) -> Security:
    """Dask's security settings for ``role`` from the certificates in ``directory``:
    TLS only, and a peer must show a certificate of the cluster's authority."""
    cert, key = directory / f"{role}.pem", directory / f"{role}-key.pem"
    for path in (directory / "ca.pem", cert, key):
        if not path.is_file():
            raise FileNotFoundError(f"the cluster certificate {path.name} is missing")
    return Security(
        require_encryption=True,
        tls_ca_file=str(directory / "ca.pem"),
        **{f"tls_{role}_cert": str(cert), f"tls_{role}_key": str(key)},
    )
