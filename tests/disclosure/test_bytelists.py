"""Byte values written one at a time, and characters that show nothing."""

from __future__ import annotations

import gzip

import pytest

from atoll.disclosure.bytelists import (
    DOWN,
    SHORTEST,
    byte_lists,
    find_invisible,
    list_findings,
    spells_text,
    without_marks,
)

PAYLOAD = b"P10001,Ada Abbott,ada.abbott1@example.org,1961-04-02,F,north,34\n"


def test_hex_with_separators_and_prefixes_is_decoded() -> None:
    for text in [
        " ".join(f"{b:02x}" for b in PAYLOAD),
        ":".join(f"{b:02X}" for b in PAYLOAD),
        "".join(f"\\x{b:02x}" for b in PAYLOAD),
        "".join(f"%{b:02X}" for b in PAYLOAD),
        ", ".join(f"0x{b:02x}" for b in PAYLOAD),
        "\n".join(f"{b:02x}" for b in PAYLOAD),
    ]:
        found = byte_lists(f"dump follows\n{text}\nend\n".encode())
        assert [(f.line, f.notation, f.data) for f in found] == [(2, "hex", PAYLOAD)], text
        assert [f.detail for f in list_findings(found)] == ["hex byte values at line 2"]


def test_decimal_byte_values_spelling_text_are_decoded_and_held() -> None:
    for sep in [",", ", ", " ", ";", "\n"]:
        found = byte_lists(("values: " + sep.join(map(str, PAYLOAD))).encode())
        assert [(f.notation, f.data) for f in found] == [("decimal", PAYLOAD)]
        assert [f.detail for f in list_findings(found)] == [
            "decimal byte values spelling text at line 1"
        ]


def test_compressed_bytes_are_named_whatever_the_notation() -> None:
    packed = gzip.compress(PAYLOAD * 4)
    found = byte_lists(",".join(map(str, packed)).encode())
    assert [f.detail for f in list_findings(found)] == [
        "decimal byte values holding gzip data at line 1"
    ]


def test_lists_of_small_numbers_an_aggregate_holds_are_not_held() -> None:
    ages = ", ".join(str(18 + (i * 7) % 70) for i in range(80))
    counts = "\n".join(f"{i % 9},{(i * 5) % 10},{i % 4}" for i in range(60))
    two_figures = " ".join(f"{(i * 13) % 100:02d}" for i in range(60))
    for text in [ages, counts, two_figures]:
        found = byte_lists(text.encode())
        assert all(f.notation == "decimal" for f in found)
        assert list_findings(found) == []


def test_short_lists_and_words_are_not_lists() -> None:
    short = " ".join(f"{b:02x}" for b in PAYLOAD[: SHORTEST - 1])
    assert byte_lists(short.encode()) == []
    assert byte_lists(b"step 12 loss 0.2201 accuracy 0.9312 deadbeef cafe 10 20 30\n" * 50) == []


def test_text_is_told_from_values() -> None:
    assert spells_text(b"hello world, this is text")
    assert not spells_text(bytes(range(40, 80)))
    assert not spells_text(bytes(range(256)))


def test_characters_that_show_nothing_are_held_with_their_line() -> None:
    hidden = "total\n" + "\u200b".join("P10001") + "\nmean 4\u2063\u2062"
    (finding,) = find_invisible(hidden)
    assert finding.check == "encoded"
    assert finding.detail.endswith("at line 2 and 6 more")
    for mark in ["\u200c", "\u200d", "\u202e", "\u2066", "\ufe0f", "\U000e0041", "\u00ad"]:
        assert find_invisible(f"a{mark}b"), repr(mark)


def test_a_leading_byte_order_mark_and_plain_unicode_are_not_held() -> None:
    assert find_invisible("\ufeffregion,count\nnorth,120\n") == []
    assert find_invisible("café, naïve, Zürich: 12 µg, 5 °C, ≥ 10\n") == []
    assert find_invisible("plain ascii\n") == []


def test_octal_figures_with_no_escape_are_decoded_and_held() -> None:
    for text in [
        " ".join(f"{b:o}" for b in PAYLOAD),
        "\n".join(f"{b:03o}" for b in PAYLOAD),
        ",".join(oct(b) for b in PAYLOAD),
        " ".join(f"{b:#o}" for b in PAYLOAD + "Zoë".encode()),
    ]:
        found = byte_lists(f"values\n{text}\n".encode())
        assert [(f.line, f.notation) for f in found] == [(2, "octal")], text
        assert found[0].data.startswith(PAYLOAD)
        assert [f.detail for f in list_findings(found)] == ["octal byte values at line 2"]
    # a table of small numbers with no 8 or 9 in it reads as octal too, and spells nothing
    counts = " ".join(str((i * 5) % 8 + 10 * (i % 7)) for i in range(80))
    assert list_findings(byte_lists(counts.encode())) == []


def test_characters_escaped_as_json_writes_them_are_decoded_and_held() -> None:
    for text in ["".join(f"\\u{b:04x}" for b in PAYLOAD), " ".join(f"\\U{b:08X}" for b in PAYLOAD)]:
        found = byte_lists(f'"{text}"'.encode())
        assert [(f.notation, f.data) for f in found] == [("unicode escape", PAYLOAD)], text
        assert [f.detail for f in list_findings(found)] == ["unicode escape byte values at line 1"]


def test_octal_escapes_and_bit_groups_are_decoded_and_held() -> None:
    octal = "".join(f"\\{b:03o}" for b in PAYLOAD)
    bits = " ".join(f"{b:08b}" for b in PAYLOAD)
    for text, notation in [(octal, "octal"), (bits, "binary")]:
        (found,) = byte_lists(text.encode())
        assert (found.notation, found.data) == (notation, PAYLOAD)
        assert [f.detail for f in list_findings([found])] == [f"{notation} byte values at line 1"]


def test_character_references_are_byte_values_too() -> None:
    decimal = "".join(f"&#{b};" for b in PAYLOAD)
    hexadecimal = "".join(f"&#x{b:X};" for b in PAYLOAD)
    for text, notation in [
        (decimal, "character reference"),
        (hexadecimal, "hex character reference"),
    ]:
        (found,) = byte_lists(text.encode())
        assert (found.notation, found.data) == (notation, PAYLOAD)
        assert list_findings([found])


def test_combining_marks_and_styled_letters_are_read_plain() -> None:
    assert without_marks("P\u03321\u03320") == "P10"
    assert without_marks("\uff30\uff11\uff10") == "P10"
    assert without_marks("José") == "Jose"
    assert without_marks("plain ascii") is None
    assert without_marks("naïve") == "naive"


def test_a_long_table_of_whole_numbers_is_read_whole_and_not_held() -> None:
    rows = "\n".join(
        ",".join(str((r * 7 + c * 13) % 200) for c in range(10)) for r in range(20_000)
    )
    found = byte_lists(rows.encode())
    assert found and all(f.notation == "decimal" for f in found)
    assert list_findings(found) == []


def test_a_long_stretch_of_other_values_is_held_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    from atoll.disclosure import bytelists

    monkeypatch.setattr(bytelists, "MAX_STRETCH", 1000)
    dump = " ".join(f"{b:02x}" for b in PAYLOAD * 10)
    (finding,) = list_findings(byte_lists(f"dump\n{dump}".encode()))
    assert (finding.check, finding.detail) == (
        "unparsed",
        "a list of byte values too long to read at line 2",
    )


def test_byte_values_written_down_a_column_of_figures_are_decoded() -> None:
    # an index and a value per line (a plot's points, a loop that prints both): no list read
    # in order spells anything, the second column does; it is read (for the echo check to
    # compare with the inputs), and held only where it is compressed data
    for sep in [",", " ", "\t"]:
        text = "\n".join(f"{i}{sep}{b}" for i, b in enumerate(PAYLOAD * 2))
        found = byte_lists(f"x{sep}y\n{text}\n".encode())
        assert (2, DOWN, PAYLOAD * 2) in [(f.line, f.notation, f.data) for f in found]
        assert list_findings(found) == []
    # three columns, the payload in the middle one
    text = "\n".join(f"{i},{b},{i % 3}" for i, b in enumerate(PAYLOAD))
    assert PAYLOAD in [f.data for f in byte_lists(text.encode())]
    packed = gzip.compress(PAYLOAD * 4)
    text = "\n".join(f"{i} {b}" for i, b in enumerate(packed))
    assert [f.detail for f in list_findings(byte_lists(text.encode()))] == [
        "decimal down a column byte values holding gzip data at line 1"
    ]


def test_a_long_grouped_count_whose_counts_read_as_text_is_not_held() -> None:
    # counts between 32 and 126 spell "text" when read as bytes: a table's column of them
    # is no payload
    counts = "\n".join(f"{18 + i},{40 + (i * 37) % 81}" for i in range(70))
    found = byte_lists(f"age,count\n{counts}\n".encode())
    assert list_findings(found) == []


def test_columns_of_figures_that_spell_nothing_are_not_held() -> None:
    counts = "\n".join(f"{i},{(i * 37) % 251},{i % 7}" for i in range(400))
    assert list_findings(byte_lists(counts.encode())) == []


def test_letters_of_other_scripts_that_look_latin_are_read_as_latin() -> None:
    # Cyrillic Er and a, Greek Omicron
    assert without_marks("\u0420100\u043001 \u039fK") == "P100a01 OK"
    # a text of another script stays what it is where nothing in it looks Latin
    assert without_marks("\u65e5\u672c") is None


def test_byte_values_wrapped_into_lines_of_as_many_are_still_read_in_order() -> None:
    # a list of the payload's values, sixteen to a line: a table in shape, with no index
    values = list((PAYLOAD * 2)[:128])  # eight full lines
    text = "\n".join(",".join(map(str, values[i : i + 16])) for i in range(0, len(values), 16))
    assert [f.detail for f in list_findings(byte_lists(text.encode()))] == [
        "decimal byte values spelling text at line 1"
    ]
