"""Disclosure checks: every output and log a job writes is checked before anyone but the
publisher may read it, and what the checks cannot clear is held for a reviewer.

:func:`check_files` is the entry point; each check is a small function in its own module and
reports why it holds a file (:class:`~atoll.disclosure.report.Finding`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from atoll.disclosure.candidate import Candidate
from atoll.disclosure.filetypes import sniff
from atoll.disclosure.report import CheckReport, FileReport, Finding
from atoll.models.output_policy import OutputChecks

__all__ = ["Candidate", "CheckReport", "FileReport", "Finding", "check_files"]

_CHUNK = 1024 * 1024


def _read_capped(path: Path, cap: int) -> tuple[int, str, bytes | None]:
    """Size, sha256 and, when the file is no larger than ``cap``, its bytes."""
    digest = hashlib.sha256()
    kept = bytearray()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if size <= cap:
                kept += chunk
    return size, digest.hexdigest(), bytes(kept) if size <= cap else None


def check_file(candidate: Candidate, checks: OutputChecks) -> FileReport:
    """One file's report."""
    size, sha256, data = _read_capped(candidate.path, checks.maxBytes)
    findings: list[Finding] = []
    if data is None:
        findings.append(
            Finding(check="size", detail=f"{size} bytes, over the limit of {checks.maxBytes}")
        )
    else:
        kind, found = sniff(candidate.name if candidate.kind == "output" else "", data)
        findings += found
        if kind is not None and kind not in checks.allowedTypes:
            findings.append(Finding(check="type", detail=f"type {kind} is not allowed"))
    return FileReport(
        index=candidate.index,
        kind=candidate.kind,
        size=size,
        sha256=sha256,
        verdict="hold" if findings else "pass",
        findings=findings,
    )


def check_files(
    candidates: Sequence[Candidate], inputs: Sequence[Path], checks: OutputChecks
) -> CheckReport:
    """Check every file a job wrote against the inputs it read."""
    return CheckReport(files=[check_file(c, checks) for c in candidates])
