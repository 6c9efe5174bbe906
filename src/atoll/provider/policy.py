"""The dataset's compute policy, applied before a workflow is registered."""

from __future__ import annotations

from typing import Any

from atoll.errors import BadRequest, PolicyRefused
from atoll.models.ddo import DDO, ComputePolicy, ConsumerParameter
from atoll.models.environment import Environment


def compute_policy(ddo: DDO) -> ComputePolicy:
    service = ddo.service("compute")
    if service is None or service.compute is None:
        raise PolicyRefused(f"{ddo.id} offers no compute service")
    return service.compute


def check_algorithm(dataset: DDO, algorithm: DDO | None, runtime_checksum: str = "") -> str:
    """Raise :class:`PolicyRefused` unless the dataset's policy lets this algorithm run in a
    runtime with ``runtime_checksum``. ``algorithm`` None means raw code. An empty trust list
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
                    "(containerSectionChecksum differs from this environment's)"
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


def validate_parameters(declared: list[ConsumerParameter], given: dict[str, Any]) -> dict[str, Any]:
    """Check consumer parameters against the algorithm's declaration; fill in defaults."""
    known = {p.name: p for p in declared}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise BadRequest(f"unknown parameter(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for p in declared:
        if p.name not in given:
            if p.required:
                raise BadRequest(f"parameter {p.name!r} is required")
            if p.default is not None:
                out[p.name] = p.default
            continue
        out[p.name] = _coerce(p, given[p.name])
    return out


def _coerce(p: ConsumerParameter, value: Any) -> Any:
    if p.type == "number":
        if isinstance(value, bool):
            raise BadRequest(f"parameter {p.name!r} must be a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise BadRequest(f"parameter {p.name!r} must be a number") from None
        return int(number) if number.is_integer() else number
    if p.type == "boolean":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise BadRequest(f"parameter {p.name!r} must be true or false")
    text = str(value)
    if p.type == "select" and text not in p.options:
        raise BadRequest(f"parameter {p.name!r} must be one of: {', '.join(p.options)}")
    return text
