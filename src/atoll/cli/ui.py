"""atoll ui: sign in to the provider's web dashboard with the CLI's key, or sign out."""

from __future__ import annotations

import webbrowser
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from atoll.cli.common import KeyOpt, ProviderOpt, client, console
from atoll.cli.untrusted import markup

app = typer.Typer(help="The web dashboard: sign in with your key, sign out.", no_args_is_help=True)


def _post(c: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    from atoll.errors import AtollError, RemoteError

    try:
        response = c._http.post(path, json=body)
    except httpx.TransportError as exc:
        raise RemoteError(f"cannot reach the provider at {c.url} ({type(exc).__name__})") from None
    if not response.is_success:
        try:
            said = str(response.json().get("error", ""))
        except ValueError:
            said = ""
        raise AtollError(said or f"the provider refused ({response.status_code})")
    found: dict[str, Any] = response.json()
    return found


@app.command("login")
def login(
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a browser")
    ] = True,
) -> None:
    """Sign a one-time challenge with your key and open the dashboard signed in. The link
    works once, within a minute."""
    from atoll import signing

    with client(provider, key) as c:
        me = c._key()
        parts = urlsplit(c.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        challenge = _post(c, "/ui/cli/challenge", {"address": me.address})["challenge"]
        # the text is ours, not the server's: the key signs only a dashboard sign-in
        text = signing.message("ui-login", origin, me.address, str(challenge))
        body = {"address": me.address, "challenge": challenge, "signature": me.sign(text)}
        url = str(_post(c, "/ui/cli/code", body)["url"])
    console.print(f"Open within a minute (it works once): {markup(url)}")
    if open_browser:
        webbrowser.open(url)


@app.command("logout")
def logout(provider: ProviderOpt = None, key: KeyOpt = None) -> None:
    """Revoke every dashboard session of your address."""
    from atoll import signing

    with client(provider, key) as c:
        me = c._key()
        nonce = me.next_nonce()
        body = {
            "consumerAddress": me.address,
            "nonce": nonce,
            "signature": me.sign(signing.message("ui-logout", me.address, nonce)),
        }
        revoked = _post(c, "/ui/cli/logout", body)["revoked"]
    console.print(f"Signed out: {revoked} session{'s' if revoked != 1 else ''} revoked")
