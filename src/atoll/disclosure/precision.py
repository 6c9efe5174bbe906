"""Excess precision: numbers with more significant digits than the data can support carry
room for hidden data (a float printed to 17 digits has about 30 bits to spare), so they are
held for a reviewer to judge."""

from __future__ import annotations

import re

from atoll.disclosure.report import Finding, and_more
from atoll.disclosure.runs import digit_runs_marked, marked_runs

_DECIMAL = re.compile(r"\d+(\.\d+)?")
_EXPONENT = re.compile(r"[eE]")
#: digits beyond the inputs' own an aggregate may show, and the least it may always show
SPARE_DIGITS = 3
FLOOR_DIGITS = 6


def significant_digits(number: str) -> int:
    """Significant digits as written: leading zeros do not count, trailing zeros of a
    decimal fraction do (``0.0120`` has 3, ``1200`` has 2)."""
    mantissa = _EXPONENT.split(number.lstrip("+-"))[0]
    if "." in mantissa:
        digits = mantissa.replace(".", "").lstrip("0")
    else:
        digits = mantissa.lstrip("0").rstrip("0")
    return len(digits)


def allowed_digits(input_digits: int) -> int:
    """The most significant digits an output number may have, given the inputs' most."""
    return max(input_digits + SPARE_DIGITS, FLOOR_DIGITS)


def digits_by_line(
    text: str, allowed: int, marks: bytes | None = None
) -> dict[int, tuple[int, int]]:
    """For each count of significant digits over ``allowed`` found in ``text``: the first
    line a number with that many is on, and how many such numbers there are (what a finding
    needs, in a size that does not grow with the text). Only runs of more than ``allowed``
    digits are looked at (found by :func:`digit_runs`): ordinary figures cost a scan in C.
    ``marks``, if given, is :func:`~atoll.disclosure.runs.word_marks` of an ASCII ``text``,
    which the runs are read from."""
    seen: dict[int, tuple[int, int]] = {}
    line, at = 1, 0
    runs = digit_runs(text, allowed + 1) if marks is None else digit_runs_marked(marks, allowed + 1)
    for start, end in runs:
        before = text[start - 1 : start]
        after = text[end : end + 1]
        number = text[start:end].rstrip(".")
        if before.isalnum() or before == "_" or after.isalnum() or not _DECIMAL.fullmatch(number):
            continue
        digits = significant_digits(number)
        if digits <= allowed:
            continue
        if digits in seen:
            first, count = seen[digits]
            seen[digits] = (first, count + 1)
            continue
        line += text.count("\n", at, start)
        at = start
        seen[digits] = (line, 1)
    return seen


#: ASCII digits and dots as ``d``, the rest as a space
_DIGIT_MARKS = bytes.maketrans(
    bytes(range(256)), bytes(100 if chr(b) in "0123456789." else 32 for b in range(256))
)


def digit_runs(text: str, shortest: int) -> list[tuple[int, int]]:
    """Each run of digits and dots at least ``shortest`` long, as (start, end): in ASCII text
    found by a translation and substring searches in C; otherwise (where ``\\d`` takes in
    other scripts' digits) by a regular expression."""
    if not text.isascii():
        pattern = re.compile(rf"[\d.]{{{shortest},}}")
        return [m.span() for m in pattern.finditer(text)]
    marks = text.encode("ascii").translate(_DIGIT_MARKS)
    return marked_runs(marks, b"d" * shortest)


def find_precision(seen: dict[int, tuple[int, int]], allowed: int) -> list[Finding]:
    """A finding when numbers (as :func:`digits_by_line` found them) have more than
    ``allowed`` significant digits."""
    over = [v for d, v in seen.items() if d > allowed]
    if not over:
        return []
    first = min(line for line, _ in over)
    count = sum(n for _, n in over)
    return [
        Finding(
            check="precision",
            detail=f"numbers with more than {allowed} significant digits at line {first}"
            + and_more(count),
        )
    ]
