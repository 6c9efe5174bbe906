"""File types by content; PNG structure."""

from __future__ import annotations

import gzip
import re

from atoll.disclosure.filetypes import declared_type, is_text, png_findings, sniff
from tests.disclosure.conftest import png


def test_types_by_extension_and_content() -> None:
    assert declared_type("a/b/Table.CSV") == "csv"
    assert declared_type("run") == "txt"
    assert declared_type("model.pkl") is None
    assert sniff("t.csv", b"a,b\n1,2\n") == ("csv", [])
    assert sniff("p.png", png()) == ("png", [])


def test_content_that_is_not_what_the_name_says_is_named() -> None:
    kind, (finding,) = sniff("t.csv", gzip.compress(b"a,b\n"))
    assert kind is None
    assert finding.detail == "named as csv but its content is gz"
    kind, (finding,) = sniff("t.txt", b"\x00\x01\x02\x03")
    assert finding.detail == "named as txt but its content is unrecognised binary"


def test_a_plotting_librarys_png_passes() -> None:
    assert png_findings(png()) == []


def test_a_png_with_a_payload_is_held() -> None:
    (trailing,) = png_findings(png(trailing=b"x" * 100))
    assert trailing.detail == "100 bytes after the png's end"
    (chunk,) = png_findings(png(chunks=((b"zTXt", b"k\x00\x00" + b"y" * 9000),)))
    assert chunk.check == "encoded"
    (broken,) = png_findings(png()[:40])
    assert broken.check == "unparsed"


def test_text_is_any_utf8_with_no_control_character_but_whitespace() -> None:
    control = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
    for c in [*map(chr, range(0x100)), "\u2028", "\u00e9", "\U0001f600"]:
        assert is_text(f"a{c}b".encode()) == (control.search(c) is None), repr(c)
    assert not is_text(b"caf\xe9")


def test_text_told_by_its_marks_is_text_told_alone() -> None:
    """The marks one pass makes of a file (for its runs too) tell text from binary as
    looking for control characters does."""
    import random

    from atoll.disclosure.runs import text_marks

    rng = random.Random(3)
    pieces = [b"a", b" ", b"\n", b"\t", b"\r", b"\x0b", b"\x0c", b"\x00", b"\x1f", b"\x7f"]
    pieces += [b"\xc3\xa9", b"\xe9", b",", b"\x1c", b"9"]
    for _ in range(3000):
        data = b"".join(rng.choices(pieces, k=rng.randint(0, 6)))
        assert is_text(data, text_marks(data)) == is_text(data), data
        for name in ("t.txt", "p.png", ""):
            assert sniff(name, data, text_marks(data)) == sniff(name, data), data
