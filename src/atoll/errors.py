"""The exception tree.

::

    AtollError                  anything this package raises on purpose; message is safe to show
    ├── ConfigError             bad settings
    ├── NotFound                unknown DID, job or result (HTTP 404)
    ├── BadRequest              malformed or inconsistent input (HTTP 400)
    │   ├── PolicyRefused       the asset's compute policy refuses the request (HTTP 403)
    │   └── TooLarge            a body or upload over the node's limit (HTTP 413)
    ├── AuthError               missing/bad signature, stale nonce, not the owner (HTTP 401/403)
    │   └── Forbidden           authenticated, but not allowed (HTTP 403)
    ├── Conflict                the request clashes with the job's state (HTTP 409)
    ├── Gone                    it existed, and was deleted on purpose (expired results, HTTP 410)
    ├── RateLimited             over the caller's rate; ``retry_after`` seconds (HTTP 429)
    ├── Unavailable             the node cannot take it now (its disk is full, HTTP 503)
    └── RemoteError             a peer (provider, operator) answered with an error

Messages never carry secrets: no key, database URL or dataset location.
"""

from __future__ import annotations


class AtollError(Exception):
    """Every error Atoll reports: ``message`` is one line a user can act on."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(AtollError):
    """The settings, the node directory or the installation are not as they must be."""

    status_code = 500


class NotFound(AtollError):
    """No such asset, job, agreement or file."""

    status_code = 404


class BadRequest(AtollError):
    """The request or its input is invalid."""

    status_code = 400


class PolicyRefused(BadRequest):
    """The asset's compute policy does not allow what was asked."""

    status_code = 403


class TooLarge(BadRequest):
    """The request's body is over the node's limit for its route."""

    status_code = 413


class AuthError(AtollError):
    """The request is unsigned, badly signed, or its nonce is stale."""

    status_code = 401


class Forbidden(AuthError):
    """The signer is known but not allowed to do this."""

    status_code = 403


class Conflict(AtollError):
    """The request clashes with the current state (a DID taken, a job ended)."""

    status_code = 409


class Gone(AtollError):
    """What was asked for existed and is no longer kept (results past their storage time)."""

    status_code = 410


class RateLimited(AtollError):
    """The caller is over its rate: ``retry_after`` is how many seconds to wait."""

    status_code = 429

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(AtollError):
    """The node cannot take the request now (its storage is over its cap); later it may."""

    status_code = 503


class RemoteError(AtollError):
    """A provider's error not mapped to another type, or a provider out of reach."""

    def __init__(self, message: str, status_code: int = 502) -> None:
        super().__init__(message)
        self.status_code = status_code
