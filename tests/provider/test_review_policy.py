"""One output policy for a job on several datasets, and which policies a dataset may have."""

from __future__ import annotations

import pytest

from atoll.errors import PolicyRefused
from atoll.models.ddo import ComputePolicy
from atoll.models.output_policy import OutputChecks, OutputPolicy
from atoll.provider.policy import widening
from atoll.provider.review_policy import check_compute_policy, strictest

A = "0x" + "a" * 40
B = "0x" + "b" * 40


def test_the_strictest_setting_of_each_check_wins() -> None:
    loose = OutputPolicy(
        mode="off",
        reviewers=[A],
        checks=OutputChecks(threshold=5, maxBytes=100, allowedTypes=["csv", "png"]),
    )
    tight = OutputPolicy(
        mode="review",
        reviewers=[B, A.upper().replace("0X", "0x")],
        reviewersRequired=2,
        checks=OutputChecks(threshold=20, maxBytes=1000, allowedTypes=["csv"], identifiers=["id"]),
    )
    both = strictest([loose, tight])
    assert both.mode == "review" and both.reviewersRequired == 2
    assert both.reviewers == [A, B]  # the same address in two cases is one reviewer
    assert both.checks.threshold == 20 and both.checks.maxBytes == 100
    assert both.checks.allowedTypes == ["csv"] and both.checks.identifiers == ["id"]
    assert strictest([OutputPolicy(mode="off"), OutputPolicy()]).mode == "auto"


def test_off_is_refused_where_identifiers_are_marked() -> None:
    check_compute_policy(ComputePolicy(outputPolicy=OutputPolicy(mode="off")))
    marked = OutputPolicy(mode="off", checks=OutputChecks(quasiIdentifiers=["zip"]))
    with pytest.raises(PolicyRefused, match="open data only"):
        check_compute_policy(ComputePolicy(outputPolicy=marked))


def test_a_derived_asset_cannot_loosen_the_checks_it_inherited() -> None:
    ceiling = ComputePolicy(outputPolicy=OutputPolicy(mode="auto", reviewersRequired=2))
    looser = ComputePolicy(outputPolicy=OutputPolicy(mode="off", reviewersRequired=2))
    fewer = ComputePolicy(outputPolicy=OutputPolicy(mode="review"))
    assert widening(looser, ceiling, lambda _did: None) == "output checks 'off'"
    assert widening(fewer, ceiling, lambda _did: None) == "fewer reviewers per release"
    stricter = ComputePolicy(outputPolicy=OutputPolicy(mode="review", reviewersRequired=2))
    assert widening(stricter, ceiling, lambda _did: None) == ""
