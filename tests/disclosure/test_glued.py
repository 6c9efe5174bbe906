"""Identifiers joined to other text by a hyphen, a dot, an at sign or a plus are the
records'; a value inside a longer word, and one many records share, are not."""

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


def test_values_inside_words_and_values_many_records_share_are_not_held(
    check: Check, records: list[list[str]]
) -> None:
    # an identifier inside a longer word is another word
    inside = "\n".join(f"step{r[0]}-done" for r in records[:5])
    # a first name many records share, joined to a region
    first = records[0][1].split()[0]
    shared = sum(r[1].startswith(first + " ") for r in records)
    assert shared >= 10
    common = "\n".join(f"{first}-north" for _ in range(3))
    # one word of a name of several (the other checks want the whole name too)
    surname = "\n".join(f"{r[1].split()[1]}-plot" for r in records[:5])
    for text in (inside, common, surname):
        (file,) = check({"out.txt": text + "\n"}).files
        assert not any("joined to other text" in f.detail for f in file.findings), text


def test_a_value_is_found_with_a_joining_character_on_one_side_at_least() -> None:
    finder = GluedFinder(["p10042", "ada.abbott1@example.org", "x1"])
    # an address, and its own part, hold a joining character, and one value is too short:
    # none of them is looked for
    assert finder.values == ["p10042"]
    assert GluedFinder(["person7@example.org"]).values == ["person7"]
    hits = finder.find(padded(b"a p10042-b p10042 c+p10042 dp10042 p10042x .p10042."))
    assert [text for _, text in hits] == ["p10042", "p10042", "p10042"]
