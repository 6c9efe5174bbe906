"""A dataset's compute policy in words, for its asset page."""

from __future__ import annotations

from atoll.models.ddo import ComputePolicy

MODES = {
    "off": "Outputs are not checked: this is open data.",
    "auto": "Outputs are checked automatically; what the checks cannot clear is held for a "
    "reviewer.",
    "review": "Every output is held until a reviewer approves it.",
}


def policy_words(policy: ComputePolicy | None) -> list[str]:
    if policy is None:
        return ["This asset offers no compute service."]
    out = policy.outputPolicy
    words = [
        "Raw algorithms (your own code) may run on it."
        if policy.allowRawAlgorithm
        else "Only the publisher's trusted algorithms may run on it.",
        f"One agreement allows {policy.maxJobs} job{'s' if policy.maxJobs != 1 else ''}.",
        MODES.get(out.mode, out.mode),
    ]
    if policy.allowNetworkAccess:
        hosts = ", ".join(policy.networkAllowlist) or "no host"
        words.append(f"Jobs may reach these hosts: {hosts}.")
    else:
        words.append("Jobs have no network access.")
    if out.mode != "off":
        c = out.checks
        words.append(
            f"Table cells and groups under {c.threshold} are held; at most {c.maxCsvRows} CSV "
            f"rows and {c.maxBytes} bytes per file; file types allowed: "
            f"{', '.join(c.allowedTypes)}."
        )
        if out.reviewersRequired > 1:
            words.append(f"{out.reviewersRequired} reviewers must approve a held file.")
    return words
