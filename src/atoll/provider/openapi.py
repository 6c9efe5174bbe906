"""The OpenAPI document as the provider really answers: errors are ``{"error": message}``
with the codes each route can send, not FastAPI's 422 (which the provider never sends).

The codes follow from what a route takes: any input can be malformed (400), a body can be
too large (413), a signed request can fail its signature or nonce (401), be refused (403),
name what the caller does not own (404) or clash with a job's state (409), a path names
something that may not exist (404), and unsigned routes are rate limited (429).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from atoll.provider.routes.common import SIGNING_FIELDS


class ErrorBody(BaseModel):
    """Every error the provider answers."""

    error: str


MEANING = {
    400: "The request is malformed or inconsistent",
    401: "The signature is missing or wrong, or the nonce was used",
    402: "No agreement, or its payment is not locked in escrow",
    403: "Authenticated, but not allowed (or refused by the asset's policy)",
    404: "Unknown, or not the caller's",
    409: "Clashes with the job's state",
    410: "The job's results and logs expired and were deleted (its receipt is kept)",
    413: "The request body is over this route's limit",
    416: "The range starts past the end of the file",
    429: "Too many requests; the Retry-After header says when to retry",
    503: "The node's storage is full; try again later",
}


def error_codes(
    operation: Mapping[str, Any],
    components: Mapping[str, Any],
    rate_limited: bool,
    extra: Collection[int],
) -> set[int]:
    """The codes an operation can answer, from its parameters and body as documented."""
    parameters = operation.get("parameters", [])
    names = {p["name"] for p in parameters}
    body = operation.get("requestBody")
    if body is not None:
        schema = body.get("content", {}).get("application/json", {}).get("schema", {})
        ref = str(schema.get("$ref", ""))
        model = components.get(ref.removeprefix("#/components/schemas/"), {})
        names |= set(model.get("properties", {}))
    codes = set(extra)
    if names or body is not None:
        codes.add(400)
    if body is not None:
        codes.add(413)
    if any(p.get("in") == "path" for p in parameters):
        codes.add(404)
    if names >= SIGNING_FIELDS:
        codes |= {400, 401, 403, 404, 409}
    if rate_limited:
        codes.add(429)
    return codes


def document_errors(
    app: FastAPI,
    rate_limited: Collection[tuple[str, str]],
    extra: Mapping[tuple[str, str], Collection[int]],
) -> None:
    """Make ``app.openapi()`` document the error shape and codes; ``rate_limited`` and
    ``extra`` are keyed by (method, path)."""
    generate = app.openapi  # FastAPI's: cached until routes are added
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = generate()
        if done and done[0] is schema:
            return schema
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ErrorBody.model_json_schema()
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                key = (method.upper(), path)
                codes = error_codes(operation, components, key in rate_limited, extra.get(key, ()))
                for code in sorted(codes):
                    responses[str(code)] = {"description": MEANING[code], "content": error}
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        done[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
