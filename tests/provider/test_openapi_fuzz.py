"""The provider fuzzed over its own OpenAPI document (schemathesis): whatever a stranger sends,
no 5xx, and every answer has a documented code and the documented shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import Running, running_provider

# bounded, so that the whole run stays well under a minute on a busy machine
EXAMPLES = 12


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    # no rate limit here: the fuzzer is one client sending many requests
    with running_provider(home, rate_limit_per_ip="", rate_limit_per_address="") as running:
        running.dataset(Path(tmp_path_factory.mktemp("data")))
        yield running


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_answers_as_documented(fuzzed: Running, mode: GenerationMode) -> None:
    """Valid-looking requests (positive) and requests that break the schema (negative) to
    every operation."""
    spec = httpx.get(fuzzed.url + "/openapi.json").json()
    api = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: Any) -> None:
            case.validate_response(case.call(base_url=fuzzed.url, timeout=30), checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            # an operation whose every input is a free string cannot be sent invalid data
            assert mode == GenerationMode.NEGATIVE, operation.label


def test_errors_are_documented_as_sent(fuzzed: Running) -> None:
    spec = httpx.get(fuzzed.url + "/openapi.json").json()
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "422" not in codes, (method, path)
            for code in codes - {"200", "201"}:
                content = operation["responses"][code]["content"]["application/json"]
                assert content["schema"] == error_ref, (method, path, code)
    assert spec["components"]["schemas"]["Error"]["required"] == ["error"]
    search = spec["paths"]["/api/services/assets"]["get"]["responses"]
    assert {"400", "429"} <= set(search)
    start = spec["paths"]["/api/services/compute"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409", "413"} <= set(start)
