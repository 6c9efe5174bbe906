"""Which hosts a dataset's network allowlist may name.

A job reaches the listed hosts through the engine's proxy, from the provider's own network.
So an allowlist may not name the provider itself, nor what only the provider can reach:
loopback, link-local (cloud metadata), private and other non-public addresses, and the
addresses of the provider's own interfaces. Names are resolved, and every address they
resolve to must be public. The operator may list exceptions (``network_private_hosts``:
a local data service, say) and may restrict allowlists to the hosts it names
(``network_hosts``); a wildcard (``*.example.com``) cannot be resolved, so it is accepted
only where the operator's ``network_hosts`` covers it.

The check runs when a policy is published or set, and again at each job's start, since
names resolve differently over time; the proxy, for its part, refuses names that resolve
to loopback or link-local addresses when the job connects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from atoll.engine.sandbox.allowlist import Rule
from atoll.errors import AtollError, BadRequest, ConfigError
from atoll.storage.guard import IPAddress, local_addresses, plain_address, system_resolver


def _kind(address: IPAddress) -> str:
    """Why a job may not be sent to ``address``, or "" if it may."""
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return ""


def _covers(rule: Rule, entry: Rule) -> bool:
    """Whether the operator's ``rule`` allows everything the allowlist's ``entry`` does."""
    if rule.port is not None and rule.port != entry.port:
        return False
    if rule.host == entry.host:
        return True
    if rule.host.startswith("*."):
        suffix = rule.host[1:]
        return entry.host.endswith(suffix) and entry.address is None
    return False


def _parse(entries: Iterable[str], what: str, error: type[AtollError] = BadRequest) -> list[Rule]:
    rules = []
    for e in entries:
        try:
            rules.append(Rule.parse(e))
        except ValueError as exc:
            raise error(f"{what}: {exc}") from None
    return rules


class HostRules:
    def __init__(
        self,
        allowed: Iterable[str] = (),
        private: Iterable[str] = (),
        own: Callable[[], set[IPAddress]] = local_addresses,
        resolver: Callable[[str, int], list[IPAddress]] = system_resolver,
    ) -> None:
        #: when not empty, the only hosts an allowlist may name
        self.allowed = _parse(allowed, "setting network_hosts", ConfigError)
        #: hosts the operator lets allowlists name although they are not public
        self.private = _parse(private, "setting network_private_hosts", ConfigError)
        self.own = own
        self.resolver = resolver

    def check(self, entries: Iterable[str]) -> None:
        """Raise :class:`BadRequest` naming the first entry a job may not be sent to."""
        own: set[IPAddress] | None = None
        for text in entries:
            [entry] = _parse([text], "networkAllowlist")
            if self.allowed and not any(_covers(r, entry) for r in self.allowed):
                raise BadRequest(
                    f"networkAllowlist: {text!r} is not among the hosts this provider lets "
                    "jobs reach"
                )
            if any(_covers(r, entry) for r in self.private):
                continue
            if entry.host.startswith("*."):
                if not self.allowed:
                    raise BadRequest(
                        f"networkAllowlist: {text!r} is a wildcard, which this provider "
                        "cannot check: name each host"
                    )
                continue  # a domain the operator allows as a whole
            addresses = [entry.address] if entry.address is not None else self._resolve(text)
            if own is None:
                own = {plain_address(a) for a in self.own()}
            for address in addresses:
                plain = plain_address(address)
                why = _kind(plain) or ("the provider's own address" if plain in own else "")
                if why:
                    lead = "is" if entry.address is not None else f"resolves to {plain}:"
                    raise BadRequest(
                        f"networkAllowlist: {text!r} {lead} {why}, which jobs may not reach"
                    )

    def _resolve(self, text: str) -> list[IPAddress]:
        rule = Rule.parse(text)
        try:
            found = self.resolver(rule.host, rule.port or 443)
        except (OSError, UnicodeError):
            found = []
        if not found:
            raise BadRequest(f"networkAllowlist: {text!r} does not resolve to any address")
        return found
