"""Excess precision: numbers with more significant digits than the data supports."""

from __future__ import annotations

import re

from atoll.disclosure.precision import (
    allowed_digits,
    digit_runs,
    digits_by_line,
    find_precision,
    significant_digits,
)
from tests.disclosure.texts import texts


def test_significant_digits_as_written() -> None:
    assert significant_digits("0.0120") == 3
    assert significant_digits("1200") == 2
    assert significant_digits("-51234.12") == 7
    assert significant_digits("5.012e+04") == 4


def test_allowance_follows_the_inputs_with_a_floor() -> None:
    assert allowed_digits(7) == 10
    assert allowed_digits(2) == 6


def test_a_float_printed_in_full_is_held_with_its_line() -> None:
    text = "mean,n\n42.1,400\n42.123456789012345,400\n"
    (finding,) = find_precision(digits_by_line(text, 8), allowed=8)
    assert finding.check == "precision"
    assert finding.detail == "numbers with more than 8 significant digits at line 3"


def test_rounded_figures_pass() -> None:
    assert find_precision(digits_by_line("mean 42.1235\np 0.0001\nn 400\n", 6), allowed=6) == []


def test_runs_of_digits_are_found_as_a_regular_expression_finds_them() -> None:
    for text in texts(300):
        for shortest in (4, 7, 11):
            pattern = re.compile(rf"[\d.]{{{shortest},}}")
            expected = [m.span() for m in pattern.finditer(text)]
            assert digit_runs(text, shortest) == expected, text
            ascii_only = text.encode("ascii", "ignore").decode()
            expected = [m.span() for m in pattern.finditer(ascii_only)]
            assert digit_runs(ascii_only, shortest) == expected, ascii_only


def test_long_figures_read_from_a_text_s_marks_are_those_found_in_it() -> None:
    """The runs of digits read from the marks a text's table names are found in are the
    runs its own search finds, and so are the numbers over the precision allowed."""
    from atoll.disclosure.precision import digit_runs, digits_by_line
    from atoll.disclosure.runs import digit_runs_marked, word_marks
    from tests.disclosure.texts import texts

    found = 0
    for text in [*texts(300, seed=4), "1234567", "a1234567.", "", "9" * 12, "1" * 30 + " 2." * 9]:
        if not text.isascii():
            continue
        marks = word_marks(text.encode("ascii"))
        for shortest in (1, 4, 7, 11):
            assert digit_runs_marked(marks, shortest) == digit_runs(text, shortest), text
        for allowed in (3, 6, 10):
            by_marks = digits_by_line(text, allowed, marks)
            assert by_marks == digits_by_line(text, allowed), text
            found += len(by_marks)
    assert found
