"""The check report: its digest binds every verdict and finding."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from atoll.disclosure.report import CheckReport, FileReport, Finding


def _report(detail: str) -> CheckReport:
    finding = Finding(check="small_cells", detail=detail)
    file = FileReport(
        index=0, kind="output", size=10, sha256="ab" * 32, verdict="hold", findings=[finding]
    )
    return CheckReport(files=[file])


def test_the_digest_is_stable_and_binds_the_findings() -> None:
    assert _report("row 2 column 3").digest() == _report("row 2 column 3").digest()
    assert _report("row 2 column 3").digest() != _report("row 3 column 3").digest()
    assert [f.index for f in _report("x").held] == [0]


def test_a_finding_names_a_known_check() -> None:
    with pytest.raises(ValidationError):
        Finding(check="other", detail="")  # type: ignore[arg-type]
