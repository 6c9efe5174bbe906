"""Which output policy a job runs under, and which policies a dataset may have."""

from __future__ import annotations

from collections.abc import Sequence

from atoll.errors import PolicyRefused
from atoll.models.ddo import DDO, ComputePolicy
from atoll.models.output_policy import OutputChecks, OutputPolicy

#: from the most open to the strictest
OUTPUT_MODES = ("off", "auto", "review")


def policy_of(ddo: DDO) -> OutputPolicy:
    """A dataset's output policy; one without a compute policy gets the default."""
    service = ddo.service("compute")
    if service is None or service.compute is None:
        return OutputPolicy()
    return service.compute.outputPolicy


def strictest(policies: Sequence[OutputPolicy]) -> OutputPolicy:
    """One policy for a job on several datasets: every check at its strictest setting, every
    reviewer any of them names, the higher number of reviewers."""
    if not policies:
        return OutputPolicy()
    checks = [p.checks for p in policies]
    allowed = [t for t in checks[0].allowedTypes if all(t in c.allowedTypes for c in checks)]
    reviewers: list[str] = []
    for p in policies:
        reviewers += [r for r in p.reviewers if r.lower() not in {x.lower() for x in reviewers}]
    return OutputPolicy(
        mode=max((p.mode for p in policies), key=OUTPUT_MODES.index),
        reviewers=reviewers[:32],
        reviewersRequired=max(p.reviewersRequired for p in policies),
        checks=OutputChecks(
            allowedTypes=allowed,
            maxBytes=min(c.maxBytes for c in checks),
            maxCsvRows=min(c.maxCsvRows for c in checks),
            threshold=max(c.threshold for c in checks),
            dominanceN=max(c.dominanceN for c in checks),
            dominanceK=min(c.dominanceK for c in checks),
            identifiers=sorted({i for c in checks for i in c.identifiers})[:256],
            quasiIdentifiers=sorted({i for c in checks for i in c.quasiIdentifiers})[:256],
            guessIdentifiers=any(c.guessIdentifiers for c in checks),
        ),
    )


def check_compute_policy(policy: ComputePolicy | None) -> None:
    """Refuse a policy that turns the checks off on data that marks identifiers: ``off`` is
    for open data only."""
    if policy is None:
        return
    out = policy.outputPolicy
    if out.mode == "off" and (out.checks.identifiers or out.checks.quasiIdentifiers):
        raise PolicyRefused(
            "an output policy of 'off' is for open data only: this dataset marks identifier "
            "columns, so its outputs must be checked ('auto' or 'review')"
        )
