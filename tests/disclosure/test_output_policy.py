"""The output policy model: defaults and bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from atoll.models.output_policy import OutputChecks, OutputPolicy


def test_defaults_follow_acro_and_opensafely() -> None:
    policy = OutputPolicy()
    assert policy.mode == "auto" and policy.reviewersRequired == 1
    checks = policy.checks
    assert checks.allowedTypes == ["csv", "tsv", "json", "txt", "md", "png", "svg"]
    assert (checks.maxBytes, checks.maxCsvRows, checks.threshold) == (16 * 1024 * 1024, 5000, 10)
    assert (checks.dominanceN, checks.dominanceK) == (2, 0.9)


@pytest.mark.parametrize(
    "bad",
    [
        {"mode": "open"},
        {"reviewersRequired": 3},
        {"reviewers": ["alice"]},
        {"checks": {"allowedTypes": ["exe"]}},
        {"checks": {"threshold": 1}},
        {"checks": {"dominanceK": 1.5}},
        {"checks": {"identifiers": [""]}},
        {"checks": {"unknown": True}},
    ],
)
def test_out_of_bounds_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        OutputPolicy.model_validate(bad)


def test_reviewers_are_addresses() -> None:
    policy = OutputPolicy(reviewers=["0x" + "ab" * 20], reviewersRequired=2)
    assert policy.reviewers == ["0x" + "ab" * 20]
    assert OutputChecks(allowedTypes=["csv"]).allowedTypes == ["csv"]
