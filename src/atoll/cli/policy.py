"""atoll policy: what may run on your data."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from atoll.cli.common import JsonOpt, KeyOpt, ProviderOpt, client, console, print_json
from atoll.cli.untrusted import markup
from atoll.errors import BadRequest

if TYPE_CHECKING:
    from atoll.models.ddo import ComputePolicy

app = typer.Typer(
    help="Show or set a dataset's compute policy (publisher only).", no_args_is_help=True
)

DidArg = Annotated[str, typer.Argument(help="The dataset's DID")]


class OutputMode(StrEnum):
    auto = "auto"
    review = "review"
    off = "off"


def _show(policy: ComputePolicy) -> None:
    console.print(f"raw algorithms      {'allowed' if policy.allowRawAlgorithm else 'refused'}")
    trusted = policy.publisherTrustedAlgorithms
    console.print(f"trusted algorithms  {len(trusted) or 'none (no published algorithm may run)'}")
    for t in trusted:
        runtime = t.containerSectionChecksum
        pin = f" runtime/image {markup(runtime[:12])}…" if runtime else ""
        console.print(f"  {markup(t.did)}  files {markup(t.filesChecksum[:12])}…{pin}")
    pubs = policy.publisherTrustedAlgorithmPublishers
    console.print(f"trusted publishers  {markup(', '.join(pubs)) or 'none'}")
    hosts = markup(", ".join(policy.networkAllowlist)) or "no host listed"
    console.print(
        f"network             {'allowed: ' + hosts if policy.allowNetworkAccess else 'none'}"
    )
    console.print(f"jobs per agreement  {policy.maxJobs}")
    out = policy.outputPolicy
    console.print(f"output checks       {out.mode}")
    reviewers = markup(", ".join(out.reviewers)) or "the owner only"
    console.print(f"reviewers           {reviewers}; {out.reviewersRequired} needed per release")
    checks = out.checks
    console.print(f"  cell threshold    {checks.threshold}")
    console.print(f"  identifiers       {markup(', '.join(checks.identifiers)) or 'none marked'}")
    quasi = markup(", ".join(checks.quasiIdentifiers)) or "none marked"
    console.print(f"  quasi-identifiers {quasi}")


@app.command("show")
def show(
    did: DidArg, provider: ProviderOpt = None, key: KeyOpt = None, json: JsonOpt = False
) -> None:
    """Print a dataset's compute policy."""
    with client(provider, key, need_key=False) as c:
        service = c.asset(did).service("compute")
    if service is None or service.compute is None:
        raise BadRequest(f"{did} offers no compute service")
    print_json(service.compute.model_dump()) if json else _show(service.compute)


@app.command("set")
def set_(
    did: DidArg,
    raw: Annotated[
        bool | None,
        typer.Option(
            "--allow-raw-algorithm/--deny-raw-algorithm",
            help="Let consumers run their own code, or only trusted algorithms",
        ),
    ] = None,
    trust_algorithm: Annotated[
        list[str] | None,
        typer.Option(help="Trust a published algorithm by DID, pinned to its files (repeatable)"),
    ] = None,
    pin_runtime: Annotated[
        str | None,
        typer.Option(help="With --trust-algorithm: only in the environment with this id"),
    ] = None,
    untrust_algorithm: Annotated[
        list[str] | None, typer.Option(help="Stop trusting an algorithm (repeatable)")
    ] = None,
    trust_publisher: Annotated[
        list[str] | None, typer.Option(help="Trust every algorithm of an address (repeatable)")
    ] = None,
    untrust_publisher: Annotated[
        list[str] | None, typer.Option(help="Stop trusting an address (repeatable)")
    ] = None,
    network: Annotated[
        bool | None,
        typer.Option(
            "--allow-network/--no-network",
            help="Let jobs reach the listed hosts (in environments with network)",
        ),
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option(help="A host (or host:port) jobs may reach; replaces the list (repeatable)"),
    ] = None,
    max_jobs: Annotated[int | None, typer.Option(help="Jobs one agreement allows")] = None,
    output_checks: Annotated[
        OutputMode | None,
        typer.Option(
            help="auto: release what passes the checks, hold the rest; review: hold all; "
            "off: no checks (open data only)"
        ),
    ] = None,
    reviewer: Annotated[
        list[str] | None,
        typer.Option(help="An address that reviews held outputs; replaces the list (repeatable)"),
    ] = None,
    reviewers_required: Annotated[
        int | None, typer.Option(min=1, max=2, help="Distinct approvals a release needs")
    ] = None,
    identifier: Annotated[
        list[str] | None,
        typer.Option(help="A column that identifies a person; replaces the list (repeatable)"),
    ] = None,
    quasi_identifier: Annotated[
        list[str] | None,
        typer.Option(help="A column that singles people out with others (repeatable)"),
    ] = None,
    cell_threshold: Annotated[
        int | None, typer.Option(min=2, help="Smallest count a table cell may show")
    ] = None,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
) -> None:
    """Change a dataset's compute policy; options not given keep their value."""
    from atoll.cli.publish import trusted_entry
    from atoll.models.ddo import ComputePolicy, TrustedAlgorithm

    with client(provider, key) as c:
        service = c.asset(did).service("compute")
        if service is None or service.compute is None:
            raise BadRequest(f"{did} offers no compute service")
        policy = service.compute.model_copy(deep=True)
        if raw is not None:
            policy.allowRawAlgorithm = raw
        pin = ""
        if pin_runtime is not None:
            envs = {e["id"]: e for e in c.environments()}
            if pin_runtime not in envs:
                raise BadRequest(f"unknown environment {pin_runtime!r}")
            pin = envs[pin_runtime]["runtime"]["checksum"]
        drop = set(untrust_algorithm or []) | set(trust_algorithm or [])
        kept = [t for t in policy.publisherTrustedAlgorithms if t.did not in drop]
        for algo_did in trust_algorithm or []:
            # an algorithm in an image is pinned to that image's digest and entrypoint
            entry = trusted_entry(algo_did, c.asset(algo_did))
            if "containerSectionChecksum" in entry and pin:
                raise BadRequest(f"{algo_did} runs in its own image: --pin-runtime is not for it")
            entry.setdefault("containerSectionChecksum", pin)
            kept.append(TrustedAlgorithm.model_validate(entry))
        policy.publisherTrustedAlgorithms = kept
        pubs = [
            p
            for p in policy.publisherTrustedAlgorithmPublishers
            if p.lower() not in {u.lower() for u in untrust_publisher or []}
        ]
        policy.publisherTrustedAlgorithmPublishers = pubs + list(trust_publisher or [])
        if network is not None:
            policy.allowNetworkAccess = network
        if host is not None:
            policy.networkAllowlist = list(host)
        if max_jobs is not None:
            policy.maxJobs = max_jobs
        out = policy.outputPolicy
        if output_checks is not None:
            out.mode = output_checks.value
        if reviewer is not None:
            out.reviewers = list(reviewer)
        if reviewers_required is not None:
            out.reviewersRequired = reviewers_required
        if identifier is not None:
            out.checks.identifiers = list(identifier)
        if quasi_identifier is not None:
            out.checks.quasiIdentifiers = list(quasi_identifier)
        if cell_threshold is not None:
            out.checks.threshold = cell_threshold
        ddo = c.set_policy(did, ComputePolicy.model_validate(policy.model_dump()))
    new = ddo.service("compute")
    if new is not None and new.compute is not None:
        _show(new.compute)
