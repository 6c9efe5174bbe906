"""Whether the cluster's scheduler and this process take each other's certificates, asked
with one TLS handshake before a process starts waiting on the scheduler.

Dask retries a connection whose handshake fails as it retries one nobody answers, ten times
a second and for ever, and says only that it is waiting: a node given the certificates of
another cluster would wait without a word of why. A scheduler that does not answer yet is no
error here (a worker may start first and wait for it)."""

from __future__ import annotations

import socket
import ssl

from distributed import Security

from atoll.cluster.certs import Role
from atoll.engine.sandbox.allowlist import split_host_port

#: the advice that ends every refusal
COPY = "copy the certificates 'atoll cluster certs' made for this cluster (see --certs)"


class CertificateRefused(Exception):
    """The scheduler answers, but one side refused the other's certificate."""


def check_certificates(
    scheduler: str, security: Security, role: Role, timeout: float = 5.0
) -> None:
    """CertificateRefused where the scheduler at ``scheduler`` (``tls://host:port``) and
    this process, with ``security`` as ``role``, do not take each other's certificates."""
    host, port = split_host_port(scheduler.removeprefix("tls://"), None)
    context = security.get_connection_args(role)["ssl_context"]
    try:
        sock = socket.create_connection((host.strip("[]"), port or 0), timeout=timeout)
    except OSError:
        return  # nobody answers yet: the process waits for the scheduler, as Dask does
    with sock:
        try:
            with context.wrap_socket(sock) as tls:
                # Dask's server speaks first: a certificate it refused is an alert here
                tls.recv(1)
        except ssl.SSLCertVerificationError:
            raise CertificateRefused(
                f"the scheduler's certificate is not of this cluster's authority: {COPY}"
            ) from None
        except ssl.SSLError:
            raise CertificateRefused(
                f"the scheduler refused this {role}'s certificate: {COPY}"
            ) from None
        except OSError:
            return  # it went away or said nothing in time: nothing known about certificates
