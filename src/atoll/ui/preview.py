"""What a reviewer sees of a held file: a CSV as a table with the cells and rows the checks
named, text as text, an image as an image (served apart, see :mod:`atoll.ui.review`), and a
histogram of each numeric column.

The file is a job's: hostile. Nothing here builds markup; the templates escape every value.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field

from atoll.disclosure.report import Finding

#: how much of a file a preview shows
PREVIEW_BYTES = 256 * 1024
PREVIEW_ROWS = 200
PREVIEW_COLUMNS = 40
HISTOGRAM_BINS = 12

#: a place a finding names: "row 5 column 3" (a CSV row, the header being row 1), "line 7"
_PLACE = re.compile(r"\b(row|line) (\d{1,9})(?: column (\d{1,6}))?")


@dataclass
class Flags:
    """The rows and cells (1-based, as the checks count) a file's findings name."""

    rows: set[int] = field(default_factory=set)
    cells: set[tuple[int, int]] = field(default_factory=set)
    whole: bool = False


def flags_of(findings: list[Finding]) -> Flags:
    flags = Flags()
    for f in findings:
        places = list(_PLACE.finditer(f.detail))
        if not places and f.check in ("echo", "encoded", "size", "type", "rows"):
            flags.whole = True
        for p in places:
            row = int(p[2])
            if p[3] is not None:
                flags.cells.add((row, int(p[3])))
            else:
                flags.rows.add(row)
    return flags


@dataclass
class Cell:
    text: str
    flagged: bool


@dataclass
class Row:
    number: int
    cells: list[Cell]
    flagged: bool


@dataclass
class TablePreview:
    header: list[str]
    rows: list[Row]
    truncated: bool
    histograms: list[Histogram]


@dataclass
class Histogram:
    column: str
    low: float
    high: float
    counts: list[int]


def kind_of(filename: str, head: bytes) -> str:
    """How to show the file: "png", "svg", "csv", "text" or "binary" — by its content first,
    its name only to tell a table from text."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the preview's end is still text
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return "binary"
    lowered = text.lstrip()[:512].lower()
    if lowered.startswith("<svg") or (lowered.startswith("<?xml") and "<svg" in lowered):
        return "svg"
    name = filename.lower()
    if name.endswith((".csv", ".tsv")):
        return "csv"
    return "text"


def text_of(head: bytes) -> str:
    return head.decode("utf-8", errors="replace")


def table_of(head: bytes, filename: str, findings: list[Finding]) -> TablePreview:
    text = text_of(head)
    delimiter = "\t" if filename.lower().endswith(".tsv") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    flags = flags_of(findings)
    parsed: list[list[str]] = []
    truncated = False
    try:
        for row in reader:
            if len(parsed) > PREVIEW_ROWS:
                truncated = True
                break
            parsed.append(row[:PREVIEW_COLUMNS])
    except csv.Error:
        truncated = True
    header = parsed[0] if parsed else []
    rows = [
        Row(
            number=n,
            cells=[
                Cell(v, flags.whole or n in flags.rows or (n, j) in flags.cells)
                for j, v in enumerate(values, start=1)
            ],
            flagged=flags.whole or n in flags.rows or any(r == n for r, _ in flags.cells),
        )
        for n, values in enumerate(parsed[1:], start=2)
    ]
    return TablePreview(header, rows, truncated, histograms(header, parsed[1:]))


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def histograms(header: list[str], rows: list[list[str]]) -> list[Histogram]:
    """One histogram per column whose every non-empty cell is a number."""
    out = []
    for j, name in enumerate(header):
        cells = [r[j] for r in rows if j < len(r) and r[j].strip()]
        values = [_number(c) for c in cells]
        numbers = [v for v in values if v is not None]
        if not numbers or len(numbers) != len(values):
            continue
        low, high = min(numbers), max(numbers)
        counts = [0] * HISTOGRAM_BINS
        span = high - low
        for v in numbers:
            k = 0 if span == 0 else min(int((v - low) / span * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)
            counts[k] += 1
        out.append(Histogram(name, low, high, counts))
    return out
