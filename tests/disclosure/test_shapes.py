"""Records rewritten a character at a time (a cipher of the job's own) are held by their
lines' lengths; tables and logs that share lengths with records by chance are not."""

from __future__ import annotations

import html
import json
import random

import pytest

from atoll.disclosure.shapes import (
    SHAPE_LINES,
    STRETCH,
    line_shape,
    record_shapes,
    shaped,
)
from tests.disclosure.conftest import Check


def rot47(text: str) -> str:
    return "".join(chr(33 + (ord(c) + 14) % 94) if 33 <= ord(c) <= 126 else c for c in text)


def substitution(text: str, seed: int = 7) -> str:
    """A random table from each printable character to another (none to itself kept)."""
    printable = [chr(c) for c in range(32, 127)]
    shuffled = printable[:]
    random.Random(seed).shuffle(shuffled)
    table = str.maketrans(dict(zip(printable, shuffled, strict=True)))
    return text.translate(table)


def _streamed(request: pytest.FixtureRequest) -> bool:
    return bool(request.node.callspec.params["check"] == "streamed")


def test_records_through_a_cipher_of_the_jobs_own_are_held(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    lines = [",".join(r) for r in records[:60]]
    outputs = {
        "rot47.txt": rot47("\r\n".join(lines) + "\r\n"),
        "table.txt": "\n".join(substitution(line) for line in lines),
        # the whole text backwards: its lines' order too
        "backwards.txt": substitution("\n".join(lines))[::-1],
    }
    files = check(outputs, log="starting\n" + "\n".join(map(rot47, lines[5:40]))).files
    if _streamed(request):
        pytest.skip("a streamed input's records are not measured")
    for file in files:
        echoes = [f.detail for f in file.findings if f.check == "echo"]
        assert any("the lengths of records of input 1 in a row" in d for d in echoes), echoes
    (log,) = [f for f in files if f.kind == "log"]
    assert "lines 2 to 36 have the lengths" in log.findings[0].detail


def test_records_through_a_cipher_inside_a_json_or_an_svg_are_held(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    text = rot47("\n".join(",".join(r) for r in records[:40]))
    outputs = {
        # one string of many lines: the file itself is one line
        "out.json": json.dumps({"model": "fit", "notes": text}),
        # escaped as SVG writes text, which changes the lines' lengths as written
        "plot.svg": f'<svg xmlns="http://www.w3.org/2000/svg"><desc>{html.escape(text)}</desc></svg>',
    }
    files = check(outputs).files
    if _streamed(request):
        pytest.skip("a streamed input's records are not measured")
    for file in files:
        assert any("of records of input 1 in a row" in f.detail for f in file.findings), file
    assert "of a text it holds" in files[0].findings[0].detail


def test_too_few_records_in_a_row_are_not_held_for_their_lengths(
    check: Check, records: list[list[str]]
) -> None:
    # rewritten records, each after a line of the job's own: never two in a row
    text = "".join(f"step {i}\n{rot47(','.join(r))}\n" for i, r in enumerate(records[:40]))
    (file,) = check({"out.txt": text}).files
    assert not any("lengths" in f.detail for f in file.findings)


def test_lines_all_as_long_are_no_records_whatever_their_length() -> None:
    same = bytes([40] * 40)
    assert shaped(same, record_shapes([["x" * 40]] * 100, ",")) is None
    # two lengths only, alternating, as a table's rows and rules do
    two = bytes([40, 12] * 20)
    assert shaped(two, record_shapes([["x" * 40], ["y" * 12]] * 50, ",")) is None


def test_a_stretch_is_named_from_its_first_line_to_its_last() -> None:
    records = [["r" * (10 + (i * 7) % 23)] for i in range(100)]
    lengths = bytes(10 + (i * 7) % 23 for i in range(100))
    shapes = record_shapes(records, None)
    text = lengths[30 : 30 + STRETCH + 5]
    assert shaped(b"\x01\x02" + text + b"\x03", shapes) == (3, 2 + STRETCH + 5)
    # one line short of a stretch
    assert shaped(lengths[: STRETCH - 1], shapes) is None
    assert SHAPE_LINES < STRETCH


def test_a_lines_length_leaves_its_end_out_and_the_heads_cut_line() -> None:
    assert line_shape("ab\r\ncde\n\rfg\nhij") == bytes([2, 3, 2, 3])
    long = "x" * 10 + "\n" + "y" * 70_000
    assert line_shape(long) == bytes([10])
