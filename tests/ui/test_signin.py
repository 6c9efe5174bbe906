"""Signing in to the dashboard (SIWE from a browser wallet, `atoll ui login`), and what a
request without the session, with another's, or without the CSRF token gets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from atoll.signing import Key
from tests.helpers import Running
from tests.ui.conftest import Watched, cli_login, key_file, sign_in


def test_a_wallet_signs_in_with_siwe_and_signs_out(
    browser: Any, provider: Running, pages: list[Watched]
) -> None:
    key = provider.publisher.key
    assert key is not None
    w = sign_in(browser, provider, key, pages)
    cookie = next(c for c in w.context.cookies() if c["name"] == "atoll_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    w.page.click("#logout")
    w.page.wait_for_url(provider.url + "/ui/login")
    # the old cookie opens nothing any more
    answer = httpx.get(provider.url + "/ui/jobs", cookies={"atoll_session": cookie["value"]})
    assert answer.status_code == 401
    w.clean()


def test_a_siwe_message_is_used_once_and_only_here(provider: Running) -> None:
    key = Key.generate()
    with httpx.Client(base_url=provider.url) as http:
        message = http.post("/ui/siwe/message", json={"address": key.address}).json()["message"]
        from eth_account import Account
        from eth_account.messages import encode_defunct

        sig = Account.sign_message(encode_defunct(text=message), key.private_key).signature.hex()
        sig = sig if sig.startswith("0x") else "0x" + sig
        # another domain's message, or one changed after signing, is refused
        other = message.replace("127.0.0.1", "evil.example", 1)
        assert (
            http.post("/ui/siwe/verify", json={"message": other, "signature": sig}).status_code
            == 401
        )
        first = http.post("/ui/siwe/verify", json={"message": message, "signature": sig})
        assert first.status_code == 200 and first.json()["address"] == key.address
        again = http.post("/ui/siwe/verify", json={"message": message, "signature": sig})
        assert again.status_code == 401 and "nonce" in again.json()["error"]


def test_atoll_ui_login_opens_a_session_once(
    browser: Any, provider: Running, pages: list[Watched], tmp_path: Path
) -> None:
    key = Key.generate()
    w = cli_login(browser, provider, key_file(key, tmp_path), pages)
    assert w.page.inner_text("#who") == key.address
    # the page it lands on carries no code, and the code is spent
    assert "code=" not in w.page.url
    w.clean()


def test_a_cli_code_works_once(provider: Running) -> None:
    key = Key.generate()
    from atoll import signing

    with httpx.Client(base_url=provider.url) as http:
        challenge = http.post("/ui/cli/challenge", json={"address": key.address}).json()
        text = signing.message("ui-login", provider.url, key.address, challenge["challenge"])
        body = {
            "address": key.address,
            "challenge": challenge["challenge"],
            "signature": key.sign(text),
        }
        url = http.post("/ui/cli/code", json=body).json()["url"]
        # the challenge too is single-use
        assert http.post("/ui/cli/code", json=body).status_code == 401
        code = url.split("code=", 1)[1]
        # opening the link spends nothing and signs nobody in
        opened = http.get(url, follow_redirects=False)
        assert opened.status_code == 200 and "atoll_session" not in opened.cookies
        first = http.post("/ui/login/code", data={"code": code}, follow_redirects=False)
        assert first.status_code == 303 and "atoll_session" in first.cookies
        again = http.post("/ui/login/code", data={"code": code}, follow_redirects=False)
        assert again.status_code == 401


def test_another_site_cannot_sign_a_browser_in_with_its_code(provider: Running) -> None:
    """Login CSRF: a page elsewhere that posts a code of the attacker's would put the
    victim's browser in the attacker's session; the browser's headers give it away."""
    key = Key.generate()
    with httpx.Client(base_url=provider.url) as http:
        code = _code(http, provider, key)
        for headers in (
            {"origin": "https://elsewhere.example"},
            {"sec-fetch-site": "cross-site"},
            {"sec-fetch-site": "same-site", "origin": "http://other.localhost"},
        ):
            refused = http.post(
                "/ui/login/code", data={"code": code}, headers=headers, follow_redirects=False
            )
            assert refused.status_code == 403, headers
            assert "atoll_session" not in refused.cookies
        # the code was not spent by the refused tries: the dashboard's own page still works
        own = {"origin": provider.url, "sec-fetch-site": "same-origin"}
        first = http.post(
            "/ui/login/code", data={"code": code}, headers=own, follow_redirects=False
        )
        assert first.status_code == 303 and "atoll_session" in first.cookies


def _code(http: httpx.Client, provider: Running, key: Key) -> str:
    from atoll import signing

    challenge = http.post("/ui/cli/challenge", json={"address": key.address}).json()["challenge"]
    text = signing.message("ui-login", provider.url, key.address, challenge)
    url = http.post(
        "/ui/cli/code",
        json={"address": key.address, "challenge": challenge, "signature": key.sign(text)},
    ).json()["url"]
    return str(url.split("code=", 1)[1])


@contextlib.contextmanager
def _session(provider: Running, key: Key) -> Iterator[httpx.Client]:
    """An HTTP client holding a session of ``key``'s, opened as ``atoll ui login`` does."""
    from atoll import signing

    http = httpx.Client(base_url=provider.url)
    challenge = http.post("/ui/cli/challenge", json={"address": key.address}).json()["challenge"]
    text = signing.message("ui-login", provider.url, key.address, challenge)
    code = (
        http.post(
            "/ui/cli/code",
            json={"address": key.address, "challenge": challenge, "signature": key.sign(text)},
        )
        .json()["url"]
        .split("code=", 1)[1]
    )
    signed_in = http.post("/ui/login/code", data={"code": code}, follow_redirects=False)
    assert signed_in.status_code == 303
    try:
        yield http
    finally:
        http.close()


def test_without_a_session_or_a_csrf_token_nothing_is_served_or_changed(
    provider: Running,
) -> None:
    did = provider.dataset(name="csrf-target")
    with httpx.Client(base_url=provider.url) as stranger:
        for path in ("/ui/", "/ui/jobs", "/ui/review", "/ui/mine", "/ui/earnings"):
            answer = stranger.get(path)
            assert answer.status_code == 401, path
            assert "Sign in" in answer.text
        refused = stranger.post(f"/ui/assets/{did}/policy", data={"mode": "off"})
        assert refused.status_code == 401
    owner = provider.publisher.key
    assert owner is not None
    with _session(provider, owner) as http:
        # signed in, but the form carries no CSRF token, or a wrong one: refused
        for extra in ({}, {"csrf": "forged"}):
            answer = http.post(f"/ui/assets/{did}/policy", data={"mode": "review", **extra})
            assert answer.status_code == 403 and "CSRF" in answer.text
        assert (
            provider.publisher.asset(did).service("compute").compute.outputPolicy.mode != "review"
        )


def test_another_users_session_sees_none_of_my_jobs(provider: Running) -> None:
    did = provider.dataset(name="mine-only")
    info = provider.consumer.start(did, rawcode="print('hello')\n")
    other = provider.other.key
    assert other is not None
    with _session(provider, other) as http:
        answer = http.get(f"/ui/jobs/{info.jobId}")
        assert answer.status_code == 404
        assert http.get(f"/ui/jobs/{info.jobId}/events").status_code == 404
        assert http.get(f"/ui/jobs/{info.jobId}/results/0").status_code == 404
        assert info.jobId not in http.get("/ui/jobs").text
    provider.consumer.wait(info.jobId, timeout=60)


def test_atoll_ui_logout_revokes_every_session(provider: Running, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from atoll.cli.main import app

    key = Key.generate()
    with _session(provider, key) as http:
        assert http.get("/ui/jobs").status_code == 200
        result = CliRunner().invoke(
            app,
            ["ui", "logout", "--provider", provider.url, "--key", str(key_file(key, tmp_path))],
        )
        assert result.exit_code == 0 and "1 session revoked" in result.output
        assert http.get("/ui/jobs").status_code == 401


@pytest.mark.parametrize("path", ["/ui/login", "/ui/catalogue"])
def test_every_page_forbids_inline_script_and_framing(provider: Running, path: str) -> None:
    answer = httpx.get(provider.url + path)
    csp = answer.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
