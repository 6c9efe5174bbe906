"""A person-level dataset like a publisher's, and a way to check the files a job would write."""

from __future__ import annotations

import csv
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from atoll.disclosure import Candidate, CheckReport, check_files, inputs, matcher
from atoll.models.output_policy import OutputChecks

FIRST = ["Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas"]
LAST = ["Abbott", "Baptiste", "Castillo", "Dvorak", "Eriksen", "Fontaine", "Garza", "Haddad"]
REGIONS = ["north", "south", "east", "west"]
HEADER = ["patient_id", "name", "email", "dob", "sex", "region", "age", "income", "diagnosis"]

Check = Callable[..., CheckReport]


def people(rows: int = 400, seed: int = 1) -> list[list[str]]:
    """Person-level records: identifiers, quasi-identifiers and measures."""
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        out.append(
            [
                f"P{10000 + i}",
                f"{first} {last}{i}",
                f"{first.lower()}.{last.lower()}{i}@example.org",
                f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                rng.choice("FM"),
                rng.choice(REGIONS),
                str(rng.randint(18, 90)),
                f"{rng.uniform(12000, 95000):.2f}",
                rng.choice(["asthma", "diabetes", "healthy"]),
            ]
        )
    return out


@pytest.fixture
def records() -> list[list[str]]:
    return people()


@pytest.fixture
def dataset(tmp_path: Path, records: list[list[str]]) -> Path:
    path = tmp_path / "inputs" / "0"
    path.parent.mkdir()
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([HEADER, *records])
    return path


@pytest.fixture(params=["split", "automaton", "streamed"])
def check(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    dataset: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Check:
    """``check({name: content}, log=..., checks=...)``: the report on a job's outputs (each
    named as the job named it) and its log, against ``dataset``; once as short texts are
    searched (split into tokens), once as long ones are (by the inputs' automaton), once
    with the dataset streamed as one too large to keep parsed is (and searched by the
    outputs' automaton)."""
    if request.param in ("automaton", "streamed"):
        monkeypatch.setattr(matcher, "MIN_TEXT", 0)
    if request.param == "streamed":
        monkeypatch.setattr(inputs, "CACHE_FILE", 0)

    def run(
        outputs: dict[str, bytes | str],
        log: bytes | str | None = None,
        checks: OutputChecks | None = None,
    ) -> CheckReport:
        folder = tmp_path / "outputs"
        folder.mkdir(exist_ok=True)
        candidates = []
        for i, (name, content) in enumerate(outputs.items()):
            path = folder / str(i)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
            candidates.append(Candidate(index=i, kind="output", name=name, path=path))
        if log is not None:
            path = folder / "log"
            path.write_bytes(log.encode() if isinstance(log, str) else log)
            candidates.append(Candidate(index=0, kind="log", name="log", path=path))
        return check_files(candidates, [dataset], checks or OutputChecks())

    return run


def png(chunks: tuple[tuple[bytes, bytes], ...] = (), trailing: bytes = b"") -> bytes:
    """A valid 2x2 grey PNG, as a plotting library writes one, with extra chunks and bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80\x80\x00\x40\x40")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", b"Software\x00matplotlib version 3.9")
        + b"".join(chunk(k, b) for k, b in chunks)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
        + trailing
    )


REGRESSION_SUMMARY = """\
                            OLS Regression Results
==============================================================================
Dep. Variable:                 income   R-squared:                       0.012
Model:                            OLS   Adj. R-squared:                  0.007
No. Observations:                 400   AIC:                             8765.
Df Residuals:                     397   BIC:                             8777.
==============================================================================
                 coef    std err          t      P>|t|      [0.025      0.975]
------------------------------------------------------------------------------
const       5.012e+04   2345.678     21.370      0.000    4.55e+04    5.47e+04
age           45.1234     38.123      1.184      0.237     -29.834     120.081
==============================================================================
"""
