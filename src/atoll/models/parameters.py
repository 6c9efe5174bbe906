"""A consumer's algorithm parameters checked against what the algorithm declares: the
provider checks them before a job, the CLI checks a publisher's defaults before publishing."""

from __future__ import annotations

from typing import Any

from atoll.errors import BadRequest
from atoll.models.ddo import ConsumerParameter


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
