"""The dashboard in a real browser: Playwright driving Debian's headless Chromium against a
real provider on a loopback port (real sandbox jobs, real chain).

One browser for the session; each test gets its own context in which every request to
anything but the provider is blocked and recorded, every dialog and script error is
recorded, and a failing test leaves a screenshot under test-artifacts/.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from atoll.signing import Key
from tests.helpers import Running, require_sandbox, running_provider

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

#: a browser wallet (EIP-1193) whose keys live in the test: what MetaMask injects
WALLET = """
window.ethereum = {
  isAtollTestWallet: true,
  request: async ({ method, params }) => {
    const answer = await window.atollWallet(method, params || []);
    if (answer && answer.error) { throw new Error(answer.error); }
    return answer.result;
  },
};
"""


def browser_or_skip() -> None:
    reason = ""
    try:
        import playwright  # noqa: F401
    except ImportError:
        reason = "playwright is not installed"
    if not reason and not os.path.exists(CHROMIUM):
        reason = "Debian's chromium is not installed"
    if reason:
        if os.environ.get("ATOLL_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " and ATOLL_REQUIRE_BROWSER=1")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One browser per module, closed after it: while Playwright's sync API is open it marks
    its event loop as running in the main thread, where it would refuse the asyncio.run of
    the tests that run after these in the same process."""
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    require_sandbox()
    with running_provider(tmp_path_factory.mktemp("ui") / "home") as running:
        yield running


@dataclass
class Watched:
    """A browser page with what it did that it should not have."""

    page: Any
    context: Any
    base: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def clean(self) -> None:
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"
        assert self.errors == [], f"script errors: {self.errors}"
        assert self.blocked == [], f"requests beyond the provider: {self.blocked}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


def open_page(browser: Any, base: str, key: Key | None = None) -> Watched:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    watched = Watched(page, context, base)

    def route(r: Any) -> None:
        if r.request.url.startswith(base + "/"):
            r.continue_()
        else:
            watched.blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page.on("dialog", lambda d: (watched.dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: watched.errors.append(str(e)))
    if key is not None:
        install_wallet(context, key)
    return watched


def install_wallet(context: Any, key: Key) -> None:
    def answer(method: str, params: list[Any]) -> dict[str, Any]:
        if method in ("eth_requestAccounts", "eth_accounts"):
            return {"result": [key.address]}
        if method == "personal_sign":
            data = bytes.fromhex(str(params[0]).removeprefix("0x"))
            signed = Account.sign_message(encode_defunct(primitive=data), key.private_key)
            sig = signed.signature.hex()
            return {"result": sig if sig.startswith("0x") else "0x" + sig}
        return {"error": f"unsupported {method}"}

    context.expose_function("atollWallet", answer)
    context.add_init_script(WALLET)


@pytest.fixture
def pages(
    browser: Any, provider: Running, request: pytest.FixtureRequest
) -> Iterator[list[Watched]]:
    """Open pages with ``pages.append(open_page(...))``-like helpers; each is checked clean
    and closed at the end, with a screenshot if the test failed."""
    opened: list[Watched] = []
    yield opened
    failed = request.node.stash.get(_FAILED, True)
    for n, w in enumerate(opened):
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
            # the page may be gone; the test's own failure says why
            with contextlib.suppress(Exception):
                w.page.screenshot(path=str(ARTIFACTS / f"{name}-{n}.png"), full_page=True)
        w.context.close()


def sign_in(browser: Any, provider: Running, key: Key, pages: list[Watched]) -> Watched:
    """A page signed in with Sign-In with Ethereum from the test wallet."""
    w = open_page(browser, provider.url, key)
    pages.append(w)
    w.goto("/ui/login")
    w.page.click("#siwe")
    w.page.wait_for_url(provider.url + "/ui/")
    assert w.page.inner_text("#who") == key.address
    return w


def cli_login(browser: Any, provider: Running, key_file: Path, pages: list[Watched]) -> Watched:
    """A page signed in by ``atoll ui login``: the URL it prints, opened."""
    from typer.testing import CliRunner

    from atoll.cli.main import app

    result = CliRunner().invoke(
        app, ["ui", "login", "--no-open", "--provider", provider.url, "--key", str(key_file)]
    )
    assert result.exit_code == 0, result.output
    url = re.search(r"http://\S+/ui/login/code\?code=\S+", result.output.replace("\n", ""))
    assert url is not None, result.output
    w = open_page(browser, provider.url)
    pages.append(w)
    w.page.goto(url.group(0))
    w.page.click("#continue")
    w.page.wait_for_url(provider.url + "/ui/")
    return w


def key_file(key: Key, where: Path) -> Path:
    path = where / "key"
    key.save(path)
    return path
