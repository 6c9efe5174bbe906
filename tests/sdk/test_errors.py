"""The SDK's answer to a provider's refusal: one typed error per status, the message the
provider gave, and a bounded wait for a rate limit whatever its header says."""

from __future__ import annotations

import httpx
import pytest

from atoll.errors import (
    AtollError,
    BadRequest,
    Conflict,
    Gone,
    NotFound,
    RateLimited,
    RemoteError,
    TooLarge,
    Unavailable,
)
from atoll.sdk.client import _error


def answer(status: int, error: str = "no", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": error}, headers=headers)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequest),
        (404, NotFound),
        (409, Conflict),
        (410, Gone),
        (413, TooLarge),
        (429, RateLimited),
        (503, Unavailable),
    ],
)
def test_each_refusal_has_its_type(status: int, kind: type[AtollError]) -> None:
    error = _error(answer(status, "the reason"))
    assert type(error) is kind
    assert error.message == "the reason"
    assert error.status_code == status


def test_a_body_over_the_limit_is_a_bad_request_too() -> None:
    assert isinstance(_error(answer(413)), BadRequest)


@pytest.mark.parametrize(
    ("header", "wait"),
    [("17", 17), ("0", 1), ("-5", 1), ("soon", 1), ("9" * 5000, 1), ("1.5", 1), ("99999", 3600)],
)
def test_retry_after_is_read_and_bounded(header: str, wait: int) -> None:
    error = _error(answer(429, "slow down", **{"Retry-After": header}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == wait


def test_a_header_that_is_not_ascii_waits_a_second() -> None:
    superscript_two = httpx.Response(429, json={}, headers=[(b"Retry-After", b"\xc2\xb2")])
    error = _error(superscript_two)
    assert isinstance(error, RateLimited) and error.retry_after == 1


def test_a_rate_limit_without_a_header_waits_a_second() -> None:
    error = _error(answer(429))
    assert isinstance(error, RateLimited) and error.retry_after == 1


def test_an_unknown_status_stays_a_remote_error() -> None:
    error = _error(answer(418, "teapot"))
    assert type(error) is RemoteError
    assert error.status_code == 418 and "teapot" in error.message
