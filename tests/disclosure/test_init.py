"""check_files: every file gets a report; what fails a check is held with the reason."""

from __future__ import annotations

from pathlib import Path

from atoll.disclosure import Candidate, check_files
from atoll.models.output_policy import OutputChecks


def _out(tmp_path: Path, name: str, data: bytes, index: int = 0) -> Candidate:
    path = tmp_path / f"f{index}"
    path.write_bytes(data)
    return Candidate(index=index, kind="output", name=name, path=path)


def test_binary_output_is_held_by_its_content(tmp_path: Path) -> None:
    report = check_files([_out(tmp_path, "table.csv", b"\x00\x01\x02\xff")], [], OutputChecks())
    (file,) = report.files
    assert file.verdict == "hold"
    assert [f.check for f in file.findings] == ["type"]


def test_output_over_the_size_limit_is_held(tmp_path: Path) -> None:
    report = check_files(
        [_out(tmp_path, "notes.txt", b"x" * 2000)], [], OutputChecks(maxBytes=1000)
    )
    assert report.files[0].verdict == "hold"
    assert report.files[0].findings[0].check == "size"
    assert report.files[0].size == 2000


def test_report_digest_changes_with_a_verdict(tmp_path: Path) -> None:
    small = check_files([_out(tmp_path, "a.txt", b"mean 4.5\n")], [], OutputChecks())
    held = check_files([_out(tmp_path, "a.txt", b"mean 4.5\n")], [], OutputChecks(maxBytes=1))
    assert small.files[0].verdict == "pass"
    assert small.digest() != held.digest()
