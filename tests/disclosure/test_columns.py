"""Bytes and characters written down a table's column, one a row."""

from __future__ import annotations

from atoll.disclosure.bytelists import SHORTEST
from atoll.disclosure.columns import column_texts
from atoll.disclosure.tables import parse_delimited

PAYLOAD = b"P10001,Ada Abbott,ada.abbott1@example.org,1961-04-02,F,north,34\n"


def test_byte_values_and_characters_down_a_column_are_joined() -> None:
    # the payload's commas and line end written as spaces in the characters' column
    chars = PAYLOAD.decode().replace(",", " ").replace("\n", " ")
    text = "label,value,char\n" + "".join(
        f"row{i},{b},{c}\n" for i, (b, c) in enumerate(zip(PAYLOAD, chars, strict=True))
    )
    table = parse_delimited(text, ",")
    assert table is not None
    found = column_texts(table)
    assert [(f.column, f.row, f.notation) for f in found] == [
        (2, 0, "decimal"),
        (3, 0, "characters"),
    ]
    assert found[0].data == PAYLOAD
    assert found[1].data == PAYLOAD.replace(b",", b" ").replace(b"\n", b" ")


def test_a_run_starts_where_the_values_do_and_short_runs_are_left() -> None:
    rows = ["n,v", *(f"{i},big{i}" for i in range(5)), *(f"{i},{b}" for i, b in enumerate(PAYLOAD))]
    rows += [f"{i},{1000 + i}" for i in range(SHORTEST - 1)]
    table = parse_delimited("\n".join(rows), ",")
    assert table is not None
    runs = [(f.column, f.row, f.data) for f in column_texts(table)]
    # the index column is a run too (figures under 256): it spells nothing, which the
    # checks then find; the values' run starts on the table's sixth row
    assert (2, 5, PAYLOAD) in runs
    assert all(len(data) >= SHORTEST for _, _, data in runs)


def test_a_column_of_few_kinds_of_character_is_not_read() -> None:
    table = parse_delimited("sex,n\n" + "".join(f"{'FM'[i % 2]},{i}\n" for i in range(100)), ",")
    assert table is not None
    assert [f.notation for f in column_texts(table)] == ["decimal"]
    # and a table shorter than a run has none
    short = parse_delimited("a,b\n" + "".join(f"{i},{i}\n" for i in range(SHORTEST - 1)), ",")
    assert short is not None and column_texts(short) == []
