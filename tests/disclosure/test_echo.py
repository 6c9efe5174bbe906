"""Echo rules: which output rows reproduce an input record, and which do not."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoll.disclosure import matcher
from atoll.disclosure.echo import Columns, OutputIndex, identifying_name, match
from atoll.disclosure.tokens import tokens
from tests.disclosure.texts import texts

RECORD = ["P10001", "Ada Abbott", "F", "north", "34", "51234.12"]
COLUMNS = Columns(identifiers=frozenset({0, 1}), quasi=frozenset())


def _fields(record: list[str]) -> list[tuple[int, tuple[str, ...], bool]]:
    return [(c, tuple(tokens(v)), len(v) >= 4) for c, v in enumerate(record)]


def _how(*rows: str, record: list[str] = RECORD, columns: Columns = COLUMNS) -> list[str]:
    index = OutputIndex()
    for i, row in enumerate(rows):
        index.add(0, f"line {i + 1}", tokens(row))
    return [how for _, how, _ in match(index, _fields(record), len(record), columns)]


def test_names_that_identify() -> None:
    assert identifying_name("patient_id") and identifying_name("PatientID")
    assert identifying_name("e-mail") and identifying_name("DOB") and identifying_name("zip")
    assert not identifying_name("region") and not identifying_name("diagnosis")
    assert not identifying_name("valid")


def test_a_full_record_in_any_layout_echoes() -> None:
    assert _how("0  P10001  Ada Abbott  F  north  34  51234.12") == ["in full"]


def test_an_identifier_beside_another_field_echoes() -> None:
    assert _how("Ada Abbott has income 51234.12") == ["in an identifier and other fields"]


def test_a_distinctive_identifier_alone_echoes() -> None:
    assert _how("top earner: P10001") == ["in an identifier"]


def test_quasi_identifiers_with_another_field_echo() -> None:
    columns = Columns(identifiers=frozenset(), quasi=frozenset({2, 3, 4}))
    assert _how("F north 34 -> 51234.12", columns=columns) == [
        "in its quasi-identifiers and other fields"
    ]


def test_aggregates_sharing_labels_do_not_echo() -> None:
    assert _how("region,sex,count", "north,F,120", "mean income 48000.5") == []


def test_a_token_common_to_many_rows_is_not_indexed_but_still_compared() -> None:
    index = OutputIndex()
    for i in range(100):
        index.add(0, f"line {i}", tokens(f"north {i}"))
    index.add(0, "line 101", tokens("north P10001 Ada Abbott"))
    assert "north" in index.common and "north" not in index.postings
    found = match(index, _fields(RECORD), len(RECORD), COLUMNS)
    assert [index.rows[row][1] for row, _, _ in found] == ["line 101"]


def test_the_index_has_a_budget() -> None:
    index = OutputIndex(budget=3)
    index.add(4, "line 1", ["a", "b"])
    index.add(4, "line 2", ["c", "d"])
    assert index.overflow == {4}


@pytest.mark.parametrize("min_text", [matcher.MIN_TEXT, 0])
def test_lines_indexed_at_once_are_the_rows_each_line_makes_alone(
    min_text: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(matcher, "MIN_TEXT", min_text)
    universe = frozenset(
        {"north", "count", "120", "3", "p10001", "ada.abbott@example.org", "1957-03-02", "50"}
        | {"12", "f", "m", "café", "deadbeef", "\x00"}
    )
    for text in texts(300):
        whole, by_line = OutputIndex(universe=universe), OutputIndex(universe=universe)
        whole.add_lines(0, text)
        for number, line in enumerate(text.splitlines(), start=1):
            by_line.add_text(0, f"line {number}", line)
        assert (whole.rows, whole.sets) == (by_line.rows, by_line.sets), text


def test_paired_spellings_are_those_of_rows_with_two_tokens() -> None:
    index = OutputIndex()
    index.add(0, "line 1", ["north", "42"])
    index.add(0, "line 2", ["south"])
    assert index.paired() == {"north", "42", "42.0", "42.00"}


def _rows(count: int, seed: int) -> list[str]:
    """Table rows as the index is given them: cells of varied text joined by the unit
    separator, some with a final sigma, dotted numbers or nothing the inputs hold."""
    import random

    rng = random.Random(seed)
    cells = [
        "north", "North.", "F", "m", "120", "120.0", "3", "12.50", "p10001", "ΣΟΦΙΑΣ", "ὈΔΥΣΣΕΎΣ",
        "ada.abbott@example.org", "1957-03-02", "50", "café", "", " ", "x-y", "count", "\u0663",
    ]  # fmt: skip
    return ["\x1f".join(rng.choices(cells, k=rng.randint(0, 6))) for _ in range(count)]


UNIVERSE = frozenset(
    {"north", "north.", "count", "120", "120.0", "3", "p10001", "ada.abbott@example.org"}
    | {"1957-03-02", "50", "12.5", "12.50", "f", "m", "café", "σοφιας", "ὀδυσσεύς", "x-y"}
)


def test_rows_indexed_at_once_are_the_rows_each_text_makes_alone() -> None:
    """A table's rows, lowered, split and spelled normal at once, are indexed as each row
    added on its own would be, with the inputs' normal forms given or not."""
    from atoll.disclosure.tokens import normal

    normals = {t: normal(t) for t in UNIVERSE}
    for seed in range(40):
        rows = _rows(30, seed) + texts(5, seed)
        places = [f"row {i}" for i in range(len(rows))]
        one_by_one = OutputIndex(universe=UNIVERSE)
        for place, row in zip(places, rows, strict=True):
            one_by_one.add_text(0, place, row)
        for given in (None, normals):
            at_once = OutputIndex(universe=UNIVERSE, normals=given)
            at_once.add_texts(0, places, rows)
            assert (at_once.rows, at_once.sets, at_once.size) == (
                one_by_one.rows,
                one_by_one.sets,
                one_by_one.size,
            ), rows
            assert at_once.spelled == one_by_one.spelled


def test_rows_holding_the_mark_are_indexed_one_by_one() -> None:
    rows = ["north\x00120", "3\x1fnorth", "north \x00 120"]
    index = OutputIndex(universe=UNIVERSE)
    index.add_texts(0, ["row 2", "row 3", "row 4"], rows)
    assert [place for _, place, _ in index.rows] == ["row 3", "row 4"]
    expected = [frozenset(["3", "north"]), frozenset(["north", "120"])]
    assert index.sets == expected


def test_the_spellings_made_at_once_are_each_token_s_own() -> None:
    """Every token's spellings, made for all the tokens added at once, are those
    :func:`~atoll.disclosure.tokens.spellings` gives it, each under the token."""
    import random

    from atoll.disclosure.tokens import spellings

    rng = random.Random(11)
    pieces = ["1", "0", "-", ".", "5", "a", "+", "e", "_", "9"]
    for _ in range(200):
        words = ["".join(rng.choices(pieces, k=rng.randint(1, 5))) for _ in range(8)]
        index = OutputIndex()
        index.add(0, "line 1", words)
        expected = {s: w for w in set(words) for s in spellings(w)}
        assert index.spelled == expected, words
        assert index.spellings == set(expected)


def _index_state(index: OutputIndex) -> tuple[object, ...]:
    return (
        index.rows,
        index.sets,
        index.postings,
        index.common,
        index.overflow,
        index.size,
        index.spelled,
    )


@pytest.mark.parametrize("budget", [1_000_000, 150])
def test_rows_added_at_once_are_the_rows_added_one_by_one(budget: int) -> None:
    """Rows added by one call, after others or not, leave the index (its rows, each key's
    rows, the keys too common to look up by, the budget) as adding each in turn does."""
    import random

    from atoll.disclosure import echo

    rng = random.Random(7)
    words = ["north", "south", "3", "120", "12.5", "p10001", "f", "m", "x"] + [
        str(i) for i in range(40)
    ]
    shared = crowded = overflown = False
    for _ in range(200):
        at_once, one_by_one = OutputIndex(budget=budget), OutputIndex(budget=budget)
        for file in range(rng.randint(1, 3)):
            rows = [
                rng.choices(words[: rng.randint(1, len(words))], k=rng.randint(0, 6))
                for _ in range(rng.randint(0, 160))
            ]
            places = [f"row {i}" for i in range(len(rows))]
            at_once.add_rows(file, places, rows)
            for place, row in zip(places, rows, strict=True):
                one_by_one.add(file, place, row)
            assert _index_state(at_once) == _index_state(one_by_one), rows
        shared |= any(len(p) > 1 for p in at_once.postings.values())
        crowded |= bool(at_once.common)
        overflown |= bool(at_once.overflow)
    # the cases that matter were met: keys in several rows, keys in more rows than are
    # looked up by, and (with the small budget) rows that did not fit
    assert shared and (crowded or budget < 1000) and overflown == (budget < 1000)
    assert echo.COMMON < 160


def test_with_the_inputs_known_a_token_s_spellings_are_the_inputs_own(tmp_path: Path) -> None:
    """Given the inputs' own spellings of each normal form (``007`` and ``7.0`` for ``7``,
    ``North.`` for ``north``), the index spells its tokens as the inputs do, which the
    spellings it would make itself miss; its rows are the same either way."""
    from atoll.disclosure import _universe
    from atoll.disclosure.inputs import profile
    from atoll.models.output_policy import OutputChecks

    data = tmp_path / "in.csv"
    data.write_text("id,region,income\n007,North.,12.50\n8,south,7.0\n9,x,3\n")
    known = _universe([data], [profile(data, OutputChecks())])
    assert known is not None
    told = OutputIndex(
        universe=known.universe,
        normals=known.normals,
        respelled=known.respelled,
        abnormal=known.abnormal,
    )
    alone = OutputIndex(universe=known.universe)
    for index in (told, alone):
        index.add_texts(0, ["row 2", "row 3", "row 4"], ["7\x1fnorth\x1f12.5", "x", "8\x1f7"])
    assert (told.rows, told.sets, told.size) == (alone.rows, alone.sets, alone.size)
    assert told.sets[0] == {"7", "north", "12.5"}
    assert {"007", "7.0", "north.", "12.50"} <= told.spellings
    assert not {"007", "north."} & alone.spellings
    assert told.spelled["007"] == told.spelled["7.0"] == "7"
    assert told.paired() == {"7", "007", "7.0", "north", "north.", "12.5", "12.50", "8"}


def test_a_table_indexed_when_first_asked_for_is_the_table_indexed_at_once(
    tmp_path: Path,
) -> None:
    """With the inputs known, a table's rows are indexed only when first asked for: its
    tokens' spellings are known at once, and its rows, each token's rows and the paired
    tokens are then those the rows indexed as they are added give. The budget is counted
    when the table is added, by every word it holds: a table that does not fit is indexed
    row by row at once, and its rows over the budget are left out as any row is."""
    import random

    from atoll.disclosure import _universe
    from atoll.disclosure.inputs import profile
    from atoll.models.output_policy import OutputChecks

    data = tmp_path / "in.csv"
    data.write_text(
        "id,region,income\n007,North.,12.50\n8,south,7.0\n9,x,3\n"
        + "".join(f"{i},east,{i}.5\n" for i in range(10, 200))
    )
    known = _universe([data], [profile(data, OutputChecks())])
    assert known is not None
    rng = random.Random(3)
    cells = ["7", "north", "12.5", "x", "east", "8", "3", "120", "", "Ada", "ΣΟΦΙΑΣ"] + [
        f"{i}.5" for i in range(10, 40)
    ]
    for budget in (1_000_000, 300):
        for _ in range(50):
            later = OutputIndex(budget=budget, **known._asdict())
            now = OutputIndex(universe=known.universe, normals=known.normals)
            files = rng.randint(1, 3)
            for file in range(files):
                texts = [
                    ",".join(rng.choices(cells, k=rng.randint(0, 5)))
                    for _ in range(rng.randint(0, 80))
                ]
                places = [f"row {i}" for i in range(len(texts))]
                for index in (later, now):
                    index.add(file, "name", ["north", "x"], name=True)
                    index.add_texts(file, places, texts)
            tokens = set().union(*now.sets)
            if later.overflow:
                # each file's rows all indexed, or the file marked as not all compared
                assert budget < 1000 and later.size <= budget
                for file in range(files):
                    mine = sorted(r for r in later.rows if r[0] == file)
                    assert file in later.overflow or mine == sorted(
                        r for r in now.rows if r[0] == file
                    )
                continue
            assert later.spellings == later.spellings_of(tokens)
            assert {"007", "north."} & later.spellings == {"007", "north."} & {
                s for t in tokens for s in ({t} | set(known.respelled.get(t, [])))
            }
            rows = sorted(zip(later.rows, later.sets, strict=True))
            assert rows == sorted(zip(now.rows, now.sets, strict=True))
            paired = set().union(*(s for s in now.sets if len(s) > 1))
            assert later.paired() == later.spellings_of(paired)
            # the same rows under each token (numbered in another order: the names first)
            assert {k: sorted(later.rows[r] for r in v) for k, v in later.postings.items()} == {
                k: sorted(now.rows[r] for r in v) for k, v in now.postings.items()
            }
            assert later.common == now.common
            assert not later.overflow and later.size >= now.size
