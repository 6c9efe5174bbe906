"""Identifiers joined to other text by a hyphen, a dot, an at sign or a plus, or inside a
longer word where the value could hardly be part of another word, are the records'; other
values inside a word, and one many records share, are not."""

from __future__ import annotations

import pytest

from atoll.disclosure.glued import GluedFinder
from atoll.disclosure.matcher import padded
from tests.disclosure.conftest import Check


def _streamed(request: pytest.FixtureRequest) -> bool:
    return bool(request.node.callspec.params["check"] == "streamed")


def test_identifiers_joined_to_other_text_are_held(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    lines = [
        f"ID-{records[0][0]}",
        # a name of several words, run together
        f"{records[6][1].replace(' ', '')}-north",
        f"{records[1][0]}-{records[1][5]}",
        f"{records[2][0]}.csv written",
        f"sent to {records[3][0]}@queue",
        f"+{records[4][0]}+",
        f"user {records[5][2].split('@')[0]}.example",
    ]
    outputs = {
        "ids.txt": "\n".join(lines) + "\n",
        "ids.csv": "key,value\n" + "".join(f"{line},{40 + i}\n" for i, line in enumerate(lines)),
    }
    files = check(outputs, log="\n".join(lines)).files
    if _streamed(request):
        pytest.skip("a streamed input's identifiers are known only as tokens")
    for file in files:
        joined = [f.detail for f in file.findings if "joined to other text" in f.detail]
        assert joined and joined[0].startswith(("line 1 ", "line 2 ")), file.findings
        assert "(and " in joined[0]


def test_values_many_records_share_and_one_word_of_a_name_are_not_held(
    check: Check, records: list[list[str]]
) -> None:
    # a first name many records share, joined to a region
    first = records[0][1].split()[0]
    shared = sum(r[1].startswith(first + " ") for r in records)
    assert shared >= 10
    common = "\n".join(f"{first}-north" for _ in range(3))
    # one word of a name of several (the other checks want the whole name too)
    surname = "\n".join(f"{r[1].split()[1]}-plot" for r in records[:5])
    for text in (common, surname):
        (file,) = check({"out.txt": text + "\n"}).files
        assert not any("joined to other text" in f.detail for f in file.findings), text


def test_identifiers_inside_longer_words_or_run_together_are_held(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    outputs = {
        "inside.txt": "\n".join(f"step{r[0]}x done" for r in records[:40]) + "\n",
        "together.txt": "".join(r[0] for r in records[:40]) + "\n",
    }
    files = check(outputs, log="\n".join(f"id{r[0]}end" for r in records[:40])).files
    if _streamed(request):
        pytest.skip("a streamed input's identifiers are known only as tokens")
    for file in files:
        assert any("joined to other text" in f.detail for f in file.findings), file.findings


def test_a_value_found_inside_a_word_is_one_that_other_words_hardly_hold() -> None:
    values = ["annabelle", "ab12cd", "p1234", "p10042"]
    finder = GluedFinder(values)
    assert finder.values == sorted(values)
    # letters only, hex letters only (hashes and ids are full of them), too short: inside a
    # word they are parts of other words; a value of figures and other letters is not
    hits = finder.find(padded(b"savannabelle 0xab12cdef xp1234y stepp10042done"))
    assert [text for _, text in hits] == ["p10042"]
    # each of them joined to other text by a joining character is found
    hits = finder.find(padded(b"annabelle-x ab12cd.csv p1234@q"))
    assert sorted(text for _, text in hits) == ["ab12cd", "annabelle", "p1234"]


def test_a_value_is_found_with_a_joining_character_on_one_side_at_least() -> None:
    finder = GluedFinder(["p10042", "ada.abbott1@example.org", "x1"])
    # an address, and its own part, hold a joining character, and one value is too short:
    # none of them is looked for
    assert finder.values == ["p10042"]
    assert GluedFinder(["person7@example.org"]).values == ["person7"]
    # a value standing alone is a token, for the echo check to read, not a joined one
    hits = finder.find(padded(b"a p10042-b p10042 c+p10042 .p10042."))
    assert [text for _, text in hits] == ["p10042", "p10042", "p10042"]


def test_records_spelled_a_character_a_line_are_held_by_their_identifiers(
    check: Check, records: list[list[str]], request: pytest.FixtureRequest
) -> None:
    # a character a line, the records one after another: the characters join back into one
    # long word, the records' identifiers inside it
    spelled = "\n".join(c for r in records[:40] for c in r[0] + r[4] + r[5])
    (file,) = check({"letters.txt": spelled + "\n"}).files
    if _streamed(request):
        pytest.skip("a streamed input's identifiers are known only as tokens")
    assert any("joined to other text" in f.detail for f in file.findings), file.findings
