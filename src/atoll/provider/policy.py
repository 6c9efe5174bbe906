"""The dataset's compute policy, applied before a workflow is registered."""

from __future__ import annotations

from collections.abc import Callable

from atoll.catalog.store import AssetStore
from atoll.errors import BadRequest, NotFound, PolicyRefused
from atoll.models.ddo import DDO, ComputePolicy, TrustedAlgorithm
from atoll.models.environment import Environment
from atoll.provider.review_policy import OUTPUT_MODES
from atoll.provider.review_policy import strictest as strictest_output


def compute_policy(ddo: DDO) -> ComputePolicy:
    service = ddo.service("compute")
    if service is None or service.compute is None:
        raise PolicyRefused(f"{ddo.id} offers no compute service")
    return service.compute


def check_algorithm(dataset: DDO, algorithm: DDO | None, runtime_checksum: str = "") -> str:
    """Raise :class:`PolicyRefused` unless the dataset's policy lets this algorithm run in a
    runtime with ``runtime_checksum`` (an image's containerSectionChecksum, or the host
    runtime's checksum). ``algorithm`` None means raw code. An empty trust list
    trusts nobody. Returns the rule that let it run (for the receipt)."""
    policy = compute_policy(dataset)
    if algorithm is None:
        if not policy.allowRawAlgorithm:
            raise PolicyRefused(f"{dataset.id} does not allow raw algorithms")
        return "raw"
    if algorithm.metadata.type != "algorithm":
        raise BadRequest(f"{algorithm.id} is not an algorithm")
    for trusted in policy.publisherTrustedAlgorithms:
        if trusted.did == algorithm.id:
            if trusted.filesChecksum != algorithm.filesChecksum:
                raise PolicyRefused(
                    f"{algorithm.id} has changed since {dataset.id} trusted it "
                    "(its files checksum differs)"
                )
            pinned = trusted.containerSectionChecksum
            if pinned and pinned != runtime_checksum:
                raise PolicyRefused(
                    f"{dataset.id} trusts {algorithm.id} only in another runtime "
                    "(its containerSectionChecksum differs from this image and entrypoint's, "
                    "or this environment's)"
                )
            return "trusted-algorithm"
    owners = {p.lower() for p in policy.publisherTrustedAlgorithmPublishers}
    if algorithm.owner.lower() in owners:
        return "trusted-publisher"
    raise PolicyRefused(f"{dataset.id} does not trust algorithm {algorithm.id}")


def egress_for(datasets: list[DDO], env: Environment) -> list[str]:
    """Hosts a job may reach: only in an environment with network, only if every dataset
    allows network, and only the hosts all of them list. Otherwise none."""
    if not env.network:
        return []
    allowed: set[str] | None = None
    for ddo in datasets:
        policy = compute_policy(ddo)
        if not policy.allowNetworkAccess:
            return []
        hosts = {h.lower() for h in policy.networkAllowlist}
        allowed = hosts if allowed is None else allowed & hosts
    return sorted(allowed or set())


#: the owner of an algorithm asset by DID, or None when it is unknown
OwnerOf = Callable[[str], str | None]


def _accepts(policy: ComputePolicy, algo: TrustedAlgorithm, owner_of: OwnerOf) -> bool:
    """Whether ``policy`` lets ``algo`` run wherever ``algo`` itself would (its pin)."""
    for t in policy.publisherTrustedAlgorithms:
        if (
            t.did == algo.did
            and t.filesChecksum == algo.filesChecksum
            and t.containerSectionChecksum in ("", algo.containerSectionChecksum)
        ):
            return True
    owner = owner_of(algo.did)
    publishers = {p.lower() for p in policy.publisherTrustedAlgorithmPublishers}
    return owner is not None and owner.lower() in publishers


def strictest(policies: list[ComputePolicy], owner_of: OwnerOf) -> ComputePolicy:
    """What every one of ``policies`` allows, and nothing more: the policy a derived asset
    inherits from its inputs. Raw code and network only if all allow them, only the hosts
    all list, only algorithms and publishers all trust; the strictest output checks of any."""
    if not policies:
        return ComputePolicy()
    network = all(p.allowNetworkAccess for p in policies)
    hosts = [h for h in policies[0].networkAllowlist if network]
    for p in policies[1:]:
        listed = {h.lower() for h in p.networkAllowlist}
        hosts = [h for h in hosts if h.lower() in listed]
    publishers = [a.lower() for a in policies[0].publisherTrustedAlgorithmPublishers]
    for p in policies[1:]:
        listed = {a.lower() for a in p.publisherTrustedAlgorithmPublishers}
        publishers = [a for a in publishers if a in listed]
    trusted: list[TrustedAlgorithm] = []
    for t in (t for p in policies for t in p.publisherTrustedAlgorithms):
        if t not in trusted and all(_accepts(p, t, owner_of) for p in policies):
            trusted.append(t)
    return ComputePolicy(
        allowRawAlgorithm=all(p.allowRawAlgorithm for p in policies),
        allowNetworkAccess=network,
        networkAllowlist=hosts,
        publisherTrustedAlgorithms=trusted,
        publisherTrustedAlgorithmPublishers=list(dict.fromkeys(publishers)),
        outputPolicy=strictest_output([p.outputPolicy for p in policies]),
    )


def inherited_policy(assets: AssetStore, inputs: list[str]) -> ComputePolicy:
    """The strictest policy of the assets ``inputs`` (an unknown one allows nothing)."""
    policies = []
    owners = []
    for did in inputs:
        try:
            ddo = assets.get(did)
            owners.append(ddo.owner)
            policies.append(compute_policy(ddo))
        except (NotFound, PolicyRefused):
            policies.append(ComputePolicy())
    policy = strictest(policies, owner_lookup(assets))
    # the inputs' owners go on reviewing what is made of their data
    out = policy.outputPolicy
    listed = {r.lower() for r in out.reviewers}
    out.reviewers = (out.reviewers + [o for o in owners if o.lower() not in listed])[:32]
    return policy


def ceiling_of(assets: AssetStore, ddo: DDO) -> ComputePolicy | None:
    """The widest policy ``ddo``'s owner may set: for a derived asset, what its inputs
    allowed (recorded when it was made, or else what they allow now); None for others."""
    provenance = ddo.metadata.provenance
    if provenance is None:
        return None
    if provenance.inheritedPolicy is not None:
        return provenance.inheritedPolicy
    return inherited_policy(assets, provenance.inputs)


def owner_lookup(assets: AssetStore) -> OwnerOf:
    def owner_of(did: str) -> str | None:
        try:
            return assets.get(did).owner
        except NotFound:
            return None

    return owner_of


def widening(new: ComputePolicy, ceiling: ComputePolicy, owner_of: OwnerOf) -> str:
    """What ``new`` allows that ``ceiling`` does not, in words, or "" when it only narrows.
    The number of jobs per agreement is a commercial term, not a permission: free."""
    if new.allowRawAlgorithm and not ceiling.allowRawAlgorithm:
        return "raw algorithms"
    if new.allowNetworkAccess:
        if not ceiling.allowNetworkAccess:
            return "network access"
        listed = {h.lower() for h in ceiling.networkAllowlist}
        for host in new.networkAllowlist:
            if host.lower() not in listed:
                return f"network access to {host}"
    if OUTPUT_MODES.index(new.outputPolicy.mode) < OUTPUT_MODES.index(ceiling.outputPolicy.mode):
        return f"output checks '{new.outputPolicy.mode}'"
    if new.outputPolicy.reviewersRequired < ceiling.outputPolicy.reviewersRequired:
        return "fewer reviewers per release"
    publishers = {a.lower() for a in ceiling.publisherTrustedAlgorithmPublishers}
    for a in new.publisherTrustedAlgorithmPublishers:
        if a.lower() not in publishers:
            return f"the algorithms of {a}"
    for t in new.publisherTrustedAlgorithms:
        if not _accepts(ceiling, t, owner_of):
            return f"algorithm {t.did}"
    return ""
